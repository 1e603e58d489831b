"""The loop's records: results.tsv (the seed's table) and .autoresearch/experiments.jsonl.

`record()` is idempotent per experiment number, so a daemon killed between the two appends
completes the second on resume without doubling the first.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from array import array
from collections.abc import Callable, MutableSequence
from itertools import pairwise
from pathlib import Path

import msgspec

from . import diskspace, jsonl_index, results_tsv
from .experiment import Experiment
from .journal import pause_point
from .jsonl_index import MIN_LINES
from .protocol import SessionSummary
from .session_history import History, Prefix, copy_of
from .session_records import Tally, tally_of

STATE_DIR = ".autoresearch"
JSONL_FILE = "experiments.jsonl"

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Experiment)


class LedgerError(RuntimeError):
    """A record could not be written; the message names the file and the fix."""


class Ledger:
    """All sessions' experiments of one repository, held in memory per tag for paging."""

    def __init__(self, root: Path, metric_name: str | None = None) -> None:
        self.root = root
        self.state_dir = root / STATE_DIR
        self.results = root / results_tsv.RESULTS_FILE
        self.jsonl = self.state_dir / JSONL_FILE
        self.metric_name = metric_name
        # Plain lists, or Histories whose indexed records are decoded on first whole use.
        self.sessions: dict[str, MutableSequence[Experiment]] = {}
        # Each session's counts and best, kept as records are read and appended.
        self.tallies: dict[str, Tally] = {}
        self._loaded = False
        self._rows = 0  # decided rows in results.tsv, counted by reconcile()

    def load(self, repair: bool = True) -> None:
        """Read experiments.jsonl once; a half-written last line is cut off (`repair`), or
        only skipped by readers such as `status` that must not write under a running loop.
        The lines a saved index of the ledger's covers are not decoded now (session_history)."""
        self.sessions, self.tallies = {}, {}
        if self.jsonl.exists():
            with open(self.jsonl, "rb") as f:  # one file: the index checked is the one read
                saved = jsonl_index.load(self.jsonl, f.fileno())
                if saved is not None and not (saved.whole and not saved.warnings):
                    saved = None  # the daemon's index: its lines were not decoded whole
                base = saved.size if saved is not None else 0
                f.seek(base)
                data = f.read()
            end = data.rfind(b"\n") + 1
            if end < len(data) and repair:
                with open(self.jsonl, "r+b") as f:
                    f.truncate(base + end)
            offsets: dict[str, tuple[array[int], array[int]]] = {}
            read: dict[str, list[Experiment]] = {}
            view, decode, find = memoryview(data), _decoder.decode, data.find
            tag, exps, starts, ends = None, [], array("q"), array("q")
            with results_tsv.gc_paused():
                pos, lineno = 0, saved.lineno if saved is not None else 0
                while pos < end:  # once per experiment: kept lean
                    stop = find(b"\n", pos)
                    lineno += 1
                    try:
                        exp = decode(view[pos:stop])
                    except msgspec.DecodeError as exc:
                        if data[pos:stop].strip():
                            raise LedgerError(
                                f"{self.jsonl} line {lineno} is not an experiment record ({exc})."
                                " Restore that line or delete the file (results.tsv keeps the"
                                " table; the records are rebuilt from it, without their details)."
                            ) from None
                    else:
                        if exp.tag != tag:
                            tag = exp.tag
                            exps = read.setdefault(tag, [])
                            starts, ends = offsets.setdefault(tag, (array("q"), array("q")))
                        exps.append(exp)
                        starts.append(base + pos)
                        ends.append(base + stop)
                    pos = stop + 1
            if saved is not None:
                indexed = self._restore(saved, read)
                # Grown by half since (a long run): saved again, so the next resume reads less.
                if repair and lineno - saved.lineno >= max(MIN_LINES, saved.lineno // 2):
                    self._save_grown(base + end, lineno, read, offsets, indexed)
            else:
                self.sessions = dict(read)
                self.tallies = {tag: tally_of(tag, exps) for tag, exps in read.items()}
                if repair:  # the loop's own read: the daemon opening this session reads the index
                    self._save_index(memoryview(data)[:end], lineno, read, offsets)
        self._loaded = True

    def _save_grown(
        self,
        size: int,
        lines: int,
        read: dict[str, list[Experiment]],
        offsets: dict[str, tuple[array[int], array[int]]],
        indexed: dict[str, Prefix],
    ) -> None:
        try:
            with (
                open(self.jsonl, "rb") as f,
                mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as prefix,
            ):  # mapped, not read: only its CRC is taken
                self._save_index(prefix, lines, read, offsets, indexed)
        except (OSError, ValueError):
            return  # a cache only: the next resume reads those lines again

    def _restore(
        self, saved: jsonl_index.Saved, read: dict[str, list[Experiment]]
    ) -> dict[str, Prefix]:
        """The indexed sessions, undecoded, then the records read after the index."""
        indexed = {}
        for s in saved.sessions:
            numbers = jsonl_index.ints(s.numbers)
            prefix = Prefix(
                self.jsonl, jsonl_index.ints(s.starts), jsonl_index.ints(s.ends), numbers
            )
            history, indexed[s.tag] = History(prefix), prefix
            tally = s.tally.copy()
            if tally.best_number is not None:  # the index keeps the best's number, not its record
                tally.best_record = history.by_number(tally.best_number)
            self.sessions[s.tag], self.tallies[s.tag] = history, tally
        for tag, exps in read.items():
            if tag in self.sessions:
                for exp in exps:
                    self._add(exp)
            else:
                self.sessions[tag], self.tallies[tag] = exps, tally_of(tag, exps)
        return indexed

    def _save_index(
        self,
        prefix: bytes | memoryview | mmap.mmap,
        lines: int,
        read: dict[str, list[Experiment]],
        offsets: dict[str, tuple[array[int], array[int]]],
        indexed: dict[str, Prefix] | None = None,
    ) -> None:
        """Save the index of `prefix`, the file's first bytes: the lines `read` now, after the
        lines of an index restored (`indexed`, known to be in order)."""
        saved = []
        for tag in self.sessions:
            earlier, exps = (indexed or {}).get(tag), read.get(tag, [])
            numbers = array("q", (exp.number for exp in exps))
            starts, ends = offsets.get(tag, (array("q"), array("q")))
            if earlier is not None:
                numbers = earlier.numbers + numbers
                starts, ends = earlier.starts + starts, earlier.ends + ends
            first = len(earlier) if earlier is not None else 0
            if any(a >= b for a, b in pairwise(numbers[max(0, first - 1) :])):
                return  # an experiment written twice: the daemon sorts that out on its own read
            saved.append(jsonl_index.session(tag, starts, ends, numbers, self.tallies[tag]))
        try:
            fd = os.open(self.jsonl, os.O_RDONLY)
        except OSError:
            return
        try:
            jsonl_index.save(self.jsonl, fd, prefix, lines, [], saved, whole=True)
        finally:
            os.close(fd)

    def experiments(self, tag: str) -> MutableSequence[Experiment]:
        if not self._loaded:
            self.load()
        return self.sessions.setdefault(tag, [])

    def tally(self, tag: str) -> Tally:
        if not self._loaded:
            self.load()
        return self.tallies.setdefault(tag, Tally(tag=tag))

    def summaries(self) -> list[SessionSummary]:
        """Every session's summary, oldest first (O(sessions): the tallies are kept)."""
        if not self._loaded:
            self.load()
        return [self.tally(tag).summary() for tag in self.sessions]

    def _add(self, exp: Experiment) -> None:
        self.sessions.setdefault(exp.tag, []).append(exp)
        self.tallies.setdefault(exp.tag, Tally(tag=exp.tag)).add_experiment(exp)

    def reconcile(self, tag: str, pending: Experiment | None = None) -> MutableSequence[Experiment]:
        """Make results.tsv and the jsonl agree after a kill (or a deleted table) and return
        this session's experiments. Each file is completed from the other; only a line cut short
        by a kill is removed. `pending` is the journal's decided record: when results.tsv has
        its row and the jsonl not, the jsonl gets it whole rather than rebuilt from the row.
        The list returned is a copy (a loop that appends to it must not append to ours too)."""
        records = self.experiments(tag)
        if not self.results.exists():
            self.results.write_text(results_tsv.HEADER, encoding="utf-8")
        _complete_last_line(self.results)
        count, rows = results_tsv.read_after(self.results, self.metric_name, len(records))
        for row in rows:
            row.tag = tag
            if pending is not None and pending.number == row.number:
                row = pending
            self._write(self._append_jsonl, self.jsonl, row)
            self._add(row)
        for exp in records[count:]:
            self._write(self._append_row, self.results, exp)
        self._rows = len(records)
        return copy_of(records)  # the caller's own list: record() appends to ours

    def record(self, exp: Experiment) -> None:
        """Append to both files unless already there (a resumed, half-recorded experiment)."""
        records = self.experiments(exp.tag)
        if not self.results.exists():  # deleted under us (by an agent): rebuild it first
            self.reconcile(exp.tag)
        if self._rows <= exp.number:
            self._write(self._append_row, self.results, exp)
            self._rows = exp.number + 1
            pause_point("row-written", exp.number)
        if len(records) <= exp.number:
            self._write(self._append_jsonl, self.jsonl, exp)
            self._add(exp)
        pause_point("recorded", exp.number)

    def _write(
        self, append: Callable[[Path, Experiment], None], path: Path, exp: Experiment
    ) -> None:
        size = path.stat().st_size if path.exists() else 0

        def once() -> None:
            try:
                append(path, exp)
            except OSError:
                with contextlib.suppress(OSError):  # no partial line for the retry to glue onto
                    os.truncate(path, size)
                raise

        try:
            diskspace.write_or_release(self.state_dir, once)
        except OSError as exc:
            fix = "make it writable (chmod u+w; chattr -i if it is immutable)"
            if exc.errno == errno.ENOSPC:
                fix = "free some disk space"
            raise LedgerError(
                f"Cannot write experiment #{exp.number} to {path} ({exc.strerror}). To fix:"
                f" {fix}, then resume: the decision is kept in the journal and written then."
            ) from None

    def _append_row(self, path: Path, exp: Experiment) -> None:
        results_tsv.append(path, exp, self.metric_name)  # in the table's own layout

    def _append_jsonl(self, path: Path, exp: Experiment) -> None:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            diskspace.write_all(fd, _encoder.encode(exp) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def start_session(self) -> None:
        self.state_dir.mkdir(exist_ok=True)
        results_tsv.ensure_header(self.results)
        self._rows = 0


def _complete_last_line(path: Path) -> None:
    """A last line without its newline would glue the next append to it. With all its columns
    it is a row whose newline is missing (a hand edit, or a write cut at its very end): complete
    it. Shorter, it is a write cut short by a kill, never a decided row: cut it off."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 65536))
        tail = f.read()
        f.seek(0)
        header = f.readline()
    if not tail or tail.endswith(b"\n"):
        return
    newline = tail.rfind(b"\n")
    if newline < 0 and size > len(tail):
        return  # one line over 64 KiB: not ours; results_tsv.read reports it
    last = tail[newline + 1 :]
    try:
        if newline < 0 or last.count(b"\t") >= header.count(b"\t"):
            with open(path, "ab") as f:
                f.write(b"\n")
        else:
            os.truncate(path, size - len(last))
    except OSError as exc:
        raise LedgerError(
            f"Cannot repair the cut-off last line of {path} ({exc.strerror}). Make the file"
            " writable, then resume."
        ) from None
