"""Run logs in `.autoresearch/runs/`: old ones are gzip-compressed, and read back by their tail.

Each run may write up to run.max_log_mb. The logs of every keep and of the last run.keep_logs
experiments stay plain; the others become `<name>.log.gz` after each record. A compressed log
is three gzip members — the head, the last TAIL_MEMBER bytes, and an empty member whose comment
says where the second one starts — so `zcat` reads it whole, while the log request and crash
triage decompress only the tail, however big the log was.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from .experiment import Experiment

RUNS_DIR = Path(".autoresearch") / "runs"
# The most any tail reader asks for (queries.MAX_LOG_BYTES): served from the tail member alone.
TAIL_MEMBER = 4 * 1024 * 1024
CHUNK = 1024 * 1024
LEVEL = 1  # logs compress well even so, and a 2 GiB log takes seconds, not a minute
_INDEX = "autoresearch-tail {offset:020d} {size:020d}"
_INDEX_LEN = 10 + len(_INDEX.format(offset=0, size=0)) + 1 + 2 + 8
_INDEX_RE = re.compile(rb"^autoresearch-tail (\d{20}) (\d{20})\0$")
# <tag>-<n>.log and its siblings <tag>-<n>.<what>.log (guard, confirm1, crash1, ...)
_NAME = re.compile(r"(.+)-(\d+)((?:\.[^.]+)*)\.log")


def prune(
    root: Path, sessions: Mapping[str, Sequence[Experiment]], tag: str, keep_last: int, start: int
) -> int:
    """Compress the logs of session `tag`'s experiments numbered from `start` up to the last
    `keep_last` that are not keeps; returns where the next call starts. Until this session
    has more than `keep_last`, the other sessions' logs are pruned the same way (once they are,
    a scan finds nothing left to do). A failure (a full disk) leaves the logs plain and is
    tried again after the next record."""
    history = sessions.get(tag, ())
    upto = len(history) - keep_last
    if upto <= start and start > 0:
        return start
    wanted = {tag: _numbers(history, start, upto)}
    if start == 0:
        for other, exps in sessions.items():
            if other != tag:
                wanted[other] = _numbers(exps, 0, len(exps) - keep_last)
    if not any(wanted.values()):
        return max(start, upto)
    try:
        with os.scandir(root / RUNS_DIR) as entries:
            paths = [
                Path(e.path)
                for e in entries
                if (m := _NAME.fullmatch(e.name)) and int(m.group(2)) in wanted.get(m.group(1), ())
            ]
        for path in paths:
            compress(path)
    except OSError:
        return start
    return max(start, upto)


def _numbers(history: Sequence[Experiment], start: int, upto: int) -> set[int]:
    return {e.number for e in history[start : max(start, upto)] if e.status != "keep"}


def compress(path: Path) -> Path:
    """`x.log` -> `x.log.gz` (see the module's docstring); the plain log goes once it is done."""
    dst = path.with_name(path.name + ".gz")
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            size = os.fstat(src.fileno()).st_size
            head = max(0, size - TAIL_MEMBER)
            _member(src, out, head)
            offset = out.tell()
            _member(src, out, size - head)
            out.write(_index_member(offset, size))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    path.unlink()
    return dst


def plain_or_compressed(path: Path) -> Path | None:
    """The log as kept: `path`, or `path.gz` once pruned; None when neither exists."""
    gz = path.with_name(path.name + ".gz")
    return path if path.exists() else gz if gz.exists() else None


def read_gz_tail(path: Path | str, max_bytes: int) -> tuple[bytes, int, int]:
    """The last `max_bytes` of a compressed log, its plain size and where the bytes start.
    Ours are read from the tail member alone; any other gzip file is streamed through, holding
    no more than `max_bytes`."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            index = _read_index(f, end)
            if index is not None:
                offset, size = index
                if max_bytes <= TAIL_MEMBER or size <= TAIL_MEMBER:
                    f.seek(offset)
                    packed = f.read(end - _INDEX_LEN - offset)
                    tail = zlib.decompressobj(31).decompress(packed, TAIL_MEMBER)
                    data = tail[max(0, len(tail) - max_bytes) :]
                    return data, size, size - len(data)
            f.seek(0)
            return _stream_tail(f, max_bytes)
    except FileNotFoundError:
        return b"", 0, 0


def _member(src, out, n: int) -> None:  # type: ignore[no-untyped-def]
    """`n` bytes of `src` as one gzip member."""
    z = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    while n > 0:
        chunk = src.read(min(CHUNK, n))
        if not chunk:
            break
        n -= len(chunk)
        out.write(z.compress(chunk))
    out.write(z.flush())


def _index_member(offset: int, size: int) -> bytes:
    """An empty gzip member whose comment (FCOMMENT) holds the tail member's offset."""
    comment = _INDEX.format(offset=offset, size=size).encode() + b"\0"
    header = b"\x1f\x8b\x08\x10" + b"\0\0\0\0" + b"\x00\xff"  # FCOMMENT, no mtime, OS unknown
    return header + comment + b"\x03\x00" + b"\0" * 8  # an empty final block, crc 0, size 0


def _read_index(f, end: int) -> tuple[int, int] | None:  # type: ignore[no-untyped-def]
    if end < _INDEX_LEN:
        return None
    f.seek(end - _INDEX_LEN)
    raw = f.read(_INDEX_LEN)
    if raw[:4] != b"\x1f\x8b\x08\x10" or raw[-10:] != b"\x03\x00" + b"\0" * 8:
        return None
    m = _INDEX_RE.match(raw[10:-10])
    if m is None or int(m.group(1)) > end - _INDEX_LEN:
        return None
    return int(m.group(1)), int(m.group(2))


def _stream_tail(f, max_bytes: int) -> tuple[bytes, int, int]:  # type: ignore[no-untyped-def]
    """Decompress every member, keeping only the last `max_bytes`; a cut-off file gives what
    could be read."""
    keep = bytearray()
    size = 0
    z = zlib.decompressobj(31)
    try:
        while data := f.read(CHUNK):
            while data:
                out = z.decompress(data, CHUNK)  # bounded: a megabyte can inflate to a gigabyte
                size += len(out)
                keep += out
                del keep[: max(0, len(keep) - max_bytes)]
                if z.eof:  # the next member, unless what follows is padding or garbage
                    data, z = z.unused_data, zlib.decompressobj(31)
                    if not data.startswith(b"\x1f\x8b"):
                        data = b""
                else:
                    data = z.unconsumed_tail
    except zlib.error:
        pass
    return bytes(keep), size, size - len(keep)
