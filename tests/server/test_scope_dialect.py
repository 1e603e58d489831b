"""One scope pattern dialect, expanded by the daemon into concrete paths (issue #12).

Each case was a disagreement between the daemon's enforcement, the agent's {files} and the
editor's locks: `data/` in scope got no lock badge (the editor was sent the pattern), `src/*.py`
let the agent edit `src/a/b.py` which the editor left writable, and `**/*.py` locked train.py in
the editor while the daemon reverted its edits. Real git repositories, the real daemon.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
from conftest import git, make_config, make_repo
from lsp_fixtures import TRAIN, daemon

from autoresearch import preflight, scope
from autoresearch.preflight import PreflightError
from autoresearch.protocol import Method
from autoresearch.repo import Repo

FILES = {
    "train.py": TRAIN,
    "data/x.csv": "1,2\n",
    "src/a.py": "A = 1\n",
    "src/a/b.py": "B = 1\n",
    "sub/m.py": "M = 1\n",
}


def edit_and_enforce(root: Path, scope_globs: list[str], *paths: str) -> scope.Enforcement:
    git(root, "checkout", "-q", "-b", "autoresearch/t")
    for rel in paths:
        (root / rel).write_text((root / rel).read_text() + "# edited\n")
    head = git(root, "rev-parse", "HEAD")
    return scope.enforce(Repo(root), "autoresearch/t", head, scope_globs, [], set())


def test_a_star_stays_in_its_folder_for_the_edit_and_the_locks(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    done = edit_and_enforce(root, ["src/*.py"], "src/a.py", "src/a/b.py")
    assert done.allowed == ["src/a.py"]
    assert done.events == ["src/a/b.py is outside the scope: reverted"]
    assert (root / "src/a/b.py").read_text() == "B = 1\n"
    paths = scope.expand_paths(scope.repo_files(Repo(root)), ["src/*.py"], [])
    assert paths.files == ["src/a.py"]  # what the editor locks: the same file, no other


def test_double_star_covers_the_root_for_the_edit_and_the_locks(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    done = edit_and_enforce(root, ["**/*.py"], "train.py", "sub/m.py")
    assert sorted(done.allowed) == ["sub/m.py", "train.py"] and done.reverted == []
    paths = scope.expand_paths(scope.repo_files(Repo(root)), ["**/*.py"], [])
    assert paths.files == ["src/a.py", "src/a/b.py", "sub/m.py", "train.py"]


def test_a_folder_covers_everything_under_it_and_off_limits_wins(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    (root / "data/new.csv").write_text("3\n")  # untracked, not ignored: listed too
    (root / ".gitignore").write_text("*.log\n")
    (root / "data/run.log").write_text("ignored\n")
    files = scope.repo_files(Repo(root))
    for pattern in ("data", "data/", "data/*", "data/**"):
        assert scope.expand(files, [pattern]) == ["data/new.csv", "data/x.csv"], pattern
    paths = scope.expand_paths(files, ["data/", "train.py"], ["data/x.csv"])
    assert paths.files == ["data/new.csv", "train.py"] and paths.off_limits == ["data/x.csv"]


def test_names_with_glob_characters_are_matched_literally_when_protected(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {**FILES, "check[1].sh": "true\n", "check1.sh": "x\n"})
    tracked = Repo(root).ls_files()
    off = scope.protected([], ["train.py"], "sh check[1].sh", tracked)
    assert scope.expand(tracked, off) == ["check[1].sh"]  # not check1.sh


async def test_the_daemon_sends_concrete_paths_and_again_when_they_change(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    # The agent: says which files it was given, adds a file under data/, and strays into
    # src/a/b.py (outside `src/*.py`). The metric never moves: each attempt is discarded.
    agent = (
        "printf '%s\\n' {files} > .autoresearch/files.txt"
        " && echo 3 > data/new{number}.csv && echo '# x' >> src/a/b.py"
    )
    raw = {
        "metric": {"name": "val_loss", "direction": "lower"},
        "run": {"command": f"{sys.executable} train.py", "timeout": 60},
        "scope": {"files": ["train.py", "data/", "src/*.py"]},
        "agent": {"kind": "command", "command": agent, "timeout": 60},
    }
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": raw, "loop": 2})
        await client.until(
            lambda: any(
                p["phase"] in ("stopped", "failed") for p in client.of(Method.STATE_CHANGED)
            )
        )
        assert client.of(Method.STATE_CHANGED)[-1]["phase"] == "stopped"
        # The final unlock follows the stopped state.
        await client.until(lambda: not client.of(Method.LOCKS_CHANGED)[-1]["locked"])
        locks = [e["locked"] for e in client.of(Method.LOCKS_CHANGED)]
    base = ["data/x.csv", "src/a.py", "train.py"]
    assert locks[0] == base  # patterns expanded: data/ file by file, src/a/b.py not locked
    assert ["data/new1.csv", *base] in locks  # the agent's new in-scope file, locked
    after = locks[locks.index(["data/new1.csv", *base]) + 1]
    assert "data/new1.csv" not in after  # discarded and gone: sent again without it
    assert all(a != b for a, b in itertools.pairwise(locks))  # sent only when the list changed
    assert locks[-1] == []
    given = (root / ".autoresearch/files.txt").read_text().split()
    assert given == ["train.py", "data/x.csv", "src/a.py"]  # {files}: the same expansion
    assert (root / "src/a/b.py").read_text() == "B = 1\n"


def test_a_star_whose_files_lie_deeper_is_refused_naming_the_pattern_that_fits(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": TRAIN, "src/deep/model.py": "W = 1\n"})
    config = make_config(scope={"files": ["train.py", "src/*.py"]})
    with pytest.raises(PreflightError) as refused:
        preflight.check_settings(root, config, Repo(root).ls_files())
    assert "'src/*.py' matches no file" in str(refused.value)
    assert "'src/**/*.py' includes subfolders" in str(refused.value)
    config = make_config(scope={"files": ["train.py", "src/**/*.py"]})
    preflight.check_settings(root, config, Repo(root).ls_files())  # the fix passes
