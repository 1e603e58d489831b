"""A minimal JSON-RPC client over the daemon's stdio, as VS Code's language client talks to it.

Blocking calls from the benchmark's thread; a reader thread routes responses by id, keeps
notifications (counted, the last few kept) and answers any request from the server with null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


class RpcError(RuntimeError):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = str(error.get("message", ""))


class Daemon:
    """`autoresearch serve` in a subprocess, initialized; close() shuts it down properly."""

    def __init__(
        self, env: dict[str, str] | None = None, cwd: Path | None = None, log: Path | None = None
    ) -> None:
        # `log`: where the daemon's stderr goes (by default nowhere).
        self.stderr = open(log or os.devnull, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoresearch", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        assert self.proc.stdin and self.proc.stdout
        self._out: BinaryIO = self.proc.stdin
        self._lock = threading.Lock()
        self._next = 0
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.counts: Counter[str] = Counter()
        self.recent: dict[str, deque[Any]] = {}
        self.listeners: list[Callable[[str, Any], None]] = []
        # Responses to no request of ours (id null: a message the daemon could not read).
        self.orphans: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        self.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
        self.notify("initialized", {})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, method: str, params: Any, timeout: float = 120.0) -> Any:
        with self._lock:
            self._next += 1
            rid = self._next
            done = threading.Event()
            box: list[dict[str, Any]] = []
            self._pending[rid] = (done, box)
            self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        if not done.wait(timeout):
            raise TimeoutError(f"{method}: no answer in {timeout:g} s")
        message = box[0]
        if "error" in message:
            raise RpcError(message["error"])
        return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        with self._lock:
            self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise RuntimeError("the daemon exited")
            if time.monotonic() > deadline:
                raise TimeoutError("the daemon did not get there in time")
            time.sleep(0.02)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout=30)
                self.notify("exit", None)
                self.proc.wait(30)
        except (OSError, TimeoutError, RpcError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            self.stderr.close()

    def send_raw(self, body: bytes) -> None:
        """Any bytes as one message's body, framed correctly: for malformed requests."""
        with self._lock:
            self._out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self._out.flush()

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self._out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self._out.flush()

    def _read(self, stream: BinaryIO) -> None:
        while True:
            length = 0
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            message = json.loads(stream.read(length))
            if "id" in message and "method" not in message:
                waiter = self._pending.pop(message["id"], None)
                if waiter:
                    waiter[1].append(message)
                    waiter[0].set()
                else:
                    self.orphans.append(message)
            elif "id" in message:  # a request from the server: accept it
                with self._lock:
                    self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            else:
                method = message.get("method", "")
                self.counts[method] += 1
                self.recent.setdefault(method, deque(maxlen=5)).append(message.get("params"))
                for listener in self.listeners:
                    listener(method, message.get("params"))
