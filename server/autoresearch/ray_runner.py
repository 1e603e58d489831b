"""Runs on an existing Ray cluster: each run is one Ray Job submitted through the Jobs API.

The command is the job's entrypoint, the files of the checkout's commit (no .git) its
working_dir, `ray.gpus_per_experiment` its entrypoint_num_gpus; the run's environment goes with
it except CUDA_VISIBLE_DEVICES (Ray gives the job its GPUs). The job's output is copied into the
run's log as it comes, so extraction, the log view, triage and curves read it as a local run's.
Git, decisions and the tables stay here. `ray[default]` is an optional extra: imported only when
the executor is "ray".
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from . import repo
from .config import Config
from .runner import RunResult, RunSpec
from .slots import CUDA_ENV

ADDRESS_ENV = "RAY_ADDRESS"
TOKEN_ENV, TOKEN_PATH_ENV = "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")
# How long a stopped job may take to end before the run is given up as stopped anyway.
STOP_WAIT_S = 30.0


class RayUnavailable(RuntimeError):
    """The cluster cannot take the runs (address, token, resources); the message names the fix."""


class ClusterGpus(msgspec.Struct, frozen=True):
    used: float
    total: float


def address_of(config: Config) -> str:
    address = config.ray.address or os.environ.get(ADDRESS_ENV, "")
    if not address:
        raise RayUnavailable(
            'run.executor is "ray" but no cluster is named. Set ray.address in'
            ' autoresearch.toml to the cluster\'s Jobs API (e.g. "http://head:8265"), or'
            f" export {ADDRESS_ENV}."
        )
    return address


def auth_token() -> str | None:
    """Ray's own order: $RAY_AUTH_TOKEN, the file $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return token
    if path := os.environ.get(TOKEN_PATH_ENV, ""):
        try:
            return Path(path).expanduser().read_text().strip() or None
        except OSError as exc:
            raise RayUnavailable(
                f"{TOKEN_PATH_ENV}={path} cannot be read ({exc.strerror}). Point it at the"
                f" cluster's token file, or unset it."
            ) from None
    try:
        return DEFAULT_TOKEN_FILE.expanduser().read_text().strip() or None
    except OSError:
        return None  # a cluster without token authentication


def _headers() -> dict[str, str]:
    # Sent as a header ourselves: Ray's client sends its token only under RAY_AUTH_MODE=token.
    token = auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def connect(address: str) -> Any:
    """A JobSubmissionClient for `address`, checked by a request: an unreachable cluster or a
    refused token is a RayUnavailable naming the address."""
    try:
        from ray.exceptions import AuthenticationError
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise RayUnavailable(
            'run.executor is "ray" but Ray\'s job client is not installed here. Install it'
            " with `pip install 'autoresearch[ray]'` (ray[default]) in the daemon's Python."
        ) from None
    fix = (
        f" Check that the cluster's dashboard (Jobs API) answers at {address} (ray.address or"
        f" {ADDRESS_ENV})."
    )
    try:
        client = JobSubmissionClient(address, headers=_headers())
        client.list_jobs()
    except AuthenticationError as exc:
        first = str(exc).split("\n", 1)[0]
        raise RayUnavailable(
            f"The Ray cluster at {address} refused the token ({first}). Give this machine the"
            f" cluster's token: export {TOKEN_ENV}, or {TOKEN_PATH_ENV}, or put it in"
            " ~/.ray/auth_token (`ray get-auth-token` on the head prints it)."
        ) from None
    except (ConnectionError, OSError, ValueError, RuntimeError) as exc:
        why = str(exc).rstrip(".")
        raise RayUnavailable(f"Cannot reach the Ray cluster at {address}: {why}.{fix}") from None
    return client


