"""agent.kind "editor" in autoresearch.toml: a model is required, a model with another kind is
refused, and outside VS Code (the CLI, a detached loop) it is refused before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from conftest import git, make_config

from autoresearch import config as cfg

CLI = [sys.executable, "-m", "autoresearch"]


def test_the_editor_model_is_saved_and_read_back(tmp_path: Path) -> None:
    config = make_config(agent={"kind": "editor", "vendor": "copilot", "family": "gpt-4o"})
    cfg.save(tmp_path, config)
    text = (tmp_path / "autoresearch.toml").read_text()
    assert 'kind = "editor"' in text and 'vendor = "copilot"' in text
    assert cfg.load(tmp_path).agent == config.agent


@pytest.mark.parametrize(
    ("agent", "said"),
    [
        ({"kind": "editor"}, 'agent.kind is "editor" but agent.vendor is not set'),
        ({"kind": "editor", "vendor": " "}, "Pick the model in VS Code's Start Loop wizard"),
        ({"kind": "sweep", "vendor": "copilot"}, 'agent.vendor is set but agent.kind is "sweep"'),
        (
            {"kind": "command", "preset": "claude", "family": "gpt-4o"},
            'Set kind = "editor", or remove agent.family.',
        ),
        ({"kind": "copilot"}, '"sweep", "manual", "command", "editor"'),
    ],
)
def test_bad_editor_configs_name_the_fix(agent: dict[str, str], said: str) -> None:
    with pytest.raises(cfg.ConfigError, match=None) as caught:
        make_config(agent=agent)
    assert said in str(caught.value)


@pytest.mark.parametrize("detach", [False, True])
def test_the_cli_refuses_an_editor_loop_and_writes_nothing(repo: Path, detach: bool) -> None:
    raw = {
        "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
        "run": {"command": f"{sys.executable} train.py", "timeout": 30},
        "scope": {"files": ["train.py"]},
        "agent": {"kind": "editor", "vendor": "copilot", "family": "gpt-4o"},
    }
    (repo / "autoresearch.toml").write_text(tomli_w.dumps(raw))
    git(repo, "add", "autoresearch.toml")
    git(repo, "commit", "-qm", "config")
    head = git(repo, "rev-parse", "HEAD")
    argv = [*CLI, "run", "--dir", str(repo), "--loop", "1", *(["--detach"] if detach else [])]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode != 0
    assert "runs only inside VS Code" in done.stderr, done.stderr
    assert "start the loop from VS Code's Start Loop" in done.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    assert not (repo / "results.tsv").exists()
    # (the CLI makes .autoresearch/ for its log first, as for any refused agent: no records)
    assert not (repo / ".autoresearch" / "experiments.jsonl").exists()
    assert git(repo, "branch", "--list", "autoresearch/*") == ""
