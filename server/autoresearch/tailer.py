"""Follow the live run.log for logAppended: throttled, bounded, on its own thread.

run.log is re-linked to a new file for every run (measure.prepare_log). The tailer keeps the
file it follows open, so when run.log moves on it first reads what the old run wrote last, then
follows the new one from its first byte: each run's stream is complete. Chunks carry the file's
inode, which tells the runs apart. A burst larger than one chunk is skipped down to its last
chunk, with a line saying so: the client gets the latest output promptly and never a message
of unbounded size.
"""

from __future__ import annotations

import codecs
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 64 * 1024

# (inode of the run's log, new text)
Emit = Callable[[int, str], None]


class LogTailer:
    def __init__(self, path: Path, emit: Emit, interval: float = 0.5, chunk: int = CHUNK) -> None:
        self.path = path
        self._emit = emit
        self._interval = interval
        self._chunk = chunk
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._inode = 0
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if self._open():
            # Whatever run.log holds now is an earlier run's: start at its end.
            self._offset = os.fstat(self._fd).st_size  # type: ignore[arg-type]

    def start(self) -> LogTailer:
        self._thread = threading.Thread(target=self._run, name="log-tailer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after one last read, so the end of the last run is not lost."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close()

    def _run(self) -> None:
        while True:
            stopping = self._stopping.wait(self._interval)
            try:
                self.poll()
            except Exception:
                log.exception("tailing %s failed", self.path)
            if stopping:
                return

    def poll(self) -> None:
        self._drain()
        try:
            inode = os.stat(self.path).st_ino
        except OSError:
            return
        if inode != self._inode and self._open():
            self._drain()

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        self._close()
        self._fd, self._inode, self._offset = fd, os.fstat(fd).st_ino, 0
        self._decoder.reset()
        return True

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _drain(self) -> None:
        if self._fd is None:
            return
        size = os.fstat(self._fd).st_size
        pending = size - self._offset
        if pending <= 0:
            return
        skipped = ""
        if pending > self._chunk:
            skipped = f"[... {pending - self._chunk} bytes skipped ...]\n"
            self._offset = size - self._chunk
            self._decoder.reset()
        data = os.pread(self._fd, size - self._offset, self._offset)
        self._offset += len(data)
        text = self._decoder.decode(data)
        if text or skipped:
            self._emit(self._inode, skipped + text)
