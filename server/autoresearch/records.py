"""The daemon's index of one repository's experiments.jsonl, by session.

The file is read once into an index (each line's place, number, status and metric, and each
session's Tally), then only the bytes appended since are read, whoever appended them (this
daemon's loop, or a loop in another process). A page decodes just its own lines, so the first
page of 100,000 experiments costs one pass over the file's lines and 200 decodes, not 100,000.

One error policy with the ledger: a line that is not an experiment record is never skipped
silently. The ledger refuses to resume over it; here it is left out of the view and reported
by its line number (`warnings`), and every other experiment keeps its own number.

A request never sees a half-read file: reads are serialized (`_load_lock`) and the index is
swapped or extended under `_lock` in one step. New data only marks the index stale
(`invalidate`); the next reader brings it up to date.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import overload

import msgspec

from . import jsonl_index
from .experiment import Experiment, Status
from .ledger import JSONL_FILE, STATE_DIR
from .protocol import SessionSummary
from .results_tsv import gc_paused
from .session_records import Tally

log = logging.getLogger(__name__)

_decoder = msgspec.json.Decoder(Experiment)


class _Line(msgspec.Struct):
    """What the index keeps of a line; the rest is decoded when a page asks for it."""

    number: int
    status: Status
    tag: str = ""
    metric: float | None = None


_light = msgspec.json.Decoder(_Line)


class _ChartLine(msgspec.Struct):
    """What the chart's reduction reads of a line: a parallel loop's worker besides the rest."""

    number: int
    status: Status
    metric: float | None = None
    worker: int | None = None


_chart_light = msgspec.json.Decoder(_ChartLine)


class RecordsError(RuntimeError):
    """experiments.jsonl changed under the index in a way it cannot follow."""


class _Session:
    __slots__ = ("ends", "numbers", "starts", "tally")

    def __init__(self, tag: str) -> None:
        # Offsets and numbers as arrays: 24 bytes an experiment, saved and restored as they are.
        self.starts: array[int] = array("q")
        self.ends: array[int] = array("q")
        self.numbers: array[int] = array("q")
        self.tally = Tally(tag=tag)

    @classmethod
    def restored(cls, saved: jsonl_index.SavedSession) -> _Session:
        s = cls(saved.tag)
        s.starts, s.ends = jsonl_index.ints(saved.starts), jsonl_index.ints(saved.ends)
        s.numbers, s.tally = jsonl_index.ints(saved.numbers), saved.tally
        return s

    def saved(self) -> jsonl_index.SavedSession:
        return jsonl_index.session(self.tally.tag, self.starts, self.ends, self.numbers, self.tally)

    def replace(self, line: _Line, start: int, end: int, path: Path) -> None:
        """The same experiment written again (a record completed after a kill), or one out of
        order: the later line wins. Rare, so the tally is counted again from the file."""
        i = bisect.bisect_left(self.numbers, line.number)
        if i < len(self.numbers) and self.numbers[i] == line.number:
            self.starts[i], self.ends[i] = start, end
        else:  # into copies: a view handed out before keeps the lines it had
            self.starts, self.ends = array("q", self.starts), array("q", self.ends)
            self.numbers = array("q", self.numbers)
            self.starts.insert(i, start)
            self.ends.insert(i, end)
            self.numbers.insert(i, line.number)
        self.tally = Tally(tag=self.tally.tag)
        with open(path, "rb") as f:
            for a, b in zip(self.starts, self.ends, strict=True):
                f.seek(a)
                x = _light.decode(f.read(b - a))
                self.tally.add(x.number, x.status, x.metric)


class SessionView(Sequence[Experiment]):
    """One session's experiments, oldest first, decoded on access. Its length is fixed when it
    is made: experiments recorded later are not in it (a page stays one consistent page)."""

    def __init__(
        self,
        path: Path,
        starts: Sequence[int],
        ends: Sequence[int],
        n: int,
        stale: Callable[[], None] = lambda: None,
    ) -> None:
        self._path = path
        self._starts, self._ends, self._n = starts, ends, n
        self._stale = stale  # the file changed under the index: the next view reads it again

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> Experiment: ...
    @overload
    def __getitem__(self, index: slice) -> list[Experiment]: ...
    def __getitem__(self, index: int | slice) -> Experiment | list[Experiment]:
        if isinstance(index, slice):
            return self._read(range(self._n)[index])
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(index)
        return self._read(range(index, index + 1))[0]

    def __iter__(self) -> Iterator[Experiment]:
        for first in range(0, self._n, 1000):
            yield from self._read(range(first, min(first + 1000, self._n)))

    def __reversed__(self) -> Iterator[Experiment]:
        for last in range(self._n, 0, -1000):
            yield from reversed(self._read(range(max(0, last - 1000), last)))

    def rows(self) -> Iterator[tuple[int, str, float | None, int | None]]:
        """Number, status, metric and worker of each experiment, oldest first, decoding only
        those fields: the chart's reduction of a whole session reads these, not whole records."""
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            self._stale()
            raise RecordsError(f"{self._path} was deleted: reopen the view.") from None
        try:
            for first in range(0, self._n, 4096):
                last = min(first + 4096, self._n)
                # One read per chunk; lines of other sessions inside it are skipped by offset.
                base = min(self._starts[first:last])
                data = os.pread(fd, max(self._ends[first:last]) - base, base)
                view = memoryview(data)
                for i in range(first, last):
                    try:
                        x = _chart_light.decode(view[self._starts[i] - base : self._ends[i] - base])
                    except msgspec.DecodeError:
                        self._stale()
                        raise RecordsError(
                            f"{self._path} was rewritten while it was read: ask again."
                        ) from None
                    yield x.number, x.status, x.metric, x.worker
        finally:
            os.close(fd)

    def _read(self, positions: range) -> list[Experiment]:
        if not positions:
            return []
        out: list[Experiment] = []
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            self._stale()
            raise RecordsError(f"{self._path} was deleted: reopen the view.") from None
        try:
            for i in positions:
                start, end = self._starts[i], self._ends[i]
                data = os.pread(fd, end - start, start)
                try:
                    out.append(_decoder.decode(data))
                except msgspec.DecodeError:
                    self._stale()
                    raise RecordsError(
                        f"{self._path} was rewritten while it was read: ask again."
                    ) from None
        finally:
            os.close(fd)
        return out


