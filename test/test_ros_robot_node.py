"""RobotNode and FleetHost with real rclpy: topics, commands, e-stop, resume, isolation.

Each test runs in its own rclpy context on this module's ROS domain, with an executor on a
background thread; waits are condition polls with timeouts.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpers import Proc, wait_for
from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON, RosEnv

pytestmark = [
    pytest.mark.skipif(not HAVE_RCLPY, reason=NO_ROS_REASON),
    pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON),
]

REPO = Path(__file__).resolve().parent.parent
KEY = "0123456789abcdef-test-resume-key"
ARM_TARGET = [0.4, 0.5, 0.9, -0.3, 0.8, 0.2]

try:
    import mujoco  # noqa: F401

    from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver  # noqa: F401

    HAVE_MUJOCO = True
except ImportError:
    HAVE_MUJOCO = False

DRIVERS = ["mock", pytest.param("mujoco", marks=pytest.mark.skipif(not HAVE_MUJOCO, reason="mujoco driver not importable"))]


@pytest.fixture
def ros():
    env = RosEnv()
    yield env
    env.close()


def rid(prefix: str = "arm") -> str:
    """A robot id unique to this test (robots of different tests never share topics)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def make_driver(kind: str, robot_id: str):
    if kind == "mock":
        from strands_mesh_ros.drivers.mock import MockDriver

        return MockDriver(robot_id)
    from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver

    return MujocoDriver(robot_id, "arm6")


def robot_node(ros, kind: str = "mock", robot_id: str | None = None, **kw):
    from strands_mesh_ros.ros.robot_node import RobotNode

    robot_id = robot_id or rid()
    node = RobotNode(driver=make_driver(kind, robot_id), context=ros.context, close_driver=True, **kw)
    return ros.add(node)


def command(sender: str, cmd: dict, target: str = "") -> object:
    from strands_mesh_ros.msg import Command

    return Command(sender_id=sender, target_id=target, turn_id=uuid.uuid4().hex, action=cmd.get("action", ""),
                   command_json=json.dumps(cmd), timestamp=time.time())


class Client:
    """Publishes Commands to one robot and collects its Responses."""

    def __init__(self, ros, robot_id: str) -> None:
        from strands_mesh_ros.msg import Command, Response
        from strands_mesh_ros.ros import qos, topics

        self.responses = ros.sub(Response, topics.robot_topic(robot_id, topics.MESH_RESPONSE), qos.RESPONSE)
        self.pub = ros.pub(Command, topics.robot_topic(robot_id, topics.MESH_COMMAND), qos.COMMAND)
        # The response subscription must be matched too, or an early answer is lost.
        wait_for(lambda: ros.probe.count_publishers(topics.robot_topic(robot_id, topics.MESH_RESPONSE)) >= 1,
                 10, what="the response publisher")

    def send(self, cmd: dict, target: str = "") -> str:
        msg = command("operator", cmd, target)
        self.pub.publish(msg)
        return msg.turn_id

    def answer(self, turn: str, timeout: float = 15.0):
        return self.responses.wait(lambda r: r.turn_id == turn, timeout, what=f"response to {turn}")

    def call(self, cmd: dict, timeout: float = 15.0):
        return self.answer(self.send(cmd), timeout)


def joint_states(ros, robot_id: str):
    from sensor_msgs.msg import JointState

    from strands_mesh_ros.ros import qos, topics

    return ros.sub(JointState, topics.robot_topic(robot_id, topics.JOINT_STATES), qos.JOINT_STATES)


def near(msg, names, target, tol) -> bool:
    pos = dict(zip(msg.name, msg.position))
    return all(abs(pos[n] - v) <= tol for n, v in zip(names, target))


