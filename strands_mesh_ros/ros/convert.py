"""Conversions between ROS messages and the mesh contract's payloads (pure functions).

Message classes are imported inside each function, so importing this module needs neither
rclpy nor the generated ``strands_mesh_ros.msg`` (only calling a function does). Every
function that reads a message from outside raises :class:`~strands_mesh_ros.contract.
payloads.ContractError` with a message naming the problem, never a bare pydantic or JSON error.

Units: contract timestamps are UNIX seconds (float); ``builtin_interfaces/Time`` stamps are
ROS time; joint values are SI (REP-103): rad | m, rad/s | m/s, N·m | N.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Mapping

from pydantic import ValidationError

from ..contract.payloads import (
    MAX_COMMAND_BYTES,
    SCHEMA,
    CommandEnvelope,
    ContractError,
    EStop,
    Presence,
    Response,
    validation_summary,
)
from ..drivers.base import Observation


# -- commands ---------------------------------------------------------------------------

def command_to_envelope(msg: Any) -> CommandEnvelope:
    """``strands_mesh_ros/Command`` -> :class:`CommandEnvelope`.

    ``command_json`` is the command object; when it is empty the command is
    ``{"action": msg.action}``; when it lacks ``action``, ``msg.action`` fills it in.
    An empty ``reply_to`` becomes None; a zero ``timestamp`` becomes now.

    Raises:
        ContractError: ``command_json`` over 16 KiB, not JSON, not an object; or a bad
            sender / turn id (the error carries the ids so it can still be answered).
    """
    sender, turn = msg.sender_id, msg.turn_id
    raw = msg.command_json or ""
    size = len(raw.encode())
    if size > MAX_COMMAND_BYTES:
        raise ContractError(f"command of {size} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit", sender, turn)
    if raw.strip():
        try:
            command = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ContractError(f"malformed command_json: {exc}", sender, turn) from None
        if not isinstance(command, dict):
            raise ContractError(f"command_json must be a JSON object, got {type(command).__name__}", sender, turn)
    else:
        command = {}
    if "action" not in command and msg.action:
        command["action"] = msg.action
    try:
        return CommandEnvelope(
            sender_id=sender, turn_id=turn, command=command,
            timestamp=msg.timestamp or time.time(), reply_to=msg.reply_to or None,
        )
    except ValidationError as exc:
        raise ContractError(f"bad command: {validation_summary(exc)}", sender, turn) from None


def envelope_to_command(env: CommandEnvelope, target_id: str = "") -> Any:
    """:class:`CommandEnvelope` -> ``strands_mesh_ros/Command`` (``target_id`` empty = broadcast)."""
    from strands_mesh_ros.msg import Command

    action = env.command.get("action")
    return Command(
        sender_id=env.sender_id, target_id=target_id, turn_id=env.turn_id,
        action=action if isinstance(action, str) else "", command_json=json.dumps(env.command),
        timestamp=float(env.timestamp), reply_to=env.reply_to or "",
    )


# -- responses --------------------------------------------------------------------------

def response_to_msg(resp: Response, sender_id: str) -> Any:
    """Contract :class:`Response` -> ``strands_mesh_ros/Response``.

    ``sender_id`` is the peer that sent the command (not part of the contract Response, but
    the bridge needs it to route the answer). ``result_json`` is ``json.dumps(result)`` for
    ``done`` responses and empty otherwise.

    Raises:
        TypeError: the result is not JSON-serialisable.
    """
    from strands_mesh_ros.msg import Response as ResponseMsg

    return ResponseMsg(
        type=resp.type, status=resp.status, responder_id=resp.responder_id, sender_id=sender_id,
        turn_id=resp.turn_id, result_json=json.dumps(resp.result) if resp.status == "done" else "",
        error=resp.error or "", timestamp=float(resp.timestamp),
    )


def error_response_msg(responder_id: str, sender_id: str, turn_id: str, error: str,
                       status: str = "error") -> Any:
    """An error ``strands_mesh_ros/Response`` built without validation: used to answer a
    command whose ids break the contract (so a contract Response cannot be built)."""
    from strands_mesh_ros.msg import Response as ResponseMsg

    return ResponseMsg(type="error", status=status, responder_id=responder_id, sender_id=sender_id,
                       turn_id=turn_id, result_json="", error=error, timestamp=time.time())


def msg_to_response(msg: Any) -> Response:
    """``strands_mesh_ros/Response`` -> contract :class:`Response`.

    Raises:
        ContractError: ``result_json`` is not JSON, or a field breaks the contract.
    """
    try:
        result = json.loads(msg.result_json) if msg.result_json else None
    except json.JSONDecodeError as exc:
        raise ContractError(f"malformed result_json: {exc}", msg.sender_id, msg.turn_id) from None
    data: dict[str, Any] = {
        "responder_id": msg.responder_id, "turn_id": msg.turn_id, "result": result,
        "error": msg.error or None, "timestamp": msg.timestamp or time.time(),
    }
    if msg.type:
        data["type"] = msg.type
    if msg.status:
        data["status"] = msg.status
    try:
        return Response.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"bad response: {validation_summary(exc)}", msg.sender_id, msg.turn_id) from None


# -- presence ---------------------------------------------------------------------------

def skill_to_msg(skill: Mapping[str, Any]) -> Any:
    """``{name, lane, description, params}`` -> ``strands_mesh_ros/Skill`` (params as JSON text)."""
    from strands_mesh_ros.msg import Skill

    return Skill(name=str(skill.get("name", "")), lane=skill.get("lane") or "",
                 description=skill.get("description") or "", params_json=json.dumps(skill.get("params") or {}))


def presence_to_msg(pr: Presence, age: float = 0.0) -> Any:
    """Contract :class:`Presence` -> ``strands_mesh_ros/Presence``; ``age`` in s (>= 0)."""
    from strands_mesh_ros.msg import Presence as PresenceMsg

    return PresenceMsg(
        peer_id=pr.id, robot_type=pr.robot_type, peer_type=pr.peer_type, hostname=pr.hostname,
        timestamp=float(pr.timestamp), ros_namespace=pr.ros.namespace if pr.ros else "",
        ros_node=pr.ros.node if pr.ros else "", via=pr.via or "", task_status=pr.task_status or "",
        skills=[skill_to_msg(s.model_dump()) for s in pr.skills], age=max(0.0, float(age)),
    )


def msg_to_presence(msg: Any) -> Presence:
    """``strands_mesh_ros/Presence`` -> contract :class:`Presence` (``age`` is dropped).

    Raises:
        ContractError: a bad peer id, or a skill whose ``params_json`` is not a JSON object.
    """
    skills = []
    for s in msg.skills:
        try:
            params = json.loads(s.params_json) if s.params_json else {}
        except json.JSONDecodeError as exc:
            raise ContractError(f"skill {s.name!r} of {msg.peer_id!r}: malformed params_json: {exc}") from None
        if not isinstance(params, dict):
            raise ContractError(f"skill {s.name!r} of {msg.peer_id!r}: params_json must be a JSON object")
        skills.append({"name": s.name, "lane": s.lane or None, "description": s.description, "params": params})
    data: dict[str, Any] = {
        "robot_id": msg.peer_id, "peer_id": msg.peer_id, "robot_type": msg.robot_type or "unknown",
        "peer_type": msg.peer_type or "robot", "hostname": msg.hostname, "timestamp": msg.timestamp,
        "schema": SCHEMA, "skills": skills, "via": msg.via or None, "task_status": msg.task_status or None,
    }
    if msg.ros_namespace:
        data["ros"] = {"namespace": msg.ros_namespace, "node": msg.ros_node}
    try:
        return Presence.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"bad presence: {validation_summary(exc)}") from None


# -- safety -----------------------------------------------------------------------------

def estop_to_msg(env: EStop) -> Any:
    """Contract :class:`EStop` -> ``strands_mesh_ros/EStop`` (``peer_id`` becomes ``issuer_id``).

    Raises:
        ValueError: a negative ``seq`` (the message field is unsigned).
    """
    from strands_mesh_ros.msg import EStop as EStopMsg

    if env.seq < 0:
        raise ValueError(f"e-stop seq {env.seq} is negative; the ROS field is uint64")
    return EStopMsg(issuer_id=env.peer_id, seq=env.seq, t=float(env.t), reason=env.reason)


def msg_to_estop(msg: Any) -> EStop:
    """``strands_mesh_ros/EStop`` -> contract :class:`EStop`.

    Raises:
        ContractError: a bad issuer id.
    """
    try:
        return EStop(peer_id=msg.issuer_id, t=msg.t or time.time(), seq=msg.seq, reason=msg.reason)
    except ValidationError as exc:
        raise ContractError(f"bad e-stop: {validation_summary(exc)}") from None


def estop_ack_msg(responder_id: str, issuer_id: str, seq: int, halted: bool, detail: str = "") -> Any:
    """The ack a robot node publishes on ``/mesh/estop_ack``: a ``strands_mesh_ros/Response``
    with ``turn_id = str(seq)``, ``sender_id`` = the issuer, status ``done`` and
    ``result_json = {"halted": ..., "detail"?: ...}``."""
    from strands_mesh_ros.msg import Response as ResponseMsg

    result: dict[str, Any] = {"halted": bool(halted)}
    if detail:
        result["detail"] = detail
    return ResponseMsg(type="response", status="done", responder_id=responder_id, sender_id=issuer_id,
                       turn_id=str(seq), result_json=json.dumps(result), error="", timestamp=time.time())


# -- joint states -----------------------------------------------------------------------

def observation_to_joint_state(obs: Observation, stamp: Any = None) -> Any:
    """:class:`Observation` -> ``sensor_msgs/JointState``.

    Args:
        obs: positions rad | m, velocities rad/s | m/s, efforts N·m | N.
        stamp: ``builtin_interfaces/Time`` for ``header.stamp``; default the observation's
            wall-clock time ``obs.t``.
    """
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import JointState

    if stamp is None:
        sec = math.floor(obs.t)
        stamp = Time(sec=int(sec), nanosec=int((obs.t - sec) * 1e9))
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(obs.names)
    msg.position = [float(v) for v in obs.position]
    msg.velocity = [float(v) for v in obs.velocity]
    msg.effort = [float(v) for v in obs.effort]
    return msg


def joint_state_entries(msg: Any) -> dict[str, tuple[float, float, float]]:
    """``sensor_msgs/JointState`` -> ``{name: (position, velocity, effort)}``.

    Missing velocity / effort arrays (allowed by JointState: empty when not measured) read as
    0.0; a position array shorter than ``name`` drops the joints without a position.

    Raises:
        ContractError: ``velocity`` or ``effort`` non-empty but of a length other than ``name``'s.
    """
    names = list(msg.name)
    n = len(names)
    pos, vel, eff = list(msg.position), list(msg.velocity), list(msg.effort)
    for label, arr in (("velocity", vel), ("effort", eff)):
        if arr and len(arr) != n:
            raise ContractError(f"JointState has {n} names but {len(arr)} {label} values")
    return {
        name: (float(pos[i]), float(vel[i]) if vel else 0.0, float(eff[i]) if eff else 0.0)
        for i, name in enumerate(names) if i < len(pos)
    }


__all__ = [
    "command_to_envelope", "envelope_to_command", "response_to_msg", "error_response_msg",
    "msg_to_response", "skill_to_msg", "presence_to_msg", "msg_to_presence", "estop_to_msg",
    "msg_to_estop", "estop_ack_msg", "observation_to_joint_state", "joint_state_entries",
]
