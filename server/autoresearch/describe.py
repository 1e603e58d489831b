"""Text for people about the loop's experiments: result lines, the summary block, sessions.

Pure functions over records; the loop emits what they return as Progress lines.
"""

from __future__ import annotations

from .experiment import Experiment
from .ledger import Ledger
from .protocol import Counts, SessionSummary
from .repo import REF_PREFIX, Repo


def fmt(value: float | None) -> str:
    return "NA" if value is None else f"{value:.6g}"


def diff_summary(repo: Repo, parent: str, paths: list[str] | None = None) -> str:
    """A description for an edit that came without one: `edit a.py, b.py (2 files changed, ...)`.
    `paths`: the files to be committed (a person's other uncommitted edits are not the edit's)."""
    files, stat = repo.changed_since(parent, paths)
    return f"edit {', '.join(files[:3])}" + (f" ({stat})" if stat else "")


def count(experiments: list[Experiment]) -> Counts:
    """Keeps, discards and crashes, the baseline (the first record) left out."""
    counts = Counts()
    for exp in experiments[1:]:
        setattr(counts, exp.status, getattr(counts, exp.status) + 1)
    return counts


def best_of(history: list[Experiment]) -> Experiment | None:
    """The last keep: the commit the branch sits on."""
    for exp in reversed(history):
        if exp.status == "keep":
            return exp
    return None


def result_line(exp: Experiment, history: list[Experiment]) -> str:
    """`#3 keep    0.0812 (-0.0023) 1.2 GB  description [reason]`; `history` ends with `exp`."""
    delta = ""
    if exp.metric is not None and exp.number:
        prev = best_of(history[:-1])
        if prev is not None and prev.metric is not None:
            delta = f" ({exp.metric - prev.metric:+.6g})"
    shown = exp.status != "keep" or exp.confirmation  # a confirmed keep says its mean ± sd
    why = f" [{exp.reason}]" if shown and exp.reason else ""
    return (
        f"#{exp.number} {exp.status:<7} {fmt(exp.metric)}{delta} {exp.memory_gb:.1f} GB"
        f"  {exp.description}{why}"
    )


def checkpoint(number: int, metric: str, history: list[Experiment]) -> str:
    """The seed's progress line, every few iterations."""
    c, best = count(history), best_of(history)
    return (
        f"=== Iteration {number}: {metric} at {fmt(best.metric if best else None)},"
        f" {c.keep} keeps / {c.discard} discards / {c.crash} crashes ==="
    )


def summary(tag: str, branch: str, history: list[Experiment]) -> str:
    """The seed's closing block for a bounded run."""
    c = count(history)
    base = history[0].metric if history else None
    best = best_of(history)
    final = best.metric if best else None
    change = ""
    if base is not None and final is not None:
        pct = f", {100 * (final - base) / abs(base):+.2f}%" if base else ""
        change = f" ({final - base:+.6g}{pct})"
    return "\n".join(
        [
            f"=== Autoresearch complete ({max(len(history) - 1, 0)} experiments, tag {tag}) ===",
            f"Baseline: {fmt(base)} -> Best: {fmt(final)}{change}",
            f"Keeps: {c.keep} | Discards: {c.discard} | Crashes: {c.crash}",
            f"Best: #{best.number} {best.description}" if best else "Best: none",
            f"Branch: {branch} | results.tsv | refs under {REF_PREFIX}{tag}/",
        ]
    )


def summarize_sessions(ledger: Ledger, direction: str) -> list[SessionSummary]:
    out = []
    for tag, exps in ledger.sessions.items():
        keeps = [e for e in exps if e.status == "keep" and e.metric is not None]
        best = None
        if keeps:
            pick = min if direction == "lower" else max
            best = pick(keeps, key=lambda e: e.metric or 0.0)
        out.append(
            SessionSummary(
                tag=tag,
                branch=f"autoresearch/{tag}",
                total=len(exps),
                counts=count(exps),
                best=best.metric if best else None,
                best_number=best.number if best else None,
            )
        )
    return out
