"""One robot at run time: a driver plus lanes, task status and the e-stop lockout.

:class:`Robot` is what the mesh dispatcher, the Fleet API and the ROS robot node talk to.
It validates skill arguments against each skill's JSON Schema (``jsonschema``), runs calls
on lanes (:mod:`.lanes`), tracks the current task, and latches a lockout on e-stop: while
locked out, only ``status`` and an authorised ``resume`` are accepted.

Pure Python: imports neither zenoh nor rclpy.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from concurrent.futures import Future
from typing import Any

from .driver import Driver, InstructionError, Skill
from .lanes import CallOutcome, LaneScheduler


class SkillError(ValueError):
    """Unknown skill or arguments that fail the skill's JSON Schema."""


class LockedOut(RuntimeError):
    """The robot is e-stopped; it takes no motion until an authorised resume."""


class Robot:
    """A driver at run time.

    Args:
        driver: any :class:`~strands_mesh_ros.robot.driver.Driver`.

    Attributes:
        robot_id: the driver's id, used for every key, topic and log line of this robot.
    """

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.robot_id = driver.robot_id
        self.lanes = LaneScheduler(driver.robot_id, clock=getattr(driver, "clock", None))
        self._lock = threading.Lock()
        self._lockout: dict[str, Any] | None = None
        self._releases = 0  # release_halt() resumes, counted under _lock
        self.halts = 0  # halt_now() calls: a release never follows a halt newer than its own
        self._task: dict[str, Any] = {"status": "idle", "instruction": None}
        self._skills: dict[str, Skill] = {}
        self._validators: dict[str, Any] = {}  # skill name -> jsonschema validator
        self.refresh_skills()

    # -- identity and skills ------------------------------------------------------------

    def refresh_skills(self) -> None:
        """Re-read the driver's skills (after a driver restart or reconfiguration)."""
        skills = {s.name: s for s in self.driver.skills()}
        validators = {}
        for name, s in skills.items():
            cls = _jsonschema().validators.validator_for(s.params)
            cls.check_schema(s.params)
            validators[name] = cls(s.params)
        with self._lock:
            self._skills, self._validators = skills, validators

    @property
    def skills(self) -> dict[str, Skill]:
        return dict(self._skills)

    def describe_skills(self) -> list[dict[str, Any]]:
        """Skills as advertised in presence: ``[{name, lane, description, params}]``."""
        return [s.describe() for s in self._skills.values()]

    # -- status -------------------------------------------------------------------------

    @property
    def locked_out(self) -> bool:
        return self._lockout is not None

    @property
    def lockout(self) -> dict[str, Any] | None:
        """Why the robot is locked out (``{issuer, reason, t}``), or None."""
        return dict(self._lockout) if self._lockout else None

    @property
    def task(self) -> dict[str, Any]:
        """``{status: idle|running|done|error|stopped, instruction}``."""
        with self._lock:
            return dict(self._task)

    def status(self) -> dict[str, Any]:
        """The ``status`` action's answer."""
        return {
            "robot_id": self.robot_id,
            "robot_type": self.driver.robot_type,
            "task": self.task,
            "lanes": self.lanes.running(),
            "locked_out": self.locked_out,
            "lockout": self.lockout,
        }

    # -- calls --------------------------------------------------------------------------

    @staticmethod
    def _non_finite(args: dict[str, Any]) -> tuple[str, str] | None:
        """The first non-finite number in ``args`` as ``(path, spelling)``, else ``None``.

        ``path`` joins dict keys and list indices with ``/`` (``positions/2``,
        ``targets/joint3``); ``spelling`` is the JSON literal Python's ``json`` reads
        (``NaN``, ``Infinity``, ``-Infinity``). Walks only dicts, lists and tuples, without
        recursion (no depth limit) and visiting each container once (no cycles).
        """
        stack: list[tuple[str, Any]] = [("", args)]
        seen: set[int] = set()
        while stack:
            path, value = stack.pop()
            if isinstance(value, dict):
                items: Any = value.items()
            elif isinstance(value, (list, tuple)):
                items = enumerate(value)
            else:
                continue
            if id(value) in seen:
                continue
            seen.add(id(value))
            children = []
            for key, v in items:
                where = f"{path}/{key}" if path else str(key)
                if isinstance(v, (dict, list, tuple)):
                    children.append((where, v))
                elif isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) and not math.isfinite(v):
                    return where, ("NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity")
            stack.extend(reversed(children))  # a container's own numbers first, then its children in order
        return None

    def call_skill(self, name: str, args: dict[str, Any] | None = None, *, instruction: str | None = None) -> Future[CallOutcome]:
        """Validate and queue one skill call on its lane.

        Every number anywhere in ``args`` must be finite: NaN and ±Infinity (which Python's
        ``json`` decodes from the literals ``NaN`` / ``Infinity``) are refused before the JSON
        Schema is checked, with the argument's path in the message, e.g. ``bad args for skill
        'move_joints' at positions/2: NaN is not a finite number``.

        Raises:
            LockedOut: the robot is e-stopped.
            SkillError: unknown skill, a non-finite number in ``args``, or ``args`` fail its
                JSON Schema.
        """
        if self._lockout is not None:
            raise LockedOut(f"robot {self.robot_id} is locked out by e-stop ({self._lockout['reason']}); resume first")
        args = {} if args is None else args
        skill = self._skills.get(name)
        if skill is None:
            raise SkillError(f"unknown skill {name!r}; {self.robot_id} offers {sorted(self._skills)}")
        if not isinstance(args, dict):
            raise SkillError(f"skill args must be a JSON object, got {type(args).__name__}")
        bad = self._non_finite(args)
        if bad is not None:
            raise SkillError(f"bad args for skill {name!r} at {bad[0]}: {bad[1]} is not a finite number")
        err = _jsonschema().exceptions.best_match(self._validators[name].iter_errors(args))
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "args"
            raise SkillError(f"bad args for skill {name!r} at {where}: {err.message}")
        fut = self.lanes.submit(skill, args)
        if instruction is not None:
            with self._lock:
                self._task = {"status": "running", "instruction": instruction}
            fut.add_done_callback(lambda f: self._task_done(instruction, f))
        return fut

    def _task_done(self, instruction: str, fut: Future[CallOutcome]) -> None:
        outcome = fut.result()
        status = {"done": "done", "error": "error", "refused": "stopped"}[outcome.status]
        with self._lock:
            if self._task.get("instruction") == instruction:
                self._task = {"status": status, "instruction": instruction}

    def execute(self, instruction: str) -> Future[CallOutcome]:
        """Parse ``instruction`` with the driver's grammar and queue the skill call.

        Raises:
            LockedOut, SkillError, InstructionError.
        """
        if self._lockout is not None:
            raise LockedOut(f"robot {self.robot_id} is locked out by e-stop; resume first")
        name, args = self.driver.instruction_to_skill(instruction)
        return self.call_skill(name, args, instruction=instruction)

    # -- stops --------------------------------------------------------------------------

    def stop(self) -> int:
        """Controlled stop: preempt running and queued calls, then decelerate and hold.

        Returns how many calls were preempted.
        """
        # hold now, and again once the preempted calls have ended: one that had just checked
        # for preemption may still write its next target after the first hold
        n = self.lanes.preempt_all("stop command", then=self.driver.stop)
        if n:  # with nothing running, preempt_all has held already
            self.driver.stop()
        return n

    def emergency_stop(self, issuer: str, reason: str = "", epoch: str | None = None) -> int:
        """Halt actuators first, then latch the lockout and preempt every call.

        Args:
            issuer, reason: who stopped the robot, and why (shown in ``status``).
            epoch: the e-stop's ``estop_id``, kept as the lockout's epoch (what a signed
                strands-robots resume names).

        Returns how many calls were preempted. Idempotent: a later e-stop keeps the first
        lockout.
        """
        releases = self._releases
        self.halt_now()  # actuators first: nothing may come before this
        with self._lock:
            if self._lockout is None:
                self._lockout = {"issuer": issuer, "reason": reason, "t": time.time(), "epoch": epoch}
            if self._releases != releases:  # a release_halt() resumed the driver after our halt
                self.driver.emergency_stop()
        return self.lanes.preempt_all(f"e-stop by {issuer}: {reason}".rstrip(": "))

    def halt_now(self) -> None:
        """Halt the actuators (``driver.emergency_stop()``), nothing else; counted in
        :attr:`halts`."""
        self.halts += 1
        self.driver.emergency_stop()

    def release_halt(self, since: int) -> None:
        """Hold position and clear a driver-level halt that latched no lockout (an e-stop the
        guard proved a replay). The halt stays with a lockout in force, or when the actuators
        were halted again after :attr:`halts` read ``since`` (a newer e-stop decides)."""
        self.driver.stop()
        with self._lock:
            if self._lockout is None and self.halts == since:
                self.driver.resume()
                self._releases += 1

    def resume(self) -> bool:
        """Clear the lockout (the caller has checked authorisation). Returns whether it was set."""
        with self._lock:
            was = self._lockout is not None
            self._lockout = None
        self.driver.resume()
        return was

    def resume_epoch(self, epoch: str) -> bool:
        """Clear the lockout only if its epoch is ``epoch`` (checked and cleared under the lock
        an e-stop latches under, so an assertion for one lockout never clears the next).
        Returns whether it was cleared."""
        with self._lock:
            if self._lockout is None or self._lockout.get("epoch") != epoch:
                return False
            self._lockout = None
        self.driver.resume()
        return True

    def close(self) -> None:
        self.lanes.close()
        self.driver.close()


__all__ = ["Robot", "SkillError", "LockedOut", "InstructionError", "CallOutcome"]


def _jsonschema() -> Any:
    """``jsonschema``, imported at first use: a robot-less peer (a CLI call) imports this module
    for its types only and need not pay for it (bench/bench_cli.py)."""
    import jsonschema
    import jsonschema.exceptions
    import jsonschema.validators

    return jsonschema
