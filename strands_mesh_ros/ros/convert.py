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
    Presence,
    Response,
    loads,
    validation_summary,
)
from ..robot.driver import Observation


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
            command = loads(raw, MAX_COMMAND_BYTES, "command_json")
        except ContractError as exc:
            raise ContractError(str(exc), sender, turn) from None
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


def command_msg_payload(msg: Any) -> bytes:
    """The mesh envelope bytes of a ``strands_mesh_ros/Command`` typed by a ROS caller (no
    ``envelope``): ``command_json`` is spliced in as it is, unparsed, so the robot's peer core
    reads it with the one decoder, limits and error answers of every other command. An empty
    ``command_json`` is ``{"action": msg.action}``; a zero ``timestamp`` is now."""
    command = (msg.command_json or "").strip() or json.dumps({"action": msg.action})
    head = json.dumps({"sender_id": msg.sender_id, "turn_id": msg.turn_id, "timestamp": msg.timestamp or time.time(),
                       **({"reply_to": msg.reply_to} if msg.reply_to else {})})
    return (head[:-1] + ', "command": ' + command + "}").encode()


# -- responses --------------------------------------------------------------------------

def answer_to_msg(responder_id: str, answer: Any, relay_seq: int, turn_id: str) -> Any:
    """A peer core's :class:`~strands_mesh_ros.robot.peer_core.Answer` as a
    ``strands_mesh_ros/Response``: the bytes and key for the bridge to put on the mesh, plus
    the typed fields ROS callers read (from the contract response, or the ack's own JSON).
    ``turn_id`` names the command when there is no answer (a receipt for the bridge)."""
    from strands_mesh_ros.msg import Response as ResponseMsg

    resp = answer.response
    if resp is not None:
        try:
            msg = response_to_msg(resp, answer.sender or "")
        except (TypeError, ValueError) as exc:  # unreachable: the core answered JSON; kept for ROS callers
            msg = error_response_msg(responder_id, answer.sender or "", resp.turn_id, f"result not JSON: {exc}")
    else:
        msg = ResponseMsg(type="response", status="done", responder_id=responder_id, sender_id=answer.sender or "",
                          turn_id=turn_id, result_json=answer.data.decode() if answer.data else "", error="",
                          timestamp=time.time())
    msg.key = answer.key or ""
    msg.payload = answer.data or b""
    msg.relay_seq = relay_seq
    return msg


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
        result = loads(msg.result_json, what="result_json") if msg.result_json else None
    except ContractError as exc:
        raise ContractError(str(exc), msg.sender_id, msg.turn_id) from None
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


def presence_to_msg(pr: Presence, age: float = 0.0, prefix: str = "") -> Any:
    """Contract :class:`Presence` -> ``strands_mesh_ros/Presence``; ``age`` in s (>= 0),
    ``prefix`` the fleet's key prefix (robot nodes set it; the bridge relays its own fleet)."""
    from strands_mesh_ros.msg import Presence as PresenceMsg

    return PresenceMsg(
        peer_id=pr.id, robot_type=pr.robot_type, peer_type=pr.peer_type, hostname=pr.hostname,
        timestamp=float(pr.timestamp), ros_namespace=pr.ros.namespace if pr.ros else "",
        ros_node=pr.ros.node if pr.ros else "", via=pr.via or "", task_status=pr.task_status or "",
        skills=[skill_to_msg(s.model_dump()) for s in pr.skills], age=max(0.0, float(age)), prefix=prefix,
        lockout_state={True: "locked_out", False: "ok", None: ""}[pr.locked_out],
        lockout_json=json.dumps(pr.lockout) if pr.lockout else "",
    )


