"""The sweep with parallel workers: one proposer, several threads, each in its own worktree of a
real git repository. Asked at once, the study proposes distinct configurations (constant liar);
a configuration being measured is never proposed again, nor told to Optuna as a failure."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
import pytest
from conftest import git, make_config, make_repo

from autoresearch.agents.base import AgentUnavailable, EditContext, EditOutcome
from autoresearch.agents.sweep import SweepProposer, find_constants
from autoresearch.experiment import Experiment

FILES = ["train.py", "evaluate.py"]
RUNNING, COMPLETE, FAIL = (
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
)


def worktrees(repo: Path, n: int) -> list[Path]:
    """n linked worktrees of `repo`, each checked out at its HEAD, as the coordinator makes."""
    paths = [repo.parent / f"w{i}" for i in range(1, n + 1)]
    for path in paths:
        git(repo, "worktree", "add", "-q", "--detach", str(path), "HEAD")
    return paths


def baseline(repo: Path, metric: float = 0.24) -> Experiment:
    return Experiment(number=0, commit=git(repo, "rev-parse", "HEAD"), status="keep", metric=metric)


def context(root: Path, number: int, config, history: list[Experiment]) -> EditContext:
    return EditContext(root=root, number=number, config=config, history=history, best=history[0])


def at_once(proposer: SweepProposer, contexts: list[EditContext], errors: bool = False) -> list:
    """Every context's call from its own thread, released together; with `errors`, an
    exception is returned in its call's place."""
    start = threading.Barrier(len(contexts))
    results: dict[int, EditOutcome | BaseException] = {}

    def call(i: int, ctx: EditContext) -> None:
        start.wait(timeout=60)
        try:
            results[i] = proposer.propose(ctx, threading.Event())
        except BaseException as exc:  # handed to the test thread
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i, c)) for i, c in enumerate(contexts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a propose call never returned"
    outcomes = []
    for i in range(len(contexts)):
        result = results[i]
        if isinstance(result, BaseException) and not errors:
            raise result
        outcomes.append(result)
    return outcomes


def values(root: Path, names: set[str]) -> dict[str, float | str]:
    return {k: c.value for k, c in find_constants(root, ["train.py"]).items() if k in names}


def states(proposer: SweepProposer) -> list[optuna.trial.TrialState]:
    return [t.state for t in proposer.study.trials]


def decided(n: int, params: dict, metric: float | None) -> Experiment:
    status = "crash" if metric is None else "discard"
    return Experiment(number=n, commit=f"{n:040x}", status=status, metric=metric, params=params)


def test_workers_asking_at_once_get_distinct_configurations_in_their_worktrees(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = worktrees(repo, 4)
    config = make_config()
    proposer = SweepProposer(config, repo, FILES)
    base = baseline(repo)
    proposer.observe(base)
    outcomes = at_once(proposer, [context(w, i + 1, config, [base]) for i, w in enumerate(trees)])
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    configs = [tuple(sorted(o.params.items())) for o in outcomes]
    assert len(set(configs)) == 4, configs
    # Each edit is in its own worker's tree; the repository's own tree is left alone.
    for tree, outcome in zip(trees, outcomes, strict=True):
        assert values(tree, {"LR", "DEPTH"}) == outcome.params
    assert git(repo, "status", "--porcelain") == ""
    # The four are pending trials (the constant liar's), none told as a failure.
    flights = {n: proposer.pending[n].trial.number for n in (1, 2, 3, 4)}
    assert states(proposer).count(RUNNING) >= 4 and FAIL not in states(proposer)

    # Decided out of order: each trial gets its own experiment's result.
    metrics = {1: 0.31, 2: 0.27, 3: 0.22, 4: 0.4}
    for n in (3, 1, 4, 2):
        proposer.observe(decided(n, outcomes[n - 1].params, metrics[n]))
    trials = proposer.study.trials
    assert {n: trials[t].value for n, t in flights.items()} == metrics
    assert RUNNING not in states(proposer) and FAIL not in states(proposer)
    assert proposer.pending == {} and proposer.in_flight == {}

    # A worker back at the best never repeats one of them.
    git(trees[0], "checkout", "--", "train.py")
    again = proposer.propose(context(trees[0], 5, config, [base]), threading.Event())
    assert tuple(sorted(again.params.items())) not in configs


CHOICES = {
    "kind": "sweep",
    "seed": 1,
    "params": [
        {"name": "LR", "type": "choice", "choices": [0.5, 0.3]},
        {"name": "DEPTH", "type": "choice", "choices": [4, 2]},
    ],
}


def test_a_configuration_being_measured_is_not_proposed_again_nor_failed(
    tmp_path: Path,
) -> None:
    # From the baseline (LR 0.5, DEPTH 4) one change reaches two configurations.
    repo = make_repo(tmp_path / "repo")
    w1, w2, w3 = worktrees(repo, 3)
    config = make_config(agent=CHOICES)
    proposer = SweepProposer(config, repo, FILES)
    base = baseline(repo)
    proposer.observe(base)
    first = proposer.propose(context(w1, 1, config, [base]), threading.Event())
    second = proposer.propose(context(w2, 2, config, [base]), threading.Event())
    neighbours = {(("DEPTH", 4.0), ("LR", 0.3)), (("DEPTH", 2.0), ("LR", 0.5))}
    assert {tuple(sorted(o.params.items())) for o in (first, second)} == neighbours

    # Both are being measured: a third worker has nothing new, says so, and edits nothing.
    third = proposer.propose(context(w3, 3, config, [base]), threading.Event())
    assert third.error is not None and "being measured" in third.error, third.error
    assert "2 running experiment(s) may move the best" in third.error
    assert git(w3, "status", "--porcelain") == ""
    # Asked again while pending, those trials wait for the result: none is told as a failure.
    assert FAIL not in states(proposer)
    waiting = {n: [t.number for t in (f.trial, *f.again)] for n, f in proposer.pending.items()}
    assert sum(len(t) for t in waiting.values()) > 2

    # The second is decided first (a crash), then the first: every waiting trial gets its
    # own configuration's result.
    proposer.observe(decided(2, second.params, None))
    proposer.observe(decided(1, first.params, 0.2))
    trials = proposer.study.trials
    assert {trials[t].state for t in waiting[2]} == {FAIL}
    assert {trials[t].value for t in waiting[1]} == {0.2}
    assert RUNNING not in states(proposer)

    # Nothing in flight any more and nothing new next to the best: the space is exhausted.
    with pytest.raises(AgentUnavailable, match="search space is exhausted"):
        proposer.propose(context(w3, 3, config, [base]), threading.Event())


def test_first_calls_at_once_replay_the_history_once(tmp_path: Path) -> None:
    # A resumed session: the baseline and two experiments are in the history, three workers'
    # first calls race. The history is told to the study once and never proposed again: the
    # one configuration left next to the baseline goes to one worker, the others wait.
    repo = make_repo(tmp_path / "repo")
    trees = worktrees(repo, 3)
    wider = {**CHOICES, "params": [{**CHOICES["params"][0], "choices": [0.5, 0.3, 0.1]}]}
    wider["params"].append(CHOICES["params"][1])
    config = make_config(agent=wider)
    proposer = SweepProposer(config, repo, FILES)
    history = [
        baseline(repo),
        decided(1, {"LR": 0.3, "DEPTH": 4.0}, 0.2),
        decided(2, {"LR": 0.5, "DEPTH": 2.0}, None),
    ]
    # Numbered 3, 4, 5 in the order their edits started; whichever wins the race, the call
    # that numbers below it would wait for a decision that can only come after its own (they
    # go in number order): the sweep says the space is exhausted there instead of waiting.
    contexts = [context(w, 3 + i, config, history) for i, w in enumerate(trees)]
    outcomes = at_once(proposer, contexts, errors=True)
    edited = [i for i, o in enumerate(outcomes) if isinstance(o, EditOutcome) and not o.error]
    assert len(edited) == 1 and outcomes[edited[0]].params == {"LR": 0.1, "DEPTH": 4.0}
    for i, outcome in enumerate(outcomes):
        if i < edited[0]:
            assert isinstance(outcome, AgentUnavailable), outcome
            assert "exhausted" in str(outcome)
        elif i > edited[0]:
            assert "being measured" in (outcome.error or "") and outcome.after_decision
    # Told once: the baseline and #1 (a crash is remembered, not added as a trial).
    replayed = [t for t in proposer.study.trials if "fixed_params" not in t.system_attrs]
    assert [t.value for t in replayed] == [0.24, 0.2]


def test_a_retried_number_leaves_no_trial_running(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (w1,) = worktrees(repo, 1)
    config = make_config()
    proposer = SweepProposer(config, repo, FILES)
    base = baseline(repo)
    proposer.observe(base)
    first = proposer.propose(context(w1, 1, config, [base]), threading.Event())
    abandoned = proposer.pending[1].trial.number
    git(w1, "checkout", "--", "train.py")  # the crash retry starts from the parent again
    retry = proposer.propose(context(w1, 1, config, [base]), threading.Event())
    assert retry.params != first.params
    assert proposer.study.trials[abandoned].state == FAIL
    assert states(proposer).count(RUNNING) == 1
    proposer.observe(decided(1, retry.params, 0.3))
    assert RUNNING not in states(proposer)
