"""Follow the live run.log for logAppended: throttled, bounded, on its own thread.

run.log is re-linked to a new file for every run (measure.prepare_log), so the tailer follows
the path, not an open file: a new inode starts a new log from its first byte. A burst larger
than one chunk is skipped down to its last chunk, with a line saying so: the client gets the
latest output promptly and never a message of unbounded size.
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


class LogTailer:
    def __init__(
        self,
        path: Path,
        emit: Callable[[str], None],
        interval: float = 0.5,
        chunk: int = CHUNK,
    ) -> None:
        self.path = path
        self._emit = emit
        self._interval = interval
        self._chunk = chunk
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._inode: int | None = None
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            # Whatever run.log holds now is an older run's: start at its end.
            st = path.stat()
            self._inode, self._offset = st.st_ino, st.st_size
        except OSError:
            pass

    def start(self) -> LogTailer:
        self._thread = threading.Thread(target=self._run, name="log-tailer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after one last read, so the end of the last run is not lost."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

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
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if st.st_ino != self._inode or st.st_size < self._offset:
                self._inode, self._offset = st.st_ino, 0
                self._decoder.reset()
            pending = st.st_size - self._offset
            if pending <= 0:
                return
            skipped = ""
            if pending > self._chunk:
                skipped = f"[... {pending - self._chunk} bytes skipped ...]\n"
                self._offset = st.st_size - self._chunk
                self._decoder.reset()
            data = os.pread(fd, st.st_size - self._offset, self._offset)
        finally:
            os.close(fd)
        self._offset += len(data)
        text = self._decoder.decode(data)
        if text or skipped:
            self._emit(skipped + text)
