"""Scope enforcement on real git repositories: what an edit may touch, and putting things back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import EVAL, TRAIN, git, make_repo

from autoresearch import scope
from autoresearch.repo import Repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(
        tmp_path / "repo",
        {
            "train.py": TRAIN,
            "evaluate.py": EVAL,
            "tests/test_train.py": "def test_ok():\n    assert True\n",
            "check.sh": "grep -q LR train.py\n",
            "util_test.go": "package util\n",
        },
    )
    git(root, "checkout", "-q", "-b", "autoresearch/t")
    return root


def enforce(root: Path, stashed: bool = False, untracked: set[str] | None = None):
    r = Repo(root)
    head = git(root, "rev-parse", "HEAD")
    return scope.enforce(
        r, "autoresearch/t", head, ["train.py"], ["evaluate.py"], untracked or set(), stashed
    )


def test_without_a_guard_only_the_configured_files_are_off_limits(repo: Path) -> None:
    tracked = Repo(repo).ls_files()
    assert scope.protected(["evaluate.py"], ["train.py"], None, tracked) == ["evaluate.py"]


def test_a_guard_protects_the_files_it_names_and_the_test_files(repo: Path) -> None:
    tracked = Repo(repo).ls_files()
    got = scope.protected(["evaluate.py"], ["train.py"], "sh ./check.sh && pytest tests/", tracked)
    assert got == ["evaluate.py", "check.sh", "tests", "util_test.go"]


def test_a_file_named_in_scope_stays_editable_even_if_the_guard_names_it(repo: Path) -> None:
    tracked = Repo(repo).ls_files()
    got = scope.protected([], ["train.py", "check.sh"], "sh check.sh train.py", tracked)
    assert "train.py" not in got and "check.sh" not in got
    # A glob in scope does not make a test file editable: the guard must not be weakened.
    assert "tests/test_train.py" in scope.protected([], ["*.py"], "pytest -q", tracked)


def test_in_scope_changes_are_kept_and_the_rest_reverted(repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN.replace("LR = 0.5", "LR = 0.4"))
    (repo / "evaluate.py").write_text("THRESHOLD = 0\n")
    (repo / "check.sh").write_text("true\n")
    (repo / "scratch.txt").write_text("notes")
    result = enforce(repo)
    assert result.allowed == ["train.py"]
    assert result.off_limits == ["evaluate.py"] and result.off_limits_touched
    assert sorted(result.reverted) == ["check.sh", "scratch.txt"]
    assert (repo / "evaluate.py").read_text() == EVAL
    assert not (repo / "scratch.txt").exists()
    assert git(repo, "status", "--porcelain") == "M train.py"


def test_renaming_an_off_limits_file_into_scope_is_flagged(repo: Path) -> None:
    git(repo, "mv", "evaluate.py", "train2.py")
    r = Repo(repo)
    head = git(repo, "rev-parse", "HEAD")
    result = scope.enforce(r, "autoresearch/t", head, ["train*.py"], ["evaluate.py"], set())
    assert result.off_limits_touched
    assert (repo / "evaluate.py").read_text() == EVAL


def test_the_users_untracked_files_are_left_alone(repo: Path) -> None:
    (repo / "data.bin").write_bytes(b"\0" * 10)
    result = enforce(repo, untracked={"data.bin"})
    assert (repo / "data.bin").exists() and result.events == []


def test_a_stashed_edit_is_restored_and_the_users_own_stash_is_kept(repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN.replace("LR = 0.5", "LR = 0.1"))
    git(repo, "stash", "-q")  # the user's stash, there before the loop
    watch = scope.StashWatch(Repo(repo))
    before = watch.entries()
    assert len(before) == 1
    (repo / "train.py").write_text(TRAIN.replace("LR = 0.5", "LR = 0.4"))
    git(repo, "stash", "-q")  # the edit step stashes its work
    assert watch.stashed(before)
    result = enforce(repo, stashed=True)
    assert "the edit stashed its changes: restored from the stash" in result.events
    assert "LR = 0.4" in (repo / "train.py").read_text()
    assert git(repo, "stash", "list").count("\n") == 0 and "WIP" in git(repo, "stash", "list")
    assert "LR = 0.1" in git(repo, "show", "stash@{0}:train.py")
    assert not watch.stashed(watch.entries())


def test_the_sentinel_sees_and_restores_a_change_git_does_not_show(repo: Path) -> None:
    r = Repo(repo)
    sentinel = scope.Sentinel(r, ["evaluate.py", "tests"])
    assert sentinel.files == ["evaluate.py", "tests/test_train.py"]
    git(repo, "update-index", "--assume-unchanged", "evaluate.py")
    (repo / "evaluate.py").write_text("THRESHOLD = 0\n")
    assert git(repo, "status", "--porcelain") == ""  # invisible to git
    assert sentinel.changed() == ["evaluate.py"]
    sentinel.restore(["evaluate.py"], "HEAD")
    assert (repo / "evaluate.py").read_text() == EVAL and sentinel.changed() == []
    assert git(repo, "ls-files", "-v", "evaluate.py").startswith("H ")


def test_the_sentinel_ignores_a_touch_that_leaves_the_content(repo: Path) -> None:
    sentinel = scope.Sentinel(Repo(repo), ["evaluate.py"])
    (repo / "evaluate.py").write_text(EVAL)  # rewritten, same bytes: new mtime and ctime
    assert sentinel.changed() == []
    (repo / "evaluate.py").write_text(EVAL.replace("1", "2"))
    assert sentinel.changed() == ["evaluate.py"]


def test_an_in_scope_file_made_a_symbolic_link_is_put_back(repo: Path) -> None:
    decoy = repo.parent / "decoy.py"
    decoy.write_text("LR = 0.5\n")
    (repo / "train.py").unlink()
    os.symlink("../decoy.py", repo / "train.py")
    done = enforce(repo)
    assert done.allowed == [] and done.reverted == ["train.py"]
    assert done.events == [
        "train.py was made a symbolic link: reverted (no edit writes through a link)"
    ]
    assert not (repo / "train.py").is_symlink() and (repo / "train.py").read_text() == TRAIN
    assert decoy.read_text() == "LR = 0.5\n" and git(repo, "status", "--porcelain") == ""
