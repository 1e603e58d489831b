"""The per-iteration prompt (.autoresearch/prompt.md): everything a fresh agent needs, bounded.

Each agent call is fresh, so the prompt carries the whole session state that matters: the goal,
the rules, the best result, what was tried. Its size stays under a fixed budget however long
the history is; the history fills whatever the other sections leave, most informative first.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from .agents.base import EditContext
from .experiment import Experiment

PROMPT_FILE = ".autoresearch/prompt.md"
DESCRIPTION_FILE = ".autoresearch/description.txt"
MAX_PROMPT_BYTES = 12_000

# Caps on the free-text sections, so one of them cannot crowd out the rest.
_CAP_CONSTRAINTS = 1_500
_CAP_PROTOCOL = 800
_CAP_GUIDANCE = 1_500
_CAP_FAILURE = 2_500
_CAP_FILES = 800
_CAP_DESCRIPTION = 160
_CAP_OTHERS = 1_500
# History rows per group, before the byte budget applies.
_TOP_KEEPS = 8
_RECENT_DISCARDS = 8
_RECENT_CRASHES = 5
# Rows of each group taken before any group gets more.
_FIRST_ROUND = 3
CHANGE_APPROACH_AFTER = 3


def build_prompt(ctx: EditContext, max_bytes: int = MAX_PROMPT_BYTES) -> str:
    """The prompt text for this iteration, at most `max_bytes` UTF-8 bytes."""
    head = [_intro(ctx), _objective(ctx), _files(ctx)]
    sections = (_constraints(ctx), _guidance(ctx), _failure(ctx), _change_approach(ctx))
    for section in (*sections, _others(ctx)):
        if section:
            head.append(section)
    rules = _rules(ctx)
    fixed = "\n\n".join([*head, rules])
    budget = max_bytes - _size(fixed) - 2
    history = _history(ctx, budget)
    text = "\n\n".join([*head, history, rules]) if history else fixed
    return _fit(text, max_bytes) + "\n"


def _intro(ctx: EditContext) -> str:
    return (
        f"# Autoresearch: experiment #{ctx.number}\n\n"
        "You are the edit step of an automated experiment loop. Make ONE focused change to the"
        " code that tests ONE hypothesis about how to improve the metric, then stop. The loop"
        " commits your change, runs the experiment, and keeps or reverts it by the result."
    )


def _objective(ctx: EditContext) -> str:
    c = ctx.config
    better = "lower is better" if c.metric.direction == "lower" else "higher is better"
    lines = [
        "## Objective",
        f"Improve `{c.metric.name}` ({better}).",
        f"The loop runs `{_clip(c.run.command, 300)}` from the repository root"
        f" (timeout {c.run.timeout:g} s) and reads `{c.metric.name}` from its output.",
    ]
    if c.protocol.time_budget:
        lines.append(f"Each run has a fixed time budget of {c.protocol.time_budget:g} s.")
    if c.protocol.text.strip():
        lines.append(f"Comparison protocol: {_clip(c.protocol.text.strip(), _CAP_PROTOCOL)}")
    d = c.decision
    if d.min_improvement > 0:
        lines.append(
            f"A change is kept only if it improves the metric by more than {d.min_improvement:g}."
        )
    lines.append("An equal result with simpler code (fewer lines) is also kept.")
    return "\n".join(lines)


def _files(ctx: EditContext) -> str:
    scope = ctx.config.scope
    lines = ["## Files you may edit", _clip(_bullets(scope.files), _CAP_FILES)]
    if scope.off_limits:
        lines += [
            "",
            "## Off-limits files (never edit these; a change to them invalidates the run)",
            _clip(_bullets(scope.off_limits), _CAP_FILES),
        ]
    return "\n".join(lines)


def _constraints(ctx: EditContext) -> str:
    text = ctx.config.constraints.strip()
    return f"## Constraints\n{_clip(text, _CAP_CONSTRAINTS)}" if text else ""


def _guidance(ctx: EditContext) -> str:
    text = ctx.guidance.strip()
    if not text:
        return ""
    # The newest steering is appended at the end of the file: keep the end.
    return (
        "## Guidance from the user (follow it; it overrides your own plans)\n"
        f"{_clip_tail(text, _CAP_GUIDANCE)}"
    )


def _failure(ctx: EditContext) -> str:
    if not ctx.failure and not ctx.failure_kind:
        return ""
    detail = fence(_clip_tail(ctx.failure or "", _CAP_FAILURE)) if ctx.failure else ""
    kind = ctx.failure_kind
    if kind == "guard":
        head = (
            "## Fix this: the guard failed\n"
            "Your previous change improved the metric, but the guard check failed (output"
            " below). The change was reverted. Re-implement the same idea differently so that"
            " the guard passes; keep the idea, change the implementation."
        )
    elif kind == "crash":
        head = (
            "## Fix this: the last run crashed\n"
            "Your previous change crashed the experiment (log tail below). It is still in the"
            " files. Fix the bug and keep the idea; do not start over with a different idea."
        )
    elif kind == "scope":
        head = (
            "## Fix this: edits outside the allowed files\n"
            "Your previous attempt edited files you may not edit; those edits were undone."
            " Edit only the files listed as editable."
        )
    elif kind == "no_change":
        head = (
            "## Fix this: no change was made\n"
            "The previous call changed nothing. This time, actually edit an editable file."
        )
    else:
        head = "## Fix this"
    return f"{head}\n{detail}" if detail else head


def _change_approach(ctx: EditContext) -> str:
    if ctx.reverts_in_a_row < CHANGE_APPROACH_AFTER:
        return ""
    return (
        "## Change approach\n"
        f"The last {ctx.reverts_in_a_row} experiments were all reverted. Stop refining that line"
        " of ideas: try something substantially different (another part of the code, another"
        " kind of change, or the opposite direction)."
    )


def _others(ctx: EditContext) -> str:
    """Parallel experiments: what the other workers try now, so this call tries another idea."""
    lines = [f"- {_clip(_one_line(line), _CAP_DESCRIPTION)}" for line in ctx.others if line.strip()]
    if not lines:
        return ""
    shown: list[str] = []
    for line in lines:  # whole lines within the cap; the rest counted
        if _size("\n".join([*shown, line])) > _CAP_OTHERS:
            shown.append(f"- ... and {len(lines) - len(shown)} more")
            break
        shown.append(line)
    return (
        "## Running now in other workers (results not in yet)\n"
        + "\n".join(shown)
        + "\nTry something different from each of these: another idea, not the same change again."
    )


def _rules(ctx: EditContext) -> str:
    return (
        "## Rules\n"
        "- One hypothesis, one focused change. Small diffs are easier to judge.\n"
        "- Edit only the files you may edit. Do not create, delete or rename other files.\n"
        "- Do not run the experiment or any long computation; the loop runs it.\n"
        "- Do not commit, stash, switch branches, merge or otherwise change git state.\n"
        "- Do not ask questions: nobody will answer. Decide and act.\n"
        f"- When done, write ONE line describing the change to `{DESCRIPTION_FILE}`"
        " (e.g. `lower learning rate 3e-4 -> 2e-4`), then stop."
    )


def _history(ctx: EditContext, budget: int) -> str:
    """Results, most informative first, cut at whole rows to fit `budget` bytes."""
    if budget < 200 or not ctx.history:
        return ""
    metric = ctx.config.metric
    lower = metric.direction == "lower"
    counts = {"keep": 0, "discard": 0, "crash": 0}
    for e in ctx.history:
        counts[e.status] += 1
    best = ctx.best
    groups: list[tuple[str, list[str]]] = []
    intro = [
        "## Results so far",
        f"{len(ctx.history)} experiment{'s' if len(ctx.history) != 1 else ''} so far:"
        f" {counts['keep']} kept, {counts['discard']} discarded,"
        f" {counts['crash']} crashed.",
    ]
    baseline = ctx.history[0]
    if baseline.number == 0 and baseline.metric is not None:
        intro.append(f"Baseline (#0): {metric.name} = {baseline.metric:.6g}.")
    if best is not None and best.metric is not None:
        intro.append(f"Best so far: {_row(best, best, lower)}")
    keeps = _ranked_keeps(ctx.history, lower, best)
    if keeps:
        groups.append(("Best kept changes:", ["- " + _row(e, best, lower) for e in keeps]))
    discards = _newest(ctx.history, "discard", _RECENT_DISCARDS)
    if discards:
        groups.append(
            (
                "Recent discarded attempts (did not help):",
                ["- " + _row(e, best, lower) for e in discards],
            )
        )
    crashes = _newest(ctx.history, "crash", _RECENT_CRASHES)
    if crashes:
        groups.append(("Recent crashes:", ["- " + _row(e, best, lower) for e in crashes]))
    head = "\n".join(intro)
    rest = budget - _size(head)
    if rest < 0:
        return ""
    rows = _take(groups, rest)
    return f"{head}\n{rows}" if rows else head


def _ranked_keeps(
    history: Sequence[Experiment], lower: bool, best: Experiment | None
) -> list[Experiment]:
    # By number, not identity: the loop may hand over `best` as a separate copy.
    skip = best.number if best is not None else None
    keeps = (e for e in history if e.status == "keep" and e.metric is not None and e.number != skip)
    pick = heapq.nsmallest if lower else heapq.nlargest
    return pick(_TOP_KEEPS, keeps, key=lambda e: e.metric)


def _newest(history: Sequence[Experiment], status: str, n: int) -> list[Experiment]:
    found: list[Experiment] = []
    for e in reversed(history):
        if e.status == status:
            found.append(e)
            if len(found) == n:
                break
    return found


def _row(e: Experiment, best: Experiment | None, lower: bool) -> str:
    parts = [f"#{e.number}"]
    if e.status == "crash":
        reason = _clip(_one_line(e.reason), 120) if e.reason else ""
        why = ": ".join(w for w in (e.crash_kind, reason) if w)
        parts.append(f"crashed ({why})" if why else "crashed")
    elif e.metric is not None:
        value = f"{e.metric:.6g}"
        if best is not None and best.metric is not None and e.number != best.number:
            delta = e.metric - best.metric
            value += f" ({delta:+.3g} vs best)"
        parts.append(value)
    if e.memory_gb:
        parts.append(f"{e.memory_gb:.1f} GB")
    text = " ".join(parts)
    if e.description:
        text += f" - {_clip(_one_line(e.description), _CAP_DESCRIPTION)}"
    return text


def _take(groups: list[tuple[str, list[str]]], budget: int) -> str:
    """Whole rows within the budget: first a few of every group, then the rest in order.

    So a long run of kept changes cannot hide the crashes; a title appears only above a row.
    """
    chosen = [0] * len(groups)
    used = 0
    for limit in (_FIRST_ROUND, None):
        for i, (title, rows) in enumerate(groups):
            stop = len(rows) if limit is None else min(limit, len(rows))
            while chosen[i] < stop:
                cost = _size(rows[chosen[i]]) + 1
                if chosen[i] == 0 and title:
                    cost += _size(title) + 2
                if used + cost > budget:
                    break
                used += cost
                chosen[i] += 1
    out: list[str] = []
    for (title, rows), n in zip(groups, chosen, strict=True):
        if n and title:
            out += ["", title]
        out += rows[:n]
    return "\n".join(out)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- `{item}`" for item in items) if items else "- (none)"


def fence(text: str) -> str:
    # A fence longer than any backtick run inside, so a log cannot close it early.
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}\n{text}\n{ticks}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15].rstrip() + " ... [clipped]"


def _clip_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[... clipped] " + text[-(limit - 14) :]


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _fit(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) < max_bytes:
        return text
    return data[: max_bytes - 1].decode("utf-8", errors="ignore")
