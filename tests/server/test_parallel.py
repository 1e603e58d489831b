"""Parallel experiments on real worktrees and real processes: the scheduler, the re-run of a
win made on an older best, conflicts, and the slots given to the workers."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from conftest import EVAL, TRAIN, git, make_config, make_repo, set_lr
from test_detached import _no_detached_leftovers, cli, detach, gone, until  # noqa: F401
from test_faults import (  # noqa: F401
    Daemon,
    _no_stray_processes,
    assert_consistent,
    fault_repo,
    records,
    resume,
)

from autoresearch import results_tsv
from autoresearch.agents.base import EditContext, EditOutcome
from autoresearch.bootstrap import RERUN_EVENT
from autoresearch.config import ConfigError, Parallel, validate
from autoresearch.experiment import Experiment
from autoresearch.gpu_fake import FAKE_ENV
from autoresearch.loop import Progress
from autoresearch.parallel import ParallelLoop
from autoresearch.protocol import GpuInfo, GpuStatus, LoopState
from autoresearch.slots import Slot, SlotError, plan

# LR and DEPTH far enough apart that git merges a change of each without a conflict.
SPREAD = TRAIN.replace("DEPTH = 4\n", "\n\n\n\nDEPTH = 4\n")

# Each run says where it ran and with which GPUs, then scores as train.py does.
WHERE = (
    "import os; print('worker', os.environ.get('AUTORESEARCH_WORKER'),"
    " 'gpus', os.environ.get('CUDA_VISIBLE_DEVICES'), 'cwd', os.getcwd())"
)


def set_depth(value: int):
    def edit(root: Path) -> str:
        path = root / "train.py"
        path.write_text(path.read_text().replace("DEPTH = 4", f"DEPTH = {value}"))
        return f"DEPTH -> {value}"

    return edit


class Together:
    """Edits by experiment number; the first calls of `parties` experiments from `first` on wait
    for each other, so those are surely in flight at once (their edits start from the same
    best)."""

    name = "scripted"

    def __init__(self, edits: dict[int, object], parties: int, first: int = 1) -> None:
        self.edits = edits
        self.together = range(first, first + parties)
        self.barrier = threading.Barrier(parties, timeout=60)
        self.contexts: list[EditContext] = []
        self.observed: list[Experiment] = []
        self.lock = threading.Lock()

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        with self.lock:
            self.contexts.append(ctx)
        if ctx.number in self.together and not ctx.attempt:
            self.barrier.wait()
        edit = self.edits.get(ctx.number)
        if not edit:
            return EditOutcome()
        description = edit(ctx.root)  # type: ignore[operator]
        # The constants as the sweep records them: what the edited file holds.
        text = (ctx.root / "train.py").read_text()
        params = {k: float(v) for k, v in re.findall(r"(?m)^(LR|DEPTH) = (\S+)$", text)}
        return EditOutcome(description=description, params=params)

    def observe(self, experiment: Experiment) -> None:
        self.observed.append(experiment)


def run(
    root: Path, proposer: Together, slots: list[Slot], limit: int, **overrides: object
) -> tuple[ParallelLoop, list]:
    events: list = []
    loop = ParallelLoop(
        root, make_config(**overrides), proposer, slots=slots, emit=events.append, limit=limit
    )
    loop.run()
    return loop, events


@pytest.fixture
def spread(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": SPREAD, "evaluate.py": EVAL})


def test_workers_run_at_once_each_in_its_worktree_with_its_own_gpus(spread: Path) -> None:
    proposer = Together({1: set_lr("0.35"), 2: set_lr("0.9")}, 2)
    command = f'{sys.executable} -c "{WHERE}" && {sys.executable} train.py'
    loop, events = run(spread, proposer, [Slot(1, (0,)), Slot(2, (1,))], 2, run__command=command)
    records = loop.ledger.experiments(loop.tag)
    assert [r.number for r in records] == [0, 1, 2]
    by_worker = {r.worker: r for r in records[1:]}
    assert set(by_worker) == {1, 2}
    for w, rec in by_worker.items():
        log = (spread / ".autoresearch" / "runs" / f"{loop.tag}-{rec.number}.log").read_text()
        worktree = spread / ".autoresearch" / "worktrees" / str(w)
        assert f"worker {w} gpus {w - 1} cwd {worktree}" in log, log
        assert rec.gpus == [w - 1]
    # Both were in flight at once, each shown with its worker and GPU.
    states = [e for e in events if isinstance(e, LoopState)]
    assert any(len([w for w in s.workers if w.number is not None]) == 2 for s in states)
    assert {(w.worker, tuple(w.gpus)) for w in states[-1].workers} == {(1, (0,)), (2, (1,))}
    # The rows are in number order; the branch holds the keep, the main tree is clean.
    rows = results_tsv.read(spread / "results.tsv")
    assert [(r.status, r.description) for r in rows] == [
        ("keep", "baseline"),
        ("keep", "LR -> 0.35"),
        ("discard", "LR -> 0.9"),
    ]
    assert "LR = 0.35" in (spread / "train.py").read_text()
    assert git(spread, "status", "--porcelain") == ""
    assert git(spread, "rev-parse", f"refs/autoresearch/{loop.tag}/2") == records[2].commit


def test_a_win_on_an_older_best_runs_again_on_the_new_best_before_it_is_kept(
    spread: Path,
) -> None:
    proposer = Together({1: set_lr("0.35"), 2: set_depth(3)}, 2)
    loop, events = run(spread, proposer, [Slot(1), Slot(2)], 2)
    one, two = loop.ledger.experiments(loop.tag)[1:]
    assert one.status == "keep" and one.metric == pytest.approx(0.09)
    # #2 won against the baseline (0.23 < 0.24); applied onto #1 it was run again: both changes.
    assert two.status == "keep" and two.metric == pytest.approx(0.08)
    assert two.parent == one.commit
    assert two.params == {"LR": 0.35, "DEPTH": 3.0}  # what the commit kept holds, not 0.5
    assert any("applied onto #1" in e and "run again" in e for e in two.events), two.events
    text = git(spread, "show", f"{two.commit}:train.py")
    assert "LR = 0.35" in text and "DEPTH = 3" in text
    # The commit first measured stays reviewable beside the one kept.
    first = git(spread, "rev-parse", f"refs/autoresearch/{loop.tag}/2-measured")
    assert "LR = 0.5" in git(spread, "show", f"{first}:train.py")
    assert git(spread, "rev-parse", f"refs/autoresearch/{loop.tag}/2") == two.commit
    logs = sorted(p.name for p in (spread / ".autoresearch" / "runs").glob(f"{loop.tag}-2*.log"))
    assert logs == [f"{loop.tag}-2.log"]  # the second run is the record's own log
    said = [e.text for e in events if isinstance(e, Progress)]
    assert any("#2: won on an older best: run again on #1" in t for t in said), said
    assert "DEPTH = 3" in (spread / "train.py").read_text()


def test_a_win_that_conflicts_with_the_new_best_is_a_discard(repo: Path) -> None:
    proposer = Together({1: set_lr("0.35"), 2: set_depth(3)}, 2)  # adjacent lines: a conflict
    loop, _ = run(repo, proposer, [Slot(1), Slot(2)], 2)
    two = loop.ledger.experiments(loop.tag)[2]
    assert two.status == "discard"
    assert "conflicts with #1" in two.reason and "train.py" in two.reason
    assert "DEPTH = 4" in (repo / "train.py").read_text()
    assert git(repo, "status", "--porcelain") == ""


def test_the_same_code_on_the_new_best_is_judged_without_running_again(spread: Path) -> None:
    proposer = Together({1: set_lr("0.35"), 2: set_lr("0.35")}, 2)
    loop, events = run(spread, proposer, [Slot(1), Slot(2)], 2)
    two = loop.ledger.experiments(loop.tag)[2]
    # It won against the baseline, but it is no better than #1 with the very same code.
    assert two.status == "discard" and "no better than #1" in two.reason
    assert not any("run again" in e.text for e in events if isinstance(e, Progress))


def test_a_win_across_the_loops_own_notes_commit_is_kept_without_running_again(
    spread: Path,
) -> None:
    # #1-#5 are worse (discards); deciding #5 refreshes autoresearch.md (a commit on the
    # branch). #6 started before it, from the commit below: only the notes moved since.
    edits = {n: set_lr(lr) for n, lr in enumerate(["0.9", "0.8", "0.7", "0.6", "0.95"], start=1)}
    edits[6] = set_lr("0.35")
    loop, events = run(spread, Together(edits, 2, first=5), [Slot(1), Slot(2)], 6)
    six = loop.ledger.experiments(loop.tag)[6]
    assert six.status == "keep" and six.metric == pytest.approx(0.09)
    assert any("only the loop's notes moved" in e for e in six.events), six.events
    assert not any("run again" in e.text for e in events if isinstance(e, Progress))
    assert git(spread, "show", f"{six.commit}^:autoresearch.md").count("LR") >= 5  # on the notes
    assert "LR = 0.35" in (spread / "train.py").read_text()


def test_number_order_holds_whatever_order_the_runs_end_in(spread: Path) -> None:
    # #1 runs long, #2 and #3 end first: the records still read 0, 1, 2, 3.
    slow = "import os, time; os.environ.get('AUTORESEARCH_RUN') == '1' and time.sleep(1.5)"
    command = f'{sys.executable} -c "{slow}" && {sys.executable} train.py'
    edits = {1: set_lr("0.4"), 2: set_lr("0.45"), 3: set_depth(2)}
    proposer = Together(edits, 3)
    _, events = run(spread, proposer, [Slot(1), Slot(2), Slot(3)], 3, run__command=command)
    recorded = [e.experiment.number for e in events if hasattr(e, "experiment")]
    assert recorded == [0, 1, 2, 3]
    assert [r.number for r in results_tsv.read(spread / "results.tsv")] == [0, 1, 2, 3]


class PersonMeanwhile(Together):
    """#1's edit comes with a person's edit of train.py in the repository itself; #2's edit
    step lasts until #1 is decided (when the loop sets the person's edit aside in a stash)."""

    def __init__(self, edits: dict[int, object], main: Path) -> None:
        super().__init__(edits, 2)
        self.main = main
        self.decided = threading.Event()

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        outcome = super().propose(ctx, cancel)
        if ctx.number == 1:
            path = self.main / "train.py"
            path.write_text(path.read_text() + "# my note\n")
        if ctx.number == 2:
            assert self.decided.wait(60), "#1 was never decided"
        return outcome

    def observe(self, experiment: Experiment) -> None:
        super().observe(experiment)
        if experiment.number == 1:
            self.decided.set()


