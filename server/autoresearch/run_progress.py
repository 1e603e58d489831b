"""`$/progress` for the running experiment: begin, elapsed against the timeout, end.

Driven by the stateChanged stream on the event loop's thread, one progress per run (the
baseline's noise repeats and confirmation runs each get their own). Only for clients that
declare `window.workDoneProgress`; the token is created with the client first, as LSP asks.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import msgspec
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .protocol import LoopState

log = logging.getLogger(__name__)


class _Run(msgspec.Struct):
    token: str
    key: tuple[str, int | None]
    ready: asyncio.Future[None]


class RunProgress:
    def __init__(self, server: LanguageServer) -> None:
        self._server = server
        self._runs: dict[str, _Run] = {}

    def update(self, state: LoopState) -> None:
        if not self._supported():
            return
        run = self._runs.get(state.root)
        running = state.phase == "running" and state.current is not None
        key = (state.tag, state.current)
        if run is not None and (not running or run.key != key):
            self._end(self._runs.pop(state.root))
            run = None
        if not running:
            return
        if run is None:
            token = f"autoresearch-{uuid.uuid4().hex}"
            ready = asyncio.ensure_future(self._begin(token, state))
            self._runs[state.root] = _Run(token=token, key=key, ready=ready)
        elif run.ready.done() and run.ready.exception() is None:
            self._send(run.token, types.WorkDoneProgressReport(**_values(state)))

    async def _begin(self, token: str, state: LoopState) -> None:
        progress = self._server.work_done_progress
        await progress.create_async(token)
        title = "Baseline" if state.current == 0 else f"Experiment #{state.current}"
        self._send(token, types.WorkDoneProgressBegin(title=title, **_values(state)))

    def _end(self, run: _Run) -> None:
        def finish(ready: asyncio.Future[None]) -> None:
            if not ready.cancelled() and ready.exception() is None:
                self._send(run.token, types.WorkDoneProgressEnd())
            elif not ready.cancelled():
                log.info("progress %s not shown: %s", run.token, ready.exception())

        run.ready.add_done_callback(finish)

    def _send(self, token: str, value: object) -> None:
        self._server.protocol.notify(
            types.PROGRESS,
            types.ProgressParams(token=token, value=value),  # type: ignore[arg-type]
        )

    def _supported(self) -> bool:
        try:
            window = self._server.client_capabilities.window
        except AttributeError:
            return False
        return bool(window and window.work_done_progress)


def _values(state: LoopState) -> dict[str, object]:
    elapsed, timeout = state.elapsed_s, state.timeout_s
    if elapsed is None or not timeout:
        return {"message": state.message, "percentage": 0}
    return {
        "message": f"{elapsed:.0f} s of {timeout:.0f} s",
        "percentage": min(100, int(100 * elapsed / timeout)),
    }
