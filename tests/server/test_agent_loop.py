"""The coding-agent edit step through the real loop: fake agent CLIs, real git, real processes.

Each misbehaviour of an agent (stray edits, commits, branch switches, stashes, hangs, floods,
failures, broken code, doing nothing) must leave the loop going and lose nothing: results.tsv
and experiments.jsonl agree, the branch sits at the last keep with a clean tree, every attempt
stays reviewable under its ref, and no process is left behind.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
import tracemalloc
from pathlib import Path

import msgspec
import psutil
import pytest
from branch_head import head_past_notes
from fake_agents import FAKE_AGENT, TRAIN_PY, agent_command, git, make_config, make_repo

from autoresearch import results_tsv
from autoresearch.agents.command import CommandProposer
from autoresearch.config import Config
from autoresearch.experiment import Experiment
from autoresearch.ledger import Ledger
from autoresearch.loop import Loop, LoopStopped, Progress
from autoresearch.protocol import ExperimentRecorded, LoopState


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


class Session:
    """One finished (or stopped) loop run and what it emitted."""

    def __init__(self, root: Path, loop: Loop, events: list, prompts: Path) -> None:
        self.root, self.loop, self.events, self.prompts_dir = root, loop, events, prompts

    @property
    def records(self) -> list[Experiment]:
        ledger = Ledger(self.root)
        ledger.load()
        return ledger.experiments(self.loop.tag)

    @property
    def progress(self) -> str:
        return "\n".join(e.text for e in self.events if isinstance(e, Progress))

    def prompt(self, call: int) -> str:
        """The prompt the agent read on its `call`-th call (1-based)."""
        return (self.prompts_dir / f"{call}.md").read_text()

    @property
    def calls(self) -> int:
        return len(list(self.prompts_dir.glob("*.md")))


def run_agent(
    root: Path,
    modes: list[str],
    limit: int,
    *,
    then: str = "good",
    extra: tuple[str, ...] = (),
    command: str | None = None,
    agent_timeout: float = 30.0,
    kill_grace_s: float = 2.0,
    emit=None,
    **config_changes: object,
) -> Session:
    """Run a bounded loop whose agent acts out `modes` one call each, then `then`."""
    prompts = root.parent / "prompts"
    modes_file = root.parent / "modes"
    modes_file.write_text("".join(f"{m}\n" for m in modes))
    template = command or agent_command(
        then, "--modes-file", str(modes_file), "--keep-prompts", str(prompts), *extra
    )
    config = with_changes(make_config(template, timeout=agent_timeout), **config_changes)
    proposer = CommandProposer(config, root, kill_grace_s=kill_grace_s)
    events: list = []

    def collect(event) -> None:
        events.append(event)
        if emit:
            emit(loop, event)

    loop = Loop(root, config, proposer, emit=collect, limit=limit)
    loop.agent_retry_wait_s = 0.0
    session = Session(root, loop, events, prompts)
    try:
        loop.run()
    finally:
        assert_no_leftover_processes(root)
    return session


def with_changes(config: Config, **changes: object) -> Config:
    """`run__guard="..."` style overrides of a Config."""
    for key, value in changes.items():
        section, _, field = key.partition("__")
        part = msgspec.structs.replace(getattr(config, section), **{field: value})
        config = msgspec.structs.replace(config, **{section: part})
    return config


def assert_no_leftover_processes(root: Path) -> None:
    deadline = time.monotonic() + 3.0
    while True:
        left = []
        for p in psutil.process_iter(["pid", "cwd", "status"]):
            if p.info["pid"] == os.getpid() or p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cwd = p.info["cwd"] or ""
            if cwd == str(root) or cwd.startswith(f"{root}/"):
                left.append(p.info["pid"])
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"processes left running in the repository: {left}"


def assert_nothing_lost(s: Session) -> list[Experiment]:
    """results.tsv and the jsonl agree row for row, the branch sits at the last keep with a
    clean tree and no git operation half done, and every experiment's commit has its ref."""
    root, tag = s.root, s.loop.tag
    rows = results_tsv.read(root / "results.tsv")
    records = s.records
    assert [r.number for r in rows] == list(range(len(rows)))
    assert [(r.commit[:7], r.status, r.metric) for r in rows] == [
        (e.commit[:7], e.status, e.metric) for e in records
    ]
    assert git(root, "branch", "--show-current").strip() == f"autoresearch/{tag}"
    keeps = [e for e in records if e.status == "keep"]
    assert head_past_notes(root) == keeps[-1].commit
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (root / ".git" / "MERGE_HEAD").exists()
    assert git(root, "stash", "list") == ""
    for e in records:
        assert git(root, "rev-parse", f"refs/autoresearch/{tag}/{e.number}").strip() == e.commit
    recorded = [e.experiment.number for e in s.events if isinstance(e, ExperimentRecorded)]
    assert recorded and recorded == [e.number for e in records][-len(recorded) :]
    return records


