"""The command path of a mesh peer: sending with response correlation, and the intake loop.

Mixed into :class:`~strands_mesh_ros.mesh.mesh.Mesh`; it relies on the Mesh's session, keys,
peer table and audit log. Received commands go, in arrival order, to the peer's
:class:`~strands_mesh_ros.robot.peer_core.PeerCore` (decode, dedup, lockout, dispatch, answer);
a response is accepted only from the peer the command went to.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..contract.keys import check_peer_id
from ..contract.payloads import (
    MAX_COMMAND_BYTES,
    ContractError,
    Response,
    command_json,
    decode,
    make_response,
    new_turn_id,
)
from ..robot.wire_identity import BROADCAST_TARGET, NEVER_REFUSED, REQUIRE_ENV

log = logging.getLogger(__name__)

POLICY_PROVIDER_ENV = "STRANDS_MESH_POLICY_PROVIDER"
"""Environment variable naming the default ``policy_provider`` of ``execute`` (:meth:`CommandPath.tell`)."""

DISCOVERY_GRACE = 2.0
"""How long (s) a command waits for an unknown target to appear before failing."""

FOREIGN_CMD_GAP = 0.075
"""Least gap (s) between two commands this process puts to strands-robots peers. Their sessions
downsample ``**/cmd`` to 20 Hz per Zenoh link (all of a process's sessions reach them over one
link when they are its clients), silently dropping a second command within 50 ms
(docs/interop-notes.md (g)); their own senders pace at 1/20 s + 10 ms. 25 ms of margin here,
since the limiter measures arrivals and a loaded machine spaces them unevenly."""
_foreign_pace_lock = threading.Lock()
_foreign_last_put = 0.0


def _pace_foreign_command() -> None:
    """Block until :data:`FOREIGN_CMD_GAP` has passed since the previous command of this
    process to a strands-robots peer, then claim the slot."""
    global _foreign_last_put
    with _foreign_pace_lock:
        wait = _foreign_last_put + FOREIGN_CMD_GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        _foreign_last_put = time.monotonic()


INBOX_CAPACITY = 65536
"""Commands buffered per key before Zenoh applies back-pressure to senders."""


class _Outcome:
    """The result of a blocking call, in place of a ``Future``: set once, by whichever thread
    ends the call, and read by the calling thread, which :class:`ResponseIntake` wakes. (A
    ``Future`` takes its condition's lock on every check, set and read, ~8 µs a call here.)"""

    __slots__ = ("_value", "_done")

    def __init__(self) -> None:
        self._done = False
        self._value: Any = None

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        self._value = value
        self._done = True  # after the value: a reader that sees done sees the value

    def result(self) -> Any:
        return self._value


@dataclass(slots=True)
class _Pending:
    target: str | None  # None: broadcast
    future: Future | _Outcome
    deadline: float
    sent: float = field(default_factory=time.monotonic)
    expected: frozenset[str] = frozenset()
    responses: dict[str, Response] = field(default_factory=dict)
    on_response: Any = None  # broadcast only: called with each answer as it arrives
    sync: bool = False  # a thread waits for it in ResponseIntake.wait (and reads the answers)


@dataclass
class BroadcastResult:
    """Answers to one broadcast: ``responses`` by responder, and known peers that stayed silent."""

    turn_id: str
    responses: dict[str, Response]
    missing: list[str]



class CommandPath:
    """Sending and answering commands (see the module docstring)."""

    def send_async(self, peer_id: str, command: dict[str, Any], timeout: float = 10.0) -> "Future[Response]":
        """Send ``command`` to ``peer_id``; the future resolves to its :class:`Response`.

        The future always resolves: with the peer's answer; ``status="timeout"`` after
        ``timeout`` s; an error ``peer lost`` if the peer leaves first; or an error
        ``unknown peer`` if it is not seen within ``min(timeout, 2 s)``.

        Raises:
            InvalidPeerId: bad peer id.
            ValueError: ``command`` is not a dict with an ``action``, or its envelope
                exceeds 16 KiB.
            MeshError: the mesh is not started.
        """
        check_peer_id(peer_id, "target peer id")
        return self._send(peer_id, command, timeout)

    def send(self, peer_id: str, command: dict[str, Any], timeout: float = 10.0) -> Response:
        """Blocking :meth:`send_async` (the calling thread reads the answers while it waits:
        :mod:`~strands_mesh_ros.mesh.response_intake`)."""
        check_peer_id(peer_id, "target peer id")
        return self._wait(self._send(peer_id, command, timeout, sync=True))

    def tell(self, peer_id: str, instruction: str, timeout: float = 60.0,
             policy_provider: str | None = None) -> Response:
        """``execute`` an instruction on ``peer_id`` and wait for it to finish.

        Args:
            policy_provider: the policy a strands-robots peer runs the instruction with (0.5.3
                refuses ``execute`` without one, e.g. ``mock``; CONTRACT.md item 6). Default
                ``$STRANDS_MESH_POLICY_PROVIDER``; sent when set (our peers ignore it).

        Raises:
            ValueError: the target is a strands-robots peer and no policy provider is set
                (the message names both ways to set one); as :meth:`send_async` otherwise.
        """
        provider = policy_provider or os.environ.get(POLICY_PROVIDER_ENV) or None
        command: dict[str, Any] = {"action": "execute", "instruction": instruction}
        if provider:
            command["policy_provider"] = provider
        else:
            info = self.table.get(peer_id)
            if info is not None and info.strands_robots:
                raise ValueError(f"{peer_id} is a strands-robots peer: execute needs a policy provider "
                                 f"(tell(..., policy_provider='mock'), --policy-provider, or ${POLICY_PROVIDER_ENV})")
        return self.send(peer_id, command, timeout)

    def broadcast(self, command: dict[str, Any], timeout: float = 2.0) -> BroadcastResult:
        """Send ``command`` to every peer; returns when all known peers answered or at ``timeout``."""
        return self._wait(self._send(None, command, timeout, sync=True))

    def _wait(self, out: _Outcome) -> Any:
        self._intake.wait(out.done)
        return out.result()

    def _send(self, target: str | None, command: dict[str, Any], timeout: float, on_response: Any = None,
              expected: frozenset[str] | None = None, sync: bool = False) -> Any:
        self._require()
        if not isinstance(command, dict) or not isinstance(command.get("action"), str):
            raise ValueError("command must be a dict with an 'action' string")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout!r}")
        turn = new_turn_id()
        data = command_json(self.peer_id, turn, command)
        if len(data) > MAX_COMMAND_BYTES:
            raise ValueError(f"command envelope of {len(data)} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit")
        fut = _Outcome() if sync else Future()
        if expected is None:
            expected = frozenset(self.peers) if target is None else frozenset()
        p = _Pending(target, fut, time.monotonic() + timeout, expected=expected, on_response=on_response, sync=sync)
        with self._pending_lock:
            self._pending[turn] = p
        if not sync:
            self._intake.async_opened()
        if target is not None and self.table.is_strands_robots(target):
            _pace_foreign_command()
        # signed, a command names its target inside the signature (0.5.3 refuses a signed
        # command without one: it could have been copied off another robot's key)
        if self._signer is not None:
            data = self.signed(data, target_id=target if target is not None else BROADCAST_TARGET)
        # (target is checked by the public methods: the key is built without a second check)
        self._session.put(self.keys.cmd(target, checked=True) if target else self.keys.broadcast, data,
                          congestion_control=self._block, source_info=self.source_info())
        return fut

    def _finish(self, p: _Pending, resp: Response | None, turn: str | None = None) -> None:
        if p.future.done():
            return
        if p.target is None:
            missing = sorted(p.expected - set(p.responses))
            p.future.set_result(BroadcastResult(turn or "", dict(p.responses), missing))
        else:
            p.future.set_result(resp)
        if self._intake is not None:
            self._intake.resolved(not p.sync)

    def _expire_pending(self, now: float) -> None:
        # Every housekeeping tick calls this for every Mesh of the process; a bridge runs one Mesh
        # per robot, so building the peer snapshot here each time cost O(N²) per tick (most of
        # a bridge's CPU at 100 robots, bench/bench_bridge.py fanin). Look peers up one by one,
        # and only when something is pending.
        if not self._pending:
            return
        done: list[tuple[str, _Pending, Response | None]] = []
        with self._pending_lock:
            for turn, p in list(self._pending.items()):
                unknown = (p.target is not None and self.table.get(p.target) is None
                           and not self.table.has_token(p.target))
                if unknown and (now >= p.deadline or now - p.sent > DISCOVERY_GRACE):
                    known = sorted(set(self.table.snapshot()) - {self.peer_id})
                    resp = make_response(p.target, turn, error=f"unknown peer {p.target!r}: not on the mesh "
                                                                f"(known: {known})")
                elif now >= p.deadline:
                    resp = make_response(p.target, turn, status="timeout",
                                         error=f"no response from {p.target} within {p.deadline - p.sent:.1f} s"
                                         ) if p.target else None
                else:
                    continue
                del self._pending[turn]
                done.append((turn, p, resp))
        for turn, p, resp in done:
            self._finish(p, resp, turn)

    def _on_response(self, sample: Any) -> None:
        key = str(sample.key_expr)
        # The subscription is P/{me}/response/**: what follows is {responder}/{turn} or the
        # seed's {turn}. Comparing with the validated payload checks the parts; no full parse.
        tail = key[len(self.keys.prefix) + len(self.peer_id) + 11:].split("/")  # 11: "/" + "/response/"
        payload = sample.payload.to_bytes()
        try:
            resp = decode(Response, payload)
            if len(tail) > 2:
                raise ValueError(f"key {key!r} is not a contract response key")
        except (ContractError, ValueError) as exc:
            log.warning("%s: bad response on %s: %s", self.peer_id, key, exc)
            self._sender_stats["rejected"] += 1
            return
        if len(tail) == 2 and tail[0] != resp.responder_id:
            self._spoof(f"key names {tail[0]} but payload says {resp.responder_id}")
            return
        if tail[-1] != resp.turn_id:
            self._spoof(f"key turn {tail[-1]} but payload turn {resp.turn_id}")
            return
        refusal = self._wire_refusal(payload, resp.responder_id)
        if refusal:
            self._spoof(f"answer of {resp.responder_id} on turn {resp.turn_id}: {refusal}")
            return
        with self._pending_lock:
            p = self._pending.get(resp.turn_id)
            if p is None:
                return  # late answer after a timeout, or a stop broadcast by e-stop
            if p.target is not None and resp.responder_id != p.target:
                spoof = f"{resp.responder_id} answered a command sent to {p.target}"
            else:
                spoof = None
                if p.target is not None:
                    del self._pending[resp.turn_id]
                else:
                    p.responses[resp.responder_id] = resp
                    if p.on_response is not None:
                        p.on_response(resp)
                    if p.expected and p.expected.issubset(p.responses):
                        del self._pending[resp.turn_id]
                    else:
                        return
        if spoof:
            self._spoof(spoof)
            return
        self._sender_stats["responses"] += 1
        self._finish(p, resp, resp.turn_id)

    def _spoof(self, what: str) -> None:
        self._sender_stats["spoofed"] += 1
        log.warning("%s: refused a spoofed response: %s", self.peer_id, what)
        if self.audit:
            self.audit.write("spoofed_response", time.time(), detail=what)

    def _dispatch_loop(self, sub: Any) -> None:
        # Read the channel through its handler, not the subscriber: a thread blocked in
        # ``sub.recv()`` holds the subscriber, and undeclaring it from another thread then
        # fails. Undeclaring closes the handler's channel, which ends this loop at once.
        channel = sub.handler
        broadcast_key = self.keys.broadcast
        while not self._stop_evt.is_set():
            try:
                sample = channel.recv()
            except self._zenoh.ZError:
                return  # channel closed: the mesh is stopping
            try:
                payload = sample.payload.to_bytes()
                broadcast = str(sample.key_expr) == broadcast_key
                if self._refuse_unsigned(payload, broadcast):
                    continue
                if self._relay is not None:  # a bridge's proxy: the ROS robot's own core answers
                    self._relay(payload, broadcast)
                else:
                    self.core.handle_command(payload, self._send_answer, broadcast=broadcast)
            except Exception:  # never let one command kill the peer
                log.exception("%s: command handling failed", self.peer_id)

    def _wire_refusal(self, payload: bytes, claimed: str | None, *, target: bool = False) -> str | None:
        """Why a message that claims to come from ``claimed`` is not accepted under this peer's
        signed-identity policy (docs/security.md), or None. JSON is parsed only when the policy
        requires signatures or the message carries one. ``target``: also refuse a signed command
        whose ``target_id`` names another peer (copied off that peer's key)."""
        trust = self._wire.trust if self._wire is not None else None
        if trust is None or not trust.concerns(payload):
            return None
        try:
            message = json.loads(payload)
        except ValueError:
            return None  # not JSON: the contract decoder refuses it with its own error
        return self._message_refusal(trust, message, claimed, target=target)

    def _message_refusal(self, trust: Any, message: Any, claimed: str | None, *, target: bool) -> str | None:
        """:meth:`_wire_refusal` of a message already parsed."""
        got = trust.check(message, claimed)
        if isinstance(got, str):
            return got
        if got is not None and target and isinstance(message, dict) and message.get("target_id") not in (
                None, self.peer_id, BROADCAST_TARGET):
            return f"signed command is for {str(message.get('target_id'))[:64]!r}, not this peer"
        return None

    def _refuse_unsigned(self, payload: bytes, broadcast: bool) -> bool:
        """Answer and audit a command that the signed-identity policy refuses; True if refused.
        Stops (``stop``, ``emergency_stop``) and ``status``/``ping`` are never refused."""
        trust = self._wire.trust if self._wire is not None else None
        if trust is None or not trust.concerns(payload):
            return False
        try:
            message = json.loads(payload)
            sender, turn = message.get("sender_id"), message.get("turn_id")
            action = (message.get("command") or {}).get("action")
        except (ValueError, AttributeError):
            return False  # malformed: the core answers it with the contract's error
        if action in NEVER_REFUSED or not isinstance(sender, str) or sender == self.peer_id:
            return False
        refusal = self._message_refusal(trust, message, sender, target=not broadcast)
        if refusal is None:
            return False
        error = f"refused: {refusal} (signed wire identity is required here, {REQUIRE_ENV})" if trust.required \
            else f"refused: {refusal}"
        log.warning("%s: refused %r from %s: %s", self.peer_id, action, sender, refusal)
        if self.audit:
            self.audit.write("identity_refused", time.time(), sync=False, sender=sender, turn_id=turn,
                             action=action, reason=refusal)
        try:
            self._send_answer(self.core.error_answer(sender, turn, error))
        except (ValueError, TypeError) as exc:  # no usable sender/turn to answer: the audit line stands
            log.warning("%s: could not answer the refused command: %s", self.peer_id, exc)
        return True

    def _send_answer(self, answer: Any) -> None:
        """Put an :class:`~strands_mesh_ros.robot.peer_core.Answer` (from any thread)."""
        if answer.key is None:
            return
        try:
            self._session.put(answer.key, self.signed(answer.data), congestion_control=self._block,
                              source_info=self.source_info())
        except Exception as exc:  # the session closed under us during shutdown
            log.debug("%s: answer not sent: %s", self.peer_id, exc)

    def _peers_answer(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.peers.values()]
