"""Payload schemas of the strands mesh (CONTRACT.md "Payloads"), validated with pydantic v2.

Every model keeps unknown fields (``extra="allow"``) so that peers with newer extensions,
and real strands-robots peers, interoperate. :func:`decode` turns raw bytes into a model or
raises :class:`ContractError` with a message that names the problem.

Pure Python; no zenoh import.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import to_json

from .keys import PEER_ID_PATTERN, RESERVED_PEER_IDS, TURN_ID_PATTERN

SCHEMA = "strands-mesh/1"

MAX_COMMAND_BYTES = 16 * 1024
"""Largest command envelope accepted (CONTRACT.md: over 16 KiB is refused)."""

MAX_PAYLOAD_BYTES = 1024 * 1024
"""Largest presence/state/response/safety payload parsed at all; bigger ones are refused
unread, so a hostile peer cannot make us parse megabytes of JSON."""

MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON arrays and objects accepted in any payload, on any key or topic.
The contract's payloads nest at most ~6 deep (a skill's JSON Schema in presence); Python's own
``json`` fails near depth 1,000 with a RecursionError, which must never reach a callback."""

PRESENCE_MAX_AGE = 60.0
"""Presence older than this (s) is dropped on receipt (CONTRACT.md)."""

PRESENCE_MAX_FUTURE = 5.0
"""Presence stamped more than this (s) in the future is dropped on receipt (CONTRACT.md)."""

PeerId = Annotated[str, StringConstraints(pattern=PEER_ID_PATTERN)]
TurnId = Annotated[str, StringConstraints(pattern=TURN_ID_PATTERN)]
PeerType = Literal["robot", "sim", "bridge", "agent", "dashboard"]


class ContractError(ValueError):
    """A payload breaks the contract. ``str(exc)`` names the problem for an error response.

    Attributes:
        sender_id, turn_id: recovered from the payload when possible, so the error can
            still be answered to its sender.
    """

    def __init__(self, message: str, sender_id: str | None = None, turn_id: str | None = None):
        super().__init__(message)
        self.sender_id = sender_id
        self.turn_id = turn_id


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class SkillSpec(_Model):
    name: str
    lane: str | None = None
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class RosInfo(_Model):
    namespace: str
    node: str = ""


PEER_KINDS = ("robot", "sim", "bridge", "agent", "dashboard")
"""The contract's peer types."""


class Presence(_Model):
    """Presence heartbeat, 2 Hz, on ``P/{peer_id}/presence``.

    ``robot_id`` is what strands-robots reads; ``peer_id`` is the seed's name. Either may be
    missing on receipt; both are sent.

    **(ext)** ``locked_out`` (robots: whether an e-stop lockout is latched now; None = the peer
    does not say, e.g. a strands-robots peer) and ``lockout`` (while latched: ``{issuer,
    reason, t, epoch}``, the ``status`` answer's ``lockout``), so that a peer list shows
    e-stopped robots without asking each one.

    On the wire, ``robot_type`` carries the peer *kind* (``robot``, ``sim``, ``agent``, ...),
    which is what strands-robots 0.5.3 shows as the peer's type, and **(ext)** ``model`` carries
    the robot's model (``arm6``, ``panda``). In this object ``robot_type`` is the model, as
    before: :meth:`to_json` and the validator translate. A presence without ``model`` is
    read as sent (``robot_type`` is the model), and one without ``peer_type`` whose
    ``robot_type`` is a kind (theirs) takes its ``peer_type`` from it.
    """

    robot_id: PeerId | None = None
    peer_id: PeerId | None = None
    robot_type: str = "unknown"
    peer_type: str = "robot"
    hostname: str = ""
    timestamp: float
    schema_: str | None = Field(default=None, alias="schema")
    skills: list[SkillSpec] = Field(default_factory=list)
    ros: RosInfo | None = None
    via: PeerId | None = None
    task_status: str | None = None
    locked_out: bool | None = None
    lockout: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("model"), str):  # ours: robot_type is the kind, model the model
            data = {**data, "peer_type": data.get("peer_type", data.get("robot_type")), "robot_type": data["model"]}
            data.pop("model")
        elif "peer_type" not in data and data.get("robot_type") in PEER_KINDS:  # strands-robots 0.5.3
            data = {**data, "peer_type": data["robot_type"]}
        return data

    def to_json(self) -> bytes:
        """The wire form: ``robot_type`` = the peer kind, ``model`` = the model (see above)."""
        d = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        d["model"], d["robot_type"] = d["robot_type"], d["peer_type"]
        return json.dumps(d, separators=(",", ":")).encode()

    @model_validator(mode="after")
    def _one_id(self) -> "Presence":
        if self.robot_id is None and self.peer_id is None:
            raise ValueError("presence needs robot_id or peer_id")
        if self.robot_id and self.peer_id and self.robot_id != self.peer_id:
            raise ValueError(f"robot_id {self.robot_id!r} and peer_id {self.peer_id!r} differ")
        self.robot_id = self.peer_id = self.robot_id or self.peer_id
        if self.robot_id in RESERVED_PEER_IDS:
            raise ValueError(f"peer id {self.robot_id!r} is reserved")
        return self

    @property
    def id(self) -> str:
        return self.peer_id  # type: ignore[return-value]

    @property
    def estop_state(self) -> str:
        """``LOCKED OUT`` (an e-stop lockout is latched), ``ok`` (a robot that says it is not),
        ``–`` (no actuators: agents, bridges, dashboards) or ``?`` (a robot that does not say:
        a strands-robots peer, or an older one of ours)."""
        if self.locked_out:
            return "LOCKED OUT"
        if self.locked_out is False:
            return "ok"
        return "?" if self.peer_type in ("robot", "sim") else "–"

    def is_fresh(self, now: float | None = None) -> bool:
        """Within the contract's window: at most 60 s old and at most 5 s in the future."""
        now = time.time() if now is None else now
        return -PRESENCE_MAX_FUTURE <= now - self.timestamp <= PRESENCE_MAX_AGE


