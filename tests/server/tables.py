"""results.tsv files as other autoresearch tools write them, built the way they look in public
repositories: more columns in their own order, upper-case statuses, -999 for a failed run."""

from __future__ import annotations

# Eleven columns, the commit not first and the description not last (as in a tool that logs
# throughput and model size per run).
ELEVEN = [
    "timestamp",
    "commit",
    "val_bpb",
    "val_loss",
    "params_m",
    "tokens_per_s",
    "train_s",
    "memory_gb",
    "status",
    "description",
    "notes",
]


def eleven_columns(baseline_commit: str, rows: int = 12) -> str:
    """A session of `rows` experiments whose baseline is `baseline_commit` (7 characters)."""
    lines = ["\t".join(ELEVEN)]
    best = 1.02
    for n in range(rows):
        commit = baseline_commit if n == 0 else f"{0xA0B1C2D + n * 7919:07x}"
        if n == 0:
            status, bpb, what = "keep", best, "baseline"
        elif n % 4 == 0:
            status, bpb, what = "crash", 0.0, f"depth {8 + n} (OOM)"
        elif n % 3 == 0:
            best -= 0.004
            status, bpb, what = "keep", best, f"warmup {n * 10} steps"
        else:
            status, bpb, what = "discard", best + 0.01, f"lr x{1 + n / 10:.1f}"
        lines.append(
            "\t".join(
                [
                    f"2026-03-08T{n // 6:02d}:{n * 9 % 60:02d}:00",
                    commit,
                    f"{bpb:.6f}",
                    f"{bpb * 0.69:.4f}",
                    "124.4",
                    f"{410000 + n * 1000}",
                    "300.1",
                    "44.2" if status != "crash" else "0.0",
                    status,
                    what,
                    "" if n % 2 else "seed 1337",
                ]
            )
        )
    return "\n".join(lines) + "\n"


def baseline_keep_revert(rows: int = 66) -> str:
    """Statuses BASELINE / KEEP / REVERT and -999 for a run that failed (reverted too)."""
    lines = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription"]
    best = 0.998
    for n in range(rows):
        commit = f"{0x1F2E3D4 + n * 104729:07x}"
        if n == 0:
            status, bpb, what = "BASELINE", best, "baseline: 8 layers, 512 dim"
        elif n % 7 == 0:
            status, bpb, what = "REVERT", -999.0, f"n_head {n} (crashed: CUDA OOM)"
        elif n % 5 == 0:
            best -= 0.003
            status, bpb, what = "KEEP", best, f"matrix lr {0.02 + n / 1000:.3f}"
        else:
            status, bpb, what = "REVERT", best + 0.002 * (n % 4 + 1), f"window {n * 64}"
        lines.append(f"{commit}\t{bpb:.6f}\t{0.0 if bpb < 0 else 43.9:.1f}\t{status}\t{what}")
    return "\n".join(lines) + "\n"
