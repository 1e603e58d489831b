"""`autoresearch serve`: the loop's JSON-RPC face over stdio (pygls 2), for VS Code.

A table of small handlers, one per `protocol.REQUESTS` method. Each decodes its params with
msgspec into the protocol Struct (a bad field becomes InvalidParams naming it, and the daemon
serves on), runs on a worker thread (git, files and joins never block the event loop, so a
request is answered while an experiment runs), and returns plain builtins. Notifications from
the loop's, the observer's and the GPU monitor's threads hop onto the event loop with
`call_soon_threadsafe`. stdout carries protocol messages only: logs go to stderr and to each
workspace's `.autoresearch/daemon.log`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcServerError,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, default_converter

from .agents.editor import EditorUnreachable
from .detect import detect
from .gpu import GpuMonitor, cluster_source, open_source
from .protocol import REQUESTS, EditorEditParams, EditorEditResult, GpuStatus, Method, to_wire
from .run_progress import RunProgress
from .workspace import ParamError, Workspace, Workspaces

log = logging.getLogger("autoresearch.server")

# JSON-RPC "server error" range: the request was understood, the repository said no (locked,
# bad config, dirty tree, unknown commit...). The message is the user's explanation.
USER_ERROR = -32001
WORKERS = 8
PARSE_ERROR = -32700
INVALID_REQUEST = -32600

try:
    VERSION = importlib.metadata.version("autoresearch")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
    VERSION = "0"


class AutoresearchServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "autoresearch",
            VERSION,
            text_document_sync_kind=types.TextDocumentSyncKind.None_,
            converter_factory=_converter,
        )
        self.aio: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="request")
        self.workspaces = Workspaces(self)
        self.progress = RunProgress(self)
        self._monitor: GpuMonitor | None = None
        self._monitor_lock = threading.Lock()

    # ---- notifications, from any thread ------------------------------------------------------

    def post(self, method: str, payload: msgspec.Struct) -> None:
        aio = self.aio
        if self.closing or aio is None:
            return
        wire = to_wire(payload)
        try:
            aio.call_soon_threadsafe(self._send, method, wire, payload)
        except RuntimeError:
            pass  # the event loop is closed: the client is gone

    def say(self, text: str) -> None:
        aio = self.aio
        if self.closing or aio is None:
            return
        params = types.LogMessageParams(type=types.MessageType.Info, message=text)
        try:
            aio.call_soon_threadsafe(self._log_message, params)
        except RuntimeError:
            pass

    def _log_message(self, params: types.LogMessageParams) -> None:
        if not self.closing:
            self.protocol.notify(types.WINDOW_LOG_MESSAGE, params)

    def _send(self, method: str, wire: Any, payload: msgspec.Struct) -> None:
        if self.closing:
            return
        self.protocol.notify(method, wire)
        if method == Method.STATE_CHANGED:
            self.progress.update(payload)  # type: ignore[arg-type]

    # ---- requests to the client, from the loop's thread -----------------------------------------

    def ask_editor(
        self, params: EditorEditParams, timeout: float, cancel: threading.Event
    ) -> EditorEditResult | None:
        """Ask VS Code to send a prompt to its chat model; wait at most `timeout` seconds.
        None when `cancel` is set first; EditorUnreachable when no answer can come."""
        aio = self.aio
        if self.closing or aio is None:
            raise EditorUnreachable("no VS Code window is connected to the daemon")
        future = asyncio.run_coroutine_threadsafe(self._request(Method.EDITOR_EDIT, params), aio)
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = future.result(timeout=0.2)
                break
            except concurrent.futures.TimeoutError:
                if cancel.is_set() or self.closing:
                    future.cancel()
                    if cancel.is_set():
                        return None
                    raise EditorUnreachable("the VS Code window closed") from None
                if time.monotonic() > deadline:
                    future.cancel()
                    raise EditorUnreachable(
                        f"VS Code did not answer within {timeout:g} s (agent.timeout)"
                    ) from None
            except JsonRpcException as exc:
                raise EditorUnreachable(f"VS Code answered with an error: {exc.message}") from None
            except concurrent.futures.CancelledError:
                raise EditorUnreachable("the request to VS Code was cancelled") from None
        try:
            return msgspec.convert(_plain(raw), EditorEditResult)
        except msgspec.ValidationError as exc:
            raise EditorUnreachable(f"VS Code's answer is malformed: {exc}") from None

    async def _request(self, method: str, params: msgspec.Struct) -> Any:
        return await self.protocol.send_request_async(method, to_wire(params))

    # ---- GPU ------------------------------------------------------------------------------------

    def gpu_status(self) -> GpuStatus:
        monitor = self._monitor
        if monitor is None:
            return GpuStatus(available=False, message="GPU status not read yet")
        return monitor.latest()

    def start_gpu_monitor(self, root: str | None = None) -> GpuStatus:
        """One monitor per daemon, about 1 Hz; it notifies only on change. A `root` whose
        config runs experiments on a Ray cluster turns it to the cluster's GPUs."""
        with self._monitor_lock:
            cluster = cluster_source(Path(root)) if root else None
            if cluster is not None:
                if self._monitor is not None:
                    self._monitor.stop()
                self._monitor = GpuMonitor(cluster, self._gpu_changed).start()
            if self._monitor is None:
                self._monitor = GpuMonitor(open_source(), self._gpu_changed).start()
            return self._monitor.latest()

    def _gpu_changed(self, status: GpuStatus) -> None:
        self.post(Method.GPU_STATUS, status)

    # ---- messages that are not JSON-RPC -------------------------------------------------------

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls' read loop could not take a message (bad JSON, not a request object): answer as
        JSON-RPC says, with id null, log one line, and read the next message."""
        if source is not JsonRpcException:  # a handler's or a send's error: pygls' own report
            super().report_server_error(error, source)
            return
        if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
            code, text = PARSE_ERROR, f"Parse error: {error}"
        elif isinstance(error, JsonRpcException):  # pygls could not structure an LSP message
            code, text = error.code, f"{error.message} ({error.__cause__ or 'no detail'})"
        else:
            code, text = INVALID_REQUEST, "Invalid Request: the message is not a JSON-RPC object"
        log.warning("answered id null, %d: %s [%s]", code, text, type(error).__name__)
        error_body = {"code": code, "message": text}
        self.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": error_body})

    # ---- lifecycle ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        # pygls' own shutdown waits for its reader thread, which is blocked on a stdin the client
        # may never close; serve() ends the process once the loops are stopped instead.
        self.closing = True
        if self._stop_event is not None:
            self._stop_event.set()
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop every loop (the running experiment is abandoned and recorded), then the rest."""
        self.closing = True
        workspaces = self.workspaces.all()
        for ws in workspaces:
            ws.begin_close()
        for ws in workspaces:
            try:
                ws.close()
            except Exception:
                log.exception("closing %s failed", ws.root)
        if self._monitor is not None:
            self._monitor.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)


