"""Real-time scheduling for the processes on the e-stop path: the safety path ahead of bulk
work (opt-in).

On a loaded machine an e-stop waits for CPUs, not on the network: with a flood keeping both
cores of a 2-core box busy, 10 mesh robots reached the e-stop callback p99 92-129 ms after the
issue, although handling it takes ~0.5 ms of CPU, and raw Zenoh ackers with an issuer that
only stamps their answers had a p99 of 98-173 ms (bench/bench_mesh.py estop, docs/
benchmarks.md). ``nice``, autogroup ``nice`` and a cgroup CPU weight did not bring that under
10 ms; ``SCHED_FIFO`` for robots *and* issuer did. This module puts every thread of the calling
process (a robot, a bridge, ``strands-mesh estop``) under ``SCHED_FIFO`` at one priority (as
``chrt -f -a -p``), optionally after joining a cgroup that bounds how much CPU real-time
threads may take. Processes started afterwards inherit it too (start them with
``chrt --other 0``).

Why a cgroup: a real-time thread that never blocks starves every ordinary thread of its CPU
(here, a whole fleet of real-time robot processes once pushed the load to 400 and froze the
machine). With cgroup v1's ``cpu`` controller, ``cpu.rt_runtime_us`` / ``cpu.rt_period_us`` of
the group cap its real-time threads' share (e.g. 9000 / 10000: 90 % of each CPU); past it they
are throttled until the next period and the rest of the machine runs. Without such a group the
kernel's own cap applies (``/proc/sys/kernel/sched_rt_runtime_us``, 95 % by default).

Configured by the environment of the process (docs/safety.md, "Real-time priority"):

- ``STRANDS_MESH_RT_PRIORITY``: ``SCHED_FIFO`` priority, 1-99 (``chrt -f``'s). Unset: nothing
  changes.
- ``STRANDS_MESH_RT_CGROUP``: a cgroup directory to join first (its ``cgroup.procs`` is
  written), e.g. ``/sys/fs/cgroup/cpu/strands_robots`` with ``cpu.rt_runtime_us`` > 0.

This is a supplementary software stop's priority, never a substitute for the hardwired
emergency stop (IEC 60204-1 / ISO 13850).
"""

from __future__ import annotations

import gc
import os
import threading
from dataclasses import dataclass
from typing import Mapping

RT_PRIORITY_ENV = "STRANDS_MESH_RT_PRIORITY"
RT_CGROUP_ENV = "STRANDS_MESH_RT_CGROUP"


class RealtimeError(RuntimeError):
    """Real-time scheduling was asked for and could not be set; the message says why and what
    to change."""


@dataclass(frozen=True)
class RealtimeConfig:
    """``priority``: ``SCHED_FIFO`` priority 1-99; ``cgroup``: a cgroup directory to join first,
    or None."""

    priority: int
    cgroup: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or not 1 <= self.priority <= 99:
            raise ValueError(f"real-time priority must be an integer 1-99 (SCHED_FIFO), got {self.priority!r}")
        if self.cgroup is not None and not os.path.isdir(self.cgroup):
            raise ValueError(f"real-time cgroup {self.cgroup!r} is not a directory")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "RealtimeConfig | None":
        """The configuration in ``environ`` (default ``os.environ``), or None when
        ``STRANDS_MESH_RT_PRIORITY`` is unset or empty.

        Raises:
            ValueError: the priority is not an integer 1-99, or the cgroup is not a directory;
                the message names the variable.
        """
        env = os.environ if environ is None else environ
        raw = env.get(RT_PRIORITY_ENV, "").strip()
        if not raw:
            if env.get(RT_CGROUP_ENV, "").strip():
                raise ValueError(f"{RT_CGROUP_ENV} is set but {RT_PRIORITY_ENV} is not: set a SCHED_FIFO priority "
                                 f"(1-99) too")
            return None
        try:
            priority = int(raw)
        except ValueError:
            raise ValueError(f"{RT_PRIORITY_ENV}={raw[:40]!r}: must be an integer 1-99 (SCHED_FIFO priority)") from None
        try:
            return cls(priority, env.get(RT_CGROUP_ENV, "").strip() or None)
        except ValueError as exc:
            raise ValueError(f"{RT_PRIORITY_ENV} / {RT_CGROUP_ENV}: {exc}") from None


