"""Process control for runs, guards and agents: contain a command's whole tree, end it, find
what a killed daemon left.

Every command runs under its own shepherd (shepherd.py), a small process that is a Linux child
subreaper: whatever the command orphans (setsid, `env -i`, a daemon forking again and again) is
re-parented to the shepherd, which kills the tree to its last process when the command ends or
is stopped, and reaps it. Containment is by construction, per command: the daemon itself is no
subreaper, because `serve` runs several loops in one process (orphans of two runs would be
mixed) and reaping strangers' exit statuses there would race with every other wait in it.
Elsewhere than Linux the shepherd still ends the command's process group, and the daemon then
kills what carries the command's environment marker (a fallback: `env -i` escapes it).

Short helper commands (git, the metric extraction command) are not contained but DETACHED: in
their own session, so a Ctrl-C at the terminal reaches the loop, which stops cleanly, and never
kills a git command halfway.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import msgspec
import psutil

from .shepherd import KILL_NOW, KILL_WAIT_S

MARKER = "AUTORESEARCH_RUN_ID"
SHEPHERD = str(Path(__file__).with_name("shepherd.py"))
# Keyword arguments for a short helper subprocess: out of the terminal's process group.
DETACHED: dict[str, Any] = {"start_new_session": True}
# A command's output read by the caller (spawn's stdout).
PIPE = subprocess.PIPE
# How long the shepherd may take to start the command (Python's start on a loaded machine).
START_WAIT_S = 60.0


class Outcome(msgspec.Struct):
    # The command's exit code (negative: the signal that ended it); None when unknown.
    exit_code: int | None
    # Peak RSS of the largest process of the tree, in KiB (from the reaped processes' rusage).
    maxrss_kb: int = 0
    # Processes that would not die (uninterruptible sleep) when the shepherd gave up on them.
    left: int = 0


class Tree:
    """A command and every process it starts, under its shepherd. Use from one thread."""

    def __init__(
        self, shepherd: subprocess.Popen[bytes], reports: int, pid: int, grace: float, marker: Env
    ) -> None:
        self.shepherd = shepherd
        self.pid = pid  # the command's own pid, leader of its process group
        self.grace = grace
        self._marker = marker
        self._reports = reports
        self._text = b""
        self._done = False
        self._stopped = False

    @property
    def stdout(self) -> IO[bytes] | None:
        """The read end of the command's output, when spawned with stdout=PIPE."""
        return self.shepherd.stdout

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the tree to be gone; True once it is."""
        deadline = time.monotonic() + timeout
        while not self._done and self._read(deadline - time.monotonic()):
            pass
        return self._done

    def _read(self, timeout: float) -> bool:
        """Read what the shepherd reported within `timeout` s; False when nothing came."""
        if self._done or not select.select([self._reports], [], [], max(timeout, 0.0))[0]:
            return False
        chunk = os.read(self._reports, 4096)
        self._text += chunk
        if not chunk:  # the shepherd exited: its end of the pipe closed
            self._done = True
            self.shepherd.wait()
            os.close(self._reports)
        return True

    def stop(self) -> None:
        """End the command now: SIGTERM to the whole tree, SIGKILL after the grace time."""
        if self._done or self._stopped:
            return
        self._stopped = True
        try:
            self.shepherd.send_signal(signal.SIGTERM)
        except OSError:
            pass

    def finish(self) -> Outcome:
        """Wait for the end (after a stop: bounded), then say how the command ended. A
        shepherd that cannot answer is killed, and the command's group and marker are."""
        if not self._done:
            self.stop()
        bound = self.grace + KILL_WAIT_S + 10.0
        if not self.wait(bound):
            self.shepherd.kill()
            while not self.wait(bound):
                pass
        outcome, contained = _parse(self._text)
        if not contained:
            _kill_leftovers(self.pid, self._marker)
        return outcome

    def _first_line(self) -> str:
        """The shepherd's first report: `started PID` or `error ERRNO TEXT` ("" if none)."""
        deadline = time.monotonic() + START_WAIT_S
        while b"\n" not in self._text and not self._done:
            left = deadline - time.monotonic()
            if not self._read(left):
                self.shepherd.kill()
                break
        line, _, self._text = self._text.partition(b"\n")
        return line.decode(errors="replace").strip()

    def processes(self) -> list[psutil.Process]:
        """The command's processes right now (the shepherd excluded), orphans included."""
        try:
            return psutil.Process(self.shepherd.pid).children(recursive=True)
        except psutil.Error:
            return []


