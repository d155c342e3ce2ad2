"""Recorder throughput (issue 11): what `strands-mesh record` writes against what the mesh
delivered in the same run. Prints figures; asserts nothing.

How to read: a publisher subprocess puts contract States (6 joints, ~350 bytes, valid JSON)
for K robot ids on ``<prefix>/<id>/state`` as fast as Zenoh takes them (congestion control
BLOCK) for D seconds. In this process, on two separate Zenoh sessions connected to one hub:
a bare subscriber that only counts (the baseline: what the mesh delivered) and a
:class:`~strands_mesh_ros.recording.Recorder` writing the bag. "delivered" is the baseline's
rate over the flood; "recorded" is States the recorder wrote into the bag per second, from
the flood's start to the end of writing (its queue drained); "ratio" = recorded / delivered
(1.00 = the recorder keeps up); "drain" is how long writing went on after the flood ended
(the backlog the unbounded queue absorbed); "lost" = delivered - recorded (goal 0). Each
State is two bag messages (raw MeshSample + JointState). ``--rate`` paces the publisher
instead (States/s in total), to check a realistic fleet (e.g. 10 robots x 50 Hz = 500/s).

    python bench/bench_record.py [--robots 10] [--duration 5] [--rate 0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import Net, load, machine, python_proc, wait_for  # noqa: E402

PUBLISHER = r"""
import json, os, sys, time, zenoh
prefix, endpoint, k, duration, rate, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
conf.insert_json5("scouting/multicast/enabled", "false")
with zenoh.open(conf) as s:
    pubs = [s.declare_publisher(f"{prefix}/r{i}/state", congestion_control=zenoh.CongestionControl.BLOCK) for i in range(k)]
    print("READY", flush=True)
    while not os.path.exists(go):  # warm-up beats until both subscribers have heard this session
        s.put(f"{prefix}/warm/presence", b"{}")
        time.sleep(0.05)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < duration:
        i = n % k
        st = {"peer_id": f"r{i}", "t": time.time(), "seq": n // k, "task": {"status": "idle"},
              "joints": {f"joint{j}": {"position": 0.1 * j, "velocity": 0.0, "effort": 0.0} for j in range(1, 7)}}
        pubs[i].put(json.dumps(st).encode())
        n += 1
        if rate:
            time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    print(f"SENT {n} {time.monotonic() - t0:.3f}", flush=True)
    time.sleep(1.0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robots", type=int, default=10)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=0.0, help="States/s in total (0 = as fast as possible)")
    args = ap.parse_args()
    import zenoh

    from strands_mesh_ros.recording import Recorder

    print(machine())
    print("start", load())
    net = Net()
    tmp = Path(tempfile.mkdtemp(prefix="bench_record_"))
    counted = [0]
    first = [0.0]
    last = [0.0]

    def count(_sample) -> None:
        if not counted[0]:
            first[0] = time.monotonic()
        counted[0] += 1
        last[0] = time.monotonic()

    hub = zenoh.open(net.hub().zenoh_config())
    sub = hub.declare_subscriber(f"{net.prefix}/*/state", count)
    warm = threading.Event()
    warm_sub = hub.declare_subscriber(f"{net.prefix}/warm/presence", lambda _s: warm.set())
    rec = Recorder(tmp / "bag", net.member()).start()
    go = tmp / "go"
    pub = python_proc("-c", PUBLISHER, net.prefix, net.endpoint, str(args.robots), str(args.duration),
                      str(args.rate), str(go))
    pub.ready(60)
    wait_for(lambda: warm.is_set() and rec.first_sample.is_set(), 30, what="publisher routed to both")
    w0 = rec.received  # warm-up beats taken so far (one or two more may still be in flight)
    go.touch()
    sent_line = pub.wait_line("SENT", args.duration + 60)
    sent = int(sent_line.split()[1])
    wait_for(lambda: counted[0] >= sent, 30, what="baseline got every State")
    t_flood_end = time.monotonic()
    taken0 = rec.received
    try:  # the recorder's session may trail the baseline's: wait until it took every State too
        wait_for(lambda: rec.received - w0 >= sent, 30, what="recorder took every State")
    except AssertionError as exc:
        print(f"note: {exc} ({rec.received - taken0} more after the baseline was complete)")
    stats = rec.stop()
    t_written = time.monotonic()
    pub.close()
    sub.undeclare()
    warm_sub.undeclare()
    hub.close()
    recorded = stats.topics.get("/mesh_wire/state", 0)
    delivered_rate = counted[0] / max(1e-9, last[0] - first[0])
    recorded_rate = recorded / max(1e-9, t_written - first[0])
    size = sum(f.stat().st_size for f in (tmp / "bag").iterdir())
    print(f"robots {args.robots}, flood {args.duration} s, publisher rate {'max' if not args.rate else args.rate}")
    print(f"sent {sent}, delivered {counted[0]} ({delivered_rate:.0f}/s), recorded {recorded} "
          f"({recorded_rate:.0f}/s, {2 * recorded_rate:.0f} bag messages/s), ratio {recorded_rate / delivered_rate:.2f}, "
          f"drain {t_written - t_flood_end:.2f} s, lost {counted[0] - recorded}, bag {size / 1e6:.1f} MB")
    print("end", load())
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
