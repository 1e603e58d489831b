"""A GPU source read from a JSON file: the backend of the tests and the e2e suite.

`AUTORESEARCH_FAKE_GPU=/path/status.json` selects it (see `gpu.open_source`). The file has the
shape of `protocol.GpuStatus`. It is re-read only when its stat changes, so a test can edit the
values while the daemon runs; writers should replace it atomically (write a temporary file, then
`os.replace`), which also gives it a new inode, so even a same-size rewrite within one mtime tick
is noticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from .protocol import GpuStatus

FAKE_ENV = "AUTORESEARCH_FAKE_GPU"

# What tells one version of the file from the next without reading it.
_Stamp = tuple[int, int, int, int]


class FakeSource:
    """`GpuSource` over a JSON file; a missing or malformed file reads as an unavailable GPU."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: _Stamp | None = None
        self._status: GpuStatus | None = None
        self._decoder = msgspec.json.Decoder(GpuStatus)

    def read(self) -> GpuStatus:
        try:
            st = self.path.stat()
        except OSError as e:
            self._stamp = None
            return self._unavailable(e.strerror or type(e).__name__)
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp and self._status is not None:
            return self._status
        try:
            status = self._decoder.decode(self.path.read_bytes())
        except OSError as e:
            status = self._unavailable(e.strerror or type(e).__name__)
        except msgspec.DecodeError as e:
            status = self._unavailable(f"malformed ({e})")
        self._stamp, self._status = stamp, status
        return status

    def close(self) -> None:
        pass

    def _unavailable(self, problem: str) -> GpuStatus:
        return GpuStatus(available=False, message=f"Fake GPU file {self.path}: {problem}")
