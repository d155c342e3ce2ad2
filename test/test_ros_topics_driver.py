"""RosTopicsDriver against a live rclpy stand-in robot, through each command interface.

The stand-in follows commands ideally: a JointTrajectory point is reached by linear
interpolation over its time_from_start, a Float64MultiArray at once, a Twist is integrated
into an odometry pose. It publishes ``joint_states`` at 100 Hz. Each test runs in its own
rclpy context; waits are condition polls with timeouts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import numpy as np
import pytest

from helpers import wait_for
from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON, RosEnv

pytestmark = pytest.mark.skipif(not HAVE_RCLPY, reason=NO_ROS_REASON)

ARM = [f"j{i}" for i in range(1, 5)]
TARGET = [0.5, -0.4, 0.8, 0.2]
LIMIT = {"lower": -2.0, "upper": 2.0, "max_velocity": 2.0}


@pytest.fixture
def ros():
    env = RosEnv()
    yield env
    env.close()


class StandIn:
    """An ideal robot in namespace ``/<rid>`` (created on ``node``; spun by the test's executor)."""

    def __init__(self, node, rid: str, joints: list[str], interface: str) -> None:
        from geometry_msgs.msg import Twist
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from strands_mesh_ros.ros.ros_topics import DEFAULT_COMMAND_TOPICS

        self.node, self.joints = node, joints
        self.lock = threading.Lock()
        self.q = np.zeros(len(joints))
        self.start = self.q.copy()
        self.goal = self.q.copy()
        self.t0, self.t1 = 0.0, 0.0
        self.commands: list = []
        self.pose = [0.0, 0.0]  # x (m), yaw (rad) of a base
        self.twist = (0.0, 0.0)
        self.last_tick = time.monotonic()
        ns = f"/{rid}"
        self.js_pub = node.create_publisher(JointState, f"{ns}/joint_states", 10)
        topic = f"{ns}/{DEFAULT_COMMAND_TOPICS[interface]}"
        kind = {"joint_trajectory": JointTrajectory, "position_controller": Float64MultiArray, "twist": Twist}
        node.create_subscription(kind[interface], topic, getattr(self, f"_on_{interface}"), 10)
        node.create_timer(0.01, self._tick)

    def _on_joint_trajectory(self, msg) -> None:
        assert list(msg.joint_names) == self.joints
        with self.lock:
            self.commands.append(msg)
            if not msg.points:
                self.goal = self.q.copy()
                self.t1 = 0.0
                return
            p = msg.points[-1]
            self.start, self.goal = self.q.copy(), np.array(p.positions)
            self.t0 = time.monotonic()
            self.t1 = self.t0 + p.time_from_start.sec + p.time_from_start.nanosec * 1e-9

    def _on_position_controller(self, msg) -> None:
        with self.lock:
            self.commands.append(msg)
            self.q = self.goal = np.array(msg.data)
            self.t1 = 0.0

    def _on_twist(self, msg) -> None:
        with self.lock:
            self.commands.append(msg)
            self.twist = (msg.linear.x, msg.angular.z)

    def _tick(self) -> None:
        from sensor_msgs.msg import JointState

        now = time.monotonic()
        with self.lock:
            dt, self.last_tick = now - self.last_tick, now
            if self.t1 > 0:
                u = 1.0 if now >= self.t1 else (now - self.t0) / max(self.t1 - self.t0, 1e-9)
                self.q = self.start + u * (self.goal - self.start)
            v, w = self.twist
            self.pose[0] += v * dt
            self.pose[1] += w * dt
            q = self.q.copy()
        msg = JointState(name=self.joints, position=q.tolist())
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.js_pub.publish(msg)

    def position(self) -> np.ndarray:
        with self.lock:
            return self.q.copy()


def arm_config(interface: str, **extra) -> dict:
    return {"command_interface": interface, "joints": [{"name": n, **LIMIT} for n in ARM],
            "home": [0.0] * len(ARM), **extra}


def setup(ros, interface: str, config: dict, own_node: bool = False):
    """Stand-in + driver (on the probe node, or on its own node) + Robot, state flowing."""
    from strands_mesh_ros.ros.ros_topics import RosTopicsDriver
    from strands_mesh_ros.robot.runtime import Robot

    rid = f"bot_{uuid.uuid4().hex[:8]}"
    stand_in = StandIn(ros.probe, rid, config.get("joints_names", ARM) if interface != "twist" else
                       ["wheel_left_joint", "wheel_right_joint"], interface)
    if own_node:
        driver = RosTopicsDriver(rid, config, context=ros.context)
    else:
        driver = RosTopicsDriver(rid, config, node=ros.probe)
    driver.start()
    robot = Robot(driver)
    ros.defer(robot.close)  # after spinning stops: the driver's entities may live on the probe
    assert driver.wait_for_state(10), "no joint_states from the stand-in"
    wait_for(lambda: driver._pub.get_subscription_count() >= 1, 10, what="the stand-in's command subscription")
    return stand_in, driver, robot


@pytest.mark.parametrize("interface,extra", [
    ("joint_trajectory", {"trajectory_mode": "streamed"}),
    ("joint_trajectory", {"trajectory_mode": "single"}),
    ("position_controller", {}),
], ids=["trajectory-streamed", "trajectory-single", "position-controller"])
def test_move_joints_reaches_target(ros, interface, extra):
    stand_in, driver, robot = setup(ros, interface, arm_config(interface, **extra))
    out = robot.call_skill("move_joints", {"positions": TARGET, "duration": 0.4}).result(timeout=15)
    assert out.status == "done", out.error
    assert out.result["reached"] is True
    assert np.allclose(stand_in.position(), TARGET, atol=0.02)
    assert np.allclose(driver.observe().position, TARGET, atol=0.02)
    if extra.get("trajectory_mode") == "single":
        moves = [m for m in stand_in.commands if m.points]
        assert len(moves) == 1 and moves[0].points[0].time_from_start.nanosec == pytest.approx(4e8, abs=1e3)
    # Partial targets: the other joints keep their commanded values.
    out = robot.call_skill("move_joints", {"targets": {"j2": 0.1}, "duration": 0.2}).result(timeout=15)
    assert out.status == "done", out.error
    assert np.allclose(stand_in.position(), [TARGET[0], 0.1, *TARGET[2:]], atol=0.02)
    out = robot.execute("home").result(timeout=15)
    assert out.status == "done" and np.allclose(stand_in.position(), 0.0, atol=0.02)


def test_driver_with_its_own_node(ros):
    stand_in, driver, robot = setup(ros, "position_controller", arm_config("position_controller"), own_node=True)
    assert driver.node is not ros.probe and driver.node.get_name().endswith("_ros_topics")
    out = robot.call_skill("move_joints", {"positions": TARGET, "duration": 0.2}).result(timeout=15)
    assert out.status == "done", out.error
    assert np.allclose(stand_in.position(), TARGET, atol=0.02)


def test_skills_follow_ros_time_under_use_sim_time(ros):
    """With use_sim_time the skills run on /clock: a simulation at a quarter of real time makes a
    move take four times its (simulated) duration, and a paused simulation holds it."""
    import rclpy
    from builtin_interfaces.msg import Time as TimeMsg
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock as ClockMsg

    from strands_mesh_ros.ros.ros_topics import RosTimeClock, RosTopicsDriver
    from strands_mesh_ros.robot.runtime import Robot

    factor = 0.25
    clock_pub = ros.probe.create_publisher(ClockMsg, "/clock", 1)
    running = threading.Event()
    running.set()
    sim = {"t": 0.0, "wall": time.monotonic()}

    def tick() -> None:  # the "simulator": /clock at 100 Hz of wall time, advancing factor x wall
        now = time.monotonic()
        if running.is_set():
            sim["t"] += factor * (now - sim["wall"])
        sim["wall"] = now
        sec = int(sim["t"])
        clock_pub.publish(ClockMsg(clock=TimeMsg(sec=sec, nanosec=int((sim["t"] - sec) * 1e9))))

    ros.probe.create_timer(0.01, tick)
    rid = f"bot_{uuid.uuid4().hex[:8]}"
    stand_in = StandIn(ros.probe, rid, ARM, "position_controller")
    node = ros.add(rclpy.create_node(f"{rid}_sim", context=ros.context,
                                     parameter_overrides=[Parameter("use_sim_time", value=True)]))
    driver = RosTopicsDriver(rid, arm_config("position_controller"), node=node)
    assert isinstance(driver.clock, RosTimeClock)
    driver.start()
    robot = Robot(driver)
    ros.defer(robot.close)
    assert driver.wait_for_state(10)
    wait_for(lambda: driver.clock.now() > 0.1, 10, what="the node clock to follow /clock")
    wait_for(lambda: driver._pub.get_subscription_count() >= 1, 10, what="the stand-in's command subscription")
    t0, s0 = time.monotonic(), driver.clock.now()
    out = robot.call_skill("move_joints", {"positions": TARGET, "duration": 0.4}).result(timeout=30)
    wall, simulated = time.monotonic() - t0, driver.clock.now() - s0
    assert out.status == "done", out.error
    assert out.result["duration"] == pytest.approx(0.75)  # stretched by max_velocity 2 rad/s (j3: 0.8 rad)
    assert simulated >= 0.75 and wall >= 0.75 / factor * 0.9, (wall, simulated)
    # a paused simulation pauses the skill; it finishes once time runs again
    running.clear()
    fut = robot.call_skill("move_joints", {"positions": [0.0] * 4, "duration": 0.2})
    wait_for(lambda: driver.commands_sent > 0 and len(stand_in.commands) > 0, 5, what="the move to start")
    with pytest.raises(TimeoutError):
        fut.result(timeout=1.5)  # 1.5 wall s with the clock stopped: still moving
    running.set()
    assert fut.result(timeout=30).status == "done"
    assert np.allclose(stand_in.position(), 0.0, atol=0.02)


def test_drive_over_twist(ros):
    stand_in, driver, robot = setup(ros, "twist", {"command_interface": "twist",
                                                   "joints": ["wheel_left_joint", "wheel_right_joint"],
                                                   "twist": {"max_linear": 0.5, "max_angular": 1.0, "rate": 50}})
    assert {s for s in robot.skills} == {"drive", "get_state"}
    assert robot.skills["drive"].lane == "base"
    out = robot.call_skill("drive", {"linear": 0.3, "angular": 0.0, "duration": 0.5}).result(timeout=15)
    assert out.status == "done", out.error
    wait_for(lambda: stand_in.twist == (0.0, 0.0), 5, what="a zero twist after the drive")
    sent = [(c.linear.x, c.angular.z) for c in stand_in.commands]
    assert len(sent) >= 3 and sent[-1] == (0.0, 0.0)  # streamed (not one message), then stopped
    assert set(sent[:-1]) <= {(0.3, 0.0), (0.0, 0.0)} and (0.3, 0.0) in sent
    # The stand-in's odometry integrates on a wall-clock timer: 0.3 m/s for 0.5 s is 0.15 m, and a
    # loaded machine delays the final zero twist, so allow for scheduling.
    assert 0.1 <= stand_in.pose[0] <= 0.45
    name, args = driver.instruction_to_skill("drive forward at 0.2 m/s for 1 s")
    assert (name, args["linear"], args["duration"]) == ("drive", 0.2, 1.0)
    with pytest.raises(Exception, match="linear"):
        robot.call_skill("drive", {"linear": 2.0})  # above max_linear


def test_estop_holds_arm(ros):
    from strands_mesh_ros.robot.runtime import LockedOut

    stand_in, driver, robot = setup(ros, "joint_trajectory", arm_config("joint_trajectory"))
    fut = robot.call_skill("move_joints", {"positions": TARGET, "duration": 10.0})
    wait_for(lambda: abs(stand_in.position()[0]) > 0.01, 10, what="the arm to start moving")
    robot.emergency_stop("tester", "hold test")
    assert driver.halted and robot.locked_out
    assert fut.result(timeout=10).status == "refused"
    # The hold: the measured position, due after hold_time (streamed points are due after stream_lead).
    hold = wait_for(lambda: next((m for m in stand_in.commands
                                  if m.points and m.points[0].time_from_start.nanosec == 50_000_000), None),
                    5, what="the hold command")
    held = np.array(hold.points[0].positions)
    assert np.all(np.abs(held - np.array(TARGET)) > 0.05)  # stopped mid-way, not at the target
    wait_for(lambda: np.allclose(stand_in.position(), held, atol=0.02), 5, what="the arm to hold")
    assert stand_in.commands[-1] is hold  # nothing was sent after the hold
    sent = driver.commands_sent
    driver.command_positions(ARM, TARGET)  # dropped while halted
    assert driver.commands_sent == sent
    with pytest.raises(LockedOut):
        robot.call_skill("move_joints", {"positions": TARGET})
    robot.resume()
    out = robot.call_skill("move_joints", {"positions": TARGET, "duration": 0.2}).result(timeout=15)
    assert out.status == "done" and np.allclose(stand_in.position(), TARGET, atol=0.02)


def test_estop_zeroes_twist(ros):
    stand_in, driver, robot = setup(ros, "twist", {"command_interface": "twist", "joints": []})
    fut = robot.call_skill("drive", {"linear": 0.2, "duration": 20.0})
    wait_for(lambda: stand_in.twist[0] == 0.2, 10, what="the base to drive")
    robot.emergency_stop("tester", "hold test")
    assert fut.result(timeout=10).status == "refused"
    wait_for(lambda: stand_in.twist == (0.0, 0.0), 5, what="a zero twist")
    zero_from = max(i for i, m in enumerate(stand_in.commands) if m.linear.x != 0.0) + 1
    assert all(m.linear.x == 0.0 and m.angular.z == 0.0 for m in stand_in.commands[zero_from:])
    sent = driver.commands_sent
    driver.command_twist(0.3, 0.0)  # dropped while halted
    assert driver.commands_sent == sent and driver.observe().names == ()


@pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON)
def test_robot_node_with_ros_topics_driver(ros):
    """A RobotNode over the driver: commands through the mesh topics, joint_states not doubled."""
    from strands_mesh_ros.msg import Command, Response
    from strands_mesh_ros.ros import qos, topics
    from strands_mesh_ros.ros.robot_node import RobotNode

    rid = f"bot_{uuid.uuid4().hex[:8]}"
    stand_in = StandIn(ros.probe, rid, ARM, "position_controller")
    node = ros.add(RobotNode(rid, context=ros.context, driver_options=arm_config("position_controller"),
                             parameter_overrides=[__import__("rclpy").parameter.Parameter("driver", value="ros_topics")]))
    assert node.robot.driver.ros_provides == frozenset({"joint_states"})
    assert ros.probe.count_publishers(topics.robot_topic(rid, topics.JOINT_STATES)) == 1  # the robot's own
    assert node.robot.driver.wait_for_state(10)
    responses = ros.sub(Response, topics.robot_topic(rid, topics.MESH_RESPONSE), qos.RESPONSE)
    pub = ros.pub(Command, topics.robot_topic(rid, topics.MESH_COMMAND), qos.COMMAND)
    wait_for(lambda: ros.probe.count_publishers(topics.robot_topic(rid, topics.MESH_RESPONSE)) >= 1, 10)
    wait_for(lambda: node.robot.driver._pub.get_subscription_count() >= 1, 10)
    cmd = {"action": "skill", "name": "move_joints", "args": {"positions": TARGET, "duration": 0.3}}
    msg = Command(sender_id="op", turn_id=uuid.uuid4().hex, action="skill", command_json=json.dumps(cmd))
    pub.publish(msg)
    resp = responses.wait(lambda r: r.turn_id == msg.turn_id, 15, what="the response")
    assert resp.status == "done", resp.error
    assert np.allclose(stand_in.position(), TARGET, atol=0.02)


