"""The runner: process groups, timeouts that leave nothing behind, bounded logs, peak memory."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path

from conftest import alive_with_env

from autoresearch.runner import MARKER, LocalRunner, RunSpec


def run(tmp_path: Path, command: str, **kw) -> tuple:
    spec = RunSpec(command=command, cwd=tmp_path, log_path=tmp_path / "run.log", **kw)
    cancel = kw.pop("cancel", None) or threading.Event()
    return LocalRunner(poll=0.05).run(spec, cancel), spec


def test_output_goes_to_the_log_and_the_exit_code_is_kept(tmp_path: Path) -> None:
    result, spec = run(tmp_path, "echo out; echo err >&2; exit 3", timeout=10)
    assert result.exit_code == 3 and not result.ok
    assert spec.log_path.read_text() == "out\nerr\n"


def test_timeout_kills_grandchildren_that_ignore_sigterm(tmp_path: Path) -> None:
    script = (
        "trap '' TERM; "
        "(trap '' TERM; sleep 300) & "  # a child ignoring SIGTERM
        "(setsid sh -c 'trap \"\" TERM; sleep 300' &) ; "  # a double-forked, setsid'd daemon
        "sleep 300"
    )
    started = time.monotonic()
    marker = f"t-timeout-{uuid.uuid4().hex}"  # unique: other test sessions may run this too
    result, _ = run(tmp_path, script, timeout=1.0, grace=0.5, marker=marker)
    assert result.timed_out and time.monotonic() - started < 10
    assert alive_with_env(MARKER, marker) == []  # gone when run() returns, not a moment later


def test_background_children_do_not_outlive_a_finished_run(tmp_path: Path) -> None:
    marker = f"t-bg-{uuid.uuid4().hex}"
    result, _ = run(tmp_path, "(sleep 300 &) ; echo done", timeout=10, marker=marker)
    assert result.exit_code == 0
    assert alive_with_env(MARKER, marker) == []


def test_a_runaway_log_is_stopped_at_its_limit(tmp_path: Path) -> None:
    result, spec = run(tmp_path, "yes 0123456789abcdef", timeout=30, max_log_bytes=2_000_000)
    assert result.log_limit and spec.log_path.stat().st_size < 2_000_100


def test_a_command_that_closes_stdout_early_still_finishes(tmp_path: Path) -> None:
    result, spec = run(tmp_path, "echo hi; exec 1>&- 2>&-; sleep 0.3; exit 0", timeout=10)
    assert result.exit_code == 0 and spec.log_path.read_text() == "hi\n"


def test_cancel_stops_a_run_that_never_exits(tmp_path: Path) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    spec = RunSpec(command="sleep 300", cwd=tmp_path, log_path=tmp_path / "run.log", timeout=60)
    result = LocalRunner(poll=0.05).run(spec, cancel)
    assert result.cancelled and result.runtime_s < 10


def test_peak_rss_of_the_tree_is_measured(tmp_path: Path) -> None:
    code = "x = bytearray(150_000_000); import time; time.sleep(0.5)"
    result, _ = run(tmp_path, f"{sys.executable} -c '{code}'", timeout=20)
    assert result.peak_rss_gb > 0.13