# -- commands ----------------------------------------------------------------------------

class _Action(_Model):
    action: str


class _NoArgs(_Action):
    pass


class _Instruction(_Action):
    instruction: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class _SkillCall(_Action):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    args: dict[str, Any] = Field(default_factory=dict)


class _EStopAction(_Action):
    reason: str = ""


class _ResumeAction(_Action):
    """``resume`` over the command path carries the same signed fields as a Resume envelope."""

    t: float = 0.0
    seq: int = -1
    operator: str = ""
    mac: str = ""


ACTIONS: dict[str, type[_Action]] = {
    "status": _NoArgs,
    "stop": _NoArgs,
    "features": _NoArgs,
    "state": _NoArgs,
    "peers": _NoArgs,
    "execute": _Instruction,
    "start": _Instruction,
    "skill": _SkillCall,
    "emergency_stop": _EStopAction,
    "resume": _ResumeAction,
}
"""Actions every robot answers, and the fields each needs (CONTRACT.md; ``skill`` is ext)."""


class CommandEnvelope(_Model):
    """``{sender_id, turn_id, command: {action, ...}, timestamp, reply_to?}`` on ``P/{peer}/cmd``."""

    sender_id: PeerId
    turn_id: TurnId
    command: dict[str, Any]
    timestamp: float = Field(default_factory=time.time)
    reply_to: str | None = None

    def action(self) -> _Action:
        """The command validated against its action's fields.

        Raises:
            ContractError: missing or unknown action, or a bad field.
        """
        action = self.command.get("action")
        if not isinstance(action, str):
            raise ContractError("command has no 'action' string", self.sender_id, self.turn_id)
        model = ACTIONS.get(action)
        if model is None:
            raise ContractError(
                f"unknown action {action!r}; known actions: {', '.join(sorted(ACTIONS))}",
                self.sender_id,
                self.turn_id,
            )
        try:
            return model.model_validate(self.command)
        except ValidationError as exc:
            raise ContractError(f"bad {action!r} command: {validation_summary(exc)}", self.sender_id, self.turn_id) from None


_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # json.dumps builds one per call


