"""Stop conditions, notices, the webhook, live curves and pruning in the real loop: real git
repositories, real `train.py` subprocesses, a real local HTTP server for the hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from conftest import ScriptedProposer, make_config, make_repo, set_lr
from webhook_server import Hook

from autoresearch import curves, results_tsv
from autoresearch.loop import Loop, Progress
from autoresearch.protocol import CurvePoints, ExperimentRecorded, LoopNotice, LoopState

# A run's loss falls with the step; a learning rate away from 0.3 is worse at every step.
CURVED = """\
import time
LR = 0.5
STEPS = 40

for step in range(STEPS + 1):
    val = 3.0 / (1 + step) + abs(LR - 0.3) * 2
    print(f"step {step} | val_loss: {val:.5f}", flush=True)
    time.sleep(0.15)
print(f"score: {val:.6f}")
"""
CURVE = r"^step (\d+).*val_loss:? ([-+0-9.eE]+)"


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


def run_loop(root: Path, proposer, limit: int | None = None, **overrides) -> tuple[Loop, list]:
    events: list = []
    loop = Loop(root, make_config(**overrides), proposer, emit=events.append, limit=limit)
    loop.run()
    return loop, events


def said(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, Progress)]


def notices(events: list) -> list[LoopNotice]:
    return [e for e in events if isinstance(e, LoopNotice)]


@pytest.mark.parametrize(
    ("setting", "edits", "why"),
    [
        ({"stop__max_experiments": 2}, [], "2 experiments were run (stop.max_experiments 2)"),
        ({"stop__plateau": 2}, [set_lr("0.9"), set_lr("0.8")], "2 experiments in a row"),
        ({"stop__target": 0.1}, [set_lr("0.9"), set_lr("0.31")], "the target was reached: #2"),
    ],
)
def test_a_stop_condition_ends_the_loop_after_the_experiment_and_says_why(
    repo: Path, hook: Hook, setting: dict, edits: list, why: str
) -> None:
    # No limit: without the condition this loop would run for ever.
    edits = edits or [set_lr("0.9"), set_lr("0.8")]
    loop, events = run_loop(
        repo,
        ScriptedProposer([*edits, *[set_lr(f"0.{i}") for i in range(1, 9)]]),
        notify__webhook=hook.url(),
        **setting,
    )
    rows = results_tsv.read(repo / "results.tsv")
    assert len(rows) == 3  # the baseline and two experiments
    final = [e for e in events if isinstance(e, LoopState)][-1]
    assert final.phase == "stopped" and why in final.message
    assert any(t.startswith("stopping: ") and why in t for t in said(events))
    assert f"Stopped: {why}" in said(events)[-1]  # the summary
    stopped = [n for n in notices(events) if n.kind == "stopped"]
    assert len(stopped) == 1 and why in stopped[0].text and "best score" in stopped[0].text
    assert stopped[0].number == loop.ledger.tally(loop.tag).best_number  # the best, to open
    texts = hook.wait_for(1)
    assert any(why in t and repo.name in t for t in texts)


def test_wall_clock_stops_the_loop(repo: Path) -> None:
    proposer = ScriptedProposer([set_lr(f"0.{i}") for i in range(1, 9)])
    _loop, events = run_loop(repo, proposer, stop__wall_clock="1s")
    final = [e for e in events if isinstance(e, LoopState)][-1]
    assert "stop.wall_clock 1s" in final.message


def test_without_a_stop_setting_the_loop_runs_on(repo: Path) -> None:
    _loop, events = run_loop(repo, ScriptedProposer([set_lr("0.9")] * 4), limit=4)
    assert len(results_tsv.read(repo / "results.tsv")) == 5
    assert not any(t.startswith("stopping: ") for t in said(events))


def test_three_crashes_in_a_row_make_one_notice_naming_the_last(repo: Path, hook: Hook) -> None:
    crash = [set_lr("-1")] * 20  # the crash retries ask for edits too
    _loop, events = run_loop(repo, ScriptedProposer(crash), limit=4, notify__webhook=hook.url())
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.status for r in rows[1:]] == ["crash"] * 4
    crashes = [n for n in notices(events) if n.kind == "crashes"]
    assert len(crashes) == 1 and crashes[0].number == 3
    assert "3 crashes in a row" in crashes[0].text
    texts = hook.wait_for(2)  # the crash notice, and the stop after the requested 4
    assert any("3 crashes in a row" in t for t in texts)


def test_a_new_best_is_noticed_and_sent_only_when_asked(repo: Path, hook: Hook) -> None:
    _, events = run_loop(
        repo, ScriptedProposer([set_lr("0.35")]), limit=1, notify__webhook=hook.url()
    )
    best = [n for n in notices(events) if n.kind == "new_best"]
    assert len(best) == 1 and best[0].number == 1 and "new best score" in best[0].text
    assert not any("new best" in t for t in hook.wait_for(1))
    make_repo(repo.parent / "again")
    _loop, events = run_loop(
        repo.parent / "again",
        ScriptedProposer([set_lr("0.35")]),
        limit=1,
        notify__webhook=hook.url(),
        notify__new_best=True,
    )
    assert any("new best score" in t for t in hook.wait_for(3))


def test_a_failing_webhook_never_stops_the_loop(repo: Path) -> None:
    failing = Hook(status=500)
    try:
        run_loop(
            repo, ScriptedProposer([set_lr("-1")] * 20), limit=3, notify__webhook=failing.url()
        )
        assert len(failing.wait_for(2)) >= 2  # it was called, and failed
    finally:
        failing.close()
    assert len(results_tsv.read(repo / "results.tsv")) == 4


def test_a_curve_is_sent_live_and_kept_per_experiment(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": CURVED})
    loop, events = run_loop(root, ScriptedProposer([set_lr("0.35")]), limit=1, metric__curve=CURVE)
    stored = curves.read(root, loop.tag, 1)
    assert [s for s, _ in stored] == list(range(41))
    assert stored[-1][1] == pytest.approx(3.0 / 41 + 0.1, abs=1e-5)
    assert not (root / "results.tsv").read_text().count("val_loss")
    # Live: points of #1 reached the client before #1 was recorded, in several batches.
    recorded = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, ExperimentRecorded) and e.experiment.number == 1
    )
    live = [e for e in events[:recorded] if isinstance(e, CurvePoints) and e.number == 1]
    assert len(live) >= 2
    assert [s for e in live for s in e.steps] == list(range(41))
    states = [e for e in events if isinstance(e, LoopState) and e.curve_step is not None]
    assert states and states[-1].curve_value is not None


def test_a_run_behind_the_best_is_pruned_and_recorded_as_a_discard(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": CURVED})
    loop, _events = run_loop(
        root,
        ScriptedProposer([set_lr("0.9"), set_lr("0.35")]),
        limit=2,
        metric__curve=CURVE,
        decision__prune=True,
        decision__prune_after=0.5,
        decision__prune_margin=0.05,
    )
    records = loop.ledger.experiments(loop.tag)
    pruned, better = records[1], records[2]
    assert pruned.status == "discard" and pruned.metric is None
    step = int(pruned.reason.split()[3])
    assert pruned.reason == f"pruned at step {step} of 40" and 20 <= step < 40
    assert pruned.runtime_s < records[0].runtime_s
    # The curve of a pruned run stops where it was stopped; a better run is never pruned.
    assert curves.read(root, loop.tag, 1)[-1][0] >= step
    assert better.status == "keep" and better.reason.startswith("improved")


def test_the_cli_says_why_it_stopped(repo: Path, hook: Hook) -> None:
    (repo / "autoresearch.toml").write_text(
        '[metric]\nname = "score"\ndirection = "lower"\npattern = \'^score:\\s*(\\S+)\'\n'
        f'[run]\ncommand = "{sys.executable} train.py"\n'
        '[scope]\nfiles = ["train.py"]\n'
        '[agent]\nkind = "sweep"\nseed = 1\n'
        "[stop]\nmax_experiments = 2\n"
        f"[notify]\nwebhook = '{hook.url()}'\n"
    )
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "config"], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(repo)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "stopping: 2 experiments were run (stop.max_experiments 2)" in done.stdout
    assert "Stopped: 2 experiments were run" in done.stdout
    assert any("stop.max_experiments 2" in t for t in hook.wait_for(1))


def test_the_cli_live_line_shows_the_curves_step_and_value(capsys) -> None:
    from autoresearch import cli

    emit = cli._printer()
    state = LoopState(root="/r", phase="running", current=4, curve_step=120, curve_value=2.3125)
    emit(state)
    emit(msgspec.structs.replace(state, curve_step=130))  # within CURVE_LINE_S: not repeated
    assert capsys.readouterr().out == "  #4 step 120: 2.3125\n"
