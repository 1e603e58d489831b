"""`autoresearch status` lists the workers of a running parallel loop.

The CLI runs as a real process against a real repository. Live workers come from a detached
loop's control socket: here the socket is the real one (control.listen, the lock held, the
detached process's own Hub answering), with the loop's state a LoopState with workers built by
the test, as the parallel coordinator publishes it. A loop in another terminal has no socket:
then each worker's last recorded experiment is listed, and the listing says why.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
from conftest import git
from lsp_fixtures import config, make_repo, write_config

from autoresearch import control, detached
from autoresearch.experiment import Experiment
from autoresearch.lock import RepoLock
from autoresearch.protocol import LoopState, WorkerState

OWNER = "autoresearch run --detach, since 2026-11-30T23:00:00+00:00"


def status(root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "autoresearch", "status", "--dir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def parallel_state(root: Path, workers: list[WorkerState]) -> LoopState:
    return LoopState(
        root=str(root), phase="running", mode="loop", tag="nov30", current=14, workers=workers
    )


WORKERS = [
    WorkerState(
        worker=1, gpus=[0], phase="measuring", number=15, description="WD 0.1 -> 0.2",
        elapsed_s=125.0, timeout_s=600.0,
    ),
    WorkerState(
        worker=2, gpus=[1], phase="running", number=14, description="LR 0.01 -> 0.02",
        elapsed_s=35.4, timeout_s=600.0,
    ),
    WorkerState(worker=3, gpus=[2, 3], phase="idle"),
]  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    write_config(root, config())
    git(root, "add", "autoresearch.toml")
    git(root, "commit", "-qm", "config")
    git(root, "checkout", "-qb", "autoresearch/nov30")
    return root


@contextlib.contextmanager
def detached_loop(root: Path, state: LoopState) -> Iterator[None]:
    """The loop lock held and the control socket served as a detached loop serves them."""
    lock = RepoLock(root)
    lock.acquire(OWNER)
    server = control.listen(root)
    hub = detached.Hub(root, "2026-11-30T23:00:00+00:00")
    hub.session = SimpleNamespace(loop=SimpleNamespace(state=state))  # type: ignore[assignment]
    accept = threading.Thread(target=detached._accept, args=(server, hub), daemon=True)
    accept.start()
    try:
        yield
    finally:
        control.remove_stale(control.socket_path(root))
        server.close()
        lock.release()
        accept.join(10)


def test_status_lists_each_worker_of_a_detached_parallel_loop(repo: Path) -> None:
    with detached_loop(repo, parallel_state(repo, WORKERS)):
        text = status(repo)
        answer = json.loads(status(repo, "--json"))
    lines = text.splitlines()
    at = lines.index("workers: 2/3 busy")
    assert re.fullmatch(rf"loop: running \(pid \d+, {re.escape(OWNER)}\)", lines[at - 1])
    assert lines[at + 1 : at + 4] == [
        "  worker 1  GPU 0  #15 measuring 2m05s  WD 0.1 -> 0.2",
        "  worker 2  GPU 1  #14 running 35s  LR 0.01 -> 0.02",
        "  worker 3  GPUs 2,3  idle",
    ]
    assert lines[at + 4].startswith("metric: val_loss")
    workers = msgspec.convert(answer["workers"], list[WorkerState])
    assert workers == WORKERS


def test_status_of_a_one_at_a_time_loop_lists_no_workers(repo: Path) -> None:
    with detached_loop(repo, parallel_state(repo, [])):
        text = status(repo)
        answer = json.loads(status(repo, "--json"))
    assert re.search(rf"loop: running \(pid \d+, {re.escape(OWNER)}\)\nmetric: val_loss", text)
    assert "worker" not in text
    assert answer["workers"] == []


def test_status_of_a_loop_in_another_terminal_lists_each_workers_last_record(repo: Path) -> None:
    # The loop's records (as the ledger writes them), two workers' experiments among them.
    state = repo / ".autoresearch"
    state.mkdir(exist_ok=True)
    head = git(repo, "rev-parse", "HEAD")
    records = [
        Experiment(number=0, commit=head, status="keep", metric=1.0, description="baseline"),
        Experiment(
            number=1, commit=head, status="discard", metric=1.2, description="LR\t0.1",
            worker=1, gpus=[0],
        ),
        Experiment(
            number=2, commit=head, status="keep", metric=0.9, description="WD 0.2",
            worker=2, gpus=[1],
        ),
        Experiment(
            number=3, commit=head, status="crash", description="LR 5", worker=1, gpus=[0],
        ),
    ]  # fmt: skip
    encoder = msgspec.json.Encoder()
    (state / "experiments.jsonl").write_bytes(
        b"".join(encoder.encode(msgspec.structs.replace(e, tag="nov30")) + b"\n" for e in records)
    )
    lock = RepoLock(repo)
    lock.acquire("autoresearch run, since 2026-11-30T23:00:00+00:00")  # no socket
    try:
        text = status(repo)
    finally:
        lock.release()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("workers: "))
    assert lines[at].startswith("workers: no live state (only a detached loop answers")
    assert lines[at + 1 : at + 3] == [
        "  worker 1  GPU 0  last #3 crash  LR 5",
        "  worker 2  GPU 1  last #2 keep  WD 0.2",
    ]
    assert lines[at + 3].startswith("metric: val_loss")
    # Not running: no workers at all.
    assert "worker" not in status(repo)
