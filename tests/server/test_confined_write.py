"""The loop's writes of repository files (confine.write_inside for the edit step, put_back for a
person's edit put back after it): the new content replaces the file whole or not at all.

A fresh clone's `make test` once killed a detached loop (SIGKILL) between the truncation of
train.py and the write of its new text: the next start read an empty train.py and refused the
sweep's parameters ("name X, not found ... in scope") before its recovery could stash the
half-made edit. A write that fails part-way is the same moment, made certain here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from autoresearch.confine import ConfinementError, put_back, write_inside


def test_an_interrupted_write_leaves_the_old_text_and_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("X = 1.0\nY = 2\n")
    # A lone surrogate cannot be encoded: the write fails after the file was opened.
    with pytest.raises(UnicodeEncodeError):
        write_inside(tmp_path, "train.py", "X = 0.5\nY = 2\n# \udc80\n")
    assert (tmp_path / "train.py").read_text() == "X = 1.0\nY = 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_the_new_text_replaces_the_file_with_its_mode(tmp_path: Path) -> None:
    script = tmp_path / "pkg" / "run.py"
    script.parent.mkdir()
    script.write_text("LR = 0.1\n")
    script.chmod(0o751)
    write_inside(tmp_path, "pkg/run.py", "LR = 0.05\n")
    assert script.read_text() == "LR = 0.05\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    assert sorted(p.name for p in script.parent.iterdir()) == ["run.py"]


def test_a_link_is_still_refused_and_its_target_untouched(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("X = 1\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(outside, repo / "train.py")
    with pytest.raises(ConfinementError, match="symbolic link"):
        write_inside(repo, "train.py", "X = 2\n")
    assert outside.read_text() == "X = 1\n"
    assert (repo / "train.py").is_symlink()


def test_a_read_only_file_is_not_replaced(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write a read-only file")
    target = tmp_path / "train.py"
    target.write_text("X = 1\n")
    target.chmod(0o444)
    with pytest.raises(PermissionError):
        write_inside(tmp_path, "train.py", "X = 2\n")
    assert target.read_text() == "X = 1\n"


def test_a_hard_link_to_a_file_outside_is_replaced_not_written_through(tmp_path: Path) -> None:
    """O_NOFOLLOW stops a symbolic link, not a hard one: an in-place write changed the file
    outside the repository that the tracked path was hard-linked to."""
    outside = tmp_path / "outside.py"
    outside.write_text("X = 1\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    os.link(outside, repo / "train.py")
    write_inside(repo, "train.py", "X = 2\n")
    assert (repo / "train.py").read_text() == "X = 2\n"
    assert outside.read_text() == "X = 1\n"
    os.link(outside, repo / "notes.md")  # an edit step left a hard link where a person's file was
    assert put_back(repo, "notes.md", b"my notes\n")
    assert (repo / "notes.md").read_bytes() == b"my notes\n"
    assert outside.read_text() == "X = 1\n"


def test_a_persons_file_put_back_keeps_its_mode_and_a_new_one_gets_the_umasks(
    tmp_path: Path,
) -> None:
    script = tmp_path / "run.sh"
    script.write_text("agent's\n")
    script.chmod(0o750)
    assert put_back(tmp_path, "run.sh", b"mine\n")
    assert script.read_bytes() == b"mine\n" and stat.S_IMODE(script.stat().st_mode) == 0o750
    umask = os.umask(0o022)
    try:
        assert put_back(tmp_path, "sub/new.txt", b"mine too\n")
    finally:
        os.umask(umask)
    made = tmp_path / "sub" / "new.txt"
    assert made.read_bytes() == b"mine too\n" and stat.S_IMODE(made.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new.txt", "run.sh", "sub"]
