"""One loop per repository: an exclusive lock on `.autoresearch/loop.lock`.

flock is released by the kernel when its holder dies, so a killed daemon never leaves a stale
lock; the file's content (pid, program) only serves the error message.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

from .confine import ConfinementError, check_state_paths

LOCK_FILE = ".autoresearch/loop.lock"
ACQUIRE_TRIES = 6


class LockError(RuntimeError):
    """Another process runs a loop in this repository."""


class RepoLock:
    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, owner: str = "") -> None:
        try:  # the first write into .autoresearch/, for the CLI and the daemon alike
            check_state_paths(self.path.parent.parent)
        except ConfinementError as exc:
            raise LockError(str(exc)) from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # A status probe (held_elsewhere) holds a shared lock for microseconds: retry briefly.
            for attempt in range(ACQUIRE_TRIES):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == ACQUIRE_TRIES - 1:
                        raise
                    time.sleep(0.05)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise self._busy(holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, {owner or Path(sys.argv[0]).name}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def refuse_if_held(self) -> None:
        """A start's first check, before it reads the files another loop may be editing (a
        sweep's constants half written looked like a broken config): LockError if one runs."""
        holder = self.held_elsewhere()
        if holder is not None:
            raise self._busy(holder)

    def _busy(self, holder: str) -> LockError:
        return LockError(
            f"A loop is already running in {self.path.parent.parent} ({holder}). Stop it"
            " first (`autoresearch stop` for a detached one, Stop Loop in VS Code, or"
            " Ctrl-C in its terminal)."
        )

    def held_elsewhere(self) -> str | None:
        """Who holds the lock, when someone else does (for `status`)."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 200).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)
        return None

    def __enter__(self) -> RepoLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
