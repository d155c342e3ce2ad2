"""Key expressions of the strands mesh (CONTRACT.md "Keys").

``P`` is the key prefix (default ``strands``). A Zenoh session *namespace* (Zenoh config
``namespace``) is applied by Zenoh itself below these keys: real strands-robots deployments
set namespace ``strands``, so their wire keys read ``strands/strands/...`` while the keys
built here stay ``strands/...``. See :class:`strands_mesh_ros.mesh.config.MeshConfig`.

Pure Python; no zenoh import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PEER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_PEER_ID_RE = re.compile(PEER_ID_PATTERN)
TURN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

RESERVED_PEER_IDS = frozenset({"safety", "broadcast"})
"""Ids that would collide with ``P/safety/...`` and ``P/broadcast``."""

DEFAULT_PREFIX = "strands"


class InvalidPeerId(ValueError):
    """A peer id breaks the contract's rule (1-64 characters of ``[A-Za-z0-9_-]``)."""


def check_peer_id(peer_id: object, what: str = "peer id") -> str:
    """Return ``peer_id`` unchanged if valid.

    Raises:
        InvalidPeerId: not a string, empty, longer than 64, a character outside
            ``[A-Za-z0-9_-]`` (so no ``/ * $ # ?``), or a reserved id.
    """
    if not isinstance(peer_id, str):
        raise InvalidPeerId(f"{what} must be a string, got {type(peer_id).__name__}")
    if not _PEER_ID_RE.fullmatch(peer_id):  # fullmatch: `$` alone admits a trailing "\n"
        raise InvalidPeerId(
            f"invalid {what} {peer_id!r}: need 1-64 characters of [A-Za-z0-9_-] "
            "(no '/', '*', '$', '#', '?' or spaces)"
        )
    if peer_id in RESERVED_PEER_IDS:
        raise InvalidPeerId(f"{what} {peer_id!r} is reserved by the contract's key layout")
    return peer_id


def check_prefix(prefix: object) -> str:
    """A key prefix: one or more ``/``-separated chunks of ``[A-Za-z0-9_-]``.

    Raises:
        ValueError: empty, wildcard or malformed prefix.
    """
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", prefix):
        raise ValueError(f"invalid key prefix {prefix!r}: need chunks of [A-Za-z0-9_-] joined by '/'")
    return prefix


KeyKind = Literal[
    "presence", "alive", "state", "stream", "camera", "cmd", "broadcast",
    "response", "estop", "estop_ack", "resume", "resume_ack",
]


