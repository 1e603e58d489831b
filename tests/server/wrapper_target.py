"""A target shaped like issue #15's: a wrapper script whose hyperparameters are constants, calling
a trainer module it does not own, printing several metric-like lines.

Pure Python and instant: the trainer crashes when N_EMBD is not a multiple of N_HEAD (as
attention does), and its test loss moves slightly with AUTORESEARCH_SEED.
"""

from __future__ import annotations

from pathlib import Path

from conftest import make_repo

WRAPPER = """\
import os

from trainer import train

N_EMBD = 48
N_HEAD = 4
LEARNING_RATE = 0.01
MAX_STEPS = 100
ACTIVATION = "relu"

seed = int(os.environ.get("AUTORESEARCH_SEED", "0"))
result = train(N_EMBD, N_HEAD, LEARNING_RATE, MAX_STEPS, ACTIVATION, seed)
print(f"eval_step: {MAX_STEPS}")
print(f"train_loss: {result['train']:.6f}")
print(f"training_seconds: {0.01:.2f}")
print(f"test_loss: {result['test']:.6f}")
"""

TRAINER = """\
import math


def train(n_embd, n_head, lr, max_steps, activation, seed):
    if n_embd % n_head:
        raise ValueError(f"embed_dim {n_embd} must be divisible by num_heads {n_head}")
    quality = (math.log10(lr) + 2.5) ** 2 * 0.1 + abs(n_embd - 64) / 640 + 10 / max_steps
    quality += 0.0 if activation == "gelu" else 0.01
    noise = (seed % 3) * 0.0001
    return {"train": quality * 0.8, "test": quality + noise}
"""


def make_target(root: Path) -> Path:
    return make_repo(root, {"run.py": WRAPPER, "trainer.py": TRAINER})