def test_a_persons_edit_set_aside_meanwhile_stays_in_the_stash(spread: Path) -> None:
    proposer = PersonMeanwhile({1: set_lr("0.35"), 2: set_depth(3)}, spread)
    loop, _ = run(spread, proposer, [Slot(1), Slot(2)], 2)
    one, two = loop.ledger.experiments(loop.tag)[1:]
    assert one.status == "keep" and any("stashed" in e for e in one.events), one.events
    # The stash entry is the person's, still there: no worker took it for its agent's.
    stashes = git(spread, "stash", "list")
    assert "autoresearch: your edit of train.py during #1" in stashes, stashes
    assert "# my note" in git(spread, "stash", "show", "-p", "stash@{0}")
    for sha in (two.commit, git(spread, "rev-parse", "HEAD")):
        assert "# my note" not in git(spread, "show", f"{sha}:train.py")


def test_each_worker_reads_the_guidance_written_in_the_repository(spread: Path) -> None:
    (spread / ".autoresearch").mkdir()
    (spread / ".autoresearch" / "guidance.md").write_text("try the learning rate first\n")
    proposer = Together({1: set_lr("0.4"), 2: set_lr("0.45")}, 2)
    run(spread, proposer, [Slot(1), Slot(2)], 2)
    assert [c.guidance for c in proposer.contexts] == ["try the learning rate first"] * 2
    assert all(c.root != spread and c.root.parent.name == "worktrees" for c in proposer.contexts)


