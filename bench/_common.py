"""Shared bench plumbing: subprocess peers, percentiles, machine info. Not a test."""

from __future__ import annotations

import itertools
import json
import os
import platform
import time
import uuid

import numpy as np

from strands_mesh_ros.testing import (  # noqa: F401
    Proc, free_port, python_proc, remove_cgroup, set_rt_budget, wait_for,
)


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


class StateTap:
    """Every ``P/*/state`` sample ``mesh`` receives, stamped on arrival (monotonic s):
    ``samples`` [(t, key, payload)], ``seen`` the keys heard at least once."""

    def __init__(self, mesh, prefix: str) -> None:
        self.samples: list[tuple[float, str, bytes]] = []
        self.seen: set[str] = set()
        mesh.subscribe(f"{prefix}/*/state", self._on_state, raw=True)

    def _on_state(self, key: str, payload: bytes) -> None:
        self.samples.append((time.monotonic(), key, payload))
        self.seen.add(key)

    def window(self, start: int, t0: float, t1: float) -> list[tuple[float, str, bytes]]:
        """The samples from index ``start`` on that arrived between ``t0`` and ``t1``."""
        return [s for s in self.samples[start:] if t0 <= s[0] <= t1]


def stream_counts(window, ids, seq_of) -> dict:
    """Loss figures of a window of state samples from the robots ``ids``, each numbering its
    states with ``seq_of(state dict) -> int`` (consecutive per robot): ``received`` distinct
    numbers, ``published`` (last - first + 1, summed), ``gaps`` numbers never received, ``dups``,
    ``silent`` robots with none, ``bad`` unreadable samples, ``lags`` arrival - the state's ``t``
    (s, one host's clock), ``counts`` distinct numbers per robot."""
    wall = time.time() - time.monotonic()  # monotonic -> wall clock (same machine)
    per: dict[str, list[int]] = {i: [] for i in ids}
    lags, bad = [], 0
    for tm, key, payload in window:
        try:
            st = json.loads(payload)
            per[key.split("/")[-2]].append(int(seq_of(st)))
            lags.append(tm + wall - st["t"])
        except (KeyError, ValueError, TypeError):
            bad += 1
    out = {"received": 0, "published": 0, "gaps": 0, "dups": 0, "silent": 0, "bad": bad, "lags": lags, "counts": []}
    for seqs in per.values():
        u = sorted(set(seqs))
        out["counts"].append(len(u))
        if not u:
            out["silent"] += 1
            continue
        out["dups"] += len(seqs) - len(u)
        out["received"] += len(u)
        out["published"] += u[-1] - u[0] + 1
        out["gaps"] += sum(b - a - 1 for a, b in itertools.pairwise(u))
    return out


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


class RealtimeGroups:
    """Real-time set-up for a bench run (docs/safety.md, "Real-time priority"), as a deployment
    would make it: a cgroup-v1 ``cpu`` group with a bounded real-time budget for the robot
    processes (``env`` is what they are started with: ``STRANDS_MESH_RT_PRIORITY`` and
    ``STRANDS_MESH_RT_CGROUP``), which the issuing process (this one) joins too with
    :meth:`join_issuer`. ``reason`` says why it cannot be set up here (then ``env`` is empty).
    :meth:`close` puts this process back to ordinary scheduling and removes the group.

    Budget: ``rt_runtime_us`` of each ``rt_period_us`` per CPU (9 ms of 10 ms: a runaway
    real-time thread leaves 10 % of every CPU to the rest of the machine, and a throttled group
    waits at most 1 ms; 40 ms of 100 ms throttled the bench's robots, docs/safety.md).
    Processes this one starts while real-time start as ordinary ones (:class:`Proc`).
    """

    ROOT = "/sys/fs/cgroup/cpu"

    def __init__(self, priority: int = 10, rt_runtime_us: int = 9_000, rt_period_us: int = 10_000) -> None:
        self.env: dict[str, str] = {}
        self.reason: str | None = None
        self.priority = priority
        self._dirs: list[str] = []
        self._joined = False
        self.robots_dir = f"{self.ROOT}/strands_bench_{os.getpid()}_rt"
        if not os.path.exists(f"{self.ROOT}/cpu.rt_runtime_us"):
            self.reason = f"no cgroup-v1 cpu controller with real-time group scheduling at {self.ROOT}"
            return
        try:
            os.mkdir(self.robots_dir)
            self._dirs.append(self.robots_dir)
            set_rt_budget(self.robots_dir, rt_runtime_us, rt_period_us)
        except OSError as exc:
            self.reason = f"cannot create cgroups under {self.ROOT}: {exc.strerror}"
            self.close()
            return
        self.env = {"STRANDS_MESH_RT_PRIORITY": str(priority), "STRANDS_MESH_RT_CGROUP": self.robots_dir}
        self.label = (f"robots and issuer SCHED_FIFO {priority} in a cgroup with {rt_runtime_us // 1000} ms of every "
                      f"{rt_period_us // 1000} ms real-time budget")

    def join_issuer(self) -> str:
        """This process (the issuer) joins the group and runs ``SCHED_FIFO`` as the robots do
        (:func:`strands_mesh_ros.robot.realtime.enter_realtime`); returns what was done."""
        from strands_mesh_ros.robot.realtime import RealtimeConfig, enter_realtime

        self._joined = True
        return "issuer: " + enter_realtime(RealtimeConfig(self.priority, self.robots_dir))

    def release(self, pid: int) -> None:
        """Put process ``pid`` back in the root group (a process inherits its parent's group)."""
        with open(f"{self.ROOT}/cgroup.procs", "w") as f:
            f.write(str(pid))

    def close(self) -> None:
        if self._joined:  # ordinary scheduling again, before the group goes
            for tid in os.listdir("/proc/self/task"):
                try:
                    os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
                except ProcessLookupError:
                    pass
            self._joined = False
        for d in reversed(self._dirs):
            try:
                remove_cgroup(d)
            except OSError:
                pass
        self._dirs.clear()
