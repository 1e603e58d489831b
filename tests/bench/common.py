"""Shared pieces of the benchmarks: repositories, the machine, process figures, formatting."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import psutil

MB = 1024 * 1024


def sh(root: Path, *args: str) -> str:
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(root: Path, files: int = 1000, extra: dict[str, str] | None = None) -> Path:
    """A repository of `files` small Python files in 20 packages, plus `extra`, committed."""
    root.mkdir(parents=True)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "config", "user.name", "bench")
    sh(root, "git", "config", "user.email", "bench@localhost")
    for i in range(files):
        package = root / f"pkg{i % 20}"
        package.mkdir(exist_ok=True)
        (package / f"mod{i}.py").write_text("".join(f"X{i}_{j} = {j}\n" for j in range(20)))
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "initial")
    return root


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 1024**3
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {ram:.0f} GB RAM, {platform.system()}"
        f" {platform.release()}, Python {sys.version.split()[0]}, {git}"
    )


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


def open_fds(pid: int) -> int:
    return psutil.Process(pid).num_fds()


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def fmt(value: float, unit: str = "") -> str:
    if value >= 100:
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


class Table:
    """Rows of (benchmark, figure, value, note), printed and written as markdown."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, bench: str, figure: str, value: str, note: str = "") -> None:
        self.rows.append((bench, figure, value, note))
        print(f"  {figure}: {value}" + (f"  ({note})" if note else ""), flush=True)

    def markdown(self) -> str:
        lines = ["| benchmark | figure | value | note |", "| --- | --- | --- | --- |"]
        lines += [f"| {b} | {f} | {v} | {n} |" for b, f, v, n in self.rows]
        return "\n".join(lines) + "\n"
