"""Experiments as jobs on a real Ray cluster: one Ray head on 127.0.0.1 with two logical GPUs
and token authentication, started once for the module and always stopped after it.

The loop runs its experiments as Ray jobs (two at once with workers = "auto"), a job killed
mid-run is a crash and the loop goes on, the timeout stops the job, a job the cluster cannot
give its GPUs stops the loop after ray.start_timeout, and an unreachable address or a wrong
token stops the start with a message naming the address, having written nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psutil
import pytest
from conftest import EVAL, ScriptedProposer, alive_with_env, git, make_config, make_repo, set_lr
from lsp_fixtures import daemon, write_config

from autoresearch import results_tsv
from autoresearch.agents.base import EditContext, EditOutcome
from autoresearch.experiment import Experiment
from autoresearch.loop import Loop, Progress
from autoresearch.protocol import GpuStatus, LoopState, Method
from autoresearch.runner import RunSpec
from autoresearch.session_factory import open_session

pytest.importorskip("ray.job_submission", reason="the ray extra: pip install -e '.[ray]'")

from autoresearch.ray_gpu import RAY_GPU_NAME, RayGpuSource
from autoresearch.ray_runner import RayRunner, RayUnavailable, connect

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
# Every process of the test's head (and of its jobs) carries this in its environment.
HEAD_ENV = "AUTORESEARCH_TEST_RAY_HEAD"

# Prints where it ran, then scores as conftest's TRAIN; SLEEP = n sleeps in experiment n.
TRAIN = """\
import os, time
LR = 0.5
DEPTH = 4
SLEEP = 0
print("ran", os.environ.get("AUTORESEARCH_RUN"), "seed", os.environ.get("AUTORESEARCH_SEED"),
      "worker", os.environ.get("AUTORESEARCH_WORKER"), "cwd", os.getcwd(), flush=True)
if SLEEP and os.environ.get("AUTORESEARCH_RUN") == str(SLEEP):
    print("sleeping", flush=True)
    time.sleep(120)
print(f"score: {abs(LR - 0.3) + DEPTH * 0.01:.6f}")
"""


class Head(msgspec.Struct):
    address: str
    token: str
    marker: str


def _free_port() -> int:
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free now (all held open together while they are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _head_processes(marker: str, temp: Path) -> list[psutil.Process]:
    """This head's processes: those with the marker in their environment or its temp dir on
    their command line, and all their descendants (Ray's agents and workers rename themselves
    and wipe their environment, so only their ancestry tells them)."""
    roots = alive_with_env(HEAD_ENV, marker)
    for p in psutil.process_iter():
        try:
            if str(temp) in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                roots.append(p)
        except psutil.Error:
            continue
    found = {p.pid: p for p in roots}
    for p in roots:
        try:
            found.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            continue
    return [p for p in found.values() if _alive(p)]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stop_head(marker: str, temp: Path) -> None:
    """Every process of this head only (never `ray stop`, which would stop any Ray here)."""
    procs = _head_processes(marker, temp)
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    marker = secrets.token_hex(8)
    token = secrets.token_hex(16)
    temp = Path(tempfile.mkdtemp(prefix="ar-ray-", dir="/tmp"))  # Ray's socket paths are short
    ports = iter(_free_ports(8))
    port, dashboard = next(ports), next(ports)
    env = {**os.environ, HEAD_ENV: marker, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_ADDRESS", None)
    command = [
        RAY,
        "start",
        "--head",
        "--num-gpus=2",
        "--num-cpus=1",
        f"--port={port}",
        f"--dashboard-port={dashboard}",
        "--dashboard-host=127.0.0.1",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=true",
        f"--temp-dir={temp}",
        # Each port its own, free: nothing collides with another Ray on this machine.
        f"--ray-client-server-port={next(ports)}",
        f"--dashboard-agent-listen-port={next(ports)}",
        f"--dashboard-agent-grpc-port={next(ports)}",
        f"--metrics-export-port={next(ports)}",
        f"--runtime-env-agent-port={next(ports)}",
        f"--node-manager-port={next(ports)}",
        "--disable-usage-stats",
    ]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            pytest.fail(f"ray start failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        yield Head(address=f"http://127.0.0.1:{dashboard}", token=token, marker=marker)
    finally:
        for _ in range(3):  # what a dying worker started meanwhile goes in the next round
            _stop_head(marker, temp)
            if not (left := _head_processes(marker, temp)):
                break
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"the test's Ray head outlived it: {left}"


@pytest.fixture(autouse=True)
def token_env(head: Head, monkeypatch: pytest.MonkeyPatch) -> None:
    """This side has the cluster's token as users give it: RAY_AUTH_TOKEN."""
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"train.py": TRAIN, "evaluate.py": EVAL})


