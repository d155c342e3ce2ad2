"""A driver for a robot that already lives in ROS: talks to it only through its topics.

:class:`RosTopicsDriver` puts a real robot's ROS driver (a ros2_control stack, a vendor
driver) or a Gazebo robot bridged with ``ros_gz_bridge`` on the mesh. It reads the robot's
``sensor_msgs/JointState`` and commands it through one of (config ``command_interface``):

* ``joint_trajectory`` -- ``trajectory_msgs/JointTrajectory`` to a joint_trajectory_controller
  (``<ns>/joint_trajectory_controller/joint_trajectory`` by default). ``trajectory_mode:
  streamed`` (default) sends the min-jerk profile of :mod:`strands_mesh_ros.drivers.skills` as one-point trajectories at
  100 Hz, each due ``stream_lead`` s ahead; ``single`` sends one point, the goal, due at the end
  of the move (time_from_start = duration) and lets the controller interpolate.
* ``position_controller`` -- ``std_msgs/Float64MultiArray`` to a ros2_control
  forward_command_controller (``<ns>/forward_position_controller/commands``), ``data`` in the
  order of the config's ``joints`` (which must be the controller's ``joints`` order).
* ``twist`` -- ``geometry_msgs/Twist`` on ``<ns>/cmd_vel`` for mobile bases: a ``drive`` skill
  (lane ``base``; linear m/s along +x, angular rad/s about +z, REP-103; duration s) streams the
  twist at ``twist.rate`` Hz (bases stop when cmd_vel goes quiet) and then sends zero.

Position commands always carry every joint of ``joints`` (joints a call does not move keep
their last commanded value), because controllers refuse partial goals by default.

Safety: :meth:`RosTopicsDriver.emergency_stop` commands a hold at the current measured
positions (a zero Twist for bases) and latches ``halted``, after which position and twist
commands are dropped until :meth:`resume`. This is a **software hold through the robot's
command topics, not the robot's own emergency stop**: it needs the robot's controllers to be
running and obeying, and it must never replace the robot's hardwired e-stop (IEC 60204-1 /
ISO 13850).

The driver needs an rclpy node: pass one (e.g. the :class:`~strands_mesh_ros.ros.robot_node.
RobotNode`, whose executor then serves the driver's subscription), or let it create its own in
a given context, spun on a thread of its own from :meth:`start` until :meth:`close`.

Time: a real robot's skills run on the wall clock. When the node's ``use_sim_time`` parameter is
true at construction (a Gazebo robot, whose simulator publishes ``/clock``), the driver's
:attr:`~RosTopicsDriver.clock` is the node's ROS clock (:class:`RosTimeClock`): trajectory
timing, stream periods, settle timeouts and ``drive`` durations are then simulated seconds, so a
simulation running slower than real time slows the skills with it, and a paused one pauses them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..drivers.diffdrive import parse_base_instruction
from ..drivers.ros_topics_config import DEFAULT_COMMAND_TOPICS, RosTopicsConfig, load_ros_topics_config
from ..drivers.skills import LINEAR_PEAK_SPEED, SETTLE_TIMEOUT, STREAM_RATE_HZ, Gripper, JointSkillsMixin
from ..robot.driver import BaseDriver, Clock, DriverError, JointInfo, Observation, Skill, SkillContext
from . import topics

log = logging.getLogger(__name__)

ROS_TIME_RECHECK = 0.5
"""Wall s after which a wait on :class:`RosTimeClock` re-reads the clock even though no time jump
woke it (a guard against a missed jump callback, not the way waits normally end)."""


class RosTimeClock(Clock):
    """An rclpy node's ROS clock as a robot :class:`~strands_mesh_ros.robot.driver.Clock`:
    simulated time from ``/clock`` under ``use_sim_time`` (0 until the first ``/clock``).

    Waits end on the clock's own time-jump callbacks (rclpy calls them on every ``/clock``
    update), so they track the simulation without polling; a cancel wakes them at once.
    """

    simulated = True
    follows_ros_time = True  # it reads /clock: a node must not republish it as its own

    def __init__(self, node: Any) -> None:
        self._clock = node.get_clock()

    def now(self) -> float:
        return self._clock.now().nanoseconds * 1e-9

    def sleep_until(self, t: float, ctx: SkillContext) -> None:
        from rclpy.clock import JumpThreshold
        from rclpy.duration import Duration

        with ctx.waker() as wake:
            def on_jump(_jump: Any) -> None:
                if self.now() >= t:
                    wake.set()

            threshold = JumpThreshold(min_forward=Duration(nanoseconds=1), min_backward=None, on_clock_change=True)
            with self._clock.create_jump_callback(threshold, post_callback=on_jump):
                while not ctx.cancelled and self.now() < t:
                    wake.wait(ROS_TIME_RECHECK)


def _duration(seconds: float) -> Any:
    from builtin_interfaces.msg import Duration

    sec = math.floor(seconds)
    return Duration(sec=int(sec), nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


class RosTopicsDriver(JointSkillsMixin, BaseDriver):
    """A robot reached through its ROS topics (see the module docstring).

    Args:
        robot_id: the peer id; with the default namespace also a ROS name token.
        config: a :class:`RosTopicsConfig`, a mapping, or a YAML path.
        node: the rclpy node to create the subscription and publisher on; None creates
            ``<robot_id>_ros_topics`` in ``context`` (spun by :meth:`start`).
        context: rclpy context for the own node (None: the default context).

    Raises:
        ValueError: bad config or robot id.
        DriverError: ``urdf_file`` cannot be read.

    Attributes:
        clock: the skills' time base: the wall clock, or :class:`RosTimeClock` when the node's
            ``use_sim_time`` is true at construction (module docstring).
        halted: latched by :meth:`emergency_stop` until :meth:`resume`.
        messages_received, commands_sent: counts of joint_states in and commands out.
        joint_states_topic, command_topic: the resolved absolute topic names.
    """

    def __init__(self, robot_id: str, config: Any, *, node: Any = None, context: Any = None) -> None:
        super().__init__(robot_id)
        cfg = load_ros_topics_config(config, robot_id)
        self.config = cfg
        self.robot_type = cfg.robot_type
        self.peer_type = cfg.peer_type
        ns = cfg.namespace if cfg.namespace is not None else topics.namespace(robot_id)
        self.joint_states_topic = topics.resolve(ns, cfg.joint_states_topic)
        self.command_topic = topics.resolve(ns, cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface])
        self._joints = tuple(JointInfo(j.name, j.kind, j.lower, j.upper, j.max_velocity, j.max_effort)
                             for j in cfg.joints)  # type: ignore[union-attr]
        self._names = tuple(j.name for j in self._joints)
        self._index = {n: i for i, n in enumerate(self._names)}
        self._gripper = (Gripper(tuple(cfg.gripper.joints), tuple(cfg.gripper.open), tuple(cfg.gripper.closed))
                         if cfg.gripper else None)
        self._urdf = None
        if cfg.urdf_file:
            try:
                self._urdf = Path(cfg.urdf_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise DriverError(f"{robot_id}: cannot read urdf_file {cfg.urdf_file!r}: {exc}") from None
        self._state: dict[str, tuple[float, float, float]] = {}
        self._state_cond = threading.Condition()
        self._state_t = 0.0
        self._cmd_lock = threading.Lock()
        self._cmd: np.ndarray | None = None
        self.halted = False
        self.messages_received = 0
        self.commands_sent = 0
        self._spinner = None
        self._closed = False
        self._own_node = node is None
        if node is None:
            import rclpy

            node = rclpy.create_node(f"{robot_id.replace('-', '_')}_ros_topics", context=context)
        self.node = node
        if node.get_parameter("use_sim_time").value:
            self.clock = RosTimeClock(node)
        self._wire()

    # -- ROS wiring ---------------------------------------------------------------------

    def _wire(self) -> None:
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from sensor_msgs.msg import JointState

        from . import qos

        group = MutuallyExclusiveCallbackGroup()
        sub_qos = qos.JOINT_STATES if self.config.joint_states_reliable else qos.SENSOR_IN
        self._sub = self.node.create_subscription(
            JointState, self.joint_states_topic, self._on_joint_state, sub_qos, callback_group=group)
        iface = self.config.command_interface
        if iface == "joint_trajectory":
            from trajectory_msgs.msg import JointTrajectory as Msg
        elif iface == "position_controller":
            from std_msgs.msg import Float64MultiArray as Msg
        else:
            from geometry_msgs.msg import Twist as Msg
        self._pub = self.node.create_publisher(Msg, self.command_topic, qos.COMMAND_OUT)

    def _on_joint_state(self, msg: Any) -> None:
        from ..contract.payloads import ContractError
        from .convert import joint_state_entries

        try:
            entries = joint_state_entries(msg)
        except ContractError as exc:
            log.warning("%s: bad JointState on %s: %s", self.robot_id, self.joint_states_topic, exc)
            return
        with self._state_cond:
            self._state.update(entries)
            self._state_t = time.time()
            self.messages_received += 1
            self._state_cond.notify_all()

    @property
    def ros_provides(self) -> frozenset[str]:
        """Per-robot topics (``joint_states``, ``robot_description``) the robot itself already
        publishes under ``/<robot_id>``, which the robot node must therefore not publish too."""
        out = set()
        try:
            if self.joint_states_topic == topics.robot_topic(self.robot_id, topics.JOINT_STATES):
                out.add(topics.JOINT_STATES)
        except ValueError:  # an id that cannot be a namespace: nothing can collide
            pass
        if self.config.provides_robot_description:
            out.add(topics.ROBOT_DESCRIPTION)
        return frozenset(out)

    # -- Driver: identity and state -----------------------------------------------------

    def joints(self) -> tuple[JointInfo, ...]:
        return self._joints

    def gripper(self) -> Gripper | None:
        return self._gripper

    def home_positions(self) -> np.ndarray:
        arm = list(self.arm_joints())
        home = self.config.home
        if home is None:
            return np.array([j.clip(0.0) for j in arm])
        if isinstance(home, dict):
            return np.array([j.clip(home.get(j.name, 0.0)) for j in arm])
        return np.array([j.clip(v) for j, v in zip(arm, home)])

    def robot_description(self) -> str | None:
        """The ``urdf_file``'s text, or None (the robot node then generates a minimal URDF)."""
        return self._urdf

    def describe(self) -> dict[str, Any]:
        return {"driver": "ros_topics", "command_interface": self.config.command_interface,
                "joint_states_topic": self.joint_states_topic, "command_topic": self.command_topic,
                "joints": [j.to_dict() for j in self._joints]}

    def wait_for_state(self, timeout: float = 5.0) -> bool:
        """Block until every configured joint has been seen in ``joint_states`` (or ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        with self._state_cond:
            while not all(n in self._state for n in self._names):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._state_cond.wait(left)
        return True

    def observe(self) -> Observation:
        """The latest joint state of the configured joints.

        Raises:
            DriverError: some configured joint has not appeared on ``joint_states`` yet.
        """
        with self._state_cond:
            missing = [n for n in self._names if n not in self._state]
            if missing:
                raise DriverError(f"{self.robot_id}: no joint_states yet on {self.joint_states_topic} "
                                  f"for joints {missing}")
            vals = np.array([self._state[n] for n in self._names], dtype=float).reshape(len(self._names), 3)
        return Observation(t=time.time(), names=self._names, position=vals[:, 0].copy(),
                           velocity=vals[:, 1].copy(), effort=vals[:, 2].copy())

    # -- commands -----------------------------------------------------------------------

    def _publish_positions(self, q: np.ndarray, due: float) -> None:
        if self.config.command_interface == "joint_trajectory":
            from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

            # header.stamp zero: "start now" for joint_trajectory_controller.
            msg = JointTrajectory(joint_names=list(self._names), points=[
                JointTrajectoryPoint(positions=[float(v) for v in q], time_from_start=_duration(due))])
        else:
            from std_msgs.msg import Float64MultiArray

            msg = Float64MultiArray(data=[float(v) for v in q])
        self._pub.publish(msg)
        self.commands_sent += 1

    def _seed_locked(self) -> np.ndarray:
        if self._cmd is None:
            self._cmd = self.observe().position.copy()
        return self._cmd

    def command_positions(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Set position targets (rad | m, clipped to limits); dropped while :attr:`halted`.

        Raises:
            ValueError: unknown joint, lengths differ, or a ``twist`` robot.
            DriverError: no joint state yet (the other joints' values are unknown).
        """
        if self.config.command_interface == "twist":
            raise ValueError(f"{self.robot_id} is a twist-commanded base; it takes no position commands")
        if len(names) != len(positions):
            raise ValueError(f"{len(names)} names but {len(positions)} positions")
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise ValueError(f"unknown joints {unknown}; {self.robot_id} has {list(self._names)}")
        lead = self.config.stream_lead
        with self._cmd_lock:
            if self.halted:
                return
            q = self._seed_locked()
            for n, p in zip(names, positions):
                q[self._index[n]] = self._joints[self._index[n]].clip(float(p))
            self._publish_positions(q, lead)

    def command_twist(self, linear: float, angular: float) -> None:
        """Send one Twist: ``linear`` m/s along +x, ``angular`` rad/s about +z (REP-103).
        Dropped while :attr:`halted`.

        Raises:
            DriverError: not a ``twist`` robot.
        """
        if self.config.command_interface != "twist":
            raise DriverError(f"{self.robot_id} has no twist interface")
        with self._cmd_lock:
            if not self.halted:
                self._send_twist(linear, angular)

    def _send_twist(self, linear: float, angular: float) -> None:
        from geometry_msgs.msg import Twist

        msg = Twist()
        msg.linear.x = float(linear)
        msg.angular.z = float(angular)
        self._pub.publish(msg)
        self.commands_sent += 1

    def _hold_locked(self) -> None:
        if self.config.command_interface == "twist":
            self._send_twist(0.0, 0.0)
            return
        try:
            q = self.observe().position.copy()
        except DriverError:
            q = self._cmd  # no measurement: hold the last command, if any
        if q is None:
            return
        self._cmd = q
        self._publish_positions(q, self.config.hold_time)

    def stop(self) -> None:
        """Controlled stop: hold the current measured positions (zero Twist for a base)."""
        with self._cmd_lock:
            self._hold_locked()

    def emergency_stop(self) -> None:
        """Software hold: latch :attr:`halted`, then command a hold at the current measured
        positions (zero Twist for a base). Not the robot's own e-stop (module docstring)."""
        with self._cmd_lock:
            self.halted = True
            self._hold_locked()

    def resume(self) -> None:
        """Clear the halt; the next command starts from the measured positions."""
        with self._cmd_lock:
            self.halted = False
            self._cmd = None

    def reset(self) -> None:
        """Clear the halt. A real robot is not moved home by a reset (call ``home`` for that)."""
        self.resume()

    # -- skills -------------------------------------------------------------------------

    def skills(self) -> list[Skill]:
        skills = super().skills()
        if self.config.command_interface != "twist":
            return skills
        tw = self.config.twist
        skills = [s for s in skills if s.name == "get_state"]
        skills.append(Skill(
            "drive", self._skill_drive, lane="base",
            description="Drive the base at a body twist (REP-103: x forward, +z angular is a left turn) for a duration.",
            params={
                "type": "object",
                "properties": {
                    "linear": {"type": "number", "minimum": -tw.max_linear, "maximum": tw.max_linear,
                               "default": 0.0, "description": "forward speed, m/s"},
                    "angular": {"type": "number", "minimum": -tw.max_angular, "maximum": tw.max_angular,
                                "default": 0.0, "description": "yaw rate about +z, rad/s"},
                    "duration": {"type": "number", "minimum": 0, "maximum": 600, "default": 1.0,
                                 "description": "seconds"},
                },
                "additionalProperties": False,
            },
        ))
        return skills

    def _skill_get_state(self, ctx: SkillContext) -> dict[str, Any]:
        if not self._names:
            return {"t": time.time(), "sim_time": None, "joints": {}}
        return super()._skill_get_state(ctx)

    def _skill_drive(self, ctx: SkillContext, linear: float = 0.0, angular: float = 0.0,
                     duration: float = 1.0) -> dict[str, Any]:
        """Stream the twist at ``twist.rate`` Hz for ``duration`` s, then send zero."""
        period = 1.0 / self.config.twist.rate
        clock = self.clock
        t0 = clock.now()
        try:
            while True:
                ctx.check()
                self.command_twist(linear, angular)
                left = t0 + duration - clock.now()
                if left <= 0:
                    break
                ctx.wait(min(period, left), clock)
        finally:
            with self._cmd_lock:
                self._send_twist(0.0, 0.0)  # zero is always allowed, halted or not
        return {"linear": linear, "angular": angular, "duration": clock.now() - t0}

    def _follow(self, ctx: SkillContext, goal: dict[str, float], duration: float,
                tolerance: float | None) -> dict[str, Any]:
        """``single`` trajectory mode: one point due at ``duration``; else the streamed default.

        The controller interpolates linearly from the measured state to a positions-only point,
        so ``duration`` (s) is stretched to at least max |goal - position| / ``max_velocity``
        per joint (:data:`~.skills.LINEAR_PEAK_SPEED`); the result reports it as the mixin does.

        Raises:
            ValueError: a goal or the duration is not finite. DriverError: halted.
            TimeoutError, Preempted: as the mixin's ``_follow``.
        """
        if self.config.command_interface != "joint_trajectory" or self.config.trajectory_mode != "single":
            return super()._follow(ctx, goal, duration, tolerance)
        ctx.check()
        names = list(goal)
        end = np.array([goal[n] for n in names], dtype=float)
        obs = self.observe()
        idx = {n: i for i, n in enumerate(obs.names)}
        start = np.array([obs.position[idx[n]] for n in names], dtype=float)
        timing = self.limit_duration(names, start, end, duration, LINEAR_PEAK_SPEED)
        duration = timing.duration
        with self._cmd_lock:
            if self.halted:
                raise DriverError(f"{self.robot_id} is halted")
            q = self._seed_locked()
            for n, v in goal.items():
                q[self._index[n]] = self._joints[self._index[n]].clip(float(v))
            self._publish_positions(q, max(duration, self.config.hold_time))
        clock = self.clock
        t_end = clock.now() + duration
        deadline = t_end + SETTLE_TIMEOUT
        period = 1.0 / STREAM_RATE_HZ
        while True:
            ctx.wait(period, clock)
            obs = self.observe()
            idx = {n: i for i, n in enumerate(obs.names)}
            worst = float(np.max(np.abs(np.array([obs.position[idx[n]] for n in names]) - end))) if names else 0.0
            now = clock.now()
            if now >= t_end and (tolerance is None or worst <= tolerance):
                break
            if now >= deadline:
                raise TimeoutError(f"joints did not reach target within {tolerance} (worst error {worst:.4f}) "
                                   f"{SETTLE_TIMEOUT} s after the trajectory ended")
        return {"reached": True, "max_error": worst, "positions": dict(zip(names, end.tolist())),
                **timing.to_result()}

    def instruction_to_skill(self, text: str) -> tuple[str, dict[str, Any]]:
        """The base grammar, plus the drive forms of differential bases for ``twist`` robots.

        Raises:
            InstructionError: the text matches no form this robot can run.
        """
        if self.config.command_interface == "twist" and isinstance(text, str):
            if (call := parse_base_instruction(text)) is not None:
                return call
        return super().instruction_to_skill(text)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Spin the driver's own node on a background thread (no-op with a shared node).

        Raises:
            DriverError: the driver was closed.
        """
        if self._closed:
            raise DriverError(f"{self.robot_id}: driver is closed")
        if not self._own_node or self._spinner is not None:
            return
        from .spin import BackgroundSpin, make_executor

        executor = make_executor(self.node.context)
        executor.add_node(self.node)
        self._spinner = BackgroundSpin(executor, f"{self.robot_id}-ros-topics")

    def close(self) -> None:
        """Stop spinning and destroy the own node, or the driver's entities on a shared node.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._spinner is not None:
            self._spinner.stop()
        if self._own_node:
            self.node.destroy_node()
        else:
            self.node.destroy_subscription(self._sub)
            self.node.destroy_publisher(self._pub)


def make_ros_topics_driver(spec: Any, *, node: Any = None, context: Any = None) -> RosTopicsDriver:
    """Build (not start) the driver of a fleet file's ``ros_topics`` robot.

    Args:
        spec: a :class:`~strands_mesh_ros.drivers.fleet_config.RobotSpec` whose ``options``
            are the driver config inline, or ``{config_file: path, overrides...}``.
        node: the rclpy node the driver uses (e.g. the robot node); None makes the driver
            create its own node in ``context``.
        context: without ``node``: the rclpy context (None: the default).

    Raises:
        ValueError: an invalid config or a missing config file (the message names the robot).
        DriverError: what the driver raises.
    """
    try:
        config = load_ros_topics_config(dict(spec.options), spec.id)
    except (ValueError, OSError) as exc:
        raise ValueError(f"robot {spec.id!r}: {exc}") from None
    return RosTopicsDriver(spec.id, config, node=node, context=context)


__all__ = ["RosTopicsDriver", "RosTimeClock", "make_ros_topics_driver", "RosTopicsConfig", "load_ros_topics_config", "DEFAULT_COMMAND_TOPICS"]
