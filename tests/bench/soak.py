"""Soak: 1,000 experiments in one `autoresearch serve` process, started over JSON-RPC.

The edit step is a real agent process (agent.kind = "command", a shell one-liner that rewrites
the metric file), the command `cat metric.txt`; every other experiment is a keep. The daemon's
RSS and open file descriptors are read at experiment 10 (warm) and at the end.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import Table, fmt, make_repo, open_fds, rss_mb
from jsonrpc import Daemon

EDIT = 'echo "score: $(( {number} % 2 ? 500000 : 100000 - {number} ))" > metric.txt'
CONFIG = {
    "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
    "run": {"command": "cat metric.txt", "timeout": 60},
    "scope": {"files": ["metric.txt"]},
    "agent": {"kind": "command", "command": EDIT, "timeout": 60},
}


def run(table: Table, experiments: int = 1000) -> dict[str, float]:
    print(f"soak: {experiments:,} experiments in one daemon, over JSON-RPC", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        root = make_repo(Path(tmp) / "repo", extra={"metric.txt": "score: 100000\n"})
        daemon = Daemon(cwd=root)
        samples: dict[int, tuple[float, int]] = {}
        stamps: list[float] = []
        done = threading.Event()

        def listen(method: str, params: Any) -> None:
            if method == "autoresearch/experimentRecorded":
                number = params["experiment"]["number"]
                stamps.append(time.perf_counter())
                if number in (10, experiments - 1) or number % 250 == 0:
                    samples[number] = (rss_mb(daemon.pid), open_fds(daemon.pid))
            elif method == "autoresearch/stateChanged" and params.get("phase") in (
                "stopped",
                "failed",
            ):
                done.set()

        daemon.listeners.append(listen)
        try:
            started = time.perf_counter()
            daemon.request(
                "autoresearch/start", {"root": str(root), "config": CONFIG, "loop": experiments}
            )
            if not done.wait(1800):
                raise TimeoutError("the soak did not finish in 30 minutes")
            elapsed = time.perf_counter() - started
            time.sleep(1.0)
            after = (rss_mb(daemon.pid), open_fds(daemon.pid))
            state = daemon.request("autoresearch/state", {"root": str(root)})
            page = daemon.request(
                "autoresearch/experiments", {"root": str(root), "offset": 0, "limit": 1}
            )
        finally:
            daemon.close()
    assert state["phase"] == "stopped", state
    assert page["total"] == experiments + 1, page["total"]
    (rss0, fds0), (rss1, fds1) = samples[10], samples[experiments - 1]
    per = statistics.median(b - a for a, b in itertools.pairwise(stamps))
    counts = state["counts"]
    bench = "soak"
    table.add(bench, "experiments", f"{experiments:,}", f"{elapsed:.0f} s, {counts}")
    last = f"#{experiments - 1}"
    table.add(
        bench,
        f"daemon RSS at #10 -> {last} -> stopped",
        f"{fmt(rss0)} -> {fmt(rss1)} -> {fmt(after[0], 'MB')}",
        "sampled as each experiment is recorded",
    )
    table.add(bench, f"open fds at #10 -> {last} -> stopped", f"{fds0} -> {fds1} -> {after[1]}")
    growth = (rss1 - rss0) * 1024 / (experiments - 11)
    table.add(
        bench,
        "RSS growth per experiment",
        f"{growth:.1f} KB",
        "the records kept in memory for paging are about 2-3 KB each",
    )
    middle = ", ".join(f"#{n}: {fmt(r)} MB/{f} fds" for n, (r, f) in sorted(samples.items()))
    table.add(bench, "samples", middle)
    table.add(
        bench,
        "median time per experiment, everything",
        fmt(per * 1000, "ms"),
        "agent process + run + loop + notifications",
    )
    return {"rss_start": rss0, "rss_end": rss1, "fds_start": fds0, "fds_end": fds1}


if __name__ == "__main__":
    run(Table(), 200)