def test_each_edit_is_told_what_the_other_workers_are_trying(spread: Path) -> None:
    slow = "import os, time; os.environ.get('AUTORESEARCH_RUN') == '1' and time.sleep(2)"
    command = f'{sys.executable} -c "{slow}" && {sys.executable} train.py'
    proposer = Together({1: set_lr("0.4"), 2: set_lr("0.45"), 3: set_depth(2)}, 2)
    loop, _ = run(spread, proposer, [Slot(1, (0,)), Slot(2, (1,))], 3, run__command=command)
    third = next(c for c in proposer.contexts if c.number == 3)
    one = loop.ledger.experiments(loop.tag)[1]
    assert third.others == [f"#1 (worker {one.worker}, GPU {one.gpus[0]}): LR -> 0.4"]


class Reworker(Together):
    """#1 lowers LR; told that the guard failed, it also marks the file as the guard wants."""

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        outcome = super().propose(ctx, cancel)
        if ctx.failure_kind == "guard":
            path = ctx.root / "train.py"
            path.write_text(path.read_text() + "GUARD_OK = 1\n")
        return outcome


def test_a_failed_guard_is_reworked_in_the_worker_and_a_crash_retried(spread: Path) -> None:
    guard = (
        f"{sys.executable} -c \"import sys; sys.exit('GUARD_OK' not in open('train.py').read())\""
    )
    edits = {1: set_lr("0.35"), 2: set_lr("-1")}  # #2 crashes (a negative LR): not trivial
    proposer = Reworker(edits, 2)
    loop, _ = run(spread, proposer, [Slot(1), Slot(2)], 2, run__guard=guard)
    one, two = loop.ledger.experiments(loop.tag)[1:]
    assert one.status == "keep" and one.guard == "passed"
    assert "guard failed, rework 1" in one.events
    assert "GUARD_OK = 1" in git(spread, "show", f"{one.commit}:train.py")
    first = git(spread, "rev-parse", f"refs/autoresearch/{loop.tag}/1-rework1")
    assert "GUARD_OK" not in git(spread, "show", f"{first}:train.py")
    runs = spread / ".autoresearch" / "runs"
    assert (runs / f"{loop.tag}-1.rework1.guard.log").exists()  # the first guard's log kept
    assert two.status == "crash"
    assert [c.attempt for c in proposer.contexts if c.number == 1] == [0, 1]