def config_dict(**sections: dict[str, object]) -> dict[str, object]:
    raw: dict[str, object] = {
        "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
        "scope": {"files": ["train.py"], "off_limits": ["evaluate.py"]},
        "agent": {"kind": "sweep", "seed": 1},
    }
    raw.update(sections)
    return raw


def ray_config(head: Head, **overrides: object):  # type: ignore[no-untyped-def]
    return make_config(
        run__executor="ray",
        run__command=f"{sys.executable} train.py",
        ray__address=head.address,
        **overrides,
    )


def set_sleep(n: int):  # type: ignore[no-untyped-def]
    def edit(root: Path) -> str:
        path = root / "train.py"
        path.write_text(path.read_text().replace("SLEEP = 0", f"SLEEP = {n}"))
        return f"SLEEP -> {n}"

    return edit


def jobs(head: Head) -> dict[str, str]:
    """submission id -> status of every job the cluster has seen."""
    client = connect(head.address)
    return {j.submission_id: str(j.status.value) for j in client.list_jobs()}


def until(check, timeout: float = 90.0, what: str = "") -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def nothing_written(repo: Path) -> None:
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (repo / ".autoresearch").exists()
    assert not (repo / "results.tsv").exists()
    assert git(repo, "branch", "--list") == "* main"


class Pair:
    """Two LR edits, the first two experiments in flight at once (a barrier)."""

    name = "scripted"

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=60)

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        if ctx.number <= 2:
            self.barrier.wait()
        value = {1: "0.35", 2: "0.45", 3: "0.25", 4: "0.4"}[ctx.number]  # never a parent's
        return EditOutcome(description=set_lr(value)(ctx.root))

    def observe(self, experiment: Experiment) -> None:
        pass


def test_a_parallel_loop_runs_its_experiments_as_ray_jobs_two_at_once(
    head: Head, repo: Path
) -> None:
    config = ray_config(head, parallel__workers="auto")
    events: list = []
    session = open_session(
        repo,
        config,
        4,
        None,
        owner="test",
        emit=events.append,
        gpu=lambda: GpuStatus(available=False, message="no local GPU"),
    )
    try:
        # "auto": as many jobs at once as the cluster's 2 GPUs hold, no local GPU given.
        assert [(s.worker, s.gpus) for s in session.loop.slots] == [(1, ()), (2, ())]  # type: ignore[attr-defined]
        session.loop.proposer = Pair()
        history = session.loop.run()
    finally:
        session.release()
    said = [e.text for e in events if isinstance(e, Progress)]
    assert [e.number for e in history] == [0, 1, 2, 3, 4], said
    assert all(e.metric is not None and e.status in ("keep", "discard") for e in history)
    rows = results_tsv.read(repo / "results.tsv")
    assert len(rows) == 5 and rows[0].status == "keep"
    for exp in history:
        log = (repo / ".autoresearch" / "runs" / f"{session.loop.tag}-{exp.number}.log").read_text()
        # The job's own output, from the commit's files (not the checkout): the run's number
        # and seed, Ray's working_dir, and the metric extracted from it.
        assert f"ran {exp.number} seed 0" in log, log
        assert "runtime_resources/working_dir_files" in log, log
        assert f"score: {exp.metric:.6f}" in log
        assert exp.worker in (None, 1, 2) and exp.gpus == []
    states = [e for e in events if isinstance(e, LoopState)]
    assert any(len([w for w in s.workers if w.number is not None]) == 2 for s in states)
    assert set(jobs(head).values()) == {"SUCCEEDED"}
    assert git(repo, "status", "--porcelain") == ""


def test_a_job_killed_mid_run_is_a_crash_and_the_loop_goes_on(head: Head, repo: Path) -> None:
    proposer = ScriptedProposer([set_sleep(1), set_lr("0.35")])
    loop = Loop(repo, ray_config(head), proposer, runner=RayRunner(ray_config(head)), limit=2)
    thread = threading.Thread(target=loop.run)
    thread.start()

    def sleeper() -> list[psutil.Process]:
        found = alive_with_env(HEAD_ENV, head.marker)
        return [p for p in found if _job_process(p, "1")]  # experiment #1's train.py

    try:
        victims = until(sleeper, what="experiment #1's job process")
        log = repo / ".autoresearch" / "runs"
        until(lambda: "sleeping" in "".join(p.read_text() for p in log.glob("*-1.log")))
        for p in victims:  # type: ignore[attr-defined]
            p.kill()
    finally:
        thread.join(120)
    assert not thread.is_alive()
    history = loop.ledger.experiments(loop.tag)
    assert [e.number for e in history] == [0, 1, 2]
    assert history[1].status == "crash", history[1]
    assert history[2].status == "keep" and history[2].metric is not None
    assert git(repo, "status", "--porcelain") == ""


