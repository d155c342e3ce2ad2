"""The robot driver interface: what the mesh dispatcher and the ROS nodes call on a robot.

A driver owns one robot's actuators and sensors. Everything above it (lanes, lockout, the
mesh contract, ROS topics) lives in :class:`strands_mesh_ros.robot.runtime.Robot`, so a new
driver only implements the small :class:`Driver` protocol below.

Units are SI as ROS REP-103 asks: positions in rad (revolute) or m (prismatic), velocities in
rad/s or m/s, efforts in N·m or N, times in s.

This module is pure Python; it imports neither zenoh, rclpy, mujoco nor numpy (annotations only).
"""

from __future__ import annotations

import math
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # only annotations here: a robot-less peer (the CLI) need not import numpy
    import numpy as np

PeerType = Literal["robot", "sim"]
JointKind = Literal["revolute", "prismatic", "continuous"]


class DriverError(RuntimeError):
    """A driver could not do what was asked (bad model, unreachable hardware, ...)."""


class InstructionError(ValueError):
    """An instruction string does not match the driver's grammar."""


class Preempted(Exception):
    """Raised inside a running skill when a stop or an e-stop cancels it."""


@dataclass(frozen=True)
class JointInfo:
    """Static description of one actuated joint.

    Attributes:
        name: joint name, as in the URDF / MJCF and in ``joint_states``.
        kind: ``revolute`` / ``continuous`` (units rad) or ``prismatic`` (units m).
        lower, upper: position limits in rad or m; ``None`` when unlimited.
        max_velocity: rad/s or m/s; ``None`` when unknown.
        max_effort: N·m or N; ``None`` when unknown.
    """

    name: str
    kind: JointKind = "revolute"
    lower: float | None = None
    upper: float | None = None
    max_velocity: float | None = None
    max_effort: float | None = None

    def clip(self, value: float) -> float:
        """Clamp ``value`` into ``[lower, upper]`` (limits that are ``None`` are open)."""
        lo = -math.inf if self.lower is None else self.lower
        hi = math.inf if self.upper is None else self.upper
        return float(min(max(value, lo), hi))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "lower": self.lower,
            "upper": self.upper,
            "max_velocity": self.max_velocity,
            "max_effort": self.max_effort,
        }


@dataclass(frozen=True)
class Observation:
    """One snapshot of a robot's joints.

    Attributes:
        t: wall-clock time of the snapshot, UNIX seconds.
        names: joint names, shape (n,).
        position: shape (n,), rad or m.
        velocity: shape (n,), rad/s or m/s.
        effort: shape (n,), N·m or N.
        sim_time: simulated time in s for simulated robots, else ``None``.
        base_pose: ``(x, y, z, yaw)`` of a mobile base in its odometry frame (m, rad), else
            ``None`` (a fixed base).
    """

    t: float
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    sim_time: float | None = None
    base_pose: tuple[float, float, float, float] | None = None

    def joints_dict(self) -> dict[str, dict[str, float]]:
        """The contract's ``joints`` field: ``{name: {position, velocity, effort}}``."""
        return {
            n: {"position": float(p), "velocity": float(v), "effort": float(e)}
            for n, p, v, e in zip(self.names, self.position, self.velocity, self.effort)
        }


def _empty_params() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True)
class Skill:
    """A structured call a robot offers.

    Attributes:
        name: skill name, ``[a-z_][a-z0-9_]*``.
        fn: ``fn(ctx: SkillContext, **args) -> JSON-able result``. It must poll
            ``ctx`` (``ctx.wait`` / ``ctx.check``) so that stops preempt it.
        lane: calls on the same lane of one robot run one at a time, in arrival order;
            ``None`` means the skill takes no lane and runs concurrently with anything.
        description: one line for humans and agents.
        params: JSON Schema (draft 2020-12) of the keyword arguments.
    """

    name: str
    fn: Callable[..., Any]
    lane: str | None = None
    description: str = ""
    params: Mapping[str, Any] = field(default_factory=_empty_params)

    def describe(self) -> dict[str, Any]:
        """The presence / ``features`` form: ``{name, lane, description, params}``."""
        return {
            "name": self.name,
            "lane": self.lane,
            "description": self.description,
            "params": dict(self.params),
        }


