"""MuJoCo simulated robots: :class:`MujocoDriver`, a :class:`~.base.Driver` with peer_type "sim".

Each driver owns one ``MjModel``/``MjData`` pair and one physics thread; several drivers
(even of the same model) run side by side in one process without sharing any state.

Threads: the physics thread is the only one that steps. Every access to ``MjData`` from any
thread holds the driver's lock (``state_lock``). Python locks are not fair, so a physics
thread stepping flat out would starve other threads; callers therefore register as waiting
and the physics thread hands the lock over before its next step (bounded by
:data:`HANDOFF_TIMEOUT`). :meth:`MujocoDriver.observe` returns copies, never views.

Pacing: with ``realtime=True`` the physics thread advances ``pace_period`` of simulated time
per tick and sleeps until the wall-clock deadline of the next tick (``pace_period /
real_time_factor`` later: a factor below 1 runs the simulation slower than real time); when it
falls more than :data:`MAX_LAG` behind it drops the backlog (counted in ``overruns``) rather than
spiralling. With ``realtime=False`` it steps as fast as it can.

Simulation time: the driver's :attr:`~MujocoDriver.clock` is its simulated time
(:class:`SimClock`), and every skill times its trajectory, its settle timeout and its waits on
it. A simulation that falls behind the wall clock (a busy machine, a slow-down factor) slows
the robot's skills with it; it never makes them fail on a wall-clock timeout.

Model loading, ``package://`` resolution and automatic actuators live in :mod:`.models`.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Literal, Mapping, Sequence

import mujoco
import numpy as np

from ..robot.driver import (
    INSTRUCTION_FORMS,
    BaseDriver,
    Clock,
    DriverError,
    InstructionError,
    JointInfo,
    Observation,
    Skill,
    SkillContext,
)
from .diffdrive import BASE_INSTRUCTION_FORMS, DiffDrive, drive_skill, parse_base_instruction
from .models import LoadedModel, ctrl_scale, joint_servos, load_model, servo_kind
from .urdf_export import generated_urdf
from .skills import Gripper, JointSkillsMixin

log = logging.getLogger(__name__)

MAX_LAG = 0.1
"""Wall-clock lag (s) beyond which a real-time sim drops its backlog instead of catching up."""

DEFAULT_PACE_PERIOD = 0.002
"""Simulated time (s) advanced per real-time tick (rounded to whole physics steps, at least one)."""

FREE_RUN_BATCH = 8
"""Steps per lock hold with ``realtime=False``: one ``mj_step(m, d, 8)`` call amortises the
Python loop's overhead; a command waits at most one batch (~50 µs of CPU for arm6)."""

HANDOFF_TIMEOUT = 0.001
"""Longest the physics thread waits (s) for a waiting caller to take the lock."""

SIM_STALL_TIMEOUT = 5.0
"""Wall-clock time (s) a wait on the simulated clock tolerates without a single physics step
before it fails with "simulation is not advancing" (a driver not started, a dead physics
thread). A merely slow simulation always advances."""

_STALL_POLL = 0.25
"""How often (wall s) a wait on the simulated clock checks that the simulation advances."""


class SimClock(Clock):
    """A MuJoCo driver's simulated time as a robot :class:`~strands_mesh_ros.robot.driver.Clock`.

    Waits end on the physics step that reaches their time (the physics thread rings them), or
    at once when the skill is cancelled.
    """

    simulated = True

    def __init__(self, driver: "MujocoDriver") -> None:
        self._driver = driver

    def now(self) -> float:
        """Simulated time, s."""
        return self._driver.sim_time

    def sleep_until(self, t: float, ctx: SkillContext) -> None:
        """Return once the simulation reaches ``t`` (s) or ``ctx`` is cancelled.

        Raises:
            DriverError: the simulation made no step for :data:`SIM_STALL_TIMEOUT` wall
                seconds, or the driver was closed.
        """
        d = self._driver
        if self.now() >= t:
            return
        with ctx.waker() as ev:
            d._add_alarm(t, ev)
            last, last_wall = self.now(), time.monotonic()
            while not ev.wait(_STALL_POLL):
                now = self.now()
                if now >= t:
                    return
                if now != last:
                    last, last_wall = now, time.monotonic()
                elif time.monotonic() - last_wall > SIM_STALL_TIMEOUT:
                    raise DriverError(f"{d.robot_id}: simulation is not advancing (is the driver started?)")
            if d._closed and not ctx.cancelled and self.now() < t:
                raise DriverError(f"{d.robot_id}: driver closed")

