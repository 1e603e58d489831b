"""Daemon footprint: idle CPU and RSS of `autoresearch serve` with the GPU poller running.

The GPU source is the fake one (AUTORESEARCH_FAKE_GPU, a JSON file with two GPUs), polled at
about 1 Hz like NVML would be. Measured first with no workspace, then with one repository open
(as VS Code has it: its observer watches for a loop run from a terminal).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import psutil
from common import Table, fmt, make_repo, open_fds, rss_mb
from jsonrpc import Daemon

GPU = {
    "available": True,
    "message": "2 fake GPUs",
    "gpus": [
        {
            "index": i,
            "name": "NVIDIA H100 80GB HBM3",
            "utilization": 97.0,
            "memory_used_mib": 61234.0,
            "memory_total_mib": 81559.0,
            "temperature_c": 64.0,
            "power_w": 512.0,
            "processes": [{"pid": 4242 + i, "used_mib": 61000.0, "name": "python"}],
        }
        for i in range(2)
    ],
}


def cpu_used(pid: int, seconds: float) -> float:
    """CPU seconds the process (all its threads) used over `seconds` of idling: nanoseconds from
    /proc/<pid>/task/*/schedstat where there is one, else psutil's 10 ms ticks."""
    before = _cpu(pid)
    time.sleep(seconds)
    return _cpu(pid) - before


def _cpu(pid: int) -> float:
    tasks = Path(f"/proc/{pid}/task")
    if (tasks / str(pid) / "schedstat").exists():
        total = 0
        for task in tasks.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
        return total / 1e9
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run(table: Table, seconds: float = 15.0) -> dict[str, float]:
    print(f"daemon footprint: idle for {seconds:g} s, twice", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        gpu = Path(tmp) / "gpu.json"
        gpu.write_text(json.dumps(GPU))
        root = make_repo(Path(tmp) / "repo", files=100)
        daemon = Daemon(env={"AUTORESEARCH_FAKE_GPU": str(gpu)}, cwd=root)
        try:
            status = daemon.request("autoresearch/gpus", {})
            assert status["available"] and len(status["gpus"]) == 2, status
            time.sleep(2.0)
            idle = cpu_used(daemon.pid, seconds)
            rss, fds = rss_mb(daemon.pid), open_fds(daemon.pid)
            notified = daemon.counts["autoresearch/gpuStatus"]
            daemon.request("autoresearch/state", {"root": str(root)})
            time.sleep(2.0)
            watching = cpu_used(daemon.pid, seconds)
            rss2 = rss_mb(daemon.pid)
        finally:
            daemon.close()
    bench = "footprint"
    table.add(
        bench,
        "idle CPU, GPU poller only",
        f"{100 * idle / seconds:.3f} %",
        f"{idle * 1000:.1f} ms of CPU in {seconds:g} s",
    )
    table.add(bench, "idle RSS, GPU poller only", fmt(rss, "MB"), f"{fds} open fds")
    table.add(
        bench,
        "idle CPU, + one workspace open",
        f"{100 * watching / seconds:.3f} %",
        f"{watching * 1000:.1f} ms of CPU in {seconds:g} s; its observer watches",
    )
    table.add(bench, "idle RSS, + one workspace open", fmt(rss2, "MB"))
    table.add(bench, "gpuStatus notifications while idle", str(notified), "sent on change only")
    return {"cpu_s": idle, "rss": rss, "cpu_ws_s": watching, "rss_ws": rss2}


if __name__ == "__main__":
    run(Table())
