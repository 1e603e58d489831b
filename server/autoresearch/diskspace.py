"""A full disk: the free-space check before each experiment, and one plain message for it.

A full disk surfaces as OSError ENOSPC from our own writes and as git's "No space left on
device" / "Out of diskspace"; `disk_full()` turns any of them into `DiskFull`, whose message
says "the disk is full" and names the directory. A run that fills the disk must still get its
result recorded, so a small reserve file (`.autoresearch/reserve`) is set aside while space is
plenty and given up (`write_or_release`) when a write of the journal or the records meets a
full disk.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

MB = 1024 * 1024
STATE_DIR = ".autoresearch"
RESERVE_FILE = "reserve"
# Enough for the journal's decided entry, both records, git's index on the revert, and the
# journal again; small beside any sensible run.min_free_mb.
RESERVE_BYTES = 2 * MB
GIT_MARKERS = ("No space left on device", "Out of diskspace")

T = TypeVar("T")


class DiskFull(RuntimeError):
    """The disk is full (or below run.min_free_mb); the message names the directory and the fix."""


def free_mb(path: Path) -> float:
    """Free space for an unprivileged writer, in MB, on the file system holding `path`."""
    st = os.statvfs(_existing(path))
    return st.f_bavail * st.f_frsize / MB


def check(root: Path, min_free_mb: float, reserve: bool = True) -> None:
    """Before an experiment: the repository and its runs/ folder (which may be a link to
    another disk) need `min_free_mb` free, besides the reserve. 0 turns the check off.
    `reserve=False` (before the session is set up) only checks the repository, writing
    nothing."""
    if not reserve:
        if min_free_mb > 0 and free_mb(root) < min_free_mb:
            raise DiskFull(_too_little(root, free_mb(root), min_free_mb))
        return
    if min_free_mb <= 0:
        ensure_reserve(root / STATE_DIR)
        return
    reserved = ensure_reserve(root / STATE_DIR)
    for where in (root, root / STATE_DIR / "runs"):
        free = free_mb(where)
        if free < min_free_mb or not reserved:
            raise DiskFull(_too_little(where, free, min_free_mb))


def _too_little(where: Path, free: float, min_free_mb: float) -> str:
    return (
        f"Stopped: the disk is {'full' if free < 1 else 'nearly full'}:"
        f" {_existing(where)} has {free:.1f} MB free; each"
        f" experiment needs run.min_free_mb ({min_free_mb:g} MB) and"
        f" {RESERVE_BYTES // MB} MB kept for its records. Free some space there (old"
        " checkpoints, .autoresearch/runs), or lower run.min_free_mb, then start again:"
        " the loop resumes where it stopped."
    )


def is_full(exc: BaseException) -> bool:
    """ENOSPC, or git saying so, anywhere in the exception's chain (our errors wrap them)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFull):
            return True
        if isinstance(cur, OSError) and cur.errno == errno.ENOSPC:
            return True
        stderr = str(getattr(cur, "stderr", "") or "")
        if any(marker in stderr for marker in GIT_MARKERS):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def disk_full(exc: BaseException, root: Path) -> DiskFull | None:
    """The plain DiskFull for an exception caused by a full disk, else None."""
    if isinstance(exc, DiskFull):
        return exc
    if not is_full(exc):
        return None
    where = _where(exc) or root
    return DiskFull(
        f"Stopped: the disk is full: {_existing(where)} has {free_mb(where):.1f} MB free. Free"
        " some space there, then start again: the loop resumes where it stopped, and a result"
        " already measured is recorded then."
    )


def ensure_reserve(state_dir: Path) -> bool:
    """Set the reserve aside when it is missing; False when there is no room for it."""
    path = state_dir / RESERVE_FILE
    try:
        if path.stat().st_size == RESERVE_BYTES:
            return True
    except FileNotFoundError:
        pass
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"\0" * RESERVE_BYTES)  # real blocks: a sparse file would reserve nothing
        return True
    except OSError:
        path.unlink(missing_ok=True)
        return False


def release_reserve(state_dir: Path) -> bool:
    """Give the reserve up; True when there was one to give."""
    try:
        (state_dir / RESERVE_FILE).unlink()
        return True
    except FileNotFoundError:
        return False


def write_or_release(state_dir: Path, write: Callable[[], T]) -> T:
    """Run a write of the loop's own state; on a full disk give up the reserve and try once
    more, so the result of a run that filled the disk is still written."""
    try:
        return write()
    except OSError as exc:
        if exc.errno != errno.ENOSPC or not release_reserve(state_dir):
            raise
    return write()


def write_all(fd: int, data: bytes) -> None:
    """os.write, where a disk filling up mid-write (a short count, no error) is an error too."""
    written = os.write(fd, data)
    while written < len(data):
        more = os.write(fd, data[written:])
        if more == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += more


def _where(exc: BaseException) -> Path | None:
    """The folder of the file whose write failed, when the error says."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.filename:
            return Path(os.fsdecode(cur.filename)).parent
        cur = cur.__cause__ or cur.__context__
    return None


def _existing(path: Path) -> Path:
    """The nearest folder that exists (runs/ may not have been made yet)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
