"""A saved index of experiments.jsonl (`.autoresearch/experiments.idx`), so a daemon opening a
session of 100,000 experiments reads a few MB of offsets instead of decoding 49 MB of lines.

It covers a prefix of the file: the file's inode, size and modification time, the size indexed
and that prefix's CRC-32 (whole, and of its last 64 KiB) are kept with it. It is used as it is
while the file is untouched, and after appends once the prefix's last 64 KiB still match, as the
daemon follows appends; a file of the same size written since must match the whole prefix's CRC
(a file rewritten in place, truncated or replaced is indexed again from its start). Lines
appended since are read as usual. Written atomically by whoever has just read the whole file
(the loop's ledger at a resume, the daemon); a cache only: deleting it costs one full read.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
import zlib
from array import array
from pathlib import Path

import msgspec

from .session_records import Tally

INDEX_FILE = "experiments.idx"
VERSION = 2
# Below this many lines a full read is quick: no index is written.
MIN_LINES = 5_000
# A file's modification time tells a later write only once the clock has moved on past it
# (timestamps are coarse): an index saved sooner after a write checks the prefix's last bytes.
QUIET_NS = 2_000_000_000
# A file the index's stat still describes, or grown past it, is checked as the daemon follows
# appends (records.py): by its last bytes, not by the CRC of 49 MB.
TAIL = 65536


class SavedSession(msgspec.Struct, array_like=True):
    tag: str
    # array("q") of each line's start and end offsets and the experiment's number.
    starts: bytes
    ends: bytes
    numbers: bytes
    tally: Tally


class Saved(msgspec.Struct, array_like=True):
    version: int
    ino: int
    # The file's size and modification time when it was indexed, and whether it had been
    # left alone long enough before (QUIET_NS) for them to tell a later write.
    file_size: int
    mtime_ns: int
    quiet: bool
    # The prefix indexed (whole lines), its CRC-32 and that of its last TAIL bytes.
    size: int
    crc: int
    tail_crc: int
    lineno: int
    warnings: list[str]
    sessions: list[SavedSession]
    # Saved by the ledger: every line of the prefix decoded as a whole record, each session's
    # numbers ascending in file order, so a later ledger may take the index for its own read
    # (the daemon's read decodes only a few fields of each line: its index is not).
    whole: bool = False


_decoder = msgspec.msgpack.Decoder(Saved)
_encoder = msgspec.msgpack.Encoder()


def ints(data: bytes) -> array[int]:
    out = array("q")
    out.frombytes(data)
    return out


def session(
    tag: str, starts: array[int], ends: array[int], numbers: array[int], tally: Tally
) -> SavedSession:
    kept = msgspec.structs.replace(tally, best_record=None)  # offsets, not records, are saved
    return SavedSession(tag, starts.tobytes(), ends.tobytes(), numbers.tobytes(), kept)


def save(
    jsonl: Path,
    fd: int,
    prefix: bytes | memoryview,
    lineno: int,
    warnings: list[str],
    sessions: list[SavedSession],
    whole: bool = False,
) -> None:
    """Write the index of `prefix`, the first bytes of `jsonl` (open as `fd`), just read whole.
    Never fails the caller: without an index the next reader reads the whole file."""
    if lineno < MIN_LINES or jsonl.parent.is_symlink():
        return
    with contextlib.suppress(OSError):
        st = os.fstat(fd)
        saved = Saved(
            version=VERSION,
            ino=st.st_ino,
            file_size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            quiet=time.time_ns() - st.st_mtime_ns > QUIET_NS,
            size=len(prefix),
            crc=zlib.crc32(prefix),
            tail_crc=zlib.crc32(prefix[-TAIL:]),
            lineno=lineno,
            warnings=warnings,
            sessions=sessions,
            whole=whole,
        )
        path = jsonl.with_name(INDEX_FILE)
        tmp = path.with_name(f".{INDEX_FILE}.{os.getpid()}.tmp")
        tmp.write_bytes(_encoder.encode(saved))
        os.replace(tmp, path)


def load(jsonl: Path, fd: int) -> Saved | None:
    """The saved index, if it still describes a prefix of the file open as `fd`."""
    try:
        saved = _decoder.decode(jsonl.with_name(INDEX_FILE).read_bytes())
        st = os.fstat(fd)
    except (OSError, msgspec.DecodeError):
        return None
    if saved.version != VERSION or saved.ino != st.st_ino or saved.size > st.st_size:
        return None
    if saved.quiet and (st.st_size, st.st_mtime_ns) == (saved.file_size, saved.mtime_ns):
        return saved  # untouched since
    if st.st_size > saved.file_size or (st.st_size, st.st_mtime_ns) == (
        saved.file_size,
        saved.mtime_ns,
    ):
        # Appended to (or untouched, saved right after a write): the live follower's rule,
        # the prefix's last bytes unchanged. A rewrite in place of the same size changes the
        # mtime and comes below; a file replaced has another inode.
        start = max(0, saved.size - TAIL)
        try:
            tail = os.pread(fd, saved.size - start, start)
        except OSError:
            return None
        return saved if zlib.crc32(tail) == saved.tail_crc else None
    try:  # the same size, written since: only the same prefix may be trusted
        with mmap.mmap(fd, saved.size, access=mmap.ACCESS_READ) as prefix:
            crc = zlib.crc32(prefix)  # mapped, not copied: 49 MB in about 20 ms
    except (OSError, ValueError):
        return None
    return saved if crc == saved.crc else None