# ---- handlers: one per request, each a line into the workspace ------------------------------

Handler = Callable[[AutoresearchServer, Any], msgspec.Struct]


def _ws(server: AutoresearchServer, params: Any) -> Workspace:
    return server.workspaces.get(params.root)


HANDLERS: dict[str, Handler] = {
    Method.DETECT: lambda s, p: detect(_ws(s, p).root),
    Method.START: lambda s, p: _ws(s, p).start(p.config, p.loop, p.tag, p.detach),
    Method.STOP: lambda s, p: _ws(s, p).stop(p.now),
    Method.PAUSE: lambda s, p: _ws(s, p).pause(),
    Method.RESUME: lambda s, p: _ws(s, p).resume(),
    Method.RUN_EXPERIMENT: lambda s, p: _ws(s, p).run_experiment(p.description),
    Method.STATE: lambda s, p: _ws(s, p).state(),
    Method.EXPERIMENTS: lambda s, p: _ws(s, p).experiments(
        p.tag, p.offset, p.limit, p.newest_first
    ),
    Method.CHANGES: lambda s, p: _ws(s, p).changes(p.commit, p.number, p.tag),
    Method.FILE_AT: lambda s, p: _ws(s, p).file_at(p.commit, p.path),
    Method.LOG: lambda s, p: _ws(s, p).run_log(p.number, p.tag, p.max_bytes),
    Method.GPUS: lambda s, p: s.start_gpu_monitor(p.root),
    Method.GUIDANCE: lambda s, p: _ws(s, p).guidance(p.text),
    Method.CHART_SERIES: lambda s, p: _ws(s, p).chart_series(p.tag, p.buckets),
    Method.CURVE: lambda s, p: _ws(s, p).curve(p.number, p.tag),
}
assert set(HANDLERS) == set(REQUESTS), "every protocol request needs a handler"


