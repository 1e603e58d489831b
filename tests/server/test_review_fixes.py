"""Defects found reviewing the merge of the recovery, disk, process and hostile-input branches.

Real `autoresearch run` processes on real repositories (the fault suite's Daemon), a real
small tmpfs for the full disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from conftest import git, make_repo
from test_disk_full import disk, disk_repo  # noqa: F401 (disk: the tmpfs fixture)
from test_faults import AGENT as FAULT_AGENT
from test_faults import (
    Daemon,
    _no_stray_processes,
    assert_consistent,
    fault_repo,
    journal,
    records,
    resume,
)
from test_hostile_requests import (
    TRACKED_CONFIG,
    USER_ERROR,
    refused,
)
from test_hostile_requests import Daemon as RpcDaemon
from test_resume_safety import FAST, NOTES, kill_run, run_log_says, safety_repo
from test_resume_safety import TRAIN as SAFETY_TRAIN

from autoresearch.bootstrap import RERUN_EVENT
from autoresearch.diskspace import free_mb

__all__ = ["_no_stray_processes"]  # the fault suite's fixture: kills what a failed test left

# ---- the re-run of an interrupted experiment checks the free space first ----------------------


def gated_disk_repo(disk: Path, min_free_mb: float) -> Path:  # noqa: F811
    """The disk suite's repository, with the safety suite's script: its "gate" mode waits for
    the file SAFETY_GATE names, so the test can kill the daemon while the run is in flight."""
    root = disk_repo(disk, min_free_mb=min_free_mb)
    (root / "train.py").write_text(SAFETY_TRAIN)
    git(root, "commit", "-qam", "a gated script")
    return root


def test_the_rerun_of_an_interrupted_experiment_checks_the_free_space_first(
    disk: Path,  # noqa: F811
) -> None:
    root = gated_disk_repo(disk, min_free_mb=10)
    gate = disk.parent / "gate"
    first = Daemon(root, plan={"1": {"mode": "gate"}}, env={"SAFETY_GATE": str(gate)})
    first.until(lambda: Path(str(gate) + ".waiting").exists())
    first.kill9()
    # (the run lives on, gated; the next daemon's recovery ends it)
    # The disk fills meanwhile: 6 MB left, under run.min_free_mb (10 MB).
    filler = root / "checkpoints" / "filler"  # ignored
    filler.parent.mkdir()
    with open(filler, "wb") as f:
        f.write(b"\0" * int((free_mb(root) - 6) * 2**20))
    second = Daemon(root, "--loop", "1")
    assert second.wait(120) == 1, second.text()
    out = second.text()
    assert "Stopped: the disk is nearly full" in out and "run.min_free_mb (10 MB)" in out, out
    # Nothing ran: #1 is still pending in the journal, unrecorded.
    assert [r.number for r in records(root)] == [0], out
    assert journal(root)["step"] == "committed" and journal(root)["number"] == 1

    filler.unlink()
    third = Daemon(root, "--loop", "1")
    assert third.wait(120) == 0, third.text()
    recs = assert_consistent(root)
    assert [r.number for r in recs] == [0, 1, 2]
    assert RERUN_EVENT in recs[1].events


# ---- the notes refreshed at a loop's end never overwrite a person's edit of them --------------


def test_a_persons_uncommitted_edit_of_the_notes_is_not_lost(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    first = Daemon(root, "--loop", "1")
    assert first.wait(120) == 0, first.text()
    notes = root / "autoresearch.md"
    mine = "\n## My own notes\n\nlr above 0.5 diverges: tried by hand\n"
    with open(notes, "a", encoding="utf-8") as f:
        f.write(mine)
    second = Daemon(root, "--loop", "1")  # the notes are the loop's: preflight lets it start
    assert second.wait(120) == 0, second.text()
    # The loop rewrote and committed its notes; the person's text is still to be had.
    in_tree = mine in notes.read_text(encoding="utf-8")
    stashed = [
        line
        for line in git(root, "stash", "list", "--format=%gd %gs").splitlines()
        if "autoresearch.md" in line
    ]
    said = "lr above 0.5 diverges"
    in_stash = any(said in git(root, "stash", "show", "-p", s.split()[0]) for s in stashed)
    assert in_tree or in_stash, (notes.read_text(), stashed, second.text())
    if in_stash:
        assert "autoresearch.md" in second.text() and "stash" in second.text()
    assert os.path.exists(notes)


# ---- a person's edit put back after an edit step never writes through a link the edit made ----

# The fault agent, which can also replace a file by a symbolic link (plan "link": [path, to]).
LINKING_AGENT = (
    FAULT_AGENT
    + """
