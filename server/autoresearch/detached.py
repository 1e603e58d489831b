"""The detached loop: its own process, session and log, outliving the editor and the terminal.

`spawn` starts `python -m autoresearch _detached` in a new session (no controlling terminal),
stdin from /dev/null, stdout and stderr appended to `.autoresearch/daemon.log`, and waits
until the loop holds the lock and answers on its socket (or says why it could not start).
`main` is that process: it wires the session, serves the control socket (control.py) and runs
the loop on its main thread. SIGTERM stops it after the running experiment (a second one
abandons it); SIGHUP is ignored, as no terminal is ours to lose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from . import config as cfg
from . import control, preflight, procs
from .agents.manual import ManualProposer, run_experiment
from .confine import check_state_paths
from .gpu import GpuMonitor, open_source
from .lock import RepoLock
from .loop import GUIDANCE_FILE, NOTIFICATIONS, Event, Loop, Progress
from .protocol import (
    Method,
    to_wire,
)
from .session_factory import Session, log_end, open_session

DAEMON_LOG = ".autoresearch/daemon.log"
OWNER = "autoresearch run --detach"
# How long `spawn` waits for the loop to finish its setup before trusting it runs.
READY_WAIT_S = 120.0
# Events a slow attached client may fall behind by before it is let go.
BACKLOG = 2000
# At the end: how long each attached client gets to take the last events.
FINISH_WAIT_S = 5.0
log = logging.getLogger("autoresearch.detached")


class DetachError(RuntimeError):
    """The detached loop could not start; the message says why and what to do."""


# ---- the starting side ------------------------------------------------------------------------


def check_can_detach(
    root: Path, config: cfg.Config | None = None, editor: bool = False
) -> cfg.Config:
    """What refuses a detached start before any process is made (nothing is written).
    `config`: the one a start request brings (else autoresearch.toml's); `editor`: an editor
    starts it and attaches (a manual loop needs one: its person presses Run Experiment)."""
    config = cfg.load(root) if config is None else config
    preflight.check_start(root, config)  # a bad config or tree: said here, before any process
    if config.agent.kind == "manual" and not editor:
        raise DetachError(
            "The manual agent waits for a person's Run Experiment, which only VS Code sends,"
            " so `autoresearch run --detach` cannot run it. Start it in VS Code (Autoresearch:"
            " Start Loop; it outlives the window, paused until you come back), or set [agent]"
            " kind to sweep or command in autoresearch.toml for a loop that edits by itself."
        )
    holder = RepoLock(root).held_elsewhere()
    if holder is not None:
        how = (
            "`autoresearch attach` follows it; `autoresearch stop` stops it."
            if OWNER in holder
            else "Stop it first (Ctrl-C in its terminal, or Stop Loop in VS Code)."
        )
        raise DetachError(f"A loop is already running in {root} ({holder}). {how}")
    try:
        control.check_socket_free(root)
    except control.ControlError as exc:
        raise DetachError(str(exc)) from None
    return config


def spawn(
    root: Path, limit: int | None, tag: str | None, editor: bool = False
) -> control.ControlReply:
    """Start the detached loop and return its first answer (pid, since when, state)."""
    check_can_detach(root, editor=editor)
    check_state_paths(root)
    (root / ".autoresearch").mkdir(exist_ok=True)
    log_file = root / DAEMON_LOG
    start = log_file.stat().st_size if log_file.exists() else 0
    args = [sys.executable, "-m", "autoresearch", "_detached", "--dir", str(root)]
    args += ["--loop", str(limit)] if limit is not None else []
    args += ["--tag", tag] if tag else []
    with open(log_file, "ab") as out:
        proc = procs.start_detached(args, root, out)  # its own session: no terminal
    try:
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DetachError(_why_it_ended(log_file, start, proc.returncode))
            reply = _ready(root, proc.pid)
            if reply is not None:
                return reply
            time.sleep(0.1)
        return control.ask(root, "hello")  # still in setup after minutes: it runs, say so
    finally:
        if proc.returncode is None:
            # The starter may live on (the VS Code daemon): reap the loop when it ends.
            threading.Thread(target=proc.wait, name="reap detached loop", daemon=True).start()


def _ready(root: Path, pid: int) -> control.ControlReply | None:
    """The loop's answer once its setup is done, None while it is not there yet."""
    try:
        reply = control.ask(root, "hello")
    except (control.ControlError, OSError):
        return None
    if reply.pid != pid or reply.state is None or reply.state.phase in ("idle", "setup"):
        return None
    if reply.state.phase == "failed":
        raise DetachError(reply.state.message)
    return reply


def _why_it_ended(log_file: Path, start: int, code: int) -> str:
    with open(log_file, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    said = [line.split("ERROR ", 1)[1] for line in text.splitlines() if " ERROR " in line]
    reason = said[0] if said else (text.strip().splitlines() or ["no output"])[-1]
    return f"The detached loop ended at once (exit {code}): {reason} (see {DAEMON_LOG})."


# ---- the detached process ---------------------------------------------------------------------


class Subscriber:
    """One connection: a reader thread for requests, a writer thread for replies and events
    (a queue, so a client that stops reading never blocks the loop)."""

    def __init__(self, sock: socket.socket, hub: Hub) -> None:
        self.sock = sock
        self.hub = hub
        self.subscribed = False
        self.editor = False  # subscribed as an editor (ControlRequest.editor)
        self.out: queue.Queue[bytes | None] = queue.Queue(BACKLOG)
        self._writer = threading.Thread(target=self._write, name="control writer", daemon=True)
        self._writer.start()
        threading.Thread(target=self._read, name="control reader", daemon=True).start()

    def put(self, data: bytes) -> bool:
        try:
            self.out.put_nowait(data)
            return True
        except queue.Full:
            self.close()
            return False

    def close(self) -> None:
        """Hang up now (a client that fell behind, or one that hung up itself)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(queue.Full):
            self.out.put_nowait(None)

    def finish(self, timeout: float) -> None:
        """The loop ended: send what is queued (its last state), then hang up."""
        with contextlib.suppress(queue.Full):
            self.out.put(None, timeout=timeout)
        self._writer.join(timeout)

    def _write(self) -> None:
        while (data := self.out.get()) is not None:
            try:
                self.sock.sendall(data)
            except OSError:
                break
        self.hub.drop(self)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _read(self) -> None:
        with self.sock.makefile("rb") as lines:
            while True:
                try:
                    line = lines.readline(control.MAX_LINE)
                except (OSError, ValueError):
                    break
                if not line:
                    break
                reply, request = self.hub.answer(line)
                self.put(msgspec.json.encode(reply) + b"\n")
                if request is not None and request.op == "subscribe" and not self.subscribed:
                    # Events only after the reply; first the locks as they stand, so a window
                    # that attaches late locks what the loop locked when it started.
                    with self.hub.lock:
                        if self.hub.last_locks is not None:
                            self.put(self.hub.last_locks)
                        self.subscribed, self.editor = True, request.editor
        self.close()


class Hub:
    """The detached loop's controls and its attached clients."""

    def __init__(self, root: Path, started: str) -> None:
        self.root = root
        self.started = started
        self.session: Session | None = None
        self.lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        # The loop's latest locksChanged event, encoded, for clients that attach later.
        self.last_locks: bytes | None = None
        self.ending = False  # the loop has ended: its clients are being let go

    @property
    def loop(self) -> Loop | None:
        return self.session.loop if self.session else None

    def emit(self, event: Event) -> None:
        if isinstance(event, Progress):
            log.info("%s", event.text)
            self.publish("progress", {"text": event.text})
        else:
            name = NOTIFICATIONS[type(event)]
            self.publish(name, to_wire(event), keep=name == Method.LOCKS_CHANGED)

    def publish(self, name: str, payload: Any, keep: bool = False) -> None:
        data = msgspec.json.encode(control.ControlEvent(event=name, payload=payload)) + b"\n"
        with self.lock:
            if keep:
                self.last_locks = data
            subscribers = [s for s in self._subscribers if s.subscribed]
        for sub in subscribers:
            sub.put(data)

    def add(self, sock: socket.socket) -> None:
        with self.lock:
            self._subscribers.append(Subscriber(sock, self))

    def drop(self, sub: Subscriber) -> None:
        with self.lock:
            if sub not in self._subscribers:
                return
            self._subscribers.remove(sub)
            last_editor = sub.editor and not any(s.editor for s in self._subscribers)
        if last_editor and not self.ending:
            self._editors_gone()

    def _editors_gone(self) -> None:
        """A manual loop needs its person: with no editor attached it pauses (after an
        experiment they started) and waits, their edit untouched, for an editor's Resume."""
        session = self.session
        if session is None or not isinstance(session.proposer, ManualProposer):
            return
        session.loop.pause()
        self.emit(
            Progress(
                "no editor is attached: the manual loop pauses (after a running experiment)"
                " until an editor resumes it"
            )
        )

    def finish_all(self) -> None:
        with self.lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.finish(FINISH_WAIT_S)

    def answer(self, line: bytes) -> tuple[control.ControlReply, control.ControlRequest | None]:
        """The reply to one request line, and the request when it was answered."""
        try:
            request = msgspec.json.decode(line, type=control.ControlRequest)
        except msgspec.DecodeError as exc:
            return control.ControlReply(ok=False, message=f"not a control request: {exc}"), None
        loop = self.loop
        if loop is None:
            return control.ControlReply(ok=False, message="the loop is being set up"), None
        ok, message = True, ""
        if request.op == "stop":
            loop.stop(now=request.now)
            message = "stopping now" if request.now else "stopping after this experiment"
        elif request.op == "pause":
            loop.pause()
            message = "pausing after this experiment"
        elif request.op == "resume":
            loop.resume()
            message = "resumed"
        elif request.op == "steer":
            path = self.root / GUIDANCE_FILE
            path.write_text(request.text.strip() + "\n" if request.text.strip() else "")
            message = "the edit step reads it from the next experiment on"
        elif request.op == "run_experiment":
            proposer = self.session.proposer if self.session else None
            kind = loop.config.agent.kind
            ok, message = run_experiment(proposer, kind, loop.state.phase, request.text)
        elif request.op not in ("hello", "state", "subscribe"):
            ok = False
            message = f"unknown op {request.op!r}; one of {', '.join(control.OPS)}"
        reply = control.ControlReply(
            ok=ok, message=message, pid=os.getpid(), started=self.started, state=loop.state
        )
        return reply, request


def main(root: Path, limit: int | None, tag: str | None) -> int:
    """The detached process: stdout and stderr are the daemon log already."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    hub = Hub(root, started)
    monitor = GpuMonitor(open_source(root=root)).start()
    try:
        hub.session = open_session(
            root, None, limit, tag, owner=f"{OWNER}, since {started}", emit=hub.emit,
            gpu=monitor.latest,
        )  # fmt: skip
    except Exception as exc:
        monitor.stop()
        log.error("%s", exc)
        return 2
    loop = hub.session.loop
    try:
        server = control.listen(root)
    except (control.ControlError, OSError) as exc:
        monitor.stop()
        hub.session.release()
        log.error("the loop's control socket: %s", exc)
        return 2
    threading.Thread(target=_accept, args=(server, hub), name="control", daemon=True).start()
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        loop.stop(now=len(received) > 1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("detached loop started in %s (pid %d, loop=%s, tag=%s)", root, os.getpid(), limit, tag)
    code = 0
    try:
        loop.run()
    except Exception as exc:
        log_end(log, root, exc)
        code = 1
    finally:
        hub.ending = True  # its clients go now: no pause for that
        # The socket goes before the lock: whoever sees the lock free finds no socket either;
        # the lock goes before the attached clients hear the end, so they find it free.
        control.remove_stale(control.socket_path(root))
        server.close()
        monitor.stop()
        hub.session.release()
        log.info("detached loop in %s: %s", root, loop.state.phase)
        hub.finish_all()
    return code


def _accept(server: socket.socket, hub: Hub) -> None:
    while True:
        try:
            sock, _ = server.accept()
        except OSError:
            return
        hub.add(sock)