def train(root: Path) -> str:
    return (root / "train.py").read_text()


# ---- misbehaving agents: put back, recorded, and the loop goes on ------------------------------

# mode: (what the record's events and the progress output say, the experiment's status)
PUT_BACK = {
    "out_of_scope": ("README.md is outside the scope: reverted", "keep"),
    "committer": ("the edit committed or moved HEAD", "keep"),
    "brancher": ("the edit switched to fake-agent-branch: back on autoresearch/", "keep"),
    "stasher": ("the edit stashed its changes: restored from the stash", "keep"),
    "results_deleter": ("results.tsv was changed or deleted during the edit: rebuilt", "keep"),
    "merge_state": ("the edit left a merge in progress: aborted", "discard"),
}


@pytest.mark.parametrize("mode", sorted(PUT_BACK))
def test_misbehaving_agent_is_put_back_and_the_loop_goes_on(mode: str, repo: Path) -> None:
    said, status = PUT_BACK[mode]
    s = run_agent(repo, ["good", mode], 3)
    records = assert_nothing_lost(s)
    assert [e.status for e in records] == ["keep", "keep", status, "keep"]
    assert any(said in event for event in records[2].events), records[2].events
    assert f"#2: {said}" in s.progress
    assert [r.description for r in results_tsv.read(repo / "results.tsv")][:2] == [
        "baseline",
        "LEARNING_RATE 0.01 -> 0.009",
    ]
    assert s.calls == 3


def test_out_of_scope_edits_are_reverted_and_the_next_call_is_told(repo: Path) -> None:
    s = run_agent(repo, ["out_of_scope"], 2)
    records = assert_nothing_lost(s)
    assert records[1].status == "keep" and records[1].diff.files == 1
    assert (repo / "README.md").read_text() == "# demo\n"
    assert not (repo / "agent_notes.txt").exists()
    assert any("agent_notes.txt is outside the scope" in e for e in records[1].events)
    assert "## Fix this: edits outside the allowed files" in s.prompt(2)
    assert "README.md" in s.prompt(2)


def test_agent_commits_are_not_on_the_branch(repo: Path) -> None:
    s = run_agent(repo, ["committer"], 1)
    assert_nothing_lost(s)
    subjects = git(repo, "log", "--format=%s", "main..HEAD").splitlines()
    assert subjects == [
        "autoresearch: refresh notes",  # the loop ended: autoresearch.md lists #1
        "autoresearch #1: LEARNING_RATE 0.01 -> 0.009",
        f"autoresearch: set up session {s.loop.tag}",
    ]


def test_deleted_results_tsv_is_rebuilt_row_for_row(repo: Path) -> None:
    s = run_agent(repo, ["good", "good"], 2)
    before = (repo / "results.tsv").read_text()
    s2 = run_agent(repo, ["results_deleter"], 1)
    assert_nothing_lost(s2)
    after = (repo / "results.tsv").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 5
    assert s2.loop.tag == s.loop.tag


def test_editing_the_evaluator_invalidates_the_attempt_without_running_it(repo: Path) -> None:
    s = run_agent(repo, ["evaluator"], 2)
    records = assert_nothing_lost(s)
    assert [e.status for e in records] == ["keep", "crash", "keep"]
    assert records[1].crash_kind == "invalid" and "prepare.py" in records[1].reason
    assert any("off-limits file prepare.py was edited: reverted" in e for e in records[1].events)
    assert "#1: off-limits file prepare.py was edited: reverted" in s.progress
    assert not (repo / ".autoresearch" / "runs" / f"{s.loop.tag}-1.log").exists()
    assert "the agent made the evaluation easier" not in (repo / "prepare.py").read_text()
    assert "## Fix this: edits outside the allowed files" in s.prompt(2)


