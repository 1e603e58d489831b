"""The daemon attached to a detached loop of its workspace: the loop's events relayed to VS Code
as the notifications of a loop of its own, and its controls sent over the loop's socket.

Attaching is not observing: observer.py reads a loop another tool runs, from its files, with no
controls; an attachment speaks to our own detached loop and gets every control and live state.
When the daemon goes, only the attachment ends; the loop runs on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec

from . import control
from .loop import NOTIFICATIONS
from .loop_host import Client, sessions_newest_first
from .measure import RUN_LOG
from .protocol import Ack, ExperimentRecorded, LogAppended, LoopState, Method
from .records import Records
from .tailer import LogTailer

# The event each relayed notification carries, by name.
_EVENT_TYPES = {name: kind for kind, name in NOTIFICATIONS.items()}


class Attachment:
    def __init__(
        self,
        root: Path,
        client: Client,
        records: Records,
        log: logging.Logger,
        on_end: Callable[[Attachment], None],
    ) -> None:
        self.root = root
        self._client = client
        self._records = records
        self._log = log
        self._on_end = on_end
        self._conn = control.Connection(root)  # ControlError: no detached loop answers
        reply = self._conn.ask("subscribe", editor=True)  # a manual loop pauses without one
        self.pid, self.started = reply.pid, reply.started
        self._state = reply.state or LoopState(root=str(root), phase="idle", mode="loop")
        self._live = True
        # The detached loop wrote what no one saw: the records are read again.
        records.invalidate()
        self._tailer = LogTailer(root / RUN_LOG, self._log_appended).start()
        self._thread = threading.Thread(
            target=self._relay, name=f"attached {root.name}", daemon=True
        )
        self._thread.start()
        log.info("attached to the detached loop in %s (pid %d)", root, self.pid)

    @property
    def live(self) -> bool:
        return self._live

    @property
    def state(self) -> LoopState:
        return sessions_newest_first(self._state)

    # ---- controls ---------------------------------------------------------------------------

    def ask(self, op: str, now: bool = False, text: str = "") -> control.ControlReply:
        """A control sent on a connection of its own (the attachment's carries events)."""
        reply = control.ask(self.root, op, now, text)
        if reply.state is not None:
            self._state = reply.state
        return reply

    def run_experiment(self, description: str) -> Ack:
        reply = self.ask("run_experiment", text=description)
        return Ack(reply.ok, reply.message)

    def close(self) -> None:
        """The daemon goes: hang up; the loop runs on."""
        self._conn.close()
        self._thread.join(5)

    # ---- the relay's thread -----------------------------------------------------------------

    def _relay(self) -> None:
        try:
            for event in self._conn.events():
                try:
                    self._forward(event)
                except Exception:
                    self._log.exception("relaying a detached loop's event failed")
        finally:
            self._live = False
            self._tailer.stop()
            self._log.info("detached loop in %s: %s", self.root, self._state.phase)
            self._on_end(self)

    def _forward(self, event: control.ControlEvent) -> None:
        if event.event == "progress":
            self._client.say(f"{self.root.name}: {event.payload.get('text', '')}")
            return
        kind = _EVENT_TYPES.get(event.event)
        if kind is None:
            return
        payload = msgspec.convert(event.payload, kind)
        if isinstance(payload, LoopState):
            self._state = payload
            payload = self.state
        elif isinstance(payload, ExperimentRecorded):
            self._records.invalidate()  # the detached loop wrote it: read on next use
        self._client.post(event.event, payload)

    def _log_appended(self, inode: int, text: str) -> None:
        event = LogAppended(root=str(self.root), number=self._state.current, text=text)
        self._client.post(Method.LOG_APPENDED, event)
