"""Time to halt: a sample on ``P/safety/estop`` to the robot's actuators halted. Prints figures;
asserts nothing.

Two robots, each in its own process and on its own private mesh (own key prefix), so one
e-stop hits one robot and both processes idle alike while the other is measured:

* **mesh-native** (the baseline): a :class:`~strands_mesh_ros.mesh.mesh.Mesh` robot
  (``bench/_mesh_robot.py``);
* **bridged**: a ROS :class:`~strands_mesh_ros.ros.robot_node.RobotNode` behind a
  :class:`~strands_mesh_ros.ros.bridge_node.BridgeNode`, in one ``bench/_ros_side.py`` process
  on its own ROS domain, run as ``strands-mesh up`` runs them (each robot node on a
  SingleThreadedExecutor of its own, the bridge on a SingleThreadedExecutor;
  ``--robot-executor multi`` puts the robot node on the MultiThreadedExecutor the fleet host used
  before 543b08b: the baseline / diagnostic).

This process holds one operator Mesh per private mesh (the hub of each) and, in a shuffled
order, puts on the e-stop key either a **valid** envelope (a fresh ``EStop`` from ``op``) or
**garbage** (cycling through non-UTF-8 bytes, an empty payload, ``peer_id: "a/b"`` and JSON
nested 1,000 deep: nothing a robot can read). "Halted" is observed, not assumed: each robot's
driver is wrapped (``_common.halt_clock``) to print ``time.time()`` the moment its
``emergency_stop()`` returned, and the figure is that minus ``time.time()`` just before the put
here (one machine, one wall clock). After each trial the robot's ``status`` must show the
lockout latched, then a signed resume (``Mesh.resume``, shared ``resume_key``) clears it before
the next trial. Reports p50/p99/max per kind and payload, and the ratio bridged / mesh-native.

    python bench/bench_halt.py [--n 200] [--driver mock|mujoco] [--robot-executor single|multi] [--domain D]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import Net, load, machine, pct, python_proc

from strands_mesh_ros.contract.payloads import EStop
from strands_mesh_ros.mesh.mesh import Mesh

GARBAGE = (
    b"\xff\xfegarbage",                                       # not UTF-8
    b"",                                                      # empty
    b'{"peer_id": "a/b", "t": 1.0, "seq": 1, "reason": "x"}',  # a peer id no key can hold
    b"[" * 1000 + b"]" * 1000,                                # past the decoder's depth limit
)
GARBAGE_NAMES = ("non-UTF-8", "empty", "peer_id a/b", "1000 deep")


def default_domain() -> int:
    # test/ros_helpers.py uses 10..210, bench_bridge.py 211..231; Fast DDS allows up to 232
    return 211 + (os.getpid() + 7) % 20


def count_lines(proc, head: str) -> int:
    with proc._cond:
        return sum(1 for ln in proc.lines if ln.startswith(head))


def wait_line(proc, head: str, index: int, timeout: float) -> str | None:
    """The ``index``-th (0-based) stdout line of ``proc`` starting with ``head``, waiting up to
    ``timeout`` s; None if it does not come."""
    deadline = time.monotonic() + timeout
    with proc._cond:
        while True:
            found = [ln for ln in proc.lines if ln.startswith(head)]
            if len(found) > index:
                return found[index]
            left = deadline - time.monotonic()
            if left <= 0 or proc.p.poll() is not None:
                return None
            proc._cond.wait(min(left, 0.05))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="trials per kind and payload")
    ap.add_argument("--warmup", type=int, default=5, help="uncounted trials per kind and payload first")
    ap.add_argument("--driver", choices=("mock", "mujoco"), default="mock")
    ap.add_argument("--robot-executor", choices=("multi", "single"), default="single",
                    help="the ROS robot node's executor: single = as the fleet host and robot_node run it (default); "
                         "multi = the earlier shared MultiThreadedExecutor (baseline / diagnostic)")
    ap.add_argument("--domain", type=int, default=default_domain(), help="ROS domain id of the bridged robot")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"start: {load()}; ROS domain {args.domain}; driver {args.driver}", flush=True)

    key = secrets.token_hex(16)
    audit = tempfile.mkdtemp(prefix="bench_halt_audit_")
    env = {"STRANDS_MESH_AUDIT_DIR": audit}
    nets = {"mesh": Net(), "bridged": Net()}
    rids = {"mesh": "arm_mesh", "bridged": "arm_ros"}
    ops = {k: Mesh("op", config=n.hub(), resume_key=key, audit_dir=audit).start() for k, n in nets.items()}
    procs = {}
    try:
        nm, nb = nets["mesh"], nets["bridged"]
        procs["mesh"] = python_proc(str(BENCH / "_mesh_robot.py"), rids["mesh"], "--prefix", nm.prefix,
                                    "--connect", nm.endpoint, "--driver", args.driver, "--halt-clock",
                                    "--resume-key", key, env=env).ready(60)
        procs["bridged"] = python_proc(str(BENCH / "_ros_side.py"), "--domain", str(args.domain),
                                       "--nodes", rids["bridged"], "--driver", args.driver, "--halt-clock",
                                       "--resume-key", key, "--bridge", "--bridge-id", "bridge_halt",
                                       "--executor", args.robot_executor, "--bridge-executor", "single", "--trace-estop",
                                       "--prefix", nb.prefix, "--connect", nb.endpoint, env=env).ready(60)
        for k in nets:
            ops[k].wait_for_peer(rids[k], 30)  # the bridge settles for one peer timeout, then proxies
        lat: dict[tuple[str, str], list[float]] = {}
        misses: dict[tuple[str, str], int] = {}
        unlatched: dict[tuple[str, str], list] = {}
        slow: list = []
        hops: dict[str, list[tuple[float, float]]] = {}
        garbage_i = 0

        def trial(kind: str, payload: str, counted: bool = True) -> float | None:
            nonlocal garbage_i
            proc, op, rid = procs[kind], ops[kind], rids[kind]
            halted_before = count_lines(proc, "HALTED")
            hop_before = count_lines(proc, "BRIDGE_ESTOP")
            if payload == "valid":
                data = EStop(peer_id="op", t=time.time(), seq=time.time_ns(), reason="bench_halt").to_json()
            else:
                data = GARBAGE[garbage_i % len(GARBAGE)]
                garbage_i += 1
            t0 = time.time()
            op._estop_pub.put(data)  # the operator's own e-stop publisher (safety session, express)
            line = wait_line(proc, "HALTED", halted_before, 5.0)
            dt = float(line.split()[2]) - t0 if line else None
            if kind == "bridged" and line and counted:
                hop = wait_line(proc, "BRIDGE_ESTOP", hop_before, 5.0)
                if hop:
                    t_bridge = float(hop.split()[1])
                    hops.setdefault(payload, []).append((t_bridge - t0, float(line.split()[2]) - t_bridge))
            variant = payload if payload == "valid" else f"garbage{(garbage_i - 1) % len(GARBAGE)}"
            if counted and dt is not None and dt > 0.02:
                slow.append((kind, variant, dt))
            for i in range(50):  # the lockout is latched after the halt, on the safety thread
                st = op.send(rid, {"action": "status"}, timeout=10.0)
                if st.ok and isinstance(st.result, dict) and st.result.get("lockout"):
                    break
                time.sleep(0.02)
            else:
                i = None
            if counted and i != 0:
                unlatched.setdefault((kind, payload), []).append((variant, "never" if i is None else f"status #{i + 1}"))
            resumed_before = count_lines(proc, "RESUMED")
            r = op.resume(targets=[rid], operator="bench_halt", timeout=5.0)
            if not r.get(rid, {}).get("accepted"):
                raise RuntimeError(f"{rid}: resume not accepted: {r}")
            if wait_line(proc, "RESUMED", resumed_before, 5.0) is None:
                raise RuntimeError(f"{rid}: resume accepted but the driver was not resumed")
            time.sleep(random.uniform(0.03, 0.08))  # not in step with any timer
            return dt

        combos = [(k, p) for k in ("mesh", "bridged") for p in ("valid", "garbage")]
        for _ in range(args.warmup):
            for c in combos:
                trial(*c, counted=False)
        t_start = time.monotonic()
        for _ in range(args.n):
            random.shuffle(combos)
            for c in combos:
                dt = trial(*c)
                if dt is None:
                    misses[c] = misses.get(c, 0) + 1
                else:
                    lat.setdefault(c, []).append(dt)
        wall = time.monotonic() - t_start

        print(f"\n## time to halt: put on P/safety/estop -> driver emergency_stop() returned, n={args.n} per row, "
              f"interleaved, shuffled ({wall:.0f} s); ROS robot node on a "
              f"{'SingleThreadedExecutor of its own (as the fleet host runs it)' if args.robot_executor == 'single' else 'MultiThreadedExecutor (the earlier fleet host; baseline / diagnostic)'}"
              f", bridge on a SingleThreadedExecutor")
        print(f"{'robot':38s} {'e-stop':8s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}  "
              f"> 20 ms  > 100 ms  halted   latched")
        figs = {}
        for kind, label in (("mesh", "mesh-native (Mesh)"), ("bridged", "ROS RobotNode via BridgeNode")):
            for payload in ("valid", "garbage"):
                c = (kind, payload)
                v = lat.get(c, [])
                p50, p90, p99 = pct(v, 50, 90, 99)
                mx = max(v) if v else float("nan")
                figs[c] = (p50, p99, mx)
                n_ok, n = len(v), len(v) + misses.get(c, 0)
                print(f"{label:38s} {payload:8s} {p50 * 1e3:8.2f} {p90 * 1e3:8.2f} {p99 * 1e3:8.2f} {mx * 1e3:8.2f}  "
                      f"{sum(x > 0.02 for x in v):7d}  {sum(x > 0.1 for x in v):8d}  {n_ok:3d}/{n:<3d}  "
                      f"{n - len(unlatched.get(c, [])):3d}/{n:<3d}")
        print("bridged, split at the bridge's raw e-stop hook (mesh hop: put -> bridge's Zenoh callback; "
              "ROS hop: -> /mesh/estop -> robot node halted):")
        for payload in ("valid", "garbage"):
            h = hops.get(payload, [])
            a, b = pct([x[0] for x in h], 50, 99), pct([x[1] for x in h], 50, 99)
            print(f"  {payload:8s} mesh hop p50 {a[0] * 1e3:6.2f} p99 {a[1] * 1e3:7.2f} ms | "
                  f"ROS hop p50 {b[0] * 1e3:6.2f} p99 {b[1] * 1e3:7.2f} ms  (n={len(h)})")
        for payload in ("valid", "garbage"):
            b, m = figs[("bridged", payload)], figs[("mesh", payload)]
            print(f"ratio bridged / mesh-native, {payload:7s}: p50 {b[0] / m[0]:.2f}x  p99 {b[1] / m[1]:.2f}x  "
                  f"max {b[2] / m[2]:.2f}x")
        if misses:
            print(f"NOT HALTED within 5 s: {misses}")
        if unlatched:
            never = {c: sum(1 for _, w in u if w == "never") for c, u in unlatched.items()}
            print("latched: the first status after the halt showed the lockout (it is latched on the safety "
                  "thread right after the halt; the rest showed it on a later status 20 ms apart"
                  + (f"; NEVER latched: {never}" if any(never.values()) else "") + ")")
        by_variant: dict[str, int] = {}
        for kind, variant, _ in slow:
            by_variant[f"{kind}/{variant}"] = by_variant.get(f"{kind}/{variant}", 0) + 1
        if by_variant:
            print(f"trials over 20 ms by payload (garbage0..3 = {', '.join(GARBAGE_NAMES)}): {by_variant}")
    finally:
        for p in procs.values():
            p.close()
        if os.environ.get("BENCH_HALT_DUMP"):
            for k, p in procs.items():
                Path(os.environ["BENCH_HALT_DUMP"] + f".{k}").write_text("\n".join(p.lines))
        for op in ops.values():
            op.stop()
        shutil.rmtree(audit, ignore_errors=True)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    main()
