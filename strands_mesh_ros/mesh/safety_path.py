"""The safety path of a mesh peer: e-stop issue and receipt, acks, signed resume.

Mixed into :class:`~strands_mesh_ros.mesh.mesh.Mesh`. Runs on the dedicated safety session
(express, real-time priority). This is a supplementary software stop, not the hardwired
emergency stop of IEC 60204-1 / ISO 13850 (docs/safety.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from ..contract.keys import check_peer_id
from ..contract.payloads import (
    CommandEnvelope,
    ContractError,
    EStop,
    EStopAck,
    Resume,
    decode,
    new_turn_id,
)
from .safety import ESTOP_ACK_TIMEOUT, EStopReport, halt_without_latch, sign_resume

log = logging.getLogger(__name__)


class MeshError(RuntimeError):
    """The mesh is not running, or a call cannot be made."""


class _AckCollector:
    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.acks: dict[str, tuple[Any, float]] = {}
        self.cond = threading.Condition()

    def add(self, responder: str, ack: Any) -> None:
        with self.cond:
            self.acks[responder] = (ack, time.monotonic())
            self.cond.notify_all()

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.expected.issubset(self.acks):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)



class SafetyPath:
    """E-stop and resume (see the module docstring)."""

    def emergency_stop(self, reason: str = "", timeout: float = ESTOP_ACK_TIMEOUT) -> EStopReport:
        """Supplementary software e-stop of the whole mesh (docs/safety.md).

        Halts this peer's own robot first, publishes the e-stop on the dedicated safety
        session, broadcasts ``stop`` for peers that only know the command path, and returns
        as soon as every known peer acked, or after ``timeout`` s naming those that did not.
        """
        self._require()
        t0 = time.monotonic()
        self_halted = False
        if self.robot is not None:
            self.robot.emergency_stop(self.peer_id, reason)
            self_halted = True
        seq = time.time_ns()  # grows across restarts, unlike a counter
        expected = set(self.peers)
        collector = _AckCollector(expected)
        self._estop_waits[seq] = collector
        try:
            env = EStop(peer_id=self.peer_id, t=time.time(), seq=seq, reason=reason)
            self._estop_pub.put(env.to_json())
            self._call_hook("estop_issued", env)
            self.audit.write("estop_issued", time.time(), seq=seq, reason=reason, self_halted=self_halted,
                             expected=sorted(expected))
            stop = CommandEnvelope(sender_id=self.peer_id, turn_id=new_turn_id(), command={"action": "stop"})
            self._session.put(self.keys.broadcast, stop.to_json())
            collector.wait(timeout)
        finally:
            self._estop_waits.pop(seq, None)
        report = EStopReport(seq=seq, self_halted=self_halted, elapsed=time.monotonic() - t0)
        for peer, (ack, at) in collector.acks.items():
            if ack.halted:
                report.stopped[peer] = at - t0
            else:
                report.no_actuators.append(peer)
        report.not_acked = sorted(expected - set(collector.acks))
        self.audit.write("estop_report", time.time(), **report.to_dict())
        return report

    def _on_estop(self, sample: Any) -> None:
        robot = self.robot
        if robot is not None:
            robot.driver.emergency_stop()  # halt before anything else, even before parsing
        received = time.time()
        self._safety_q.put(("estop", bytes(sample.payload.to_bytes()), received))

    def _safety_loop(self) -> None:
        while True:
            item = self._safety_q.get()
            if item is None:
                return
            try:
                kind, payload, received = item
                if kind == "estop":
                    self._estop_received(payload, received)
                else:
                    self._resume_received(payload, received)
            except Exception:
                log.exception("%s: safety handling failed", self.peer_id)

    def _estop_received(self, payload: bytes, received: float) -> None:
        try:
            env = decode(EStop, payload, 64 * 1024)
        except ContractError as exc:
            # Already halted (fail-safe). Latch too: an unreadable e-stop is still an e-stop.
            if self.robot is not None:
                self.robot.emergency_stop("unknown", f"malformed e-stop: {exc}")
            self.audit.write("estop_malformed", received, error=str(exc), halted=self.robot is not None)
            return
        verdict = self._estop_guard.check(env, received)  # never refuses a stop; see docs/security.md
        if verdict.replay is not None:
            self.audit.write("estop_replay", received, issuer=env.peer_id, seq=env.seq, detail=verdict.replay,
                             latched=verdict.latch)
        if env.peer_id == self.peer_id and verdict.latch and (
                env.seq in self._estop_waits or self.robot is None or self.robot.locked_out):
            return  # our own; halted, latched and audited by emergency_stop()
        # (one naming us that we did not issue, or issued before a resume: latch, fail-safe)
        halted = False
        if self.robot is not None:
            if verdict.latch:
                self.robot.emergency_stop(env.peer_id, env.reason)
            else:  # halted in _on_estop; an authorised resume came after this envelope: keep it
                halt_without_latch(self.robot, f"replayed e-stop from {env.peer_id}")
            halted = True
        self.audit.write("estop_received", received, issuer=env.peer_id, seq=env.seq, reason=env.reason,
                         halted=halted)
        self.ack_estop(env, self.peer_id, halted, verdict.replay or ("" if halted else "no actuators on this peer"))
        if verdict.latch:
            self._call_hook("estop", env)

    def ack_estop(self, env: EStop, responder: str, halted: bool, detail: str = "") -> None:
        """Ack ``env`` as ``responder`` (this peer, or a ROS robot this bridge speaks for)."""
        ack = EStopAck(issuer_id=env.peer_id, responder_id=responder, seq=env.seq, t=time.time(), halted=halted,
                       detail=detail)
        self._safety.put(self.keys.estop_ack(env.peer_id, responder), ack.to_json(),
                         congestion_control=self._zenoh.CongestionControl.BLOCK,
                         priority=self._zenoh.Priority.REAL_TIME, express=True)

    def ack_resume(self, env: Resume, responder: str, accepted: bool, detail: str = "") -> None:
        """Answer a resume envelope as ``responder`` (this peer or a robot it speaks for)."""
        body = json.dumps({"responder_id": responder, "seq": env.seq, "accepted": accepted,
                           "detail": detail}).encode()
        self._safety.put(self.keys.resume_ack(env.peer_id, responder), body,
                         congestion_control=self._zenoh.CongestionControl.BLOCK)

    def put_resume(self, payload: bytes) -> None:
        """Publish a signed resume envelope made elsewhere (a bridge relaying one from ROS)."""
        self._require()
        self._resume_pub.put(payload)

    def _call_hook(self, kind: str, env: Any) -> None:
        if self.safety_hook is not None:
            try:
                self.safety_hook(kind, env)
            except Exception:
                log.exception("%s: safety hook failed on %s", self.peer_id, kind)

    def _on_estop_ack(self, sample: Any) -> None:
        try:
            ack = decode(EStopAck, bytes(sample.payload.to_bytes()), 64 * 1024)
        except ContractError as exc:
            log.warning("%s: bad e-stop ack: %s", self.peer_id, exc)
            return
        collector = self._estop_waits.get(ack.seq)
        if collector is not None:
            collector.add(ack.responder_id, ack)

    def _estop_command(self, issuer: str, reason: str) -> dict[str, Any]:
        """``emergency_stop`` over the command path: halt, latch, audit."""
        halted = False
        if self.robot is not None:
            self.robot.emergency_stop(issuer, reason)
            halted = True
        self.audit.write("estop_command", time.time(), issuer=issuer, reason=reason, halted=halted)
        return {"halted": halted}

    def resume(self, targets: list[str] | None = None, operator: str = "", timeout: float = 1.0) -> dict[str, dict[str, Any]]:
        """Ask peers to clear their e-stop lockout with a signed resume envelope.

        Args:
            targets: peer ids to resume; None for every peer.
            operator: who resumes (audited by receivers).
            timeout: how long to gather answers (s).

        Returns:
            ``{peer: {"accepted": bool, "detail": str}}`` for peers that answered, plus
            ``{"accepted": False, "detail": "no answer"}`` for silent targets.

        Raises:
            MeshError: this peer has no resume key (docs/safety.md).
        """
        self._require()
        if self._resume_key is None:
            raise MeshError("no resume key: set STRANDS_MESH_RESUME_KEY (or _FILE) to the fleet's resume key")
        seq = time.time_ns()
        env = sign_resume(Resume(peer_id=self.peer_id, t=time.time(), seq=seq, operator=operator,
                                 targets=targets), self._resume_key)
        expected = set(targets) if targets is not None else set(self.peers)
        if targets is None or self.peer_id in targets:
            if self.robot is not None:
                self.robot.resume()
            self._estop_guard.resumed()
        collector = _AckCollector(expected - {self.peer_id})
        self._resume_waits[seq] = collector
        try:
            self._resume_pub.put(env.to_json())
            self.audit.write("resume_issued", time.time(), seq=seq, operator=operator, targets=targets)
            collector.wait(timeout)
        finally:
            self._resume_waits.pop(seq, None)
        out = {p: {"accepted": bool(a.get("accepted")), "detail": a.get("detail", "")}
               for p, (a, _) in collector.acks.items()}
        for p in expected - set(out) - {self.peer_id}:
            out[p] = {"accepted": False, "detail": "no answer"}
        return out

    def _on_resume(self, sample: Any) -> None:
        self._safety_q.put(("resume", bytes(sample.payload.to_bytes()), time.time()))

    def _resume_received(self, payload: bytes, received: float) -> None:
        try:
            env = decode(Resume, payload, 64 * 1024)
        except ContractError as exc:
            self.audit.write("resume_malformed", received, error=str(exc))
            return
        if env.peer_id == self.peer_id:
            return
        self._call_hook("resume", env)
        refusal = self._guard.check(env, self.peer_id, received)
        if refusal == "not a target":
            return
        if refusal is None and self.robot is not None:
            self.robot.resume()
        if refusal is None:
            self._estop_guard.resumed(received)
        self.audit.write("resume_received", received, issuer=env.peer_id, operator=env.operator, seq=env.seq,
                         accepted=refusal is None, detail=refusal or "")
        self.ack_resume(env, self.peer_id, refusal is None, refusal or "")

    def _on_resume_ack(self, sample: Any) -> None:
        try:
            ack = json.loads(bytes(sample.payload.to_bytes()))
            collector = self._resume_waits.get(int(ack["seq"]))
            responder = check_peer_id(ack["responder_id"])
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            log.warning("%s: bad resume ack: %s", self.peer_id, exc)
            return
        if collector is not None:
            collector.add(responder, ack)

    def _resume_command(self, fields: dict[str, Any], sender: str) -> str | None:
        """``resume`` over the command path: same signed fields, targets = [this peer]."""
        try:
            env = Resume(peer_id=sender, t=fields.get("t", 0.0), seq=fields.get("seq", -1),
                         operator=fields.get("operator", ""), targets=[self.peer_id], mac=fields.get("mac", ""))
        except ValueError as exc:
            return f"bad resume fields: {exc}"
        refusal = self._guard.check(env, self.peer_id, time.time())
        if refusal is None and self.robot is not None:
            self.robot.resume()
        if refusal is None:
            self._estop_guard.resumed()
        self.audit.write("resume_command", time.time(), issuer=sender, accepted=refusal is None, detail=refusal or "")
        return refusal
