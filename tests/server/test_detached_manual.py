"""A manual loop started from the editor outlives it, paused: when the last editor goes, the
experiment the person started finishes and is recorded, then nothing further starts; the loop
waits, the person's edit untouched, until an editor attaches again and Resumes it.

The real daemon over stdio (lsp_fixtures), killed with SIGKILL as an editor goes; the loop's
socket spoken to directly; real repositories and processes.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lsp_fixtures import Client, config, daemon, git, make_repo
from test_detached import STARTED, _no_detached_leftovers, gone, recorded, tsv_rows, until

from autoresearch import control
from autoresearch.protocol import LoopState, Method

__all__ = ["_no_detached_leftovers"]  # kills what a failing test left running

STATE, RECORDED = Method.STATE_CHANGED, Method.EXPERIMENT_RECORDED

# An experiment (X changed) runs until the test opens the gate; the baseline does not wait.
GATED = """\
import os
import time

X = 1.0
while X != 1.0 and not os.path.exists({gate!r}):
    time.sleep(0.05)
print(f"val_loss: {{abs(X - 0.7):.6f}}")
"""


def manual_repo(tmp: Path) -> tuple[Path, Path]:
    gate = tmp / "gate"
    return make_repo(tmp / "repo", {"train.py": GATED.format(gate=str(gate))}), gate


def manual() -> dict[str, Any]:
    return {**config(timeout=600), "agent": {"kind": "manual"}}


def edit(root: Path, x: str, note: str = "") -> str:
    """The person's edit of train.py (in scope); returns the file's new text."""
    path = root / "train.py"
    text, changed = re.subn(r"^X = .*$", f"X = {x}{note}", path.read_text(), count=1, flags=re.M)
    assert changed == 1
    path.write_text(text)
    return text


def loop_state(root: Path) -> LoopState:
    state = control.ask(root, "state").state
    assert state is not None
    return state


async def start(client: Client, root: Path) -> int:
    """Start Loop (detached, as the extension asks) and wait for the person's turn."""
    state = await client.request(
        Method.START, {"root": str(root), "config": manual(), "detach": True}
    )
    assert state["agent"] == "manual" and state["mode"] == "loop"
    pid = control.ask(root, "hello").pid
    STARTED.append(pid)
    assert pid != client._server.pid and os.getsid(pid) == pid  # a process of its own
    await until_phase(client, root, "editing")
    return pid


async def until_phase(client: Client, root: Path, phase: str, timeout: float = 60) -> None:
    """The daemon's state request says `phase` (attached late, it may not send it as news)."""
    deadline = time.monotonic() + timeout
    while (await client.request(Method.STATE, {"root": str(root)}))["phase"] != phase:
        assert time.monotonic() < deadline, f"timed out waiting for the phase {phase}"
        await asyncio.sleep(0.05)


def last_phase(client: Client) -> str:
    """The phase of the latest state notification ("" before any)."""
    states = client.of(STATE)
    return states[-1]["phase"] if states else ""


async def kill(client: Client) -> None:
    """The editor goes with no goodbye: its daemon is killed (SIGKILL)."""
    client._server.kill()
    await client._server.wait()


async def test_editor_gone_mid_experiment_then_paused_and_resumed_by_a_new_editor(
    tmp_path: Path,
) -> None:
    root, gate = manual_repo(tmp_path)
    async with daemon() as client:
        pid = await start(client, root)
        edit(root, "0.75")
        ack = await client.request(
            Method.RUN_EXPERIMENT, {"root": str(root), "description": "X to 0.75"}
        )
        assert ack == {"ok": True, "message": "running the experiment"}
        await client.until(lambda: last_phase(client) == "running")
        await kill(client)

    # The experiment the person started runs on, past the editor, and is recorded.
    assert not gone(pid) and recorded(root) == 1
    gate.touch()
    until(lambda: recorded(root) == 2, "the running experiment to be recorded")
    # Then the loop pauses: nothing further starts, and Run Experiment is refused until Resume.
    until(lambda: loop_state(root).phase == "paused", "the manual loop to pause")
    state = loop_state(root)
    assert state.current is None and state.agent == "manual"
    refused = control.ask(root, "run_experiment", text="too soon")
    assert not refused.ok and "paused: Resume it, then Run Experiment" in refused.message
    # The person edits meanwhile (in a terminal, another editor): theirs, never set aside.
    mine = edit(root, "0.72", "  # tried while the loop was paused")
    assert (
        "no editor is attached: the manual loop pauses"
        in (root / ".autoresearch/daemon.log").read_text()
    )

    async with daemon() as again:
        shown = await again.request(Method.STATE, {"root": str(root)})
        assert shown["phase"] == "paused" and shown["agent"] == "manual"
        assert shown["mode"] == "loop"  # a live loop: Resume and Stop are offered
        assert (root / "train.py").read_text() == mine
        await again.request(Method.RESUME, {"root": str(root)})
        await again.until(lambda: last_phase(again) == "editing")
        assert (root / "train.py").read_text() == mine  # Resume did not touch it either
        ack = await again.request(
            Method.RUN_EXPERIMENT, {"root": str(root), "description": "X to 0.72"}
        )
        assert ack["ok"], ack
        exp = (await again.until(lambda: again.of(RECORDED)))[-1]["experiment"]
        assert exp["number"] == 2 and exp["description"] == "X to 0.72"
        assert "X = 0.72  # tried while" in git(root, "show", f"{exp['commit']}:train.py")
        await again.until(lambda: last_phase(again) == "editing")
        await again.request(Method.STOP, {"root": str(root)})
        await again.until(lambda: any(p["phase"] == "stopped" for p in again.of(STATE)))
        until(lambda: gone(pid), "the detached loop to end")
    assert recorded(root) == tsv_rows(root) == 3
    assert not control.socket_path(root).exists()