def cluster_gpus(client: Any) -> ClusterGpus:
    """The cluster's GPUs: in all, from its live nodes (known at once), and in use, from the
    resource report (which a just-started cluster sends a few seconds late)."""
    base = client.get_address().rstrip("/")
    nodes = _get(f"{base}/api/v0/nodes?detail=false&limit=10000")["data"]["result"]["result"]
    total = sum(
        float(n.get("resources_total", {}).get("GPU", 0.0))
        for n in nodes
        if n.get("state") == "ALIVE"
    )
    report = _get(f"{base}/api/cluster_status")["data"]["clusterStatus"]
    usage = (report or {}).get("loadMetricsReport", {}).get("usage", {})
    used = float(usage.get("GPU", [0.0, 0.0])[0])
    return ClusterGpus(used=min(used, total), total=total)


def _get(url: str) -> Any:
    request = urllib.request.Request(url, headers=_headers())
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


class RayRunner:
    """`Runner` over a Ray cluster's Jobs API; the constructor checks the cluster answers."""

    def __init__(self, config: Config, root: Path | None = None, poll: float = 0.5) -> None:
        # Each job names the repository (and machine) whose loop submitted it: a loop started
        # again there stops what a killed one left running (stop_left).
        where = str(root.resolve()) if root else ""
        self.owner = {"autoresearch_root": where, "autoresearch_host": socket.gethostname()}
        self.address = address_of(config)
        self.gpus = config.ray.gpus_per_experiment
        self.start_timeout = config.ray.start_timeout
        self.poll = poll
        self.client = connect(self.address)
        self._lock = threading.Lock()  # the client's HTTP session is shared by the workers

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return getattr(self.client, name)(*args, **kwargs)

    def stop_left(self) -> list[str]:
        """Stop the jobs still running that a loop of this repository left (killed before it
        could stop them); called under the repository's loop lock, so none is a live loop's."""
        try:
            jobs = self._call("list_jobs")
        except (OSError, RuntimeError) as exc:
            raise RayUnavailable(
                f"Cannot list the jobs of the Ray cluster at {self.address}: {exc}"
            ) from None
        left = [
            j.submission_id
            for j in jobs
            if (j.metadata or {}).items() >= self.owner.items() and not j.status.is_terminal()
        ]
        for job in left:
            self._stop(job)
        return left

    def check_resources(self) -> ClusterGpus:
        """At start: one experiment's GPUs must exist in the cluster at all."""
        try:
            gpus = cluster_gpus(self.client)
        except (OSError, ValueError, KeyError) as exc:
            raise RayUnavailable(
                f"Cannot read the resources of the Ray cluster at {self.address}: {exc}."
            ) from None
        if self.gpus > gpus.total:
            raise RayUnavailable(
                f"ray.gpus_per_experiment is {self.gpus}, but the Ray cluster at {self.address}"
                f" has {gpus.total:g} GPU(s). Lower gpus_per_experiment, or add GPU nodes."
            )
        return gpus

    def run(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        on_tick: Callable[[float], None] | None = None,
    ) -> RunResult:
        try:
            return self._run(spec, cancel, on_tick)
        except RayUnavailable:
            raise
        except (OSError, RuntimeError, ValueError) as exc:  # the cluster went away meanwhile
            raise RayUnavailable(
                f"The Ray cluster at {self.address} failed during the run: {exc}. Check the"
                " cluster, then start the loop again (the experiment runs again)."
            ) from None

    def _run(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        on_tick: Callable[[float], None] | None,
    ) -> RunResult:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        job = self._submit(spec)
        ran_from: float | None = None  # when the job left PENDING
        written = 0
        timed_out = cancelled = log_limit = False
        with open(spec.log_path, "wb") as log:
            while True:
                status = self._call("get_job_status", job)
                written = self._copy_logs(job, log, written, spec.max_log_bytes)
                now = time.monotonic()
                if status.is_terminal():
                    break
                if ran_from is None and str(status.value) != "PENDING":
                    ran_from = now
                if ran_from is None and now - started > self.start_timeout:
                    self._stop(job)
                    raise RayUnavailable(
                        f"Ray job {job} waited {self.start_timeout:g} s (ray.start_timeout)"
                        f" without starting: the cluster at {self.address} has not given it"
                        f" {self.gpus} GPU(s). Free or add GPUs, lower ray.gpus_per_experiment"
                        " or parallel.workers, or raise ray.start_timeout."
                    )
                elapsed = now - (ran_from or now)
                if elapsed > spec.timeout:
                    timed_out = True
                elif cancel.is_set():
                    cancelled = True
                elif written > spec.max_log_bytes:
                    log_limit = True
                if timed_out or cancelled or log_limit:
                    self._stop(job)
                    break
                if on_tick:
                    on_tick(elapsed)
                time.sleep(self.poll)
            info = self._wait_terminal(job)
            written = self._copy_logs(job, log, written, spec.max_log_bytes)
            if log_limit:
                log.truncate(spec.max_log_bytes)
                log.seek(spec.max_log_bytes)
                log.write(b"\n[autoresearch: run.log cut at its size limit]\n")
            exit_code = _exit_code(info)
            if exit_code is None and not (timed_out or cancelled or log_limit):
                # Ray's own words (a runtime env that failed to set up, a lost node).
                log.write(f"\n[autoresearch: Ray job {job}: {info.message}]\n".encode())
        return RunResult(
            exit_code=exit_code,
            runtime_s=time.monotonic() - (ran_from or started),
            timed_out=timed_out,
            cancelled=cancelled,
            log_limit=log_limit,
        )

    def _submit(self, spec: RunSpec) -> str:
        env = {k: v for k, v in spec.env.items() if k != CUDA_ENV}
        with tempfile.TemporaryDirectory(prefix="autoresearch-ray-") as tmp:
            files = Path(tmp) / "files"
            files.mkdir()
            sha = repo.snapshot(spec.cwd, files)
            deadline = time.monotonic() + self.start_timeout
            try:
                while True:
                    try:
                        return self._call(
                            "submit_job",
                            entrypoint=spec.command,
                            submission_id=f"autoresearch-{uuid.uuid4().hex[:12]}",
                            runtime_env={"working_dir": str(files), "env_vars": env},
                            entrypoint_num_gpus=self.gpus,
                            metadata={**self.owner, "commit": sha, "marker": spec.marker},
                        )
                    except RuntimeError as exc:
                        # A head just started has no job agent yet: it says to try again.
                        if "try again" not in str(exc) or time.monotonic() > deadline:
                            raise
                        time.sleep(1.0)
            except (ValueError, RuntimeError) as exc:
                # Ray's words, whether its client or the head (an HTTP 500) refused the upload.
                if "exceeds the maximum size" not in str(exc):
                    raise
                raise RayUnavailable(
                    f"The files of commit {sha[:7]} are too large for a Ray job's working_dir"
                    f" ({exc}). Keep large files (data, checkpoints) out of git and read them"
                    " from a path every node of the cluster sees."
                ) from None

    def _copy_logs(self, job: str, log: Any, written: int, limit: int) -> int:
        """Append what the job printed since the last call; the Jobs API gives the whole log."""
        text = self._call("get_job_logs", job)
        data = text.encode("utf-8", errors="replace")
        if len(data) > written and written <= limit:
            log.write(data[written:])
            log.flush()
            return len(data)
        return written

    def _stop(self, job: str) -> None:
        try:
            self._call("stop_job", job)
        except RuntimeError:
            pass  # ended meanwhile

    def _wait_terminal(self, job: str) -> Any:
        deadline = time.monotonic() + STOP_WAIT_S
        while True:
            info = self._call("get_job_info", job)
            if info.status.is_terminal() or time.monotonic() > deadline:
                return info
            time.sleep(self.poll)


def _exit_code(info: Any) -> int | None:
    """The driver's exit code when Ray gives it; else 0 for a success, None for the rest."""
    code = getattr(info, "driver_exit_code", None)
    if code is not None:
        return int(code)
    return 0 if str(info.status.value) == "SUCCEEDED" else None


__all__ = ["ClusterGpus", "RayRunner", "RayUnavailable", "address_of", "auth_token", "connect"]
