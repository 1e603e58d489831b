"""The detached loop: `autoresearch run --detach`, `attach`, `stop` and `status` on real
repositories, real processes and real signals; its control socket spoken to directly.

The loop must outlive whatever started it (its own session, no terminal, stdin /dev/null),
answer on a 0600 socket, and leave nothing that blocks the next start when it is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from lsp_fixtures import config, make_repo, write_config

from autoresearch import control
from autoresearch.ledger import Ledger
from autoresearch.lock import RepoLock

STARTED: list[int] = []


@pytest.fixture(autouse=True)
def _no_detached_leftovers() -> Iterator[None]:
    """A failing test's detached loop (and its command) is killed, never left running."""
    yield
    while STARTED:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(STARTED.pop())
            for p in [*proc.children(recursive=True), proc]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()


def cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "autoresearch", *args, "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    for pid in re.findall(r"\(pid (\d+)", done.stdout):
        STARTED.append(int(pid))
    return done


def detach(root: Path, *args: str) -> int:
    done = cli(root, "run", "--detach", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(re.search(r"\(pid (\d+)", done.stdout).group(1))  # type: ignore[union-attr]


def until(check: Callable[[], object], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def recorded(root: Path) -> int:
    ledger = Ledger(root, "val_loss")
    ledger.load(repair=False)
    return sum(len(ledger.experiments(tag)) for tag in ledger.sessions)


def tsv_rows(root: Path) -> int:
    path = root / "results.tsv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def sweep_repo(tmp: Path, name: str = "repo", **run: object) -> Path:
    root = make_repo(tmp / name)
    write_config(root, config(**run))
    return root


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---- the CLI cycle ----------------------------------------------------------------------------


def test_detach_attach_stop_cycle(tmp_path: Path) -> None:
    root = sweep_repo(tmp_path)
    pid = detach(root)
    # Its own session, no terminal, stdin from /dev/null, output into the daemon log.
    assert os.getsid(pid) == pid
    assert os.readlink(f"/proc/{pid}/fd/0") == os.devnull
    assert os.readlink(f"/proc/{pid}/fd/1") == str(root / ".autoresearch" / "daemon.log")
    path = control.socket_path(root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == os.getuid()

    status = cli(root, "status")
    assert re.search(r"loop: running \(pid \d+, autoresearch run --detach, since 20", status.stdout)

    follow = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "attach", "--dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert follow.stdout is not None
    for line in follow.stdout:  # the loop's progress lines, live
        lines.append(line)
        if re.match(r"#\d+ (keep|discard|crash)", line):
            break
    assert lines[0].startswith(f"attached to the loop in {root} (pid {pid}")

    stopped = cli(root, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopping after this experiment" in stopped.stdout
    assert "the loop has stopped" in stopped.stdout
    rest = follow.communicate(timeout=60)[0]
    assert follow.returncode == 0 and rest.rstrip().endswith("the loop has ended")
    until(lambda: gone(pid), "the detached process to end")

    # Everything it ran is recorded, in both files; nothing blocks the next start.
    assert recorded(root) == tsv_rows(root) >= 2
    assert not path.exists()
    assert "not running" in cli(root, "status").stdout
    again = cli(root, "stop")
    assert again.returncode == 2
    assert "No loop is running" in again.stderr and "run --detach" in again.stderr


def test_the_loop_outlives_the_process_group_that_started_it(tmp_path: Path) -> None:
    """A closed terminal (SIGHUP to its group) or a killed editor does not reach the loop."""
    root = sweep_repo(tmp_path)
    starter = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} -m autoresearch run --detach --dir {root}; sleep 60"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert starter.stdout is not None
    first = starter.stdout.readline()
    pid = int(re.search(r"\(pid (\d+)", first).group(1))  # type: ignore[union-attr]
    STARTED.append(pid)
    os.killpg(starter.pid, signal.SIGHUP)
    os.killpg(starter.pid, signal.SIGKILL)
    starter.wait(10)
    before = recorded(root)
    until(lambda: recorded(root) >= before + 2, "two more experiments after the starter died")
    assert not gone(pid)
    assert cli(root, "stop").returncode == 0


def test_kill_9_leaves_nothing_that_blocks_the_next_start(tmp_path: Path) -> None:
    root = sweep_repo(tmp_path)
    pid = detach(root)
    until(lambda: recorded(root) >= 2, "two experiments")
    os.kill(pid, signal.SIGKILL)
    until(lambda: gone(pid), "the killed loop to be gone")
    assert control.socket_path(root).exists()  # as a crash or a reboot leaves it
    assert "loop: not running" in cli(root, "status").stdout
    stop = cli(root, "stop")
    assert stop.returncode == 2 and "No loop is running" in stop.stderr
    assert not control.socket_path(root).exists()  # found stale, removed

    pid2 = detach(root, "--loop", "2")  # recovers as any start after a crash does
    until(lambda: gone(pid2), "the second loop to finish its two experiments")
    assert recorded(root) == tsv_rows(root)
    assert "resuming" in (root / ".autoresearch" / "daemon.log").read_text()


def test_sigterm_stops_the_detached_loop_after_its_experiment(tmp_path: Path) -> None:
    """A `kill` (a scheduler's stop, a shutdown) is a clean stop, as `autoresearch stop` is."""
    root = sweep_repo(tmp_path)
    pid = detach(root)
    until(lambda: recorded(root) >= 2, "two experiments")
    os.kill(pid, signal.SIGTERM)
    until(lambda: gone(pid), "the loop to stop")
    assert recorded(root) == tsv_rows(root)
    assert (
        f"detached loop in {root}: stopped" in (root / ".autoresearch" / "daemon.log").read_text()
    )
    assert not control.socket_path(root).exists()
    assert "loop: not running" in cli(root, "status").stdout


def test_a_deep_repository_gets_its_socket_in_a_private_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    root = sweep_repo(deep)
    path = control.socket_path(root)
    assert len(os.fsencode(root / control.SOCKET_FILE)) > 108  # too long to bind there
    assert not path.is_relative_to(root)
    pid = detach(root)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert control.ask(root, "hello").pid == pid
    assert cli(root, "stop").returncode == 0
    assert not path.exists()


# ---- refusals -----------------------------------------------------------------------------------


def test_detach_while_a_loop_runs_is_refused(tmp_path: Path) -> None:
    root = sweep_repo(tmp_path)
    pid = detach(root)
    second = cli(root, "run", "--detach")
    assert second.returncode == 2
    assert f"A loop is already running in {root} (pid {pid}" in second.stderr
    assert "autoresearch stop" in second.stderr
    foreground = cli(root, "run", "--loop", "1")
    assert foreground.returncode == 2 and "already running" in foreground.stderr
    assert cli(root, "stop").returncode == 0


def test_a_start_beside_a_running_loop_is_refused_before_it_reads_the_files(
    tmp_path: Path,
) -> None:
    """While a loop runs, its edit step may be rewriting the files in scope: a second start
    says the loop runs, not that the half-written files break the config (a busy fresh-clone
    run found "... name X, not found as `NAME = value` lines" here). The lock is held by this
    test, the file in scope left as an edit step has it halfway: empty."""
    root = sweep_repo(tmp_path)
    train = next(p for p in root.iterdir() if p.suffix == ".py")
    with RepoLock(root):
        train.write_text("")
        for args in (("run", "--loop", "1"), ("run", "--detach")):
            done = cli(root, *args)
            assert done.returncode == 2, args
            assert "already running" in done.stderr and "not found" not in done.stderr, args


def test_a_manual_loop_cannot_detach(tmp_path: Path) -> None:
    """No terminal sends Run Experiment: the CLI refuses, naming VS Code's Start Loop (where a
    manual loop does run detached) or an agent that edits by itself."""
    root = make_repo(tmp_path / "repo")
    write_config(root, {**config(), "agent": {"kind": "manual"}})
    done = cli(root, "run", "--detach")
    assert done.returncode == 2
    assert "manual agent waits for a person" in done.stderr and "only VS Code" in done.stderr
    assert "Start Loop" in done.stderr and "kind to sweep or command" in done.stderr
    assert not (root / ".autoresearch").exists()  # nothing written


def test_a_bad_config_is_refused_before_any_process_starts(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    write_config(root, {**config(), "scope": {"files": ["nothing*.py"]}})
    done = cli(root, "run", "--detach")
    assert done.returncode == 2 and "nothing*.py" in done.stderr
    assert "pid" not in done.stdout
    assert not (root / ".autoresearch").exists()


def test_a_persons_file_at_the_socket_path_is_never_removed(tmp_path: Path) -> None:
    """Only a socket there is a loop's (a stale one is removed); a file someone put at that
    path is theirs: status and stop leave it, and a start is refused, naming it."""
    root = sweep_repo(tmp_path)
    path = control.socket_path(root)
    path.parent.mkdir()
    path.write_text("mine\n")
    assert "loop: not running" in cli(root, "status").stdout
    stop = cli(root, "stop")
    assert stop.returncode == 2 and "No loop is running" in stop.stderr
    done = cli(root, "run", "--detach")
    assert done.returncode == 2 and "pid" not in done.stdout
    assert f"{path} is in the way" in done.stderr and "Move it elsewhere" in done.stderr
    assert path.read_text() == "mine\n"
    assert not (root / "results.tsv").exists()  # nothing started


def test_a_client_polling_while_the_socket_is_made_never_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that connects while the loop makes its socket (the daemon polls for it right
    after the detached start) finds no socket, or a listening one: it never finds one that
    refuses and removes it as a dead loop's, which failed the start (exit 2, ENOENT)."""
    root = sweep_repo(tmp_path)
    path = control.socket_path(root)
    answers: list[str] = []
    real_chmod = os.chmod

    def chmod_then_poll(target: object, mode: int) -> None:
        real_chmod(target, mode)  # type: ignore[arg-type]
        if str(target).endswith(".s") or Path(str(target)) == path:  # bound, not yet listening
            try:
                control.Connection(root, timeout=1).close()
                answers.append("connected")
            except control.ControlError as exc:
                answers.append(str(exc))

    monkeypatch.setattr(control.os, "chmod", chmod_then_poll)
    with RepoLock(root):
        server = control.listen(root)
        try:
            assert answers and "connected" not in answers[0]
            assert stat.S_ISSOCK(path.lstat().st_mode)
            with control.Connection(root, timeout=1):
                pass  # the path answers now that it is in place
            assert [p.name for p in path.parent.iterdir() if p.name.endswith(".s")] == []
        finally:
            server.close()
            control.remove_stale(path)


def test_a_refusing_socket_is_left_while_its_loop_holds_the_lock(tmp_path: Path) -> None:
    """A loop that is ending closes its socket before it removes it: a client refused then
    must not take the file for a dead loop's (only the lock's holder removes it)."""
    root = sweep_repo(tmp_path)
    path = control.socket_path(root)
    path.parent.mkdir(exist_ok=True)
    closed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    closed.bind(str(path))  # bound, never listening: every connect is refused
    try:
        with RepoLock(root):
            with pytest.raises(control.ControlError, match="does not answer"):
                control.Connection(root, timeout=1)
            assert stat.S_ISSOCK(path.lstat().st_mode)
        with pytest.raises(control.ControlError, match="No detached loop runs"):
            control.Connection(root, timeout=1)  # nobody holds the lock: a dead loop's file
        assert not path.exists()
    finally:
        closed.close()


def test_stop_names_a_loop_that_is_not_detached(tmp_path: Path) -> None:
    root = sweep_repo(tmp_path, timeout=600)
    run = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    STARTED.append(run.pid)
    until(lambda: (root / ".autoresearch" / "loop.lock").exists() and recorded(root) >= 1, "run")
    done = cli(root, "stop")
    assert done.returncode == 2
    assert "is not detached (pid" in done.stderr and "Ctrl-C in its terminal" in done.stderr
    run.send_signal(signal.SIGINT)
    assert run.wait(120) == 130


def test_a_detached_loop_that_fails_logs_its_traceback(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": "X = 1.0\nraise SystemExit(3)\n"})
    write_config(root, config())
    done = cli(root, "run", "--detach")
    if done.returncode == 0:  # the start was reported while the baseline still ran
        pid = int(re.search(r"\(pid (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
        until(lambda: gone(pid), "the failed loop to end")
    else:  # the baseline failed before the loop was up: the start says why
        assert done.returncode == 2
        assert "The baseline run failed (exit 3)" in done.stderr and "daemon.log" in done.stderr
    text = (root / ".autoresearch" / "daemon.log").read_text()
    assert "ERROR loop in" in text and "The baseline run failed (exit 3)" in text
    assert "Traceback (most recent call last)" in text and "LoopStopped" in text
    assert not control.socket_path(root).exists()


# ---- the socket itself ------------------------------------------------------------------------


def test_two_clients_follow_the_one_loop_and_bad_requests_are_answered(tmp_path: Path) -> None:
    root = sweep_repo(tmp_path)
    detach(root)
    a, b = control.Connection(root), control.Connection(root)
    assert a.ask("subscribe").ok and b.ask("subscribe").ok
    for conn in (a, b):
        seen = next(e for e in conn.events() if e.event == "autoresearch/experimentRecorded")
        assert seen.payload["experiment"]["status"] in ("keep", "discard", "crash")
    a.close()
    b.close()

    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(control.socket_path(root)))
    raw.sendall(b"not json\n" + json.dumps({"op": "explode"}).encode() + b"\n")
    replies = raw.makefile("rb")
    bad, unknown = json.loads(replies.readline()), json.loads(replies.readline())
    raw.close()
    assert bad["ok"] is False and "not a control request" in bad["message"]
    assert unknown["ok"] is False and "unknown op 'explode'; one of hello" in unknown["message"]

    paused = control.ask(root, "pause")
    assert paused.ok
    until(lambda: control.ask(root, "state").state.phase == "paused", "the pause")  # type: ignore[union-attr]
    steer = control.ask(root, "steer", text="try smaller X")
    assert steer.ok and "try smaller X" in (root / ".autoresearch" / "guidance.md").read_text()
    manual = control.ask(root, "run_experiment", text="x")
    assert not manual.ok and "it edits by itself" in manual.message
    assert control.ask(root, "resume").ok
    assert cli(root, "stop").returncode == 0
