"""Loop overhead: the daemon's own time per experiment against a bare bash loop, same run.

Both work on a repository of 1,000 files with an instant command (`cat metric.txt`, which
prints the metric) and an instant edit (one file rewritten). Every other experiment improves
(keep), the rest do not (discard + revert), so both paths are measured.

- daemon: the real Loop (journal, scope check, commit, attempt ref, runner, extraction, policy,
  results.tsv + jsonl, revert) with a scripted proposer behind the Proposer interface. Its
  overhead is the time between two recorded experiments minus the run (runtime_s) and the edit
  (agent_s).
- bash: the seed's loop by hand: edit, git add + commit, run to run.log, grep, append to
  results.tsv, git reset --hard HEAD~1 on a discard. Its overhead is the iteration minus the
  edit and the run, timed with $EPOCHREALTIME (no extra processes).

The two run interleaved in rounds, so a busy neighbour on the machine slows both alike. The
figure is the mean (each loop's whole time over its experiments): a discard costs a reset more
than a keep in both loops, so the times form two clusters and the median of all swings between
them from run to run; each kind's median is printed beside it.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import git
from common import Table, fmt, make_repo, median_ms

from autoresearch import config as cfg
from autoresearch.agents.base import EditContext, EditOutcome
from autoresearch.experiment import Experiment
from autoresearch.loop import Loop
from autoresearch.protocol import ExperimentRecorded

BASH_LOOP = r"""
set -e
cd "$1"; first=$2; last=$3
best=$(cat .best)
for ((i=first; i<=last; i++)); do
  t0=$EPOCHREALTIME
  if (( i % 2 == 0 )); then v=$((100000 - i)); else v=500000; fi
  echo "score: $v" > metric.txt
  t1=$EPOCHREALTIME
  git add -A
  git commit -q -m "experiment $i"
  t2=$EPOCHREALTIME
  cat metric.txt > run.log 2>&1
  t3=$EPOCHREALTIME
  m=$(grep '^score:' run.log | tail -1 | cut -d' ' -f2)
  c=$(git rev-parse --short=7 HEAD)
  if (( m < best )); then best=$m; s=keep; else s=discard; fi
  printf '%s\t%s\t0.0\t%s\texperiment %s\n' "$c" "$m" "$s" "$i" >> results.tsv
  if [[ $s == discard ]]; then git reset -q --hard HEAD~1; fi
  t4=$EPOCHREALTIME
  echo "$t0 $t1 $t2 $t3 $t4"
