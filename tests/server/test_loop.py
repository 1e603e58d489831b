"""The loop end to end on real git repositories with real subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest
from branch_head import head_past_notes
from conftest import EVAL, TRAIN, ScriptedProposer, git, make_config, make_repo, set_lr

from autoresearch import results_tsv
from autoresearch.agents.sweep import SweepProposer
from autoresearch.loop import Loop, LoopStopped, Progress
from autoresearch.protocol import ExperimentRecorded, LoopState


def run_loop(root: Path, proposer, limit: int, **overrides) -> tuple[Loop, list]:
    events: list = []
    loop = Loop(root, make_config(**overrides), proposer, emit=events.append, limit=limit)
    loop.run()
    return loop, events


def test_keep_discard_crash_are_recorded_and_reverted(repo: Path) -> None:
    proposer = ScriptedProposer([set_lr("0.35"), set_lr("0.9"), set_lr("-1")])
    loop, events = run_loop(
        repo, proposer, 3, run__memory_pattern=r"^peak_mem_mb:\s*(\S+)", run__memory_unit="MB"
    )
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.status for r in rows] == ["keep", "keep", "discard", "crash"]
    assert rows[3].metric is None and rows[0].memory_gb == 0.5
    text = (repo / "results.tsv").read_text().splitlines()
    assert text[0] == "commit\tmetric\tmemory_gb\tstatus\tdescription"
    assert text[1].endswith("\t0.240000\t0.5\tkeep\tbaseline")
    # The branch sits at the last keep, with a clean tree: the discard and crash are reverted.
    assert head_past_notes(repo).startswith(rows[1].commit)
    assert "LR = 0.35" in (repo / "train.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    # Every attempt stays reviewable under its ref, reverted ones included.
    for row in rows:
        sha = git(repo, "rev-parse", f"refs/autoresearch/{loop.tag}/{row.number}")
        assert sha.startswith(row.commit)
    assert "LR = 0.9" in git(repo, "show", f"refs/autoresearch/{loop.tag}/2:train.py")
    phases = [e.phase for e in events if isinstance(e, LoopState)]
    assert phases[0] == "setup" and phases[-1] == "stopped" and "running" in phases
    recorded = [e.experiment.number for e in events if isinstance(e, ExperimentRecorded)]
    assert recorded == [0, 1, 2, 3]
    summary = [e.text for e in events if isinstance(e, Progress)][-1]
    assert "Keeps: 1 | Discards: 1 | Crashes: 1" in summary


def test_records_go_to_jsonl_with_the_richer_fields(repo: Path) -> None:
    loop, _ = run_loop(repo, ScriptedProposer([set_lr("0.35")]), 1)
    records = loop.ledger.experiments(loop.tag)
    assert [r.number for r in records] == [0, 1]
    assert records[1].diff.files == 1 and records[1].diff.additions == 1
    assert records[1].runtime_s > 0 and records[1].parent.startswith(records[0].commit)
    assert records[1].exit_code == 0 and records[1].finished


def test_equal_metric_with_fewer_lines_is_kept(repo: Path) -> None:
    def drop_comment(root: Path) -> str:
        path = root / "train.py"
        path.write_text(
            "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
            + "\n"
        )
        return "remove a comment"

    run_loop(repo, ScriptedProposer([drop_comment]), 1)
    rows = results_tsv.read(repo / "results.tsv")
    assert rows[1].status == "keep"


def test_resume_continues_without_a_new_baseline(repo: Path) -> None:
    loop, _ = run_loop(repo, ScriptedProposer([set_lr("0.35")]), 1)
    loop2, events = run_loop(repo, ScriptedProposer([set_lr("0.31")]), 1)
    assert loop2.tag == loop.tag
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.description for r in rows] == ["baseline", "LR -> 0.35", "LR -> 0.31"]
    assert any("resuming" in e.text for e in events if isinstance(e, Progress))


def test_sweep_runs_and_tells_optuna(repo: Path) -> None:
    config = make_config()
    proposer = SweepProposer(config, repo, ["train.py", "evaluate.py"])
    assert set(proposer.constants) == {"LR", "DEPTH"}
    loop = Loop(repo, config, proposer, limit=4)
    loop.run()
    rows = results_tsv.read(repo / "results.tsv")
    assert len(rows) == 5
    assert len(proposer.study.trials) == 5  # the baseline, told on the first call, and 4
    assert all(r.description.split()[0] in ("LR", "DEPTH") for r in rows[1:])


def test_guard_failure_gets_two_reworks_then_discards(repo: Path) -> None:
    proposer = ScriptedProposer([set_lr("0.35"), set_lr("0.34"), set_lr("0.33")])
    run_loop(repo, proposer, 1, run__guard="test -f guard-ok")
    rows = results_tsv.read(repo / "results.tsv")
    assert rows[1].status == "discard"
    assert [c.failure_kind for c in proposer.contexts] == [None, "guard", "guard"]
    assert "LR = 0.5" in (repo / "train.py").read_text()


def test_trivial_crash_goes_back_to_the_agent(repo: Path) -> None:
    def typo(root: Path) -> str:
        (root / "train.py").write_text((root / "train.py").read_text() + "\nprint(undefined)\n")
        return "typo"

    proposer = ScriptedProposer([typo, set_lr("0.35")])
    loop, _ = run_loop(repo, proposer, 1)
    assert proposer.contexts[1].failure_kind == "crash"
    assert "NameError" in (proposer.contexts[1].failure or "")
    assert git(repo, "rev-parse", f"refs/autoresearch/{loop.tag}/1-crash1")


def test_the_baseline_failing_stops_with_the_log_and_records_nothing(repo: Path) -> None:
    loop = Loop(
        repo, make_config(metric__pattern=r"^nothing:\s*(\S+)"), ScriptedProposer([]), limit=1
    )
    with pytest.raises(LoopStopped, match="baseline run failed"):
        loop.run()
    assert (repo / "results.tsv").read_text() == results_tsv.HEADER


def test_environment_failure_stops_the_loop(tmp_path: Path) -> None:
    train = TRAIN.replace("DEPTH = 4\n", "DEPTH = 4\nif LR < 0.4:\n    open('data/shard0.bin')\n")
    repo = make_repo(tmp_path / "repo", {"train.py": train, "evaluate.py": EVAL})
    loop = Loop(repo, make_config(), ScriptedProposer([set_lr("0.35")]), limit=3)
    with pytest.raises(LoopStopped, match="shard0.bin"):
        loop.run()
    assert len(results_tsv.read(repo / "results.tsv")) == 1
    assert git(repo, "status", "--porcelain") == ""


def test_timeout_is_a_crash_and_kills_the_run(repo: Path) -> None:
    def hang(root: Path) -> str:
        (root / "train.py").write_text(
            (root / "train.py")
            .read_text()
            .replace('print("training...")', "import time; time.sleep(60)")
        )
        return "sleep"

    loop = Loop(repo, make_config(run__timeout=1.5), ScriptedProposer([hang]), limit=1)
    loop.run()
    rows = results_tsv.read(repo / "results.tsv")
    assert rows[1].status == "crash"
    assert loop.ledger.experiments(loop.tag)[1].crash_kind == "timeout"


def test_no_change_is_not_an_experiment_and_the_next_call_is_told(repo: Path) -> None:
    proposer = ScriptedProposer([lambda root: None, set_lr("0.35")])
    run_loop(repo, proposer, 2)
    assert len(results_tsv.read(repo / "results.tsv")) == 2
    assert proposer.contexts[1].failure_kind == "no_change"


def test_out_of_scope_and_off_limits_edits_are_undone(repo: Path) -> None:
    def stray(root: Path) -> str:
        (root / "evaluate.py").write_text("THRESHOLD = 0\n")
        (root / "notes.txt").write_text("agent scribbles")
        set_lr("0.35")(root)
        return "stray edits"

    loop, _ = run_loop(repo, ScriptedProposer([stray]), 1)
    record = loop.ledger.experiments(loop.tag)[1]
    assert record.status == "crash" and record.crash_kind == "invalid"
    assert any("off-limits" in e for e in record.events)
    assert any("notes.txt" in e for e in record.events)
    assert (repo / "evaluate.py").read_text().startswith("# the evaluation harness")
    assert not (repo / "notes.txt").exists()


def test_users_untracked_files_are_left_alone(repo: Path) -> None:
    (repo / "data.bin").write_bytes(b"\x00" * 100)
    run_loop(repo, ScriptedProposer([set_lr("0.35")]), 1)
    assert (repo / "data.bin").exists()


def test_pause_and_stop_from_another_thread(repo: Path) -> None:
    import threading

    loop = Loop(repo, make_config(), ScriptedProposer([set_lr("0.4")] * 50))
    states: list[str] = []

    def emit(event) -> None:
        if isinstance(event, ExperimentRecorded) and event.experiment.number == 1:
            loop.pause()
        if isinstance(event, LoopState):
            states.append(event.phase)
            if event.phase == "paused":
                loop.stop()

    loop.emit = emit
    thread = threading.Thread(target=loop.run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert "paused" in states and states[-1] == "stopped"


def test_the_seed_command_with_shell_extraction(repo: Path) -> None:
    config = {"metric__pattern": None, "metric__extract": 'grep "^score:" run.log'}
    run_loop(repo, ScriptedProposer([set_lr("0.35")]), 1, **config)
    assert results_tsv.read(repo / "results.tsv")[1].metric == pytest.approx(0.09)


def test_a_huge_file_made_in_scope_is_not_committed(tmp_path: Path) -> None:
    files = {"train.py": TRAIN, "evaluate.py": EVAL, "data/README": "inputs\n"}
    repo = make_repo(tmp_path / "repo", files)

    def huge(root: Path) -> str:
        with open(root / "data" / "cache.bin", "wb") as f:
            f.truncate(60 * 1024 * 1024)  # sparse: cheap to make, too big to commit
        return set_lr("0.35")(root)

    loop, _ = run_loop(repo, ScriptedProposer([huge]), 1, scope__files=["train.py", "data/"])
    record = loop.ledger.experiments(loop.tag)[1]
    assert any("cache.bin is 60 MB" in e for e in record.events)
    assert "data/cache.bin" not in git(repo, "show", "--name-only", "--format=", record.commit)
    assert not (repo / "data" / "cache.bin").exists()


def test_a_tracked_results_file_is_untracked_at_setup_so_reverts_keep_rows(tmp_path: Path) -> None:
    old_row = "abc1234\t1.000000\t0.0\tkeep\tan earlier run, committed by hand\n"
    files = {"train.py": TRAIN, "evaluate.py": EVAL, "results.tsv": results_tsv.HEADER + old_row}
    repo = make_repo(tmp_path / "repo", files)
    run_loop(repo, ScriptedProposer([set_lr("0.9"), set_lr("0.8")]), 2)
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.status for r in rows] == ["keep", "discard", "discard"]
    assert "results.tsv" not in git(repo, "ls-files")


def test_a_config_edited_between_runs_is_committed_on_resume(repo: Path) -> None:
    from autoresearch import config as cfg

    run_loop(repo, ScriptedProposer([set_lr("0.35")]), 1)
    config = make_config(run__timeout=61)
    cfg.save(repo, config)
    loop2 = Loop(repo, config, ScriptedProposer([set_lr("0.9")]), limit=1)
    loop2.run()  # the discard reverts to the last keep: the edited config must survive it
    assert "timeout = 61" in (repo / "autoresearch.toml").read_text()
    assert git(repo, "status", "--porcelain") == ""


def test_resuming_an_older_session_sets_aside_the_other_sessions_table(repo: Path) -> None:
    first, _ = run_loop(repo, ScriptedProposer([set_lr("0.35")]), 1, **{})
    git(repo, "switch", "-q", "main")
    second = Loop(repo, make_config(), ScriptedProposer([set_lr("0.4")]), tag="second", limit=1)
    second.run()
    git(repo, "switch", "-q", first.branch)
    again, _ = run_loop(repo, ScriptedProposer([set_lr("0.31")]), 1)
    assert again.tag == first.tag
    rows = results_tsv.read(repo / "results.tsv")
    records = again.ledger.experiments(first.tag)
    assert [r.commit[:7] for r in records] == [r.commit for r in rows]
    assert len(rows) == 3 and rows[0].commit == first.history[0].commit[:7]