def test_config_validation_and_example_file():
    from pathlib import Path

    from strands_mesh_ros.drivers.ros_topics_config import load_ros_topics_config
    from strands_mesh_ros.drivers.fleet_config import load_fleet

    with pytest.raises(ValueError, match="needs 'joints'"):
        load_ros_topics_config({"command_interface": "joint_trajectory"})
    with pytest.raises(ValueError, match="command_interface"):
        load_ros_topics_config({"command_interface": "telepathy", "joints": ["a"]})
    with pytest.raises(ValueError, match="home has 1 values"):
        load_ros_topics_config({"command_interface": "position_controller", "joints": ["a", "b"], "home": [0.0]})
    with pytest.raises(ValueError, match="gripper joints"):
        load_ros_topics_config({"command_interface": "position_controller", "joints": ["a"],
                                "gripper": {"joints": ["g"], "open": [0.04], "closed": [0.0]}})
    example = Path(__file__).resolve().parent.parent / "config" / "ros_topics_example.yaml"
    fleet = load_fleet(example)
    assert [r.id for r in fleet.robots] == ["gz_arm", "ur1", "base2"]
    for r in fleet.robots:
        cfg = load_ros_topics_config(example, r.id)
        assert cfg.command_interface == r.options["command_interface"]
    cfg = load_ros_topics_config({"config_file": str(example), "trajectory_mode": "streamed"}, "gz_arm")
    assert cfg.trajectory_mode == "streamed" and cfg.peer_type == "sim"
    with pytest.raises(ValueError, match="no robot 'nobody'"):
        load_ros_topics_config(example, "nobody")


