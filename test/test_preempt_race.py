"""A skill that has just checked for preemption when a stop or a non-latching e-stop lands
still writes one more target: the robot core must not let it move the robot.

Robot core only (pure logic, no Zenoh, no ROS): the race window is held open on purpose, by a
skill that stops between its ``ctx.check()`` and its ``command_positions()`` until the test
lets it go, so the outcome does not depend on thread scheduling. Every robot kind runs this
core (mesh-native and ROS robot nodes alike: one robot peer), so the guarantee holds for both;
test_robot_guarantees.py checks the halts end to end on both.
"""

from __future__ import annotations

import threading

import pytest

from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.robot.driver import Skill
from strands_mesh_ros.robot.runtime import Robot
from strands_mesh_ros.robot.safety import halt_without_latch


class RacingDriver(MockDriver):
    """A mock arm whose ``race`` skill pauses between its preemption check and its next
    target (0.5 rad on joint1) until ``go`` is set."""

    def __init__(self, robot_id: str) -> None:
        super().__init__(robot_id)
        self.checked, self.go = threading.Event(), threading.Event()

    def skills(self) -> list[Skill]:
        def race(ctx):
            ctx.check()
            self.checked.set()
            assert self.go.wait(10), "the test never let the skill go on"
            self.command_positions(["joint1"], [0.5])
            ctx.check()
            return "not preempted"

        return [*super().skills(), Skill("race", race, lane="arm")]


@pytest.fixture
def robot():
    r = Robot(RacingDriver("racer"))
    yield r
    r.driver.go.set()
    r.close()


def start_race(robot: Robot):
    call = robot.lanes.submit(robot.skills["race"], {})
    assert robot.driver.checked.wait(10), "the skill never started"
    return call


def joint1(robot: Robot) -> float:
    return float(robot.driver.observe().position[0])


def test_a_replayed_estop_lets_no_target_through_and_releases_the_halt_after(robot):
    call = start_race(robot)
    robot.halt_now()  # what the e-stop callback does first, before any parsing
    halt_without_latch(robot, "replayed e-stop from op")
    assert robot.driver.halted, "the halt was released while a preempted skill still ran"
    robot.driver.go.set()
    outcome = call.result(timeout=10)
    assert outcome.status == "refused" and "replayed e-stop" in outcome.error
    assert joint1(robot) == 0.0, "the preempted skill's last target moved the arm after the e-stop"
    # released once the skill ended: not latched, so the robot takes commands again
    assert not robot.driver.halted and not robot.locked_out
    robot.driver.command_positions(["joint1"], [0.2])
    assert joint1(robot) == pytest.approx(0.2)


def test_a_release_never_clears_a_lockout_latched_meanwhile(robot):
    call = start_race(robot)
    robot.halt_now()
    halt_without_latch(robot, "replayed e-stop from op")
    robot.emergency_stop("op", "a real one")  # latches while the replay's release waits
    robot.driver.go.set()
    assert call.result(timeout=10).status == "refused"
    assert robot.locked_out and robot.driver.halted
    robot.driver.command_positions(["joint1"], [0.2])
    assert joint1(robot) == 0.0


def test_a_replay_with_nothing_running_releases_at_once(robot):
    robot.halt_now()
    halt_without_latch(robot, "replayed e-stop from op")
    assert not robot.driver.halted and not robot.locked_out


def test_a_release_leaves_a_newer_estop_halt_to_that_estop(robot):
    call = start_race(robot)
    robot.halt_now()
    halt_without_latch(robot, "replayed e-stop from op")
    robot.halt_now()  # another e-stop arrives, not yet read
    robot.driver.go.set()
    assert call.result(timeout=10).status == "refused"
    assert robot.driver.halted, "the first replay's release cleared the newer e-stop's halt"
    halt_without_latch(robot, "replayed e-stop from op")  # the newer one is a replay too
    assert not robot.driver.halted


def test_a_stop_holds_again_once_the_preempted_skill_has_ended(robot):
    holds = []
    stop = robot.driver.stop

    def counted_stop():
        holds.append(joint1(robot))
        stop()

    robot.driver.stop = counted_stop
    call = start_race(robot)
    robot.stop()
    assert holds == [0.0]
    robot.driver.go.set()
    assert call.result(timeout=10).status == "refused"
    # the late target got through a controlled stop (no driver halt), and the second hold,
    # after the skill ended, holds the arm where that left it
    assert holds == [0.0, 0.5]