Env = tuple[str, str] | None


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout: int | IO[Any] | None,
    grace: float,
    marker: Env = None,
) -> Tree:
    """Start `argv` under a shepherd, in its own session, stdin from /dev/null, stderr with
    stdout. Raises OSError when it cannot start (FileNotFoundError: no such program)."""
    reports, theirs = os.pipe()
    try:
        shepherd = subprocess.Popen(
            [sys.executable or "python3", "-I", "-S", SHEPHERD, f"{grace:g}", str(theirs), *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            pass_fds=(theirs,),
            start_new_session=True,  # out of the terminal's group: Ctrl-C is the loop's to handle
        )
    except BaseException:
        os.close(reports)
        raise
    finally:
        os.close(theirs)
    tree = Tree(shepherd, reports, 0, grace, marker)
    first = tree._first_line()
    word, _, rest = first.partition(" ")
    if word == "started":
        tree.pid = int(rest)
        return tree
    tree.finish()
    if word == "error":
        errno, _, text = rest.partition(" ")
        raise OSError(int(errno), text)
    raise OSError(f"the process shepherd failed to start {argv[0]!r}: {first or 'no answer'}")


def start_detached(args: list[str], cwd: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own (no terminal, no signals of its starter's group),
    stdin from /dev/null and both outputs appended to `log`: the detached loop."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )


class Short(msgspec.Struct):
    returncode: int
    stdout: bytes


def run_short(command: str, cwd: Path, timeout: float) -> Short:
    """A short shell command (the metric extraction command), DETACHED, its stdout read.
    Past `timeout` its whole process group is killed and TimeoutError raised: a child it left
    holding the output pipe cannot keep the loop waiting."""
    with subprocess.Popen(
        command,
        shell=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        **DETACHED,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=KILL_WAIT_S)
            raise TimeoutError(f"ran over {timeout:g}s") from None
    return Short(returncode=proc.returncode, stdout=out)


def _parse(text: bytes) -> tuple[Outcome, bool]:
    """The shepherd's last line: `exited RAW MAXRSS LEFT REAPER`. (outcome, contained)."""
    for line in reversed(text.decode(errors="replace").splitlines()):
        words = line.split()
        if len(words) == 5 and words[0] == "exited":
            raw, maxrss, left, reaper = (int(w) for w in words[1:])
            code = os.waitstatus_to_exitcode(raw) if raw != -1 else None
            return Outcome(code, maxrss, left), bool(reaper)
    return Outcome(None), False


def _kill_leftovers(pid: int, marker: Env) -> None:
    """The fallback where the tree was not contained: the command's group, then its marker."""
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    if marker:
        signal_all(processes_with_env(*marker), signal.SIGKILL)


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every process (but this one) whose environment carries the run marker `marker`."""
    return processes_with_env(MARKER, marker)


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """Every process (but this one) whose environment has name=value. On Linux the
    environments are read raw from /proc: a third of psutil's cost."""
    found = []
    if os.path.isdir("/proc/self"):
        for pid in _proc_pids_with(f"{name}={value}\0".encode()):
            try:
                found.append(psutil.Process(pid))
            except psutil.Error:  # ended meanwhile
                pass
        return found
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(name) == value:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _proc_pids_with(entry: bytes) -> list[int]:
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                data = f.read()
        except OSError:  # gone, or not ours to read
            continue
        if data.startswith(entry) or b"\0" + entry in data:
            found.append(int(name))
    return found


def signal_all(procs: list[psutil.Process], sig: signal.Signals = signal.SIGKILL) -> int:
    """Signal each process; how many there were. A shepherd among them that outlived its
    daemon is first told to kill its tree: what it holds (env-cleared orphans, a forking
    daemon) no marker or group finds."""
    if sig == signal.SIGKILL:
        _end_shepherds(procs)
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass
    return len(procs)


def _end_shepherds(procs: list[psutil.Process]) -> None:
    shepherds = []
    for proc in procs:
        try:
            if SHEPHERD in proc.cmdline():
                proc.send_signal(KILL_NOW)
                shepherds.append(proc)
        except psutil.Error:
            continue
    if shepherds:
        psutil.wait_procs(shepherds, timeout=KILL_WAIT_S + 5.0)


def kill_marked(marker: str, sig: signal.Signals = signal.SIGKILL) -> int:
    """Signal every process carrying the run marker `marker`; how many there were."""
    return signal_all(marked_processes(marker), sig)