def command_json(sender_id: str, turn_id: str, command: dict[str, Any], reply_to: str | None = None) -> bytes:
    """The wire form of a :class:`CommandEnvelope` this peer sends (compact JSON bytes).

    The sender builds the bytes straight from its own (already checked) ids, without a model
    round trip: that cost ~15 us per command (bench/bench_mesh.py rtt); receivers validate
    with :func:`decode` as before.

    Raises:
        ValueError: ``command`` holds something JSON cannot carry (a NaN or infinity, a set,
            an object); the message names it.
    """
    env: dict[str, Any] = {"sender_id": sender_id, "turn_id": turn_id, "command": command, "timestamp": time.time()}
    if reply_to is not None:
        env["reply_to"] = reply_to
    return _compact_bytes(env, "command")


def state_json(peer_id: str, t: float, joints: dict[str, tuple[float, float, float]], task: dict[str, Any],
               sim_time: float | None = None, base_pose: dict[str, float] | None = None) -> bytes:
    """The wire form of a :class:`State` (compact JSON bytes) from a peer's own checked id and
    joint readings ``{name: (position m|rad, velocity m/s|rad/s, effort N|N·m)}`` (and a mobile
    base's ``base_pose`` ``{x, y, z, yaw}``, m and rad), without the
    model: a bridge relays thousands of these a second, and the model cost ~15 µs each
    (docs/benchmarks.md, issue 12). Receivers validate with :func:`decode` as before.

    Raises:
        ValueError: a reading is NaN or infinite (JSON cannot carry it), or not a number.
    """
    st: dict[str, Any] = {"peer_id": peer_id, "t": t,
                          "joints": {n: {"position": p, "velocity": v, "effort": e} for n, (p, v, e) in joints.items()},
                          "task": task}
    if sim_time is not None:
        st["sim_time"] = sim_time
    if base_pose is not None:
        st["base_pose"] = base_pose
    return _compact_bytes(st, f"state of {peer_id}")


def estop_ack_json(issuer_id: str, responder_id: str, seq: int, t: float, halted: bool, detail: str = "") -> bytes:
    """The wire form of an :class:`EStopAck` (compact JSON bytes) from parts already checked:
    the ids of a validated e-stop envelope and of the responder (checked by the ack's key,
    :meth:`~strands_mesh_ros.contract.keys.KeySpace.estop_ack`), its ``seq``, ``t`` from
    ``time.time()``. Built with pydantic-core's serialiser, without the model: on a robot's e-stop
    path, run cold once per e-stop, the model took ~50 µs and this ~15 µs (bench/bench_mesh.py
    estop, docs/benchmarks.md). Issuers validate with :func:`decode` as before."""
    return to_json({"issuer_id": issuer_id, "responder_id": responder_id, "seq": seq, "t": t, "halted": halted,
                    "detail": detail})


def _compact_bytes(obj: dict[str, Any], what: str) -> bytes:
    """``obj`` as compact JSON bytes (:data:`_COMPACT`).

    Raises:
        ValueError: ``what is not JSON-serialisable: ...`` (a NaN or infinity, a set, an object).
    """
    try:
        return _COMPACT.encode(obj).encode()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None


