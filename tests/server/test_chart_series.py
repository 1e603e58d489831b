"""`autoresearch/chartSeries`: a session reduced to what the chart draws (issue #21 items 2-3).

The real daemon over stdio on sessions made by the benchmark's generator: every keep is listed,
every experiment falls in exactly one bucket whose bounds follow from the span, the counts add
up to the session's total, and each bucket's discard range and running best are those of the
records in experiments.jsonl (read here with json, not with the daemon's code).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from jsonrpc import Daemon, RpcError
from scale import TAG, session_repo

sys.path.pop(0)


def records(root: Path) -> list[dict[str, Any]]:
    path = root / ".autoresearch" / "experiments.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return session_repo(tmp_path_factory.mktemp("small"), 1_000)


@pytest.fixture(scope="module")
def served(small: Path) -> Iterator[Daemon]:
    daemon = Daemon(cwd=small)
    try:
        yield daemon
    finally:
        daemon.close()


def series(daemon: Daemon, root: Path, **params: Any) -> dict[str, Any]:
    return daemon.request("autoresearch/chartSeries", {"root": str(root), **params}, timeout=300)


def check_against_records(answer: dict[str, Any], recs: list[dict[str, Any]]) -> None:
    total = len(recs)
    span = answer["span"]
    assert answer["total"] == total
    assert sum(b["keep"] + b["discard"] + b["crash"] for b in answer["buckets"]) == total
    # Every keep, in order, with its metric.
    keeps = [r for r in recs if r["status"] == "keep"]
    if len(keeps) <= len(answer["buckets"]):
        assert answer["keep_numbers"] == [r["number"] for r in keeps]
        assert answer["keep_metrics"] == [r["metric"] for r in keeps]
    else:  # more keeps than columns: the buckets' keep ranges stand for them
        assert answer["keep_numbers"] == answer["keep_metrics"] == []
    by_first = {b["first"]: b for b in answer["buckets"]}
    best = None
    first = recs[0]["number"]
    expected: dict[int, dict[str, Any]] = {}
    for r in recs:
        lo = first + (r["number"] - first) // span * span
        b = expected.setdefault(
            lo,
            {"keep": 0, "discard": 0, "crash": 0, "parallel": 0, "metrics": [], "kept": []}
            | {"best": best},
        )
        b[r["status"]] += 1
        b["parallel"] += r.get("worker") is not None
        if r["status"] == "keep":
            best = b["best"] = r["metric"]
            b["kept"].append(r["metric"])
        elif r["status"] == "discard":
            b["metrics"].append(r["metric"])
    assert sorted(by_first) == sorted(expected), "one bucket per span of numbers that has any"
    last = recs[-1]["number"]
    for lo, want in expected.items():
        got = by_first[lo]
        assert got["last"] == min(lo + span - 1, last), f"bucket {lo}: bounds"
        for status in ("keep", "discard", "crash", "parallel"):
            assert got[status] == want[status], f"bucket {lo}: {status}"
        assert got["discard_min"] == (min(want["metrics"]) if want["metrics"] else None)
        assert got["discard_max"] == (max(want["metrics"]) if want["metrics"] else None)
        assert got["keep_min"] == (min(want["kept"]) if want["kept"] else None)
        assert got["keep_max"] == (max(want["kept"]) if want["kept"] else None)
        assert got["best"] == want["best"], f"bucket {lo}: running best"


def test_a_session_reduced_to_buckets_matches_its_records(small: Path, served: Daemon) -> None:
    answer = series(served, small, buckets=64)
    recs = records(small)
    assert answer["tag"] == TAG
    assert answer["span"] == 16  # ceil(1000 / 64)
    assert len(answer["buckets"]) == 63  # the last bucket is the 63rd: 62 * 16 = 992
    check_against_records(answer, recs)
    # The last bucket's best is the session's best: the last keep.
    state = served.request("autoresearch/state", {"root": str(small)})
    (summary,) = [s for s in state["sessions"] if s["tag"] == TAG]
    assert answer["buckets"][-1]["best"] == summary["best"]
    # 64 columns, about 190 keeps: not listed one by one, the buckets' keep ranges stand for them.
    assert answer["keep_numbers"] == []
    assert sum(b["keep"] for b in answer["buckets"]) == summary["counts"]["keep"] + 1  # baseline


def test_keeps_are_listed_while_there_are_no_more_than_columns(small: Path, served: Daemon) -> None:
    answer = series(served, small, buckets=500)
    assert answer["span"] == 2
    assert 0 < len(answer["keep_numbers"]) <= 500
    check_against_records(answer, records(small))


def test_room_for_every_experiment_gives_one_bucket_each(small: Path, served: Daemon) -> None:
    answer = series(served, small, buckets=5000, tag=TAG)
    assert answer["span"] == 1
    assert len(answer["buckets"]) == 1000
    assert all(b["first"] == b["last"] == i for i, b in enumerate(answer["buckets"]))
    check_against_records(answer, records(small))


def test_an_unknown_session_is_empty(small: Path, served: Daemon) -> None:
    answer = series(served, small, tag="no-such-session")
    assert (answer["total"], answer["buckets"], answer["keep_numbers"]) == (0, [], [])


@pytest.mark.parametrize("buckets", [0, -3, 10_001])
def test_a_bucket_count_out_of_range_is_refused_naming_the_fix(
    small: Path, served: Daemon, buckets: int
) -> None:
    with pytest.raises(RpcError) as caught:
        series(served, small, buckets=buckets)
    text = str(caught.value)
    assert "buckets must be between 1 and 10000" in text
    assert f"got {buckets}" in text and "one per pixel" in text


def test_a_100k_session_comes_back_small(tmp_path: Path) -> None:
    # The whole session is 50 MB of JSON; its reduction for a 1,000-column chart is what the
    # chart needs, a small fraction of that (the keeps and a thousand buckets).
    root = session_repo(tmp_path, 100_000)
    daemon = Daemon(cwd=root)
    try:
        answer = series(daemon, root, buckets=1000)
    finally:
        daemon.close()
    assert answer["total"] == 100_000
    assert answer["span"] == 100
    assert len(answer["buckets"]) == 1000
    check_against_records(answer, records(root))
    assert (
        len(json.dumps(answer))
        < 0.1 * (root / ".autoresearch" / "experiments.jsonl").stat().st_size
    )


def test_a_parallel_loops_experiments_are_counted_per_column(tmp_path: Path) -> None:
    # Two workers ran every experiment but each third (as a parallel loop records them): each
    # column says how many of its experiments a worker ran, read off the records' index.
    root = session_repo(tmp_path, 300)
    path = root / ".autoresearch" / "experiments.jsonl"
    recs = records(root)
    for r in recs:
        if r["number"] % 3:
            r["worker"], r["gpus"] = 1 + r["number"] % 2, [r["number"] % 2]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    daemon = Daemon(cwd=root)
    try:
        answer = series(daemon, root, buckets=30)
    finally:
        daemon.close()
    assert answer["span"] == 10
    check_against_records(answer, recs)
    assert [b["parallel"] for b in answer["buckets"]] == [6, 7, 7] * 10
