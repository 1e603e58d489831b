"""`.autoresearch/inflight/<tag>-<n>.json`: the journal of a parallel loop's experiments in flight.

The one-worker loop's journal (journal.py) holds one step; with several workers each running
experiment has its own entry: "editing" before its edit step, "committed" (with its commit and
its pending record) before its run. A decision removes it after the record is written. A resume
reads what is left: committed experiments run again, edits in progress are undone (their
worktrees are the loop's own), and the processes their markers name are killed.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from .journal import Entry, pause_point

INFLIGHT_DIR = "inflight"


class Inflight:
    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / INFLIGHT_DIR

    def write(self, entry: Entry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{entry.tag}-{entry.number}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(entry))
        os.replace(tmp, path)
        pause_point(f"worker-{entry.step}", entry.number)

    def remove(self, tag: str, number: int) -> None:
        (self.folder / f"{tag}-{number}.json").unlink(missing_ok=True)

    def entries(self, tag: str) -> list[Entry]:
        """This session's entries, by number; unreadable ones (a write cut short) are skipped:
        their experiment had not run."""
        found: list[Entry] = []
        if not self.folder.is_dir():
            return found
        for path in self.folder.glob("*.json"):
            try:
                entry = msgspec.json.decode(path.read_bytes(), type=Entry)
            except (OSError, msgspec.DecodeError):
                continue
            if entry.tag == tag:
                found.append(entry)
        return sorted(found, key=lambda e: e.number)

    def clear(self, tag: str) -> None:
        for entry in self.entries(tag):
            self.remove(tag, entry.number)
