"""Scale: sessions of 10,000 and 100,000 experiments, and metric extraction from a 1 GB log.

- load: results.tsv + experiments.jsonl read and reconciled by the ledger, as a resume does:
  with the index a resume finds (saved by a daemon or an earlier resume: the records it covers
  are not decoded), without one (the first read, which saves it), and the first use of the
  whole history after the load (the loop iterating it: the records decoded then, at once).
- page: one `autoresearch/experiments` request over JSON-RPC to a real `autoresearch serve`:
  the first one (which reads the session: the index the ledger saved at the load above, then
  the file's lines since) and then the median of 20 more (newest first, 200 rows, from the top
  and from the middle); the daemon's RSS once it holds the session; and the first page of a
  daemon that finds no saved index (it reads every line of experiments.jsonl).
- extraction: the metric read from a 1 MB and a 1 GB run.log with the config's pattern (the
  daemon's way: backwards from the end), and with the seed's `grep ... | tail -1` for contrast.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
from common import MB, Table, fmt, make_repo, median_ms, rss_mb, sh
from jsonrpc import Daemon

from autoresearch import config as cfg
from autoresearch import results_tsv
from autoresearch.experiment import DiffStats, Experiment
from autoresearch.extract import by_command
from autoresearch.ledger import Ledger
from autoresearch.measure import read_metric

TAG = "bench"
CONFIG = """\
[metric]
name = "score"
direction = "lower"
pattern = '^score:\\s*(\\S+)'

[run]
command = "cat metric.txt"

[scope]
files = ["metric.txt"]
"""


def fake_session(root: Path, n: int) -> None:
    """n experiments as the loop leaves them: real commits (kept ones on the session branch,
    the others beside it), one row each in results.tsv and experiments.jsonl."""
    rng = random.Random(n)
    base = sh(root, "git", "rev-parse", "HEAD")
    plan: list[tuple[str, float | None, int]] = [("keep", 1.0, 0)]  # status, metric, parent
    best, keep = 1.0, 0
    stream = bytearray()
    for i in range(1, n):
        metric: float | None = best * (0.999 if rng.random() < 0.2 else 1.01)
        status = "keep" if (metric or 0) < best else "discard"
        if rng.random() < 0.05:
            status, metric = "crash", None
        plan.append((status, metric, keep))
        ref = f"refs/heads/autoresearch/{TAG}" if status == "keep" else "refs/bench/attempts"
        parent = f":{keep}" if keep else base
        body = f"score: {metric}\n"
        message = f"autoresearch #{i}: try something\n"
        stream += (
            f"commit {ref}\nmark :{i}\ncommitter bench <bench@localhost> {1764000000 + i} +0000\n"
            f"data {len(message)}\n{message}from {parent}\nM 644 inline metric.txt\n"
            f"data {len(body)}\n{body}\n"
        ).encode()
        if status == "keep":
            best, keep = metric or best, i
    marks = root / ".git" / "bench-marks"
    subprocess.run(
        ["git", "fast-import", "--quiet", f"--export-marks={marks}"],
        cwd=root,
        input=bytes(stream),
        check=True,
    )
    sha = {0: base}
    for line in marks.read_text().splitlines():
        mark, _, full = line.partition(" ")
        sha[int(mark[1:])] = full
    encoder = msgspec.json.Encoder()
    (root / ".autoresearch").mkdir(exist_ok=True)
    with (
        open(root / "results.tsv", "w") as tsv,
        open(root / ".autoresearch" / "experiments.jsonl", "wb") as jsonl,
    ):
        tsv.write(results_tsv.HEADER)
        for i, (status, metric, parent) in enumerate(plan):
            exp = Experiment(
                number=i,
                commit=sha[i],
                status=status,  # type: ignore[arg-type]
                metric=metric,
                memory_gb=42.5,
                description=f"try a learning rate warmup of {i % 97} steps with cosine decay",
                tag=TAG,
                parent=sha[parent] if i else "",
                reason="" if status == "keep" else "no improvement",
                exit_code=0,
                runtime_s=300.0 + rng.random(),
                agent_s=41.0,
                peak_rss_gb=12.25,
                peak_gpu_gb=42.5,
                diff=DiffStats(files=1, additions=1, deletions=1),
                started="2026-11-25T10:00:00+00:00",
                finished="2026-11-25T10:05:41+00:00",
            )
            tsv.write(results_tsv.format_row(exp))
            jsonl.write(encoder.encode(exp) + b"\n")


def session_repo(base: Path, n: int) -> Path:
    root = make_repo(
        base / f"s{n}",
        files=20,
        extra={
            "metric.txt": "score: 1\n",
            "autoresearch.toml": CONFIG,
            ".gitignore": "results.tsv\nrun.log\n.autoresearch/\n",
        },
    )
    fake_session(root, n)
    sh(root, "git", "checkout", "-q", f"autoresearch/{TAG}")
    return root


def load_times(root: Path) -> tuple[float, float, float]:
    """A resume's reconcile without a saved index (it reads every line and saves the index),
    then with it, as a resume after a daemon or an earlier resume saved one; and the first
    use of the whole history then (the loop iterating it decodes the records it left)."""
    started = time.perf_counter()
    Ledger(root, "score").reconcile(TAG)
    unindexed = time.perf_counter() - started
    started = time.perf_counter()
    history = Ledger(root, "score").reconcile(TAG)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    assert sum(1 for _ in history) == len(history)
    return unindexed, indexed, time.perf_counter() - started


def page_times(root: Path, n: int) -> tuple[float, float, float, float]:
    daemon = Daemon(cwd=root)
    try:
        idle = rss_mb(daemon.pid)
        params = {"root": str(root), "offset": 0, "limit": 200, "tag": TAG, "newest_first": True}
        started = time.perf_counter()
        page = daemon.request("autoresearch/experiments", params)
        first = time.perf_counter() - started
        assert page["total"] == n and len(page["items"]) == 200, page["total"]
        warm = []
        for i in range(20):
            offset = 0 if i % 2 == 0 else n // 2
            started = time.perf_counter()
            daemon.request("autoresearch/experiments", {**params, "offset": offset})
            warm.append(time.perf_counter() - started)
        return first, statistics.median(warm), idle, rss_mb(daemon.pid)
    finally:
        daemon.close()


def chart_series_time(root: Path, n: int) -> tuple[float, float, int]:
    """The chart's `autoresearch/chartSeries` (1,000 columns) from a daemon that has read the
    session: the first and the median of 5 more, and the answer's size in bytes."""
    daemon = Daemon(cwd=root)
    try:
        daemon.request("autoresearch/state", {"root": str(root)}, timeout=300)
        params = {"root": str(root), "tag": TAG, "buckets": 1000}
        times = []
        for _ in range(6):
            started = time.perf_counter()
            answer = daemon.request("autoresearch/chartSeries", params, timeout=300)
            times.append(time.perf_counter() - started)
            assert answer["total"] == n
        return times[0], statistics.median(times[1:]), len(msgspec.json.encode(answer))
    finally:
        daemon.close()


