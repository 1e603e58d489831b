"""A session's records as the ledger holds them after a load through the saved index.

The lines the index covers stay in experiments.jsonl until they are needed: one experiment
(the baseline, the best) is decoded on its own, a slice or a look back from the newest (the
notes' last records, the streak since the last keep) decodes only what it reaches, and the
first use of the whole session (a loop iterating its history, an agent's prompt, a sweep's
replay) decodes them all at once, in one read, for every copy of the history together. So a
resume of 100,000 experiments reconciles the records without decoding them, and what needs
them pays one bulk decode, not 100,000 single ones.

The index is only trusted for this when every line it covers was decoded whole by the ledger,
each session's records in order (`jsonl_index.Saved.whole`), and its prefix still matches the
file (jsonl_index.load): the lines decoded later are the lines the ledger would have read.
"""

from __future__ import annotations

import bisect
import os
import threading
from array import array
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from pathlib import Path
from typing import Any, overload

import msgspec

from .experiment import Experiment
from .results_tsv import gc_paused

_decoder = msgspec.json.Decoder(Experiment)
# The first chunk a look back decodes: the last keep is usually among the last few records.
_CHUNK = 64


class HistoryError(RuntimeError):
    """experiments.jsonl changed under the ledger after its load; the message says what to do."""


class Prefix:
    """The indexed lines of one session; decoded at most once as a whole, shared by copies."""

    __slots__ = ("_items", "_lock", "ends", "numbers", "path", "starts")

    def __init__(self, path: Path, starts: array[int], ends: array[int], numbers: array[int]):
        self.path = path
        self.starts, self.ends, self.numbers = starts, ends, numbers
        self._items: list[Experiment] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.starts)

    def position(self, number: int) -> int | None:
        i = bisect.bisect_left(self.numbers, number)
        return i if i < len(self.numbers) and self.numbers[i] == number else None

    def one(self, i: int) -> Experiment:
        items = self._items
        if items is not None:
            return items[i]
        return self._decode_range(i, i + 1)[0]

    def span(self, first: int, last: int) -> list[Experiment]:
        """Records `first` up to `last`: a few decoded on their own (the notes' last ones), most
        of the session decoded whole and kept (runlogs' first pass)."""
        items = self._items
        if items is None and 2 * (last - first) < len(self.starts):
            return self._decode_range(first, last)
        return self.all()[first:last]

    def backwards(self) -> Iterator[Experiment]:
        """Newest first, decoded a chunk at a time: a look back to the last keep (stops, the
        reverts in a row, resume's last keep) decodes what it reaches. A look that goes on past
        a few chunks decodes the rest whole, once, as a forward pass would."""
        stop, size = len(self.starts), _CHUNK
        while stop > 0:
            items = self._items
            if items is not None or size > _CHUNK * 16:
                yield from reversed((items or self.all())[:stop])
                return
            first = max(0, stop - size)
            yield from reversed(self._decode_range(first, stop))
            stop, size = first, size * 4

    def all(self) -> list[Experiment]:
        with self._lock:
            if self._items is None:
                with gc_paused():
                    self._items = self._decode_range(0, len(self.starts))
            return self._items

    def _decode_range(self, first: int, last: int) -> list[Experiment]:
        if first >= last:
            return []
        base, stop = self.starts[first], self.ends[last - 1]
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise self._changed(exc.strerror or str(exc)) from None
        try:
            data = os.pread(fd, stop - base, base)
        finally:
            os.close(fd)
        if len(data) != stop - base:
            raise self._changed("it is shorter than when it was read")
        try:
            # Other sessions' lines may sit between this one's: each line is cut out by offset.
            view = memoryview(data)
            decode = _decoder.decode
            return [
                decode(view[a - base : b - base])
                for a, b in zip(self.starts[first:last], self.ends[first:last], strict=True)
            ]
        except msgspec.DecodeError as exc:
            raise self._changed(str(exc)) from None

    def _changed(self, why: str) -> HistoryError:
        return HistoryError(
            f"{self.path} changed after the loop read it ({why}): it was rewritten under a"
            " running loop. Stop the loop and resume it: the records are read again."
        )


