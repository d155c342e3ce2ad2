"""The ROS side of bench/bench_bridge.py, run as a subprocess. Not a test, not a bench itself.

One process, one private rclpy Context on ``--domain``; any of:

* ``--nodes ID [ID ...]``: a RobotNode per id (MockDriver; ``--counting`` makes joint1's
  position the joint_states sequence number 0, 1, 2, ... so loss is countable), spun by one
  MultiThreadedExecutor sized as FleetHost sizes it (2 threads per robot, at least 4);
* ``--stub N``: a light stand-in for N robots: one plain rclpy node publishing
  ``/<id>/joint_states`` (7 joints, joint1 position = sequence number) for ids
  ``<stub-prefix>0..N-1`` at ``--rate`` Hz, and their Presence on ``/mesh/presence`` at 2 Hz
  (so a bridge proxies them); single-threaded executor;
* ``--bridge``: a BridgeNode joined to the mesh ``--prefix`` / ``--connect``, spun by its own
  MultiThreadedExecutor(4) as ``bridge_node.main`` does.

``--executor single`` swaps both MultiThreadedExecutors for SingleThreadedExecutors: not how
the package runs (the bridge's /mesh/send_command service blocks), only to show what the rclpy
executor itself costs.

Prints ``READY`` once everything is up, then runs until SIGTERM; the bridge prints
``PROXY_CLOSED <id> <why>`` whenever it drops a ROS robot's proxy; on exit the stub prints
``PUBLISHED <id> <count>`` per robot.

    python bench/_ros_side.py --domain 220 --nodes arm_x --bridge --prefix bXXXX --connect tcp/127.0.0.1:7447
    python bench/_ros_side.py --domain 220 --stub 50 --rate 50
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rclpy
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.ros.spin import BackgroundSpin

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
    """A node publishing joint_states (seq in joint1) and presence for every id."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import JointState
    from strands_mesh_ros.msg import Presence

    from strands_mesh_ros.contract.payloads import make_presence
    from strands_mesh_ros.ros import convert, qos, topics

    node = rclpy.create_node("bench_stub_robots", context=context)
    pubs, msgs = [], []
    for rid in ids:
        pubs.append(node.create_publisher(JointState, topics.robot_topic(rid, topics.JOINT_STATES), qos.JOINT_STATES))
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
                               ros={"namespace": f"/{rid}", "node": "bench_stub_robots"})
            presence_pub.publish(convert.presence_to_msg(pr))

    node.create_timer(1.0 / rate, tick)
    node.create_timer(0.5, presence)
    presence()
    return node, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain", type=int, required=True)
    ap.add_argument("--nodes", nargs="*", default=[], metavar="ID")
    ap.add_argument("--counting", action="store_true")
    ap.add_argument("--state-rate", type=float, default=20.0)
    ap.add_argument("--stub", type=int, default=0, metavar="N")
    ap.add_argument("--stub-prefix", default="r")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--bridge", action="store_true")
    ap.add_argument("--bridge-id", default="bridge_bench")
    ap.add_argument("--prefix")
    ap.add_argument("--connect")
    ap.add_argument("--executor", choices=("multi", "single"), default="multi",
                    help="multi: MultiThreadedExecutor as fleet_host / bridge_node main use (default); "
                         "single: SingleThreadedExecutor (diagnostic: the rclpy executor's own cost)")
    args = ap.parse_args()

    def executor(threads: int):
        if args.executor == "single":
            return SingleThreadedExecutor(context=ctx)
        return MultiThreadedExecutor(num_threads=threads, context=ctx)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=args.domain, signal_handler_options=SignalHandlerOptions.NO)
    spinners, nodes, stub_counts, stub_ids = [], [], None, []
    try:
        if args.nodes:
            from strands_mesh_ros.ros.robot_node import RobotNode

            ex = executor(max(4, 2 * len(args.nodes)))
            for rid in args.nodes:
                drv = CountingMock(rid) if args.counting else MockDriver(rid)
                n = RobotNode(rid, driver=drv, context=ctx, close_driver=True, node_name=f"robot_{rid}",
                              parameter_overrides=[Parameter("state_rate", value=float(args.state_rate))])
                nodes.append(n)
                ex.add_node(n)
            spinners.append(BackgroundSpin(ex, "robots"))
        if args.stub:
            stub_ids = [f"{args.stub_prefix}{i}" for i in range(args.stub)]
            node, stub_counts = stub_node(ctx, stub_ids, args.rate)
            nodes.append(node)
            ex = SingleThreadedExecutor(context=ctx)
            ex.add_node(node)
            spinners.append(BackgroundSpin(ex, "stub"))
        if args.bridge:
            from strands_mesh_ros.mesh.config import MeshConfig
            from strands_mesh_ros.ros import bridge_node
            from strands_mesh_ros.ros.bridge_node import BridgeNode

            close = bridge_node._RosRobotProxy.close

            def logged_close(proxy, why: str) -> None:  # the bench counts proxies dropped while running
                print("PROXY_CLOSED", proxy.robot_id, why, flush=True)
                close(proxy, why)

            bridge_node._RosRobotProxy.close = logged_close

            cfg = MeshConfig(prefix=args.prefix, connect=(args.connect,), multicast_scouting=False)
            br = BridgeNode(mesh_config=cfg, bridge_id=args.bridge_id, context=ctx, node_name="bench_bridge")
            nodes.append(br)
            ex = executor(4)
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


if __name__ == "__main__":
    main()