done
echo $best > .best
"""


def value(number: int) -> int:
    return 100000 - number if number % 2 == 0 else 500000


class InstantEdit:
    """The edit step at zero cost: the metric file gets the next value."""

    name = "bench"

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        (ctx.root / "metric.txt").write_text(f"score: {value(ctx.number)}\n")
        return EditOutcome(description=f"experiment {ctx.number}")

    def observe(self, experiment: Experiment) -> None:
        pass


CONFIG = {
    "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
    "run": {"command": "cat metric.txt", "timeout": 60},
    "scope": {"files": ["metric.txt"]},
    "agent": {"kind": "manual"},
}


GIT_CALLS: Counter[str] = Counter()


@contextlib.contextmanager
def counting_git() -> Iterator[None]:
    """Count the git processes the loop starts (GitPython's execute), by subcommand."""
    original = git.cmd.Git.execute

    def execute(self: git.cmd.Git, command: list[str], *args: object, **kwargs: object) -> object:
        GIT_CALLS[next((w for w in command[1:] if not w.startswith("-")), "?")] += 1
        return original(self, command, *args, **kwargs)

    git.cmd.Git.execute = execute  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        git.cmd.Git.execute = original  # type: ignore[method-assign]


# git processes started between two records of a round (its start and stop left out).
STEADY_CALLS: list[int] = []


def daemon_round(root: Path, n: int) -> list[tuple[str, float]]:
    stamps: list[tuple[float, Experiment, int]] = []

    def emit(event: object) -> None:
        if isinstance(event, ExperimentRecorded):
            stamps.append((time.perf_counter(), event.experiment, sum(GIT_CALLS.values())))

    with counting_git():
        Loop(root, cfg.from_builtins(CONFIG), InstantEdit(), emit=emit, limit=n).run()
    overhead = []
    for (before, _, calls_before), (after, exp, calls) in itertools.pairwise(stamps):
        if exp.number == 0:
            continue
        overhead.append((exp.status, after - before - exp.runtime_s - exp.agent_s))
        STEADY_CALLS.append(calls - calls_before)
    return overhead


def bash_round(root: Path, first: int, last: int) -> list[tuple[str, float]]:
    out = subprocess.run(
        ["bash", "-c", BASH_LOOP, "bash", str(root), str(first), str(last)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    overhead = []
    for i, line in enumerate(out.splitlines(), start=first):
        t0, t1, t2, t3, t4 = map(float, line.split())
        overhead.append(("keep" if i % 2 == 0 else "discard", (t4 - t0) - (t1 - t0) - (t3 - t2)))
    return overhead


def run(table: Table, experiments: int = 200, rounds: int = 10) -> dict[str, float]:
    print(f"loop overhead: {experiments} experiments each, 1,000-file repositories", flush=True)
    GIT_CALLS.clear()
    STEADY_CALLS.clear()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        extra = {"metric.txt": "score: 100000\n"}
        daemon_repo = make_repo(Path(tmp) / "daemon", extra=extra)
        bash_repo = make_repo(Path(tmp) / "bash", extra=extra)
        (bash_repo / ".git" / "info" / "exclude").write_text("results.tsv\nrun.log\n.best\n")
        (bash_repo / "results.tsv").write_text("commit\tmetric\tmemory_gb\tstatus\tdescription\n")
        (bash_repo / ".best").write_text("100000\n")
        daemon: list[float] = []
        bash: list[float] = []
        per_round = experiments // rounds
        started = time.perf_counter()
        for r in range(rounds):
            # The daemon's first round also runs the baseline; resumes add no experiment.
            daemon += daemon_round(daemon_repo, per_round)
            bash += bash_round(bash_repo, r * per_round + 1, (r + 1) * per_round)
        elapsed = time.perf_counter() - started
    bench = "loop overhead"
    # Keeps and discards alternate, and a discard costs a reset more (in both loops): the times
    # are two clusters, and a median lands on either side of the gap from run to run. The mean
    # (the loop's whole time over its experiments) is the figure; each kind's median beside it.
    times = {"daemon": [t for _, t in daemon], "bash": [t for _, t in bash]}
    d, b = statistics.mean(times["daemon"]) * 1000, statistics.mean(times["bash"]) * 1000
    table.add(bench, "daemon, mean per experiment", f"{fmt(d, 'ms')}", f"n={len(daemon)}")
    table.add(bench, "bash loop, mean per experiment", f"{fmt(b, 'ms')}", f"n={len(bash)}")
    table.add(bench, "ratio daemon / bash (means)", f"{d / b:.2f}", "target <= 1.2")
    for kind in ("keep", "discard"):
        dk = median_ms([t for s, t in daemon if s == kind])
        bk = median_ms([t for s, t in bash if s == kind])
        table.add(
            bench,
            f"ratio daemon / bash, medians of the {kind}s",
            f"{dk / bk:.2f}",
            f"{fmt(dk)} / {fmt(bk, 'ms')}",
        )
    dm, bm = median_ms(times["daemon"]), median_ms(times["bash"])
    table.add(
        bench,
        "ratio daemon / bash, medians of all",
        f"{dm / bm:.2f}",
        f"{fmt(dm)} / {fmt(bm, 'ms')}: between the two clusters, it swings from run to run",
    )
    calls = sum(GIT_CALLS.values()) / experiments
    top = ", ".join(f"{name} {count / experiments:.1f}" for name, count in GIT_CALLS.most_common())
    table.add(bench, "git processes per experiment, daemon", f"{calls:.1f}", top)
    table.add(
        bench,
        "git processes per experiment, daemon, between two records",
        f"{statistics.mean(STEADY_CALLS):.2f}",
        "a round's start and stop left out: a keep 2 (status, commit), a discard 4 (+ status,"
        " reset), the status before the edit after a keep 1; notes every 5",
    )
    table.add(
        bench,
        "git processes per experiment, bash",
        "3.5",
        "counted from its script, not measured: add 1, commit 1, rev-parse 1, reset on the"
        " half that are discards 0.5 (+ cat, grep, tail, cut)",
    )
    spread = statistics.quantiles(times["daemon"], n=10)
    table.add(
        bench,
        "daemon p10 / p90",
        f"{fmt(spread[0] * 1000)} / {fmt(spread[-1] * 1000, 'ms')}",
        f"both loops ran in {elapsed:.0f} s",
    )
    return {"daemon_ms": d, "bash_ms": b, "ratio": d / b}


if __name__ == "__main__":
    t = Table()
    run(t)
