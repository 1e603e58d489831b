"""Curves and notices through the real daemon: a detached loop's curvePoints and notice events
pass through its control socket and the daemon's relay (attach.py) to the client, and the
`autoresearch/curve` request reads a stored curve back. Real daemon over stdio, real processes."""

from __future__ import annotations

import sys
from pathlib import Path

from lsp_fixtures import daemon, make_repo
from test_detached import STARTED, _no_detached_leftovers, gone, until

from autoresearch import control
from autoresearch.protocol import Method

__all__ = ["_no_detached_leftovers"]

TRAIN = """\
import time
X = 1.0
for step in range(0, 31):
    val = 3.0 / (1 + step) + abs(X - 0.7)
    print(f"step {step}: train loss 9.0, val loss {val:.5f}", flush=True)
    time.sleep(0.1)
print(f"val_loss: {abs(X - 0.7):.6f}")
"""


def config() -> dict:
    return {
        "metric": {
            "name": "val_loss",
            "direction": "lower",
            "curve": r"^step (\d+): train loss [-+0-9.eE]+, val loss ([-+0-9.eE]+)",
        },
        "run": {"command": f"{sys.executable} train.py", "timeout": 60},
        "scope": {"files": ["train.py"]},
        "agent": {"kind": "sweep", "seed": 3, "params": [{"name": "X", "low": 0.1, "high": 5}]},
        "stop": {"max_experiments": 2},
    }


async def test_a_detached_loops_curve_and_stop_notice_reach_the_client(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": TRAIN})
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": config(), "detach": True})
        pid = control.ask(root, "hello").pid
        STARTED.append(pid)
        stops = await client.until(
            lambda: [n for n in client.of(Method.NOTICE) if n["kind"] == "stopped"], timeout=180
        )
        assert "2 experiments were run (stop.max_experiments 2)" in stops[0]["text"]
        points = client.of(Method.CURVE_POINTS)
        tag = points[0]["tag"]
        for number in (0, 1, 2):
            steps = [s for p in points if p["number"] == number for s in p["steps"]]
            assert steps == list(range(31)), f"#{number}: live points in order, each once"
        stored = await client.request(Method.CURVE, {"root": str(root), "number": 1, "tag": tag})
        assert stored["steps"] == list(range(31)) and len(stored["values"]) == 31
        live = [v for p in points if p["number"] == 1 for v in p["values"]]
        assert stored["values"] == live
        none = await client.request(Method.CURVE, {"root": str(root), "number": 99})
        assert none["steps"] == [] and none["tag"] == tag
        final = await client.until(
            lambda: [s for s in client.of(Method.STATE_CHANGED) if s["phase"] == "stopped"]
        )
        assert final[-1]["message"] == "stopped: 2 experiments were run (stop.max_experiments 2)"
    until(lambda: gone(pid), "the detached loop to end")


async def test_a_bad_curve_request_is_refused_naming_the_field(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": TRAIN})
    async with daemon() as client:
        for params, field in (({"number": 1, "tag": "../x"}, "tag"), ({"number": -1}, "number")):
            try:
                await client.request(Method.CURVE, {"root": str(root), **params})
            except Exception as exc:  # the JSON-RPC error, as the editor gets it
                assert field in str(exc)
            else:
                raise AssertionError(f"{params} was accepted")
