"""A session reduced to what the chart can draw: the keeps, the rest per column.

At 100,000 experiments the chart has about a thousand columns; sending it every experiment
(50 MB of JSON) froze the window and drew a solid band. Here each column (bucket) of
experiment numbers keeps its counts by status, the range of its discards' metrics and the running
best at its end, and every keep is listed (the best line steps at each); a parallel loop's
experiments are counted per column too. One pass over the session's numbers, statuses, metrics
and workers; descriptions are left to the detail asked on hover. Keeps are listed one by one
only while they are no more than the columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .experiment import Experiment
from .protocol import ChartBucket, ChartSeries
from .records import SessionView

MAX_BUCKETS = 10_000


def rows_of(items: Sequence[Experiment]) -> Iterable[tuple[int, str, float | None, int | None]]:
    """Number, status, metric, worker of each experiment: decoded lightly from the records
    index, or read off whole records (an observed results.tsv, already in memory)."""
    if isinstance(items, SessionView):
        return items.rows()
    return ((e.number, e.status, e.metric, e.worker) for e in items)


def reduce(root: str, tag: str, items: Sequence[Experiment], buckets: int) -> ChartSeries:
    """`buckets`: checked by the caller (1 to MAX_BUCKETS)."""
    total = len(items)
    if total == 0:
        return ChartSeries(
            root=root, tag=tag, total=0, span=1, buckets=[], keep_numbers=[], keep_metrics=[]
        )
    first, last = items[0].number, items[-1].number
    span = -(-(last - first + 1) // buckets)  # ceil: every number falls in one of `buckets`
    out: list[ChartBucket] = []
    keep_numbers: list[int] = []
    keep_metrics: list[float | None] = []
    best: float | None = None
    bucket: ChartBucket | None = None
    for number, status, value, worker in rows_of(items):
        metric = value if value is not None and math.isfinite(value) else None  # JSON has no NaN
        b0 = first + (number - first) // span * span
        if bucket is None or bucket.first != b0:
            bucket = ChartBucket(first=b0, last=min(b0 + span - 1, last), best=best)
            out.append(bucket)
        if worker is not None:  # ran beside others (a parallel loop): the chart marks it
            bucket.parallel += 1
        if status == "keep":
            bucket.keep += 1
            keep_numbers.append(number)
            keep_metrics.append(metric)
            best = bucket.best = metric
            if metric is not None:
                if bucket.keep_min is None or metric < bucket.keep_min:
                    bucket.keep_min = metric
                if bucket.keep_max is None or metric > bucket.keep_max:
                    bucket.keep_max = metric
        elif status == "discard":
            bucket.discard += 1
            if metric is not None:
                if bucket.discard_min is None or metric < bucket.discard_min:
                    bucket.discard_min = metric
                if bucket.discard_max is None or metric > bucket.discard_max:
                    bucket.discard_max = metric
        else:
            bucket.crash += 1
    if len(keep_numbers) > buckets:
        # More keeps than columns: as markers they would merge into a band (and 20,000 of them
        # cost more to send than the rest); the buckets' keep ranges and bests draw them.
        keep_numbers, keep_metrics = [], []
    return ChartSeries(
        root=root,
        tag=tag,
        total=total,
        span=span,
        buckets=out,
        keep_numbers=keep_numbers,
        keep_metrics=keep_metrics,
    )