class Records:
    def __init__(self, root: Path, persist: bool = True) -> None:
        """`persist`: save the index after reading the whole file (the daemon; not `status`,
        which must not write)."""
        self.path = root / STATE_DIR / JSONL_FILE
        self._persist = persist
        self._root = root
        self._lock = threading.Lock()  # guards the index below
        self._load_lock = threading.Lock()  # one reader of the file at a time
        self._stale = True
        self._ino: int | None = None
        self._size = 0  # bytes indexed: whole lines only
        # The last line indexed and the file's mtime then: what tells an append from a rewrite.
        self._tail = b""
        self._mtime_ns = 0
        self._lineno = 0  # lines indexed, for the line numbers of warnings
        self._sessions: dict[str, _Session] = {}
        self._warnings: list[str] = []

    def session(self, tag: str) -> SessionView:
        """This session's experiments, oldest first, as far as the file has them now."""
        return self.tallied(tag)[0]

    def tallied(self, tag: str) -> tuple[SessionView, Tally]:
        """This session's experiments and their tally, taken at one moment (the same total)."""
        self._refresh()
        with self._lock:
            s = self._sessions.get(tag)
            if s is None:
                return SessionView(self.path, [], [], 0), Tally(tag=tag)
            view = SessionView(self.path, s.starts, s.ends, len(s.starts), self.invalidate)
            return view, s.tally.copy()

    def tags(self) -> list[str]:
        """Session tags, oldest first, as the file lists them."""
        self._refresh()
        with self._lock:
            return list(self._sessions)

    def tally(self, tag: str) -> Tally | None:
        self._refresh()
        with self._lock:
            s = self._sessions.get(tag)
            return s.tally.copy() if s else None

    def summaries(self) -> list[SessionSummary]:
        """Sessions newest first, as the results tree lists them."""
        self._refresh()
        with self._lock:
            return [s.tally.summary() for s in reversed(self._sessions.values())]

    def warnings(self) -> list[str]:
        """Lines of experiments.jsonl left out, each with its line number and the fix."""
        self._refresh()
        with self._lock:
            return list(self._warnings)

    def invalidate(self) -> None:
        """The file changed (a record appended, another process, a resume's repair): follow it
        on next use."""
        self._stale = True

    def _refresh(self) -> None:
        # Every reader passes here, so none reads the index while another brings it up to date.
        with self._load_lock:
            if not self._stale:
                return
            self._stale = False  # before reading: a write meanwhile marks it stale again
            try:
                self._follow()
            except BaseException:
                self._stale = True
                raise

    def _follow(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            with self._lock:
                self._reset(None)
            return
        try:
            st = os.fstat(fd)
            # An append leaves the indexed lines where they were; a rewrite in place (a hand
            # edit) or a file deleted and made again (its inode reused) moves or changes them.
            tail = self._tail
            appended = (
                st.st_ino == self._ino
                and (st.st_size > self._size or st.st_mtime_ns == self._mtime_ns)
                and st.st_size >= self._size
                and os.pread(fd, len(tail), self._size - len(tail)) == tail
            )
            if not appended:  # replaced, truncated or rewritten: read it all again
                self._ino, self._size, self._lineno = st.st_ino, 0, 0
                self._restore(fd)
            start = self._size
            data = os.pread(fd, st.st_size - start, start) if st.st_size > start else b""
            self._index(data, start)
            self._tail, self._mtime_ns = _last_line(fd, self._size), st.st_mtime_ns
            if start == 0 and self._persist:
                with self._lock:
                    sessions = [s.saved() for s in self._sessions.values()]
                    size, lineno, warnings = self._size, self._lineno, list(self._warnings)
                jsonl_index.save(self.path, fd, memoryview(data)[:size], lineno, warnings, sessions)
        finally:
            os.close(fd)

    def _restore(self, fd: int) -> None:
        """Start from the saved index when it still describes the file's beginning."""
        saved = jsonl_index.load(self.path, fd)
        if saved is None:
            return
        sessions = {s.tag: _Session.restored(s) for s in saved.sessions}
        with self._lock:
            self._sessions, self._warnings = sessions, list(saved.warnings)
            self._size, self._lineno = saved.size, saved.lineno

    def _reset(self, ino: int | None) -> None:
        self._ino, self._size, self._lineno = ino, 0, 0
        self._sessions, self._warnings = {}, []

    def _index(self, data: bytes, base: int) -> None:
        """Index the whole lines of `data`, read from offset `base`; a last line still being
        written waits for the next read. From offset 0 the index is built aside and swapped in
        whole; appended lines extend it in place, under the lock (for readers of the tallies)."""
        if base == 0:
            sessions: dict[str, _Session] = {}
            with gc_paused():
                warnings, lineno, size = self._scan(data, base, sessions, 0)
            with self._lock:
                self._sessions, self._warnings = sessions, warnings
                self._size, self._lineno = size, lineno
        else:
            with self._lock:
                warnings, lineno, size = self._scan(data, base, self._sessions, self._lineno)
                self._warnings.extend(warnings)
                self._size, self._lineno = size, lineno
        for text in warnings:
            log.warning("%s", text)

    def _scan(
        self, data: bytes, base: int, sessions: dict[str, _Session], lineno: int
    ) -> tuple[list[str], int, int]:
        end_all = data.rfind(b"\n") + 1
        warnings: list[str] = []
        view = memoryview(data)
        find, decode = data.find, _light.decode
        pos = 0
        while pos < end_all:
            end = find(b"\n", pos)
            lineno += 1
            if end > pos:
                try:
                    line = decode(view[pos:end])
                except msgspec.DecodeError as exc:
                    if not data[pos:end].isspace():
                        warnings.append(
                            f"{self.path.name} line {lineno} is not an experiment record ({exc}):"
                            " left out of the view, the others keep their numbers. Restore or"
                            " delete that line (a session cannot resume over it)."
                        )
                else:
                    s = sessions.get(line.tag)
                    if s is None:
                        s = sessions[line.tag] = _Session(line.tag)
                    if s.numbers and line.number <= s.numbers[-1]:
                        s.replace(line, base + pos, base + end, self.path)
                    else:  # the usual case, inline: this loop runs once per experiment
                        s.starts.append(base + pos)
                        s.ends.append(base + end)
                        s.numbers.append(line.number)
                        s.tally.add(line.number, line.status, line.metric)
            pos = end + 1
        return warnings, lineno, base + end_all


def _last_line(fd: int, size: int) -> bytes:
    """The line that ends at `size` (its last 4 KiB, if longer); b"" at 0."""
    chunk = os.pread(fd, min(size, 4096), max(0, size - 4096))
    return chunk[chunk.rfind(b"\n", 0, len(chunk) - 1) + 1 :]
