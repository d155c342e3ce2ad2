"""Simulated robots run their skills on simulated time (issue 10, deliverable 5).

The MuJoCo physics is deliberately slowed (``real_time_factor`` < 1, as a busy machine would
slow it): trajectory timing, settle timeouts and waits follow the simulation, so the skills
take longer in wall-clock time and still succeed. Real MuJoCo, real threads, no mocks.
"""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("mujoco")

from strands_mesh_ros.drivers import mujoco_sim, skills  # noqa: E402
from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver  # noqa: E402
from strands_mesh_ros.robot.driver import WALL_CLOCK, DriverError, Preempted, Skill, SkillContext  # noqa: E402
from strands_mesh_ros.robot.lanes import LaneScheduler  # noqa: E402
from strands_mesh_ros.robot.runtime import Robot  # noqa: E402

SLOW = 0.1
"""Simulated s per wall s in these tests: ten times slower than real time."""


@pytest.fixture
def slow_arm():
    d = MujocoDriver("slow_arm", "arm6", real_time_factor=SLOW)
    d.start()
    robot = Robot(d)
    yield d, robot
    robot.close()
    d.close()


def test_skills_succeed_with_the_physics_slowed(slow_arm):
    d, robot = slow_arm
    assert d.clock.simulated and robot.lanes._clock is d.clock
    calls = [
        ("move_joints", {"targets": {"joint1": 0.15, "joint2": -0.1}, "duration": 0.2}),
        ("move_gripper", {"opening": 0.5, "duration": 0.2}),
        ("home", {"duration": 0.2}),
    ]
    for name, args in calls:
        s0, w0 = d.sim_time, time.monotonic()
        out = robot.call_skill(name, args).result(timeout=60)
        sim, wall = d.sim_time - s0, time.monotonic() - w0
        assert out.status == "done", (name, out.error)
        if name != "move_gripper":
            assert out.result["reached"] is True
        assert sim >= out.result["duration"]  # the motion took its duration in simulated seconds
        # ...and the simulation really ran slow: never faster than SLOW x real time
        assert wall >= 0.95 * sim / SLOW, (name, sim, wall)


def test_settle_timeout_counts_simulated_seconds(slow_arm, monkeypatch):
    d, robot = slow_arm
    monkeypatch.setattr(skills, "SETTLE_TIMEOUT", 0.2)  # simulated s; 2 s of wall time at SLOW
    s0, w0 = d.sim_time, time.monotonic()
    # a tolerance no servo meets: the settle timeout must expire, on simulated time
    out = robot.call_skill("move_joints", {"targets": {"joint1": 0.05}, "duration": 0.1, "tolerance": 1e-12}).result(60)
    sim, wall = d.sim_time - s0, time.monotonic() - w0
    assert out.status == "error" and "TimeoutError" in out.error and "0.2 s after" in out.error
    assert sim >= 0.1 + 0.2
    assert wall >= 0.95 * (0.1 + 0.2) / SLOW  # a wall-clock timeout would have fired after ~1.2 s


def test_drive_runs_for_simulated_seconds():
    d = MujocoDriver("slow_base", "diffbot", real_time_factor=SLOW)
    d.start()
    robot = Robot(d)
    try:
        s0, w0 = d.sim_time, time.monotonic()
        out = robot.call_skill("drive", {"linear": 0.2, "duration": 0.15}).result(60)
        assert out.status == "done", out.error
        assert d.sim_time - s0 >= 0.15
        assert time.monotonic() - w0 >= 0.95 * 0.15 / SLOW
        assert out.result["distance"] > 0.005
    finally:
        robot.close()
        d.close()


def test_wait_on_the_simulated_clock_and_cancel_wakes_it_at_once(slow_arm):
    d, _ = slow_arm
    ctx = SkillContext(clock=d.clock)
    s0, w0 = d.sim_time, time.monotonic()
    ctx.wait(0.05)
    assert d.sim_time >= s0 + 0.05
    assert time.monotonic() - w0 >= 0.95 * 0.05 / SLOW

    ctx = SkillContext(clock=d.clock)
    started = threading.Event()
    outcome: list[BaseException | None] = []

    def long_wait() -> None:
        started.set()
        try:
            ctx.wait(100.0)  # 1,000 s of wall time at SLOW
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    t = threading.Thread(target=long_wait)
    t.start()
    started.wait(5)
    w0 = time.monotonic()
    ctx.cancel("stop")
    t.join(5)
    assert not t.is_alive() and isinstance(outcome[0], Preempted)
    assert time.monotonic() - w0 < 1.0


def test_lanes_hand_skills_the_robot_clock(slow_arm):
    d, _ = slow_arm
    lanes = LaneScheduler("clock_check", clock=d.clock)
    seen = []
    try:
        out = lanes.submit(Skill("probe", lambda ctx: seen.append(ctx.clock) or ctx.wait(0.01), lane="x"), {}).result(30)
        assert out.status == "done", out.error
        assert seen == [d.clock]
    finally:
        lanes.close()
    assert SkillContext().clock is WALL_CLOCK


