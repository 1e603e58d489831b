"""Requests outside a running loop: bad input, GPU status, big ledgers, plain folders."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest
from lsp_fixtures import config, daemon, make_repo
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcMethodNotFound

from autoresearch.experiment import Experiment
from autoresearch.protocol import GpuInfo, GpuProcess, GpuStatus, Method


async def test_malformed_requests_name_the_field_and_the_daemon_serves_on(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    cases = [
        (Method.STATE, {}, "root: missing"),
        (Method.STATE, {"root": 42}, "root: expected str, got int"),
        (Method.STATE, None, "params: expected object, got null"),
        (Method.STATE, {"root": "relative/path"}, "root must be an absolute path"),
        (Method.STATE, {"root": str(tmp_path / "absent")}, "is not a directory"),
        (Method.STATE, {"root": str(root), "colour": "red"}, "colour: unknown field"),
        (Method.EXPERIMENTS, {"root": str(root), "limit": "ten"}, "limit: expected int"),
        (Method.EXPERIMENTS, {"root": str(root), "offset": -1}, "offset must not be negative"),
        (Method.STOP, {"root": str(root), "now": "yes"}, "now: expected bool"),
        (Method.FILE_AT, {"root": str(root), "commit": "HEAD"}, "path: missing"),
        (Method.CHANGES, {"root": str(root)}, "commit"),
        (Method.START, {"root": str(root), "loop": 0, "config": config()}, "loop must be"),
        (Method.START, {"root": str(root), "tag": "a b", "config": config()}, "tag 'a b'"),
        (
            Method.START,
            {"root": str(root), "config": {"run": {"command": "true"}}},
            "config.metric: missing",
        ),
        (
            Method.START,
            {"root": str(root), "config": {**config(), "metric": {"name": "x", "direction": 1}}},
            "config.metric.direction",
        ),
    ]
    async with daemon() as client:
        for method, params, expected in cases:
            with pytest.raises(JsonRpcInvalidParams) as bad:
                await client.request(method, params)
            assert expected in bad.value.message, (method, params)
            state = await client.request(Method.STATE, {"root": str(root)})
            assert state["phase"] == "idle"
        with pytest.raises(JsonRpcMethodNotFound):
            await client.request("autoresearch/nonsense", {"root": str(root)})
        # Understood but impossible: a server error whose message says why.
        with pytest.raises(JsonRpcException, match="is not in this repository"):
            await client.request(Method.CHANGES, {"root": str(root), "commit": "deadbeef"})
        with pytest.raises(JsonRpcException, match="No autoresearch.toml"):
            await client.request(Method.START, {"root": str(root)})
        assert (await client.request(Method.STATE, {"root": str(root)}))["mode"] == "none"


async def test_a_plain_folder_gets_an_idle_state_and_an_empty_page(tmp_path: Path) -> None:
    async with daemon() as client:
        state = await client.request(Method.STATE, {"root": str(tmp_path)})
        assert state["mode"] == "none" and state["phase"] == "idle"
        assert "not a git repository" in state["message"]
        page = await client.request(Method.EXPERIMENTS, {"root": str(tmp_path)})
        assert page["total"] == 0 and page["items"] == []
        with pytest.raises(JsonRpcException, match="not a git repository"):
            await client.request(Method.START, {"root": str(tmp_path), "config": config()})


def _gpu(utilization: float, used: float) -> GpuStatus:
    proc = GpuProcess(pid=4242, used_mib=used, name="python")
    gpu = GpuInfo(0, "Fake H100", utilization, used, 81559.0, 41.0, 120.0, [proc])
    return GpuStatus(available=True, message="1 fake GPU", gpus=[gpu])


def _write(path: Path, status: GpuStatus) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(status))
    os.replace(tmp, path)  # atomic, as gpu_fake.py asks


async def test_fake_gpu_changes_reach_the_client_as_gpu_status(tmp_path: Path) -> None:
    source = tmp_path / "gpu.json"
    _write(source, _gpu(10.0, 1000.0))
    async with daemon(env={"AUTORESEARCH_FAKE_GPU": str(source)}) as client:
        first = await client.until(lambda: client.of(Method.GPU_STATUS))
        assert first[0] == msgspec.to_builtins(_gpu(10.0, 1000.0))
        assert await client.request(Method.GPUS, {}) == first[0]

        _write(source, _gpu(93.0, 40000.0))
        changed = await client.until(
            lambda: [s for s in client.of(Method.GPU_STATUS) if s["gpus"][0]["utilization"] == 93]
        )
        assert changed[0]["gpus"][0]["memory_used_mib"] == 40000.0
        assert changed[0]["gpus"][0]["processes"] == [
            {"pid": 4242, "used_mib": 40000.0, "name": "python"}
        ]
        time.sleep(1.5)  # about 1 Hz, and only on change: an unchanged file sends nothing
        assert len(client.of(Method.GPU_STATUS)) == 2


async def test_ten_thousand_experiments_page_from_memory(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    state_dir = root / ".autoresearch"
    state_dir.mkdir()
    encode = msgspec.json.Encoder().encode
    lines = [
        encode(
            Experiment(
                number=n,
                commit=f"{n:040x}",
                status="keep" if n % 7 == 0 else "discard",
                metric=1.0 / (n + 1),
                description=f"experiment {n}",
                tag="big",
            )
        )
        for n in range(10_000)
    ]
    (state_dir / "experiments.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    async with daemon() as client:
        first = await client.request(Method.EXPERIMENTS, {"root": str(root), "limit": 100})
        assert first["tag"] == "big" and first["total"] == 10_000
        assert [e["number"] for e in first["items"][:3]] == [9999, 9998, 9997]
        started = time.monotonic()
        for offset in range(0, 10_000, 500):
            page = await client.request(
                Method.EXPERIMENTS, {"root": str(root), "offset": offset, "limit": 200}
            )
            assert page["items"][0]["number"] == 9999 - offset
        # 20 pages of 200: generous bound, it only catches re-reading the file per request.
        assert time.monotonic() - started < 10
        state = await client.request(Method.STATE, {"root": str(root)})
        assert state["sessions"][0]["total"] == 10_000
        # One answer of several megabytes, and a large request, cross the wire whole.
        everything = await client.request(
            Method.EXPERIMENTS, {"root": str(root), "limit": 10_000, "newest_first": False}
        )
        assert [e["number"] for e in everything["items"]] == list(range(10_000))
        text = "steer " * 50_000
        assert (await client.request(Method.GUIDANCE, {"root": str(root), "text": text}))["ok"]
        assert (state_dir / "guidance.md").read_text() == text.strip() + "\n"


GPU_TRAIN = """\
import json, os, sys, time

