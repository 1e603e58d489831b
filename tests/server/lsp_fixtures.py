"""A real LSP client for the real `autoresearch serve` subprocess, and repositories to serve.

pytest-lsp's client, with the daemon's notifications recorded in arrival order and custom
params/results kept as plain dicts (as VS Code's client sees them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import conftest
import tomli_w
from lsprotocol import types
from pygls.protocol import JsonRPCNotification, JsonRPCResponseMessage, default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import register_lsp_features

from autoresearch.protocol import NOTIFICATIONS

SERVER = [sys.executable, "-m", "autoresearch", "serve"]
T = TypeVar("T")


class Client(LanguageClient):
    """Records every autoresearch notification as (method, params) in order."""

    def __init__(self) -> None:
        super().__init__(converter_factory=_plain_converter)
        register_lsp_features(self)
        self.events: list[tuple[str, dict[str, Any]]] = []
        for method in NOTIFICATIONS:
            self.feature(method)(self._recorder(method))

    def _recorder(self, method: str) -> Callable[[Any], None]:
        def record(params: Any) -> None:
            self.events.append((method, params))

        return record

    async def request(self, method: str, params: dict[str, Any] | None) -> Any:
        return await asyncio.wait_for(self.protocol.send_request_async(method, params), 60)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.events if m == method]

    async def until(self, check: Callable[[], T | None], timeout: float = 60.0) -> T:
        """Wait for `check()` to be truthy; fail with the recent events otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                recent = [(m, p.get("phase", "")) for m, p in self.events[-15:]]
                raise AssertionError(f"timed out; recent notifications: {recent}")
            await asyncio.sleep(0.05)


def _plain_converter() -> Any:
    converter = default_converter()

    def keep(obj: dict[str, Any], cls: type) -> Any:
        return cls(**obj)

    converter.register_structure_hook(JsonRPCNotification, keep)
    converter.register_structure_hook(JsonRPCResponseMessage, keep)
    return converter


@contextlib.asynccontextmanager
async def daemon(env: dict[str, str] | None = None, progress: bool = True) -> AsyncIterator[Client]:
    """Start `autoresearch serve`, initialize, and shut it down properly at the end."""
    client = Client()
    await client.start_io(*SERVER, env={**os.environ, **(env or {})})
    window = types.WindowClientCapabilities(work_done_progress=progress)
    await client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(window=window))
    )
    try:
        yield client
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            try:
                await asyncio.wait_for(client.shutdown_session(), 30)
            except (asyncio.TimeoutError, RuntimeError):
                server.kill()
        await client.stop()


# ---- repositories ---------------------------------------------------------------------------

TRAIN = """\
import time

X = 1.0
SLOW = 0
if SLOW and X != 1.0:
    time.sleep(120)  # only experiments are slow: the baseline (X = 1.0) is quick
print("training...")
print(f"val_loss: {abs(X - 0.7):.6f}")
"""


git = conftest.git  # the tests import their repository helpers from here


def make_repo(root: Path, files: dict[str, str] | None = None) -> Path:
    return conftest.make_repo(root, files or {"train.py": TRAIN})


def config(**run: Any) -> dict[str, Any]:
    """A start request's config: the sweep agent tunes X in train.py."""
    return {
        "metric": {"name": "val_loss", "direction": "lower"},
        "run": {"command": f"{sys.executable} train.py", "timeout": 60, **run},
        "scope": {"files": ["train.py"]},
        "agent": {"kind": "sweep", "seed": 3, "params": [{"name": "X", "low": 0.1, "high": 5}]},
    }


def write_config(root: Path, raw: dict[str, Any]) -> None:
    (root / "autoresearch.toml").write_text(tomli_w.dumps(raw))
