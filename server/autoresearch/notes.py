"""`autoresearch.md`: the seed's recovery document, committed on the experiment branch.

A fresh agent (or person) reading it alone knows the objective, how to run, what is in scope
and what has been tried.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import Config
from .experiment import Experiment
from .results_tsv import format_metric

NOTES_FILE = "autoresearch.md"
TRIED_LIMIT = 40


# The seed's section names, in its order: an agent resuming from this file looks for them.
SECTIONS = (
    "Objective",
    "Metric",
    "Command",
    "Metric Extraction",
    "Comparison Protocol",
    "Files in Scope",
    "Off Limits",
    "Constraints",
    "Guard",
    "What's Been Tried",
)


def render(config: Config, tag: str, history: Sequence[Experiment]) -> str:
    m, r, p = config.metric, config.run, config.protocol
    extraction = (
        f"Regex `{m.pattern}` on run.log; the last match wins."
        if m.pattern
        else f"`{m.extract}`; the last number it prints wins."
    )
    memory = f"`{r.memory_pattern}` in {r.memory_unit}" if r.memory_pattern else "measured"
    protocol = [p.text] if p.text else []
    if p.time_budget:
        protocol.append(f"Time budget: {p.time_budget:g} s per experiment.")
    body = {
        "Objective": [
            f"Make `{m.name}` {m.direction} (a {'lower' if m.direction == 'lower' else 'higher'}"
            " value is better)."
        ],
        "Metric": [
            f"- Primary: `{m.name}`, {m.direction} is better.",
            f"- Memory: {memory}.",
        ],
        "Command": [f"`{r.command} > run.log 2>&1` (timeout {r.timeout:g} s)."],
        "Metric Extraction": [extraction],
        "Comparison Protocol": protocol or ["One run per experiment, compared with the best."],
        "Files in Scope": [f"- `{g}`" for g in config.scope.files],
        "Off Limits": [f"- `{g}`" for g in config.scope.off_limits] or ["- (none)"],
        "Constraints": [config.constraints or "(none)"],
        "Guard": [f"`{r.guard}` must pass for a keep." if r.guard else "(none)"],
        "What's Been Tried": tried(history),
    }
    lines = [f"# Autoresearch: {m.name} ({tag})"]
    for name in SECTIONS:
        lines += ["", f"## {name}", *body[name]]
    return "\n".join([*lines, ""])


def tried(history: Sequence[Experiment]) -> list[str]:
    if not history:
        return ["(nothing yet: the baseline comes first)"]
    shown = history[-TRIED_LIMIT:]  # a History decodes only these
    out = []
    if len(history) > len(shown):
        out.append(f"({len(history) - len(shown)} earlier experiments in results.tsv)")
    for exp in shown:
        out.append(
            f"- #{exp.number} {exp.status} {format_metric(exp.metric)}: {exp.description}"
            + (f" ({exp.reason})" if exp.reason and exp.status != "keep" else "")
        )
    return out
