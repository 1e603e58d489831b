"""`.autoresearch/state.json`: the write-ahead journal that makes a killed daemon resumable.

Before each irreversible step the loop writes what is about to happen; resume reads it and
completes or undoes that step. Writes are atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from .experiment import Experiment

JOURNAL_FILE = "state.json"

# editing: the tree may hold a half-made edit -> reset to `parent`.
# committed: the experiment commit exists, undecided -> record as interrupted, revert.
# decided: `record` holds the decision -> write it (idempotently), then revert if not kept.
# idle: nothing in flight.
Step = Literal["idle", "editing", "committed", "decided"]


class Entry(msgspec.Struct):
    tag: str
    branch: str
    step: Step = "idle"
    number: int = 0
    parent: str = ""
    commit: str = ""
    record: Experiment | None = None
    # The running command's process marker (runner.MARKER), to kill what a killed daemon left.
    marker: str = ""
    # The pid of the daemon that owns the loop, for the stale-lock check.
    pid: int = 0


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / JOURNAL_FILE

    def read(self) -> Entry | None:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=Entry)
        except (FileNotFoundError, msgspec.DecodeError):
            return None

    def write(self, entry: Entry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(msgspec.json.encode(entry))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
