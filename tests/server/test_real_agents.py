"""The presets with the real coding-agent programs, through the real loop.

Each program (installed pinned by tests/agents/install.sh, outside the repository) is pointed
at a scripted model server on 127.0.0.1 (model_server.py) through the settings a user would
use, with a dummy key, and runs three experiments: every one a real edit of train.py with the
program's own tools, a real description, nothing blamed on it as out of scope, no process left.
Then the same program with no key and no network: the loop stops before the baseline, quoting
the program's own words, without waiting for a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_agents import TRAIN_PY, make_config, make_repo
from test_agent_loop import assert_no_leftover_processes

from autoresearch import results_tsv
from autoresearch.agents import make_proposer
from autoresearch.agents.base import AgentUnavailable
from autoresearch.ledger import Ledger
from autoresearch.loop import Loop, LoopStopped

HERE = Path(__file__).parent
INSTALL = HERE.parent / "agents" / "install.sh"
SERVER = HERE / "model_server.py"
CLOSED = "http://127.0.0.1:9"  # nothing listens there: "no network"


@pytest.fixture(scope="session")
def agents_bin() -> Path:
    """The pinned programs' bin folder (installed once; the stamp makes later runs instant)."""
    done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"installing the agent programs failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


class ModelServer:
    def __init__(self, root: Path, folder: Path) -> None:
        port_file = folder / "port"
        self.requests = folder / "requests.jsonl"
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(root), str(port_file), str(self.requests)]
        )
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert self.process.poll() is None, "the model server exited"
            assert time.monotonic() < deadline, "the model server did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def server(repo: Path, tmp_path: Path) -> Iterator[ModelServer]:
    running = ModelServer(repo, tmp_path)
    yield running
    running.stop()