# -- topics -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", DRIVERS)
def test_joint_states_and_latched_description(ros, kind):
    from std_msgs.msg import String

    from strands_mesh_ros.ros import qos, topics

    node = robot_node(ros, kind)
    names = [j.name for j in node.robot.driver.joints()]
    js = joint_states(ros, node.robot_id)
    first = js.wait(timeout=10, what="joint_states")
    assert list(first.name) == names
    assert len(first.position) == len(first.velocity) == len(first.effort) == len(names)
    assert abs(first.header.stamp.sec + first.header.stamp.nanosec * 1e-9 - time.time()) < 5.0
    # Joined after the one-off publication: TRANSIENT_LOCAL still delivers it.
    desc = ros.sub(String, topics.robot_topic(node.robot_id, topics.ROBOT_DESCRIPTION), qos.ROBOT_DESCRIPTION)
    urdf = desc.wait(timeout=10, what="robot_description").data
    assert "<robot" in urdf and all(f'name="{n}"' in urdf for n in names)


def test_presence_names_namespace_and_skills(ros):
    from strands_mesh_ros.msg import Presence
    from strands_mesh_ros.ros import qos, topics

    node = robot_node(ros)
    pres = ros.sub(Presence, topics.PRESENCE, qos.PRESENCE)
    msg = pres.wait(lambda m: m.peer_id == node.robot_id, 10, what="presence")
    assert msg.ros_namespace == f"/{node.robot_id}"
    assert msg.ros_node == "robot_node"
    assert msg.peer_type == "robot" and msg.robot_type == "mock_arm"
    assert abs(msg.timestamp - time.time()) < 5
    skills = {s.name: s for s in msg.skills}
    assert {"move_joints", "home", "get_state", "move_gripper"} <= set(skills)
    assert skills["move_joints"].lane == "motion"
    assert json.loads(skills["move_joints"].params_json)["type"] == "object"


# -- commands -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", DRIVERS)
def test_move_joints_command_reaches_target(ros, kind):
    node = robot_node(ros, kind)
    names = [j.name for j in node.robot.driver.arm_joints()]
    js = joint_states(ros, node.robot_id)
    client = Client(ros, node.robot_id)
    resp = client.call({"action": "skill", "name": "move_joints", "args": {"positions": ARM_TARGET, "duration": 0.5}})
    assert (resp.status, resp.type, resp.error) == ("done", "response", "")
    assert resp.responder_id == node.robot_id and resp.sender_id == "operator"
    result = json.loads(resp.result_json)
    assert result["skill"] == "move_joints" and result["result"]["reached"] is True
    js.wait(lambda m: near(m, names, ARM_TARGET, 0.03), 10, what="joint_states at the target")


def test_unknown_action_and_bad_commands_get_errors(ros):
    from strands_mesh_ros.msg import Command

    node = robot_node(ros)
    client = Client(ros, node.robot_id)
    resp = client.call({"action": "dance"})
    assert resp.status == "error" and resp.type == "error"
    assert "dance" in resp.error and "unknown action" in resp.error
    bad = Command(sender_id="operator", turn_id=uuid.uuid4().hex, action="skill", command_json="{not json")
    client.pub.publish(bad)
    assert "malformed JSON" in client.answer(bad.turn_id).error
    resp = client.call({"action": "skill", "name": "fly", "args": {}})
    assert resp.status == "error" and "fly" in resp.error
    resp = client.call({"action": "skill", "name": "move_joints", "args": {"positions": [1.0]}})
    assert resp.status == "error" and "bad args" in resp.error
    turn = client.send({"action": "status"}, target="someone_else")
    assert "someone_else" in client.answer(turn).error
    resp = client.call({"action": "resume"})  # unsigned: refused exactly as a mesh robot refuses it
    assert resp.status == "refused" and "resume refused" in resp.error
    state = json.loads(client.call({"action": "state"}).result_json)
    assert state["peer_id"] == node.robot_id and "joint1" in state["joints"]
    assert client.call({"action": "peers"}).result_json == "[]"


def test_execute_instruction_over_ros(ros):
    node = robot_node(ros)
    client = Client(ros, node.robot_id)
    resp = client.call({"action": "execute", "instruction": "move joint2 to 0.7 in 0.2 s"})
    assert resp.status == "done", resp.error
    assert abs(node.robot.driver.observe().position[1] - 0.7) < 1e-6


# -- safety -------------------------------------------------------------------------------

