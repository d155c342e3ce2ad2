"""Stepping overhead of MujocoDriver's physics thread against a bare ``mj_step`` loop.

All run the same model (as the driver loaded it), one MjData each, in the same process,
as fast as they can (the driver with ``realtime=False``, nobody calling it); rounds alternate.
Two raw loops: one ``mj_step(m, d)`` call per step (the plain Python loop), and
``mj_step(m, d, nstep)`` with the driver's batch size (what the driver calls under its lock),
which isolates the driver's own bookkeeping from the saving of batching.
Rates are steps per second of the stepping thread's own CPU time
(``pthread_getcpuclockid``), so other processes on a shared machine do not skew the ratio;
wall-clock rates are printed too. The ratio is raw/driver: 1.10 means the driver's loop
costs 10 % more per step (goal <= 1.10). No assertions.

    python bench/bench_sim_step.py [--model arm6] [--seconds 0.5] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mujoco  # noqa: E402

from strands_mesh_ros.drivers.mujoco_sim import FREE_RUN_BATCH, MujocoDriver  # noqa: E402


def raw_rate(model: mujoco.MjModel, seconds: float, nstep: int = 1) -> tuple[float, float]:
    """(CPU, wall) steps/s of ``for _: mj_step(m, d, nstep)``, checking the clock every 1000 steps."""
    d = mujoco.MjData(model)
    step = mujoco.mj_step
    calls = max(1, 1000 // nstep)
    n = 0
    c0, t0 = time.thread_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(calls):
            step(model, d, nstep)
        n += calls * nstep
    return n / (time.thread_time() - c0), n / (time.perf_counter() - t0)


def driver_rate(driver: MujocoDriver, seconds: float) -> tuple[float, float]:
    """(CPU, wall) steps/s of the driver's physics thread over ``seconds``."""
    driver.start()
    thread = driver._thread
    assert thread is not None and thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)
    n0, c0, t0 = driver.steps, time.clock_gettime(clock), time.perf_counter()
    threading.Event().wait(seconds)
    n1, c1, t1 = driver.steps, time.clock_gettime(clock), time.perf_counter()
    driver.close()
    return (n1 - n0) / (c1 - c0), (n1 - n0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="arm6")
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    model = MujocoDriver("bench", args.model, realtime=False).model
    print(f"model {args.model}: nq={model.nq} nu={model.nu} timestep={model.opt.timestep} s")
    batch = FREE_RUN_BATCH
    print("steps/s per CPU-second of the stepping thread (wall-clock steps/s in brackets)")
    print(f"{'round':>5} {'raw mj_step':>19} {f'raw nstep={batch}':>19} {'driver':>19} {'raw/drv':>8} {'rawN/drv':>9}")
    rows = []
    for r in range(args.rounds):
        raw = raw_rate(model, args.seconds)
        rawn = raw_rate(model, args.seconds, batch)
        drv = driver_rate(MujocoDriver("bench", args.model, realtime=False), args.seconds)
        rows.append((*raw, *rawn, *drv))
        print(f"{r + 1:>5} {raw[0]:>9.0f} [{raw[1]:>7.0f}] {rawn[0]:>9.0f} [{rawn[1]:>7.0f}] "
              f"{drv[0]:>9.0f} [{drv[1]:>7.0f}] {raw[0] / drv[0]:>8.3f} {rawn[0] / drv[0]:>9.3f}")
    m = [statistics.median(col) for col in zip(*rows)]
    print(f"{'median':>6} {m[0]:>8.0f} [{m[1]:>7.0f}] {m[2]:>9.0f} [{m[3]:>7.0f}] "
          f"{m[4]:>9.0f} [{m[5]:>7.0f}]")
    # Each round pairs the loops closely in time, so the median of the per-round ratios is
    # the least disturbed by other load; the ratio of the best rounds approximates an idle machine.
    paired = statistics.median(r[0] / r[4] for r in rows), statistics.median(r[2] / r[4] for r in rows)
    best = max(r[0] for r in rows) / max(r[4] for r in rows), max(r[2] for r in rows) / max(r[4] for r in rows)
    print(f"raw/driver, median of per-round ratios: {paired[0]:.3f} vs the per-step Python loop, "
          f"{paired[1]:.3f} vs {batch}-step C batches")
    print(f"raw/driver, best round of each:         {best[0]:.3f} vs the per-step Python loop, "
          f"{best[1]:.3f} vs {batch}-step C batches   (goal <= 1.10)")


if __name__ == "__main__":
    main()
