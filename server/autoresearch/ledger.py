"""The loop's records: results.tsv (the seed's table) and .autoresearch/experiments.jsonl.

`record()` is idempotent per experiment number, so a daemon killed between the two appends
completes the second on resume without doubling the first.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from . import results_tsv
from .experiment import Experiment

STATE_DIR = ".autoresearch"
JSONL_FILE = "experiments.jsonl"

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Experiment)


class Ledger:
    """All sessions' experiments of one repository, held in memory per tag for paging."""

    def __init__(self, root: Path, metric_name: str | None = None) -> None:
        self.root = root
        self.state_dir = root / STATE_DIR
        self.results = root / results_tsv.RESULTS_FILE
        self.jsonl = self.state_dir / JSONL_FILE
        self.metric_name = metric_name
        self.sessions: dict[str, list[Experiment]] = {}
        self._loaded = False
        self._rows = 0  # decided rows in results.tsv, counted by reconcile()

    def load(self) -> None:
        """Read experiments.jsonl once; a half-written last line is cut off."""
        self.sessions = {}
        if self.jsonl.exists():
            data = self.jsonl.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                with open(self.jsonl, "r+b") as f:
                    f.truncate(end)
            for line in data[:end].splitlines():
                if line.strip():
                    exp = _decoder.decode(line)
                    self.sessions.setdefault(exp.tag, []).append(exp)
        self._loaded = True

    def experiments(self, tag: str) -> list[Experiment]:
        if not self._loaded:
            self.load()
        return self.sessions.setdefault(tag, [])

    def reconcile(self, tag: str) -> list[Experiment]:
        """Make results.tsv and the jsonl agree after a kill (or a deleted table) and return
        this session's experiments. Each file is completed from the other, never truncated."""
        records = self.experiments(tag)
        if not self.results.exists():
            self.results.write_text(results_tsv.HEADER, encoding="utf-8")
        rows = results_tsv.read(self.results, self.metric_name)
        for row in rows[len(records) :]:
            row.tag = tag
            self._append_jsonl(row)
            records.append(row)
        for exp in records[len(rows) :]:
            results_tsv.append(self.results, exp)
        self._rows = len(records)
        return records

    def record(self, exp: Experiment) -> None:
        """Append to both files unless already there (a resumed, half-recorded experiment)."""
        records = self.experiments(exp.tag)
        if not self.results.exists():  # deleted under us (by an agent): rebuild it first
            self.reconcile(exp.tag)
        if self._rows <= exp.number:
            results_tsv.append(self.results, exp)
            self._rows = exp.number + 1
        if len(records) <= exp.number:
            self._append_jsonl(exp)
            records.append(exp)

    def _append_jsonl(self, exp: Experiment) -> None:
        self.state_dir.mkdir(exist_ok=True)
        fd = os.open(self.jsonl, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _encoder.encode(exp) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def start_session(self) -> None:
        self.state_dir.mkdir(exist_ok=True)
        results_tsv.ensure_header(self.results)
        self._rows = 0
