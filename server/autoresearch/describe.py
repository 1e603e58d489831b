"""Text for people about the loop's experiments: result lines, the summary block.

Pure functions over records and a session's Tally (session_records.py, where counts and the
best are kept); the loop emits what they return as Progress lines.
"""

from __future__ import annotations

from .experiment import Experiment
from .repo import REF_PREFIX, Repo
from .session_records import Tally


def fmt(value: float | None) -> str:
    return "NA" if value is None else f"{value:.6g}"


def diff_summary(repo: Repo, parent: str, paths: list[str] | None = None) -> str:
    """A description for an edit that came without one: `edit a.py, b.py (2 files changed, ...)`.
    `paths`: the files to be committed (a person's other uncommitted edits are not the edit's)."""
    files, stat = repo.changed_since(parent, paths)
    return f"edit {', '.join(files[:3])}" + (f" ({stat})" if stat else "")


def result_line(exp: Experiment, prev: Experiment | None) -> str:
    """`#3 keep    0.0812 (-0.0023) 1.2 GB  description [reason]`; `prev`: the best before."""
    delta = ""
    if exp.metric is not None and exp.number and prev is not None and prev.metric is not None:
        delta = f" ({exp.metric - prev.metric:+.6g})"
    shown = exp.status != "keep" or exp.confirmation  # a confirmed keep says its mean ± sd
    why = f" [{exp.reason}]" if shown and exp.reason else ""
    return (
        f"#{exp.number} {exp.status:<7} {fmt(exp.metric)}{delta} {exp.memory_gb:.1f} GB"
        f"  {exp.description}{why}"
    )


def checkpoint(number: int, metric: str, tally: Tally) -> str:
    """The seed's progress line, every few iterations."""
    return (
        f"=== Iteration {number}: {metric} at {fmt(tally.best)},"
        f" {tally.keep} keeps / {tally.discard} discards / {tally.crash} crashes ==="
    )


def summary(tag: str, branch: str, tally: Tally) -> str:
    """The seed's closing block for a bounded run."""
    c = tally
    base = tally.baseline if tally.total else None
    best = tally.best_record
    final = tally.best
    change = ""
    if base is not None and final is not None:
        pct = f", {100 * (final - base) / abs(base):+.2f}%" if base else ""
        change = f" ({final - base:+.6g}{pct})"
    return "\n".join(
        [
            f"=== Autoresearch complete ({max(tally.total - 1, 0)} experiments, tag {tag}) ===",
            f"Baseline: {fmt(base)} -> Best: {fmt(final)}{change}",
            f"Keeps: {c.keep} | Discards: {c.discard} | Crashes: {c.crash}",
            f"Best: #{best.number} {best.description}" if best else "Best: none",
            f"Branch: {branch} | results.tsv | refs under {REF_PREFIX}{tag}/",
        ]
    )
