"""One measurement: run the command into run.log, then extract the metric and memory.

Each run's log lives in `.autoresearch/runs/<tag>-<n>.log`; `run.log` at the root is a hard
link to the current one, so `tail -f run.log` works as in the seed and no log is copied.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec

from . import extract, triage
from .config import Config
from .experiment import CrashKind
from .runner import Runner, RunResult, RunSpec

RUN_LOG = "run.log"
MB = 1024 * 1024


class Measurement(msgspec.Struct):
    result: RunResult
    log_path: str
    metric: float | None = None
    memory_gb: float = 0.0
    crash_kind: CrashKind | None = None
    reason: str = ""
    trivial: bool = False
    environment: bool = False
    tail: str = ""
    # Stopped early by [decision] prune: `reason` says at which step; judged a discard.
    pruned: bool = False


def log_path(root: Path, tag: str, number: int, suffix: str = "") -> Path:
    return root / ".autoresearch" / "runs" / f"{tag}-{number}{suffix}.log"


def prepare_log(root: Path, path: Path) -> None:
    """Create the run's log and point run.log at it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    link_live(root, path)


def link_live(root: Path, path: Path) -> None:
    """`root`/run.log becomes a hard link to the log `path`."""
    live = root / RUN_LOG
    try:
        live.unlink()
    except FileNotFoundError:
        pass
    try:
        os.link(path, live)
    except OSError:
        pass  # a file system without hard links: run.log is simply absent


def measure(
    runner: Runner,
    config: Config,
    root: Path,
    path: Path,
    cancel: threading.Event,
    on_tick: Callable[[float], None] | None = None,
    marker: str = "",
    diff: Callable[[], str] | None = None,
    env: dict[str, str] | None = None,
) -> Measurement:
    """`diff` gives the experiment's diff, asked for only when a failure needs triage; `env`
    is added to the command's environment (the run's seed and number)."""
    prepare_log(root, path)
    spec = RunSpec(
        command=config.run.command,
        cwd=root,
        log_path=path,
        timeout=config.run.timeout,
        env=dict(env or {}),
        max_log_bytes=int(config.run.max_log_mb * MB),
        marker=marker,
    )
    result = runner.run(spec, cancel, on_tick)
    out = Measurement(result=result, log_path=str(path))
    if result.cancelled:
        out.crash_kind, out.reason = "interrupted", "stopped by the user"
        return out
    if result.log_limit:
        out.memory_gb = read_memory(config, path, result)  # measured until it was stopped
        out.crash_kind = "log_limit"
        out.reason = f"run.log grew past run.max_log_mb ({config.run.max_log_mb:g} MB)"
        return out
    metric_error = ""
    if not result.timed_out and result.exit_code == 0:
        try:
            out.metric = read_metric(config, root, path)
        except extract.ExtractionError as exc:
            metric_error = str(exc)
    out.memory_gb = read_memory(config, path, result)
    out.tail = triage.log_tail(path)
    if out.metric is not None:
        return out
    if metric_error:
        out.crash_kind, out.reason = "invalid", metric_error
        return out
    verdict = triage.classify_failure(
        result.exit_code,
        result.timed_out,
        out.tail,
        metric_found=False,
        local_modules=triage.local_modules(root),
        diff=diff() if diff else "",
    )
    if verdict is None:  # pragma: no cover - exit 0 without metric is always classified
        out.crash_kind, out.reason = "missing_metric", "no metric in the output"
        return out
    out.crash_kind, out.reason = verdict.kind, verdict.reason
    if result.timed_out:
        out.reason = f"timed out after {config.run.timeout:g} s"
    out.trivial, out.environment = verdict.trivial, verdict.environment
    if verdict.kind == "missing_metric" and not verdict.trivial:
        how = (
            f"pattern {config.metric.pattern!r}" if config.metric.pattern else "the extract command"
        )
        out.reason = f"{config.metric.name} not found in run.log by {how}"
    return out


def read_metric(config: Config, root: Path, path: Path) -> float | None:
    m = config.metric
    if m.pattern:
        return extract.by_pattern(path, m.pattern)
    if m.extract:
        return extract.by_command(m.extract, root)
    return extract.by_pattern(path, default_pattern(m.name))


def default_pattern(name: str) -> str:
    """The seed's convention: `name: value` (or `name=value`) on a line of its own."""
    return rf"^\s*{re.escape(name)}\s*[:=]\s*([-+0-9.eEnaifNAIF]+)\s*$"


def read_memory(config: Config, path: Path, result: RunResult) -> float:
    if config.run.memory_pattern:
        parsed = extract.memory_gb(path, config.run.memory_pattern, config.run.memory_unit)
        if parsed is not None:
            return parsed
    return result.peak_gpu_gb if result.peak_gpu_gb > 0 else result.peak_rss_gb
