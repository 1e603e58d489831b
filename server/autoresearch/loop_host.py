"""One loop of one workspace root, hosted on its own thread for the daemon.

The host holds the repository's loop lock while the loop runs, offers its controls (stop,
pause, resume, Run Experiment) to request threads, and forwards its events to the client:
states throttled to what changed, recorded experiments into the in-memory records, run.log
tailed. It outlives its loop, so the state of a loop that ended can still be shown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec

from . import config as cfg
from .agents.base import Proposer
from .agents.manual import run_experiment
from .lock import RepoLock
from .loop import NOTIFICATIONS, Event, Loop, Progress
from .measure import RUN_LOG, log_path
from .protocol import (
    Ack,
    ExperimentRecorded,
    GpuStatus,
    LogAppended,
    LoopState,
    Method,
)
from .records import Records
from .session_factory import log_end, open_session
from .tailer import LogTailer

# An elapsed-time-only state change is sent at most this often.
TICK_S = 1.0
# On exit: how long to wait for a loop to record its abandoned experiment.
CLOSE_WAIT_S = 30.0
LOCK_OWNER = "autoresearch serve (VS Code)"


class Client(Protocol):
    """What a workspace needs from the server; every method is callable from any thread."""

    def post(self, method: str, payload: msgspec.Struct) -> None:
        """Send a notification."""
        ...

    def say(self, text: str) -> None:
        """A line for people (the loop's progress lines), shown in the client's log."""
        ...

    def gpu_status(self) -> GpuStatus:
        """The GPU monitor's latest reading."""
        ...


class LoopHost:
    def __init__(
        self,
        root: Path,
        client: Client,
        records: Records,
        log: logging.Logger,
        on_end: Callable[[], None],
    ) -> None:
        self.root = root
        self.loop: Loop | None = None
        self._client = client
        self._records = records
        self._log = log
        self._on_end = on_end
        self._proposer: Proposer | None = None
        self._lock: RepoLock | None = None
        self._thread: threading.Thread | None = None
        self._settled = threading.Event()
        self._tailer: LogTailer | None = None
        self._log_numbers: dict[int, int | None] = {}
        self._sent: LoopState | None = None
        self._sent_at = 0.0

    def start(self, config: cfg.Config | None, limit: int | None, tag: str | None) -> None:
        """Take the lock, save or load the config, make the loop, and run it on a thread."""
        session = open_session(
            self.root,
            config,
            limit,
            tag,
            owner=LOCK_OWNER,
            emit=self._on_event,
            gpu=self._gpu,
            editor=getattr(self._client, "ask_editor", None),
        )
        self.loop, self._proposer, self._lock = session.loop, session.proposer, session.lock
        # Created now, so the run.log of an earlier run is skipped and each new one followed.
        self._tailer = LogTailer(self.root / RUN_LOG, self._log_appended).start()
        self._thread = threading.Thread(
            target=self._run, name=f"loop {self.root.name}", daemon=True
        )
        self._thread.start()

    def wait_settled(self, timeout: float) -> LoopState:
        """Wait for the session setup to be done (or to fail) and return the state then."""
        self._settled.wait(timeout)
        assert self.loop is not None
        return self.loop.state

    @property
    def live(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- controls, from request threads ------------------------------------------------------

    def stop(self, now: bool) -> None:
        loop = self.loop
        if loop is None or not self.live:
            return
        # Manual mode: while a person has not started an experiment, there is none to finish,
        # and the loop stops at once (ManualProposer.interrupted).
        loop.stop(now=now)

    def run_experiment(self, description: str) -> Ack:
        loop, proposer = self.loop, self._proposer
        if loop is None or not self.live:
            return Ack(False, f"No loop is running in {self.root}. Start one with agent manual.")
        return Ack(*run_experiment(proposer, loop.config.agent.kind, loop.state.phase, description))

    def close(self) -> None:
        """Client gone: abandon the running experiment (recorded as interrupted), then wait."""
        if self.loop is not None and self.live:
            self.loop.stop(now=True)
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT_S)

    # ---- the loop's thread ---------------------------------------------------------------------

    def _run(self) -> None:
        assert self.loop is not None
        try:
            self.loop.run()
        except Exception as exc:
            log_end(self._log, self.root, exc)
        finally:
            self._settled.set()
            if self._tailer is not None:
                self._tailer.stop()
            if self._lock is not None:
                self._lock.release()
            self._flush_state()
            self._log.info("loop in %s: %s", self.root, self.loop.state.phase)
            self._on_end()

    def _on_event(self, event: Event) -> None:
        # Never let a notification problem break the loop: it runs on regardless of the client.
        try:
            if isinstance(event, LoopState):
                self._on_state(event)
            elif isinstance(event, Progress):
                self._log.info("%s", event.text)
                self._client.say(f"{self.root.name}: {event.text}")
            else:
                if isinstance(event, ExperimentRecorded):
                    self._records.invalidate()  # the ledger wrote it: read on next use
                self._client.post(NOTIFICATIONS[type(event)], event)
        except Exception:
            self._log.exception("forwarding a loop event failed")

    def _on_state(self, state: LoopState) -> None:
        previous = self._sent
        if state.phase not in ("idle", "setup"):
            if previous is not None and previous.phase == "setup":
                self._records.invalidate()  # setup may have reconciled or recovered rows
            self._settled.set()
        now = time.monotonic()
        recent = previous is not None and now - self._sent_at < TICK_S
        if recent and _same_but_time(previous, state):  # type: ignore[arg-type]
            return
        self._sent, self._sent_at = state, now
        self._client.post(Method.STATE_CHANGED, sessions_newest_first(state))

    def _flush_state(self) -> None:
        if self.loop is not None and self.loop.state != self._sent:
            self._sent = self.loop.state
            self._client.post(Method.STATE_CHANGED, sessions_newest_first(self.loop.state))

    def _log_appended(self, inode: int, text: str) -> None:
        if inode not in self._log_numbers:
            if len(self._log_numbers) > 64:
                self._log_numbers.clear()
            self._log_numbers[inode] = self._number_of_log(inode)
        event = LogAppended(root=str(self.root), number=self._log_numbers[inode], text=text)
        self._client.post(Method.LOG_APPENDED, event)

    def _number_of_log(self, inode: int) -> int | None:
        """Which experiment a run.log belongs to: the runs/ file it is a hard link of. (The
        loop's current number is not enough: the last chunk of a run may be read after the
        next one started.)"""
        loop = self.loop
        current = loop.state.current if loop is not None else None
        if loop is None or current is None:
            return None
        runs = log_path(self.root, loop.tag, 0).parent
        for n in (current, current - 1):
            # <tag>-<n>.log, and its noise/confirmation/guard siblings <tag>-<n>.<what>.log
            for path in [log_path(self.root, loop.tag, n), *runs.glob(f"{loop.tag}-{n}.*.log")]:
                try:
                    if path.stat().st_ino == inode:
                        return n
                except OSError:
                    continue
        return None

    def _gpu(self) -> GpuStatus:
        return self._client.gpu_status()


def sessions_newest_first(state: LoopState) -> LoopState:
    """Sessions newest first, as the results tree lists them (the loop keeps file order)."""
    return msgspec.structs.replace(state, sessions=list(reversed(state.sessions)))


def _same_but_time(a: LoopState, b: LoopState) -> bool:
    return msgspec.structs.replace(a, elapsed_s=None) == msgspec.structs.replace(b, elapsed_s=None)