def test_hidden_evaluator_edit_is_caught_by_its_checksum(repo: Path) -> None:
    sneaky = (
        "git update-index --assume-unchanged prepare.py && echo '# easier' >> prepare.py && "
        + agent_command("good")
    )
    s = run_agent(repo, [], 1, command=sneaky)
    records = assert_nothing_lost(s)
    assert records[1].status == "crash" and records[1].crash_kind == "invalid"
    assert "changed behind git's back" in records[1].reason
    assert any("prepare.py changed before the run: restored" in e for e in records[1].events)
    assert "easier" not in (repo / "prepare.py").read_text()
    assert git(repo, "ls-files", "-v", "prepare.py").startswith("H ")  # the flag is cleared


def test_command_that_changes_an_off_limits_file_stops_at_the_baseline(repo: Path) -> None:
    with pytest.raises(LoopStopped, match="changes the off-limits file.*prepare.py"):
        run_agent(repo, [], 1, run__command="python3 train.py && echo '#' >> prepare.py")
    assert len(results_tsv.read(repo / "results.tsv")) == 0
    assert (repo / "prepare.py").read_text().endswith("return loss\n")


# ---- agent outcomes ---------------------------------------------------------------------------


def test_good_agent_edits_are_committed_with_its_description(repo: Path) -> None:
    s = run_agent(repo, [], 2)
    records = assert_nothing_lost(s)
    assert [e.status for e in records] == ["keep", "keep", "keep"]
    assert records[2].description == "LEARNING_RATE 0.009 -> 0.0081"
    assert records[1].agent_s > 0 and records[1].events == []
    assert "LEARNING_RATE = 0.0081" in train(repo)
    assert (repo / ".autoresearch" / "agents" / "2.log").read_text().startswith("$ ")


def test_no_change_is_not_an_experiment_and_the_next_call_is_told(repo: Path) -> None:
    s = run_agent(repo, ["noop"], 2)
    records = assert_nothing_lost(s)
    assert [e.number for e in records] == [0, 1]
    assert "#1: no experiment: the edit step changed nothing" in s.progress
    assert "## Fix this: no change was made" in s.prompt(2)
    assert "## Fix this" not in s.prompt(1)
    assert any("made none: the edit step changed nothing" in e for e in records[1].events)


def test_failing_agent_is_no_experiment_and_its_output_reaches_the_next_call(repo: Path) -> None:
    s = run_agent(repo, ["fail"], 2)
    records = assert_nothing_lost(s)
    assert [e.number for e in records] == [0, 1, 2]  # the failed call is no experiment
    assert (
        "#1: no experiment: agent exited with code 1 (log .autoresearch/agents/1.log)" in s.progress
    )
    assert "401 Unauthorized" in s.prompt(2)
    assert any("agent exited with code 1" in e for e in records[1].events)


