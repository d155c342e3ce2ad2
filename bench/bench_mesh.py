"""Mesh benchmarks (issue 2). Prints figures; asserts nothing.

    python bench/bench_mesh.py rtt      # Mesh.send round trip vs a raw zenoh queryable, two processes
    python bench/bench_mesh.py estop    # e-stop to 10 peers while a state flood saturates the mesh
    python bench/bench_mesh.py estop-rt # only its real-time part (root, cgroup v1 cpu)
    python bench/bench_mesh.py detect   # crash (SIGKILL) and hang (SIGSTOP) detection times
    python bench/bench_mesh.py all
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Net, RealtimeGroups, load, machine, pct, python_proc, wait_for  # noqa: E402

from strands_mesh_ros.mesh.mesh import Mesh  # noqa: E402
from strands_mesh_ros.robot.realtime import freeze_heap  # noqa: E402

RAW_QUERYABLE = r"""
import sys, threading, zenoh, json
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", json.dumps([sys.argv[1]]))
conf.insert_json5("scouting/multicast/enabled", "false")
s = zenoh.open(conf)
reply = json.dumps({"type": "response", "status": "done", "result": {"robot_id": "x", "task": {"status": "idle"}}}).encode()
q = s.declare_queryable(sys.argv[2], lambda query: query.reply(query.key_expr, reply))
print("READY", flush=True)
threading.Event().wait()
"""


def bench_rtt(n: int = 2000) -> None:
    import zenoh

    net = Net()
    with Mesh("op", config=net.hub()) as op:
        raw = python_proc("-c", RAW_QUERYABLE, net.endpoint, f"{net.prefix}/rawq").ready()
        robot = python_proc("-m", "strands_mesh_ros.peer", "arm1", *net.peer_args()).ready()
        try:
            op.wait_for_peer("arm1", 10)
            session = op._session  # the same Zenoh session: compare like with like
            key = f"{net.prefix}/rawq"

            def raw_once() -> None:
                replies = list(session.get(key, timeout=5.0))
                assert replies and replies[0].ok is not None

            def mesh_once() -> None:
                assert op.send("arm1", {"action": "status"}).ok

            for fn in (raw_once, mesh_once):  # warm up both paths
                for _ in range(200):
                    fn()
            # Blocks of 200 calls of each path in turn: on a shared 2-core machine the load
            # changes from second to second, and both paths must see the same load. (Alternating
            # single calls slowed the raw path ~2x: each call then found the other process cold.)
            paths = (("raw zenoh queryable get", raw_once), ("Mesh.send status", mesh_once))
            lat: dict[str, list[float]] = {name: [] for name, _ in paths}
            for _ in range(n // 200):
                for name, fn in paths:
                    for _ in range(200):
                        t0 = time.perf_counter()
                        fn()
                        lat[name].append(time.perf_counter() - t0)
            results = {name: pct(v, 50, 90, 99) for name, v in lat.items()}
            print(f"\n## send round trip, two processes, n={n} each")
            for name, (p50, p90, p99) in results.items():
                print(f"{name:26s} p50 {p50 * 1e3:.3f} ms  p90 {p90 * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms")
            base, ours = results["raw zenoh queryable get"], results["Mesh.send status"]
            print(f"ratio Mesh.send / raw: p50 {ours[0] / base[0]:.2f}x  p99 {ours[2] / base[2]:.2f}x  (goal <= 2x)")
            theirs = their_send_rtt(min(n, 300))
            if isinstance(theirs, str):
                print(f"strands-robots 0.5.3 Mesh.send: skipped ({theirs})")
            else:
                t50, t90, t99 = pct(theirs, 50, 90, 99)
                print(f"{'strands-robots Mesh.send':26s} p50 {t50 * 1e3:.3f} ms  p90 {t90 * 1e3:.3f} ms  p99 {t99 * 1e3:.3f} ms"
                      f"  (n={len(theirs)}, their two processes, paced 75 ms)")
                print(f"ratio Mesh.send / strands-robots 0.5.3 Mesh.send: p50 {ours[0] / t50:.2f}x  p99 {ours[2] / t99:.2f}x"
                      "  (goal < 1x)")
        finally:
            raw.close()
            robot.close()
        del zenoh


INTEROP_PYTHON_ENV = "STRANDS_INTEROP_PYTHON"
DEFAULT_INTEROP_PYTHON = Path(__file__).resolve().parent.parent / ".venv-interop" / "bin" / "python"


def their_send_rtt(n: int) -> list[float] | str:
    """strands-robots 0.5.3's own ``Mesh.send`` status round trip, their agent and their robot
    in two processes of the interop Python (``$STRANDS_INTEROP_PYTHON``, else the repo's
    ``.venv-interop``): ``n`` latencies in s, or the reason it could not run."""
    import json
    import subprocess

    from _common import free_port

    python = os.environ.get(INTEROP_PYTHON_ENV) or str(DEFAULT_INTEROP_PYTHON)
    if not Path(python).exists():
        return f"no interop Python at {python}: set {INTEROP_PYTHON_ENV} (scripts/interop_venv.sh makes one)"
    script = str(Path(__file__).resolve().parent / "_their_mesh.py")
    env = {**os.environ, "STRANDS_MESH_NAMESPACE": "bench" + os.urandom(4).hex(), "STRANDS_MESH_PORT": str(free_port()),
           "STRANDS_MESH_LOCAL_DEV": "1"}
    env.pop("PYTHONPATH", None)
    robot = subprocess.Popen([python, script, "robot"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        if robot.stdout.readline().strip() != "READY":
            return "their robot peer did not start"
        op = subprocess.run([python, script, "op", str(n)], capture_output=True, text=True, env=env, timeout=120)
        for line in op.stdout.splitlines():
            if line.startswith("RTT "):
                return json.loads(line[4:])
        return f"their agent failed: {(op.stdout + op.stderr).strip().splitlines()[-1:] or op.returncode}"
    except subprocess.TimeoutExpired:
        return "their agent did not finish in 120 s"
    finally:
        robot.stdin.close()
        try:
            robot.wait(10)
        except subprocess.TimeoutExpired:
            robot.kill()


FLOODER = r"""
import sys, json, threading, zenoh, os
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", json.dumps([sys.argv[1]]))
conf.insert_json5("scouting/multicast/enabled", "false")
s = zenoh.open(conf)
pub = s.declare_publisher(sys.argv[2], congestion_control=zenoh.CongestionControl.BLOCK)
payload = os.urandom(4096)
stop = threading.Event()
print("READY", flush=True)
n = 0
while True:
    pub.put(payload)
    n += 1
