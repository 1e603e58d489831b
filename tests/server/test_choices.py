"""The researcher's choices (issue #15) on a target shaped like a real one: a wrapper whose
hyperparameters are constants, a trainer it calls, several printed metrics, an integer
constraint (N_EMBD a multiple of N_HEAD) and a metric that moves with the seed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import optuna
import pytest
from conftest import git, make_config, make_repo
from wrapper_target import make_target

from autoresearch import config as cfg
from autoresearch import results_tsv
from autoresearch.agents.space import Constraint
from autoresearch.agents.sweep import SweepProposer
from autoresearch.loop import Loop, LoopStopped


def wrapper_config(**agent: object) -> cfg.Config:
    return make_config(
        metric={"name": "test_loss", "direction": "lower", "pattern": r"^test_loss:\s*(\S+)"},
        run={"command": f"{sys.executable} run.py", "timeout": 60},
        scope={"files": ["run.py"], "off_limits": ["trainer.py"]},
        agent={"kind": "sweep", "seed": 7, **agent},
    )


def sweep(root: Path, config: cfg.Config, limit: int) -> tuple[SweepProposer, list]:
    proposer = SweepProposer(config, root, git(root, "ls-files").splitlines())
    Loop(root, config, proposer, limit=limit).run()
    return proposer, results_tsv.read(root / "results.tsv")


def ledger_params(root: Path) -> list[dict]:
    import json

    path = root / ".autoresearch" / "experiments.jsonl"
    return [json.loads(line).get("params", {}) for line in path.read_text().splitlines() if line]


# ---- the search space ---------------------------------------------------------------------------


def test_budget_like_constants_are_frozen_by_default(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    proposer = SweepProposer(wrapper_config(), root, ["run.py", "trainer.py"])
    assert set(proposer.constants) == {"N_EMBD", "N_HEAD", "LEARNING_RATE"}
    assert proposer.frozen == ["MAX_STEPS"]
    tuned = SweepProposer(wrapper_config(freeze=[]), root, ["run.py", "trainer.py"])
    assert "MAX_STEPS" in tuned.constants
    only = SweepProposer(wrapper_config(tune=["LEARNING_RATE"]), root, ["run.py"])
    assert set(only.constants) == {"LEARNING_RATE"}


def test_constraint_violations_are_never_run(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    config = wrapper_config(
        params=[
            {"name": "N_EMBD", "type": "int", "low": 16, "high": 96},
            {"name": "N_HEAD", "type": "choice", "choices": [2, 3, 4, 5, 8]},
        ],
        constraints=["N_EMBD % N_HEAD == 0"],
    )
    proposer, rows = sweep(root, config, 8)
    assert len(rows) == 9
    assert [r.status for r in rows if r.status == "crash"] == []
    for params in ledger_params(root)[1:]:
        assert params["N_EMBD"] % params["N_HEAD"] == 0, params
    failed = [t for t in proposer.study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(
        t.params["N_EMBD"] % t.params["N_HEAD"] != 0
        for t in failed
        if set(t.params) == {"N_EMBD", "N_HEAD"}
    )


def test_multiple_of_and_choices_shape_the_values(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    config = wrapper_config(
        params=[
            {"name": "N_EMBD", "type": "int", "low": 16, "high": 128, "multiple_of": 8},
            {"name": "ACTIVATION", "type": "choice", "choices": ["relu", "gelu"]},
            {"name": "LEARNING_RATE", "type": "log", "low": 1e-4, "high": 0.1},
        ],
    )
    _, rows = sweep(root, config, 10)
    assert not [r for r in rows if r.status == "crash"]
    seen = ledger_params(root)[1:]
    assert all(p["N_EMBD"] % 8 == 0 and 16 <= p["N_EMBD"] <= 128 for p in seen)
    assert all(p["ACTIVATION"] in ("relu", "gelu") for p in seen)
    assert all(1e-4 <= p["LEARNING_RATE"] <= 0.1 for p in seen)
    text = (root / "run.py").read_text()
    assert 'ACTIVATION = "relu"' in text or 'ACTIVATION = "gelu"' in text


def test_no_configuration_is_measured_twice(tmp_path: Path) -> None:
    # Two heads x two activations: four configurations, the baseline's among them. Once the
    # other three are measured the sweep says the space is exhausted instead of re-running one.
    root = make_target(tmp_path / "t")
    config = wrapper_config(
        params=[
            {"name": "N_HEAD", "type": "choice", "choices": [4, 8]},
            {"name": "ACTIVATION", "type": "choice", "choices": ["relu", "gelu"]},
        ],
    )
    proposer = SweepProposer(config, root, ["run.py", "trainer.py"])
    with pytest.raises(LoopStopped, match="search space is exhausted"):
        Loop(root, config, proposer, limit=10).run()
    seen = [(p["N_HEAD"], p["ACTIVATION"]) for p in ledger_params(root)[1:]]
    assert len(seen) == len(set(seen)) and (4.0, "relu") not in seen
    assert git(root, "status", "--porcelain") == ""


def test_a_crash_is_a_failed_trial(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    config = wrapper_config(params=[{"name": "N_HEAD", "type": "choice", "choices": [5, 7, 9]}])
    proposer, rows = sweep(root, config, 3)
    assert [r.status for r in rows[1:]] == ["crash"] * 3
    assert [t.state for t in proposer.study.trials[1:]] == [optuna.trial.TrialState.FAIL] * 3


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('touch pwned')",
        "N_EMBD ** 99999999",
        "[x for x in ()]",
        "N_EMBD.bit_length() > 2",
        "N_EMBD if N_HEAD else 1",
    ],
)
def test_unsafe_constraints_are_refused_naming_what_is_allowed(expr: str) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        wrapper_config(constraints=[expr])
    message = str(info.value)
    assert repr(expr) in message and "allowed" in message and "comparisons" in message


@pytest.mark.parametrize(
    ("expr", "what"),
    [
        ("N_EMBD ** 2 > 8", "uses a power (**)"),
        ("N_EMBD in (1, 2)", "uses in,"),
        ("'x' * 99999999999 == N_EMBD", "uses arithmetic on text"),
    ],
)
def test_a_refused_constraint_names_the_operator(expr: str, what: str) -> None:
    with pytest.raises(cfg.ConfigError, match=re.escape(what)):
        wrapper_config(constraints=[expr])


def test_arithmetic_on_a_text_constant_is_never_evaluated() -> None:
    # OPTIM = "adam" in the file: repeating it 10**11 times would fill the memory.
    rule = Constraint("OPTIM * 99999999999 == N_EMBD")
    assert rule.holds({"OPTIM": "adam", "N_EMBD": 1.0}) is False
    assert Constraint("OPTIM == 'adam'").holds({"OPTIM": "adam"})


def test_bad_param_declarations_name_the_fix() -> None:
    with pytest.raises(cfg.ConfigError, match="needs choices"):
        wrapper_config(params=[{"name": "N_HEAD", "type": "choice"}])
    with pytest.raises(cfg.ConfigError, match='must be one of "int", "float", "log", "choice"'):
        wrapper_config(params=[{"name": "N_HEAD", "type": "integer"}])
    with pytest.raises(cfg.ConfigError, match="multiple_of is for integers"):
        wrapper_config(params=[{"name": "LEARNING_RATE", "type": "float", "multiple_of": 2}])


def test_constraint_naming_an_unknown_constant_is_refused(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    with pytest.raises(ValueError, match="N_LAYERS"):
        SweepProposer(wrapper_config(constraints=["N_LAYERS > 1"]), root, ["run.py"])


# ---- seeds against noise ------------------------------------------------------------------------

LUCKY = """\
import os

