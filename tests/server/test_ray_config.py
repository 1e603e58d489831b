"""The [run] executor and [ray] settings: validated with errors that name the fix, and the
slots of a loop whose runs are Ray jobs (no Ray needed here: see test_ray.py for the cluster)."""

from __future__ import annotations

import pytest

from autoresearch import config as cfg
from autoresearch.config import Parallel
from autoresearch.slots import Slot, SlotError, plan_cluster

BASE = """
[metric]
name = "loss"
direction = "lower"
[run]
command = "python train.py"
{run}
[scope]
files = ["train.py"]
{rest}
"""


def parse(run: str = "", rest: str = "") -> cfg.Config:
    return cfg.parse(BASE.format(run=run, rest=rest))


def test_the_ray_settings_round_trip_and_default_to_local() -> None:
    assert parse().run.executor == "local"
    config = parse(
        'executor = "ray"', '[ray]\naddress = "http://head:8265"\ngpus_per_experiment = 2'
    )
    assert (config.run.executor, config.ray.address, config.ray.gpus_per_experiment) == (
        "ray",
        "http://head:8265",
        2,
    )
    assert cfg.parse(cfg.dumps(config)) == config


@pytest.mark.parametrize(
    ("run", "rest", "expected"),
    [
        ('executor = "slurm"', "", r"`run.executor` is .*slurm.*\"local\", \"ray\""),
        ("", "[ray]\ngpus_per_experiment = -1", "ray.gpus_per_experiment is -1; it must be 0 or"),
        ("", "[ray]\nstart_timeout = 0", "ray.start_timeout is 0; it must be a positive"),
        ("", '[ray]\naddress = "head:8265"', r"ray.address is 'head:8265'.*http://head:8265"),
        ("", "[ray]\nadress = 'http://x:1'", r"unknown setting `ray.adress`"),
    ],
)
def test_bad_ray_settings_name_the_fix(run: str, rest: str, expected: str) -> None:
    with pytest.raises(cfg.ConfigError, match=expected):
        parse(run, rest)


def test_auto_workers_follow_the_cluster_gpus_and_carry_no_local_gpu() -> None:
    auto = Parallel(workers="auto")
    assert plan_cluster(auto, 8.0, 2) == [Slot(1), Slot(2), Slot(3), Slot(4)]
    assert plan_cluster(auto, 3.0, 1) == [Slot(1), Slot(2), Slot(3)]
    assert plan_cluster(Parallel(workers=2), 0.0, 0) == [Slot(1), Slot(2)]
    assert all(not s.env().get("CUDA_VISIBLE_DEVICES") for s in plan_cluster(auto, 4.0, 1))
    with pytest.raises(SlotError, match="has 1 GPU.*Lower gpus_per_experiment"):
        plan_cluster(auto, 1.0, 2)
    with pytest.raises(SlotError, match="Set parallel.workers to a number"):
        plan_cluster(auto, 4.0, 0)
