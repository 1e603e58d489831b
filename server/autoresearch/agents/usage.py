"""What one agent call cost, read from the program's own output (its log).

Claude Code's JSON result carries `total_cost_usd` and `usage`; codex's JSON events carry
token counts per turn; aider prints "Tokens: 2.1k sent, 74 received. Cost: $0.0060 message".
Programs that say nothing leave both unknown (None), never zero.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec


class Usage(msgspec.Struct, frozen=True):
    cost_usd: float | None = None
    tokens: int | None = None


_AIDER = re.compile(
    r"Tokens: ([0-9.]+)([kM]?) sent, ([0-9.]+)([kM]?) received\.(?: Cost: \$([0-9.]+) message)?"
)
_SCALE = {"": 1, "k": 1_000, "M": 1_000_000}


def parse_cost(kind: str, log: Path) -> Usage:
    """The call's cost in the format `kind` names ("" or unreadable: unknown)."""
    if not kind:
        return Usage()
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Usage()
    parser = _PARSERS.get(kind)
    try:
        return parser(text) if parser else Usage()
    except (ValueError, TypeError, AttributeError):
        # The log is the program's output, and whatever it ran printed: a line shaped like
        # its usage report but holding something else leaves the cost unknown, never a crash.
        return Usage()


def _json_lines(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _claude(text: str) -> Usage:
    for value in reversed(_json_lines(text)):
        if value.get("type") == "result":
            usage = value.get("usage") or {}
            tokens = sum(
                int(usage.get(k) or 0)
                for k in (
                    "input_tokens",
                    "output_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                )
            )
            cost = value.get("total_cost_usd")
            return Usage(float(cost) if cost is not None else None, tokens or None)
    return Usage()


def _codex(text: str) -> Usage:
    tokens = 0
    for value in _json_lines(text):
        if value.get("type") == "turn.completed":
            usage = value.get("usage") or {}
            tokens += int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
    return Usage(None, tokens or None)


def _opencode(text: str) -> Usage:
    cost: float | None = None
    tokens = 0
    for value in _json_lines(text):
        if value.get("type") == "step_finish":
            part = value.get("part") or {}
            tokens += int((part.get("tokens") or {}).get("total") or 0)
            if part.get("cost") is not None:
                cost = (cost or 0.0) + float(part["cost"])
    return Usage(cost, tokens or None)


def _gemini(text: str) -> Usage:
    """Its one JSON object (indented over many lines), after whatever it wrote before."""
    start = text.rfind('{\n  "session_id"')
    if start < 0:
        return Usage()
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return Usage()
    models = ((value.get("stats") or {}).get("models") or {}).values()
    tokens = sum(int(((m or {}).get("tokens") or {}).get("total") or 0) for m in models)
    return Usage(None, tokens or None)


def _aider(text: str) -> Usage:
    cost: float | None = None
    tokens = 0
    for m in _AIDER.finditer(text):
        tokens += round(float(m.group(1)) * _SCALE[m.group(2)])
        tokens += round(float(m.group(3)) * _SCALE[m.group(4)])
        if m.group(5) is not None:
            cost = (cost or 0.0) + float(m.group(5))
    return Usage(cost, tokens or None)


_PARSERS = {
    "claude-json": _claude,
    "codex-jsonl": _codex,
    "aider-text": _aider,
    "opencode-jsonl": _opencode,
    "gemini-json": _gemini,
}


def total(outcomes: list) -> tuple[float | None, int | None]:
    """The summed cost and tokens of an experiment's calls (None where none said)."""
    costs = [o.cost_usd for o in outcomes if o.cost_usd is not None]
    tokens = [o.tokens for o in outcomes if o.tokens is not None]
    return (round(sum(costs), 6) if costs else None, sum(tokens) if tokens else None)


def first_lines(output: str, count: int = 6) -> str:
    """The first lines of an agent's output that say something (its log header left out)."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("$ ")]
    return "\n".join(f"  {line[:300]}" for line in lines[:count])


def describe(experiments: list) -> str:
    """A session's agent cost for people: "$0.075 over 3 experiments, 9,450 tokens", or ""
    when no call said what it cost."""
    costs = [e.cost_usd for e in experiments if e.cost_usd is not None]
    tokens = [e.tokens for e in experiments if e.tokens is not None]
    parts = []
    if costs:
        count = len(costs)
        parts.append(f"${sum(costs):.4g} over {count} experiment{'s' * (count != 1)}")
    if tokens:
        parts.append(f"{sum(tokens):,} tokens")
    return ", ".join(parts)
