"""A big session read by a fresh daemon: no request ever sees it half-loaded.

Issue #21: at 100,000 experiments some fresh daemons answered the first `autoresearch/state`
with `sessions: []` (the observer's first poll threw the records away in the middle of their
load) and sent nothing afterwards, so the view said "No experiments in this repository yet."
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from jsonrpc import Daemon
from scale import TAG, session_repo

sys.path.pop(0)

N = 100_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield session_repo(tmp_path_factory.mktemp("big"), N)


@pytest.mark.parametrize("attempt", range(6))
def test_the_first_state_of_a_fresh_daemon_holds_the_whole_big_session(
    big: Path, attempt: int
) -> None:
    daemon = Daemon(cwd=big)
    try:
        state = daemon.request("autoresearch/state", {"root": str(big)}, timeout=300)
        sessions = {s["tag"]: s for s in state["sessions"]}
        assert TAG in sessions, f"attempt {attempt}: first state without the session: {state}"
        summary = sessions[TAG]
        assert summary["total"] == N
        counts = summary["counts"]
        assert counts["keep"] + counts["discard"] + counts["crash"] == N - 1
    finally:
        daemon.close()
