"""The standard skills every joint-position robot offers, written once for all drivers.

A driver mixes in :class:`JointSkillsMixin` and implements two primitives:

* ``observe()`` -> :class:`~strands_mesh_ros.drivers.base.Observation`
* ``command_positions(names, positions)`` -- set position targets (rad or m) for joints.

and gets ``move_joints`` (lane ``motion``), ``home`` (lane ``motion``), ``move_gripper``
(lane ``gripper``, when the robot has a gripper) and ``get_state`` (no lane).

Trajectories are interpolated with a minimum-jerk profile
s(u) = 10u^3 - 15u^4 + 6u^5 (Flash & Hogan, 1985), streamed at :data:`STREAM_RATE_HZ`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .base import JointInfo, Observation, Skill, SkillContext

STREAM_RATE_HZ = 100.0
"""Rate at which interpolated position targets are sent, Hz."""

DEFAULT_TOLERANCE = 0.02
"""Default |position error| (rad or m) under which a target counts as reached."""

SETTLE_TIMEOUT = 3.0
"""Extra time (s) after the trajectory ends for the joints to settle within tolerance."""


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

    # -- the skills --------------------------------------------------------------------

    def skills(self) -> list[Skill]:
        arm = [j.name for j in self.arm_joints()]
        skills = [
            Skill(
                "move_joints",
                self._skill_move_joints,
                lane="motion",
                description="Move joints to position targets (rad or m) over a duration (s).",
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
                description="Move to the home pose.",
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
                    description="Open (1) or close (0) the gripper, or anything between.",
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
        """Stream a min-jerk trajectory to ``goal`` then wait until within ``tolerance``."""
        names = list(goal)
        obs: Observation = self.observe()  # type: ignore[attr-defined]
        index = {n: i for i, n in enumerate(obs.names)}
        start = np.array([obs.position[index[n]] for n in names])
        end = np.array([goal[n] for n in names])
        period = 1.0 / STREAM_RATE_HZ
        t0 = time.monotonic()
        while True:
            ctx.check()
            u = 1.0 if duration <= 0 else (time.monotonic() - t0) / duration
            self.command_positions(names, start + min_jerk(u) * (end - start))  # type: ignore[attr-defined]
            if u >= 1.0:
                break
            ctx.wait(period)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            obs = self.observe()  # type: ignore[attr-defined]
            err = np.abs(np.array([obs.position[index[n]] for n in names]) - end)
            worst = float(err.max()) if len(err) else 0.0
            if tolerance is None or worst <= tolerance or time.monotonic() >= deadline:
                break
            ctx.wait(period)
        reached = tolerance is None or worst <= tolerance
        if not reached:
            raise TimeoutError(
                f"joints did not reach target within {tolerance} (worst error {worst:.4f}) "
                f"{SETTLE_TIMEOUT} s after the trajectory ended"
            )
        return {"reached": reached, "max_error": worst, "positions": dict(zip(names, end.tolist()))}