"""

RAW_ACKER = r"""
import sys, json, threading, zenoh
from strands_mesh_ros.robot.realtime import enter_realtime_from_env
enter_realtime_from_env()  # STRANDS_MESH_RT_*, as the robots
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", json.dumps([sys.argv[1]]))
conf.insert_json5("scouting/multicast/enabled", "false")
s = zenoh.open(conf)
pub = s.declare_publisher(f"{sys.argv[2]}/ack/{sys.argv[3]}", express=True, priority=zenoh.Priority.REAL_TIME)
sub = s.declare_subscriber(f"{sys.argv[2]}/estop", lambda sample: pub.put(sample.payload.to_bytes()))
print("READY", flush=True)
threading.Event().wait()
"""

RAW_CONSUMER = r"""
import sys, json, threading, zenoh
conf = zenoh.Config()
conf.insert_json5("connect/endpoints", json.dumps([sys.argv[1]]))
conf.insert_json5("scouting/multicast/enabled", "false")
s = zenoh.open(conf)
sub = s.declare_subscriber(sys.argv[2], lambda sample: None)
print("READY", flush=True)
threading.Event().wait()
"""


def bench_estop_raw(ackers: int = 13, rounds: int = 50, flooders: int = 0, rt: RealtimeGroups | None = None) -> list[float]:
    """The floor under :func:`bench_estop`, same processes and flood: ``ackers`` raw
    zenoh-python processes put back whatever arrives on an e-stop key (express, real-time
    priority), and this process stamps each ack in Zenoh's callback; no parsing, latch, audit
    or peer table anywhere. ``rt``: the ackers start real-time as the robots would. Prints and
    returns [p50, p99, max] issue->ack in s."""
    import zenoh

    net = Net()
    conf = zenoh.Config()
    conf.insert_json5("listen/endpoints", f'["{net.endpoint}"]')
    conf.insert_json5("scouting/multicast/enabled", "false")
    session = zenoh.open(conf)
    cond, acks, current = threading.Condition(), {}, [b""]

    def on_ack(sample) -> None:
        at = time.perf_counter()
        with cond:
            if sample.payload.to_bytes() == current[0]:
                acks.setdefault(str(sample.key_expr), at)
                if len(acks) == ackers:
                    cond.notify_all()

    procs = []
    try:
        sub = session.declare_subscriber(f"{net.prefix}/ack/*", on_ack)
        pub = session.declare_publisher(f"{net.prefix}/estop", express=True, priority=zenoh.Priority.REAL_TIME)
        procs = [python_proc("-c", RAW_ACKER, net.endpoint, net.prefix, f"a{i}", env=rt.env if rt else None)
                 for i in range(ackers)]
        procs.append(python_proc("-c", RAW_CONSUMER, net.endpoint, f"{net.prefix}/*/flood"))
        for p in procs:
            p.ready(60)
        floods = [python_proc("-c", FLOODER, net.endpoint, f"{net.prefix}/flood{i}/flood").ready()
                  for i in range(flooders)]
        procs += floods
        if rt is not None:
            for p in floods + [procs[ackers]]:
                rt.release(p.p.pid)
        threading.Event().wait(2.0)  # links up, and the flood (if any) at steady state
        lat, lost = [], 0
        for _ in range(rounds):
            with cond:
                acks.clear()
                current[0] = os.urandom(16)
            t0 = time.perf_counter()
            pub.put(current[0])
            with cond:
                cond.wait_for(lambda: len(acks) == ackers, 1.0)
                lat += [t - t0 for t in acks.values()]
                lost += ackers - len(acks)
            threading.Event().wait(0.05)  # pacing, as bench_estop's rounds
        p50, p99, mx = pct(lat, 50, 99, 100)
        who = "no flood" if not flooders else "a consumer takes the flood"
        who += "; real-time ackers and issuer" if rt is not None else ""
        print(f"raw zenoh floor ({ackers} raw ackers, {who}): issue->ack p50 {p50 * 1e3:.2f} ms  p99 {p99 * 1e3:.2f} ms  "
              f"max {mx * 1e3:.2f} ms; lost {lost}; {load()}")
        del sub
        return [p50, p99, mx]
    finally:
        for p in procs:
            p.close()
        session.close()


def bench_estop(peers: int = 10, rounds: int = 50, flooders: int = 1, robots_consume: bool = False,
                bridged: int = 3, rt: RealtimeGroups | None = None, floor: list[float] | None = None,
                ros_executor: str = "events") -> None:
    """E-stop issue -> ack latency to ``peers`` mesh robots and ``bridged`` ROS robot nodes
    behind a bridge (one ``_ros_side.py`` process on its own ROS domain; ``ros_executor``: the
    executor of each of its nodes, ``events`` as shipped or the ``single`` fallback, docs/ros.md)
    while ``flooders`` publish 4 KiB samples as fast as they can (0: the same-run baseline,
    no flood). The flood goes to a dashboard peer through the same hub session as the e-stops
    (the bulk traffic the safety session must not queue behind); with ``robots_consume`` every
    mesh robot also receives the flood in Python, which makes every process CPU-bound on 2
    cores: a starvation test rather than a test of the safety path. ``rt``: real-time robot
    processes (:class:`_common.RealtimeGroups`; the issuer, this process, has joined them; the
    dashboard and flooders are put back in the root group), or None. ``floor``: the raw Zenoh
    floor's [p50, p99, max] under the same load (:func:`bench_estop_raw`), printed as ratios.
    Each kind's second line is the robot's own part, by its clock (one host: the issuer's):
    issue to the moment it had halted, latched and audited (``EStopReport.halted_at``), without
    the ack's way back and the issuer's turn to read it.
    The rounds start 2 s after the last robot joined, as the floor's do; with no flood, one
    e-stop issued the moment the last robot joined is reported on its own line ("cold"), outside
    the figures: right after bringup, when every peer is still linking to every other."""
    rt_env = rt.env if rt is not None else None
    net = Net()
    with Mesh("op", config=net.hub()) as op:
        procs = []
        ros_ids = [f"ros{i}" for i in range(bridged)]
        try:
            extra = ["--subscribe", f"{net.prefix}/*/flood"] if robots_consume else []
            for i in range(peers):
                procs.append(python_proc("-m", "strands_mesh_ros.peer", f"r{i}", *net.peer_args(), *extra, env=rt_env))
            procs.append(python_proc("-m", "strands_mesh_ros.peer", "dash", "--agent", *net.peer_args(),
                                     "--subscribe", f"{net.prefix}/*/flood"))
            if bridged:
                procs.append(python_proc(str(Path(__file__).resolve().parent / "_ros_side.py"),
                                         "--domain", str(231 - os.getpid() % 10), "--nodes", *ros_ids, "--bridge",
                                         "--bridge-id", "bridge_estop", "--prefix", net.prefix, "--connect", net.endpoint,
                                         "--executor", ros_executor, env=rt_env))
            for p in procs:
                p.ready(60)
            for i in range(peers):
                op.wait_for_peer(f"r{i}", 20)
            for rid in ros_ids:
                op.wait_for_peer(rid, 30)
            floods = [python_proc("-c", FLOODER, net.endpoint, f"{net.prefix}/flood{i}/flood").ready()
                      for i in range(flooders)]
            procs += floods
            if rt is not None:  # the bulk traffic gets no share of the issuer's weight
                for p in floods + [procs[peers]]:
                    rt.release(p.p.pid)
            freeze_heap()  # as docs/safety.md advises an operator process, once its mesh is open
            cold = None
            if not flooders:  # the first e-stop within milliseconds of the last robot joining
                cold = op.emergency_stop("bench cold", timeout=1.0)
                op.broadcast({"action": "status"}, timeout=0.2)
            # Links up (every peer links to every other after joining) and the flood, if any, at
            # steady state: the same 2 s as the raw floor (bench_estop_raw) before its rounds.
            threading.Event().wait(2.0)
            lat: dict[str, list[float]] = {"mesh": [], "bridged": []}
            own: dict[str, list[float]] = {"mesh": [], "bridged": []}  # by the robot's clock
            lost = 0
            for _ in range(rounds):
                rep = op.emergency_stop("bench", timeout=1.0)
                for peer, dt in rep.stopped.items():
                    lat["bridged" if peer in ros_ids else "mesh"].append(dt)
                for peer, at in rep.halted_at.items():
                    own["bridged" if peer in ros_ids else "mesh"].append(at - rep.issued_at)
                lost += len(set(rep.not_acked) - {"dash", "bridge_estop"})
                op.broadcast({"action": "status"}, timeout=0.2)  # keep command traffic mixed in
            who = ("no flood: the same-run baseline" if not flooders else
                   "every mesh robot and a dashboard consume it" if robots_consume else "a dashboard consumes it")
            who += "; real-time robots and issuer" if rt_env else ""
            who += f"; ROS executors: {ros_executor}" if bridged else ""
            print(f"\n## e-stop: {peers} mesh robots + {bridged} bridged ROS robots, {flooders} flooder(s) of 4 KiB "
                  f"puts (BLOCK, as fast as possible; {who}), {rounds} e-stops; {load()}")
            for kind, n in (("mesh", peers), ("bridged", bridged)):
                if not n:
                    continue
                p50, p99, mx = pct(lat[kind], 50, 99, 100)
                ratio = f"  ({p50 / floor[0]:.1f}x / {p99 / floor[1]:.1f}x the raw floor's p50 / p99)" if floor else ""
                print(f"{kind:8s} issue->ack p50 {p50 * 1e3:.2f} ms  p99 {p99 * 1e3:.2f} ms  max {mx * 1e3:.2f} ms; "
                      f"acks {len(lat[kind])}/{n * rounds}{ratio}")
                if own[kind]:
                    p50, p99, mx = pct(own[kind], 50, 99, 100)
                    print(f"{'':8s} issue->halted by the robot's clock (EStopReport.halted_at) p50 {p50 * 1e3:.2f} ms  "
                          f"p99 {p99 * 1e3:.2f} ms  max {mx * 1e3:.2f} ms")
            print(f"lost (a robot not acked within 1 s): {lost}  (goal p99 <= 10 ms, 0 lost)")
            if cold is not None:
                got = sorted(cold.stopped.values())
                missing = set(cold.not_acked) - {"dash", "bridge_estop"}
                print(f"cold: the first e-stop, issued as the last robot joined (not in the figures above): "
                      f"issue->ack min {got[0] * 1e3:.2f} ms  max {got[-1] * 1e3:.2f} ms over {len(got)} robots; "
                      f"not acked {len(missing)}" if got else f"cold: the first e-stop: no robot acked ({missing})")
        finally:
            for p in procs:
                p.close()


def bench_detect(rounds: int = 5) -> None:
    net = Net()
    crash, hang = [], []
    with Mesh("op", config=net.hub()) as op:
        for i in range(rounds):
            for kind, sig, out in (("crash", signal.SIGKILL, crash), ("hang", signal.SIGSTOP, hang)):
                pid = f"{kind}{i}"
                p = python_proc("-m", "strands_mesh_ros.peer", pid, *net.peer_args()).ready()
                try:
                    op.wait_for_peer(pid, 10)
                    wait_for(lambda: op.peers[pid].live_token, 5)
                    t0 = time.monotonic()
                    p.signal(sig)
                    wait_for(lambda: pid not in op.peers, 15, interval=0.001)
                    out.append(time.monotonic() - t0)
                finally:
                    p.close()
    print(f"\n## peer-loss detection, {rounds} rounds each")
    print(f"load avg at end: {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    print(f"crash (SIGKILL, liveliness token drop): median {pct(crash, 50)[0] * 1e3:.1f} ms  max {max(crash) * 1e3:.1f} ms  (goal <= 50 ms)")
    print(f"hang (SIGSTOP, presence silence):       median {pct(hang, 50)[0] * 1e3:.0f} ms  max {max(hang) * 1e3:.0f} ms  (goal <= 2000 ms)")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    print(f"machine: {machine()}")
    print(f"load avg at start: {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    if what in ("rtt", "all"):
        bench_rtt()
    if what in ("estop", "all"):
        # One flooder takes one core: the mesh is flooded, the machine not starved. Each case
        # after the raw Zenoh floor under the same load.
        print("\n## e-stop floor: the same processes and flood with raw zenoh-python ackers")
        bench_estop(flooders=0, floor=bench_estop_raw(flooders=0))
        floor = bench_estop_raw(flooders=1)
        bench_estop(flooders=1, floor=floor)
        bench_estop(flooders=1, robots_consume=True, floor=floor)
    if what in ("estop", "estop-rt", "all"):
        # The same with robots and issuer real-time (opt-in, docs/safety.md), where this OS
        # permits it.
        rt = RealtimeGroups()
        try:
            if rt.reason:
                print(f"\n## e-stop with real-time robots and issuer: skipped ({rt.reason})")
            else:
                print(f"\n## e-stop with real-time robots and issuer: {rt.label}; {rt.join_issuer()}")
                bench_estop(flooders=0, rt=rt, floor=bench_estop_raw(flooders=0, rt=rt))
                floor = bench_estop_raw(flooders=1, rt=rt)
                bench_estop(flooders=1, rt=rt, floor=floor)
                bench_estop(flooders=1, rt=rt, floor=floor, ros_executor="single")
        finally:
            rt.close()
    if what in ("detect", "all"):
        bench_detect()


if __name__ == "__main__":
    main()
