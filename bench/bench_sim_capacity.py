"""How many arm6 sims keep real time at 500 Hz physics on one CPU core.

The process is pinned to one CPU (``os.sched_setaffinity``), so every physics thread shares
that core. For N = 1, 2, 4, ... it starts N real-time ``MujocoDriver("arm6")`` robots
(timestep 0.002 s), lets them settle, then measures each robot's achieved simulation rate
(simulated s per wall-clock s) over a window. It stops at the first N where the slowest
robot falls below 0.98x real time and prints the table. The robots hold their home pose
(stepping cost is what is measured; the driver pacing is the same when they move).
No assertions.

    python bench/bench_sim_capacity.py [--cpu 0] [--window 2] [--pace 0.002]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver  # noqa: E402

THRESHOLD = 0.98


def measure(n: int, window: float, pace: float) -> tuple[float, float, int, float]:
    """(slowest rate, mean rate, overruns, process CPU share) of ``n`` real-time arm6 sims."""
    robots = [MujocoDriver(f"arm{i}", "arm6", realtime=True, timestep=0.002, pace_period=pace) for i in range(n)]
    try:
        for r in robots:
            r.start()
        threading.Event().wait(0.5)  # settle: thread start-up, first ticks
        over0 = sum(r.overruns for r in robots)
        s0 = [r.sim_time for r in robots]
        c0, t0 = time.process_time(), time.monotonic()
        threading.Event().wait(window)
        s1 = [r.sim_time for r in robots]
        c1, t1 = time.process_time(), time.monotonic()
        rates = [(b - a) / (t1 - t0) for a, b in zip(s0, s1)]
        return min(rates), sum(rates) / n, sum(r.overruns for r in robots) - over0, (c1 - c0) / (t1 - t0)
    finally:
        for r in robots:
            r.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    ap.add_argument("--window", type=float, default=2.0, help="measurement window, s")
    ap.add_argument("--pace", type=float, default=0.002, help="pace_period, simulated s per tick")
    ap.add_argument("--max", type=int, default=256)
    args = ap.parse_args()

    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # before any thread starts: the physics threads inherit it
    print(f"pinned to CPU {cpu}; arm6, timestep 0.002 s (500 Hz), pace_period {args.pace} s, "
          f"window {args.window} s, threshold {THRESHOLD}x real time")
    print(f"{'N':>4} {'slowest':>8} {'mean':>6} {'overruns':>8} {'CPU':>5}")
    n, last_ok = 1, 0
    while n <= args.max:
        slowest, mean, overruns, cpu_share = measure(n, args.window, args.pace)
        print(f"{n:>4} {slowest:>8.3f} {mean:>6.3f} {overruns:>8} {cpu_share:>5.2f}", flush=True)
        if slowest < THRESHOLD:
            break
        last_ok = n
        n = n * 2 if n < 8 else n + max(4, n // 4)
    print(f"largest N measured in real time (slowest >= {THRESHOLD}x): {last_ok}")


if __name__ == "__main__":
    main()