def settings(program: str, url: str, key: str) -> dict[str, str]:
    """What a user sets to run `program` with an API key (and, here, a base URL)."""
    common = {"NO_BROWSER": "1"}
    if program == "claude":
        return {
            **common,
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
    if program == "aider":
        return {
            **common,
            "OPENAI_API_BASE": f"{url}/v1",
            "OPENAI_API_KEY": key,
            # litellm would fetch its price list from GitHub at every start.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
    if program == "codex":  # the base URL is in ~/.codex/config.toml (configure_home)
        return {**common, "OPENAI_API_KEY": key}
    if program == "gemini":
        return {**common, "GEMINI_API_KEY": key, "GOOGLE_GEMINI_BASE_URL": url}
    if program == "opencode":  # its Anthropic provider honours ANTHROPIC_BASE_URL
        return {**common, "ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": f"{url}/v1"}
    raise AssertionError(program)


def configure_home(program: str, home: Path, url: str) -> None:
    """The config files a user writes to use a base URL of their own."""
    if program == "codex":
        # Its default model (gpt-6.x) writes code in a "code mode" tool this script does not
        # speak; gpt-4.1 edits through apply_patch, as every model did before.
        (home / ".codex").mkdir(parents=True)
        (home / ".codex/config.toml").write_text(
            f'openai_base_url = "{url}/v1"\nmodel = "gpt-4.1"\n'
        )
    if program == "gemini":
        # With GOOGLE_GEMINI_BASE_URL set, gemini 0.61 picks the "gateway" auth type, which
        # it then rejects ("Invalid auth method selected"); naming the API key type avoids it.
        (home / ".gemini").mkdir(parents=True)
        (home / ".gemini/settings.json").write_text(
            '{"security": {"auth": {"selectedType": "gemini-api-key"}}}'
        )


# Every variable that could hand a program a real key or endpoint from the machine running
# the tests.
_KEYS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "OPENROUTER_API_KEY",
)


def environment(
    monkeypatch: pytest.MonkeyPatch, agents_bin: Path, home: Path, extra: dict[str, str]
) -> None:
    """A new user's machine: an empty home, the programs on PATH, only `extra` set."""
    home.mkdir(parents=True, exist_ok=True)
    for name in _KEYS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("PATH", f"{agents_bin}{os.pathsep}{os.environ['PATH']}")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def run_loop(repo: Path, preset: str, limit: int) -> Loop:
    config = make_config(preset=preset, timeout=600)
    proposer = make_proposer(config, repo, [])
    loop = Loop(repo, config, proposer, limit=limit)
    loop.agent_retry_wait_s = 0.0
    try:
        loop.run()
    finally:
        assert_no_leftover_processes(repo)
    return loop


PROGRAMS = ["claude", "aider", "codex", "gemini", "opencode"]


@pytest.mark.parametrize("program", PROGRAMS)
def test_real_program_makes_three_real_experiments(
    program: str,
    repo: Path,
    server: ModelServer,
    agents_bin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment(monkeypatch, agents_bin, tmp_path / "home", settings(program, server.url, "k"))
    configure_home(program, tmp_path / "home", server.url)
    loop = run_loop(repo, program, limit=3)
    ledger = Ledger(repo)
    ledger.load()
    records = ledger.experiments(loop.tag)
    logs = "\n".join(p.read_text() for p in sorted((repo / ".autoresearch/agents").glob("*.log")))
    assert [e.number for e in records] == [0, 1, 2, 3], logs
    # Each program halved the rate with its own edit tool and wrote the description.
    assert [e.description for e in records[1:]] == [
        "halve LR to 0.005",
        "halve LR to 0.0025",
        "halve LR to 0.00125",
    ], logs
    assert [e.status for e in records] == ["keep"] * 4
    assert [e.metric for e in records] == [0.1, 0.05, 0.025, 0.0125]
    for e in records[1:]:
        assert e.diff.files == 1
        # Nothing blamed on the agent: its caches are not its edits.
        assert not [x for x in e.events if "scope" in x or "reverted" in x], e.events
    # What each call cost, where the program says (the scripted server's usage figures).
    cost, tokens = COSTS[program]
    assert [(e.cost_usd is not None, e.tokens is not None) for e in records[1:]] == [
        (cost, tokens)
    ] * 3
    if program == "claude":  # three requests of 1000 tokens in, 50 out
        assert [e.tokens for e in records[1:]] == [3 * 1050] * 3
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.description for r in rows[1:]] == [e.description for e in records[1:]]
    assert "LEARNING_RATE = 0.00125  # step size" in (repo / "train.py").read_text()
    prompt = (repo / ".autoresearch/prompt.md").read_text()
    assert "halve LR to 0.0025" in prompt and "also edited" not in prompt
    assert server.requests.exists()


@pytest.mark.parametrize("program", PROGRAMS)
def test_real_program_without_a_key_stops_at_once(
    program: str, repo: Path, agents_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new user's machine: no key, no endpoint of their own, and no network here.
    extra = {
        k: v
        for k, v in settings(program, CLOSED, "").items()
        if not any(word in k for word in ("KEY", "URL", "BASE"))
    }
    environment(monkeypatch, agents_bin, tmp_path / "home", extra)
    with pytest.raises((LoopStopped, AgentUnavailable)) as raised:
        run_loop(repo, program, limit=3)
    message = str(raised.value)
    assert f'preset "{program}"' in message, message
    assert WORDS[program] in message, message
    assert "log it in or give it an API key" in message
    rows = results_tsv.read(repo / "results.tsv")
    if program == "gemini":  # no status check of its own: its first call says it at once
        assert [r.status for r in rows] == ["keep"]
        assert (repo / "train.py").read_text() == TRAIN_PY
    else:  # its own check, before the baseline: nothing was run or recorded
        assert rows == []


# (cost reported, tokens reported) per experiment: codex and gemini count tokens only.
COSTS = {
    "claude": (True, True),
    "aider": (True, True),
    "codex": (False, True),
    "gemini": (False, True),
    "opencode": (True, True),
}

# The program's own words when it has no key.
WORDS = {
    "claude": '"loggedIn": false',
    "aider": "No LLM model was specified and no API keys were provided",
    "codex": "Not logged in",
    "gemini": "Please set an Auth method",
    "opencode": "0 credentials",
}
