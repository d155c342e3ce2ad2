"""Link-loss watchdog: time from the supervising operator's loss to the robot halted. Prints
figures; asserts nothing.

For each kind of robot, in a process of its own:

* **mesh**: a mesh-native :class:`~strands_mesh_ros.mesh.mesh.Mesh` robot (MockDriver);
* **ros**: a ROS :class:`~strands_mesh_ros.ros.robot_node.RobotNode` behind a
  :class:`~strands_mesh_ros.ros.bridge_node.BridgeNode` in one process (own ROS domain), its
  heartbeats relayed by the bridge's ``/mesh/peers``;

each with the watchdog on (operator ``op``, timeout ``--timeout`` s), this script starts an
operator process (``python -m strands_mesh_ros.peer op --agent``), waits until the robot's audit
log says ``watchdog_armed``, waits a random 0-0.6 s (so the loss falls at any phase of the 2 Hz
presence), then kills it (SIGKILL) or freezes it (SIGSTOP), alternating. Halted
is observed at the driver (``_common.halt_clock`` prints ``HALTED <id> <unix time>`` once its
``emergency_stop()`` returned); the figure is that minus ``time.time()`` just before the signal
(one machine, one clock). Also reported: the silence the robot measured (``silent_s`` of its
``link_loss`` audit line: from the operator's last presence heard to the halt). Each trial ends
with a signed resume; a frozen operator is then killed.

The same-run baseline is the configured timeout T: expected halt after the signal within
[T - 0.5 s, T + 0.05 s] (the last presence went out up to one 2 Hz period before the signal;
the watchdog is checked every 50 ms).

    python bench/bench_watchdog.py [--n 10] [--timeout 1.0] [--kinds mesh ros]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _common import Net, load, machine, pct, python_proc, wait_for  # noqa: E402

OP = "op"


def child_mesh(rid: str, prefix: str, endpoint: str, key: str, timeout: float) -> None:
    from _common import make_driver

    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.mesh import Mesh
    from strands_mesh_ros.robot.watchdog import WatchdogConfig

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    driver = make_driver("mock", rid, halt=True)
    cfg = MeshConfig(prefix=prefix, listen=(endpoint,), multicast_scouting=False)
    with Mesh(rid, robot=driver, config=cfg, resume_key=key, watchdog=WatchdogConfig((OP,), timeout)):
        print("READY", rid, flush=True)
        done.wait()


def child_ros(rid: str, prefix: str, endpoint: str, key: str, timeout: float, domain: int) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions
    from _common import make_driver

    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.ros.bridge_node import BridgeNode
    from strands_mesh_ros.ros.robot_node import RobotNode
    from strands_mesh_ros.ros.spin import BackgroundSpin

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    robot = RobotNode(rid, driver=make_driver("mock", rid, halt=True), context=ctx, close_driver=True,
                      resume_key=key, prefix=prefix, parameter_overrides=[
                          Parameter("watchdog_operators", value=[OP]), Parameter("watchdog_timeout", value=timeout)])
    bridge = BridgeNode(mesh_config=MeshConfig(prefix=prefix, listen=(endpoint,), multicast_scouting=False),
                        bridge_id="bench_bridge", context=ctx, mirror=False)
    spins = []
    for node in (robot, bridge):  # as strands-mesh up runs them: one SingleThreadedExecutor each
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        spins.append(BackgroundSpin(ex, node.get_name()))
    print("READY", rid, flush=True)
    done.wait()
    for s in spins:
        s.stop()
    bridge.destroy_node()
    robot.destroy_node()
    rclpy.try_shutdown(context=ctx)


def audit_events(path: Path, name: str) -> list[dict]:
    if not path.exists():
        return []
    return [e for e in (json.loads(x) for x in path.read_text().splitlines() if x.strip()) if e.get("event") == name]


def run_kind(kind: str, n: int, timeout: float, audit_dir: Path) -> dict[str, list[float]]:
    from strands_mesh_ros.mesh.mesh import Mesh

    net = Net()
    rid = f"{kind}_wd"
    key = secrets.token_hex(16)
    env = {"STRANDS_MESH_AUDIT_DIR": str(audit_dir), "STRANDS_MESH_PREFIX": net.prefix}
    args = [__file__, "--child", kind, rid, net.prefix, net.endpoint, key, str(timeout)]
    if kind == "ros":
        args.append(str(150 + os.getpid() % 60))
    robot = python_proc(*args, env=env).ready(90)
    audit = audit_dir / f"audit-{rid}.jsonl"
    out: dict[str, list[float]] = {"SIGKILL": [], "SIGSTOP": [], "silent": []}
    obs = Mesh("obs", config=net.member(), resume_key=key).start()
    try:
        obs.wait_for_peer(rid, 60)
        for i in range(n):
            sig = signal.SIGKILL if i % 2 == 0 else signal.SIGSTOP
            armed = len(audit_events(audit, "watchdog_armed"))
            losses = len(audit_events(audit, "link_loss"))
            halts = sum(1 for line in robot.lines if line.startswith("HALTED"))
            op = python_proc("-m", "strands_mesh_ros.peer", OP, "--agent", *net.peer_args(), env=env).ready(60)
            wait_for(lambda: len(audit_events(audit, "watchdog_armed")) > armed, 30, interval=0.02, what="armed")
            threading.Event().wait(random.uniform(0.0, 0.6))  # the loss at any phase of the 2 Hz beat
            t0 = time.time()
            op.signal(sig)
            line = wait_for(lambda: [x for x in robot.lines if x.startswith("HALTED")][halts:], timeout + 30,
                            interval=0.01, what="halted")[0]
            out[sig.name].append(float(line.split()[2]) - t0)
            loss = wait_for(lambda: audit_events(audit, "link_loss")[losses:], 10, what="link_loss audited")[0]
            out["silent"].append(loss["silent_s"])
            op.signal(signal.SIGKILL)
            op.close()
            r = obs.resume(targets=[rid], operator="bench", timeout=10)
            if not r.get(rid, {}).get("accepted"):
                raise RuntimeError(f"resume of {rid} failed: {r}")
    finally:
        obs.stop()
        robot.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10, help="trials per kind (alternating SIGKILL / SIGSTOP)")
    ap.add_argument("--timeout", type=float, default=1.0, help="watchdog timeout T, s")
    ap.add_argument("--kinds", nargs="+", default=["mesh", "ros"], choices=["mesh", "ros"])
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, rid, prefix, endpoint, key, timeout, *rest = a.child
        if kind == "mesh":
            child_mesh(rid, prefix, endpoint, key, float(timeout))
        else:
            child_ros(rid, prefix, endpoint, key, float(timeout), int(rest[0]))
        return
    print(machine())
    print(f"start {load()}; watchdog timeout T = {a.timeout} s; {a.n} trials per kind")
    with tempfile.TemporaryDirectory() as d:
        for kind in a.kinds:
            r = run_kind(kind, a.n, a.timeout, Path(d))
            for what in ("SIGKILL", "SIGSTOP"):
                v = r[what]
                p50, mx = pct(v, 50, 100)
                print(f"{kind:4s} operator {what}: signal -> halted p50 {p50 * 1000:.0f} ms  max {mx * 1000:.0f} ms  "
                      f"(n={len(v)}; p50/T {p50 / a.timeout:.2f}, max/T {mx / a.timeout:.2f})")
            s50, smax = pct(r["silent"], 50, 100)
            print(f"{kind:4s} silence measured at the halt (last presence heard -> halt): p50 {s50 * 1000:.0f} ms  "
                  f"max {smax * 1000:.0f} ms  (T + {(smax - a.timeout) * 1000:.0f} ms at most)")
    print(f"end {load()}")


if __name__ == "__main__":
    main()
