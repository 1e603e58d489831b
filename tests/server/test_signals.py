"""Stop signals: SIGTERM, SIGHUP and Ctrl-C stop a loop cleanly, never halfway.

Real `autoresearch run` processes on real repositories (the fault suite's fault_repo and
Daemon), real signals; and the real `autoresearch serve` losing its client. After each stop
no process of the run is alive, results and git agree, and a resume goes on from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import alive_with_env, git
from escapees import Escapees
from lsp_fixtures import TRAIN as SERVE_TRAIN
from lsp_fixtures import Client, config, daemon
from lsp_fixtures import make_repo as serve_repo
from test_faults import Daemon, _no_stray_processes, assert_consistent, fault_repo, records

from autoresearch import results_tsv
from autoresearch.protocol import Method

__all__ = ["_no_stray_processes"]  # the fault suite's fixture: kills what a failed test left


def running(root: Path, number: int) -> bool:
    """Experiment `number`'s command has started (its log says so)."""
    runs = root / ".autoresearch" / "runs"
    return any("training" in p.read_text() for p in runs.glob(f"*-{number}.log"))


def resumes(root: Path, done: int) -> None:
    """A later `autoresearch run --loop 1` goes on from the `done` recorded experiments."""
    again = Daemon(root, "--loop", "1")
    assert again.wait(120) == 0, again.text()
    assert [r.number for r in assert_consistent(root)] == list(range(done + 1))
    assert again.leftovers() == []


# ---- autoresearch run -------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_after_the_experiment(tmp_path: Path, sig: signal.Signals) -> None:
    # The command would sleep 120 s; its timeout (5 s) ends it, then the loop stops.
    root = fault_repo(tmp_path, timeout=5)
    daemon = Daemon(root, plan={"1": {"mode": "slow"}})
    daemon.until(lambda: running(root, 1))
    daemon.proc.send_signal(sig)
    assert daemon.wait(120) == 128 + sig, daemon.text()
    assert f"{sig.name}: stopping after this experiment" in daemon.text()
    assert daemon.leftovers() == []
    recs = assert_consistent(root)  # HEAD on the last keep, not on the undecided commit
    assert [(r.status, r.crash_kind) for r in recs] == [("keep", None), ("crash", "timeout")]
    resumes(root, done=2)


def test_a_second_sigterm_abandons_the_experiment_at_once(tmp_path: Path) -> None:
    root = fault_repo(tmp_path, timeout=600)
    daemon = Daemon(root, plan={"1": {"mode": "slow"}})
    daemon.until(lambda: running(root, 1))
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.until(lambda: "stopping after this experiment" in daemon.text())
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 128 + signal.SIGTERM, daemon.text()
    assert "SIGTERM: abandoning the running experiment" in daemon.text()
    assert daemon.leftovers() == []
    recs = assert_consistent(root)
    assert [(r.status, r.crash_kind) for r in recs] == [("keep", None), ("crash", "interrupted")]
    resumes(root, done=2)


def test_sighup_after_the_terminal_went_away(tmp_path: Path) -> None:
    """The terminal closed: every later write to it fails (EIO), then SIGHUP arrives. The loop
    still finishes the experiment and records it."""
    root = fault_repo(tmp_path, timeout=5)
    master, slave = pty.openpty()
    session = uuid.uuid4().hex  # in every process of the run, to find what outlives it
    env = {
        **os.environ,
        "FAULT_SESSION": session,
        "FAULT_PLAN": json.dumps({"1": {"mode": "slow"}}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(root)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        while not running(root, 1):
            assert proc.poll() is None and time.monotonic() < deadline, b"".join(seen)
            _drain(master, seen)  # read in this thread: a blocked read would hold the pty open
        os.close(master)  # the terminal is gone
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(120) == 128 + signal.SIGHUP
        assert alive_with_env("FAULT_SESSION", session) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        for left in alive_with_env("FAULT_SESSION", session):
            left.kill()
    recs = assert_consistent(root)
    assert [(r.status, r.crash_kind) for r in recs] == [("keep", None), ("crash", "timeout")], (
        recs,
        b"".join(seen),
    )
    resumes(root, done=2)


def _drain(fd: int, seen: list[bytes]) -> None:
    if select.select([fd], [], [], 0.05)[0]:
        with contextlib.suppress(OSError):
            seen.append(os.read(fd, 4096))


def test_ctrl_c_during_a_git_commit_is_a_clean_stop(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    in_hook = tmp_path / "in-hook"
    hook = root / ".git" / "hooks" / "pre-commit"
    # Slow only for experiment commits (train.py staged), so the Ctrl-C lands inside git.
    hook.write_text(
        "#!/bin/sh\n"
        "if git diff --cached --name-only | grep -q train.py; then\n"
        f"  touch {in_hook}; sleep 2\n"
        "fi\n"
    )
    hook.chmod(0o755)
    daemon = Daemon(root)
    daemon.until(in_hook.exists)
    # A terminal's Ctrl-C goes to its whole foreground process group, not to one process.
    os.killpg(daemon.proc.pid, signal.SIGINT)
    assert daemon.wait(120) == 130, daemon.text()
    text = daemon.text()
    assert "Ctrl-C: stopping after this experiment" in text
    assert "Traceback" not in text and "Cmd(" not in text, text
    assert "commit of experiment #1 failed" not in text, text
    assert daemon.leftovers() == []
    recs = assert_consistent(root)
    assert [r.number for r in recs] == [0, 1]  # the experiment in commit finished and counts
    assert len(records(root)) == 2
    hook.unlink()
    resumes(root, done=2)


# ---- autoresearch serve losing its client ---------------------------------------------------


def running_over_lsp(client: Client, number: int) -> bool:
    return any(
        p["phase"] == "running" and p["current"] == number for p in client.of(Method.STATE_CHANGED)
    )


@pytest.mark.parametrize("goodbye", ["SIGHUP", "stdin closed", "SIGTERM twice"])
async def test_serve_losing_its_client_kills_the_whole_run(tmp_path: Path, goodbye: str) -> None:
    escapees = Escapees(tmp_path)
    root = serve_repo(tmp_path / "repo", {"train.py": SERVE_TRAIN.replace("SLOW = 0", "SLOW = 1")})
    # Experiments (not the baseline, X = 1.0) start escapees, then sleep in train.py.
    command = (
        f"if ! grep -q '^X = 1.0$' train.py; then {escapees.shell()} fi; {sys.executable} train.py"
    )
    try:
        async with daemon() as client:
            assert client._server is not None
            server = client._server
            started = await client.request(
                Method.START, {"root": str(root), "config": config(command=command)}
            )
            await client.until(lambda: running_over_lsp(client, 1))
            await client.until(escapees.started.exists)
            if goodbye == "SIGHUP":
                server.send_signal(signal.SIGHUP)
            elif goodbye == "stdin closed":
                assert server.stdin is not None
                server.stdin.close()
            else:  # the editor's kill, repeated while the daemon stops its loops
                server.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.05)
                with contextlib.suppress(ProcessLookupError):
                    server.send_signal(signal.SIGTERM)
            await asyncio.wait_for(server.wait(), 60)
        assert escapees.survivors() == []
    finally:
        escapees.cleanup()
    rows = results_tsv.read(root / "results.tsv")
    assert [(r.number, r.status) for r in rows] == [(0, "keep"), (1, "crash")]
    assert git(root, "rev-parse", f"refs/autoresearch/{started['tag']}/1")
    assert git(root, "status", "--porcelain") == ""
    journal = json.loads((root / ".autoresearch" / "state.json").read_text())
    assert journal.get("step", "idle") == "idle"
