"""The daemon's in-memory copy of one repository's experiments.jsonl, by session.

Read once, then kept current by the loop's ExperimentRecorded events, so a page of 10,000
experiments is a list slice and never a file read. When an event does not follow on (the loop
recovered or reconciled rows at setup), the copy is marked stale and read again on next use.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .experiment import Experiment
from .ledger import JSONL_FILE, STATE_DIR, Ledger
from .loop import summarize_sessions
from .protocol import SessionSummary
from .queries import read_records


class Records:
    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / JSONL_FILE
        self._root = root
        self._lock = threading.Lock()
        self._sessions: dict[str, list[Experiment]] | None = None

    def session(self, tag: str) -> list[Experiment]:
        """This session's experiments, oldest first; callers must not mutate the list."""
        return self._load().get(tag, [])

    def tags(self) -> list[str]:
        """Session tags, oldest first, as the file lists them."""
        return list(self._load())

    def add(self, exp: Experiment) -> None:
        with self._lock:
            if self._sessions is None:
                return  # read in full on next use anyway
            items = self._sessions.setdefault(exp.tag, [])
            if exp.number == len(items):
                items.append(exp)
            elif exp.number < len(items):
                items[exp.number] = exp
            else:
                self._sessions = None  # a gap: rows were written that we did not see

    def invalidate(self) -> None:
        with self._lock:
            self._sessions = None

    def summaries(self, direction: str) -> list[SessionSummary]:
        """Sessions newest first, as the results tree lists them."""
        self._load()
        ledger = Ledger(self._root)
        with self._lock:  # the loop's thread may add a session meanwhile
            ledger.sessions = {tag: list(items) for tag, items in (self._sessions or {}).items()}
        return list(reversed(summarize_sessions(ledger, direction)))

    def _load(self) -> dict[str, list[Experiment]]:
        with self._lock:
            if self._sessions is None:
                self._sessions = read_records(self.path)
            return self._sessions
