"""The safety path of a mesh peer: e-stop issue and receipt, acks, signed resume.

Mixed into :class:`~strands_mesh_ros.mesh.mesh.Mesh`. Runs on the dedicated safety session
(express, real-time priority). This is a supplementary software stop, not the hardwired
emergency stop of IEC 60204-1 / ISO 13850 (docs/safety.md).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..contract.keys import check_peer_id
from ..contract.payloads import ContractError, EStopAck, Resume, decode, loads
from ..robot.safety import ESTOP_ACK_TIMEOUT, EStopReport, sign_resume

log = logging.getLogger(__name__)


class MeshError(RuntimeError):
    """The mesh is not running, or a call cannot be made."""


DISCOVERY_FLOOR = 0.05
"""Least time (s) an e-stop keeps listening after issue: a process that has only just joined
(the CLI) learns the live liveliness tokens of the mesh within a few ms of opening its
session; this floor lets those arrive before "every known peer acked" can be true."""


class _AckCollector:
    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.acks: dict[str, tuple[Any, float]] = {}
        self.cond = threading.Condition()

    def add(self, responder: str, ack: Any) -> None:
        with self.cond:
            self.acks.setdefault(responder, (ack, time.monotonic()))
            self.cond.notify_all()

    def snapshot(self) -> dict[str, tuple[Any, float]]:
        with self.cond:
            return dict(self.acks)

    def wait_change(self, timeout: float) -> None:
        with self.cond:
            n = len(self.acks)
            self.cond.wait_for(lambda: len(self.acks) != n, timeout)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.expected.issubset(self.acks):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)



class SafetyPath:
    """E-stop and resume (see the module docstring). Receipt is the peer core's
    (:class:`~strands_mesh_ros.robot.peer_core.PeerCore`); this side issues, publishes and
    gathers acks."""

    def emergency_stop(self, reason: str = "", timeout: float = ESTOP_ACK_TIMEOUT,
                       settle: float = DISCOVERY_FLOOR) -> EStopReport:
        """Supplementary software e-stop of the whole mesh (docs/safety.md).

        Halts this peer's own robot first, publishes the e-stop on the dedicated safety
        session and broadcasts ``stop`` for peers that only know the command path, all before
        looking for peers: nothing waits on discovery. Then it gathers, for up to ``timeout``
        s, the acks and the ``stop`` answers of every peer it knows of (the peer table, live
        liveliness tokens, and peers whose presence arrives meanwhile), and returns as soon as
        each has answered one way or the other.

        A peer counts as stopped when it acked with actuators halted, or answered ``stop``
        successfully; as without actuators when its ack says so or its ``stop`` answer lists
        nothing stopped (``{"ok": true, "stopped": []}``); otherwise it is named in
        ``not_acked``: NOT known to be stopped (an ``error`` answer to ``stop`` included).

        Args:
            reason: audited by every receiver.
            timeout: s; the longest it gathers answers.
            settle: s; the least it gathers, so peers known only by presence (2 Hz; a
                strands-robots peer has no liveliness token) are heard and named by a process
                that has just joined, such as the CLI (which passes 0.6).
        """
        self._require()
        t0 = time.monotonic()
        env = self.core.issue_estop(reason, sorted(self.peers), source_zid=str(self._estop_pub.id.zid))
        collector = _AckCollector(set())
        self._estop_waits[env.seq] = collector
        try:
            # SourceInfo with the zid the body names: strands-robots 0.5.3 then takes estop_id
            # as its lockout epoch (both or neither, else it refuses the envelope).
            self._estop_pub.put(env.to_json(), source_info=self._zenoh.SourceInfo(self._estop_pub.id, 1))
            self._call_hook("estop_issued", env)
            answers: dict[str, Any] = {}

            def on_stop_answer(resp: Any) -> None:
                answers[resp.responder_id] = resp
                collector.add(f"stop:{resp.responder_id}", resp)

            self._send(None, {"action": "stop"}, max(timeout, 0.05), on_response=on_stop_answer,
                       expected=frozenset())
            deadline = t0 + timeout
            while True:
                expected = (set(self.peers) | self.table.tokens()) - {self.peer_id}
                heard = {k for k in collector.snapshot() if not k.startswith("stop:")} | set(answers)
                left = deadline - time.monotonic()
                settled = time.monotonic() - t0 >= min(max(settle, DISCOVERY_FLOOR), timeout)
                if left <= 0 or (expected <= heard and settled):
                    break
                collector.wait_change(min(left, DISCOVERY_FLOOR))
        finally:
            self._estop_waits.pop(env.seq, None)
        report = EStopReport(seq=env.seq, self_halted=self.core.robot is not None, elapsed=time.monotonic() - t0)
        acks = {k: v for k, v in collector.snapshot().items() if not k.startswith("stop:")}
        for peer, (ack, at) in acks.items():
            if ack.halted:
                report.stopped[peer] = at - t0
            else:
                report.no_actuators.append(peer)
        for peer, (resp, at) in ((k[5:], v) for k, v in collector.snapshot().items() if k.startswith("stop:")):
            if peer in acks or peer == self.peer_id:
                continue
            if stop_answer_halted(resp) is True:
                report.stopped[peer] = at - t0
            elif stop_answer_halted(resp) is False:
                report.no_actuators.append(peer)
        report.not_acked = sorted(expected - set(report.stopped) - set(report.no_actuators))
        self.audit.write("estop_report", time.time(), **report.to_dict())
        return report

    def _on_estop(self, sample: Any) -> None:
        self.core.halt()  # halt before anything else, even before parsing
        received = time.time()
        payload = bytes(sample.payload.to_bytes())
        if self.raw_estop_hook is not None:  # a bridge carries the halt into ROS, still unparsed
            try:
                self.raw_estop_hook(payload)
            except Exception:
                log.exception("%s: raw e-stop hook failed", self.peer_id)
        self._safety_q.put(("estop", payload, received))

    def _safety_loop(self) -> None:
        while True:
            item = self._safety_q.get()
            if item is None:
                return
            try:
                kind, payload, received = item
                if kind == "estop":
                    ack, _ = self.core.estop_received(payload, received)
                    self._put_safety(ack)
                else:
                    ack, env = self.core.resume_received(payload, received)
                    if env is not None and env.peer_id != self.peer_id:
                        self._call_hook("resume", payload)
                    self._put_safety(ack)
            except Exception:
                log.exception("%s: safety handling failed", self.peer_id)

    def _put_safety(self, answer: Any) -> None:
        """Put an ack (e-stop or resume) on the dedicated safety session, real-time priority."""
        if answer.key is None:
            return
        self._safety.put(answer.key, answer.data, congestion_control=self._zenoh.CongestionControl.BLOCK,
                         priority=self._zenoh.Priority.REAL_TIME, express=True)

    def put_safety_from(self, key: str, payload: bytes) -> None:
        """Put bytes a robot behind this bridge produced (its e-stop or resume ack) on the
        safety session; the caller has checked the key (see the bridge)."""
        self._require()
        self._safety.put(key, payload, congestion_control=self._zenoh.CongestionControl.BLOCK,
                         priority=self._zenoh.Priority.REAL_TIME, express=True)

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
        expected = set(targets) if targets is not None else (set(self.peers) | self.table.tokens())
        if targets is None or self.peer_id in targets:
            self.core.resume_local()
        collector = _AckCollector(expected - {self.peer_id})
        self._resume_waits[seq] = collector
        try:
            self._resume_pub.put(env.to_json())
            self.audit.write("resume_issued", time.time(), seq=seq, operator=operator, targets=targets)
            collector.wait(timeout)
        finally:
            self._resume_waits.pop(seq, None)
        out = {p: {"accepted": bool(a.get("accepted")), "detail": a.get("detail", "")}
               for p, (a, _) in collector.snapshot().items()}
        for p in expected - set(out) - {self.peer_id}:
            out[p] = {"accepted": False, "detail": "no answer"}
        return out

    def _on_resume(self, sample: Any) -> None:
        self._safety_q.put(("resume", bytes(sample.payload.to_bytes()), time.time()))

    def _on_resume_ack(self, sample: Any) -> None:
        try:
            ack = loads(bytes(sample.payload.to_bytes()), 64 * 1024, "resume ack")
            collector = self._resume_waits.get(int(ack["seq"]))
            responder = check_peer_id(ack["responder_id"])
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            log.warning("%s: bad resume ack: %s", self.peer_id, exc)
            return
        if collector is not None:
            collector.add(responder, ack)


def stop_answer_halted(resp: Any) -> bool | None:
    """What an answer to ``stop`` says: True (a robot stopped), False (nothing to stop:
    ``{"ok": true, "stopped": []}``), None (an error: NOT known to be stopped)."""
    if not resp.ok:
        return None
    result = resp.result if isinstance(resp.result, dict) else {}
    if result.get("ok") is False or result.get("error"):
        return None
    stopped = result.get("stopped", True)
    return bool(stopped)
