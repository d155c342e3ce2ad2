"""The standard skills every joint-position robot offers, written once for all drivers.

A driver mixes in :class:`JointSkillsMixin` and implements two primitives:

* ``observe()`` -> :class:`~strands_mesh_ros.robot.driver.Observation`
* ``command_positions(names, positions)`` -- set position targets (rad or m) for joints.

and gets ``move_joints`` (lane ``motion``), ``home`` (lane ``motion``), ``move_gripper``
(lane ``gripper``, when the robot has a gripper) and ``get_state`` (no lane).

Trajectories are interpolated with a minimum-jerk profile
s(u) = 10u^3 - 15u^4 + 6u^5 (Flash & Hogan, 1985), streamed at :data:`STREAM_RATE_HZ`.

Everything runs on the robot's clock (``driver.clock``, :class:`~strands_mesh_ros.robot.driver.Clock`):
simulated time for simulated robots, else ``time.monotonic()``. Trajectory time, the stream
period, the settle timeout (:data:`SETTLE_TIMEOUT`) and waits are all in the robot's seconds, so
a simulation running slower than real time (a busy machine) slows the motion down instead of
failing it. One streamed target advances trajectory time by at most
:data:`MAX_STREAM_ADVANCE` stream periods, so a stalled thread or simulation makes the motion
late, never faster.

Speed limits: a joint moving a distance d (rad or m) in T s along that profile peaks at
:data:`MIN_JERK_PEAK_SPEED` · d / T (rad/s or m/s). A requested duration too short for some
joint's advertised ``max_velocity`` is *stretched* to the shortest duration that keeps every
joint within its limit (:func:`limit_duration`); the skill's result reports the duration
used, the one requested, whether it was stretched and by which joint. Goals and durations
must be finite numbers (ValueError otherwise; ``Robot.call_skill`` refuses them earlier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..robot.driver import WALL_CLOCK, JointInfo, Observation, Skill, SkillContext

STREAM_RATE_HZ = 100.0
"""Rate at which interpolated position targets are sent, Hz."""

MAX_STREAM_ADVANCE = 1.0
"""Most trajectory time (in stream periods, 1/STREAM_RATE_HZ s) one streamed target may
advance. Trajectory time never runs ahead of the robot's clock, and when the streaming thread
or a simulation stalls the motion runs late instead of jumping ahead: on the robot's clock the
targets never move faster than the profile. (With a 6 Hz servo such as arm6's, allowing two
periods let a loaded machine's late targets push the measured joint speed ~20 % over the
profile's peak; one period kept it within ~6 %.)"""

DEFAULT_TOLERANCE = 0.02
"""Default |position error| (rad or m) under which a target counts as reached."""

SETTLE_TIMEOUT = 3.0
"""Extra time (s, on the robot's clock: simulated s for a simulation) after the trajectory
ends for the joints to settle within tolerance."""

MIN_JERK_PEAK_SPEED = 1.875
"""Peak of ds/du of the minimum-jerk scaling s(u) = 10u^3 - 15u^4 + 6u^5 (Flash & Hogan,
1985): ds/du = 30u^2(1 - u)^2, largest at u = 1/2, where it is 30/16 = 15/8. A joint moving
d (rad or m) in T s therefore peaks at 1.875 · d / T (rad/s or m/s)."""

LINEAR_PEAK_SPEED = 1.0
"""Peak speed factor of a linear (constant-speed) segment: d / T. ros2_control's
joint_trajectory_controller interpolates linearly between points that carry positions only
(its documentation, "Trajectory Representation", spline method)."""


@dataclass(frozen=True)
class Gripper:
    """A gripper: the joints it moves and their positions when open and closed (rad or m)."""

    joints: tuple[str, ...]
    open_positions: tuple[float, ...]
    closed_positions: tuple[float, ...]


def min_jerk(u: float) -> float:
    """Minimum-jerk time scaling for u in [0, 1] (Flash & Hogan, 1985)."""
    u = min(max(u, 0.0), 1.0)
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


@dataclass(frozen=True)
class Timing:
    """The duration a trajectory actually uses.

    Attributes:
        duration: s, the duration used (>= ``requested``).
        requested: s, the duration the caller asked for.
        limited_by: the joint whose ``max_velocity`` set ``duration`` when it was stretched,
            else ``None``.
    """

    duration: float
    requested: float
    limited_by: str | None = None

    @property
    def stretched(self) -> bool:
        """Whether ``duration`` is longer than ``requested``."""
        return self.limited_by is not None

    def to_result(self) -> dict[str, Any]:
        """The fields every joint-motion skill adds to its result:
        ``{duration, requested_duration, stretched, limited_by}`` (s, s, bool, joint | None)."""
        return {
            "duration": self.duration,
            "requested_duration": self.requested,
            "stretched": self.stretched,
            "limited_by": self.limited_by,
        }


def limit_duration(
    names: Sequence[str],
    start: Sequence[float],
    end: Sequence[float],
    duration: float,
    max_velocity: Mapping[str, float | None],
    peak_factor: float = MIN_JERK_PEAK_SPEED,
) -> Timing:
    """Shortest duration >= ``duration`` that keeps every joint within its speed limit.

    A joint moving |end - start| along a profile whose peak speed is
    ``peak_factor`` · distance / T needs T >= ``peak_factor`` · |end - start| / max_velocity.

    Args:
        names: joint names, shape (n,).
        start, end: positions, shape (n,), rad or m.
        duration: requested duration, s (finite, >= 0).
        max_velocity: limit per joint name, rad/s or m/s; a joint that is missing, ``None``,
            not positive or not finite has no known limit and constrains nothing.
        peak_factor: peak speed of the profile in units of distance / duration
            (:data:`MIN_JERK_PEAK_SPEED` for the streamed minimum-jerk profile).

    Returns:
        A :class:`Timing`; ``limited_by`` names the joint that needs the longest time when
        that is longer than ``duration``.

    Raises:
        ValueError: ``duration``, ``start`` or ``end`` is not finite, or ``duration`` < 0.
    """
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration {duration!r} s must be a finite number >= 0")
    need, worst = float(duration), None
    for n, a, b in zip(names, start, end):
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"joint {n!r}: move from {a!r} to {b!r} is not between finite positions")
        v = max_velocity.get(n)
        if v is None or not math.isfinite(v) or v <= 0:
            continue
        t = peak_factor * abs(float(b) - float(a)) / float(v)
        if t > need:
            need, worst = t, n
    return Timing(need, float(duration), worst)


