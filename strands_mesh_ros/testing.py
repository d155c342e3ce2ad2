"""Helpers for tests and benchmarks: waiting on conditions, free ports, child processes.

No sleep-based synchronisation: :func:`wait_for` polls a condition on an Event with a
timeout, and child readiness is a ``READY`` line on stdout. Each child runs in its own
process group and is killed with its children on close (as free_fleet's managed_process).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01, what: str = "condition") -> T:
    """Return the first truthy ``predicate()`` value; raise AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        tick.wait(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A subprocess in its own process group, killed with its children on close.

    ``ready`` waits for a line starting with ``READY`` on stdout (the rest of stdout is
    collected in ``lines``).
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        # A child inherits its parent's scheduling policy: started from a real-time process (a
        # bench's issuer, robot/realtime.py) it would run real-time too, and a busy one (a
        # flooder) would starve the machine. chrt (util-linux) starts it as an ordinary process.
        cmd = ["chrt", "--other", "0", *args] if os.sched_getscheduler(0) != os.SCHED_OTHER else args
        self.args = args
        self.p = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
            cwd=cwd or str(REPO), start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
            if line.startswith("READY"):
                self._ready.set()
        with self._cond:
            self._cond.notify_all()

    def ready(self, timeout: float = 30.0) -> "Proc":
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready.is_set() and self._reader.is_alive() and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
        if not self._ready.is_set():
            self.close()
            raise AssertionError(f"{self.args} not ready in {timeout} s; output:\n" + "\n".join(self.lines[-40:]))
        return self

    def wait_line(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{needle!r} not printed in {timeout} s; output:\n" + "\n".join(self.lines[-40:]))
                self._cond.wait(left)

    def signal(self, sig: int) -> None:
        os.killpg(self.p.pid, sig)

    def close(self) -> int | None:
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGCONT)
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        self._reader.join(5)
        return self.p.returncode


def python_proc(*args: str, env: dict[str, str] | None = None) -> Proc:
    """Run this interpreter with ``args`` (e.g. ``"-m", "strands_mesh_ros.peer", "arm1"``)."""
    return Proc([sys.executable, *args], env=env)


def set_rt_budget(group: str, runtime_us: int, period_us: int) -> None:
    """Give cgroup-v1 ``cpu`` group ``group`` a real-time budget of ``runtime_us`` per
    ``period_us`` (µs, per CPU) (docs/safety.md, "Real-time priority").

    Raises:
        OSError: not permitted, or more than the parent group has left to give (EINVAL).
    """
    with open(os.path.join(group, "cpu.rt_period_us"), "w") as f:
        f.write(str(period_us))
    with open(os.path.join(group, "cpu.rt_runtime_us"), "w") as f:
        f.write(str(runtime_us))


def remove_cgroup(group: str) -> None:
    """Move every process still in cgroup ``group`` back to its parent group (a group with
    members cannot be removed), then remove it.

    Raises:
        OSError: the group could not be read or removed.
    """
    parent = os.path.dirname(group.rstrip("/"))
    with open(os.path.join(group, "cgroup.procs")) as f:
        pids = f.read().split()
    for pid in pids:
        try:
            with open(os.path.join(parent, "cgroup.procs"), "w") as f:
                f.write(pid)
        except OSError:
            pass  # it ended meanwhile; rmdir says if anything is left
    os.rmdir(group)
