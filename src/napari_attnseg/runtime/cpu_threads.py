"""Keep torch's CPU threads within the CPU time this process may use (a container's CPU quota).

torch starts one intra-op thread per core it sees. It sees the CPU affinity mask (taskset, a cpuset),
but not a cgroup CPU quota (docker ``--cpus``, a Kubernetes CPU limit, some SLURM set-ups): there it
starts a thread for every core of the host, and the threads contend for the quota. On this project's
build machine, in a cgroup with a 1-CPU quota, segmenting a 1024² image took 0.42-0.44 s with torch's
2 threads and 0.34-0.38 s with this fit (three interleaved runs each); on large hosts with small
quotas the loss is much larger.

Before each prediction and fine-tune the engine lowers the calling thread's torch thread count to the
quota (rounded down, at least 1), unless ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set: those are
the user's choice. Nothing changes where there is no quota.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path, PurePosixPath

import torch

log = logging.getLogger(__name__)

_QUOTA: dict[str, int | None] = {}


def cpu_quota(root: Path = Path("/")) -> int | None:
    """Whole CPUs this process's cgroups allow (the tightest quota on its path), or None if no quota."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0":  # cgroup v2: cpu.max holds "max PERIOD" or "QUOTA PERIOD"
            bases, files = ("sys/fs/cgroup", "sys/fs/cgroup/unified"), ("cpu.max",)
        elif "cpu" in controllers.split(","):  # cgroup v1
            bases, files = (f"sys/fs/cgroup/{controllers}", "sys/fs/cgroup/cpu"), ("cpu.cfs_quota_us",
                                                                                  "cpu.cfs_period_us")
        else:
            continue
        for base in bases:
            for folder in _ancestors(root / base, path):
                limit = _limit(folder, files)
                if limit is not None:
                    limits.append(limit)
    return max(1, math.floor(min(limits))) if limits else None


def _ancestors(base: Path, path: str) -> list[Path]:
    """``base/path`` and every folder above it up to ``base``."""
    parts = PurePosixPath(path.strip() or "/").parts[1:]
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _limit(folder: Path, files: tuple[str, ...]) -> float | None:
    try:
        if len(files) == 1:
            quota, period = (folder / files[0]).read_text().split()[:2]
        else:
            quota, period = ((folder / name).read_text().strip() for name in files)
        if quota in ("max", "-1"):
            return None
        quota_us, period_us = int(quota), int(period)
    except (OSError, ValueError):  # no such file here, or not what a cgroup writes
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def fit_threads_to_cpu_quota() -> int:
    """Lower the calling thread's torch thread count to the CPU quota if it is above; return the count.

    The quota is read once per process. torch keeps its thread count per thread, so this runs in the
    thread that computes (napari's workers are other threads than the one that started the engine).
    """
    if "cpus" not in _QUOTA:
        _QUOTA["cpus"] = cpu_quota()
        if _QUOTA["cpus"] is not None:
            log.info("this process may use %d CPU(s) (cgroup quota)", _QUOTA["cpus"])
    quota = _QUOTA["cpus"]
    if quota is not None and not (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        if torch.get_num_threads() > quota:
            torch.set_num_threads(quota)
    return torch.get_num_threads()