def msg_to_presence(msg: Any) -> Presence:
    """``strands_mesh_ros/Presence`` -> contract :class:`Presence` (``age`` is dropped).

    Raises:
        ContractError: a bad peer id, or a skill whose ``params_json`` (or the ``lockout_json``)
            is not a JSON object.
    """
    skills = []
    for s in msg.skills:
        try:
            params = loads(s.params_json, what="params_json") if s.params_json else {}
        except ContractError as exc:
            raise ContractError(f"skill {s.name!r} of {msg.peer_id!r}: {exc}") from None
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
    if msg.lockout_state in ("locked_out", "ok"):
        data["locked_out"] = msg.lockout_state == "locked_out"
    if msg.lockout_json:
        try:
            lockout = loads(msg.lockout_json, what="lockout_json")
        except ContractError as exc:
            raise ContractError(f"lockout of {msg.peer_id!r}: {exc}") from None
        if not isinstance(lockout, dict):
            raise ContractError(f"lockout_json of {msg.peer_id!r} must be a JSON object")
        data["lockout"] = lockout
    try:
        return Presence.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"bad presence: {validation_summary(exc)}") from None


# -- safety -----------------------------------------------------------------------------

def estop_msg_payload(msg: Any) -> bytes:
    """The e-stop envelope bytes of a ``strands_mesh_ros/EStop`` issued in ROS (no
    ``envelope``), for the peer core to read as any other: an issuer id that breaks the
    contract makes it an unreadable e-stop, which still halts and latches. A zero ``t`` is now."""
    return json.dumps({"peer_id": msg.issuer_id, "t": msg.t or time.time(), "seq": msg.seq,
                       "reason": msg.reason}).encode()


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


def base_pose_to_odometry(pose: tuple[float, float, float, float], stamp: Any, robot_id: str) -> Any:
    """``(x, y, z, yaw)`` (m, rad) of a mobile base -> ``nav_msgs/Odometry`` with frames
    ``<robot_id>/odom`` -> ``<robot_id>/base_link`` (REP-105, prefixed like the robot's TF)."""
    from nav_msgs.msg import Odometry

    x, y, z, yaw = (float(v) for v in pose)
    msg = Odometry()
    msg.header.stamp = stamp
    msg.header.frame_id = f"{robot_id}/odom"
    msg.child_frame_id = f"{robot_id}/base_link"
    p = msg.pose.pose
    p.position.x, p.position.y, p.position.z = x, y, z
    p.orientation.z, p.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return msg


def odometry_to_base_pose(msg: Any) -> dict[str, float]:
    """``nav_msgs/Odometry`` -> the contract state's ``base_pose``: ``{x, y, z}`` m, ``yaw`` rad.

    Raises:
        ContractError: a non-finite position or orientation.
    """
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    values = (p.x, p.y, p.z, q.x, q.y, q.z, q.w)
    if not all(math.isfinite(v) for v in values):
        raise ContractError(f"odometry with a non-finite pose: {values}")
    yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
    return {"x": float(p.x), "y": float(p.y), "z": float(p.z), "yaw": yaw}


# -- diagnostics --------------------------------------------------------------------------

def diagnostics_to_msg(statuses: list[Any], stamp: Any) -> Any:
    """:class:`~strands_mesh_ros.robot.diagnostics.Diagnostic` list -> ``diagnostic_msgs/
    DiagnosticArray`` stamped ``stamp`` (a ``builtin_interfaces/Time``)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from std_msgs.msg import Header

    return DiagnosticArray(header=Header(stamp=stamp), status=[
        DiagnosticStatus(level=bytes([d.level]), name=d.name, message=d.message, hardware_id=d.hardware_id,
                         values=[KeyValue(key=k, value=v) for k, v in d.values]) for d in statuses])


__all__ = [
    "command_to_envelope", "command_msg_payload", "answer_to_msg", "response_to_msg", "error_response_msg",
    "msg_to_response", "skill_to_msg", "presence_to_msg", "msg_to_presence", "estop_msg_payload",
    "observation_to_joint_state", "joint_state_entries", "base_pose_to_odometry", "odometry_to_base_pose",
    "diagnostics_to_msg",
]
