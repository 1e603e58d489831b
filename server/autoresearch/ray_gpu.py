"""The GPU status of a Ray cluster, for the status bar when run.executor is "ray".

Ray counts logical GPUs, in use or free, not their utilisation or memory: each GPU of the
cluster is one `GpuInfo` named "Ray cluster", at 100% when a job holds it and 0% when free
(a fraction of a GPU held reads as that fraction on the first one not fully used).
"""

from __future__ import annotations

import math
from pathlib import Path

from .protocol import GpuInfo, GpuStatus
from .ray_runner import RayUnavailable, address_of, cluster_gpus, connect

RAY_GPU_NAME = "Ray cluster"


class RayGpuSource:
    """`GpuSource` over a Ray cluster's dashboard; never raises from `read()`."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._client: object | None = None

    def read(self) -> GpuStatus:
        try:
            if self._client is None:
                self._client = connect(self.address)
            gpus = cluster_gpus(self._client)
        except (RayUnavailable, OSError, ValueError, KeyError) as exc:
            self._client = None  # connect again next time: the cluster may come back
            return GpuStatus(available=False, message=f"Ray cluster {self.address}: {exc}")
        return status_of(self.address, gpus.used, gpus.total)

    def close(self) -> None:
        self._client = None


def status_of(address: str, used: float, total: float) -> GpuStatus:
    count = math.floor(total)
    if count == 0:
        return GpuStatus(available=False, message=f"The Ray cluster at {address} has no GPU")
    infos = []
    left = used
    for index in range(count):
        share = min(max(left, 0.0), 1.0)
        left -= share
        infos.append(
            GpuInfo(
                index=index,
                name=RAY_GPU_NAME,
                utilization=round(share * 100, 1),
                memory_used_mib=0.0,
                memory_total_mib=0.0,
            )
        )
    busy = f"{used:g}/{total:g}"
    return GpuStatus(
        available=True, message=f"Ray cluster {address}: {busy} GPUs in use", gpus=infos
    )


def source_for(root: Path) -> RayGpuSource | None:
    """The cluster's GPU source when `root`'s autoresearch.toml runs on Ray, else None (a
    config that does not load, or names no cluster, leaves the local GPUs shown)."""
    from . import config as cfg

    try:
        config = cfg.load(root)
        return RayGpuSource(address_of(config)) if config.run.executor == "ray" else None
    except (cfg.ConfigError, RayUnavailable, OSError):
        return None


__all__ = ["RAY_GPU_NAME", "RayGpuSource", "source_for", "status_of"]