class Clock:
    """A robot's time base: what its skills time trajectories, settle timeouts and waits on.

    This one is the wall clock (``time.monotonic()``), right for real robots. A simulated
    robot's driver offers its simulated time instead (``driver.clock``, e.g. the MuJoCo
    driver's), so a simulation that runs slower than real time (a busy machine, a slow-down
    factor) slows its robot's skills with it instead of failing them on a wall-clock timeout.

    Attributes:
        simulated: True for a simulation's clock.
    """

    simulated = False

    def now(self) -> float:
        """The clock's time, s (only differences are meaningful)."""
        return time.monotonic()

    def sleep_until(self, t: float, ctx: "SkillContext") -> None:
        """Return once :meth:`now` >= ``t`` or as soon as ``ctx`` is cancelled (the caller
        checks which)."""
        cancel = ctx.cancel_event
        while not cancel.is_set():
            left = t - self.now()
            if left <= 0:
                return
            cancel.wait(left)


WALL_CLOCK = Clock()
"""The wall clock, the default of every driver (:attr:`BaseDriver.clock`)."""


class SkillContext:
    """Handed to every running skill; lets a stop preempt it.

    Skills wait through :meth:`wait` rather than ``time.sleep`` so that a cancel wakes
    them at once, and so that they wait on the robot's clock (:class:`Clock`): the lanes give
    each call the clock of its robot's driver (simulated time for a simulation).

    Args:
        cancel: the event that cancels the call (default: a new one); set it through
            :meth:`cancel`, which also wakes waits on a simulated clock at once.
        clock: the robot's clock (default :data:`WALL_CLOCK`).
    """

    def __init__(self, cancel: threading.Event | None = None, clock: Clock | None = None) -> None:
        self._cancel = cancel or threading.Event()
        self.clock = clock or WALL_CLOCK
        self.reason = ""
        self._wakers_lock = threading.Lock()
        self._wakers: set[threading.Event] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the call is cancelled."""
        return self._cancel

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self._cancel.set()
        with self._wakers_lock:
            wakers = list(self._wakers)
        for w in wakers:
            w.set()

    @contextmanager
    def waker(self) -> Iterator[threading.Event]:
        """An event that :meth:`cancel` sets too: for a clock whose waits end on something
        else as well (a simulation reaching a time)."""
        ev = threading.Event()
        with self._wakers_lock:
            self._wakers.add(ev)
        if self._cancel.is_set():
            ev.set()
        try:
            yield ev
        finally:
            with self._wakers_lock:
                self._wakers.discard(ev)

    def check(self) -> None:
        """Raise :class:`Preempted` if the call was cancelled."""
        if self._cancel.is_set():
            raise Preempted(self.reason or "preempted")

    def now(self, clock: Clock | None = None) -> float:
        """The robot's clock (or ``clock``), s."""
        return (clock or self.clock).now()

    def wait(self, seconds: float, clock: Clock | None = None) -> None:
        """Wait ``seconds`` (s) on the robot's clock (or ``clock``), raising :class:`Preempted`
        as soon as the call is cancelled."""
        clock = clock or self.clock
        self.wait_until(clock.now() + max(0.0, seconds), clock)

    def wait_until(self, t: float, clock: Clock | None = None) -> None:
        """Wait until the robot's clock (or ``clock``) reads ``t`` (s), raising
        :class:`Preempted` as soon as the call is cancelled."""
        self.check()
        (clock or self.clock).sleep_until(t, self)
        self.check()


