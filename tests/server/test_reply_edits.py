"""The editor model's reply as edits: parsing, the scope check, and the one confined write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoresearch.agents import reply_edits
from autoresearch.agents.reply_edits import SearchReplace, WholeFile, parse, plan, write

TRAIN = "LR = 0.01\nSTEPS = 10\n\n\ndef main():\n    print('score:', LR)\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "evaluate.py").write_text("THRESHOLD = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "model.py").write_text("N = 4\n")
    return tmp_path


EDITABLE = ["train.py", "pkg/model.py"]
OFF = ["evaluate.py"]


def applied(root: Path, reply: str) -> reply_edits.Plan:
    result = plan(root, parse(reply), EDITABLE, OFF)
    if not result.problems:
        write(root, result.contents)
    return result


def test_aider_blocks_in_fences_with_description(root: Path) -> None:
    reply = (
        "DESCRIPTION: lower the learning rate 0.01 -> 0.005\n\n"
        "Here is the change.\n\n"
        "train.py\n```python\n"
        "<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.005\n>>>>>>> REPLACE\n```\n"
        "pkg/model.py\n```\n<<<<<<< SEARCH\nN = 4\n=======\nN = 8\n>>>>>>> REPLACE\n```\n"
    )
    parsed = parse(reply)
    assert parsed.description == "lower the learning rate 0.01 -> 0.005"
    assert parsed.edits == [
        SearchReplace("train.py", "LR = 0.01\n", "LR = 0.005\n"),
        SearchReplace("pkg/model.py", "N = 4\n", "N = 8\n"),
    ]
    result = applied(root, reply)
    assert result.problems == []
    assert sorted(result.contents) == ["pkg/model.py", "train.py"]
    assert (root / "train.py").read_text() == TRAIN.replace("0.01", "0.005")
    assert (root / "pkg" / "model.py").read_text() == "N = 8\n"


def test_bare_blocks_reuse_the_last_named_file(root: Path) -> None:
    reply = (
        "**train.py**\n<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.02\n>>>>>>> REPLACE\n\n"
        "<<<<<<< SEARCH\nSTEPS = 10\n=======\nSTEPS = 10  # unchanged budget\n>>>>>>> REPLACE\n"
    )
    result = applied(root, reply)
    assert result.problems == []
    assert (root / "train.py").read_text().startswith("LR = 0.02\nSTEPS = 10  # unchanged budget\n")


def test_search_ignores_trailing_whitespace_only(root: Path) -> None:
    reply = "train.py\n<<<<<<< SEARCH\nLR = 0.01   \n=======\nLR = 0.03\n>>>>>>> REPLACE\n"
    assert applied(root, reply).problems == []
    assert (root / "train.py").read_text().startswith("LR = 0.03\n")


def test_whole_file_named_before_the_fence_or_in_its_info(root: Path) -> None:
    parsed = parse("pkg/model.py\n```python\nN = 16\n```\n")
    assert parsed.edits == [WholeFile("pkg/model.py", "N = 16\n")]
    assert parse("```python path=train.py\nLR = 1\n```").edits == [
        WholeFile("train.py", "LR = 1\n")
    ]
    # A fenced snippet that names no file is only shown, not applied.
    assert parse("For example:\n\n```python\nLR = 1\n```\n").edits == []
    assert applied(root, "pkg/model.py\n```python\nN = 16\n```\n").problems == []
    assert (root / "pkg" / "model.py").read_text() == "N = 16\n"


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("evaluate.py", "evaluate.py is off-limits"),
        ("README.md", "README.md is not one of the files you may edit"),
        ("../outside.py", "'../outside.py' is not a path inside the repository"),
        ("pkg/../train.py", "'pkg/../train.py' is not a path inside the repository"),
        ("/etc/passwd", "'/etc/passwd' is not a path inside the repository"),
    ],
)
def test_a_path_outside_the_scope_refuses_the_whole_reply(root: Path, path: str, said: str) -> None:
    before = {p: (root / p).read_text() for p in ["train.py", "evaluate.py", "pkg/model.py"]}
    reply = (
        "train.py\n<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.5\n>>>>>>> REPLACE\n"
        f"{path}\n```\nhacked = True\n```\n"
    )
    result = applied(root, reply)
    assert any(said in p for p in result.problems), result.problems
    # Nothing written, not even the good block.
    assert {p: (root / p).read_text() for p in before} == before
    assert not (root.parent / "outside.py").exists()


def test_a_search_that_does_not_match_is_told_back(root: Path) -> None:
    result = applied(root, "train.py\n<<<<<<< SEARCH\nLR = 0.7\n=======\nLR = 1\n>>>>>>> REPLACE\n")
    assert result.problems == [
        "a SEARCH block for train.py does not match the file exactly: 'LR = 0.7'"
    ]
    assert (root / "train.py").read_text() == TRAIN


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ("train.py\n<<<<<<< SEARCH\nLR = 0.01\n>>>>>>> REPLACE\n", "no ======= line"),
        ("train.py\n<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 2\n", "no >>>>>>> REPLACE line"),
        ("<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 2\n>>>>>>> REPLACE\n", "names no file"),
        ("train.py\n```python\nLR = 3\n", "has no closing fence"),
    ],
)
def test_a_broken_format_is_told_back(root: Path, reply: str, said: str) -> None:
    result = applied(root, reply)
    assert any(said in p for p in result.problems), result.problems
    assert (root / "train.py").read_text() == TRAIN


def test_a_reply_without_edits_changes_nothing(root: Path) -> None:
    result = applied(root, "DESCRIPTION: nothing\nI think the code is fine as it is.")
    assert result.problems == [] and result.contents == {}
    same = applied(root, "train.py\n<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.01\n>>>>>>> REPLACE")
    assert same.problems == [] and same.contents == {}


def test_a_linked_file_in_scope_is_refused(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "target.py"
    elsewhere.write_text("N = 4\n")
    (root / "pkg" / "model.py").unlink()
    os.symlink(elsewhere, root / "pkg" / "model.py")
    result = applied(root, "pkg/model.py\n<<<<<<< SEARCH\nN = 4\n=======\nN = 5\n>>>>>>> REPLACE\n")
    assert any("symbolic link" in p for p in result.problems), result.problems
    assert elsewhere.read_text() == "N = 4\n"


def test_a_new_file_the_scope_names_is_created(root: Path) -> None:
    result = plan(root, parse("notes.txt\n```\nhello\n```\n"), ["notes.txt"], [])
    assert result.problems == []
    write(root, result.contents)
    assert (root / "notes.txt").read_text() == "hello\n"


def test_a_file_changed_since_the_model_saw_it_is_not_written_over(root: Path) -> None:
    # The model was shown TRAIN; a person saved train.py while it answered.
    (root / "train.py").write_text(TRAIN + "PERSON = 1\n")
    reply = "train.py\n```python\nLR = 0.5\n```\n" + "pkg/model.py\n```python\nN = 8\n```\n"
    shown: dict[str, str | None] = {"train.py": TRAIN, "pkg/model.py": "N = 4\n"}
    result = plan(root, parse(reply), EDITABLE, OFF, shown)
    assert result.problems == [
        "train.py changed while the model was answering (someone else's edit): the reply is"
        " not applied over it"
    ]
    # A file absent when shown and present now is someone else's too.
    (root / "new.py").write_text("MINE = 1\n")
    result = plan(root, parse("new.py\n```\nX = 1\n```\n"), ["new.py"], [], {"new.py": None})
    assert "new.py changed while the model was answering" in result.problems[0]