class History(MutableSequence[Experiment]):
    """A session's experiments, oldest first: an indexed `Prefix` and the records after it.
    Used as the list the ledger and the loop hold; whole-list uses decode the prefix once."""

    def __init__(self, prefix: Prefix | None, tail: Iterable[Experiment] = ()) -> None:
        # One attribute, replaced at once: a parallel worker copying the coordinator's history
        # never sees the prefix beside a tail that already holds it.
        self._parts: tuple[Prefix | None, list[Experiment]] = (prefix, list(tail))

    def _whole(self) -> list[Experiment]:
        prefix, tail = self._parts
        if prefix is not None:  # once: from now on the tail holds every experiment
            tail = [*prefix.all(), *tail]
            self._parts = (None, tail)
        return tail

    def by_number(self, number: int) -> Experiment | None:
        """The experiment numbered `number` in the prefix, decoding only it."""
        prefix = self._parts[0]
        if prefix is None:
            return None
        i = prefix.position(number)
        return None if i is None else prefix.one(i)

    def __len__(self) -> int:
        prefix, tail = self._parts
        return (len(prefix) if prefix is not None else 0) + len(tail)

    @overload
    def __getitem__(self, index: int) -> Experiment: ...
    @overload
    def __getitem__(self, index: slice) -> list[Experiment]: ...
    def __getitem__(self, index: int | slice) -> Experiment | list[Experiment]:
        prefix, tail = self._parts
        if prefix is None:
            return tail[index]
        m = len(prefix)
        n = m + len(tail)
        if isinstance(index, slice):
            span = range(n)[index]
            if not span:
                return []
            first, last = min(span[0], span[-1]), max(span[0], span[-1]) + 1
            # Only the part of the prefix the slice covers is decoded (notes' last records).
            part = prefix.span(first, min(last, m)) if first < m else []
            return [part[i - first] if i < m else tail[i - m] for i in span]
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(index)
        return prefix.one(i) if i < m else tail[i - m]

    @overload
    def __setitem__(self, index: int, value: Experiment) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[Experiment]) -> None: ...
    def __setitem__(self, index: int | slice, value: Experiment | Iterable[Experiment]) -> None:
        self._whole()[index] = value  # type: ignore[index,assignment]

    def __delitem__(self, index: int | slice) -> None:
        del self._whole()[index]

    def insert(self, index: int, value: Experiment) -> None:
        self._whole().insert(index, value)

    def append(self, value: Experiment) -> None:
        self._parts[1].append(value)  # the prefix stays undecoded

    def __iter__(self) -> Iterator[Experiment]:
        return iter(self._whole())

    def __reversed__(self) -> Iterator[Experiment]:
        prefix, tail = self._parts
        if prefix is None:
            return reversed(tail)
        return self._backwards(prefix, tail[:])

    @staticmethod
    def _backwards(prefix: Prefix, tail: list[Experiment]) -> Iterator[Experiment]:
        yield from reversed(tail)
        yield from prefix.backwards()

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        # Sequence.index reads one item at a time: a single pass over the whole instead.
        whole = self._whole()
        return whole.index(value, start, len(whole) if stop is None else stop)

    def count(self, value: Any) -> int:
        return self._whole().count(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History({len(self)} experiments)"

    def copy(self) -> History:
        """Another list of the same experiments; the prefix (and its one decode) is shared."""
        return History(*self._parts)


def last_keep(records: Sequence[Experiment]) -> Experiment | None:
    """The newest keep, looked for from the newest record back (a History decodes only what
    that look reaches)."""
    return next((e for e in reversed(records) if e.status == "keep"), None)


def copy_of(records: Sequence[Experiment]) -> MutableSequence[Experiment]:
    """A list of `records` of one's own (a job's, the loop's): a History's copy shares its
    undecoded prefix, where `list(...)` would decode it."""
    return records.copy() if isinstance(records, History) else list(records)
