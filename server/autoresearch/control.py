"""The detached loop's control channel: a Unix domain socket, one JSON object per line.

A client sends `ControlRequest`s and reads one `ControlReply` per request; after `subscribe`
it also reads `ControlEvent`s (the loop's notifications, as the daemon sends them to VS Code)
until it hangs up. The socket is the user's alone (mode 0600 in a 0700 folder, never a TCP
port). Whether a loop runs is the loop lock's answer (flock: gone with its process, so a kill -9
or a reboot leaves nothing that blocks a start); a socket file without a lock holder is stale
and is removed by whoever finds it; any other file at that path is a person's, never removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from .lock import RepoLock
from .protocol import LoopState

SOCKET_FILE = ".autoresearch/loop.sock"
# sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
MAX_SOCKET_PATH = 100
OPS = ("hello", "state", "stop", "pause", "resume", "steer", "run_experiment", "subscribe")
MAX_LINE = 4 * 1024 * 1024


class ControlRequest(msgspec.Struct, omit_defaults=True):
    op: str
    now: bool = False
    text: str = ""
    # With subscribe: the client is an editor, where a person can Run Experiment. A manual
    # loop pauses when the last one goes (`autoresearch attach` only follows).
    editor: bool = False


class ControlReply(msgspec.Struct, omit_defaults=True):
    ok: bool
    message: str = ""
    pid: int = 0
    # When the detached loop started (ISO 8601, UTC).
    started: str = ""
    state: LoopState | None = None


class ControlEvent(msgspec.Struct):
    # A protocol.Method notification name, or "progress" for a line for people.
    event: str
    payload: Any


class ControlError(RuntimeError):
    """No detached loop answers here; the message says why and what to do."""


def socket_path(root: Path) -> Path:
    """`.autoresearch/loop.sock`, or, when that path is too long for a socket address (a deep
    repository), a socket in a private folder under /tmp named by a hash of the repository's
    path (so no pointer file is needed: every client computes the same path)."""
    inside = root / SOCKET_FILE
    if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:20]
    # /tmp itself, not $TMPDIR or $XDG_RUNTIME_DIR: every window, terminal and SSH session of
    # the user must find the same path, and the runtime dir goes when the last session ends.
    return Path("/tmp") / f"autoresearch-{os.getuid()}" / f"{digest}.sock"


def private_dir(path: Path) -> None:
    """The socket's folder exists, is ours, and nobody else may enter it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.parent.lstat()
    if info.st_uid != os.getuid() or not path.parent.is_dir() or path.parent.is_symlink():
        raise ControlError(
            f"{path.parent} is not a folder of yours: the loop's socket cannot go there safely."
            " Remove it, or move the repository to a shorter path."
        )
    if path.parent.name.startswith("autoresearch-"):
        os.chmod(path.parent, 0o700)


def check_socket_free(root: Path) -> None:
    """Nothing but a socket (a stale one) is at the loop's socket path: a file or folder a
    person put there is in the way, and is theirs to move, never removed by the loop."""
    path = socket_path(root)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(
            f"{path} is in the way of the detached loop's socket and is not one (nothing was"
            " changed). Move it elsewhere, then start again."
        )


def remove_stale(path: Path) -> None:
    """Remove the socket file a loop left at `path`; anything else there is left alone."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def listen(root: Path) -> socket.socket:
    """Bind the loop's socket (its holder must hold the loop lock: an old socket is stale).

    The socket is bound and listening under a private name first and renamed into place: a
    client that finds the socket path always finds it listening. (Bound in place, a client
    connecting between bind and listen was refused, took the file for a dead loop's and
    removed it under the starting loop.)"""
    path = socket_path(root)
    private_dir(path)
    check_socket_free(root)
    remove_stale(path)
    # No longer than "loop.sock", so it fits wherever the socket's own path fits.
    staging = path.with_name(f".{os.getpid():x}.s")
    remove_stale(staging)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # born 0600: no window in which another user could connect
    try:
        server.bind(str(staging))
    finally:
        os.umask(old)
    try:
        os.chmod(staging, 0o600)
        server.listen(8)
        os.rename(staging, path)
    except OSError:
        server.close()
        remove_stale(staging)
        raise
    return server


def running(root: Path) -> bool:
    """A detached loop runs here: its socket exists and a loop holds the lock. A socket left
    by a loop that died (kill -9, a reboot) is removed on the way."""
    path = socket_path(root)
    if not path.exists():
        return False
    if RepoLock(root).held_elsewhere() is None:
        remove_stale(path)
        return False
    return True


class Connection:
    """A client's end of the control socket."""

    def __init__(self, root: Path, timeout: float | None = 10.0) -> None:
        self.root = root
        if not running(root):
            raise ControlError(
                f"No detached loop runs in {root}. Start one with `autoresearch run --detach`."
            )
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(socket_path(root)))
        except OSError as exc:
            self._sock.close()
            # Nobody listens and nobody holds the lock: a dead loop's file. (While a loop holds
            # the lock, a refusal means it is ending; it removes its own socket.)
            if isinstance(exc, ConnectionRefusedError) and RepoLock(root).held_elsewhere() is None:
                remove_stale(socket_path(root))
            raise ControlError(
                f"The detached loop in {root} does not answer on its socket ({exc.strerror})."
                " It may be ending; try again in a moment."
            ) from None
        self._file = self._sock.makefile("rb")

    def ask(self, op: str, now: bool = False, text: str = "", editor: bool = False) -> ControlReply:
        self.send(ControlRequest(op=op, now=now, text=text, editor=editor))
        line = self._file.readline(MAX_LINE)
        if not line:
            raise ControlError(f"The detached loop in {self.root} hung up (it has ended).")
        return msgspec.json.decode(line, type=ControlReply)

    def send(self, request: ControlRequest) -> None:
        self._sock.sendall(msgspec.json.encode(request) + b"\n")

    def events(self) -> Iterator[ControlEvent]:
        """The loop's events after `subscribe`, until it ends (or the socket is closed)."""
        self._sock.settimeout(None)
        while True:
            try:
                line = self._file.readline(MAX_LINE)
            except (OSError, ValueError):
                return
            if not line:
                return
            yield msgspec.json.decode(line, type=ControlEvent)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def ask(root: Path, op: str, now: bool = False, text: str = "") -> ControlReply:
    with Connection(root) as conn:
        return conn.ask(op, now, text)