def _env(p: psutil.Process, run: str) -> bool:
    try:
        return p.environ().get("AUTORESEARCH_RUN") == run
    except psutil.Error:
        return False


def _job_process(p: psutil.Process, run: str) -> bool:
    """Experiment `run`'s train.py. A process found alive may have exited (a zombie) by now:
    read on a busy machine, its command line raised ZombieProcess."""
    try:
        return "train.py" in " ".join(p.cmdline()) and _env(p, run)
    except psutil.Error:
        return False


def test_the_timeout_stops_the_job_and_records_a_timeout_crash(head: Head, repo: Path) -> None:
    config = ray_config(head, run__timeout=6)
    proposer = ScriptedProposer([set_sleep(1)])
    before = set(jobs(head))
    loop = Loop(repo, config, proposer, runner=RayRunner(config), limit=1)
    history = loop.run()
    assert [e.status for e in history] == ["keep", "crash"]
    assert history[1].crash_kind == "timeout" and "timed out after 6 s" in history[1].reason
    ran = {k: v for k, v in jobs(head).items() if k not in before}
    assert sorted(ran.values()) == ["STOPPED", "SUCCEEDED"]
    # Its process is gone, not left sleeping on the cluster.
    until(lambda: not [p for p in alive_with_env(HEAD_ENV, head.marker) if _env(p, "1")])


def test_a_job_the_cluster_cannot_start_stops_the_loop_after_start_timeout(
    head: Head, repo: Path
) -> None:
    client = connect(head.address)
    hog = client.submit_job(entrypoint="sleep 300", entrypoint_num_gpus=2)  # both GPUs taken
    try:
        until(lambda: str(client.get_job_status(hog).value) == "RUNNING", what="the GPU hog")
        config = ray_config(head, ray__start_timeout=3)
        loop = Loop(repo, config, ScriptedProposer([]), runner=RayRunner(config), limit=1)
        with pytest.raises(RayUnavailable) as caught:
            loop.run()
        text = str(caught.value)
        assert "waited 3 s (ray.start_timeout) without starting" in text
        assert head.address in text and "1 GPU(s)" in text
        assert loop.ledger.experiments(loop.tag) == []
    finally:
        client.stop_job(hog)
    until(lambda: set(jobs(head).values()) <= {"SUCCEEDED", "STOPPED", "FAILED"})


def test_more_gpus_per_experiment_than_the_cluster_has_stops_the_start(
    head: Head, repo: Path
) -> None:
    config = ray_config(head, ray__gpus_per_experiment=3)
    with pytest.raises(RayUnavailable, match=r"gpus_per_experiment is 3, but .* has 2 GPU"):
        open_session(repo, config, 1, None, owner="t", emit=lambda e: None, gpu=_no_gpu)
    nothing_written(repo)


def _no_gpu() -> GpuStatus:
    return GpuStatus(available=False, message="none")


def test_an_unreachable_address_stops_the_start_naming_it(repo: Path) -> None:
    address = f"http://127.0.0.1:{_free_port()}"
    config = make_config(run__executor="ray", ray__address=address)
    with pytest.raises(RayUnavailable) as caught:
        open_session(repo, config, 1, None, owner="t", emit=lambda e: None, gpu=_no_gpu)
    assert f"Cannot reach the Ray cluster at {address}" in str(caught.value)
    nothing_written(repo)


