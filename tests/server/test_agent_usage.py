"""What an agent call cost, read from its log: the programs' real shapes, and odd lines that
look like them (whatever the agent ran printed) leaving the cost unknown, never crashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch.agents.usage import Usage, parse_cost

CLAUDE = (
    '{"type":"result","subtype":"success","total_cost_usd":0.0123,'
    '"usage":{"input_tokens":1000,"output_tokens":50}}\n'
)
AIDER = "Tokens: 2.1k sent, 74 received. Cost: $0.0060 message, $0.01 session.\n"


def cost(kind: str, text: str, tmp_path: Path) -> Usage:
    log = tmp_path / "1.log"
    log.write_text("$ the agent's command\n" + text)
    return parse_cost(kind, log)


def test_the_programs_own_reports(tmp_path: Path) -> None:
    assert cost("claude-json", CLAUDE, tmp_path) == Usage(0.0123, 1050)
    assert cost("aider-text", AIDER, tmp_path) == Usage(0.006, 2174)
    assert cost("", CLAUDE, tmp_path) == Usage()


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("claude-json", '{"type": "result", "usage": [1, 2], "total_cost_usd": 1}'),
        ("claude-json", '{"type": "result", "usage": {}, "total_cost_usd": "free"}'),
        ("claude-json", '{"type": "result", "usage": {"input_tokens": "many"}}'),
        ("codex-jsonl", '{"type": "turn.completed", "usage": "n/a"}'),
        ("opencode-jsonl", '{"type": "step_finish", "part": {"cost": "0.1$"}}'),
        ("gemini-json", '{\n  "session_id": "s", "stats": {"models": []}}'),
    ],
)
def test_a_line_shaped_like_a_report_but_odd_leaves_the_cost_unknown(
    kind: str, line: str, tmp_path: Path
) -> None:
    assert cost(kind, line + "\n", tmp_path) == Usage()
