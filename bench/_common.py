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


def _say(line: str) -> None:
    """One stdout line in one write(2): a print() writes the text and the newline apart, and
    rcutils' log lines (stderr, the same pipe) can land in between."""
    os.write(1, (line + "\n").encode())


def halt_clock(driver_cls):
    """``driver_cls`` (MockDriver, MujocoDriver, ...) that prints ``HALTED <id> <unix time>`` the
    moment its ``emergency_stop()`` has halted the actuators (first call after a resume only),
    and ``RESUMED <id> <unix time>`` after ``resume()``: the halt observed at the driver, for
    bench/bench_halt.py. The timestamp is taken after the driver's own halt returned."""
    import threading as _threading

    class HaltClock(driver_cls):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self._clock_lock = _threading.Lock()
            self._clock_halted = False

        def emergency_stop(self) -> None:
            super().emergency_stop()
            t = time.time()
            with self._clock_lock:
                first, self._clock_halted = not self._clock_halted, True
            if first:
                _say(f"HALTED {self.robot_id} {t:.6f}")

        def resume(self) -> None:
            super().resume()
            with self._clock_lock:
                self._clock_halted = False
            _say(f"RESUMED {self.robot_id} {time.time():.6f}")

    HaltClock.__name__ = f"HaltClock{driver_cls.__name__}"
    return HaltClock


def make_driver(kind: str, robot_id: str, halt: bool = False):
    """A bench robot's driver: ``mock`` (MockDriver) or ``mujoco`` (MujocoDriver arm6, real time);
    wrapped by :func:`halt_clock` when ``halt``."""
    if kind == "mujoco":
        from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver as cls
    else:
        from strands_mesh_ros.drivers.mock import MockDriver as cls
    return (halt_clock(cls) if halt else cls)(robot_id)