def test_fleet_config_load_and_make_driver(tmp_path):
    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.drivers.fleet_config import DEFAULT_FLEET, RobotSpec, load_fleet, make_driver

    assert [(r.id, r.model) for r in load_fleet(None).robots] == [("arm1", "arm6"), ("arm2", "arm6"),
                                                                   ("base1", "diffbot")]
    assert load_fleet(None) is not DEFAULT_FLEET  # a copy: callers may change it
    path = tmp_path / "fleet.yaml"
    path.write_text("robots:\n  - {id: m1, driver: mock, state_rate: 50.0, options: {gripper: false}}\nmesh: {prefix: x}\n")
    fleet = load_fleet(path)
    assert fleet.mesh == {"prefix": "x"} and fleet.robot("m1").state_rate == 50.0
    driver = make_driver(fleet.robot("m1"))
    assert isinstance(driver, MockDriver) and driver.gripper() is None
    with pytest.raises(ValueError, match=r"robots.0 \(m1\).drvier"):
        load_fleet({"robots": [{"id": "m1", "drvier": "mock"}]})
    with pytest.raises(ValueError, match="appears twice"):
        load_fleet({"robots": [{"id": "m1"}, {"id": "m1"}]})
    with pytest.raises(ValueError, match="state_rate"):
        load_fleet({"robots": [{"id": "m1", "state_rate": 0.0}]})
    with pytest.raises(ValueError, match="robot id"):
        load_fleet({"robots": [{"id": "a/b"}]})
    with pytest.raises(FileNotFoundError):
        load_fleet(tmp_path / "missing.yaml")
    with pytest.raises(TypeError, match="robot 'm1': bad options for driver 'mock'"):
        make_driver(RobotSpec(id="m1", driver="mock", options={"wings": 2}))
    with pytest.raises(KeyError, match="no robot 'zz'"):
        fleet.robot("zz")


@pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON)
def test_robot_node_driver_config_parameter(ros):
    """``driver:=ros_topics driver_config:=config/ros_topics_example.yaml`` picks this robot's entry."""
    from pathlib import Path

    from rclpy.parameter import Parameter

    from strands_mesh_ros.ros.robot_node import RobotNode

    example = str(Path(__file__).resolve().parent.parent / "config" / "ros_topics_example.yaml")
    node = ros.add(RobotNode("ur1", context=ros.context, parameter_overrides=[
        Parameter("driver", value="ros_topics"), Parameter("driver_config", value=example)]))
    d = node.robot.driver
    assert (d.robot_type, d.config.command_interface) == ("ur5e", "position_controller")
    assert (d.joint_states_topic, d.command_topic) == ("/joint_states", "/forward_position_controller/commands")
    assert d.ros_provides == frozenset()  # at the root: the node republishes /ur1/joint_states
    assert node._js_pub is not None and node._desc_pub is not None
    assert d.robot_description() is None  # no urdf_file: the node publishes a generated URDF


@pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON)
def test_robot_node_refuses_to_republish_the_clock_it_follows(ros):
    from rclpy.parameter import Parameter

    from strands_mesh_ros.ros.robot_node import RobotNode

    with pytest.raises(ValueError, match="would republish /clock to itself"):
        RobotNode(f"bot_{uuid.uuid4().hex[:8]}", context=ros.context, driver_options=arm_config("position_controller"),
                  parameter_overrides=[Parameter("driver", value="ros_topics"), Parameter("use_sim_time", value=True),
                                       Parameter("publish_clock", value=True)])
