"""The ROS side of bench/bench_bridge.py, run as a subprocess. Not a test, not a bench itself.

One process, one private rclpy Context on ``--domain``; any of:

* ``--nodes ID [ID ...]``: a RobotNode per id (MockDriver; ``--counting`` makes joint1's
  position the joint_states sequence number 0, 1, 2, ... so loss is countable; ``--driver
  mujoco`` a real-time MuJoCo arm6 instead; ``--halt-clock`` makes the driver print
  ``HALTED <id> <unix time>`` when its ``emergency_stop()`` has halted it and ``RESUMED ...``
  after a resume, for bench/bench_halt.py; ``--resume-key`` for signed resumes), in the fleet
  of ``--prefix`` (a robot node serves only the bridge of its own key prefix), each spun by an
  executor of its own as FleetHost spins them (``--executor multi``: all of them by
  one MultiThreadedExecutor, 2 threads per robot, at least 4, as the fleet host did before
  543b08b; a diagnostic / baseline);
* ``--stub N``: a light stand-in for N robots: one plain rclpy node publishing
  ``/<id>/joint_states`` (7 joints, joint1 position = sequence number) for ids
  ``<stub-prefix>0..N-1`` at ``--rate`` Hz, and their Presence on ``/mesh/presence`` at 2 Hz
  (so a bridge proxies them); on the ``--executor`` kind (``events`` unless ``multi``/``single``);
* ``--bridge``: a BridgeNode joined to the mesh ``--prefix`` / ``--connect``, spun by its own
  executor of its own as ``bridge_node.main`` does; ``--trace-estop`` makes it print
  ``BRIDGE_ESTOP <unix time>`` as each mesh e-stop sample reaches it (taken on entry to its
  raw e-stop hook, printed after the sample went into ROS: bench/bench_halt.py's breakdown).

``--executor`` (default ``events``) sets the robots' and the bridge's executors;
``--bridge-executor`` sets the bridge's alone: ``events`` (rclpy's EventsExecutor, one per robot
node and one for the bridge) is how ``strands-mesh up``, ``robot_node`` and ``bridge_node`` run
them by default, ``single`` (SingleThreadedExecutor) their fallback (``STRANDS_MESH_EXECUTOR=single``,
docs/ros.md); ``multi`` is the earlier MultiThreadedExecutor, kept as a diagnostic / baseline.

``--profile FILE``: cProfile every Python thread of this process (executor spin threads, Mesh
intake and lane threads; not Zenoh's native callback threads) and write the merged stats to FILE
on exit (wall-clock time per function, so waits show too). A diagnostic: it slows the process.

Prints ``READY`` once everything is up, then runs until SIGTERM; the bridge prints
``PROXY_CLOSED <id> <why>`` whenever it drops a ROS robot's proxy; on exit the stub prints
``PUBLISHED <id> <count>`` per robot.

    python bench/_ros_side.py --domain 220 --nodes arm_x --bridge --prefix bXXXX --connect tcp/127.0.0.1:7447
    python bench/_ros_side.py --domain 220 --stub 50 --rate 50
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Real-time robots when the bench asks (STRANDS_MESH_RT_*; as ros/entry.py does for the node
# executables), before rclpy starts any thread.
from strands_mesh_ros.robot.realtime import enter_realtime_from_env  # noqa: E402

enter_realtime_from_env()

import rclpy  # noqa: E402
from _common import make_driver
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.ros.spin import BackgroundSpin, make_executor

JOINTS = [f"joint{i}" for i in range(1, 7)] + ["gripper_finger"]


class CountingMock(MockDriver):
    """MockDriver whose joint1 position is the number of observations taken so far."""

    def __init__(self, robot_id: str) -> None:
        super().__init__(robot_id)
        self._n = 0

    def observe(self):
        obs = super().observe()
        obs.position[0] = float(self._n)
        self._n += 1
        return obs


def stub_node(context, ids: list[str], rate: float):
    """A node publishing presence for every id, and per id a node ``stub_<id>`` in namespace
    ``/<id>`` publishing its joint_states (seq in joint1; the bridge counts a robot's joint_states
    as life only from the node its presence names) and subscribed to ``/mesh/estop`` and
    ``/<id>/mesh/command``: the bridge proxies a robot only once both are matched (its e-stop
    must reach it first). The per-id nodes are not spun: what reaches them is never read; the
    first node's timers publish for them. Returns ``(node, counts, listeners)``."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import JointState
    from strands_mesh_ros.msg import Command, EStop, Presence

    from strands_mesh_ros.contract.payloads import make_presence
    from strands_mesh_ros.ros import convert, qos, topics

    node = rclpy.create_node("bench_stub_robots", context=context)
    pubs, msgs, listeners = [], [], []
    for rid in ids:
        lst = rclpy.create_node(f"stub_{rid}", namespace=f"/{rid}", context=context)
        lst.create_subscription(EStop, topics.ESTOP, lambda m: None, qos.ESTOP)
        lst.create_subscription(Command, topics.robot_topic(rid, topics.MESH_COMMAND), lambda m: None, qos.COMMAND)
        listeners.append(lst)
        pubs.append(lst.create_publisher(JointState, topics.robot_topic(rid, topics.JOINT_STATES), qos.JOINT_STATES))
        m = JointState()
        m.name = list(JOINTS)
        m.position = [0.0] * len(JOINTS)
        m.velocity = [0.0] * len(JOINTS)
        m.effort = [0.0] * len(JOINTS)
        msgs.append(m)
    presence_pub = node.create_publisher(Presence, topics.PRESENCE, qos.PRESENCE)
    counts = [0] * len(ids)

    def tick() -> None:
        t = time.time()
        sec = int(t)
        stamp = Time(sec=sec, nanosec=int((t - sec) * 1e9))
        for i, (p, m) in enumerate(zip(pubs, msgs)):
            m.header.stamp = stamp
            m.position[0] = float(counts[i])
            p.publish(m)
            counts[i] += 1

    def presence() -> None:
        for rid in ids:
            pr = make_presence(rid, robot_type="mock_arm", peer_type="robot", task_status="idle",
                               ros={"namespace": f"/{rid}", "node": f"stub_{rid}"})
            presence_pub.publish(convert.presence_to_msg(pr))

    node.create_timer(1.0 / rate, tick)
    node.create_timer(0.5, presence)
    presence()
    return node, counts, listeners


