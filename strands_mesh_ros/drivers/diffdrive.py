"""Differential-drive bases: wheel kinematics, the ``drive`` skill and its instruction grammar.

Pure Python (no mujoco, rclpy or zenoh), so any driver of a two-wheeled base can share it.
Units and axes follow REP-103: x forward, y left, z up; linear speed in m/s, angular speed
in rad/s about +z (positive turns left), durations in s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..robot.driver import InstructionError, Skill


@dataclass(frozen=True)
class DiffDrive:
    """A differential-drive base: two wheel joints (velocity actuated), SI units.

    Attributes:
        left, right: wheel joint names; positive wheel speed drives the base forward (+x).
        wheel_radius: m.
        track: distance between the wheels' contact points, m.
    """

    left: str
    right: str
    wheel_radius: float
    track: float

    def wheel_speeds(self, linear: float, angular: float) -> tuple[float, float]:
        """(left, right) wheel speeds in rad/s for a body twist (m/s, rad/s about +z).

        Unicycle kinematics: v_l = v - ω·track/2, v_r = v + ω·track/2, wheel speed = v_w / r.
        """
        half = angular * self.track / 2.0
        return (linear - half) / self.wheel_radius, (linear + half) / self.wheel_radius


BASE_INSTRUCTION_FORMS: tuple[tuple[str, str], ...] = (
    ("drive [forward|backward] at <v> m/s for <t> s", "drive"),
    ("drive forward|backward <d> m [at <v> m/s]", "drive"),
    ("turn [left|right] at <w> rad/s for <t> s", "drive"),
    ("turn left|right <a> deg|rad [at <w> rad/s]", "drive"),
    ("drive at <v> m/s and turn at <w> rad/s for <t> s", "drive"),
)
"""Instruction forms of differential-drive bases (on top of :data:`~.base.INSTRUCTION_FORMS`)."""

DEFAULT_DRIVE_SPEED = 0.2
"""Linear speed (m/s) of distance instructions that name no speed."""

DEFAULT_TURN_RATE = 0.5
"""Turn rate (rad/s) of angle instructions that name no rate."""

MAX_LINEAR = 1.0
"""Largest |linear| (m/s) the drive skill accepts."""

MAX_ANGULAR = 4.0
"""Largest |angular| (rad/s) the drive skill accepts."""


def drive_skill(fn: Callable[..., Any]) -> Skill:
    """The ``drive`` skill (lane ``base``) with its JSON Schema; ``fn(ctx, linear, angular, duration)``."""
    return Skill(
        "drive",
        fn,
        lane="base",
        description="Drive the base at a body twist (REP-103: x forward, +z angular is a left turn) for a duration.",
        params={
            "type": "object",
            "properties": {
                "linear": {"type": "number", "minimum": -MAX_LINEAR, "maximum": MAX_LINEAR, "default": 0.0,
                           "description": "forward speed, m/s"},
                "angular": {"type": "number", "minimum": -MAX_ANGULAR, "maximum": MAX_ANGULAR, "default": 0.0,
                            "description": "yaw rate about +z, rad/s"},
                "duration": {"type": "number", "minimum": 0, "maximum": 600, "default": 1.0,
                             "description": "s (simulated s for a sim)"},
            },
            "additionalProperties": False,
        },
    )


_N = r"([-+]?(?:\d+\.?\d*|\.\d+))"
_SEC = r"(?:s|sec|secs|seconds?)"
_MPS = r"(?:m/s|mps|meters? per second|metres? per second)"
_RPS = r"(?:rad/s|radians? per second)"


def _cover(text: str, amount: float, rate: str | None, default: float) -> tuple[float, float]:
    """(rate signed like ``amount``, duration s) to cover ``amount`` at ``|rate|`` (or ``default``)."""
    r = abs(float(rate)) if rate else default
    if r == 0:
        raise InstructionError(f"{text!r}: cannot cover a distance or angle at zero speed")
    return math.copysign(r, amount), abs(amount) / r


def parse_base_instruction(text: str) -> tuple[str, dict[str, Any]] | None:
    """Parse :data:`BASE_INSTRUCTION_FORMS`; None when the text is none of them.

    Signs follow REP-103: forward is +linear, left is +angular. A direction word and a
    negative number multiply (``drive backward at -0.2 m/s`` drives forward).

    Raises:
        InstructionError: a form that matches but asks to cover a distance or angle at zero speed.
    """
    s = " ".join(text.strip().lower().rstrip(".!").split())
    s = s.replace("metres", "m").replace("meters", "m").replace("degrees", "deg")
    sign = {"forward": 1.0, "forwards": 1.0, "backward": -1.0, "backwards": -1.0, "back": -1.0,
            "left": 1.0, "right": -1.0, "": 1.0}
    if m := re.fullmatch(rf"drive (?:(forwards?|backwards?|back) )?at {_N} ?{_MPS} for {_N} ?{_SEC}", s):
        return "drive", {"linear": sign[m.group(1) or ""] * float(m.group(2)), "angular": 0.0,
                         "duration": float(m.group(3))}
    if m := re.fullmatch(rf"drive (forwards?|backwards?|back) {_N} ?m(?: at {_N} ?{_MPS})?", s):
        v, t = _cover(text, float(m.group(2)), m.group(3), DEFAULT_DRIVE_SPEED)
        return "drive", {"linear": sign[m.group(1)] * v, "angular": 0.0, "duration": t}
    if m := re.fullmatch(rf"turn (?:(left|right) )?at {_N} ?{_RPS} for {_N} ?{_SEC}", s):
        return "drive", {"linear": 0.0, "angular": sign[m.group(1) or ""] * float(m.group(2)),
                         "duration": float(m.group(3))}
    if m := re.fullmatch(rf"turn (left|right) {_N} ?(deg|rad|radians?)(?: at {_N} ?{_RPS})?", s):
        angle = math.radians(float(m.group(2))) if m.group(3) == "deg" else float(m.group(2))
        w, t = _cover(text, angle, m.group(4), DEFAULT_TURN_RATE)
        return "drive", {"linear": 0.0, "angular": sign[m.group(1)] * w, "duration": t}
    if m := re.fullmatch(rf"drive at {_N} ?{_MPS} and turn at {_N} ?{_RPS} for {_N} ?{_SEC}", s):
        return "drive", {"linear": float(m.group(1)), "angular": float(m.group(2)), "duration": float(m.group(3))}
    return None
