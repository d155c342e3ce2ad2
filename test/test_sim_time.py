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