@runtime_checkable
class Driver(Protocol):
    """What a robot driver provides. See :class:`BaseDriver` for shared helpers.

    Thread-safety: ``observe``, ``stop`` and ``emergency_stop`` are called from other
    threads than skills; ``emergency_stop`` must return quickly (no I/O waits) because the
    safety path calls it before anything else.
    """

    robot_id: str
    robot_type: str
    peer_type: PeerType

    def joints(self) -> Sequence[JointInfo]: ...

    def observe(self) -> Observation: ...

    def skills(self) -> Sequence[Skill]: ...

    def instruction_to_skill(self, text: str) -> tuple[str, dict[str, Any]]:
        """Map a plain-text instruction to ``(skill_name, args)``; raise InstructionError."""
        ...

    def robot_description(self) -> str | None:
        """URDF text of the robot (published as ``robot_description``), or ``None``."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None:
        """Controlled stop: decelerate and hold the current position."""
        ...

    def emergency_stop(self) -> None:
        """Immediate stop: hold the current position with zero velocity."""
        ...

    def resume(self) -> None:
        """Clear the halt latched by :meth:`emergency_stop` (after an authorised resume)."""
        ...

    def reset(self) -> None:
        """Back to the initial state (home pose); clears a driver-level halt."""
        ...

    def close(self) -> None: ...


ROBOT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_robot_id(robot_id: object) -> str:
    """Return ``robot_id`` if it is a valid peer id (CONTRACT.md), else raise ValueError."""
    if not isinstance(robot_id, str) or not ROBOT_ID_RE.fullmatch(robot_id):
        raise ValueError(
            f"invalid robot_id {robot_id!r}: need 1-64 characters of [A-Za-z0-9_-]"
        )
    return robot_id


# --- the instruction grammar ------------------------------------------------------------

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

#: The documented instruction grammar (docs/robots.md). Each entry: regex, skill, args builder.
INSTRUCTION_FORMS: tuple[tuple[str, str], ...] = (
    ("home | go home", "home"),
    ("open gripper | close gripper | set gripper to <0..1>", "move_gripper"),
    ("move joints to <q1> <q2> ... [in <seconds> s]", "move_joints"),
    ("move <joint> to <value> [in <seconds> s]", "move_joints"),
    ("state | get state", "get_state"),
)


def parse_instruction(text: str, available: Mapping[str, Skill]) -> tuple[str, dict[str, Any]]:
    """Parse the small instruction grammar of :data:`INSTRUCTION_FORMS`.

    Args:
        text: the instruction, case-insensitive, e.g. ``"move joints to 0 0.5 -1 in 2 s"``.
        available: skills of the robot by name; a form whose skill is missing is refused.

    Returns:
        ``(skill_name, args)`` ready for the skill call.

    Raises:
        InstructionError: the text matches no form, or names a skill the robot lacks.
    """
    if not isinstance(text, str) or not text.strip():
        raise InstructionError("empty instruction")
    s = " ".join(text.strip().lower().rstrip(".!").split())
    call: tuple[str, dict[str, Any]] | None = None
    duration = None
    m = re.fullmatch(rf"(.*?) in ({_NUM}) ?(?:s|sec|seconds?)", s)
    if m:
        s, duration = m.group(1), float(m.group(2))
    if s in ("home", "go home", "go to home"):
        call = ("home", {})
    elif s in ("open gripper", "open the gripper"):
        call = ("move_gripper", {"opening": 1.0})
    elif s in ("close gripper", "close the gripper"):
        call = ("move_gripper", {"opening": 0.0})
    elif m := re.fullmatch(rf"set gripper to ({_NUM})", s):
        call = ("move_gripper", {"opening": float(m.group(1))})
    elif m := re.fullmatch(rf"move joints to ((?:{_NUM}[ ,]*)+)", s):
        values = [float(v) for v in re.findall(_NUM, m.group(1))]
        call = ("move_joints", {"positions": values})
    elif m := re.fullmatch(rf"move ([a-z0-9_./-]+) to ({_NUM})", s):
        # Joint names keep their case in the model: recover it from the original text.
        orig = re.search(re.escape(m.group(1)), text, re.IGNORECASE)
        name = orig.group(0) if orig else m.group(1)
        call = ("move_joints", {"targets": {name: float(m.group(2))}})
    elif s in ("state", "get state"):
        call = ("get_state", {})
    if call is None:
        forms = "; ".join(f for f, _ in INSTRUCTION_FORMS)
        raise InstructionError(f"unknown instruction {text!r}; known forms: {forms}")
    name, args = call
    if name not in available:
        raise InstructionError(f"instruction {text!r} needs skill {name!r}, which this robot lacks")
    if duration is not None:
        if "duration" not in available[name].params.get("properties", {}):
            raise InstructionError(f"skill {name!r} takes no duration")
        args["duration"] = duration
    return name, args


class BaseDriver:
    """Shared helpers for drivers: identity checks, the instruction grammar, descriptions.

    Subclasses set ``robot_type`` / ``peer_type`` and implement the rest of :class:`Driver`.
    """

    robot_type: str = "robot"
    peer_type: PeerType = "robot"
    clock: Clock = WALL_CLOCK
    """The robot's time base (skills time their motions and waits on it); simulations
    override it with their simulated time."""

    def __init__(self, robot_id: str) -> None:
        self.robot_id = check_robot_id(robot_id)

    def instruction_to_skill(self, text: str) -> tuple[str, dict[str, Any]]:
        return parse_instruction(text, {s.name: s for s in self.skills()})

    def robot_description(self) -> str | None:
        return None

    def skills(self) -> Sequence[Skill]:  # pragma: no cover - overridden
        return ()

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


def now() -> float:
    """Wall-clock UNIX time in s (the contract's timestamps)."""
    return time.time()
