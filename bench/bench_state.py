"""State stream capacity (issue 3): K robots x 50 Hz state reaching a subscriber in another
process. Prints figures; asserts nothing.

How to read: for each K a fresh subprocess runs ``Fleet(robots=[K robots, state_rate 50])``
(mock drivers, or ``--driver mujoco`` arm6 sims) in ONE process, i.e. one Zenoh session
shared by K Mesh peers, each publishing its State on ``<prefix>/<id>/state`` from its own
state thread; this process subscribes ``<prefix>/*/state`` and, over a window that starts once
every robot is flowing, counts per robot by the State ``seq`` field (each Mesh numbers its
states 0, 1, 2, ...). "nominal" is K x 50 Hz x window; "rx/nominal" is the achieved share of
it (the ratio to read: 1.00 = every robot at full rate); "gaps" are sequence numbers published
but never received (= loss; the goal is 0); "min Hz" is the slowest robot's achieved rate (a
Mesh that falls behind skips a beat rather than bursting, so an overloaded publisher shows up
as a lower rate with no gaps, loss in transit as gaps); "lag" is State.t -> arrival here;
"fleet CPU" is the fleet process's utime+stime over the window in % of ONE core (200 % = a
whole 2-core box). On a shared machine check the load averages printed at start and end.

    python bench/bench_state.py [--ks 10,25,50,100] [--rate 50] [--duration 10] [--driver mock|mujoco]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import Net, StateTap, cpu_seconds, load, machine, pct, python_proc, stream_counts, threads, wait_for

from strands_mesh_ros.mesh.mesh import Mesh

START_TIMEOUT = 60.0
"""s for a Fleet process to print READY; longer is reported as 'did not come up' and ends the run."""

FLEET = r"""
import json, signal, sys, threading
from strands_mesh_ros.fleet import Fleet
from strands_mesh_ros.mesh.config import MeshConfig
prefix, endpoint, robots = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
cfg = MeshConfig(prefix=prefix, connect=(endpoint,), multicast_scouting=False)
with Fleet(robots=robots, config=cfg):
    print("READY", flush=True)
    done.wait()
"""





def step(k: int, rate: float, duration: float, warmup: float, driver: str) -> dict:
    net = Net()
    tag = f"k{k}_{net.prefix[-4:]}_"
    ids = [f"{tag}{i}" for i in range(k)]
    spec = {"driver": driver, "state_rate": rate}
    if driver == "mujoco":
        spec.update(model="arm6", realtime=True)
    robots = [{"id": i, **spec} for i in ids]
    with Mesh("counter", config=net.hub()) as sub:
        tap = StateTap(sub, net.prefix)
        t_up = time.monotonic()
        try:
            fleet = python_proc("-c", FLEET, net.prefix, net.endpoint, json.dumps(robots)).ready(START_TIMEOUT)
        except AssertionError:
            raise AssertionError(f"the Fleet of {k} robots did not print READY within {START_TIMEOUT:.0f} s") from None
        try:
            keys = {f"{net.prefix}/{i}/state" for i in ids}
            wait_for(lambda: keys <= tap.seen, 60, interval=0.1, what=f"state from all {k} robots")
            up = time.monotonic() - t_up
            threading.Event().wait(warmup)
            pid = fleet.p.pid
            start = len(tap.samples)
            t0, c0, s0 = time.monotonic(), cpu_seconds(pid), time.process_time()
            threading.Event().wait(duration)
            t1, c1, s1 = time.monotonic(), cpu_seconds(pid), time.process_time()
            nthreads = threads(pid)
            window = tap.window(start, t0, t1)
        finally:
            fleet.close()
    c = stream_counts(window, ids, lambda st: st["seq"])
    dur = t1 - t0
    return {"k": k, "dur": dur, "up": up, **{k_: c[k_] for k_ in ("received", "published", "gaps", "dups", "silent", "bad")},
            "nominal": k * rate * dur, "min_hz": min(c["counts"]) / dur,
            "fleet_cpu": 100 * (c1 - c0) / dur, "sub_cpu": 100 * (s1 - s0) / dur, "threads": nthreads,
            "lag": pct(c["lags"], 50, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="10,25,50,100", help="robot counts")
    ap.add_argument("--rate", type=float, default=50.0, help="state Hz per robot")
    ap.add_argument("--duration", type=float, default=10.0, help="window per K, s")
    ap.add_argument("--warmup", type=float, default=1.0, help="s after every robot is flowing")
    ap.add_argument("--driver", choices=("mock", "mujoco"), default="mock")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"start: {load()}", flush=True)
    print(f"\n## state stream: K {args.driver} robots at {args.rate:g} Hz in one Fleet process -> a subscriber "
          f"in another, {args.duration:g} s window per K")
    print("    K  received   nominal  rx/nominal  published  gaps  loss %  silent  min Hz  lag p50/p99 ms  "
          "fleet CPU %  threads  sub CPU %  up s")
    best = None
    for k in [int(x) for x in args.ks.split(",")]:
        t_step = time.monotonic()
        try:
            r = step(k, args.rate, args.duration, args.warmup, args.driver)
        except AssertionError as exc:  # a Fleet that never came up, or robots that never published
            print(f"{k:5d}  did not come up after {time.monotonic() - t_step:.0f} s: {str(exc).splitlines()[0][:160]}; "
                  f"larger K skipped  ({load()})", flush=True)
            break
        loss = 100 * r["gaps"] / max(1, r["gaps"] + r["received"])
        print(f"{k:5d}  {r['received']:8d}  {r['nominal']:8.0f}  {r['received'] / r['nominal']:10.3f}  "
              f"{r['published']:9d}  {r['gaps']:4d}  {loss:6.2f}  {r['silent']:6d}  {r['min_hz']:6.1f}  "
              f"{r['lag'][0] * 1e3:6.1f}/{r['lag'][1] * 1e3:<7.1f}  {r['fleet_cpu']:11.0f}  {r['threads']:7d}  "
              f"{r['sub_cpu']:9.0f}  {r['up']:4.1f}"
              + (f"  dups {r['dups']}" if r["dups"] else "") + (f"  unparsable {r['bad']}" if r["bad"] else ""),
              flush=True)
        if r["gaps"] == 0 and r["silent"] == 0 and r["received"] >= 0.98 * r["nominal"]:
            best = k if best is None or k > best else best
    print(f"largest K with 0 loss and >= 98 % of nominal rate: {best if best is not None else 'none'}")
    print(f"\nend: {load()}")


if __name__ == "__main__":
    main()