def started_two(spread: Path, seconds: float) -> tuple[ParallelLoop, threading.Thread]:
    """A loop whose experiments #1 and #2 are both running (each for `seconds`)."""
    sleepy = f"import os, time; os.environ.get('AUTORESEARCH_RUN') != '0' and time.sleep({seconds})"
    command = f'{sys.executable} -c "{sleepy}" && {sys.executable} train.py'
    proposer = Together({1: set_lr("0.4"), 2: set_lr("0.45")}, 2)
    config = make_config(run__command=command)
    loop = ParallelLoop(spread, config, proposer, slots=[Slot(1), Slot(2)])
    thread = threading.Thread(target=loop.run)
    thread.start()
    wait = threading.Event()
    for _ in range(1200):
        if len([w for w in loop.state.workers if w.phase == "running"]) == 2:
            return loop, thread
        wait.wait(0.05)
    raise AssertionError(f"the two runs did not start: {loop.state}")


def test_stop_lets_every_worker_finish_its_experiment(spread: Path) -> None:
    loop, thread = started_two(spread, 1.5)
    loop.stop()
    thread.join(60)
    assert not thread.is_alive()
    records = loop.ledger.experiments(loop.tag)
    assert [r.number for r in records] == [0, 1, 2]  # both finished, no third started
    assert all(r.metric is not None for r in records)
    assert loop.state.phase == "stopped"


def test_stop_now_ends_every_worker_at_once(spread: Path) -> None:
    loop, thread = started_two(spread, 60)
    loop.stop(now=True)
    thread.join(30)
    assert not thread.is_alive(), "stop now did not end every worker"
    records = loop.ledger.experiments(loop.tag)
    assert [r.number for r in records] == [0, 1, 2]
    assert all(r.reason == "stopped by the user" for r in records[1:])
    assert loop.state.phase == "stopped"
    assert all(w.number is None for w in loop.state.workers)


def test_pause_starts_no_new_experiment_until_resumed(spread: Path) -> None:
    loop, thread = started_two(spread, 1.0)
    loop.pause()
    wait = threading.Event()
    for _ in range(600):
        if loop.state.phase == "paused":
            break
        wait.wait(0.05)
    else:
        raise AssertionError(f"never paused: {loop.state}")
    assert len(loop.ledger.experiments(loop.tag)) == 3  # the two in flight were finished
    assert all(w.number is None for w in loop.state.workers)
    loop.stop()
    loop.resume()
    thread.join(30)
    assert len(loop.ledger.experiments(loop.tag)) == 3


# ---- the slots -------------------------------------------------------------------------------


def gpus(*indices: int) -> GpuStatus:
    return GpuStatus(
        available=True,
        message="",
        gpus=[GpuInfo(i, "Fake", 0.0, 0.0, 80_000.0) for i in indices],
    )


