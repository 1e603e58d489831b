"""A tiny, dependency-free training run for the autoresearch demo.

A two-layer network learns y = sin(3x) + noise with mini-batch SGD, in pure Python, in about a
second. The constants below are what the sweep agent tunes; evaluate.py holds the data and the
metric and is off limits, as prepare.py is in the seed.
"""

import math
import random

from evaluate import report, split

LEARNING_RATE = 0.01
HIDDEN = 8
EPOCHS = 60
BATCH_SIZE = 32
WEIGHT_DECAY = 0.001
INIT_SCALE = 0.5


def train() -> None:
    rng = random.Random(0)
    train_set, val_set = split()
    w1 = [rng.gauss(0, INIT_SCALE) for _ in range(HIDDEN)]
    b1 = [0.0] * HIDDEN
    w2 = [rng.gauss(0, INIT_SCALE) for _ in range(HIDDEN)]
    b2 = 0.0

    def forward(x: float) -> tuple[list[float], float]:
        h = [math.tanh(w1[j] * x + b1[j]) for j in range(HIDDEN)]
        return h, sum(w2[j] * h[j] for j in range(HIDDEN)) + b2

    for _ in range(EPOCHS):
        rng.shuffle(train_set)
        for start in range(0, len(train_set), BATCH_SIZE):
            batch = train_set[start : start + BATCH_SIZE]
            g1, gb1, g2, gb2 = [0.0] * HIDDEN, [0.0] * HIDDEN, [0.0] * HIDDEN, 0.0
            for x, y in batch:
                h, out = forward(x)
                err = 2 * (out - y) / len(batch)
                gb2 += err
                for j in range(HIDDEN):
                    g2[j] += err * h[j]
                    back = err * w2[j] * (1 - h[j] * h[j])
                    g1[j] += back * x
                    gb1[j] += back
            for j in range(HIDDEN):
                w1[j] -= LEARNING_RATE * (g1[j] + WEIGHT_DECAY * w1[j])
                b1[j] -= LEARNING_RATE * gb1[j]
                w2[j] -= LEARNING_RATE * (g2[j] + WEIGHT_DECAY * w2[j])
            b2 -= LEARNING_RATE * gb2
            if not math.isfinite(b2):
                raise FloatingPointError("training diverged: lower LEARNING_RATE")
    report(lambda x: forward(x)[1], val_set)


if __name__ == "__main__":
    train()