if plan.get("link"):
    os.remove(plan["link"][0])
    os.symlink(plan["link"][1], plan["link"][0])
if plan.get("stash_then_edit"):  # its stash cannot apply back over its own later edit
    import subprocess
    subprocess.run(["git", "stash", "push", "-q", "--", "train.py"], check=True)
    path.write_text(text + "# edited again\\n")
"""
)


def linked_notes_run(tmp_path: Path, target: Path) -> tuple[Path, Daemon]:
    """#1 waits at a gate while the person edits NOTES.md (tracked, outside the scope); the
    edit step of #2 replaces NOTES.md by a link to `target`."""
    return notes_edited_run(tmp_path, {"link": ["NOTES.md", str(target)]})


def notes_edited_run(tmp_path: Path, second: dict[str, object]) -> tuple[Path, Daemon]:
    """#1 waits at a gate while the person edits NOTES.md (tracked, outside the scope); the
    edit step of #2 follows the plan `second`."""
    root = safety_repo(tmp_path)
    (tmp_path / "agent.py").write_text(LINKING_AGENT)
    gate = tmp_path / "gate"
    plan = {"1": {"mode": "gate"}, "2": second}
    daemon = Daemon(root, "--loop", "2", plan=plan, env={"SAFETY_GATE": str(gate)})
    daemon.until(Path(f"{gate}.waiting").exists)
    with open(root / "NOTES.md", "a") as f:
        f.write("y\n")
    gate.write_text("")
    return root, daemon


