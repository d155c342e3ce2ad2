"""Shared bench plumbing: subprocess peers, percentiles, machine info. Not a test."""

from __future__ import annotations

import os
import platform
import time
import uuid

import numpy as np

from strands_mesh_ros.testing import Proc, free_port, python_proc, wait_for  # noqa: F401


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} | {cpu} | {os.cpu_count()} cores | Python {platform.python_version()} | {time.strftime('%Y-%m-%d')}"


def pct(values, *ps) -> list[float]:
    arr = np.asarray(values, dtype=float)
    return [float(np.percentile(arr, p)) for p in ps] if len(arr) else [float("nan")] * len(ps)


class Net:
    """A private mesh for one bench run: unique prefix, one hub endpoint."""

    def __init__(self) -> None:
        self.prefix = "b" + uuid.uuid4().hex[:8]
        self.endpoint = f"tcp/127.0.0.1:{free_port()}"

    def hub(self, **kw):
        from strands_mesh_ros.mesh.config import MeshConfig
        return MeshConfig(prefix=self.prefix, listen=(self.endpoint,), multicast_scouting=False, **kw)

    def member(self, **kw):
        from strands_mesh_ros.mesh.config import MeshConfig
        return MeshConfig(prefix=self.prefix, connect=(self.endpoint,), multicast_scouting=False, **kw)

    def peer_args(self) -> list[str]:
        return ["--prefix", self.prefix, "--connect", self.endpoint, "--no-multicast"]


CLK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    """The load averages, for the start and end of a run."""
    return "load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), s (/proc/<pid>/stat fields 14-15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def threads(pid: int) -> int:
    """How many threads a process runs (-1 if unknown)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1