def test_auto_is_one_worker_per_gpu_within_cuda_visible_devices() -> None:
    four = gpus(0, 1, 2, 3)
    assert plan(Parallel(workers="auto"), four, None) == [Slot(w, (w - 1,)) for w in (1, 2, 3, 4)]
    assert plan(Parallel(workers="auto"), four, "3,1") == [Slot(1, (3,)), Slot(2, (1,))]
    assert plan(Parallel(workers="auto", gpus_per_worker=2), four, None) == [
        Slot(1, (0, 1)),
        Slot(2, (2, 3)),
    ]
    assert plan(Parallel(workers=2), four, None) == [Slot(1, (0,)), Slot(2, (1,))]
    assert Slot(2, (2, 3)).env() == {"AUTORESEARCH_WORKER": "2", "CUDA_VISIBLE_DEVICES": "2,3"}


def test_without_a_gpu_auto_is_one_worker_and_a_number_is_cpu_slots() -> None:
    none = GpuStatus(available=False, message="no NVIDIA driver")
    assert plan(Parallel(workers="auto"), none, None) == [Slot(1)]
    assert plan(Parallel(workers=3), none, None) == [Slot(1), Slot(2), Slot(3)]
    assert plan(Parallel(workers="auto"), gpus(0, 1), "") == [Slot(1)]  # no GPU visible
    assert "CUDA_VISIBLE_DEVICES" not in Slot(1).env()


def test_more_workers_than_gpus_is_refused_with_the_fix() -> None:
    with pytest.raises(SlotError, match=r'workers is 8.*usable GPUs are 0, 1, 2, 3.*"auto"'):
        plan(Parallel(workers=8), gpus(0, 1, 2, 3), None)
    with pytest.raises(SlotError, match="gpus_per_worker is 4.*Lower gpus_per_worker to 2"):
        plan(Parallel(gpus_per_worker=4), gpus(0, 1), None)
    with pytest.raises(SlotError, match="by UUID.*indices"):
        plan(Parallel(workers="auto"), gpus(0), "GPU-3f2a")


def test_config_refuses_parallel_workers_for_one_at_a_time_agents() -> None:
    with pytest.raises(ConfigError, match="manual.*edits one experiment at a time"):
        validate(make_config(agent={"kind": "manual"}, parallel={"workers": 2}))
    with pytest.raises(ConfigError, match="parallel.workers is 0"):
        validate(make_config(parallel={"workers": 0}))
    validate(make_config(parallel={"workers": "auto"}))


# ---- faults: real `autoresearch run` processes --------------------------------------------------


def parallel_repo(tmp: Path) -> Path:
    root = fault_repo(tmp)
    with open(root / "autoresearch.toml", "a") as f:
        f.write("\n[parallel]\nworkers = 2\n")
    git(root, "commit", "-qam", "two workers")
    return root