_SLIDE, _FREE = int(mujoco.mjtJoint.mjJNT_SLIDE), int(mujoco.mjtJoint.mjJNT_FREE)

class MujocoDriver(JointSkillsMixin, BaseDriver):
    """A robot simulated in MuJoCo.

    Args:
        robot_id: the peer id (1-64 of ``[A-Za-z0-9_-]``).
        model: a built-in name (``arm6``, ``diffbot``), an MJCF/URDF path, URDF or MJCF
            text, ``menagerie:<robot>[/<entry>]`` or ``robot_descriptions:<module>``
            (see :mod:`.models`).
        realtime: pace physics to the wall clock (True) or step as fast as possible.
        timestep: physics step in s (default: the model's).
        gripper: ``"auto"`` (position-servoed joints whose names contain ``finger`` or
            ``gripper``; open = upper limit, closed = lower limit), ``None`` for none, a
            :class:`~.skills.Gripper`, or a mapping ``{joints, open, closed}`` (rad or m).
        home: home pose of the arm joints: a mapping name -> rad|m or a sequence in
            :meth:`arm_joints` order; default the model's ``home`` keyframe, else qpos0.
        search_path: directories holding ``<pkg>/`` for ``package://`` URIs (searched before
            ``$STRANDS_MODEL_PATH``).
        state_lock: the lock guarding ``data``; pass one to share it with a viewer or
            recorder that reads ``driver.data`` (hold it briefly).
        auto_actuators: add position servos to a model that has no actuators.
        gravcomp: gravity compensation for added servos (None: fixed-base models only).
        diff_drive: wheels of a differential-drive base, a :class:`~.models.DiffDrive` or a
            mapping of its fields (default: from the model's custom data).
        pace_period: simulated s per real-time tick (:data:`DEFAULT_PACE_PERIOD`).
        real_time_factor: simulated s per wall-clock s with ``realtime=True``, (0, 100]
            (default 1; e.g. 0.1 runs ten times slower than real time, as a busy machine
            might). Skills follow the simulated clock, so they slow down with it.
        robot_type: the peer's kind on the mesh (default: the model's name).

    Raises:
        TypeError, ValueError: a bad argument (named in the message).
        DriverError: the model fails to load (names the source and mujoco's error).

    Attributes:
        model, data: the ``MjModel`` / ``MjData``; hold ``state_lock`` to touch ``data``.
        halted: latched by :meth:`emergency_stop`; commands are ignored until :meth:`resume`.
        overruns: how many times a real-time sim dropped a backlog.
        clock: the simulated time (:class:`SimClock`), the robot's clock for its skills.
    """

    peer_type = "sim"

    def __init__(
        self,
        robot_id: str,
        model: str | os.PathLike[str] = "arm6",
        *,
        realtime: bool = True,
        timestep: float | None = None,
        gripper: Gripper | Mapping[str, Any] | Literal["auto"] | None = "auto",
        home: Mapping[str, float] | Sequence[float] | None = None,
        search_path: Sequence[str] = (),
        state_lock: Any = None,
        auto_actuators: bool = True,
        gravcomp: bool | None = None,
        diff_drive: DiffDrive | Mapping[str, Any] | None = None,
        pace_period: float = DEFAULT_PACE_PERIOD,
        robot_type: str | None = None,
        real_time_factor: float = 1.0,
    ) -> None:
        super().__init__(robot_id)
        if not isinstance(realtime, bool):
            raise TypeError(f"realtime must be a bool, got {realtime!r}")
        if isinstance(pace_period, bool) or not isinstance(pace_period, (int, float)) or not 0 < pace_period <= 0.1:
            raise ValueError(f"pace_period {pace_period!r} s out of range (0, 0.1]")
        if (isinstance(real_time_factor, bool) or not isinstance(real_time_factor, (int, float))
                or not 0 < real_time_factor <= 100):
            raise ValueError(f"real_time_factor {real_time_factor!r} out of range (0, 100]")
        loaded: LoadedModel = load_model(
            model, search_path=search_path, timestep=timestep, auto_actuators=auto_actuators, gravcomp=gravcomp
        )
        self.loaded = loaded
        self.model = loaded.model
        self.data = mujoco.MjData(self.model)
        self.robot_type = robot_type or loaded.name
        self.realtime = realtime
        self.real_time_factor = float(real_time_factor)
        self.clock = SimClock(self)
        self._alarms: list[tuple[float, int, threading.Event]] = []  # (sim time, seq, event), a heap
        self._alarm_lock = threading.Lock()
        self._alarm_seq = 0
        self._steps_per_tick = max(1, round(pace_period / self.model.opt.timestep))
        self._lock = state_lock if state_lock is not None else threading.Lock()
        self._waiters = 0
        self._waiters_lock = threading.Lock()
        self._handoff = threading.Event()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.halted = False
        self._twist_until: float | None = None
        self.overruns = 0
        self.steps = 0
        self._index_joints(loaded)
        if isinstance(diff_drive, Mapping):  # from a YAML / JSON config
            try:
                diff_drive = DiffDrive(**diff_drive)
            except TypeError as exc:
                raise ValueError(f"diff_drive mapping: {exc}") from None
        self._diff_drive = diff_drive or loaded.diff_drive
        if self._diff_drive is not None:
            for n in (self._diff_drive.left, self._diff_drive.right):
                if n not in self._vel:
                    raise ValueError(f"diff_drive wheel {n!r} is not a velocity-actuated joint of {loaded.source}")
        self._gripper: Gripper | None = None
        self._gripper = self._make_gripper(gripper)
        free = [j for j in range(self.model.njnt) if int(self.model.jnt_type[j]) == _FREE]
        self._free_qadr = int(self.model.jnt_qposadr[free[0]]) if free else None
        self._home_key = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, "home")
        self._home = self._make_home(home)
        self._urdf = loaded.urdf or generated_urdf(self.model, loaded.name)
        with self._lock:
            self._reset_locked()

    # -- set-up -------------------------------------------------------------------------

    def _index_joints(self, loaded: LoadedModel) -> None:
        """Find the servoed joints: name -> (actuator id, ctrl scale) for position / velocity servos."""
        m = self.model
        pos, vel = self._pos, self._vel = joint_servos(m)
        infos, qadr, dadr = [], [], []
        for j in range(m.njnt):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j)
            if name not in pos and name not in vel:
                continue
            limited = bool(m.jnt_limited[j])
            kind = "prismatic" if int(m.jnt_type[j]) == _SLIDE else ("revolute" if limited else "continuous")
            a = (pos.get(name) or vel[name])[0]
            efforts = []
            if m.actuator_forcelimited[a]:
                efforts.append(float(np.max(np.abs(m.actuator_forcerange[a]))))
            if m.jnt_actfrclimited[j]:
                efforts.append(float(np.max(np.abs(m.jnt_actfrcrange[j]))))
            infos.append(JointInfo(
                name, kind,
                float(m.jnt_range[j, 0]) if limited else None,
                float(m.jnt_range[j, 1]) if limited else None,
                loaded.max_velocity.get(name),
                min(efforts) if efforts else None,
            ))
            qadr.append(int(m.jnt_qposadr[j]))
            dadr.append(int(m.jnt_dofadr[j]))
        self._joints = tuple(infos)
        self._names = tuple(j.name for j in infos)
        self._by_name = {j.name: j for j in infos}
        self._qadr = np.array(qadr, dtype=int)
        self._dadr = np.array(dadr, dtype=int)
        # Hold targets for every position servo: joint ones exact from qpos, others (tendons,
        # a second servo on a joint) from actuator_length.
        self._pos_acts = np.array([a for a, _ in pos.values()], dtype=int)
        self._pos_acts_qadr = np.array([m.jnt_qposadr[m.actuator_trnid[a, 0]] for a, _ in pos.values()], dtype=int)
        self._pos_acts_scale = np.array([c for _, c in pos.values()])
        others = [a for a in range(m.nu) if servo_kind(m, a) == "position" and a not in set(self._pos_acts)]
        self._other_pos_acts = np.array(others, dtype=int)
        self._other_pos_scale = np.array([ctrl_scale(m, a) for a in others])
        self._zero_acts = np.array([a for a in range(m.nu) if servo_kind(m, a) != "position"], dtype=int)

    def _make_gripper(self, gripper: Gripper | str | None) -> Gripper | None:
        if gripper is None:
            return None
        if isinstance(gripper, Mapping):  # from a YAML / JSON config
            try:
                gripper = Gripper(
                    tuple(gripper["joints"]), tuple(map(float, gripper["open"])), tuple(map(float, gripper["closed"]))
                )
            except KeyError as exc:
                raise ValueError(f"gripper mapping needs keys joints, open, closed; missing {exc}") from None
        if isinstance(gripper, Gripper):
            bad = [n for n in gripper.joints if n not in self._pos]
            if bad:
                raise ValueError(f"gripper joints {bad} are not position-servoed joints of this model: {sorted(self._pos)}")
            if not len(gripper.joints) == len(gripper.open_positions) == len(gripper.closed_positions):
                raise ValueError(f"gripper {gripper!r}: joints, open and closed positions differ in length")
            return gripper
        if gripper != "auto":
            raise ValueError(f"gripper must be 'auto', None or a Gripper, got {gripper!r}")
        fingers = [
            j for j in self._joints
            if j.name in self._pos and j.lower is not None and re.search("finger|gripper", j.name, re.I)
        ]
        if not fingers:
            return None
        return Gripper(
            tuple(j.name for j in fingers),
            tuple(float(j.upper) for j in fingers),  # type: ignore[arg-type]
            tuple(float(j.lower) for j in fingers),  # type: ignore[arg-type]
        )

    def _make_home(self, home: Mapping[str, float] | Sequence[float] | None) -> np.ndarray:
        arm = self.arm_joints()
        if home is None:
            if self._home_key >= 0:
                q = self.model.key_qpos[self._home_key]
            else:
                q = self.model.qpos0
            idx = {j.name: i for i, j in enumerate(self._joints)}
            return np.array([j.clip(float(q[self._qadr[idx[j.name]]])) for j in arm])
        if isinstance(home, Mapping):
            unknown = sorted(set(home) - {j.name for j in arm})
            if unknown:
                raise ValueError(f"home names unknown joints {unknown}; arm joints are {[j.name for j in arm]}")
            base = self._make_home(None)
            return np.array([j.clip(float(home.get(j.name, base[i]))) for i, j in enumerate(arm)])
        values = list(home)
        if len(values) != len(arm):
            raise ValueError(f"home has {len(values)} values, the arm has {len(arm)} joints {[j.name for j in arm]}")
        return np.array([j.clip(float(v)) for j, v in zip(arm, values)])

    # -- Driver: description ------------------------------------------------------------

    def joints(self) -> tuple[JointInfo, ...]:
        """Servoed joints (position and velocity actuated), in model order."""
        return self._joints

    def arm_joints(self) -> list[JointInfo]:
        """Position-servoed joints that are not the gripper's (what ``move_joints`` moves)."""
        skip = set(self._gripper.joints) if self._gripper else set()
        return [j for j in self._joints if j.name in self._pos and j.name not in skip]

    def gripper(self) -> Gripper | None:
        return self._gripper

    def diff_drive(self) -> DiffDrive | None:
        return self._diff_drive

    def home_positions(self) -> np.ndarray:
        return self._home.copy()

    def robot_description(self) -> str:
        """URDF: the one given (for URDF models), else generated from the MJCF's kinematics."""
        return self._urdf

    def describe(self) -> dict[str, Any]:
        return {
            "driver": "mujoco",
            "model": self.loaded.source,
            "timestep": float(self.model.opt.timestep),
            "realtime": self.realtime,
            "real_time_factor": self.real_time_factor,
            "auto_actuated": list(self.loaded.auto_actuated),
            "joints": [j.to_dict() for j in self._joints],
        }

    def skills(self) -> list[Skill]:
        skills = super().skills()
        if not self.arm_joints():
            skills = [s for s in skills if s.name not in ("move_joints", "home")]
        if self._diff_drive is not None:
            skills.append(drive_skill(self._skill_drive))
        return skills

    # -- Driver: lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the physics thread (idempotent).

        Raises:
            DriverError: the driver was closed.
        """
        if self._closed:
            raise DriverError(f"{self.robot_id}: driver is closed")
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.robot_id}-physics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop and join the physics thread (idempotent)."""
        self._closed = True
        self._stop_event.set()
        self._handoff.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._ring_alarms(math.inf)  # nothing will step any more: wake every wait

    def __enter__(self) -> "MujocoDriver":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        lock, stop, advance, realtime = self._lock, self._stop_event, self._advance_locked, self.realtime
        k = self._steps_per_tick if realtime else FREE_RUN_BATCH
        period = k * self.model.opt.timestep / self.real_time_factor  # wall s per tick
        deadline = time.monotonic()
        data, alarms = self.data, self._alarms
        try:
            while not stop.is_set():
                with lock:
                    advance(k)
                self.steps += k
                if alarms and alarms[0][0] <= data.time:  # only this thread steps: no lock needed to read
                    self._ring_alarms(data.time)
                if self._waiters:
                    self._yield_lock()
                if not realtime:
                    continue
                deadline += period
                lag = time.monotonic() - deadline
                if lag < 0:
                    stop.wait(-lag)
                elif lag > MAX_LAG:
                    # Too far behind to catch up: drop the backlog instead of spiralling.
                    self.overruns += 1
                    deadline = time.monotonic()
        except Exception:  # a dead physics thread must be loud, not silent
            log.exception("%s: physics thread failed", self.robot_id)
            raise

    def _advance_locked(self, k: int) -> None:
        """Step ``k`` times (in C: ``mj_step(m, d, k)``), ending a timed twist on its step."""
        m, d = self.model, self.data
        until = self._twist_until
        if until is not None:
            n = math.ceil((until - d.time) / m.opt.timestep - 0.5)  # steps left before it ends
            if n < k:
                if n > 0:
                    mujoco.mj_step(m, d, n)
                self._end_twist_locked()
                k -= max(n, 0)
                if k <= 0:
                    return
        mujoco.mj_step(m, d, k)

    def _add_alarm(self, t: float, ev: threading.Event) -> None:
        """Set ``ev`` once the simulation reaches ``t`` (s): on the physics step that does."""
        with self._alarm_lock:
            if self._closed or self.data.time >= t:
                ev.set()
                return
            self._alarm_seq += 1
            heapq.heappush(self._alarms, (t, self._alarm_seq, ev))

    def _ring_alarms(self, now: float) -> None:
        with self._alarm_lock:
            while self._alarms and self._alarms[0][0] <= now:
                heapq.heappop(self._alarms)[2].set()

    def _yield_lock(self) -> None:
        # Python locks are not fair: let a waiting caller take the lock before the next step.
        self._handoff.wait(HANDOFF_TIMEOUT)
        self._handoff.clear()

    @contextmanager
    def locked(self) -> Iterator[mujoco.MjData]:
        """Hold the state lock (fairly, ahead of the physics thread); yields ``data``."""
        with self._waiters_lock:
            self._waiters += 1
        self._lock.acquire()
        try:
            with self._waiters_lock:
                self._waiters -= 1
            self._handoff.set()
            yield self.data
        finally:
            self._lock.release()

    # -- Driver: state and commands -----------------------------------------------------

    def observe(self) -> Observation:
        """A snapshot (copies) of the servoed joints; effort is the actuator force (N·m | N);
        the base pose of a free-floating base."""
        with self.locked() as d:
            base = self._base_pose_locked(d)
            return Observation(
                t=time.time(),
                names=self._names,
                position=d.qpos[self._qadr],
                velocity=d.qvel[self._dadr],
                effort=d.qfrc_actuator[self._dadr],
                sim_time=float(d.time),
                base_pose=base,
            )

    @property
    def sim_time(self) -> float:
        """Simulated time, s."""
        return float(self.data.time)

    def base_pose(self) -> tuple[float, float, float, float] | None:
        """(x, y, z, yaw) of the free-floating base in the world (m, rad), or None if fixed."""
        with self.locked() as d:
            return self._base_pose_locked(d)

    def _base_pose_locked(self, d: Any) -> tuple[float, float, float, float] | None:
        if self._free_qadr is None:
            return None
        a = self._free_qadr
        x, y, z, qw, qx, qy, qz = d.qpos[a:a + 7]
        return float(x), float(y), float(z), math.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))

    def command_positions(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Set position targets (rad or m, clipped to the joint limits) of position-servoed joints.

        Ignored while :attr:`halted`.

        Raises:
            ValueError: a name that is not a position-servoed joint, or lengths differ.
        """
        self._set_ctrl(self._pos, "position", names, positions, clip=True)

    def command_velocities(self, names: Sequence[str], velocities: Sequence[float]) -> None:
        """Set velocity targets (rad/s or m/s) of velocity-servoed joints (e.g. wheels).

        Ignored while :attr:`halted`.

        Raises:
            ValueError: a name that is not a velocity-servoed joint, or lengths differ.
        """
        self._set_ctrl(self._vel, "velocity", names, velocities, clip=False)

    def _set_ctrl(self, table: dict[str, tuple[int, float]], kind: str, names: Sequence[str],
                  values: Sequence[float], clip: bool) -> None:
        if len(names) != len(values):
            raise ValueError(f"{len(names)} names but {len(values)} {kind} values")
        targets = []
        for n, v in zip(names, values):
            if n not in table:
                raise ValueError(f"{n!r} is not a {kind}-servoed joint; those are {sorted(table)}")
            a, scale = table[n]
            targets.append((a, scale * (self._by_name[n].clip(float(v)) if clip else float(v))))
        with self.locked() as d:
            if self.halted:
                return
            for a, c in targets:
                d.ctrl[a] = c

    def command_twist(self, linear: float, angular: float, duration: float | None = None) -> float | None:
        """Drive a differential base at ``linear`` m/s (+x forward) and ``angular`` rad/s (+z).

        With ``duration`` (simulated s) the physics thread itself stops the wheels when it
        is over, to the step, however fast the sim runs. Ignored while :attr:`halted`.

        Returns:
            The simulated time (s) at which the wheels will stop, or None without ``duration``.

        Raises:
            DriverError: the robot has no differential drive.
        """
        dd = self._diff_drive
        if dd is None:
            raise DriverError(f"{self.robot_id} has no differential drive")
        left, right = dd.wheel_speeds(linear, angular)
        (la, ls), (ra, rs) = self._vel[dd.left], self._vel[dd.right]
        with self.locked() as d:
            if self.halted:
                return None
            d.ctrl[la], d.ctrl[ra] = ls * left, rs * right
            self._twist_until = None if duration is None else float(d.time) + duration
            return self._twist_until

    def _end_twist_locked(self) -> None:
        dd = self._diff_drive
        if dd is not None:
            self.data.ctrl[self._vel[dd.left][0]] = 0.0
            self.data.ctrl[self._vel[dd.right][0]] = 0.0
        self._twist_until = None

    def _hold_locked(self) -> None:
        """ctrl := hold the current state (position servos at their position, others 0)."""
        d = self.data
        if len(self._pos_acts):
            d.ctrl[self._pos_acts] = self._pos_acts_scale * d.qpos[self._pos_acts_qadr]
        if len(self._other_pos_acts):
            d.ctrl[self._other_pos_acts] = self._other_pos_scale * d.actuator_length[self._other_pos_acts]
        if len(self._zero_acts):
            d.ctrl[self._zero_acts] = 0.0
        self._twist_until = None

    def stop(self) -> None:
        """Controlled stop: position servos hold where they are (the servo brakes), wheels stop."""
        with self.locked():
            self._hold_locked()

    def emergency_stop(self) -> None:
        """Immediate stop: hold the current position with zero velocity; latch :attr:`halted`.

        Sets every position servo's target to its current position, every other actuator's
        control to 0, and all of ``qvel`` to 0, in one critical section (microseconds).
        """
        with self.locked() as d:
            self.halted = True
            self._hold_locked()
            d.qvel[:] = 0.0
            d.qacc_warmstart[:] = 0.0

    def resume(self) -> None:
        """Clear the halt latched by :meth:`emergency_stop` (the robot stays where it is)."""
        with self.locked():
            self.halted = False

    def reset(self) -> None:
        """Back to the home pose at rest (keyframe ``home`` if any, and the ``home`` argument);
        clears the halt."""
        with self.locked():
            self._reset_locked()

    def _reset_locked(self) -> None:
        m, d = self.model, self.data
        if self._home_key >= 0:
            mujoco.mj_resetDataKeyframe(m, d, self._home_key)
        else:
            mujoco.mj_resetData(m, d)
        for j, q in zip(self.arm_joints(), self._home):
            d.qpos[self._qadr[self._names.index(j.name)]] = q
        mujoco.mj_forward(m, d)
        self._hold_locked()
        self.halted = False

    # -- base skill and grammar ---------------------------------------------------------

    def _skill_get_state(self, ctx: SkillContext) -> dict[str, Any]:
        state = super()._skill_get_state(ctx)
        pose = self.base_pose()
        if pose is not None:
            state["base_pose"] = dict(zip(("x", "y", "z", "yaw"), pose))
        return state

    def _skill_drive(
        self, ctx: SkillContext, linear: float = 0.0, angular: float = 0.0, duration: float = 1.0
    ) -> dict[str, Any]:
        """Drive at a twist for ``duration`` simulated seconds, then stop the wheels."""
        start = self.base_pose()
        t_end = self.command_twist(linear, angular, duration)
        if t_end is None:
            raise DriverError(f"{self.robot_id} is halted (e-stop); resume first")
        try:
            ctx.wait_until(t_end, self.clock)  # the physics thread stops the wheels on that very step
        finally:
            self.command_twist(0.0, 0.0)  # also when preempted
        end = self.base_pose()
        if start is None or end is None:  # wheels on a fixed chassis: nothing to report
            return {"linear": linear, "angular": angular, "duration": duration}
        return {
            "distance": math.hypot(end[0] - start[0], end[1] - start[1]),
            "rotation": math.remainder(end[3] - start[3], math.tau),
            "pose": dict(zip(("x", "y", "z", "yaw"), end)),
        }

    def instruction_to_skill(self, text: str) -> tuple[str, dict[str, Any]]:
        """The base grammar (:data:`~.base.INSTRUCTION_FORMS`) plus, for a differential
        base, :data:`BASE_INSTRUCTION_FORMS`.

        Raises:
            InstructionError: the text matches no form this robot can run.
        """
        if self._diff_drive is not None and isinstance(text, str):
            call = parse_base_instruction(text)
            if call is not None:
                return call
        try:
            return super().instruction_to_skill(text)
        except InstructionError as exc:
            if self._diff_drive is None or "known forms" not in str(exc):
                raise
            forms = "; ".join(f for f, _ in (*INSTRUCTION_FORMS, *BASE_INSTRUCTION_FORMS))
            raise InstructionError(f"unknown instruction {text!r}; known forms: {forms}") from None
