"""`.autoresearch/state.json`: the write-ahead journal that makes a killed daemon resumable.

Before each irreversible step the loop writes what is about to happen; resume reads it and
completes or undoes that step. Writes are atomic (temp file, renames; `state.previous` holds the
old entry for the moment between them): a killed daemon leaves the old entry or the new one,
never half of one. They are not fsynced (four per experiment would be a tenth of the loop's own
time): the page cache outlives a killed process, and against a power loss the journal could not
restore more than git keeps, whose loose objects and refs are not fsynced by default either. The
records themselves (ledger.py) are fsynced.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

import msgspec

from . import diskspace
from .experiment import Experiment

JOURNAL_FILE = "state.json"
# Test hook for the fault suite: `<point>` or `<point>:<number>` makes the daemon stop (sleep)
# right after that point, so a test can kill it there. Points: the journal steps (after the
# entry is written), `row-written` (results.tsv has the row, experiments.jsonl not yet) and
# `recorded` (both have it; a discard is not reverted yet). Unset, it costs one dict lookup.
PAUSE_ENV = "AUTORESEARCH_TEST_PAUSE_AT"

# editing: the tree may hold a half-made edit -> reset to `parent`.
# committed: the experiment commit exists, undecided -> record as interrupted, revert.
# decided: `record` holds the decision -> write it (idempotently), then revert if not kept.
# idle: nothing in flight.
# setup: a session's setup (branch, .gitignore, notes, its commit) -> the next start finishes it.
Step = Literal["idle", "setup", "editing", "committed", "decided"]


class Entry(msgspec.Struct):
    tag: str
    branch: str
    step: Step = "idle"
    number: int = 0
    parent: str = ""
    commit: str = ""
    record: Experiment | None = None
    # editing: the edit is a person's (manual mode) and survives a recovery.
    keep_edit: bool = False
    # The running command's process marker (runner.MARKER), to kill what a killed daemon left.
    marker: str = ""
    # setup: the branch the session was started from (`parent` is its commit).
    origin: str = ""


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / JOURNAL_FILE

    def read(self) -> Entry | None:
        # The entry, or the one before it while a write has set that aside (_replace); the
        # entry once more in case that write ended between the two reads.
        for path in (self.path, self._previous, self.path):
            try:
                return msgspec.json.decode(path.read_bytes(), type=Entry)
            except FileNotFoundError:
                continue
            except msgspec.DecodeError:
                return None
        return None

    @property
    def _previous(self) -> Path:
        return self.path.with_suffix(".previous")

    def write(self, entry: Entry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = msgspec.json.encode(entry)
        diskspace.write_or_release(self.path.parent, lambda: self._replace(data))
        pause_point(entry.step, entry.number)

    def _replace(self, data: bytes) -> None:
        """The new entry is written aside, the old one renamed away, the new one renamed in,
        the old one deleted: a kill at any point leaves one whole entry that read() finds.
        Three renames and an unlink cost a fifth of one rename over the old file, which ext4
        (auto_da_alloc) makes flush the new file's blocks first."""
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            try:
                os.rename(self.path, self._previous)
            except FileNotFoundError:  # the first entry, or a write killed after this rename
                pass
            os.rename(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed write leaves the old entry, and nothing else
            if not self.path.exists() and self._previous.exists():
                os.rename(self._previous, self.path)
            raise
        self._previous.unlink(missing_ok=True)


def pause_point(point: str, number: int) -> None:
    """See PAUSE_ENV. Sleeps until killed when the daemon reaches the named point."""
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted:
        return
    name, _, at = wanted.partition(":")
    if name == point and (not at or int(at) == number):
        while True:
            time.sleep(3600)