def in_flight(root: Path) -> list[dict]:
    folder = root / ".autoresearch" / "inflight"
    return [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.exists() else []


def test_kill_9_with_two_experiments_running_then_resume_runs_them_again(
    tmp_path: Path,
) -> None:
    root = parallel_repo(tmp_path)
    daemon = Daemon(root, "--loop", "4", plan={"1": {"mode": "slow"}, "2": {"mode": "slow"}})

    def both_running() -> bool:
        committed = [e for e in in_flight(root) if e["step"] == "committed"]
        runs = root / ".autoresearch" / "runs"
        logs = [runs / f"{e['tag']}-{e['number']}.log" for e in committed]
        return len(committed) == 2 and all(p.exists() and "training" in p.read_text() for p in logs)

    daemon.until(both_running, timeout=60)
    commits = sorted(e["commit"] for e in in_flight(root))
    daemon.kill9()
    assert len(daemon.leftovers()) >= 2  # both runs outlived the loop
    again, recs = resume(root, loops=2, env={"FAULT_FAST_RUNS": "1"})
    assert not daemon.leftovers() and not again.leftovers(), "a run was left behind"
    # No row lost or doubled: the two interrupted runs ran again, two new ones after them.
    assert len(recs) == 5
    reruns = [r for r in recs if any(e.startswith(RERUN_EVENT) for e in r.events)]
    assert sorted(r.commit for r in reruns) == commits, (reruns, commits)
    assert {r.number for r in reruns} == {1, 2}
    assert in_flight(root) == []
    assert "killed the processes left running by #1" in again.text()
    # The workers' worktrees were reused, not piled up.
    listed = git(root, "worktree", "list", "--porcelain").count("worktree ")
    assert listed == 3


def test_auto_runs_one_worker_per_fake_gpu_from_the_command_line(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    # The agent notes its worker and GPUs, then edits as the fault agent does.
    seen = tmp_path / "agent-env.txt"
    toml = (root / "autoresearch.toml").read_text()
    agent = re.search(r'(?m)^command = "(.*agent\.py) \{number\}"$', toml)
    assert agent is not None
    wrapped = (
        f"sh -c 'echo $AUTORESEARCH_NUMBER $AUTORESEARCH_WORKER $CUDA_VISIBLE_DEVICES >> {seen};"
        f" exec {agent.group(1)} {{number}}'"
    )
    toml = toml.replace(agent.group(0), f'command = "{wrapped}"')
    (root / "autoresearch.toml").write_text(f'{toml}\n[parallel]\nworkers = "auto"\n')
    git(root, "commit", "-qam", "one worker per GPU")
    status = GpuStatus(
        available=True, message="", gpus=[GpuInfo(i, "Fake", 0.0, 0.0, 81_559.0) for i in (0, 1)]
    )
    fake = tmp_path / "gpus.json"
    fake.write_bytes(msgspec.json.encode(status))
    daemon = Daemon(root, "--loop", "4", env={FAKE_ENV: str(fake)})
    assert daemon.wait() == 0, daemon.text()
    recs = assert_consistent(root)
    assert len(recs) == 5
    assert {tuple(r.gpus) for r in recs[1:]} == {(0,), (1,)}
    assert {r.worker for r in recs[1:]} == {1, 2}
    assert "started on worker 1 (GPU 0)" in daemon.text()
    assert "started on worker 2 (GPU 1)" in daemon.text()
    # Each agent call saw only its worker's GPU, the one its experiment then ran on.
    calls = {
        int(n): (int(w), int(g))
        for n, w, g in (line.split() for line in seen.read_text().splitlines())
    }
    assert {r.number: (r.worker, r.gpus[0]) for r in recs[1:]} == calls


def test_kill_9_while_one_worker_edits_and_one_runs(tmp_path: Path) -> None:
    root = parallel_repo(tmp_path)
    pid_file = tmp_path / "agent.pid"
    plan = {"1": {"hang": str(pid_file)}, "2": {"mode": "slow"}}
    daemon = Daemon(root, "--loop", "4", plan=plan)

    def editing_and_running() -> bool:
        steps = {e["number"]: e["step"] for e in in_flight(root)}
        return pid_file.exists() and steps == {1: "editing", 2: "committed"}

    daemon.until(editing_and_running, timeout=60)
    running = next(e["commit"] for e in in_flight(root) if e["number"] == 2)
    daemon.kill9()
    assert daemon.leftovers(), "the agent and the run outlive the loop"
    _, recs = resume(root, loops=1, env={"FAULT_FAST_RUNS": "1"})
    assert not daemon.leftovers(), "the hanging agent or the run was left behind"
    # #1 never committed: its number goes to #2's commit, run again; one new experiment after.
    assert len(recs) == 3
    assert recs[1].commit == running and any("(was #2)" in e for e in recs[1].events)
    assert (
        "# half an edit"
        not in (root / ".autoresearch" / "worktrees" / "1" / "train.py").read_text()
    )
    assert in_flight(root) == []


def test_status_lists_the_workers_of_a_detached_parallel_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = parallel_repo(tmp_path)
    monkeypatch.setenv("FAULT_PLAN", json.dumps({"1": {"mode": "slow"}, "2": {"mode": "slow"}}))
    pid = detach(root)
    shown = ""

    def both_listed() -> bool:
        nonlocal shown
        shown = cli(root, "status").stdout
        return "workers: 2/2 busy" in shown

    until(both_listed, "both workers busy in `autoresearch status`")
    assert re.search(r"worker 1  CPU  #[12] running( \d+s)?  lr 0\.\d+ slow", shown), shown
    assert re.search(r"worker 2  CPU  #[12] running( \d+s)?  lr 0\.\d+ slow", shown), shown
    stopped = cli(root, "stop", "--now")
    assert stopped.returncode == 0, stopped.stderr
    until(lambda: gone(pid), "the detached loop to end")
    assert [r.reason for r in records(root)[1:]] == ["stopped by the user"] * 2
