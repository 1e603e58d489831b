"""Data and metric for the demo (off limits to the agent, like the seed's prepare.py)."""

import math
import random
import resource
from collections.abc import Callable


def split() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    rng = random.Random(42)
    points = []
    for _ in range(600):
        x = rng.uniform(-1, 1)
        points.append((x, math.sin(3 * x) + rng.gauss(0, 0.1)))
    return points[:480], points[480:]


def report(predict: Callable[[float], float], val_set: list[tuple[float, float]]) -> None:
    loss = sum((predict(x) - y) ** 2 for x, y in val_set) / len(val_set)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("---")
    print(f"val_loss: {loss:.6f}")
    print(f"peak_memory_mb: {peak_mb:.1f}")
