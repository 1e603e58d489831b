"""`autoresearch.md`: the seed's recovery document, committed on the experiment branch.

A fresh agent (or person) reading it alone knows the objective, how to run, what is in scope
and what has been tried.
"""

from __future__ import annotations

from .config import Config
from .experiment import Experiment
from .results_tsv import format_metric

NOTES_FILE = "autoresearch.md"
TRIED_LIMIT = 40


def render(config: Config, tag: str, history: list[Experiment]) -> str:
    m, r = config.metric, config.run
    extraction = f"regex `{m.pattern}`" if m.pattern else f"`{m.extract}`"
    memory = f"`{r.memory_pattern}` in {r.memory_unit}" if r.memory_pattern else "measured"
    lines = [
        f"# Autoresearch: {m.name} ({tag})",
        "",
        "## Objective",
        f"Make `{m.name}` {m.direction} (a {'lower' if m.direction == 'lower' else 'higher'}"
        " value is better).",
        "",
        "## Metrics",
        f"- Primary: `{m.name}`, {m.direction} is better, extracted with {extraction}.",
        f"- Memory: {memory}.",
        "",
        "## How to Run",
        f"`{r.command} > run.log 2>&1` (timeout {r.timeout:g} s).",
    ]
    if config.protocol.text or config.protocol.time_budget:
        lines += ["", "## Comparison Protocol", config.protocol.text]
        if config.protocol.time_budget:
            lines.append(f"Time budget: {config.protocol.time_budget:g} s per experiment.")
    lines += ["", "## Files in Scope", *[f"- `{g}`" for g in config.scope.files]]
    lines += ["", "## Off Limits", *([f"- `{g}`" for g in config.scope.off_limits] or ["- (none)"])]
    lines += ["", "## Constraints", config.constraints or "(none)"]
    if r.guard:
        lines.append(f"Guard (must pass for a keep): `{r.guard}`.")
    lines += ["", "## What's Been Tried", *tried(history), ""]
    return "\n".join(lines)


def tried(history: list[Experiment]) -> list[str]:
    if not history:
        return ["(nothing yet: the baseline comes first)"]
    shown = history[-TRIED_LIMIT:]
    out = []
    if len(history) > len(shown):
        out.append(f"({len(history) - len(shown)} earlier experiments in results.tsv)")
    for exp in shown:
        out.append(
            f"- #{exp.number} {exp.status} {format_metric(exp.metric)}: {exp.description}"
            + (f" ({exp.reason})" if exp.reason and exp.status != "keep" else "")
        )
    return out
