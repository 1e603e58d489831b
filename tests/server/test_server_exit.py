"""The client goes away mid-experiment: the daemon abandons the run, records it, and exits."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import psutil
import pytest
from branch_head import head_past_notes
from lsp_fixtures import TRAIN, Client, config, daemon, git, make_repo

from autoresearch import results_tsv
from autoresearch.lock import RepoLock
from autoresearch.protocol import Method


def running(client: Client, number: int) -> bool:
    return any(
        p["phase"] == "running" and p["current"] == number for p in client.of(Method.STATE_CHANGED)
    )


def experiment_processes(server_pid: int) -> list[psutil.Process]:
    """The runner's shell and the training script under it (a child that exits while they are
    listed is left out: reading its command line raises then)."""
    return [p for p in psutil.Process(server_pid).children(recursive=True) if _runs_train(p)]


def _runs_train(p: psutil.Process) -> bool:
    try:
        return "train.py" in " ".join(p.cmdline())
    except psutil.Error:
        return False


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("goodbye", ["stdin closed", "SIGTERM"])
async def test_client_gone_mid_experiment_records_it_and_leaves_no_process(
    tmp_path: Path, goodbye: str
) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": TRAIN.replace("SLOW = 0", "SLOW = 1")})
    async with daemon() as client:
        assert client._server is not None
        server = client._server
        started = await client.request(Method.START, {"root": str(root), "config": config()})
        await client.until(lambda: running(client, 1))
        procs = await client.until(lambda: experiment_processes(server.pid))
        # Requests are still answered while the experiment runs.
        state = await client.request(Method.STATE, {"root": str(root)})
        assert state["phase"] == "running" and state["current"] == 1

        if goodbye == "SIGTERM":
            server.send_signal(signal.SIGTERM)  # the editor gave up waiting and killed it
        else:
            assert server.stdin is not None
            server.stdin.close()  # the editor window went away without a word
        code = await asyncio.wait_for(server.wait(), 30)
        assert code in (0, 1)
        assert all(gone(p) for p in procs)

    tag = started["tag"]
    rows = results_tsv.read(root / "results.tsv")
    assert [(r.number, r.status) for r in rows] == [(0, "keep"), (1, "crash")]
    records = [
        json.loads(line)
        for line in (root / ".autoresearch" / "experiments.jsonl").read_text().splitlines()
    ]
    assert [r["number"] for r in records] == [0, 1]
    assert records[1]["crash_kind"] == "interrupted"
    # The abandoned experiment was reverted, its commit kept under its ref, the tree clean.
    assert head_past_notes(root) == records[0]["commit"]
    assert git(root, "rev-parse", f"refs/autoresearch/{tag}/1") == records[1]["commit"]
    assert git(root, "status", "--porcelain") == ""
    journal = json.loads((root / ".autoresearch" / "state.json").read_text())
    assert journal.get("step", "idle") == "idle"
    # The lock went with the daemon: the repository is free for the next loop.
    assert RepoLock(root).held_elsewhere() is None


async def test_shutdown_and_exit_mid_experiment_record_it_before_the_daemon_ends(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": TRAIN.replace("SLOW = 0", "SLOW = 1")})
    async with daemon() as client:
        assert client._server is not None
        server = client._server
        await client.request(Method.START, {"root": str(root), "config": config()})
        await client.until(lambda: running(client, 1))
        procs = await client.until(lambda: experiment_processes(server.pid))
        await asyncio.wait_for(client.shutdown_session(), 30)
        assert server.returncode == 0  # shutdown, then exit: a clean end
        assert all(gone(p) for p in procs)
    rows = results_tsv.read(root / "results.tsv")
    assert [(r.number, r.status) for r in rows] == [(0, "keep"), (1, "crash")]
    assert git(root, "status", "--porcelain") == ""
