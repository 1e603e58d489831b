"""The headless CLI, run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import git

from autoresearch import results_tsv

CLI = [sys.executable, "-m", "autoresearch"]


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_init_infers_and_never_guesses_the_direction(repo: Path) -> None:
    (repo / "train.py").write_text('LR = 1\nprint(f"val_loss: {LR}")\n')
    git(repo, "commit", "-qam", "print a metric")
    refused = cli("init", "--dir", str(repo))
    assert refused.returncode == 2 and "--direction lower" in refused.stderr
    assert not (repo / "autoresearch.toml").exists()
    done = cli("init", "--dir", str(repo), "--direction", "lower")
    assert done.returncode == 0, done.stderr
    assert "inferred metric: val_loss" in done.stdout
    text = (repo / "autoresearch.toml").read_text()
    assert 'name = "val_loss"' in text and 'direction = "lower"' in text
    assert "evaluate.py" in text  # the harness is off limits


def test_run_status_and_results(repo: Path) -> None:
    cli("init", "--dir", str(repo), "--direction", "lower", "--metric", "score")
    git(repo, "add", "autoresearch.toml")
    git(repo, "commit", "-qm", "config")
    done = cli("run", "--dir", str(repo), "--loop", "2")
    assert done.returncode == 0, done.stderr
    assert "=== Autoresearch complete (2 experiments" in done.stdout
    assert len(results_tsv.read(repo / "results.tsv")) == 3
    status = cli("status", "--dir", str(repo), "--json")
    data = json.loads(status.stdout)
    assert data["sessions"][0]["total"] == 3 and data["running"] is None
    listing = cli("results", "--dir", str(repo))
    assert "baseline" in listing.stdout and listing.stdout.count("\n") == 5


def test_run_without_config_names_init(repo: Path) -> None:
    done = cli("run", "--dir", str(repo))
    assert done.returncode == 2 and "autoresearch init" in done.stderr


def test_demo_runs_offline_without_gpu_or_llm(tmp_path: Path) -> None:
    done = cli("demo", "--dir", str(tmp_path / "demo"), "--loop", "3")
    assert done.returncode == 0, done.stderr
    assert "#3 " in done.stdout and "Keeps:" in done.stdout
    assert len(results_tsv.read(tmp_path / "demo" / "results.tsv")) == 4


def test_ctrl_c_finishes_the_experiment_cleanly(repo: Path) -> None:
    (repo / "train.py").write_text(
        (repo / "train.py")
        .read_text()
        .replace('print("training...")', "import time; time.sleep(1.5)")
    )
    git(repo, "commit", "-qam", "slow")
    cli("init", "--dir", str(repo), "--direction", "lower", "--metric", "score")
    proc = subprocess.Popen(
        [*CLI, "run", "--dir", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        path = repo / "results.tsv"
        if path.exists() and path.read_text().count("\n") >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "stopping after this experiment" in out
    rows = results_tsv.read(repo / "results.tsv")
    assert len(rows) >= 2
    assert git(repo, "status", "--porcelain") == ""
    assert os.path.exists(repo / ".autoresearch" / "experiments.jsonl")
