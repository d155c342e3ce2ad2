"""Fleet view latency (issue 11): how long until the page in headless Chromium shows what
happened on the mesh. Prints figures; asserts nothing.

How to read: a Fleet of mock robots (one process with this one), the view, and headless
Chromium on the page (test/browser.py, DevTools over a pipe). Each round of **joints** moves
one robot with ``move_joints(duration=0)`` and times, from the call's return, (a) a plain
mesh subscriber of ``P/<id>/state`` seeing the new position (the baseline: the mesh itself) and
(b) the page's last snapshot holding it (polled every 5 ms through DevTools: ~1-3 ms a poll).
Each round of **e-stop** times, from just before ``Fleet.estop``, (a) its return (every ack
in: the robots have halted) and (b) the page's red banner naming the robot, then restarts the
robot to clear its lockout. "page/baseline" is the ratio of medians. The page learns positions
from state (robots' ``state_rate``, 20 Hz) pushed 10 times a second, and lockouts from presence
(2 Hz): expect ~50-100 ms and ~250-600 ms. Load averages are printed at start and end.

    python bench/bench_view.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "test"))

from _common import Net, load, machine, pct, wait_for  # noqa: E402
from browser import Browser  # noqa: E402

from strands_mesh_ros.fleet import Fleet  # noqa: E402
from strands_mesh_ros.mesh.mesh import Mesh  # noqa: E402
from strands_mesh_ros.view import FleetView  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    print(machine())
    print("start", load())
    net = Net()
    robots = [{"id": "v1", "driver": "mock"}, {"id": "v2", "driver": "mock"}]
    with Fleet(robots=robots, config=net.hub()) as fleet, FleetView(net.member()) as view, \
            Mesh("probe", config=net.member()) as probe, Browser() as page:
        fleet.wait_ready(30)
        page.goto(view.url)
        page.wait("document.body.dataset.models === '2'", 60)
        latest: dict[str, float] = {}
        seen = threading.Condition()

        def on_state(_key: str, value) -> None:
            with seen:
                latest["q"] = value["joints"]["joint1"]["position"]
                seen.notify_all()

        probe.subscribe(probe.keys.state("v1"), on_state)
        mesh_ms, page_ms = [], []
        for i in range(args.rounds):
            q = round(0.1 + 0.05 * (i % 10), 3)
            fleet["v1"].skills.move_joints(positions=[q, 0, 0, 0, 0, 0], duration=0)
            t0 = time.perf_counter()
            with seen:
                seen.wait_for(lambda: abs(latest.get("q", -1) - q) < 1e-6, 10)
            mesh_ms.append((time.perf_counter() - t0) * 1e3)
            wait_for(lambda: page.eval(f"Math.abs(lastSnapshot.peers.find(p => p.id === 'v1').joints.joint1 - {q}) < 1e-6"),
                     10, interval=0.005)
            page_ms.append((time.perf_counter() - t0) * 1e3)
        ack_ms, banner_ms = [], []
        for _ in range(max(3, args.rounds // 4)):
            t0 = time.perf_counter()
            fleet.estop("bench")
            ack_ms.append((time.perf_counter() - t0) * 1e3)
            wait_for(lambda: "v1" in (page.eval("document.body.dataset.estopped") or ""), 10, interval=0.005)
            banner_ms.append((time.perf_counter() - t0) * 1e3)
            for rid in ("v1", "v2"):
                fleet.restart_robot(rid)
            wait_for(lambda: not page.eval("document.body.dataset.estopped"), 30, interval=0.05)
        print(f"{'what':<22}{'n':>4}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}")
        for name, xs in (("joints: mesh", mesh_ms), ("joints: page", page_ms), ("e-stop: acks", ack_ms),
                         ("e-stop: page banner", banner_ms)):
            p50, p90, mx = pct(xs, 50, 90, 100)
            print(f"{name:<22}{len(xs):>4}{p50:>9.1f}{p90:>9.1f}{mx:>9.1f}")
        print(f"page/baseline (p50): joints {pct(page_ms, 50)[0] / pct(mesh_ms, 50)[0]:.1f}x, "
              f"e-stop {pct(banner_ms, 50)[0] / pct(ack_ms, 50)[0]:.1f}x")
    print("end", load())


if __name__ == "__main__":
    main()
