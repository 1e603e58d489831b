"""100,000 experiments in the real VS Code (issue #21): the end-to-end suite's `large-session`
scenario (code-server, the packaged extension, headless Chromium), run RUNS times, its figures
summarised as min / median / max.

Each run generates the session with `scale.session_repo` (real commits, results.tsv and
experiments.jsonl), opens a fresh browser profile, and measures:
- the tree's first rows after the view is clicked, the daemon having been started by the
  session in the workspace (activation on `workspaceContains`);
- the chart in a new window (the page reloaded: a new workbench, extension host and daemon, in a
  browser that has had a webview, as every window but a profile's very first): the click's event
  to the first frame painted after the plot was drawn, on the browser's clock; the same click to
  the plot seen by the test's polling; the longest gap between two `requestAnimationFrame`
  callbacks of the workbench page meanwhile (16.7 ms at rest);
- VS Code's own empty webview opened the same way, as a new window's first webview
  (tests/e2e/fixtures/baseline-webview): what any webview costs there;
- the chart as the first webview of the fresh browser profile, which includes VS Code registering
  its webview service worker (once per profile and VS Code version);
- the chart closed and opened again in the same window (beside the diff editor the deep experiment
  opened), and VS Code's empty webview there; a reduced point's details on hover; a deep
  experiment's diff opened from the chart.

Needs the end-to-end environment (`bash tests/e2e/setup.sh`, which `make bench` runs, cached
after the first time) and the packaged extension (`make vsix`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Table

ROOT = Path(__file__).resolve().parents[2]
RUNS = 3


NEW = "chart, a new window"
FIRST = "chart, a fresh browser profile's first webview"
EMPTY = "VS Code's empty webview, a new window"
AGAIN = "chart reopened in the same window"
ROWS = [  # figure, the scenario's key, note
    ("tree's first rows after the click", "treeFirstRowsMs", "{n}; daemon started beforehand"),
    (f"{NEW}: click to plot painted", "newWindowClickToPaintedMs", "browser's clock; target < 1 s"),
    (f"{NEW}: click to plot seen by the test", "newWindowFirstRenderMs", "+ Playwright's polling"),
    (f"{NEW}: longest frame gap", "newWindowMaxFrameGapMs", "target <= 100 ms; 16.7 ms at rest"),
    (f"{EMPTY}: click to painted", "baselineClickToPaintedMs", "opened as the chart is"),
    (f"{EMPTY}: longest frame gap", "baselineMaxFrameGapMs", "what any webview costs there"),
    (f"{FIRST}: click to painted", "chartClickToPaintedMs", "+ VS Code's service worker install"),
    (f"{FIRST}: longest frame gap", "chartMaxFrameGapMs", ""),
    (f"{AGAIN}: click to painted", "reopenClickToPaintedMs", ""),
    (f"{AGAIN}: longest frame gap", "reopenMaxFrameGapMs", "beside the deep diff"),
    ("VS Code's empty webview there: longest frame gap", "baselineBesideDiffMaxFrameGapMs", ""),
    ("hover on a reduced point: details shown", "hoverDetailMs", "asked from the daemon"),
    ("a deep experiment's diff from the chart", "deepDiffMs", "#~10,000, to its tab; < 0.6 s"),
]


def one_run(figures_file: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "AUTORESEARCH_PYTHON": sys.executable,
        "AUTORESEARCH_E2E_BASELINE": "1",
        "AUTORESEARCH_E2E_FIGURES": str(figures_file),
    }
    command = ["node", "tests/e2e/run.mjs", "large-session"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not figures_file.exists():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RuntimeError(f"the large-session scenario failed (exit {done.returncode}):\n{tail}")
    for line in done.stdout.splitlines():  # the steps and frame gaps of each opening
        if line.startswith("# ") and "steps after the click" in line:
            print(f"  {line[2:]}", flush=True)
    return json.loads(figures_file.read_text())


def spread(values: list[float]) -> str:
    """min / median / max, in ms."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:.0f} / {mid:.0f} / {high:.0f} ms"


def run(table: Table, runs: int = RUNS) -> list[dict[str, float]]:
    print(f"vscode: the large-session scenario (100,000 experiments), {runs} runs", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-vscode-") as tmp:
        for i in range(runs):
            figures = one_run(Path(tmp) / f"figures-{i}.json")
            print(f"  run {i + 1}: {json.dumps(figures)}", flush=True)
            results.append(figures)

    n = f"min / median / max of {runs} runs"
    for figure, key, note in ROWS:
        values = [r[key] for r in results]
        table.add("vscode", figure, spread(values), note.format(n=n))
    return results
