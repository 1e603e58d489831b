"""An agent that fails, through the real loop: `--loop N` counts experiments, a failed call
says why on the console and keeps its own log, an agent that cannot work (no login) stops the
loop at once with its words, and a program's caches are not blamed on it.

Fake agent CLIs (fake_agents/fake_agent.py) under the presets' program names; the real
programs are driven in test_real_agents.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_agents import FAKE_AGENT, git, make_config, make_repo
from test_agent_loop import assert_no_leftover_processes, assert_nothing_lost, run_agent

from autoresearch import config as cfg
from autoresearch import results_tsv
from autoresearch.agents import make_proposer
from autoresearch.agents.base import AgentUnavailable
from autoresearch.ledger import Ledger
from autoresearch.loop import Loop, LoopStopped, Progress


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def as_program(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake agent on PATH under a real program's name, so the preset runs it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).symlink_to(FAKE_AGENT)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def run_preset(repo: Path, preset: str, limit: int, timeout: float = 300.0) -> tuple[Loop, str]:
    config = make_config(preset=preset, timeout=timeout)
    proposer = make_proposer(config, repo, [])
    lines: list[str] = []
    loop = Loop(
        repo,
        config,
        proposer,
        emit=lambda e: lines.append(e.text) if isinstance(e, Progress) else None,
        limit=limit,
    )
    loop.agent_retry_wait_s = 0.0
    try:
        loop.run()
    finally:
        assert_no_leftover_processes(repo)
    return loop, "\n".join(lines)


def test_loop_n_counts_experiments_not_failed_calls(repo: Path) -> None:
    # Before: the failed call used up `--loop 1` and the run ended with 0 experiments.
    s = run_agent(repo, ["fail"], 1)
    records = assert_nothing_lost(s)
    assert [e.number for e in records] == [0, 1]
    assert records[1].status == "keep" and s.calls == 2


def test_failed_call_prints_the_first_lines_of_its_output(repo: Path) -> None:
    s = run_agent(repo, ["fail"], 1)
    said = s.progress.split("#1: the agent said:\n", 1)[1]
    assert said.splitlines()[0].startswith("  fake agent: mode fail")
    assert "  Error: the model API returned 401 Unauthorized" in said.splitlines()[:6]


def test_every_failed_call_keeps_its_own_log(repo: Path) -> None:
    s = run_agent(repo, ["fail", "fail"], 1)
    assert_nothing_lost(s)
    logs = repo / ".autoresearch/agents"
    assert sorted(p.name for p in logs.glob("1*.log")) == ["1.call2.log", "1.call3.log", "1.log"]
    for name in ("1.log", "1.call2.log"):
        assert "401 Unauthorized" in (logs / name).read_text()
    assert "Done: LEARNING_RATE" in (logs / "1.call3.log").read_text()
    assert "(log .autoresearch/agents/1.call2.log)" in s.progress


def test_status_check_says_not_logged_in_before_the_baseline(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_program(tmp_path, "claude", monkeypatch)
    monkeypatch.setenv("FAKE_AGENT_STATUS", "logged-out")
    with pytest.raises(AgentUnavailable) as raised:
        run_preset(repo, "claude", 3)
    message = str(raised.value)
    assert '"loggedIn": false' in message and "claude auth status" in message
    assert "log it in or give it an API key" in message
    assert results_tsv.read(repo / "results.tsv") == []


def test_status_check_is_skipped_when_a_key_it_cannot_see_is_set(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `codex login status` knows nothing of CODEX_API_KEY, which `codex exec` uses.
    as_program(tmp_path, "codex", monkeypatch)
    monkeypatch.setenv("FAKE_AGENT_STATUS", "logged-out")
    monkeypatch.setenv("CODEX_API_KEY", "k")
    loop, _ = run_preset(repo, "codex", 1)
    assert [e.status for e in loop.history] == ["keep", "keep"]


def test_not_logged_in_mid_call_stops_at_once_not_at_the_timeout(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The program says it, then waits for a login that never comes: the call ends on the
    # words (the 300 s timeout would read "timed out"), and the loop does not retry.
    as_program(tmp_path, "claude", monkeypatch)
    monkeypatch.setenv("FAKE_AGENT_MODE", "logged_out")
    with pytest.raises(LoopStopped) as raised:
        run_preset(repo, "claude", 3, timeout=300.0)
    message = str(raised.value)
    assert "cannot work here" in message and "Not logged in · Please run /login" in message
    assert "timed out" not in message
    assert [r.status for r in results_tsv.read(repo / "results.tsv")] == ["keep"]
    assert len(list((repo / ".autoresearch/agents").glob("1*.log"))) == 1


def test_a_programs_cache_is_not_blamed_on_it(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_program(tmp_path, "aider", monkeypatch)
    monkeypatch.setenv("FAKE_AGENT_MODE", "cache")
    loop, progress = run_preset(repo, "aider", 2)
    ledger = Ledger(repo)
    ledger.load()
    records = ledger.experiments(loop.tag)
    assert [e.status for e in records] == ["keep", "keep", "keep"]
    for e in records[1:]:
        assert not [x for x in e.events if "aider" in x], e.events
    assert "outside the scope" not in progress
    assert "also edited" not in (repo / ".autoresearch/prompt.md").read_text()
    # The cache stays for the program's next call, ignored by git.
    assert (repo / ".aider.tags.cache.v4/cache.db").exists()
    exclude = (repo / ".git/info/exclude").read_text().splitlines()
    assert exclude.count(".aider.tags.cache.v4/") == 1


def test_cost_is_recorded_per_experiment_and_totalled_in_status(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_program(tmp_path, "claude", monkeypatch)
    run_preset(repo, "claude", 2)
    cfg.save(repo, make_config(preset="claude"))  # what `status` reads the metric from
    lines = (repo / ".autoresearch/experiments.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert "cost_usd" not in records[0] and "tokens" not in records[0]  # the baseline
    assert [(r["cost_usd"], r["tokens"]) for r in records[1:]] == [(0.0125, 1050)] * 2
    done = subprocess.run(
        [sys.executable, "-m", "autoresearch", "status", "--dir", str(repo)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "agent cost: $0.025 over 2 experiments, 2,100 tokens" in done.stdout


def test_cli_run_stops_with_the_agents_words_and_a_failing_exit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The case: `--loop 1` with Claude Code not logged in used to wait, retry, and
    # end "complete (0 experiments)" with exit 0.
    as_program(tmp_path, "claude", monkeypatch)
    cfg.save(repo, make_config(preset="claude"))
    git(repo, "add", "autoresearch.toml")
    git(repo, "commit", "-qm", "config")
    env = {**os.environ, "FAKE_AGENT_STATUS": "logged-out"}
    done = subprocess.run(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(repo), "--loop", "1"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert done.returncode != 0
    assert '"loggedIn": false' in done.stderr and "claude auth status" in done.stderr
    assert "complete" not in done.stdout
    assert results_tsv.read(repo / "results.tsv") == []
    assert_no_leftover_processes(repo)
