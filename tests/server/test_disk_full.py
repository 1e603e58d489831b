"""A full disk, for real: the repository lives on a small tmpfs that the run (or the agent)
fills. Real `autoresearch run` processes; their output is kept off the small disk.

Mounting needs root (CI and this container run as root); elsewhere these tests are skipped.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git, make_repo
from test_faults import Daemon, _no_stray_processes, assert_consistent, journal

from autoresearch import config as cfg
from autoresearch.journal import Entry, Journal

__all__ = ["_no_stray_processes"]  # the fault suite's fixture: kills what a failed test left

DISK_MB = 24

# MODE, set by the agent per experiment: "fill" prints the metric, then a checkpoint fills the
# disk; "checkpoint" leaves a 12 MB checkpoint behind.
TRAIN = """\
import os
LR = 0.5
MODE = "normal"

print(f"score: {abs(LR - 0.3):.6f}", flush=True)
os.makedirs("checkpoints", exist_ok=True)
if MODE in ("fill", "checkpoint"):
    fd = os.open("checkpoints/model.pt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    left = 12 * 2**20 if MODE == "checkpoint" else float("inf")
    try:
        while left > 0:
            left -= os.write(fd, b"w" * 65536)
    except OSError:
        pass  # the disk is full
"""

# FAULT_PLAN maps a number to {"lr", "mode", "fill_after_edit"}; by default LR improves.
AGENT = """\
import json, os, pathlib, re, sys
n = int(sys.argv[1])
plan = json.loads(os.environ.get("FAULT_PLAN", "{}")).get(str(n), {})
lr = plan.get("lr", 0.3 + 0.1 / (n + 1))
path = pathlib.Path("train.py")
text = re.sub(r"(?m)^LR = .*$", f"LR = {lr!r}", path.read_text())
path.write_text(re.sub(r"(?m)^MODE = .*$", f"MODE = {plan.get('mode', 'normal')!r}", text))
if plan.get("fill_after_edit"):  # the disk fills before the loop commits the edit
    os.makedirs("checkpoints", exist_ok=True)
    fd = os.open("checkpoints/agent.bin", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"a" * 65536)
    except OSError:
        pass
"""


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of DISK_MB, mounted for the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {DISK_MB} MB tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def disk_repo(disk: Path, min_free_mb: float | None = 4) -> Path:
    """The repository at the mount point itself; the agent script outside the small disk."""
    agent = disk.parent / "agent.py"
    agent.write_text(AGENT)
    config = f"""\
[metric]
name = "score"
direction = "lower"
pattern = '^score:\\s*(\\S+)'

[run]
command = "{sys.executable} train.py"
timeout = 60
{f"min_free_mb = {min_free_mb}" if min_free_mb is not None else ""}

[scope]
files = ["train.py"]

[agent]
kind = "command"
command = "{sys.executable} {agent} {{number}}"
timeout = 120
"""
    files = {"train.py": TRAIN, "autoresearch.toml": config, ".gitignore": "checkpoints/\n"}
    return make_repo(disk, files)


def free_space(root: Path) -> None:
    for path in (root / "checkpoints").glob("*"):
        path.unlink()


def test_a_run_that_fills_the_disk_is_recorded_and_the_loop_stops_plainly(disk: Path) -> None:
    root = disk_repo(disk)
    daemon = Daemon(root, plan={"1": {"mode": "fill", "lr": 0.3}})
    assert daemon.wait(120) == 1, daemon.text()
    out = daemon.text()
    assert f"autoresearch: Stopped: the disk is full: {root} has" in out, out
    assert "MB free" in out and "Errno" not in out and "Traceback" not in out
    assert not (root / ".autoresearch" / "state.tmp").exists()
    assert journal(root)["step"] == "idle"

    free_space(root)  # (git status needs room for its index)
    # The run printed its metric before it filled the disk: the result is recorded whole.
    recs = assert_consistent(root)
    assert [(r.number, r.status, r.metric) for r in recs] == [(0, "keep", 0.2), (1, "keep", 0.0)]
    again = Daemon(root, "--loop", "1")
    assert again.wait(120) == 0, again.text()
    recs = assert_consistent(root)
    assert [r.status for r in recs] == ["keep", "keep", "discard"]
    assert "recovered" not in again.text()  # nothing was left half done


def test_the_free_space_check_stops_before_an_experiment(disk: Path) -> None:
    root = disk_repo(disk, min_free_mb=10)
    daemon = Daemon(root, plan={"1": {"mode": "checkpoint"}})  # leaves about 9 MB free
    assert daemon.wait(120) == 1, daemon.text()
    out = daemon.text()
    assert f"Stopped: the disk is nearly full: {root} has" in out, out
    assert "each experiment needs run.min_free_mb (10 MB)" in out
    # Stopped before #2 began: no edit, no commit, no ref, nothing in flight.
    assert journal(root)["step"] == "idle"
    assert "MODE = 'checkpoint'" in (root / "train.py").read_text()  # #1 was kept as it was
    free_space(root)
    assert [r.number for r in assert_consistent(root)] == [0, 1]

    again = Daemon(root, "--loop", "1")
    assert again.wait(120) == 0, again.text()
    assert [r.number for r in assert_consistent(root)] == [0, 1, 2]


def test_git_out_of_space_on_commit_says_the_disk_is_full(disk: Path) -> None:
    root = disk_repo(disk)
    daemon = Daemon(root, plan={"1": {"fill_after_edit": True}})
    assert daemon.wait(120) == 1, daemon.text()
    out = daemon.text()
    assert "autoresearch: Stopped: the disk is full" in out, out
    assert "commit hooks" not in out and "Cmd('git')" not in out

    free_space(root)
    again = Daemon(root, "--loop", "1")
    assert again.wait(120) == 0, again.text()
    recs = assert_consistent(root)
    assert len(recs) == 2 and recs[1].number == 1
    assert not (root / ".autoresearch" / "state.tmp").exists()


def test_a_journal_write_on_a_full_disk_leaves_the_old_entry_and_no_temp_file(
    disk: Path,
) -> None:
    journal_ = Journal(disk / ".autoresearch")
    journal_.write(Entry(tag="t", branch="autoresearch/t", step="editing", number=3))
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # fill every last block
    try:
        while True:
            os.write(fd, b"f" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(OSError) as info:
        journal_.write(Entry(tag="t", branch="autoresearch/t", step="idle"))
    assert info.value.errno == errno.ENOSPC
    assert sorted(os.listdir(disk / ".autoresearch")) == ["state.json"]
    assert journal_.read() == Entry(tag="t", branch="autoresearch/t", step="editing", number=3)


def test_min_free_mb_must_not_be_negative() -> None:
    raw = {"metric": {"name": "m", "direction": "lower"}, "scope": {"files": ["a.py"]}}
    with pytest.raises(cfg.ConfigError) as info:
        cfg.from_builtins({**raw, "run": {"command": "true", "min_free_mb": -1}})
    assert str(info.value) == (
        "autoresearch.toml: run.min_free_mb is -1; it must be a number of MB, at least 0"
        " (0 turns the free-space check off)."
    )


def test_too_little_space_stops_before_the_session_is_set_up(tmp_path: Path) -> None:
    # Any disk: no machine has a billion MB free. Nothing is made: no branch, no commit.
    root = disk_repo(tmp_path / "repo", min_free_mb=1e9)
    before = git(root, "rev-parse", "HEAD")
    daemon = Daemon(root)
    assert daemon.wait(120) == 1, daemon.text()
    assert "Stopped: the disk is nearly full" in daemon.text(), daemon.text()
    assert git(root, "branch", "--list", "autoresearch/*") == ""
    assert (
        git(root, "rev-parse", "HEAD") == before
        and git(root, "status", "--porcelain", "-uno") == ""
    )
