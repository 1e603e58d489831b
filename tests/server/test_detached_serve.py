"""`autoresearch serve` and the detached loop: Start Loop with detach runs the loop in its own
process; the daemon relays its events and controls it, and when the daemon (the editor) goes,
the loop keeps recording; a new daemon attaches to it and shows what was recorded meanwhile.

The real daemon over stdio (lsp_fixtures), a real repository, real processes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from lsp_fixtures import config, daemon, make_repo, write_config
from test_detached import STARTED, _no_detached_leftovers, gone, recorded, tsv_rows, until

from autoresearch import control
from autoresearch.protocol import Method

__all__ = ["_no_detached_leftovers"]  # kills what a failing test left running

STATE, RECORDED, LOCKS = Method.STATE_CHANGED, Method.EXPERIMENT_RECORDED, Method.LOCKS_CHANGED
ACTIVE = ("baseline", "editing", "committing", "running", "measuring", "deciding", "paused")


async def test_serve_killed_and_restarted_while_the_loop_keeps_recording(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    async with daemon() as client:
        started = await client.request(
            Method.START, {"root": str(root), "config": config(), "detach": True}
        )
        assert started["mode"] == "loop" and started["phase"] in ACTIVE
        pid = control.ask(root, "hello").pid
        STARTED.append(pid)
        assert pid != client._server.pid and os.getsid(pid) == pid  # its own process
        await client.until(lambda: client.of(RECORDED))  # relayed live
        assert client.of(LOCKS)[0]["locked"] == ["train.py"]
        client._server.kill()  # the editor's daemon dies with no goodbye (SIGKILL)
        await client._server.wait()
    seen = recorded(root)
    until(lambda: recorded(root) >= seen + 3, "three experiments recorded while no one watched")
    assert not gone(pid)

    async with daemon() as again:
        state = await again.request(Method.STATE, {"root": str(root)})
        assert state["mode"] == "loop" and state["phase"] in ACTIVE
        # The window that attaches locks the scope again (the last one unlocked at its exit).
        locks = await again.until(lambda: again.of(LOCKS))
        assert locks[-1]["locked"] == ["train.py"]
        page = await again.request(
            Method.EXPERIMENTS, {"root": str(root), "tag": state["tag"], "limit": 1000}
        )
        assert page["total"] >= seen + 3  # the experiments recorded meanwhile
        before = page["total"]
        await again.until(
            lambda: any(r["experiment"]["number"] >= before for r in again.of(RECORDED))
        )
        paused = await again.request(Method.PAUSE, {"root": str(root)})
        assert paused["mode"] == "loop"
        await again.until(lambda: any(p["phase"] == "paused" for p in again.of(STATE)))
        await again.request(Method.RESUME, {"root": str(root)})
        await again.request(Method.STOP, {"root": str(root)})
        await again.until(lambda: any(p["phase"] == "stopped" for p in again.of(STATE)))
        await again.until(lambda: again.of(LOCKS)[-1]["locked"] == [])
        until(lambda: gone(pid), "the detached loop to end")
        final = await again.request(Method.STATE, {"root": str(root)})
        assert final["phase"] == "stopped"  # how it ended stays shown, as for a loop of its own
    assert recorded(root) == tsv_rows(root)
    assert not control.socket_path(root).exists()


async def test_two_daemons_attach_to_the_one_loop(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    write_config(root, config())
    async with daemon() as first, daemon() as second:
        await first.request(Method.START, {"root": str(root), "detach": True})
        STARTED.append(control.ask(root, "hello").pid)
        state = await second.request(Method.STATE, {"root": str(root)})
        assert state["mode"] == "loop" and state["phase"] in ACTIVE
        await first.until(lambda: first.of(RECORDED))
        await second.until(lambda: second.of(RECORDED))
        refused = None
        try:
            await second.request(Method.START, {"root": str(root), "detach": True})
        except Exception as exc:  # the daemon's user error
            refused = str(exc)
        assert refused and "already running" in refused and "detached, pid" in refused
        await second.request(Method.STOP, {"root": str(root), "now": True})
        for client in (first, second):
            await client.until(lambda c=client: any(p["phase"] == "stopped" for p in c.of(STATE)))


async def test_a_detached_loop_killed_while_attached_is_recovered_by_the_next_start(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": config(), "detach": True})
        pid = control.ask(root, "hello").pid
        STARTED.append(pid)
        await client.until(lambda: client.of(RECORDED))
        os.kill(pid, signal.SIGKILL)
        # The daemon hears the loop go: the scope unlocked, the disk's state shown (not a phase
        # of a loop that no longer runs).
        await client.until(lambda: client.of(LOCKS)[-1]["locked"] == [])
        await client.until(lambda: client.of(STATE)[-1]["phase"] == "idle")
        state = await client.request(Method.STATE, {"root": str(root)})
        assert state["phase"] == "idle"
        # The next start recovers as after any crash, and the tables agree.
        again = await client.request(Method.START, {"root": str(root), "loop": 1, "detach": True})
        STARTED.append(control.ask(root, "hello").pid)
        assert again["mode"] == "loop"
        await client.until(lambda: client.of(STATE)[-1]["phase"] == "stopped", timeout=120)
    until(lambda: not control.socket_path(root).exists(), "the second loop to end")
    assert recorded(root) == tsv_rows(root)


async def test_a_detached_start_refused_by_another_loop_writes_nothing(tmp_path: Path) -> None:
    from autoresearch.lock import RepoLock

    root = make_repo(tmp_path / "repo")
    holder = RepoLock(root)
    holder.acquire("autoresearch run")  # a loop in a terminal
    try:
        async with daemon() as client:
            with pytest.raises(Exception, match="already running") as refused:
                await client.request(
                    Method.START, {"root": str(root), "config": config(), "detach": True}
                )
            assert "(pid" in str(refused.value) and "Ctrl-C in its terminal" in str(refused.value)
    finally:
        holder.release()
    assert not (root / "autoresearch.toml").exists()  # the config it brought was not saved
    assert not control.socket_path(root).exists()


async def test_a_loop_in_the_daemon_that_fails_logs_its_traceback(tmp_path: Path) -> None:
    """The daemon's own loop (not detached) too: its stop by an error is in daemon.log with the
    traceback, not only its message."""
    root = make_repo(tmp_path / "repo", {"train.py": "X = 1.0\nraise SystemExit(3)\n"})
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": config()})
        await client.until(lambda: any(p["phase"] == "failed" for p in client.of(STATE)))
    text = (root / ".autoresearch" / "daemon.log").read_text()
    assert "ERROR loop in" in text and "The baseline run failed (exit 3)" in text
    assert "Traceback (most recent call last)" in text and "LoopStopped" in text