def test_a_wrong_token_stops_the_start_naming_the_address(
    head: Head, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    with pytest.raises(RayUnavailable) as caught:
        open_session(repo, ray_config(head), 1, None, owner="t", emit=lambda e: None, gpu=_no_gpu)
    text = str(caught.value)
    assert f"The Ray cluster at {head.address} refused the token" in text
    assert "RAY_AUTH_TOKEN" in text
    nothing_written(repo)


def test_the_token_file_works_and_no_address_is_named(
    head: Head, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    token = tmp_path / "auth_token"
    token.write_text(head.token + "\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    assert connect(head.address).list_jobs() is not None
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")  # Ray's default file, ~/.ray/auth_token
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text(head.token)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert connect(head.address).list_jobs() is not None
    with pytest.raises(RayUnavailable, match="no cluster is named.*ray.address.*RAY_ADDRESS"):
        RayRunner(make_config(run__executor="ray"))
    monkeypatch.setenv("RAY_ADDRESS", head.address)  # the address from the environment
    assert RayRunner(make_config(run__executor="ray")).address == head.address


def test_the_gpu_source_shows_the_cluster_gpus_in_use(head: Head) -> None:
    client = connect(head.address)
    source = RayGpuSource(head.address)
    try:
        status = source.read()
        assert status.available and len(status.gpus) == 2, status
        assert "Ray cluster" in status.message
        hog = client.submit_job(entrypoint="sleep 300", entrypoint_num_gpus=1)
        try:
            until(
                lambda: sum(g.utilization > 0 for g in source.read().gpus) == 1,
                what="one GPU in use",
            )
        finally:
            client.stop_job(hog)
            until(lambda: client.get_job_status(hog).is_terminal(), what="the hog stopped")
    finally:
        source.close()


async def test_the_daemon_shows_the_cluster_gpus_for_a_repository_run_on_ray(
    head: Head, repo: Path
) -> None:
    """The status bar asks for the GPUs with the session's root on the daemon's start: a root
    whose config runs on Ray turns the daemon's monitor to the cluster."""
    raw = config_dict(run={"command": "python train.py", "executor": "ray"})
    raw["ray"] = {"address": head.address}
    write_config(repo, raw)
    async with daemon() as client:
        status = await client.request(Method.GPUS, {"root": str(repo)})
        assert status["available"], status
        assert [g["name"] for g in status["gpus"]] == [RAY_GPU_NAME, RAY_GPU_NAME]
        assert f"Ray cluster {head.address}" in status["message"]


def test_stop_now_stops_the_running_job(head: Head, repo: Path) -> None:
    config = ray_config(head)
    loop = Loop(repo, config, ScriptedProposer([set_sleep(1)]), runner=RayRunner(config), limit=1)
    before = set(jobs(head))
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        runs = repo / ".autoresearch" / "runs"
        until(lambda: "sleeping" in "".join(p.read_text() for p in runs.glob("*-1.log")))
        loop.stop(now=True)
    finally:
        thread.join(120)
    assert not thread.is_alive()
    ran = {k: v for k, v in jobs(head).items() if k not in before}
    assert sorted(ran.values()) == ["STOPPED", "SUCCEEDED"]  # the baseline, then #1 stopped
    until(lambda: not [p for p in alive_with_env(HEAD_ENV, head.marker) if _env(p, "1")])
    assert git(repo, "status", "--porcelain") == ""


def test_a_job_gets_its_gpus_from_ray_and_its_exit_code_comes_back(head: Head, repo: Path) -> None:
    """The local slot's CUDA_VISIBLE_DEVICES never goes with the job: Ray gives it one of the
    cluster's GPUs; the rest of the environment goes; the driver's exit code is the run's."""
    config = ray_config(head)
    show = "import os; print('cuda', os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ['MINE'])"
    spec = RunSpec(
        command=f'{sys.executable} -c "{show}"; exit 3',
        cwd=repo,
        log_path=repo.parent / "job.log",
        timeout=60,
        env={"CUDA_VISIBLE_DEVICES": "7", "MINE": "passed", "AUTORESEARCH_WORKER": "2"},
    )
    result = RayRunner(config).run(spec, threading.Event())
    assert (result.exit_code, result.timed_out, result.ok) == (3, False, False)
    log = spec.log_path.read_text()
    assert any(f"cuda {g} passed" in log for g in "01"), log


def test_a_loop_started_again_stops_the_job_a_killed_loop_left_running(
    head: Head, repo: Path
) -> None:
    """`autoresearch run` killed with SIGKILL mid-run cannot stop its job; the next start in
    the same repository does (the jobs name the repository they were submitted for)."""
    raw = config_dict(run={"command": f"{sys.executable} train.py", "executor": "ray"})
    raw["ray"] = {"address": head.address}
    write_config(repo, raw)
    train = (repo / "train.py").read_text()  # the baseline (#0) sleeps: the job left behind
    (repo / "train.py").write_text(
        train.replace("SLEEP = 0", "SLEEP = 1").replace("str(SLEEP)", "'0'")
    )
    git(repo, "commit", "-qam", "the baseline sleeps")
    before = set(jobs(head))
    loop = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", "--loop", "1", "--dir", str(repo)],
        stdout=(out := (repo.parent / "run.out").open("w")),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        runs = repo / ".autoresearch" / "runs"
        waiting = lambda: "sleeping" in "".join(p.read_text() for p in runs.glob("*-0.log"))  # noqa: E731
        until(waiting, what=f"the baseline's job: {(repo.parent / 'run.out').read_text()}")
    finally:
        loop.kill()
        loop.wait(30)
        out.close()
    left = [k for k, v in jobs(head).items() if k not in before]
    assert [jobs(head)[k] for k in left] == ["RUNNING"]  # the kill left it
    session = open_session(repo, None, 1, None, owner="t", emit=lambda e: None, gpu=_no_gpu)
    session.release()
    until(lambda: jobs(head)[left[0]] == "STOPPED", what="the left job stopped")