def estop_io(ros):
    from strands_mesh_ros.msg import EStop, Response
    from strands_mesh_ros.ros import qos, topics

    acks = ros.sub(Response, topics.ESTOP_ACK, qos.ESTOP_ACK)
    pub = ros.pub(EStop, topics.ESTOP, qos.ESTOP)
    wait_for(lambda: ros.probe.count_publishers(topics.ESTOP_ACK) >= 1, 10, what="the ack publisher")
    return pub, acks


def test_estop_halts_latches_and_acks(ros, _audit_dir):
    from rcl_interfaces.msg import Log
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from strands_mesh_ros.msg import EStop

    node = robot_node(ros)
    client = Client(ros, node.robot_id)
    pub, acks = estop_io(ros)
    rosout = ros.sub(Log, "/rosout", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    moving = client.send({"action": "skill", "name": "move_joints",
                          "args": {"positions": ARM_TARGET, "duration": 20.0}})
    wait_for(lambda: node.robot.lanes.running().get("motion") == "move_joints", 10, what="the move to start")
    pub.publish(EStop(issuer_id="operator", seq=7, t=time.time(), reason="test stop"))
    ack = acks.wait(lambda a: a.responder_id == node.robot_id, 10, what="e-stop ack")
    assert (ack.turn_id, ack.sender_id, ack.status) == ("7", "operator", "done")
    assert json.loads(ack.result_json)["halted"] is True
    assert node.robot.driver.halted and node.robot.locked_out
    assert node.robot.lockout["issuer"] == "operator"
    preempted = client.answer(moving)
    assert preempted.status == "refused" and "e-stop" in preempted.error
    held = node.robot.driver.observe().position.copy()
    refused = client.call({"action": "execute", "instruction": "home"})
    assert refused.status == "refused" and "locked out" in refused.error
    assert client.call({"action": "status"}).status == "done"  # status is still answered
    assert (node.robot.driver.observe().position == held).all()
    audit = (_audit_dir / f"audit-{node.robot_id}.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in audit]
    assert any(e["event"] == "estop_received" and e["issuer"] == "operator" and e["seq"] == 7 for e in events)
    # the log line comes at the node's next presence tick, off the e-stop's path
    rosout.wait(lambda m: m.level == Log.WARN and "E-STOP (operator)" in m.msg and node.get_name() in m.name, 5,
                what="the e-stop's warning on /rosout")


def test_estop_over_command_path(ros):
    node = robot_node(ros)
    client = Client(ros, node.robot_id)
    resp = client.call({"action": "emergency_stop", "reason": "from the command path"})
    assert resp.status == "done", resp.error
    assert json.loads(resp.result_json) == {"halted": True}
    assert node.robot.locked_out and node.robot.driver.halted


def test_signed_resume_clears_lockout_and_bad_one_is_refused(ros):
    from std_msgs.msg import String

    from strands_mesh_ros.contract.payloads import Resume
    from strands_mesh_ros.robot.safety import sign_resume
    from strands_mesh_ros.msg import EStop
    from strands_mesh_ros.ros import qos, topics

    node = robot_node(ros, resume_key=KEY)
    pub, acks = estop_io(ros)
    pub.publish(EStop(issuer_id="operator", seq=1, t=time.time(), reason="test"))
    acks.wait(lambda a: a.responder_id == node.robot_id, 10, what="e-stop ack")
    from strands_mesh_ros.msg import Response as ResponseMsg

    resume_acks = ros.sub(ResponseMsg, topics.RESUME_ACK, qos.RESUME_ACK)
    rpub = ros.pub(String, topics.RESUME, qos.RESUME)
    wait_for(lambda: ros.probe.count_publishers(topics.RESUME_ACK) >= 1, 10, what="the resume ack publisher")

    def ack_for(seq):
        m = resume_acks.wait(lambda m: json.loads(bytes(m.payload))["seq"] == seq
                             and m.responder_id == node.robot_id, 10, what=f"resume ack {seq}")
        assert m.key == f"{node.prefix}/safety/resume/ack/operator/{node.robot_id}"  # where the bridge puts it
        return {**json.loads(bytes(m.payload)), "issuer_id": m.sender_id}

    forged = Resume(peer_id="operator", t=time.time(), seq=1, operator="alice", mac="00" * 32)
    rpub.publish(String(data=forged.to_json().decode()))
    ack = ack_for(1)
    assert ack["accepted"] is False and "signature" in ack["detail"] and node.robot.locked_out
    good = sign_resume(Resume(peer_id="operator", t=time.time(), seq=2, operator="alice"), KEY.encode())
    rpub.publish(String(data=good.to_json().decode()))
    ack = ack_for(2)
    assert ack["accepted"] is True and ack["issuer_id"] == "operator"
    assert not node.robot.locked_out and not node.robot.driver.halted


# -- identity and parameters --------------------------------------------------------------

def test_bad_robot_id_refused(ros):
    from rclpy.exceptions import InvalidParameterValueException
    from rclpy.parameter import Parameter

    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.ros.fleet_host import FleetHost
    from strands_mesh_ros.ros.robot_node import RobotNode

    with pytest.raises(ValueError, match=r"'arm-1'.*\[A-Za-z\]\[A-Za-z0-9_\]\*"):
        RobotNode(driver=MockDriver("arm-1"), context=ros.context)
    with pytest.raises(ValueError, match=r"'arm-1'"):
        RobotNode("arm-1", context=ros.context)
    with pytest.raises(InvalidParameterValueException, match=r"arm-1"):
        RobotNode(context=ros.context, parameter_overrides=[Parameter("robot_id", value="arm-1")])
    with pytest.raises(ValueError, match=r"'arm-1'"):
        FleetHost({"robots": [{"id": "arm-1", "driver": "mock"}]}, context=ros.context)
    with pytest.raises(ValueError, match="needs a robot id"):
        RobotNode(context=ros.context, parameter_overrides=[Parameter("driver", value="mock")])


def test_parameters_validated(ros):
    from rclpy.exceptions import InvalidParameterValueException
    from rclpy.parameter import Parameter

    from strands_mesh_ros.ros.robot_node import RobotNode

    with pytest.raises(InvalidParameterValueException, match="driver 'warp' unknown"):
        RobotNode(rid(), context=ros.context, parameter_overrides=[Parameter("driver", value="warp")])
    with pytest.raises(InvalidParameterValueException, match="state_rate"):
        RobotNode(rid(), context=ros.context, parameter_overrides=[Parameter("state_rate", value=900.0)])
    with pytest.raises(ValueError, match="driver_config"):
        RobotNode(rid(), context=ros.context, parameter_overrides=[Parameter("driver", value="ros_topics")])
    node = ros.add(RobotNode(rid(), context=ros.context, parameter_overrides=[Parameter("driver", value="mock")]))
    res = node.set_parameters([Parameter("state_rate", value=0.5)])[0]
    assert not res.successful and "state_rate" in res.reason
    assert not node.set_parameters([Parameter("driver", value="mujoco")])[0].successful  # read-only
    assert node.set_parameters([Parameter("state_rate", value=50.0)])[0].successful
    assert node._js_timer.timer_period_ns == pytest.approx(2e7)


@pytest.mark.skipif(not HAVE_MUJOCO, reason="mujoco driver not importable")
def test_loads_config_robot_yaml(ros_domain):
    """config/robot.yaml (keyed ``/**: ros__parameters:``) configures a node from the command line."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from strands_mesh_ros.ros.robot_node import RobotNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=ros_domain, signal_handler_options=SignalHandlerOptions.NO,
               args=["robot_node", "--ros-args", "--params-file", str(REPO / "config" / "robot.yaml")])
    try:
        node = RobotNode(context=ctx)
        try:
            assert node.robot_id == "arm1" and node.ros_namespace == "/arm1"
            assert node.get_parameter("driver").value == "mujoco"
            assert node.get_parameter("state_rate").value == 20.0
            assert node.robot.driver.robot_type == "arm6"
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


# -- fleet host ---------------------------------------------------------------------------

def fleet(*ids: str, driver: str = "mujoco") -> dict:
    if driver == "mujoco" and not HAVE_MUJOCO:
        driver = "mock"
    return {"robots": [{"id": i, "driver": driver, "model": "arm6"} for i in ids]}


def test_fleet_host_robots_are_isolated(ros):
    from strands_mesh_ros.ros.fleet_host import FleetHost

    a, b = rid("arm"), rid("arm")
    host = FleetHost(fleet(a, b), context=ros.context).start()
    try:
        js_b = joint_states(ros, b)
        before = list(js_b.wait(timeout=10, what=f"{b} joint_states").position)
        names = [j.name for j in host.nodes[a].robot.driver.arm_joints()]
        js_a = joint_states(ros, a)
        resp = Client(ros, a).call({"action": "skill", "name": "move_joints",
                                    "args": {"positions": ARM_TARGET, "duration": 0.5}})
        assert resp.status == "done", resp.error
        js_a.wait(lambda m: near(m, names, ARM_TARGET, 0.03), 10, what=f"{a} at the target")
        n_b = len(js_b.msgs)
        js_b.wait(lambda m: js_b.msgs.index(m) >= n_b, 10, what=f"a fresh {b} joint_states")
        after = list(js_b.last.position)
        assert max(abs(x - y) for x, y in zip(before, after)) < 1e-3, (before, after)
        assert host.nodes[b].robot.task["status"] == "idle"
    finally:
        host.close()


@pytest.mark.skipif(not HAVE_MUJOCO, reason="the default fleet is simulated in MuJoCo")
def test_other_process_sees_every_robot_of_the_default_fleet(ros, ros_domain):
    from strands_mesh_ros.drivers.fleet_config import DEFAULT_FLEET
    from strands_mesh_ros.ros import topics
    from strands_mesh_ros.ros.fleet_host import FleetHost

    host = FleetHost(None, context=ros.context).start()
    proc = None
    try:
        ids = [r.id for r in DEFAULT_FLEET.robots if r.ros]  # base1 is mesh-only: the bridge shows it
        assert ids == list(host.nodes) and len(ids) >= 2
        wanted = [topics.robot_topic(i, topics.JOINT_STATES) for i in ids]
        proc = Proc([sys.executable, str(Path(__file__).parent / "ros_listener.py"), *wanted],
                    env={"ROS_DOMAIN_ID": str(ros_domain)}).ready(30)
        for topic, i in zip(wanted, ids):
            line = proc.wait_line(f"SEEN {topic} ", 30)
            expected = [j.name for j in host.nodes[i].robot.driver.joints()]
            assert line.split()[2].split(",") == expected
        wait_for(lambda: proc.p.poll() is not None, 10, what="the listener to exit")
        assert proc.p.returncode == 0
    finally:
        if proc is not None:
            proc.close()
        host.close()


def test_fleet_host_main_refuses_bad_fleet(tmp_path, capsys):
    from strands_mesh_ros.ros.fleet_host import main

    bad = tmp_path / "fleet.yaml"
    bad.write_text("robots:\n  - {id: arm1, driver: warp}\n")
    assert main(["fleet_host", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "driver" in err and "arm1" in err


# -- conversions ----------------------------------------------------------------------------

def test_conversions_round_trip():
    from strands_mesh_ros.contract.payloads import (
        CommandEnvelope, ContractError, decode, make_presence, make_response, new_turn_id)
    from strands_mesh_ros.msg import Command
    from strands_mesh_ros.ros import convert

    turn = new_turn_id()
    typed = Command(sender_id="op-1", turn_id=turn, action="skill", command_json='{"action": "skill", "name": "home"}',
                    reply_to="strands/op-1/response/x", timestamp=12.5)
    back = decode(CommandEnvelope, convert.command_msg_payload(typed))
    assert (back.sender_id, back.turn_id, back.command, back.reply_to, back.timestamp) == (
        "op-1", turn, {"action": "skill", "name": "home"}, "strands/op-1/response/x", 12.5)
    bare = decode(CommandEnvelope, convert.command_msg_payload(Command(sender_id="op", turn_id="t0", action="status")))
    assert bare.command == {"action": "status"} and bare.reply_to is None
    short = convert.command_to_envelope(Command(sender_id="op", turn_id="t1", action="status"))
    assert short.command == {"action": "status"} and short.reply_to is None
    with pytest.raises(ContractError, match="16384-byte limit") as info:
        convert.command_to_envelope(Command(sender_id="op", turn_id="t2", command_json=" " * 20000))
    assert info.value.turn_id == "t2"
    with pytest.raises(ContractError, match="sender_id"):
        convert.command_to_envelope(Command(sender_id="a/b", turn_id="t3", action="status"))

    resp = make_response("arm1", "t1", result={"x": [1, 2]})
    msg = convert.response_to_msg(resp, "op")
    assert (msg.sender_id, msg.result_json, msg.type) == ("op", '{"x": [1, 2]}', "response")
    assert convert.msg_to_response(msg).result == {"x": [1, 2]}
    err = convert.msg_to_response(convert.response_to_msg(make_response("arm1", "t1", error="boom"), "op"))
    assert (err.status, err.error, err.result) == ("error", "boom", None)

    pr = make_presence("arm1", robot_type="arm6", peer_type="sim", task_status="idle",
                       skills=[{"name": "home", "lane": "motion", "description": "d", "params": {"type": "object"}}],
                       ros={"namespace": "/arm1", "node": "robot_node"})
    pm = convert.presence_to_msg(pr, age=0.5)
    assert (pm.ros_namespace, pm.age, pm.skills[0].lane) == ("/arm1", 0.5, "motion")
    again = convert.msg_to_presence(pm)
    assert again.ros.namespace == "/arm1" and again.skills[0].params == {"type": "object"}
    assert again.timestamp == pr.timestamp and again.task_status == "idle" and again.lockout is None
    locked = make_presence("arm1", robot_type="arm6", peer_type="sim", lockout={"issuer": "op", "reason": "r", "t": 1.0})
    assert convert.msg_to_presence(convert.presence_to_msg(locked)).lockout == {"issuer": "op", "reason": "r", "t": 1.0}
    bad = convert.presence_to_msg(locked)
    bad.lockout_json = "[1]"
    with pytest.raises(ContractError, match="lockout_json"):
        convert.msg_to_presence(bad)

    from strands_mesh_ros.contract.payloads import EStop
    from strands_mesh_ros.msg import EStop as EStopMsg

    e = decode(EStop, convert.estop_msg_payload(EStopMsg(issuer_id="op", t=1.5, seq=3, reason="r")))
    assert (e.peer_id, e.t, e.seq, e.reason) == ("op", 1.5, 3, "r")
    with pytest.raises(ContractError, match="peer_id"):  # unreadable: the robot still halts and latches
        decode(EStop, convert.estop_msg_payload(EStopMsg(issuer_id="a/b", t=1.5, seq=3)))


def test_fleet_host_process_serves_its_robots_and_stops_on_sigint(ros, tmp_path, ros_domain):
    """``python -m strands_mesh_ros.ros.fleet_host FLEET.yaml`` as a separate process."""
    import signal

    a, b = rid("arm"), rid("arm")
    path = tmp_path / "fleet.yaml"
    path.write_text(f"robots:\n  - {{id: {a}, driver: mock}}\n  - {{id: {b}, driver: mock, state_rate: 50.0}}\n")
    js = {i: joint_states(ros, i) for i in (a, b)}
    proc = Proc([sys.executable, "-m", "strands_mesh_ros.ros.fleet_host", str(path)],
                env={"ROS_DOMAIN_ID": str(ros_domain)})
    try:
        for i in (a, b):
            msg = js[i].wait(timeout=30, what=f"{i} joint_states from the fleet host process")
            assert list(msg.name)[:2] == ["joint1", "joint2"]
        resp = Client(ros, a).call({"action": "execute", "instruction": "move joint1 to 0.5 in 0.1 s"})
        assert resp.status == "done", resp.error
        proc.signal(signal.SIGINT)
        wait_for(lambda: proc.p.poll() is not None, 15, what="the fleet host to exit")
        assert proc.p.returncode == 0, "\n".join(proc.lines[-20:])
    finally:
        proc.close()


def test_robot_node_main_refuses_bad_id(capsys):
    from strands_mesh_ros.ros.robot_node import main

    assert main(["robot_node", "--ros-args", "-p", "robot_id:=arm-1", "-p", "driver:=mock"]) == 2
    err = capsys.readouterr().err
    assert "arm-1" in err and "[A-Za-z][A-Za-z0-9_]*" in err