_lock = threading.Lock()


def enter_realtime(config: RealtimeConfig) -> str:
    """Join ``config.cgroup`` (when set), then run every thread of this process under
    ``SCHED_FIFO`` at ``config.priority``. Threads started afterwards inherit it (Linux threads
    inherit their creator's policy). Returns a one-line description for the log.

    Raises:
        RealtimeError: the cgroup could not be joined, or the policy could not be set (no
            ``CAP_SYS_NICE`` / ``RLIMIT_RTPRIO`` too low, or a cgroup with no real-time budget:
            ``cpu.rt_runtime_us`` is 0); the message names the cause and the setting to change.
    """
    with _lock:
        where = ""
        if config.cgroup is not None:
            try:
                with open(os.path.join(config.cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError as exc:
                raise RealtimeError(f"cannot join cgroup {config.cgroup} ({RT_CGROUP_ENV}): {exc.strerror}") from None
            where = f" in cgroup {config.cgroup}"
        param = os.sched_param(config.priority)
        done = 0
        for tid in _threads():
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, param)
                done += 1
            except ProcessLookupError:
                continue  # the thread ended meanwhile
            except PermissionError:
                budget = _rt_budget(config.cgroup)
                why = (f"cgroup {config.cgroup} has no real-time budget (cpu.rt_runtime_us = 0): give it one"
                       if budget == 0 else "needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least the priority "
                                           "(ulimit -r, limits.conf rtprio)")
                raise RealtimeError(f"cannot set SCHED_FIFO priority {config.priority} ({RT_PRIORITY_ENV}): {why}") from None
        return f"SCHED_FIFO priority {config.priority} for {done} threads{where}"


def enter_realtime_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """:func:`enter_realtime` with :meth:`RealtimeConfig.from_env`; None when not configured.

    Raises:
        ValueError: bad settings (see :meth:`RealtimeConfig.from_env`).
        RealtimeError: as :func:`enter_realtime`.
    """
    config = RealtimeConfig.from_env(environ)
    return enter_realtime(config) if config is not None else None


def freeze_heap() -> int:
    """Move every object the process holds now into the garbage collector's permanent
    generation (:func:`gc.freeze`), so that later full collections skip them. Call it once
    a robot or bridge process has started (imports, models, sessions, nodes), before it serves.

    Why: a full (generation 2) collection walks every tracked object, and a robot process
    holds ~41,000 once started; such a collection, which runs whenever enough objects have
    survived younger ones, took 17.3 ms in a mock robot process here (0.41 ms for generation
    1), and no thread of the process runs Python meanwhile: an e-stop arriving then halts
    ~17 ms late. After freezing, the same collection took 0.01 ms. The cost: an object created
    before the call and dropped later in a reference cycle is never freed (start-up objects
    live for the process anyway).

    Returns:
        How many objects were frozen (:func:`gc.get_freeze_count`).
    """
    gc.collect()  # what is already garbage is freed, not frozen
    gc.freeze()
    return gc.get_freeze_count()


def thaw_heap() -> None:
    """Undo :func:`freeze_heap` (:func:`gc.unfreeze`) once the process starts to shut down, so
    that its shutdown collects objects as it would have without the freeze (and, in a process
    that exits through interpreter finalisation, such as ``python -m strands_mesh_ros.peer``,
    finalisation too; the node executables and the CLI end without it,
    :func:`~strands_mesh_ros.robot.process.end_process`)."""
    gc.unfreeze()


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread only
        return [threading.get_native_id()]


def _rt_budget(cgroup: str | None) -> int | None:
    """The group's ``cpu.rt_runtime_us`` (cgroup v1), or None when unknown."""
    if cgroup is None:
        return None
    try:
        with open(os.path.join(cgroup, "cpu.rt_runtime_us")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None