def profile_threads() -> list:
    """Run every thread started from now on under its own cProfile.Profile (cProfile hooks one
    thread only); returns the list the finished threads' profilers are appended to."""
    import cProfile

    done: list = []
    run = threading.Thread.run

    def profiled_run(self) -> None:
        p = cProfile.Profile()
        p.enable()
        try:
            run(self)
        finally:
            p.disable()
            done.append((self.name, p))

    threading.Thread.run = profiled_run
    return done


def dump_profiles(profilers: list, path: str) -> None:
    import pstats

    if not profilers:
        return
    stats = pstats.Stats(profilers[0][1])
    for _, p in profilers[1:]:
        stats.add(p)
    stats.dump_stats(path)
    print(f"PROFILE {path} threads: {', '.join(sorted(n for n, _ in profilers))[:800]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain", type=int, required=True)
    ap.add_argument("--nodes", nargs="*", default=[], metavar="ID")
    ap.add_argument("--counting", action="store_true")
    ap.add_argument("--driver", choices=("mock", "mujoco"), default="mock", help="robot nodes' driver")
    ap.add_argument("--halt-clock", action="store_true", help="robot drivers print HALTED/RESUMED times")
    ap.add_argument("--resume-key", help="robot nodes' resume key")
    ap.add_argument("--state-rate", type=float, default=20.0)
    ap.add_argument("--stub", type=int, default=0, metavar="N")
    ap.add_argument("--stub-prefix", default="r")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--bridge", action="store_true")
    ap.add_argument("--bridge-id", default="bridge_bench")
    ap.add_argument("--trace-estop", action="store_true", help="bridge prints BRIDGE_ESTOP <time> per mesh e-stop")
    ap.add_argument("--prefix")
    ap.add_argument("--connect")
    ap.add_argument("--executor", choices=("events", "single", "multi"), default="events",
                    help="events / single: an EventsExecutor / SingleThreadedExecutor per robot node and one for "
                         "the bridge (as FleetHost, robot_node and bridge_node run them with "
                         "STRANDS_MESH_EXECUTOR=events / by default); multi: MultiThreadedExecutor (the earlier fleet "
                         "host; diagnostic / baseline)")
    ap.add_argument("--bridge-executor", choices=("events", "single", "multi"),
                    help="the bridge's executor alone (default: --executor)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile every Python thread; merged stats to FILE on exit")
    args = ap.parse_args()
    profilers = profile_threads() if args.profile else None

    def executor(threads: int, kind: str | None = None):
        kind = kind or args.executor
        if kind == "multi":
            return MultiThreadedExecutor(num_threads=threads, context=ctx)
        return make_executor(ctx, kind)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=args.domain, signal_handler_options=SignalHandlerOptions.NO)
    spinners, nodes, stub_counts, stub_ids = [], [], None, []
    try:
        if args.nodes:
            from strands_mesh_ros.ros.robot_node import RobotNode

            shared = executor(max(4, 2 * len(args.nodes))) if args.executor == "multi" else None
            for rid in args.nodes:
                drv = CountingMock(rid) if args.counting else make_driver(args.driver, rid, args.halt_clock)
                n = RobotNode(rid, driver=drv, context=ctx, close_driver=True, node_name=f"robot_{rid}",
                              parameter_overrides=[Parameter("state_rate", value=float(args.state_rate))],
                              prefix=args.prefix, resume_key=args.resume_key)
                nodes.append(n)
                if shared is not None:
                    shared.add_node(n)
                else:  # as FleetHost: one executor per robot node, on a thread of its own
                    ex = executor(1)
                    ex.add_node(n)
                    spinners.append(BackgroundSpin(ex, f"robot-{rid}"))
            if shared is not None:
                spinners.append(BackgroundSpin(shared, "robots"))
        if args.stub:
            stub_ids = [f"{args.stub_prefix}{i}" for i in range(args.stub)]
            node, stub_counts, listeners = stub_node(ctx, stub_ids, args.rate)
            nodes += [*listeners, node]
            ex = executor(1)
            ex.add_node(node)
            spinners.append(BackgroundSpin(ex, "stub"))
        if args.bridge:
            from strands_mesh_ros.mesh.config import MeshConfig
            from strands_mesh_ros.ros import bridge_node
            from strands_mesh_ros.ros.bridge_node import BridgeNode

            close = bridge_node._RosRobotProxy.close

            def logged_close(proxy, why: str) -> None:  # the bench counts proxies dropped while running
                os.write(1, f"PROXY_CLOSED {proxy.robot_id} {why}\n".encode())  # one write: no log line inside
                close(proxy, why)

            bridge_node._RosRobotProxy.close = logged_close
            if args.trace_estop:
                raw = BridgeNode._on_mesh_estop_raw

                def traced(bridge, payload: bytes) -> None:  # Zenoh's thread, before anything parses
                    t = time.time()
                    raw(bridge, payload)
                    os.write(1, f"BRIDGE_ESTOP {t:.6f}\n".encode())  # one write: no log line lands inside

                BridgeNode._on_mesh_estop_raw = traced

            cfg = MeshConfig(prefix=args.prefix, connect=(args.connect,), multicast_scouting=False)
            br = BridgeNode(mesh_config=cfg, bridge_id=args.bridge_id, context=ctx, node_name="bench_bridge")
            nodes.append(br)
            ex = executor(4, args.bridge_executor)
            ex.add_node(br)
            spinners.append(BackgroundSpin(ex, "bridge"))
        print("READY", flush=True)
        done.wait()
    finally:
        for s in spinners:
            s.stop()
        if stub_counts is not None:
            for rid, c in zip(stub_ids, stub_counts):
                print("PUBLISHED", rid, c, flush=True)
        for n in reversed(nodes):
            n.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if profilers is not None:
            dump_profiles(profilers, args.profile)


if __name__ == "__main__":
    main()