def test_a_stalled_simulation_fails_the_wait(monkeypatch):
    monkeypatch.setattr(mujoco_sim, "SIM_STALL_TIMEOUT", 0.3)
    d = MujocoDriver("never_started", "arm6")  # no physics thread: simulated time stands still
    try:
        with pytest.raises(DriverError, match="not advancing"):
            SkillContext(clock=d.clock).wait(0.01)
    finally:
        d.close()


@pytest.mark.parametrize("bad", [0, -1.0, 101, True, "fast"])
def test_real_time_factor_is_checked(bad):
    with pytest.raises(ValueError, match="real_time_factor"):
        MujocoDriver("rtf", "arm6", real_time_factor=bad)


# -- in ROS: /clock from the simulation, use_sim_time, joint_states on the node clock ---------

def test_robot_node_publishes_clock_and_follows_use_sim_time():
    ros_helpers = pytest.importorskip("ros_helpers")
    if not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS):
        pytest.skip(ros_helpers.NO_ROS_REASON)
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock as ClockMsg
    from sensor_msgs.msg import JointState

    from strands_mesh_ros.msg import Presence
    from strands_mesh_ros.ros import qos, topics
    from strands_mesh_ros.ros.robot_node import RobotNode

    env = ros_helpers.RosEnv()
    try:
        clock = env.sub(ClockMsg, "/clock", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        states = env.sub(JointState, "/simclk/joint_states", qos.JOINT_STATES)
        presence = env.sub(Presence, topics.PRESENCE, qos.PRESENCE)
        node = env.add(RobotNode("simclk", context=env.context, driver_options={"real_time_factor": SLOW},
                                 parameter_overrides=[Parameter("driver", value="mujoco"),
                                                      Parameter("publish_clock", value=True),
                                                      Parameter("use_sim_time", value=True),
                                                      Parameter("state_rate", value=50.0)]))
        driver = node.robot.driver
        assert driver.clock.simulated
        clock.wait(lambda m: m.clock.sec + m.clock.nanosec * 1e-9 >= 0.05, 30, what="/clock past 0.05 s")
        sim = lambda t: t.sec + t.nanosec * 1e-9  # noqa: E731
        ticks = [sim(m.clock) for m in clock.msgs]
        assert ticks == sorted(ticks) and ticks[-1] < 1000  # simulated seconds, never wall-clock time
        # joint_states are stamped with the node clock, which follows /clock
        js = states.wait(lambda m: sim(m.header.stamp) > 0.02, 30, what="joint_states on simulated time")
        assert sim(js.header.stamp) <= driver.sim_time + 1e-6
        # presence stays on the wall clock: 2 Hz although simulated time crawls at SLOW
        s0 = driver.sim_time
        n0 = len([m for m in presence.msgs if m.peer_id == "simclk"])
        ros_helpers.wait_for(lambda: len([m for m in presence.msgs if m.peer_id == "simclk"]) >= n0 + 3, 5.0,
                             what="three presence beats")
        assert driver.sim_time - s0 < 1.0  # 3 beats = ~1.5 wall s = ~0.15 simulated s
        # skills still run (and end) on simulated time behind ROS
        out = node.robot.call_skill("move_joints", {"targets": {"joint1": 0.05}, "duration": 0.1}).result(60)
        assert out.status == "done", out.error
    finally:
        env.close()


def test_publish_clock_refused_for_a_wall_clock_driver():
    ros_helpers = pytest.importorskip("ros_helpers")
    if not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS):
        pytest.skip(ros_helpers.NO_ROS_REASON)
    from rclpy.parameter import Parameter

    from strands_mesh_ros.ros.robot_node import RobotNode

    env = ros_helpers.RosEnv()
    try:
        with pytest.raises(ValueError, match="publish_clock needs a simulated driver"):
            RobotNode("wallclk", context=env.context, parameter_overrides=[
                Parameter("driver", value="mock"), Parameter("publish_clock", value=True)])
    finally:
        env.close()


def test_fleet_host_has_one_clock():
    ros_helpers = pytest.importorskip("ros_helpers")
    if not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS):
        pytest.skip(ros_helpers.NO_ROS_REASON)
    from strands_mesh_ros.ros.fleet_host import FleetHost

    env = ros_helpers.RosEnv()
    try:
        fleet = {"robots": [{"id": "m1", "driver": "mock"}, {"id": "s1", "driver": "mujoco", "realtime": False},
                            {"id": "s2", "driver": "mujoco", "realtime": False}]}
        host = FleetHost(fleet, context=env.context, publish_clock=True)
        try:
            assert host.clock_robot == "s1"
            assert {rid: n.get_parameter("publish_clock").value for rid, n in host.nodes.items()} == \
                {"m1": False, "s1": True, "s2": False}
        finally:
            host.close()
        with pytest.raises(ValueError, match="no simulated"):
            FleetHost({"robots": [{"id": "m1", "driver": "mock"}]}, context=env.context, publish_clock=True)
    finally:
        env.close()
