"""What `autoresearch status` and `results` show, read from disk without running anything.

A table another tool writes (no records of ours) is read by the daemon's observer code, so the
CLI shows what VS Code shows, unreadable rows included as warnings.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from . import config as cfg
from .agents import usage
from .experiment import Experiment
from .lock import RepoLock
from .observer import Snapshot, observe, summary_of
from .protocol import SessionSummary, WorkerState
from .records import Records
from .repo import BRANCH_PREFIX, Repo
from .report import progress_line
from .results_tsv import format_metric
from .session_records import Tally
from .status_workers import live_lines, live_state, recorded_lines


class Status(msgspec.Struct):
    root: str
    branch: str
    tag: str
    running: str | None
    metric: str
    direction: str
    sessions: list[SessionSummary]
    text: str = ""
    # A running parallel loop's workers, live from a detached loop's socket ([] otherwise).
    workers: list[WorkerState] = msgspec.field(default_factory=list)
    # Rows of results.tsv (or lines of experiments.jsonl) that cannot be read, each with its
    # line number.
    warnings: list[str] = msgspec.field(default_factory=list)


class Table(msgspec.Struct):
    tag: str
    experiments: list[Experiment]
    warnings: list[str]


def _current_tag(root: Path) -> tuple[str, str]:
    repo = Repo(root)
    try:
        branch = repo.branch() or "(detached)"
    finally:
        repo.close()
    tag = branch[len(BRANCH_PREFIX) :] if branch.startswith(BRANCH_PREFIX) else ""
    return branch, tag


def _observed(snap: Snapshot | None, tags: list[str]) -> Snapshot | None:
    """The table to show instead of the records, chosen as the daemon's workspace does."""
    if snap is not None and (snap.external or snap.tag not in tags):
        return snap if snap.experiments else None
    return None


def _read(root: Path, metric_name: str | None) -> tuple[Records, list[str], Snapshot | None]:
    """The records (experiments.jsonl read once, never written: a loop may be running) and the
    observed table, if that is what to show."""
    records = Records(root, persist=False)
    snap = observe(root, metric_name, records)
    tags = records.tags()
    return records, tags, _observed(snap, tags)


def read_experiments(root: Path, tag: str | None) -> Table:
    config = cfg.load(root) if (root / cfg.CONFIG_FILE).exists() else None
    records, tags, snap = _read(root, config.metric.name if config else None)
    if snap is not None and tag in (None, snap.tag):
        return Table(tag=snap.tag, experiments=list(snap.experiments), warnings=snap.warnings)
    if tag is not None and tag not in tags:
        known = ", ".join([*tags, *([snap.tag] if snap else [])]) or "none yet"
        raise ValueError(f"No session {tag!r} in {root}. Sessions: {known}.")
    if tag is None:
        _, tag = _current_tag(root)
    if not tag:
        if not tags:
            raise ValueError(
                f"No autoresearch session in {root}. Start one with `autoresearch run`."
            )
        tag = tags[-1]
    return Table(tag=tag, experiments=list(records.session(tag)), warnings=records.warnings())


def read_status(root: Path) -> Status:
    config = cfg.load(root)
    branch, tag = _current_tag(root)
    records, tags, snap = _read(root, config.metric.name)
    sessions = records.summaries()[::-1]  # oldest first
    if snap is not None:  # another tool's table: shown as the daemon shows it
        tag = snap.tag
        observed = summary_of(snap)
        sessions = [observed, *[s for s in sessions if s.tag != snap.tag]]
    running = RepoLock(root).held_elsewhere()
    lines = [
        f"repository: {root}",
        f"branch: {branch}",
        f"loop: {'running (' + running + ')' if running else 'not running'}",
    ]
    live = live_state(root) if running else None
    if live is not None:
        lines += live_lines(live)
    elif running and tag in tags:  # a loop in another terminal: what its records say
        lines += recorded_lines(reversed(records.session(tag)))
    lines.append(f"metric: {config.metric.name} ({config.metric.direction} is better)")
    for s in sessions:
        mark = "*" if s.tag == tag else " "
        lines.append(
            f"{mark} {s.branch}: {s.total} experiments, best {format_metric(s.best)}"
            f" (#{s.best_number}), {s.counts.keep} keeps / {s.counts.discard} discards"
            f" / {s.counts.crash} crashes"
        )
        if s.tag in tags and (cost := usage.describe(list(records.session(s.tag)))):
            lines.append(f"    agent cost: {cost}")
    if not sessions:
        lines.append("no session yet: `autoresearch run` starts one")
    # The current session's tally, as kept while its records (or the table) were read.
    current = snap.tally if snap else records.tally(tag)
    progress = progress_line(current or Tally(tag=tag), config.metric.name)
    if progress:  # the current session's baseline, best and delta
        lines.append(progress)
    return Status(
        root=str(root),
        branch=branch,
        tag=tag,
        running=running,
        metric=config.metric.name,
        direction=config.metric.direction,
        sessions=sessions,
        text="\n".join(lines),
        workers=live.workers if live is not None else [],
        warnings=[*(snap.warnings if snap else []), *records.warnings()],
    )