def _register(server: AutoresearchServer, method: str, params_type: type, handler: Handler) -> None:
    async def handle(params: Any) -> Any:
        aio = server.aio = asyncio.get_running_loop()
        decoded = decode(method, params, params_type)
        try:
            result = await aio.run_in_executor(server.pool, handler, server, decoded)
        except ParamError as exc:
            raise JsonRpcInvalidParams(f"{method}: {exc}") from None
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("%s: %s", method, exc)
            raise JsonRpcServerError(str(exc), USER_ERROR) from None
        except Exception as exc:
            log.exception("%s failed", method)
            raise JsonRpcInternalError(f"{method} failed: {exc!r}. See the daemon log.") from None
        return to_wire(result)

    server.feature(method)(handle)


def decode(method: str, params: Any, params_type: type) -> Any:
    """Params into their protocol Struct; the error names the offending field."""
    try:
        return msgspec.convert(_plain(params), params_type)
    except msgspec.ValidationError as exc:
        raise JsonRpcInvalidParams(f"{method}: invalid params: {explain(exc)}") from None


def explain(exc: msgspec.ValidationError) -> str:
    """msgspec's message, field first: `root: expected str, got int`."""
    text = str(exc)
    at = re.search(r" - at `\$\.?(.*)`$", text)
    where = at.group(1) if at else ""
    body = text[: at.start()] if at else text
    named = re.search(r"(missing required|unknown) field `([^`]+)`", body)
    if named:
        field = f"{where}.{named.group(2)}" if where else named.group(2)
        what = "missing (required)" if named.group(1) == "missing required" else "unknown field"
        return f"{field}: {what}"
    return f"{where or 'params'}: {body[:1].lower()}{body[1:]}".replace("`", "")


def _plain(value: Any) -> Any:
    """pygls may hand params over as namedtuples; msgspec wants dicts."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _converter() -> Any:
    """pygls' converter, but custom params stay plain JSON: no namedtuples to undo, and keys that
    are not identifiers survive."""
    converter = default_converter()

    def keep(obj: dict[str, Any], cls: type) -> Any:
        return cls(**obj)

    converter.register_structure_hook(JsonRPCRequestMessage, keep)
    converter.register_structure_hook(JsonRPCNotification, keep)
    return converter


def build_server() -> AutoresearchServer:
    server = AutoresearchServer()
    for method, (params_type, _) in REQUESTS.items():
        _register(server, method, params_type, HANDLERS[method])

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        aio = server.aio = asyncio.get_running_loop()
        await aio.run_in_executor(server.pool, server.start_gpu_monitor)

    @server.feature(types.SHUTDOWN)
    def shutdown(params: None) -> None:
        server.closing = True
        for ws in server.workspaces.all():
            ws.begin_close()

    return server


# ---- process ----------------------------------------------------------------------------------


class _ReadLoopTraceback(logging.Filter):
    """pygls logs a traceback for a message it cannot take; report_server_error says it in a
    line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in ("Unable to handle message", "Unable to deserialize message\n%s")


class _OwnErrors(logging.Filter):
    """pygls logs every handler exception with a traceback; ours are explained already."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, JsonRpcException) and not isinstance(exc, JsonRpcInternalError))


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # pygls logs every message body at INFO: far too much for a daemon that streams logs.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_OwnErrors())
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_ReadLoopTraceback())
    logging.getLogger("pygls.server").addFilter(_ReadLoopTraceback())


def _take_stdio() -> tuple[BinaryIO, BinaryIO]:
    """The wire gets private copies of fds 0 and 1; the process's own 0 and 1 become /dev/null
    and stderr. A stray print, a C library or a child process (git, an agent, a command
    that inherits them) can then neither corrupt the protocol nor read the client's bytes."""
    sys.stdout.flush()
    wire_in = os.fdopen(os.dup(0), "rb")  # buffered: pygls relies on read(n) being whole
    wire_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return wire_in, wire_out  # type: ignore[return-value]


def serve() -> None:
    """Serve on stdio until the client exits or closes stdin, then stop the loops and exit (a
    detached loop it attached to runs on: only the attachment ends)."""
    setup_logging()
    stdin, stdout = _take_stdio()
    server = build_server()

    stopping: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        # Once the loops are being stopped, a second signal must not cut that short (the
        # runs' processes would be left behind): the first one decides.
        if stopping:
            return
        stopping.append(signum)
        raise SystemExit(128 + signum)  # unwinds pygls' loop into the cleanup below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    code = 0
    try:
        server.start_io(stdin, stdout)
        code = 0 if server.protocol._shutdown else 1
    except BaseException:
        log.exception("the daemon failed")
        code = 1
    finally:
        stopping.append(0)
        log.info("client gone: stopping the loops")
        try:
            server.close()
        finally:
            logging.shutdown()
            # Worker threads (pygls' stdin reader among them) may still block: end here, now.
            os._exit(code)
