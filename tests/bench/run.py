"""`make bench`: the daemon's figures, printed as a table and kept in tests/bench/RESULTS.md.

    python tests/bench/run.py                  # everything (about 8 minutes on 2 cores)
    python tests/bench/run.py overhead soak    # some of them
    python tests/bench/run.py --no-write       # print only

Figures, not pass/fail: each line says what it is compared with. The quality bars (DESIGN.md
section 7) are: loop overhead within 1.5x of a bare shell loop; memory flat over 1,000
experiments; pages instant at 10,000 experiments; extraction cost independent of run.log size.
`vscode` runs the end-to-end suite's large-session scenario (issue #21's targets in the real
VS Code): it needs `bash tests/e2e/setup.sh` and `make vsix`, which `make bench` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import footprint  # noqa: E402
import overhead  # noqa: E402
import parallel  # noqa: E402
import pruning  # noqa: E402
import scale  # noqa: E402
import soak  # noqa: E402
import vscode  # noqa: E402
from common import Table, machine  # noqa: E402

BENCHES = {
    "overhead": overhead.run,
    "scale": scale.run,
    "soak": soak.run,
    "footprint": footprint.run,
    "pruning": pruning.run,
    "parallel": parallel.run,
    "vscode": vscode.run,
}
RESULTS = HERE / "RESULTS.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHES)}")
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {RESULTS.name}")
    args = parser.parse_args()
    names = args.names or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; pick from {', '.join(BENCHES)}")
    table = Table()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    where = f"{machine()}; load average at the start {load}"
    print(f"machine: {where}\n", flush=True)
    started = time.perf_counter()
    for name in names:
        BENCHES[name](table)
        print(flush=True)
    elapsed = time.perf_counter() - started
    print(table.markdown())
    print(f"all benchmarks: {elapsed:.0f} s")
    if not args.no_write and names == list(BENCHES):
        RESULTS.write_text(report(table, where, elapsed), encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(HERE.parent.parent)}")
    return 0


def report(table: Table, where: str, elapsed: float) -> str:
    today = dt.date.today().isoformat()
    return f"""# Benchmark results

The last `make bench` run ({today}, {elapsed:.0f} s), on: {where}.
Regenerate with `make bench` (figures vary from run to run by a few tens of percent on a
shared machine; ratios measured in one run are the figures to compare).

{table.markdown()}
How each figure is measured: see the docstrings of `tests/bench/overhead.py`, `scale.py`,
`soak.py`, `footprint.py`, `pruning.py`, `parallel.py` and `vscode.py`; for the VS Code figures,
also tests/bench/VSCODE_RESULTS.md (where the time goes).
"""


if __name__ == "__main__":
    sys.exit(main())