class JointSkillsMixin:
    """Standard skills on top of ``observe`` and ``command_positions``.

    Subclasses provide ``joints()`` (the arm / leg joints ``move_joints`` addresses, in
    order), ``home_positions()`` (same order), optionally ``gripper()``, and the two
    primitives named in the module docstring.
    """

    def arm_joints(self) -> Sequence[JointInfo]:
        """Joints addressed by ``move_joints`` (default: all joints except the gripper's)."""
        g = self.gripper()
        skip = set(g.joints) if g else set()
        return [j for j in self.joints() if j.name not in skip]  # type: ignore[attr-defined]

    def gripper(self) -> Gripper | None:
        return None

    def home_positions(self) -> np.ndarray:
        """Home pose of :meth:`arm_joints`, rad or m (default: zeros clipped to limits)."""
        return np.array([j.clip(0.0) for j in self.arm_joints()])

    def limit_duration(
        self, names: Sequence[str], start: Sequence[float], end: Sequence[float], duration: float,
        peak_factor: float = MIN_JERK_PEAK_SPEED,
    ) -> Timing:
        """:func:`limit_duration` with the ``max_velocity`` of this robot's :meth:`joints`."""
        limits = {j.name: j.max_velocity for j in self.joints()}  # type: ignore[attr-defined]
        return limit_duration(names, start, end, duration, limits, peak_factor)

    # -- the skills --------------------------------------------------------------------

    def skills(self) -> list[Skill]:
        arm = [j.name for j in self.arm_joints()]
        skills = [
            Skill(
                "move_joints",
                self._skill_move_joints,
                lane="motion",
                description="Move joints to position targets (rad or m) over a duration (s); a duration too "
                "short for a joint's max_velocity is stretched (the result says so).",
                params={
                    "type": "object",
                    "properties": {
                        "positions": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": len(arm),
                            "maxItems": len(arm),
                            "description": f"targets for {arm}, in this order",
                        },
                        "targets": {
                            "type": "object",
                            "additionalProperties": {"type": "number"},
                            "description": "targets by joint name",
                        },
                        "duration": {"type": "number", "minimum": 0, "maximum": 600, "default": 2.0},
                        "tolerance": {"type": "number", "exclusiveMinimum": 0, "default": DEFAULT_TOLERANCE},
                    },
                    "additionalProperties": False,
                    "oneOf": [{"required": ["positions"]}, {"required": ["targets"]}],
                },
            ),
            Skill(
                "home",
                self._skill_home,
                lane="motion",
                description="Move to the home pose over a duration (s); a duration too short for a joint's "
                "max_velocity is stretched (the result says so).",
                params={
                    "type": "object",
                    "properties": {"duration": {"type": "number", "minimum": 0, "maximum": 600, "default": 2.0}},
                    "additionalProperties": False,
                },
            ),
            Skill(
                "get_state",
                self._skill_get_state,
                lane=None,
                description="Joint positions (rad|m), velocities (rad/s|m/s) and efforts (N·m|N).",
            ),
        ]
        if self.gripper() is not None:
            skills.append(
                Skill(
                    "move_gripper",
                    self._skill_move_gripper,
                    lane="gripper",
                    description="Open (1) or close (0) the gripper, or anything between, over a duration (s); a "
                    "duration too short for a finger's max_velocity is stretched (the result says so).",
                    params={
                        "type": "object",
                        "properties": {
                            "opening": {"type": "number", "minimum": 0, "maximum": 1},
                            "duration": {"type": "number", "minimum": 0, "maximum": 60, "default": 1.0},
                        },
                        "required": ["opening"],
                        "additionalProperties": False,
                    },
                )
            )
        return skills

    def _skill_move_joints(
        self,
        ctx: SkillContext,
        positions: Sequence[float] | None = None,
        targets: dict[str, float] | None = None,
        duration: float = 2.0,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> dict[str, Any]:
        arm = list(self.arm_joints())
        names = [j.name for j in arm]
        if positions is not None:
            goal = dict(zip(names, positions))
        else:
            unknown = sorted(set(targets or {}) - set(names))
            if unknown:
                raise ValueError(f"unknown joints {unknown}; this robot has {names}")
            goal = dict(targets or {})
        bad = {n: v for n, v in goal.items() if not math.isfinite(v)}
        if bad:
            raise ValueError(f"targets must be finite numbers (rad or m), got {bad}")
        by_name = {j.name: j for j in arm}
        goal = {n: by_name[n].clip(float(v)) for n, v in goal.items()}
        return self._follow(ctx, goal, duration, tolerance)

    def _skill_home(self, ctx: SkillContext, duration: float = 2.0) -> dict[str, Any]:
        names = [j.name for j in self.arm_joints()]
        return self._follow(ctx, dict(zip(names, self.home_positions())), duration, DEFAULT_TOLERANCE)

    def _skill_move_gripper(self, ctx: SkillContext, opening: float, duration: float = 1.0) -> dict[str, Any]:
        g = self.gripper()
        assert g is not None  # the skill exists only with a gripper
        goal = {
            n: c + opening * (o - c) for n, o, c in zip(g.joints, g.open_positions, g.closed_positions)
        }
        # A gripper closing on an object never reaches its target: report, do not fail.
        return self._follow(ctx, goal, duration, tolerance=None)

    def _skill_get_state(self, ctx: SkillContext) -> dict[str, Any]:
        obs: Observation = self.observe()  # type: ignore[attr-defined]
        return {"t": obs.t, "sim_time": obs.sim_time, "joints": obs.joints_dict()}

    def _follow(
        self, ctx: SkillContext, goal: dict[str, float], duration: float, tolerance: float | None
    ) -> dict[str, Any]:
        """Stream a min-jerk trajectory to ``goal`` then wait until within ``tolerance``.

        Args:
            goal: joint name -> target, rad or m (finite).
            duration: requested duration, s; stretched by :meth:`limit_duration` so that no
                joint exceeds its ``max_velocity``.
            tolerance: |error| (rad or m) under which the goal counts as reached; ``None``
                to report without checking.

        Returns:
            ``{reached, max_error, positions, duration, requested_duration, stretched,
            limited_by}`` (see :meth:`Timing.to_result`).

        Raises:
            ValueError: a goal, the duration or the tolerance is not finite (nothing is
                commanded).
            TimeoutError: not within ``tolerance`` :data:`SETTLE_TIMEOUT` s (robot clock)
                after the end.
            Preempted: a stop or e-stop cancelled the call.
        """
        if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance {tolerance!r} (rad or m) must be a finite number > 0")
        names = list(goal)
        obs: Observation = self.observe()  # type: ignore[attr-defined]
        index = {n: i for i, n in enumerate(obs.names)}
        start = np.array([obs.position[index[n]] for n in names], dtype=float)
        end = np.array([goal[n] for n in names], dtype=float)
        timing = self.limit_duration(names, start, end, duration)
        duration = timing.duration
        period = 1.0 / STREAM_RATE_HZ
        clock = getattr(self, "clock", WALL_CLOCK)  # the robot's: simulated time for a simulation
        last = clock.now()
        elapsed = 0.0  # trajectory time, s on the robot's clock
        while True:
            ctx.check()
            now = clock.now()
            elapsed += min(max(now - last, 0.0), MAX_STREAM_ADVANCE * period)
            last = now
            u = 1.0 if duration <= 0 else elapsed / duration
            self.command_positions(names, start + min_jerk(u) * (end - start))  # type: ignore[attr-defined]
            if u >= 1.0:
                break
            ctx.wait(period, clock)
        deadline = clock.now() + SETTLE_TIMEOUT
        while True:
            obs = self.observe()  # type: ignore[attr-defined]
            err = np.abs(np.array([obs.position[index[n]] for n in names]) - end)
            worst = float(err.max()) if len(err) else 0.0
            if tolerance is None or worst <= tolerance or clock.now() >= deadline:
                break
            ctx.wait(period, clock)
        reached = tolerance is None or worst <= tolerance
        if not reached:
            raise TimeoutError(
                f"joints did not reach target within {tolerance} (worst error {worst:.4f}) "
                f"{SETTLE_TIMEOUT} s after the trajectory ended"
            )
        return {"reached": reached, "max_error": worst, "positions": dict(zip(names, end.tolist())),
                **timing.to_result()}
