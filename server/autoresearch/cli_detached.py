"""`autoresearch run --detach | stop | attach`: the CLI's face of the detached loop."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import control
from .lock import RepoLock
from .protocol import Method

# How often `stop` looks whether the loop has ended.
POLL_S = 0.2


def add_commands(sub: Any) -> None:
    """The subcommands, on the CLI's parser."""
    stop = sub.add_parser("stop", help="stop the detached loop (after its running experiment)")
    stop.add_argument("--dir", type=Path, default=Path("."), help="repository (default: .)")
    stop.add_argument("--now", action="store_true", help="abandon the running experiment")
    stop.add_argument("--no-wait", action="store_true", help="return without waiting")
    stop.set_defaults(func=cmd_stop)

    attach = sub.add_parser("attach", help="follow the detached loop's progress lines")
    attach.add_argument("--dir", type=Path, default=Path("."), help="repository (default: .)")
    attach.set_defaults(func=cmd_attach)

    inner = sub.add_parser("_detached")  # the detached process itself (run --detach starts it)
    inner.add_argument("--dir", type=Path, required=True)
    inner.add_argument("--loop", type=int)
    inner.add_argument("--tag")
    inner.set_defaults(func=lambda a: _detached_main(a))


def _root(path: Path) -> Path:
    from .cli import _root as checked

    return checked(path)


def _user_error(text: str) -> Exception:
    """An error the user fixes: the CLI prints it without a traceback and exits 2."""
    from .cli import UserError

    return UserError(text)


def run_detached(root: Path, limit: int | None, tag: str | None) -> int:
    from .detached import DetachError, spawn

    try:
        reply = spawn(root, limit, tag)
    except (DetachError, control.ControlError, ValueError, RuntimeError, OSError) as exc:
        raise _user_error(str(exc)) from None
    state = reply.state
    phase = state.phase if state else "?"
    branch = f" on {state.branch}" if state and state.branch else ""
    print(f"detached loop running in {root}{branch} (pid {reply.pid}, phase {phase})")
    print("its log: .autoresearch/daemon.log")
    print("follow it: autoresearch attach; stop it: autoresearch stop; autoresearch status")
    return 0


def _no_detached_loop(root: Path) -> Exception:
    holder = RepoLock(root).held_elsewhere()
    if holder is not None:
        return _user_error(
            f"The loop in {root} is not detached ({holder}): stop it where it runs (Ctrl-C in"
            " its terminal, or Stop in VS Code)."
        )
    return _user_error(
        f"No loop is running in {root}: nothing to stop or follow. `autoresearch run --detach`"
        " starts one."
    )


def cmd_stop(args: argparse.Namespace) -> int:
    root = _root(args.dir)
    if not control.running(root):
        raise _no_detached_loop(root)
    try:
        reply = control.ask(root, "stop", now=args.now)
    except control.ControlError as exc:
        raise _user_error(str(exc)) from None
    print(f"{reply.message} (pid {reply.pid})")
    if args.no_wait:
        return 0
    print("waiting for it to end (Ctrl-C stops waiting; the loop still stops)", flush=True)
    while control.running(root):
        time.sleep(POLL_S)
    print("the loop has stopped")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    root = _root(args.dir)
    if not control.running(root):
        raise _no_detached_loop(root)
    try:
        conn = control.Connection(root)
        reply = conn.ask("subscribe")
    except control.ControlError as exc:
        raise _user_error(str(exc)) from None
    phase = reply.state.phase if reply.state else "?"
    print(f"attached to the loop in {root} (pid {reply.pid}, since {reply.started}, {phase})")
    print("Ctrl-C detaches; the loop runs on (autoresearch stop stops it)", flush=True)
    try:
        for event in conn.events():
            if event.event == "progress":
                print(event.payload.get("text", ""), flush=True)
            elif event.event == Method.STATE_CHANGED and event.payload.get("phase") != phase:
                phase = event.payload.get("phase")
                print(f"[{phase}] {event.payload.get('message', '')}", flush=True)
    except KeyboardInterrupt:
        print("\ndetached from the loop; it runs on", file=sys.stderr)
        return 0
    finally:
        conn.close()
    print("the loop has ended")
    return 0


def _detached_main(args: argparse.Namespace) -> int:
    from .detached import main

    return main(Path(os.path.abspath(args.dir)), args.loop, args.tag)  # as the starter named it