@dataclass(frozen=True)
class ParsedKey:
    """What a key expression names. Fields not used by ``kind`` are None."""

    kind: KeyKind
    peer_id: str | None = None
    responder_id: str | None = None
    turn_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class KeySpace:
    """Builds and parses the mesh's keys under one prefix.

    Args:
        prefix: the ``P`` of CONTRACT.md, default ``strands``.

    Raises:
        ValueError: bad prefix.
    """

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    # -- builders (each validates the ids it embeds) -----------------------------------
    def presence(self, peer: str) -> str:
        return f"{self.prefix}/{check_peer_id(peer)}/presence"

    def alive(self, peer: str) -> str:
        return f"{self.prefix}/{check_peer_id(peer)}/alive"

    def state(self, peer: str) -> str:
        return f"{self.prefix}/{check_peer_id(peer)}/state"

    def stream(self, peer: str) -> str:
        return f"{self.prefix}/{check_peer_id(peer)}/stream"

    def camera(self, peer: str, name: str) -> str:
        return f"{self.prefix}/{check_peer_id(peer)}/camera/{check_peer_id(name, 'camera name')}"

    def cmd(self, peer: str, *, checked: bool = False) -> str:
        """``P/{peer}/cmd``. ``checked``: ``peer`` has passed :func:`check_peer_id` already (the
        send path's hot loop, bench/bench_mesh.py rtt), so it is not checked again."""
        return f"{self.prefix}/{peer if checked else check_peer_id(peer)}/cmd"

    @property
    def broadcast(self) -> str:
        return f"{self.prefix}/broadcast"

    def response(self, sender: str, responder: str, turn_id: str, *, checked: bool = False) -> str:
        """``P/{sender}/response/{responder}/{turn_id}``: the form we send.

        ``checked``: the three parts already match their patterns (a validated envelope's sender
        and turn, the peer's own id), so only the reserved ids, which those patterns let
        through, are still refused (the answer path's hot loop, bench/bench_mesh.py rtt).

        Raises:
            InvalidPeerId, ValueError: a part breaks its rule.
        """
        if checked and sender not in RESERVED_PEER_IDS:
            return f"{self.prefix}/{sender}/response/{responder}/{turn_id}"
        return f"{self.prefix}/{check_peer_id(sender)}/response/{check_peer_id(responder)}/{_turn(turn_id)}"

    def response_short(self, sender: str, turn_id: str) -> str:
        """``P/{sender}/response/{turn_id}``: the seed's form, accepted on receipt."""
        return f"{self.prefix}/{check_peer_id(sender)}/response/{_turn(turn_id)}"

    @property
    def estop(self) -> str:
        return f"{self.prefix}/safety/estop"

    def estop_ack(self, issuer: str, responder: str) -> str:
        return f"{self.prefix}/safety/estop/ack/{check_peer_id(issuer)}/{check_peer_id(responder)}"

    @property
    def resume(self) -> str:
        return f"{self.prefix}/safety/resume"

    def resume_ack(self, issuer: str, responder: str) -> str:
        """(ext) where each peer answers a resume envelope: accepted or why not."""
        return f"{self.prefix}/safety/resume/ack/{check_peer_id(issuer)}/{check_peer_id(responder)}"

    def resume_acks_for(self, issuer: str) -> str:
        return f"{self.prefix}/safety/resume/ack/{check_peer_id(issuer)}/*"

    # -- wildcard selectors ------------------------------------------------------------
    @property
    def all_presence(self) -> str:
        return f"{self.prefix}/*/presence"

    @property
    def all_alive(self) -> str:
        return f"{self.prefix}/*/alive"

    @property
    def all_state(self) -> str:
        return f"{self.prefix}/*/state"

    def responses_for(self, sender: str) -> str:
        """Both response forms addressed to ``sender``."""
        return f"{self.prefix}/{check_peer_id(sender)}/response/**"

    def estop_acks_for(self, issuer: str) -> str:
        return f"{self.prefix}/safety/estop/ack/{check_peer_id(issuer)}/*"

    # -- parser ------------------------------------------------------------------------
    def parse(self, key: str) -> ParsedKey:
        """Say what a concrete key names.

        Raises:
            ValueError: the key is not under this prefix or not a contract key; the message
                names the key.
        """
        head = self.prefix + "/"
        if not key.startswith(head):
            raise ValueError(f"key {key!r} is not under prefix {self.prefix!r}")
        parts = key[len(head):].split("/")
        try:
            if parts == ["broadcast"]:
                return ParsedKey("broadcast")
            if parts[0] == "safety":
                if parts[1:] == ["estop"]:
                    return ParsedKey("estop")
                if parts[1:] == ["resume"]:
                    return ParsedKey("resume")
                if len(parts) == 5 and parts[2] == "ack" and parts[1] in ("estop", "resume"):
                    kind = "estop_ack" if parts[1] == "estop" else "resume_ack"
                    return ParsedKey(kind, peer_id=check_peer_id(parts[3]), responder_id=check_peer_id(parts[4]))
                raise ValueError("unknown safety key")
            peer = check_peer_id(parts[0])
            rest = parts[1:]
            if rest in (["presence"], ["alive"], ["state"], ["stream"], ["cmd"]):
                return ParsedKey(rest[0], peer_id=peer)  # type: ignore[arg-type]
            if len(rest) == 2 and rest[0] == "camera":
                return ParsedKey("camera", peer_id=peer, name=rest[1])
            if len(rest) == 3 and rest[0] == "response":
                return ParsedKey("response", peer_id=peer, responder_id=check_peer_id(rest[1]), turn_id=_turn(rest[2]))
            if len(rest) == 2 and rest[0] == "response":
                return ParsedKey("response", peer_id=peer, turn_id=_turn(rest[1]))
        except (IndexError, InvalidPeerId) as exc:
            raise ValueError(f"key {key!r} is not a contract key: {exc}") from None
        raise ValueError(f"key {key!r} is not a contract key")


def _turn(turn_id: str) -> str:
    if not isinstance(turn_id, str) or not re.fullmatch(TURN_ID_PATTERN, turn_id):
        raise ValueError(f"invalid turn_id {turn_id!r}: need 1-64 characters of [A-Za-z0-9_-]")
    return turn_id