def test_putting_back_a_persons_edit_never_writes_through_a_link(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("outside the repository\n")
    root, daemon = linked_notes_run(tmp_path, decoy)
    assert daemon.wait(120) == 0, daemon.text()
    assert decoy.read_text() == "outside the repository\n"
    notes = root / "NOTES.md"
    assert not notes.is_symlink() and notes.read_text() == NOTES + "y\n", daemon.text()


def test_a_link_to_a_fifo_made_by_the_edit_step_does_not_hang_the_loop(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    root, daemon = linked_notes_run(tmp_path, fifo)
    assert daemon.wait(120) == 0, daemon.text()
    notes = root / "NOTES.md"
    assert not notes.is_symlink() and notes.read_text() == NOTES + "y\n", daemon.text()


# ---- the loop's own folder and table are never links out of the repository -----------------
# A cloned repository may track `.autoresearch` or `results.tsv` as a symbolic link: the
# daemon's lock, journal, disk reserve, logs and records would be written where it points.


@pytest.fixture
def rpc(tmp_path: Path) -> Iterator[RpcDaemon]:
    """The real daemon over stdio (tests/bench/jsonrpc.py)."""
    home = tmp_path / "daemon"
    home.mkdir()
    client = RpcDaemon(cwd=home, log=home / "daemon.stderr")
    try:
        yield client
    finally:
        client.close()


def linked_state_repo(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A repository (the sweep config) tracking `name` as a link to `outside` (not made)."""
    outside = tmp_path / "outside"
    root = tmp_path / "repo"
    root.mkdir()
    (root / "autoresearch.toml").write_text(tomli_w.dumps(TRACKED_CONFIG))
    os.symlink(os.path.relpath(outside, root), root / name)
    return make_repo(root), outside


def run_once(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(root), "--loop", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_run_refuses_a_state_folder_linked_out_of_the_repository(tmp_path: Path) -> None:
    root, outside = linked_state_repo(tmp_path, ".autoresearch")
    outside.mkdir()
    done = run_once(root)
    assert done.returncode != 0, done.stdout
    assert ".autoresearch is a symbolic link" in done.stderr and "git rm" in done.stderr, done
    assert list(outside.iterdir()) == []
    assert git(root, "branch", "--list", "autoresearch/*") == ""


def test_a_run_refuses_a_results_table_linked_out_of_the_repository(tmp_path: Path) -> None:
    root, outside = linked_state_repo(tmp_path, "results.tsv")
    done = run_once(root)
    assert done.returncode != 0, done.stdout
    assert "results.tsv is a symbolic link" in done.stderr, done
    assert not outside.exists()
    assert git(root, "branch", "--list", "autoresearch/*") == ""


def test_start_and_guidance_refuse_a_state_folder_linked_out_of_the_repository(
    tmp_path: Path, rpc: RpcDaemon
) -> None:
    root, outside = linked_state_repo(tmp_path, ".autoresearch")
    outside.mkdir()
    params = {"root": str(root), "config": TRACKED_CONFIG, "loop": 1}
    error = refused(rpc, "autoresearch/start", params)
    assert error.code == USER_ERROR and ".autoresearch is a symbolic link" in error.message
    error = refused(rpc, "autoresearch/guidance", {"root": str(root), "text": "try LR 0.1"})
    assert error.code == USER_ERROR and ".autoresearch is a symbolic link" in error.message
    assert list(outside.iterdir()) == []


def test_a_stash_of_the_edit_that_does_not_apply_back_keeps_a_persons_edit(
    tmp_path: Path,
) -> None:
    root, daemon = notes_edited_run(tmp_path, {"stash_then_edit": True})
    assert daemon.wait(120) == 0, daemon.text()
    assert "do not apply back: left in `git stash`" in daemon.text(), daemon.text()
    assert (root / "NOTES.md").read_text() == NOTES + "y\n", daemon.text()


# ---- a ref with no record runs again after a loop's end refreshed the notes too --------------


def test_resume_without_the_journal_reruns_an_attempt_made_on_the_notes_commit(
    tmp_path: Path,
) -> None:
    root = safety_repo(tmp_path)
    first = Daemon(root, "--loop", "1", env=FAST)  # its end commits the refreshed notes
    assert first.wait() == 0, first.text()
    notes_tip = git(root, "rev-parse", "HEAD")
    assert git(root, "log", "-1", "--format=%s") == "autoresearch: refresh notes"
    second = Daemon(root, plan={"2": {"mode": "slow"}})
    second.until(run_log_says(root, 2, "training"))
    undecided = git(root, "rev-parse", "HEAD")
    assert git(root, "rev-parse", f"{undecided}^") == notes_tip
    second.kill9()
    kill_run(root)
    (root / ".autoresearch" / "state.json").unlink()
    again, recs = resume(root, env=FAST)
    assert "experiment #2 (" in again.text() and "it runs again" in again.text(), again.text()
    assert recs[2].commit == undecided and recs[2].crash_kind != "interrupted", recs[2]
    assert recs[2].parent == notes_tip


# ---- a start refused by the agent's own check writes nothing either --------------------------


def test_a_start_refused_for_a_missing_agent_leaves_no_state_folder(
    tmp_path: Path, rpc: RpcDaemon
) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": "LR = 0.5\nprint('score: 1')\n"})
    config = {k: v for k, v in TRACKED_CONFIG.items() if k != "constraints"}
    config["agent"] = {"kind": "command", "command": "no-such-agent-xyz {number}"}
    error = refused(rpc, "autoresearch/start", {"root": str(root), "config": config, "loop": 1})
    assert error.code == USER_ERROR and "no-such-agent-xyz" in error.message
    assert not (root / ".autoresearch").exists()
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