def first_page_unindexed(root: Path, n: int) -> float:
    (root / ".autoresearch" / "experiments.idx").unlink(missing_ok=True)
    daemon = Daemon(cwd=root)
    try:
        params = {"root": str(root), "offset": 0, "limit": 200, "tag": TAG, "newest_first": True}
        started = time.perf_counter()
        page = daemon.request("autoresearch/experiments", params)
        assert page["total"] == n
        return time.perf_counter() - started
    finally:
        daemon.close()


def log_file(path: Path, size: int) -> None:
    """A training log of about `size` bytes, its metric on the last lines, as the seed prints."""
    line = b"step 01234 | loss 2.345678 | lr 0.000600 | dt 123.4ms | tok/sec 512345\n"
    block = line * (MB // len(line))
    with open(path, "wb") as f:
        written = 0
        while written + len(block) <= size:
            f.write(block)
            written += len(block)
        f.write(b"---\nscore: 0.997900\ntraining_seconds: 300.1\npeak_vram_mb: 45060.2\n")


def extraction(table: Table, base: Path) -> dict[str, float]:
    config = cfg.parse(CONFIG)
    out: dict[str, float] = {}
    for label, size in (("1 MB", MB), ("1 GB", 1024 * MB)):
        path = base / "run.log"
        log_file(path, size)
        times = []
        for _ in range(7):
            started = time.perf_counter()
            assert read_metric(config, base, path) == 0.9979
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        by_command("grep '^score:' run.log | tail -1", base)
        grep = time.perf_counter() - started
        out[label] = median_ms(times)
        table.add(
            "scale",
            f"metric from a {label} run.log",
            fmt(median_ms(times), "ms"),
            f"seed's grep: {fmt(grep * 1000, 'ms')}",
        )
        path.unlink()
    return out


def run(
    table: Table, sizes: tuple[int, ...] = (10_000, 100_000), extract: bool = True
) -> dict[str, float]:
    print("scale: sessions of " + " and ".join(f"{n:,}" for n in sizes) + " experiments")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = Path(tmp)
        for n in sizes:
            root = session_repo(base, n)
            size = (root / ".autoresearch" / "experiments.jsonl").stat().st_size / MB
            cold_load, load, decode = load_times(root)
            first, warm, idle, rss = page_times(root, n)
            chart_first, chart_warm, chart_bytes = chart_series_time(root, n)
            cold = first_page_unindexed(root, n)
            label = f"{n:,} experiments"
            rows = [
                ("load results.tsv + jsonl", load * 1000, f"jsonl {size:.0f} MB, saved index"),
                ("load, no saved index", cold_load * 1000, "decodes every line"),
                (
                    "resumed history, first whole use",
                    decode * 1000,
                    "decodes the records the load left",
                ),
                ("first experiments page (RPC)", first * 1000, "reads the session"),
                ("first page, no saved index (RPC)", cold * 1000, "reads every line"),
                ("next pages (RPC), median", warm * 1000, "200 rows, top and middle"),
                (
                    "chart series, 1,000 columns (RPC)",
                    chart_first * 1000,
                    f"then {fmt(chart_warm * 1000, 'ms')}; {chart_bytes / MB:.1f} MB of JSON",
                ),
            ]
            for what, ms, note in rows:
                table.add("scale", f"{label}: {what}", fmt(ms, "ms"), note)
            table.add("scale", f"{label}: daemon RSS", fmt(rss, "MB"), f"{fmt(idle, 'MB')} before")
            out[f"load_{n}"], out[f"page_{n}"], out[f"rss_{n}"] = load, warm, rss
            subprocess.run(["rm", "-rf", str(root)], check=True)
        if extract:
            out.update(extraction(table, base))
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the scale benchmark alone")
    parser.add_argument(
        "--sizes", default="10000,100000", help="session sizes, comma-separated (e.g. 100000)"
    )
    parser.add_argument("--no-extraction", action="store_true", help="sessions only, no 1 GB log")
    args = parser.parse_args()
    table = Table()
    run(table, tuple(int(n) for n in args.sizes.split(",")), not args.no_extraction)
    print(table.markdown())