def test_agent_failing_three_times_in_a_row_stops_the_loop(repo: Path) -> None:
    with pytest.raises(LoopStopped, match="failed 3 times in a row.*exited with code 1"):
        run_agent(repo, ["fail", "fail", "fail"], 10)
    assert len(results_tsv.read(repo / "results.tsv")) == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_hanging_agent_times_out_and_its_processes_are_killed(repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    s = run_agent(
        repo,
        ["hang", "good"],
        1,  # the timed-out call is no experiment: `--loop 1` still gets one
        extra=("--pid-file", str(pids), "--ignore-term"),
        agent_timeout=3.0,
        kill_grace_s=0.3,
    )
    records = assert_nothing_lost(s)
    assert [e.status for e in records] == ["keep", "keep"]
    assert "#1: no experiment: agent timed out after 3 s" in s.progress
    for pid in map(int, pids.read_text().split()):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "timed out" in s.prompt(2)


def test_agent_that_edits_then_fails_still_gets_its_edit_run(repo: Path) -> None:
    command = agent_command("good") + " ; exit 3"
    s = run_agent(repo, [], 1, command=command)
    records = assert_nothing_lost(s)
    assert records[1].status == "keep"
    assert any("agent exited with code 3: its edit is used" in e for e in records[1].events)


def test_index_lock_left_by_the_agent_is_removed(repo: Path) -> None:
    s = run_agent(repo, [], 1, command="touch .git/index.lock && " + agent_command("good"))
    records = assert_nothing_lost(s)
    assert records[1].status == "keep"
    assert records[1].events == [
        "the agent left .git/index.lock behind (a git command killed midway): removed"
    ]


def test_escaped_agent_process_is_killed_after_the_call(repo: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "escaped"
    s = run_agent(repo, ["escape"], 1, extra=("--pid-file", str(pid_file)))
    assert_nothing_lost(s)
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_chatty_agent_output_is_bounded_on_disk_and_in_memory(repo: Path) -> None:
    tracemalloc.start()
    try:
        s = run_agent(repo, ["chatty"], 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    records = assert_nothing_lost(s)
    assert records[1].status == "keep"
    log = repo / ".autoresearch" / "agents" / "1.log"
    assert log.stat().st_size < 1.2 * 1024 * 1024  # 50 MB printed
    text = log.read_text()
    assert "bytes of output omitted" in text and text.rstrip().endswith("0.01 -> 0.009")
    assert peak < 16 * 1024 * 1024


def test_syntax_error_goes_back_to_the_agent_twice_then_is_a_crash(repo: Path) -> None:
    s = run_agent(repo, ["syntax"] * 3, 1)
    records = assert_nothing_lost(s)
    crash = records[1]
    assert crash.status == "crash" and "SyntaxError" in crash.reason
    assert [e for e in crash.events if e.startswith("crash retry")] == [
        f"crash retry 1: {crash.reason}",
        f"crash retry 2: {crash.reason}",
    ]
    tag = s.loop.tag
    first = git(repo, "show", f"refs/autoresearch/{tag}/1-crash1:train.py")
    assert first.count("def broken(") == 1
    # The broken change stays in the files for the retry: each retry builds on the last.
    assert git(repo, "show", f"refs/autoresearch/{tag}/1:train.py").count("def broken(") == 3
    for call in (2, 3):
        assert "## Fix this: the last run crashed" in s.prompt(call)
        assert "SyntaxError" in s.prompt(call)
    logs = sorted(p.name for p in (repo / ".autoresearch" / "agents").glob("1*.log"))
    assert logs == ["1.1.log", "1.2.log", "1.log"]
    runs = sorted(p.name for p in (repo / ".autoresearch" / "runs").glob(f"{tag}-1*.log"))
    assert runs == [f"{tag}-1.crash1.log", f"{tag}-1.crash2.log", f"{tag}-1.log"]
    assert train(repo) == TRAIN_PY
    assert "#1: SyntaxError" in s.progress and "back to the edit step (2/2)" in s.progress


def test_crash_retry_that_fixes_the_bug_is_kept(repo: Path) -> None:
    s = run_agent(repo, ["syntax", "fixer"], 1)
    records = assert_nothing_lost(s)
    assert records[1].status == "keep"
    assert records[1].events[0].startswith("crash retry 1: SyntaxError")
    assert "broken" not in train(repo)
    assert git(repo, "rev-parse", f"refs/autoresearch/{s.loop.tag}/1-crash1")


def test_crash_retry_that_changes_nothing_is_not_run_again(repo: Path) -> None:
    s = run_agent(repo, ["syntax", "noop"], 1)
    records = assert_nothing_lost(s)
    assert records[1].status == "crash"
    assert "attempt 2 is the same code: not run again" in records[1].events
    runs = repo / ".autoresearch" / "runs"
    assert sorted(p.name for p in runs.glob("*-1*.log")) == [f"{s.loop.tag}-1.log"]
    assert git(repo, "rev-parse", f"refs/autoresearch/{s.loop.tag}/1").strip() == (
        git(repo, "rev-parse", f"refs/autoresearch/{s.loop.tag}/1-crash1").strip()
    )


# ---- the prompt: results, guidance, change of approach -----------------------------------------


def test_prompt_has_recent_results_and_guidance_appended_mid_run(repo: Path) -> None:
    guidance = repo / ".autoresearch" / "guidance.md"

    def steer(loop: Loop, event) -> None:
        running = isinstance(event, LoopState) and event.phase == "running"
        if running and event.current == 1 and not guidance.exists():
            guidance.write_text("Try a smaller batch size next.\n")

    s = run_agent(repo, ["good", "worse"], 3, emit=steer)
    records = assert_nothing_lost(s)
    assert [e.status for e in records] == ["keep", "keep", "discard", "keep"]
    assert "Guidance" not in s.prompt(1)
    assert "Try a smaller batch size next." in s.prompt(2)
    assert "#1 0.09" in s.prompt(2) and "LEARNING_RATE 0.01 -> 0.009" in s.prompt(2)
    assert "Recent discarded attempts" in s.prompt(3) and "#2 0.099" in s.prompt(3)
    assert "Baseline (#0): val_loss = 0.1." in s.prompt(3)


def test_three_reverts_in_a_row_tell_the_agent_to_change_approach(repo: Path) -> None:
    s = run_agent(repo, ["worse", "worse", "worse"], 4)
    records = assert_nothing_lost(s)
    assert [e.status for e in records] == ["keep", "discard", "discard", "discard", "keep"]
    assert "## Change approach" not in s.prompt(3)
    assert "## Change approach" in s.prompt(4)
    assert "The last 3 experiments were all reverted" in s.prompt(4)
    assert "#4: 3 reverts in a row: the agent is told to change approach" in s.progress


# ---- a missing agent --------------------------------------------------------------------------


def test_missing_agent_binary_stops_the_loop_without_burning_iterations(
    repo: Path, tmp_path: Path
) -> None:
    events: list = []
    config = make_config(f"{tmp_path / 'no-such-agent'} -p {{prompt_file}}")
    loop = Loop(repo, config, CommandProposer(config, repo), emit=events.append, limit=5)
    with pytest.raises(LoopStopped, match="no-such-agent.*(not found|could not start)"):
        loop.run()
    assert len(results_tsv.read(repo / "results.tsv")) == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert [e.phase for e in events if isinstance(e, LoopState)][-1] == "failed"


def test_agent_binary_removed_mid_run_stops_after_the_last_experiment(
    repo: Path, tmp_path: Path
) -> None:
    binary = tmp_path / "bin" / "agent"
    binary.parent.mkdir()
    shutil.copy(FAKE_AGENT, binary)

    def remove(loop: Loop, event) -> None:
        if isinstance(event, ExperimentRecorded) and event.experiment.number == 1:
            binary.unlink()

    command = f"{shlex.quote(str(binary))} -p {{prompt_file}}"
    with pytest.raises(LoopStopped, match="agent"):
        run_agent(repo, [], 5, command=command, emit=remove)
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.status for r in rows] == ["keep", "keep"]
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# ---- guard rework ------------------------------------------------------------------------------


def test_guard_failure_makes_the_agent_reimplement_the_idea(repo: Path) -> None:
    s = run_agent(repo, [], 1, then="reworker", run__guard="grep -q GUARD_OK train.py")
    records = assert_nothing_lost(s)
    assert records[1].status == "keep" and records[1].guard == "passed"
    assert records[1].events == ["guard failed, rework 1"]
    assert "## Fix this: the guard failed" in s.prompt(2)
    assert "GUARD_OK = 1" in train(repo)
    assert "GUARD_OK" not in git(repo, "show", f"refs/autoresearch/{s.loop.tag}/1-rework1:train.py")
    runs = repo / ".autoresearch" / "runs"
    assert (runs / f"{s.loop.tag}-1.rework1.guard.log").exists()
    assert (runs / f"{s.loop.tag}-1.guard.log").exists()


def test_guard_failing_after_two_reworks_is_a_discard(repo: Path) -> None:
    s = run_agent(repo, ["good", "reworker"], 1, then="bigger", run__guard="false")
    records = assert_nothing_lost(s)
    assert records[1].status == "discard" and records[1].guard == "failed"
    assert records[1].reason == "the guard failed after 2 reworks"
    for label in ("1-rework1", "1-rework2"):
        assert git(repo, "rev-parse", f"refs/autoresearch/{s.loop.tag}/{label}")
    assert train(repo) == TRAIN_PY


def test_rework_identical_to_the_failed_attempt_is_not_run_again(repo: Path) -> None:
    s = run_agent(repo, [], 1, run__guard="false")
    records = assert_nothing_lost(s)
    assert records[1].status == "discard" and records[1].reason == "the guard failed after 1 rework"
    assert records[1].events == [
        "guard failed, rework 1",
        "attempt 2 is the same code: not run again",
    ]
    assert s.calls == 2


def test_files_the_guard_names_are_off_limits(repo: Path) -> None:
    (repo / "check.sh").write_text("grep -q LEARNING_RATE train.py\n")
    git(repo, "add", "check.sh")
    git(repo, "commit", "-qm", "guard script")
    s = run_agent(
        repo,
        [],
        1,
        extra=("--other", "check.sh"),
        then="evaluator",
        run__guard="sh check.sh",
        scope__off_limits=[],
    )
    records = assert_nothing_lost(s)
    assert records[1].status == "crash" and "check.sh" in records[1].reason
    assert "- `check.sh`" in s.prompt(1)
    assert (repo / "check.sh").read_text() == "grep -q LEARNING_RATE train.py\n"
