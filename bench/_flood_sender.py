"""One flood sender of bench/bench_bridge.py flood, run as a subprocess. Not a test, not a bench.

A Mesh agent ``<sender_id>`` on the private mesh; prints ``READY`` once it sees the target,
then waits for SIGUSR1 and sends ``{"action": "status"}`` to the target at ``--rate`` per
second for ``--duration`` s, paced to a schedule (a sender that falls behind sends at once to
catch up, never skips), each with ``--timeout`` s, so queueing behind back-pressure is not
counted as loss. Then it waits for every answer and prints one line ``RESULT <json>``:
commands sent, the time they took to put (= the offered window), answers by status, and
latency percentiles, then exits.

    python bench/_flood_sender.py flood0 arm1 --prefix bXXXX --connect tcp/127.0.0.1:7447 --rate 500
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _common import pct

from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sender_id")
    ap.add_argument("target")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--connect", required=True)
    ap.add_argument("--rate", type=float, default=500.0, help="commands per second")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=300.0, help="per command, s")
    args = ap.parse_args()
    go = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: go.set())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    cfg = MeshConfig(prefix=args.prefix, connect=(args.connect,), multicast_scouting=False)
    with Mesh(args.sender_id, config=cfg, audit=False) as mesh:
        mesh.wait_for_peer(args.target, 60)
        for _ in range(20):  # warm the path
            mesh.send(args.target, {"action": "status"}, timeout=30)
        print("READY", flush=True)
        go.wait()
        n = int(args.rate * args.duration)
        lat: list[float] = []
        statuses: Counter = Counter()
        last_answer = [0.0]
        lock = threading.Lock()
        futs = []

        def done(t_sent: float, fut) -> None:
            t = time.monotonic()
            r = fut.result()
            with lock:
                statuses[r.status if not r.ok else "ok"] += 1
                lat.append(t - t_sent)
                last_answer[0] = max(last_answer[0], t)

        t0, c0 = time.monotonic(), time.process_time()
        behind = 0.0
        for k in range(n):
            due = t0 + k / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                behind = max(behind, now - due)
            t_sent = time.monotonic()
            f = mesh.send_async(args.target, {"action": "status"}, timeout=args.timeout)
            f.add_done_callback(lambda fut, t_sent=t_sent: done(t_sent, fut))
            futs.append(f)
        t_put = time.monotonic() - t0
        for f in futs:
            f.result()
        time.sleep(0.05)  # the last done-callbacks
        cpu_s = time.process_time() - c0
        with lock:
            p50, p99 = pct(lat, 50, 99)
            out = {"sender": args.sender_id, "sent": n, "put_s": t_put, "behind_s": behind,
                   "statuses": dict(statuses), "answered_ok": statuses.get("ok", 0),
                   "drain_s": last_answer[0] - t0, "cpu_s": cpu_s, "lat_p50": p50, "lat_p99": p99, "lat_max": max(lat) if lat else None,
                   "lat": [round(x, 5) for x in lat],
                   "errors": sorted({f.result().error for f in futs if not f.result().ok})[:5]}
        print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
