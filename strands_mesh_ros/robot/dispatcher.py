"""Maps the contract's command actions onto a :class:`~strands_mesh_ros.robot.runtime.Robot`.

Transport-free: the mesh hands in a validated :class:`CommandEnvelope` and a ``respond``
callable; every path ends in exactly one response, immediately or when the skill call
finishes. Bad input never raises out of :meth:`Dispatcher.dispatch`.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any, Callable

from ..contract.payloads import (
    ACTIONS,
    CommandEnvelope,
    ContractError,
    Response,
    make_response,
)
from .driver import INSTRUCTION_FORMS, InstructionError
from .lanes import CallOutcome
from .runtime import LockedOut, Robot, SkillError

log = logging.getLogger(__name__)

LOCKOUT_ALLOWED = frozenset({"status", "resume", "emergency_stop", "stop"})
"""Actions accepted while e-stopped (CONTRACT.md: status and an authorised resume; a further
e-stop and a ``stop`` cause no motion, and strands-robots 0.5.3 accepts ``stop`` under lockout
too, so an issuer's ``stop`` is answered rather than refused)."""

ROBOT_ACTIONS = frozenset({"execute", "start", "skill", "state"})
"""Actions that need a robot behind the peer."""


class Dispatcher:
    """Answers commands for one peer.

    Args:
        peer_id: this peer's id (``responder_id`` of every response).
        robot: the robot behind this peer, or None for agents / dashboards.
        peers: returns the ``peers`` action's answer.
        state: returns this robot's contract State as a dict.
        estop: ``estop(issuer, reason) -> result`` runs the receive side of an e-stop.
        resume: ``resume(fields) -> None | reason`` checks authorisation and resumes.
    """

    def __init__(
        self,
        peer_id: str,
        robot: Robot | None,
        *,
        peers: Callable[[], Any],
        state: Callable[[], Any],
        estop: Callable[[str, str], Any],
        resume: Callable[[dict[str, Any], str], str | None],
        peer_type: str,
    ) -> None:
        self.peer_id = peer_id
        self.robot = robot
        self._peers = peers
        self._state = state
        self._estop = estop
        self._resume = resume
        self._peer_type = peer_type

    def dispatch(self, env: CommandEnvelope, respond: Callable[[Response], None]) -> None:
        """Answer ``env`` through ``respond`` exactly once (now or when its call ends)."""
        turn = env.turn_id
        try:
            action = env.action()
            name = action.action
            robot = self.robot
            if robot is not None and robot.locked_out and name not in LOCKOUT_ALLOWED:
                lock = robot.lockout or {}
                respond(make_response(
                    self.peer_id, turn, status="refused",
                    error=f"locked out by e-stop from {lock.get('issuer')} ({lock.get('reason') or 'no reason'}); "
                          f"only status and an authorised resume are accepted"))
                return
            if name in ROBOT_ACTIONS and robot is None:
                respond(make_response(self.peer_id, turn, error=f"peer {self.peer_id} has no robot; "
                                                               f"action {name!r} needs one"))
                return
            handler = getattr(self, f"_do_{name}")
            result = handler(action, env)
            if isinstance(result, Future):
                result.add_done_callback(lambda f: respond(self._outcome(turn, f)))
            elif isinstance(result, Response):
                respond(result)
            else:
                respond(make_response(self.peer_id, turn, result=result))
        except ContractError as exc:
            respond(make_response(self.peer_id, turn, error=str(exc)))
        except LockedOut as exc:
            respond(make_response(self.peer_id, turn, status="refused", error=str(exc)))
        except (SkillError, InstructionError) as exc:
            respond(make_response(self.peer_id, turn, error=str(exc)))
        except Exception as exc:  # the peer must survive any handler bug; the caller is told
            log.exception("%s: action failed", self.peer_id)
            respond(make_response(self.peer_id, turn, error=f"internal error: {type(exc).__name__}: {exc}"))

    def _outcome(self, turn: str, fut: Future[CallOutcome]) -> Response:
        try:
            out = fut.result()
        except Exception as exc:  # the lane itself failed
            return make_response(self.peer_id, turn, error=f"internal error: {exc}")
        if out.status == "done":
            return make_response(self.peer_id, turn, result={"skill": out.skill, "result": out.result})
        return make_response(self.peer_id, turn, status=out.status, error=out.error)

    # -- actions -------------------------------------------------------------------------

    def _do_status(self, action, env) -> dict[str, Any]:
        if self.robot is None:
            return {"peer_id": self.peer_id, "peer_type": self._peer_type, "task": {"status": "idle"}}
        return self.robot.status()

    def _do_features(self, action, env) -> dict[str, Any]:
        out: dict[str, Any] = {"peer_id": self.peer_id, "peer_type": self._peer_type, "actions": sorted(ACTIONS)}
        if self.robot is not None:
            d = self.robot.driver
            out.update(
                robot_type=d.robot_type,
                skills=self.robot.describe_skills(),
                joints=[j.to_dict() for j in d.joints()],
                instruction_forms=[f for f, _ in INSTRUCTION_FORMS],
                # (ext) lets a bridge publish robot_description for robots outside ROS
                robot_description=d.robot_description(),
            )
        return out

    def _do_peers(self, action, env):
        return self._peers()

    def _do_state(self, action, env):
        return self._state()

    def _do_stop(self, action, env) -> dict[str, Any]:
        if self.robot is None:  # nothing to stop, and that is a success (CONTRACT.md, stop accounting)
            return {"ok": True, "stopped": []}
        return {"ok": True, "stopped": [self.peer_id], "preempted": self.robot.stop()}

    def _do_execute(self, action, env) -> Future:
        return self.robot.execute(action.instruction)  # type: ignore[union-attr]

    def _do_start(self, action, env) -> dict[str, Any]:
        self.robot.execute(action.instruction)  # type: ignore[union-attr]
        return {"started": True, "instruction": action.instruction}

    def _do_skill(self, action, env) -> Future:
        return self.robot.call_skill(action.name, action.args)  # type: ignore[union-attr]

    def _do_emergency_stop(self, action, env):
        return self._estop(env.sender_id, action.reason)

    def _do_resume(self, action, env) -> Response:
        reason = self._resume(action.model_dump(), env.sender_id)
        if reason is not None:
            return make_response(self.peer_id, env.turn_id, status="refused", error=f"resume refused: {reason}")
        # {"status": "ok"} is what strands-robots 0.5.3 reads as a successful resume
        return make_response(self.peer_id, env.turn_id, result={"status": "ok", "resumed": True})
