"""The shepherd: one command under a Linux child subreaper, and nothing of it left behind.

Started by `procs.spawn` as `python -I -S shepherd.py GRACE STATUS_FD ARGV...`. Standard
library only and no package import: it starts in tens of milliseconds and never depends on the
daemon's environment. It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every
process the command orphans (double forks, `setsid`, `env -i`, a daemon that forks again and
again) is re-parented to it: while it has a child, something of the command lives, and it can
find each one in /proc by walking down from itself. It reaps as they end (no zombies pile up).

On STATUS_FD it writes one line once the command started (`started PID`, or `error ERRNO
TEXT`), and one when all is over: `exited RAW_STATUS MAXRSS_KB LEFT REAPER`, where LEFT counts
processes that would not die within KILL_WAIT_S and REAPER says whether it could contain the
tree (elsewhere than Linux the daemon falls back to its marker scan).

SIGTERM, SIGINT or SIGHUP stop the command: SIGTERM to every process of the tree, GRACE seconds,
then SIGKILL until none is left; SIGUSR1 goes to SIGKILL at once. Whatever outlives the
command's own exit is killed at once.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
# "End it now, no grace": sent when the daemon that started us is gone (a resume's cleanup).
KILL_NOW = signal.SIGUSR1
# After SIGKILL: how long a process may take to die (uninterruptible I/O) before we give up.
KILL_WAIT_S = 10.0
_KILL_POLL_S = 0.01


def main(argv: list[str]) -> int:
    grace, status_fd, command = float(argv[1]), int(argv[2]), argv[3:]
    os.set_inheritable(status_fd, False)  # the command must not hold our report pipe open
    reaper = _become_subreaper()
    stop = _take_signals()
    spawn = os.posix_spawn if "/" in command[0] else os.posix_spawnp
    try:
        pid = spawn(
            command[0],
            command,
            os.environ,
            setsid=True,  # its own group: a killpg reaches what stays in it, never us
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # what Python ignores, as Popen does
        )
    except OSError as exc:
        _report(status_fd, f"error {exc.errno or 0} {exc.strerror or exc}")
        return 0
    _report(status_fd, f"started {pid}")
    _let_go_of_stdio()
    status, left = _shepherd(pid, grace, reaper, stop)
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform == "darwin":  # bytes there, kilobytes on Linux
        maxrss //= 1024
    _report(status_fd, f"exited {status} {maxrss} {left} {int(reaper)}")
    return 0


class _Stop:
    """Signals, seen by the loop: a stop request and a wake-up pipe (set_wakeup_fd) that
    ends its select() as soon as any signal (SIGCHLD too) arrives."""

    def __init__(self) -> None:
        self.requested = False
        self.now = False
        self.wakeup, writer = os.pipe()
        os.set_blocking(writer, False)
        signal.set_wakeup_fd(writer)

    def on_signal(self, signum: int, frame: object) -> None:
        if signum in STOP_SIGNALS or signum == KILL_NOW:
            self.requested = True
            self.now = self.now or signum == KILL_NOW

    def sleep(self, timeout: float) -> None:
        if select.select([self.wakeup], [], [], timeout)[0]:
            os.read(self.wakeup, 512)


def _take_signals() -> _Stop:
    stop = _Stop()
    for sig in (signal.SIGCHLD, KILL_NOW, *STOP_SIGNALS):
        signal.signal(sig, stop.on_signal)  # reset to the default in the command by exec
    return stop


def _shepherd(pid: int, grace: float, reaper: bool, stop: _Stop) -> tuple[int, int]:
    """Wait for the command, reaping every child; stop it when told. (raw status, left)."""
    status = -1
    stop_at: float | None = None  # SIGTERM sent: SIGKILL from then on
    give_up: float | None = None
    while True:
        try:
            while True:
                child, raw = os.waitpid(-1, os.WNOHANG)
                if child == 0:
                    break
                if child == pid:
                    status = raw
        except ChildProcessError:
            return status, 0  # no child left: with a subreaper, no descendant either
        if stop.requested and (stop_at is None or stop.now):
            stop_at = time.monotonic() + (0.0 if stop.now else grace)
            if not stop.now:
                _signal_tree(pid, signal.SIGTERM, reaper)
        now = time.monotonic()
        if status != -1 or (stop_at is not None and now >= stop_at):
            give_up = give_up or now + KILL_WAIT_S
            if now > give_up:
                return status, len(_descendants())
            _signal_tree(pid, signal.SIGKILL, reaper)
            timeout = _KILL_POLL_S
        elif stop_at is not None:
            timeout = max(0.0, min(0.1, stop_at - now))
        else:
            timeout = 1.0
        stop.sleep(timeout)


def _signal_tree(pid: int, sig: signal.Signals, reaper: bool) -> None:
    try:
        os.killpg(pid, sig)  # the command's group: what never left it, even mid-fork
    except OSError:
        pass
    if not reaper:
        return
    # Orphans are our direct children: one small read finds them, so a process forking in a
    # loop has next to no time to fork between being found and being signalled.
    for found in (_children(), _descendants()):
        for child in found:
            try:
                os.kill(child, sig)
            except OSError:
                pass


def _children() -> list[int]:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children", "rb") as f:
            return [int(pid) for pid in f.read().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: the full scan below finds them
        return []


def _descendants() -> list[int]:
    """Every live process below this one, from the parent links in /proc."""
    me = os.getpid()
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) "
        if len(fields) > 1 and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], list(children.get(me, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _let_go_of_stdio() -> None:
    """Our stdout may be the command's output pipe: its end of file belongs to the command."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _report(fd: int, line: str) -> None:
    try:
        os.write(fd, f"{line}\n".encode())
    except OSError:  # the daemon is gone (killed): nobody to tell
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
