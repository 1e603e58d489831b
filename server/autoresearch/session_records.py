"""Each session's facts, kept once: its count of records, keeps/discards/crashes, baseline, best.

A `Tally` takes one experiment at a time (O(1) each), so the loop, the ledger, the daemon's
records, the observer and `status` keep their summaries as records arrive instead of counting
whole sessions again. One rule for all of them:

- the counts leave out the baseline (the session's first record): keep + discard + crash is
  always `total - 1` (0 for an empty session), which the view words as "N experiments after the
  baseline" beside `total` records (#0 to #total-1);
- the best is the last keep, the commit the session's branch sits on: the policy keeps only a
  better metric, or an equal one with fewer lines, so no earlier keep beats it on its metric
  except within the policy's "equal" margin.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence

import msgspec

from .experiment import Experiment
from .protocol import Counts, SessionSummary
from .repo import BRANCH_PREFIX


class Tally(msgspec.Struct):
    tag: str
    total: int = 0
    keep: int = 0
    discard: int = 0
    crash: int = 0
    baseline: float | None = None
    best: float | None = None
    best_number: int | None = None
    # The best experiment itself, when the records at hand are whole (the loop's, the ledger's).
    best_record: Experiment | None = None

    def add(
        self, number: int, status: str, metric: float | None, exp: Experiment | None = None
    ) -> None:
        if self.total == 0:
            self.baseline = metric
        elif status == "keep":
            self.keep += 1
        elif status == "discard":
            self.discard += 1
        else:
            self.crash += 1
        if status == "keep":
            self.best, self.best_number, self.best_record = metric, number, exp
        self.total += 1

    def add_experiment(self, exp: Experiment) -> None:
        self.add(exp.number, exp.status, exp.metric, exp)

    @property
    def counts(self) -> Counts:
        return Counts(keep=self.keep, discard=self.discard, crash=self.crash)

    def summary(self, branch: str | None = None) -> SessionSummary:
        return SessionSummary(
            tag=self.tag,
            branch=branch if branch is not None else f"{BRANCH_PREFIX}{self.tag}",
            total=self.total,
            counts=self.counts,
            best=self.best,
            best_number=self.best_number,
        )

    def copy(self) -> Tally:
        return msgspec.structs.replace(self)


def tally_of(tag: str, experiments: Iterable[Experiment]) -> Tally:
    """A whole session's tally at once: what `add` would give, one experiment at a time."""
    exps = experiments if isinstance(experiments, list) else list(experiments)
    tally = Tally(tag=tag, total=len(exps))
    if not exps:
        return tally
    tally.baseline = exps[0].metric
    counted = Counter(exp.status for exp in exps[1:])
    tally.keep, tally.discard = counted["keep"], counted["discard"]
    tally.crash = len(exps) - 1 - tally.keep - tally.discard
    best = next((exp for exp in reversed(exps) if exp.status == "keep"), None)
    if best is not None:
        tally.best, tally.best_number, tally.best_record = best.metric, best.number, best
    return tally


def by_number(items: Sequence[Experiment], number: int) -> Experiment | None:
    """The experiment numbered `number`, not the one at that position: a record left out (an
    unreadable line) must not shift every later number."""
    if 0 <= number < len(items) and items[number].number == number:
        return items[number]
    # Numbers ascend in every session's records; a gap puts the experiment earlier.
    lo = bisect.bisect_left(range(len(items)), number, key=lambda i: items[i].number)
    if lo < len(items) and items[lo].number == number:
        return items[lo]
    return None