def new_turn_id() -> str:
    """A uuid4 hex (32 lowercase hex digits, RFC 4122 version 4), as the contract asks.

    Built from 16 random bytes with the version and variant bits set, as ``uuid.uuid4().hex``
    is, without the ``UUID`` object: that cost ~10 µs a command on the send path
    (bench/bench_mesh.py rtt)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # variant RFC 4122
    return b.hex()


class Response(_Model):
    """Answer to one command, on ``P/{sender}/response/{responder}/{turn_id}``.

    ``type`` is what strands-robots reads and ``status`` what the seed asks for: both are sent.
    """

    type: Literal["response", "error"] = "response"
    status: Literal["done", "error", "timeout", "refused"] = "done"
    responder_id: PeerId
    turn_id: TurnId
    result: Any = None
    error: str | None = None
    timestamp: float = Field(default_factory=time.time)

    @model_validator(mode="after")
    def _fill_status(self) -> "Response":
        # strands-robots sends only ``type``; derive the missing ``status`` from it. An "after"
        # validator: a "before" one makes pydantic build a dict of the JSON first (~4.6 µs more
        # per answer read, measured on the command path, bench/bench_mesh.py rtt).
        if self.type == "error" and "status" not in self.model_fields_set:
            self.status = "error"
        return self

    @property
    def ok(self) -> bool:
        """The responder ran the command (``status`` ``done``); see also :meth:`failure`."""
        return self.status == "done"

    def failure(self) -> str | None:
        """Why this answer reports a failure, or None when it reports success.

        A failure is a ``status`` other than ``done``, or a ``done`` answer whose result says
        ``ok: false``, carries an ``error``, or has ``status: "error"``: strands-robots 0.5.3
        answers refusals that way, as ``type: "response"`` (CONTRACT.md, stop accounting).
        """
        if self.status != "done":
            return self.error or self.status
        r = self.result if isinstance(self.result, dict) else {}
        if r.get("ok") is False or r.get("error") or r.get("status") == "error":
            return str(r.get("error") or r.get("content") or "the result reports a failure")
        return None


def make_response(responder: str, turn_id: str, *, result: Any = None, error: str | None = None,
                  status: str | None = None) -> Response:
    """Build a response; ``error`` makes it an ``error`` response unless ``status`` says else."""
    status = status or ("error" if error is not None else "done")
    return Response(
        type="response" if status == "done" else "error",
        status=status,  # type: ignore[arg-type]
        responder_id=responder,
        turn_id=turn_id,
        result=result,
        error=error,
    )


class JointStateEntry(_Model):
    position: float = 0.0
    velocity: float = 0.0
    effort: float = 0.0


class State(_Model):
    """Robot state, 10-50 Hz, on ``P/{peer}/state``. SI units (REP-103)."""

    peer_id: PeerId
    t: float
    joints: dict[str, JointStateEntry] = Field(default_factory=dict)
    task: dict[str, Any] = Field(default_factory=dict)
    sim_time: float | None = None
    seq: int | None = None
    base_pose: dict[str, float] | None = None
    """(ext) pose of a mobile base in its odometry frame: ``{x, y, z}`` in m, ``yaw`` in rad."""


class Step(_Model):
    """One control step (``publish_step``) on ``P/{peer}/stream``."""

    peer_id: PeerId
    step: int
    t: float
    observation: Any = None
    action: Any = None
    instruction: str | None = None
    policy: str | None = None


ESTOP_ID_PATTERN = r"^[0-9a-f]{32}$"
"""strands-robots 0.5.3's ``estop_id``: 32 lowercase hex, the receivers' lockout epoch."""


class EStop(_Model):
    """E-stop envelope on ``P/safety/estop``.

    ``seq`` grows per issuer (the issue time in ns); strands-robots 0.5.3 sends none, so a
    missing ``seq`` is taken from ``t`` (``int(t * 1e9)``), which keeps the replay rules of
    docs/security.md working on their envelopes too. ``estop_id`` (32 lowercase hex) names the
    e-stop fleet-wide and becomes every receiver's lockout epoch; 0.5.3 also binds
    ``source_zid`` to the sample's Zenoh SourceInfo (CONTRACT.md, strands-robots 0.5.3, item 3).
    """

    peer_id: PeerId
    t: float
    seq: int | None = None
    reason: str = ""
    estop_id: Annotated[str, StringConstraints(pattern=ESTOP_ID_PATTERN)] | None = None
    source_zid: str | None = None

    @model_validator(mode="after")
    def _seq_from_t(self) -> "EStop":
        if self.seq is None:
            self.seq = int(self.t * 1e9)  # raises on a non-finite t: an unreadable e-stop (still halts)
        return self


class EStopAck(_Model):
    """Ack on ``P/safety/estop/ack/{issuer}/{responder}`` (ext).

    ``halted`` is true only when the responder had actuators and stopped them.
    """

    issuer_id: PeerId
    responder_id: PeerId
    seq: int
    t: float
    halted: bool
    detail: str = ""


class Resume(_Model):
    """Resume envelope on ``P/safety/resume``; see docs/safety.md for the ``mac``."""

    peer_id: PeerId
    t: float
    seq: int
    operator: str = ""
    targets: list[PeerId] | None = None
    mac: str = ""


def make_presence(peer_id: str, *, robot_type: str, peer_type: str, skills: list[dict[str, Any]] | None = None,
                  ros: dict[str, str] | None = None, via: str | None = None, task_status: str | None = None,
                  hostname: str | None = None, locked_out: bool | None = None,
                  lockout: dict[str, Any] | None = None) -> Presence:
    return Presence(
        robot_id=peer_id,
        peer_id=peer_id,
        robot_type=robot_type,
        peer_type=peer_type,
        hostname=hostname if hostname is not None else socket.gethostname(),
        timestamp=time.time(),
        schema_=SCHEMA,
        skills=[SkillSpec.model_validate(s) for s in (skills or [])],
        ros=RosInfo.model_validate(ros) if ros else None,
        via=via,
        task_status=task_status,
        locked_out=locked_out,
        lockout=lockout,
    )


M = TypeVar("M", bound=BaseModel)


_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_HINT = {f: re.compile(rb'"' + f.encode() + rb'"\s*:\s*"([A-Za-z0-9_-]{1,64})"') for f in ("sender_id", "turn_id")}


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects in the JSON text ``raw`` (brackets inside strings do
    not count). Cheap: counting brackets settles nearly every payload without a scan."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return raw.count(b"[") + raw.count(b"{")  # an upper bound, within the limit
    brackets = _JSON_STRING.sub(b'""', raw).translate(None, _NOT_BRACKET)
    depth = deepest = 0
    for b in brackets:
        depth += 1 if b in _OPEN else -1
        deepest = max(deepest, depth)
    return deepest


def _hints(raw: bytes) -> tuple[str | None, str | None]:
    """``sender_id`` and ``turn_id`` read from a payload that cannot be parsed, so that even
    a malformed command is answered to its sender (never silence)."""
    found = [m.group(1).decode() if (m := _HINT[f].search(raw[:MAX_COMMAND_BYTES * 4])) else None
             for f in ("sender_id", "turn_id")]
    return found[0], found[1]


def loads(payload: bytes | bytearray | memoryview | str, max_bytes: int = MAX_PAYLOAD_BYTES,
          what: str = "payload") -> Any:
    """The one JSON decoder for outside input: size cap, depth cap, then ``json.loads``.

    Args:
        payload: UTF-8 JSON text.
        max_bytes: largest accepted size (bytes).
        what: how error messages name the payload (e.g. ``command_json``).

    Raises:
        ContractError: over ``max_bytes``, nested deeper than :data:`MAX_JSON_DEPTH`, not UTF-8,
            or not JSON (the sender and turn ids are recovered when the text names them).
    """
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > max_bytes:
        raise ContractError(f"{what} of {len(raw)} bytes exceeds the {max_bytes}-byte limit", *_hints(raw))
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ContractError(f"{what} nested deeper than {MAX_JSON_DEPTH} levels", *_hints(raw))
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"malformed JSON in {what}: {exc}", *_hints(raw)) from None
    except RecursionError:  # unreachable below the depth cap; kept so it can never escape
        raise ContractError(f"{what} nested too deeply to parse", *_hints(raw)) from None


def decode(model: type[M], payload: bytes | bytearray | memoryview | str, max_bytes: int = MAX_PAYLOAD_BYTES) -> M:
    """Parse and validate one payload (through :func:`loads`' size and depth caps).

    Raises:
        ContractError: over ``max_bytes``, nested deeper than :data:`MAX_JSON_DEPTH`, not UTF-8
            JSON, not an object, or failing the schema. For commands the sender and turn id
            are recovered when present.
    """
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) <= max_bytes and json_depth(raw) <= MAX_JSON_DEPTH:
        # Fast path: pydantic parses and validates in one pass. Only a failure pays for the
        # slower walk below, which recovers the sender and names the problem.
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass
    data = loads(raw, max_bytes)
    if not isinstance(data, dict):
        raise ContractError(f"payload must be a JSON object, got {type(data).__name__}")
    hint_sender = data.get("sender_id") if isinstance(data.get("sender_id"), str) else None
    hint_turn = data.get("turn_id") if isinstance(data.get("turn_id"), str) else None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"bad {model.__name__}: {validation_summary(exc)}", hint_sender, hint_turn) from None


def validation_summary(exc: ValidationError, most: int = 3) -> str:
    """One line naming the first ``most`` problems of a pydantic error (``where: what; ...``)."""
    parts = []
    for err in exc.errors()[:most]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - most
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
