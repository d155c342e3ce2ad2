"""The bridge node with real rclpy and real Zenoh: ROS robots on the mesh, mesh robots in ROS,
e-stop across, loop-freedom and one active bridge per ROS domain."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from helpers import python_proc, wait_for
from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON, RosEnv

pytestmark = [
    pytest.mark.skipif(not HAVE_RCLPY, reason=NO_ROS_REASON),
    pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON),
]


@pytest.fixture
def ros(request):
    """The ROS side, on the package's executor; a test parametrized indirectly with ``events``
    or ``single`` names the kind (``events``: the default; ``single``: the STRANDS_MESH_EXECUTOR=single
    fallback)."""
    env = RosEnv(executor=getattr(request, "param", None))
    yield env
    env.close()


BOTH_EXECUTORS = pytest.mark.parametrize("ros", ["events", "single"], indirect=True)


def rid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def ros_robot(ros, robot_id: str):
    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.ros.robot_node import RobotNode

    return ros.add(RobotNode(robot_id, driver=MockDriver(robot_id), context=ros.context, close_driver=True))


def bridge(ros, net, bridge_id: str = "bridge_a", hub: bool = True):
    from strands_mesh_ros.ros.bridge_node import BridgeNode

    cfg = net.hub() if hub else net.member()
    return ros.add(BridgeNode(mesh_config=cfg, bridge_id=bridge_id, context=ros.context,
                              node_name=f"bridge_{uuid.uuid4().hex[:6]}"))


def cli(net, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", *args, "--prefix", net.prefix,
                           "--connect", net.endpoint, "--json"], capture_output=True, text=True, timeout=60)


@BOTH_EXECUTORS
def test_mesh_peer_in_another_process_commands_a_ros_robot(ros, net):
    arm = rid("arm")
    node = ros_robot(ros, arm)
    br = bridge(ros, net)
    wait_for(lambda: arm in br.proxies, 10, what="the ROS robot bridged")
    r = cli(net, "tell", arm, "move joints to 0.3 0 0 0 0 0 in 0.1 s")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["responder_id"] == arm
    assert node.robot.driver.observe().position[0] == pytest.approx(0.3)
    # presence on the mesh carries the ROS namespace and the bridge as `via`
    r = cli(net, "peers", "--discover", "1.5")
    peer = {p["peer_id"]: p for p in json.loads(r.stdout)}[arm]
    assert peer["via"] == "bridge_a" and peer["ros"]["namespace"] == f"/{arm}"
    # state on the mesh comes from /<id>/joint_states
    r = cli(net, "echo", f"{net.prefix}/{arm}/state", "-n", "1", "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["value"]["joints"]["joint1"]["position"] == pytest.approx(0.3)
    # bad input through the bridge still gets a named error from the ROS robot
    r = cli(net, "send", arm, '{"action": "fly"}')
    assert r.returncode == 1 and "unknown action 'fly'" in r.stdout


def test_mesh_only_robot_appears_in_ros(ros, net):
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from strands_mesh_ros.msg import PeerArray
    from strands_mesh_ros.ros import qos

    br = bridge(ros, net)
    bot = rid("meshbot")
    peers = ros.sub(PeerArray, "/mesh/peers", qos.PRESENCE)
    joints = ros.sub(JointState, f"/{bot}/joint_states", qos.JOINT_STATES)
    desc = ros.sub(String, f"/{bot}/robot_description", qos.ROBOT_DESCRIPTION)
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        peers.wait(lambda m: bot in [x.peer_id for x in m.peers], 10, what="mesh robot on /mesh/peers")
        js = joints.wait(lambda m: len(m.name) > 0, 10, what="mirrored joint_states")
        assert "joint1" in js.name
        assert "<robot" in desc.wait(timeout=10, what="mirrored robot_description").data
        assert bot not in br.proxies  # loop-free: a mirrored peer is never proxied back
    finally:
        p.close()


def test_mesh_only_robot_that_leaves_and_returns_is_mirrored_again(ros, net):
    """The bridge subscribes to each mirrored peer's state key: the subscription ends with the
    peer and is made again when it returns (states after the return reach ROS)."""
    from sensor_msgs.msg import JointState

    from strands_mesh_ros.ros import qos

    br = bridge(ros, net)
    bot = rid("meshbot")
    joints = ros.sub(JointState, f"/{bot}/joint_states", qos.JOINT_STATES)
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        joints.wait(lambda m: len(m.name) > 0, 10, what="mirrored joint_states")
    finally:
        p.close()
    wait_for(lambda: bot not in br.mirrors and bot not in br._state_subs, 10, what="mirror and subscription ended")
    count = len(joints.msgs)
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        wait_for(lambda: bot in br.mirrors, 10, what="mirrored again")
        wait_for(lambda: len(joints.msgs) > count + 5, 10, what="joint_states after the return")
    finally:
        p.close()


@BOTH_EXECUTORS
def test_estop_from_ros_halts_a_mesh_only_robot_and_from_mesh_halts_a_ros_robot(ros, net):
    from strands_mesh_ros.mesh.mesh import Mesh
    from strands_mesh_ros.msg import EStop
    from strands_mesh_ros.ros import qos

    arm = rid("arm")
    node = ros_robot(ros, arm)
    br = bridge(ros, net)
    bot = rid("meshbot")
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        with Mesh("op", config=net.member()) as op:
            op.wait_for_peer(bot, 10)
            wait_for(lambda: arm in op.peers, 10, what="ROS robot on the mesh")
            # 1) from the mesh: the ROS robot halts, and its ack comes back as its own
            assert br._ros_estop_sub.is_cft_enabled  # relayed e-stops stop in DDS, not in the bridge's Python
            report = op.emergency_stop("mesh drill", timeout=2.0)
            assert arm in report.stopped and bot in report.stopped and "bridge_a" in report.no_actuators
            assert not report.not_acked
            assert node.robot.locked_out
            # the lockout travels in presence, relayed for the ROS robot too (the fleet view shows it)
            wait_for(lambda: all(op.peers.get(r) and op.peers[r].presence.lockout for r in (arm, bot)), 10,
                     what="both robots' lockout in their presence")
            # 2) from ROS: a fresh mesh-only robot halts
            bot2 = rid("meshbot")
            p2 = python_proc("-m", "strands_mesh_ros.peer", bot2, *net.peer_args).ready()
            try:
                op.wait_for_peer(bot2, 10)
                wait_for(lambda: br.mesh.peers.get(bot2), 10, what="bridge sees the new robot")
                pub = ros.pub(EStop, "/mesh/estop", qos.ESTOP, subscribers=2)
                pub.publish(EStop(issuer_id="ros_panel", seq=1, t=0.0, reason="ros drill"))
                wait_for(lambda: op.send(bot2, {"action": "status"}).result["locked_out"], 10,
                         what="mesh-only robot locked out by the ROS e-stop")
            finally:
                p2.close()
    finally:
        p.close()


def test_ros_nodes_command_any_mesh_peer(ros, net):
    from strands_mesh_ros.srv import SendCommand

    bridge(ros, net)
    bot = rid("meshbot")
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        client = ros.probe.create_client(SendCommand, "/mesh/send_command")
        assert client.wait_for_service(timeout_sec=10)

        def call(peer, command):
            fut = client.call_async(SendCommand.Request(peer_id=peer, command_json=command, timeout=5.0))
            return wait_for(lambda: fut.done() and fut.result(), 15, what="service answer")

        wait_for(lambda: call(bot, '{"action": "status"}').status == "done", 15, what="mesh robot reachable")
        r = call(bot, '{"action": "skill", "name": "move_joints", "args": {"positions": [0.1, 0, 0, 0, 0, 0], "duration": 0}}')
        assert r.status == "done" and r.responder_id == bot
        assert json.loads(r.result_json)["result"]["positions"]["joint1"] == pytest.approx(0.1)
        r = call(bot, "{nope")
        assert r.status == "error" and "malformed JSON" in r.error
        r = call("bad/id", '{"action": "status"}')
        assert r.status == "error" and "invalid target peer id" in r.error
    finally:
        p.close()


def test_two_bridges_one_active_no_duplicates_and_failover(ros, net):
    from strands_mesh_ros.mesh.mesh import Mesh

    arm = rid("arm")
    ros_robot(ros, arm)
    with Mesh("op", config=net.hub()) as op:  # the hub: bridge_a's leaving must not cut the mesh
        a = bridge(ros, net, "bridge_a", hub=False)
        b = bridge(ros, net, "bridge_b", hub=False)
        wait_for(lambda: op.peers.get(arm) and a.active, 10, what="robot bridged by bridge_a")
        wait_for(lambda: "bridge_b" in op.peers, 10, what="bridge_b on the mesh")
        assert not b.active and not b.proxies
        assert op.peers[arm].via == "bridge_a"
        assert op.send(arm, {"action": "status"}).ok
        # bridge_a leaves: bridge_b takes over the robot
        ros.executor.remove_node(a)
        ros.nodes.remove(a)
        a.destroy_node()
        wait_for(lambda: b.active and arm in b.proxies, 10, what="bridge_b takes over")
        wait_for(lambda: op.peers.get(arm) and op.peers[arm].via == "bridge_b", 10, what="robot via bridge_b")
        assert op.send(arm, {"action": "status"}).ok


def test_robots_leaving_and_returning_never_stop_the_bridge(ros, net):
    """Regression: destroying a departed robot's subscriptions while the executor built its
    wait set killed the bridge's spin thread (rclpy InvalidHandle); the endpoints now stay."""
    from strands_mesh_ros.mesh.mesh import Mesh

    stay, come_go = rid("stay"), rid("cg")
    ros_robot(ros, stay)
    br = bridge(ros, net, hub=False)
    with Mesh("op", config=net.hub()) as op:
        wait_for(lambda: stay in br.proxies, 10, what="the staying robot bridged")
        for cycle in range(3):
            node = ros_robot(ros, come_go)
            wait_for(lambda: come_go in br.proxies and op.peers.get(come_go), 15, what=f"cycle {cycle}: bridged")
            assert op.send(come_go, {"action": "status"}).ok
            ros.executor.remove_node(node)
            ros.nodes.remove(node)
            node.destroy_node()
            wait_for(lambda: come_go not in br.proxies, 15, what=f"cycle {cycle}: dropped")
        # the bridge still spins: commands and state of the staying robot flow
        r = op.send(stay, {"action": "skill", "name": "move_joints",
                           "args": {"positions": [0.2, 0, 0, 0, 0, 0], "duration": 0}}, timeout=10)
        assert r.ok, r.error
        seen: list = []
        sub = op.subscribe(f"{net.prefix}/{stay}/state", lambda k, v: seen.append(v))
        wait_for(lambda: any(abs(s["joints"]["joint1"]["position"] - 0.2) < 1e-6 for s in seen), 10,
                 what="fresh state relayed")
        op.unsubscribe(sub)