async def test_editor_gone_while_the_person_edits_pauses_at_once_their_edit_kept(
    tmp_path: Path,
) -> None:
    root, _ = manual_repo(tmp_path)
    async with daemon() as client:
        pid = await start(client, root)
        half_done = edit(root, "0.5", "  # still thinking")
        await kill(client)
    until(lambda: loop_state(root).phase == "paused", "the manual loop to pause")
    assert not gone(pid) and recorded(root) == 1  # the baseline only: nothing ran
    assert (root / "train.py").read_text() == half_done
    assert git(root, "status", "--porcelain", "train.py") == "M train.py"  # still uncommitted

    async with daemon() as again:
        shown = await again.request(Method.STATE, {"root": str(root)})
        assert shown["phase"] == "paused"
        # Run Experiment while paused: refused, saying what to do; nothing recorded.
        late = await again.request(Method.RUN_EXPERIMENT, {"root": str(root)})
        assert not late["ok"] and "Resume it" in late["message"]
        await again.request(Method.RESUME, {"root": str(root)})
        await again.until(lambda: last_phase(again) == "editing")
        # Stop while the person edits: at once (no experiment to finish), their edit kept.
        await again.request(Method.STOP, {"root": str(root)})
        await again.until(lambda: any(p["phase"] == "stopped" for p in again.of(STATE)))
        until(lambda: gone(pid), "the detached loop to end")
    assert (root / "train.py").read_text() == half_done
    assert recorded(root) == tsv_rows(root) == 1


async def test_only_the_last_editor_going_pauses_and_a_terminal_follower_does_not_count(
    tmp_path: Path,
) -> None:
    root, gate = manual_repo(tmp_path)
    follower = None
    try:
        async with daemon() as first, daemon() as second:
            pid = await start(first, root)
            shown = await second.request(Method.STATE, {"root": str(root)})  # attaches
            assert shown["phase"] == "editing"
            follower = subprocess.Popen(  # `autoresearch attach` follows; it has no Run Experiment
                [sys.executable, "-m", "autoresearch", "attach", "--dir", str(root)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            assert follower.stdout is not None
            assert "attached to the loop" in follower.stdout.readline()
            await kill(first)
            # One editor is left: the loop goes on with its person; after the experiment they
            # start it waits for their next edit (a pause would show instead).
            edit(root, "0.75")
            ack = await second.request(
                Method.RUN_EXPERIMENT, {"root": str(root), "description": "X to 0.75"}
            )
            assert ack["ok"], ack
            gate.touch()
            await second.until(lambda: second.of(RECORDED))
            await second.until(lambda: last_phase(second) in ("editing", "paused"))
            assert last_phase(second) == "editing"
            await kill(second)
        until(lambda: loop_state(root).phase == "paused", "the manual loop to pause")
        assert follower.poll() is None  # the follower is still attached
        assert not gone(pid) and recorded(root) == 2
        control.ask(root, "stop")
        until(lambda: gone(pid), "the detached loop to end")
        assert follower.wait(30) == 0
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()


async def test_pause_while_the_person_edits_holds_at_once_in_the_daemon_too(
    tmp_path: Path,
) -> None:
    """The same pause from the Pause command, for a loop in the daemon (a start without
    detach): shown at once, since no experiment runs; Resume gives the person their turn back."""
    root, _ = manual_repo(tmp_path)
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": manual()})
        assert not control.socket_path(root).exists()  # in the daemon, not detached
        await client.until(lambda: last_phase(client) == "editing")
        mine = edit(root, "0.6")
        await client.request(Method.PAUSE, {"root": str(root)})
        await client.until(lambda: last_phase(client) == "paused")
        late = await client.request(Method.RUN_EXPERIMENT, {"root": str(root)})
        assert not late["ok"] and "Resume it" in late["message"]
        await client.request(Method.RESUME, {"root": str(root)})
        await client.until(lambda: last_phase(client) == "editing")
        assert (root / "train.py").read_text() == mine
        await client.request(Method.PAUSE, {"root": str(root)})
        await client.until(lambda: last_phase(client) == "paused")
        await client.request(Method.STOP, {"root": str(root)})  # a stop while paused: at once
        await client.until(lambda: last_phase(client) == "stopped")
    assert (root / "train.py").read_text() == mine
    assert recorded(root) == tsv_rows(root) == 1