N = 3
seed = int(os.environ.get("AUTORESEARCH_SEED", "0"))
run = os.environ.get("AUTORESEARCH_RUN", "?")
noise = [0.0, 0.0001, -0.0001][seed % 3]
# N = 4 looks 0.0015 better with seed 0 only; with any other seed it is worse.
effect = 0.0 if N == 3 else (-0.0015 if seed == 0 else 0.002)
print(f"seed {seed} run {run}")
print(f"test_loss: {1.0 + noise + effect:.6f}")
"""


def test_repeats_get_their_own_seeds_and_a_lucky_seed_does_not_win(tmp_path: Path) -> None:
    from conftest import ScriptedProposer

    root = make_repo(tmp_path / "r", {"run.py": LUCKY})

    def edit(r: Path) -> str:
        (r / "run.py").write_text(LUCKY.replace("N = 3", "N = 4"))
        return "N 3 -> 4"

    config = make_config(
        metric={"name": "test_loss", "direction": "lower", "pattern": r"^test_loss:\s*(\S+)"},
        run={"command": f"{sys.executable} run.py", "timeout": 60},
        scope={"files": ["run.py"]},
        decision={"noise_repeats": 2, "confirmation_runs": 2},
    )
    loop = Loop(root, config, ScriptedProposer([edit]), limit=1)
    loop.run()
    rows = results_tsv.read(root / "results.tsv")
    assert [r.status for r in rows] == ["keep", "discard"]
    assert rows[1].metric == pytest.approx((0.9985 + 1.0021 + 1.0019) / 3, abs=1e-6)
    assert "± " in rows[1].description or "over 3 seeds" in ledger_reason(root, 1)
    runs = root / ".autoresearch" / "runs"
    seen = {p.name.split("-", 1)[1]: p.read_text().splitlines()[0] for p in runs.glob("*.log")}
    assert seen["0.log"] == "seed 0 run 0" and seen["0.noise2.log"] == "seed 2 run 0"
    assert seen["1.log"] == "seed 0 run 1" and seen["1.confirm1.log"] == "seed 1 run 1"


def ledger_reason(root: Path, number: int) -> str:
    import json

    path = root / ".autoresearch" / "experiments.jsonl"
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("number") == number:
            return record.get("reason", "")
    return ""


# ---- init: the metric, the off-limits trainer, the interpreter, the frozen budget ----------------


def init(root: Path, *args: str, env: dict[str, str] | None = None, stdin: object = None):
    import os
    import subprocess

    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", "init", "--dir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        env={**environ, **(env or {})},
    )


def test_init_takes_the_held_out_metric_and_says_which_and_the_others(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    done = init(root, "--direction", "lower")
    assert done.returncode == 0, done.stderr
    assert "took test_loss; also printed: train_loss, eval_step, training_seconds" in done.stdout
    assert "pass --metric NAME" in done.stdout
    config = cfg.load(root)
    assert config.metric.name == "test_loss"
    assert config.scope.files == ["run.py"] and config.scope.off_limits == ["trainer.py"]
    assert config.agent.freeze == ["MAX_STEPS"]
    assert "frozen: MAX_STEPS" in done.stdout and "N_EMBD=48" in done.stdout


def test_init_metric_flag_is_taken_without_asking(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    done = init(root, "--direction", "lower", "--metric", "train_loss")
    assert done.returncode == 0, done.stderr
    assert "took" not in done.stdout
    assert cfg.load(root).metric.name == "train_loss"


def test_init_asks_which_metric_on_a_terminal(tmp_path: Path) -> None:
    import os

    root = make_target(tmp_path / "t")
    (root / "run.log").write_text("eval_step: 100\ntrain_loss: 0.41\ntest_loss: 0.52\n")
    primary, secondary = os.openpty()
    try:
        os.write(primary, b"train_loss\n")
        done = init(root, "--direction", "lower", stdin=secondary)
    finally:
        os.close(primary)
        os.close(secondary)
    assert done.returncode == 0, done.stderr
    assert "1. test_loss = 0.52 (run.log)" in done.stdout
    assert "Which is the metric? [test_loss]" in done.stdout
    assert cfg.load(root).metric.name == "train_loss"


def test_init_uses_the_active_virtual_environment(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    done = init(root, "--direction", "lower", env={"VIRTUAL_ENV": str(venv)})
    assert done.returncode == 0, done.stderr
    assert cfg.load(root).run.command == f"{venv}/bin/python run.py"
    bare = init(root, "--direction", "lower", "--force")
    assert cfg.load(root).run.command == "python3 run.py"
    assert "no virtual environment is active" in bare.stdout


def test_init_force_infers_afresh(tmp_path: Path) -> None:
    root = make_target(tmp_path / "t")
    assert init(root, "--direction", "lower", "--metric", "train_loss").returncode == 0
    again = init(root, "--direction", "lower", "--force")
    assert again.returncode == 0, again.stderr
    assert "loaded the existing" not in again.stdout
    assert cfg.load(root).metric.name == "test_loss"


# ---- seeing progress ----------------------------------------------------------------------------


def cli(root: Path, *args: str, timeout: float = 300):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "autoresearch", *args, "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def crashing_session(tmp_path: Path) -> Path:
    """A committed config on the wrapper target whose N_HEAD choices crash some runs."""
    root = make_target(tmp_path / "t")
    config = wrapper_config(
        params=[
            {"name": "N_HEAD", "type": "choice", "choices": [4, 5, 6, 8]},
            {"name": "LEARNING_RATE", "type": "log", "low": 1e-3, "high": 0.05},
        ]
    )
    cfg.save(root, config)
    git(root, "add", "autoresearch.toml")
    git(root, "commit", "-qm", "config")
    return root


def test_run_says_when_each_experiment_starts_and_results_say_why_and_how_long(
    tmp_path: Path,
) -> None:
    root = crashing_session(tmp_path)
    done = cli(root, "run", "--loop", "6")
    assert done.returncode == 0, done.stderr
    for n in range(1, 7):
        assert f"#{n} started: " in done.stdout
    assert "change approach" not in done.stdout  # the sweep has no approach to change
    listing = cli(root, "results")
    assert "time s" in listing.stdout
    rows = [line for line in listing.stdout.splitlines()[2:] if line.strip()]
    assert len(rows) == 7
    crashed = [line for line in rows if " crash " in line]
    assert crashed and all("must be divisible by num_heads" in line for line in crashed), rows
    status = cli(root, "status")
    assert "test_loss: baseline 0.16" in status.stdout and "-> best" in status.stdout


def test_report_draws_progress_png_and_lists_the_top_improvements(tmp_path: Path) -> None:
    from PIL import Image

    root = crashing_session(tmp_path)
    assert cli(root, "run", "--loop", "5").returncode == 0
    done = cli(root, "report")
    assert done.returncode == 0, done.stderr
    chart = root / "progress.png"
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (1600, 800)
        colours = {c for _, c in image.getcolors(1_000_000) or []}
    assert (0x2C, 0xA0, 0x2C) in colours  # the keeps and the running best are drawn
    assert "test_loss: baseline 0.16" in done.stdout
    improved = [r for r in results_tsv.read(root / "results.tsv")[1:] if r.status == "keep"]
    assert improved and "top improvements" in done.stdout
    assert f"#{improved[0].number}" in done.stdout and improved[0].description in done.stdout
    bad = cli(root, "report", "--out", str(tmp_path / "no" / "such" / "p.png"))
    assert bad.returncode == 2 and "--out" in bad.stderr


def test_a_terminal_sees_a_live_elapsed_line(tmp_path: Path) -> None:
    import os
    import re
    import subprocess

    root = make_repo(
        tmp_path / "slow",
        {"train.py": 'import time\nLR = 0.5\ntime.sleep(3)\nprint(f"score: {LR}")\n'},
    )
    cfg.save(root, make_config())
    git(root, "add", "autoresearch.toml")
    git(root, "commit", "-qm", "config")
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(root), "--loop", "1"],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=subprocess.PIPE,
    )
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal's other end closed: the run is over
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    text = out.decode(errors="replace")
    assert re.search(r"#0 running \d+ s / 30 s", text), text
    assert re.search(r"#1 running \d+ s / 30 s", text), text
    # The live line is always rewritten or cleared (\r) before anything else is printed.
    assert not re.search(r"/ 30 s[^\r]", text), text


def test_the_sweep_is_never_told_to_change_approach(repo: Path) -> None:
    from conftest import ScriptedProposer, set_lr

    said: list[str] = []

    def emit(event: object) -> None:
        text = getattr(event, "text", None)
        if isinstance(text, str):
            said.append(text)

    edits = [set_lr("0.9"), set_lr("1.0"), set_lr("1.1"), set_lr("1.2")]
    Loop(repo, make_config(), ScriptedProposer(edits), emit=emit, limit=4).run()
    assert [r.status for r in results_tsv.read(repo / "results.tsv")][1:] == ["discard"] * 4
    assert not [line for line in said if "change approach" in line]


def test_a_win_on_every_seed_is_kept_and_says_its_mean_and_sd(tmp_path: Path) -> None:
    from conftest import ScriptedProposer

    from autoresearch.loop import Progress

    script = LUCKY.replace("-0.0015 if seed == 0 else 0.002", "-0.0015")
    root = make_repo(tmp_path / "r", {"run.py": script})

    def edit(r: Path) -> str:
        (r / "run.py").write_text(script.replace("N = 3", "N = 4"))
        return "N 3 -> 4"

    said: list[str] = []
    config = make_config(
        metric={"name": "test_loss", "direction": "lower", "pattern": r"^test_loss:\s*(\S+)"},
        run={"command": f"{sys.executable} run.py", "timeout": 60},
        scope={"files": ["run.py"]},
        decision={"noise_repeats": 2, "confirmation_runs": 2},
    )
    emit = lambda e: said.append(e.text) if isinstance(e, Progress) else None  # noqa: E731
    Loop(root, config, ScriptedProposer([edit]), emit=emit, limit=1).run()
    rows = results_tsv.read(root / "results.tsv")
    assert [r.status for r in rows] == ["keep", "keep"]
    assert rows[1].metric == pytest.approx(0.9985, abs=1e-6)
    line = next(s for s in said if s.startswith("#1 keep"))
    assert "mean 0.9985 ± 0.0001 over 3 seeds" in line, line
    assert "over 3 seeds" in ledger_reason(root, 0)  # the baseline's noise, seeds 0, 1, 2


def test_a_benchmark_timing_is_still_its_metric(tmp_path: Path) -> None:
    from autoresearch.detect import detect

    root = make_repo(
        tmp_path / "b", {"bench.py": 'N = 4\nprint(f"step: {N}")\nprint(f"time_ms: {N}")\n'}
    )
    result = detect(root)
    assert result.config.metric.name == "time_ms"
    assert [m.name for m in result.metrics] == ["time_ms", "step"]


def test_the_daemon_detect_gives_the_wizard_the_metric_candidates(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from jsonrpc import Daemon

    sys.path.pop(0)
    root = make_target(tmp_path / "t")
    (root / "run.log").write_text("eval_step: 100\ntrain_loss: 0.41\ntest_loss: 0.52\n")
    daemon = Daemon(cwd=tmp_path, log=tmp_path / "daemon.stderr")
    try:
        answer = daemon.request("autoresearch/detect", {"root": str(root)}, timeout=60)
    finally:
        daemon.close()
    assert [m["name"] for m in answer["metrics"]] == [
        "test_loss",
        "train_loss",
        "eval_step",
        "training_seconds",
    ]
    assert answer["metrics"][0] == {"name": "test_loss", "value": 0.52, "source": "run.log"}
    assert answer["config"]["metric"]["name"] == "test_loss"
    assert answer["config"]["scope"]["off_limits"] == ["trainer.py"]
    assert answer["config"]["agent"]["freeze"] == ["MAX_STEPS"]