# This run "allocates" 2 GiB on the fake GPU under its own pid, long enough to be sampled.
X = 1.0
status = {"available": True, "message": "1 fake GPU", "gpus": [{
    "index": 0, "name": "Fake H100", "utilization": 99.0, "memory_used_mib": 2048.0,
    "memory_total_mib": 81559.0, "processes": [{"pid": os.getpid(), "used_mib": 2048.0}]}]}
path = os.environ["AUTORESEARCH_FAKE_GPU"]
with open(path + ".tmp", "w") as f:
    json.dump(status, f)
os.replace(path + ".tmp", path)
time.sleep(2.5)
print("val_loss: 0.5")
"""


async def test_gpu_memory_of_the_run_is_recorded_as_its_peak(tmp_path: Path) -> None:
    source = tmp_path / "gpu.json"
    _write(source, GpuStatus(available=True, message="1 fake GPU", gpus=[]))
    root = make_repo(tmp_path / "repo", {"train.py": GPU_TRAIN})
    async with daemon(env={"AUTORESEARCH_FAKE_GPU": str(source)}) as client:
        await client.request(Method.START, {"root": str(root), "config": config(), "loop": 1})
        await client.until(lambda: client.of(Method.EXPERIMENT_RECORDED))
        baseline = client.of(Method.EXPERIMENT_RECORDED)[0]["experiment"]
        assert baseline["peak_gpu_gb"] == 2.0
        # Measured, not reported by the run: the GPU peak is its memory.
        assert baseline["memory_gb"] == 2.0
        await client.request(Method.STOP, {"root": str(root), "now": True})
