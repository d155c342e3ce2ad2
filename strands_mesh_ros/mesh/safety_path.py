"""The safety path of a mesh peer: e-stop issue and receipt, acks, signed resume.

Mixed into :class:`~strands_mesh_ros.mesh.mesh.Mesh`. Runs on the dedicated safety session
(express, real-time priority). This is a supplementary software stop, not the hardwired
emergency stop of IEC 60204-1 / ISO 13850 (docs/safety.md).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

from ..contract.keys import check_peer_id
from ..contract.payloads import ContractError, EStopAck, Resume, decode, loads
from ..robot import resume_ed25519 as ed
from ..robot.safety import ESTOP_ACK_TIMEOUT, EStopReport, sign_resume

log = logging.getLogger(__name__)


class MeshError(RuntimeError):
    """The mesh is not running, or a call cannot be made."""


DISCOVERY_FLOOR = 0.05
"""Least time (s) an e-stop keeps listening after issue: a process that has only just joined
(the CLI) learns the live liveliness tokens of the mesh within a few ms of opening its
session; this floor lets those arrive before "every known peer acked" can be true."""


SAFETY_SPACING = 0.6
"""Least time (s) between two safety messages (e-stop, resume) this process puts: strands-robots
0.5.3 downsamples ``**/safety/**`` to 2 Hz per Zenoh link on ingress and silently drops the
second message inside one period (docs/interop-notes.md (g)). 0.1 s above the period, because the
limiter measures arrivals, and a loaded machine delays one message more than the next (at
exactly 0.5 s a resume after an e-stop was dropped under load). An e-stop never waits for it; a
resume waits."""

_safety_clock = {"last": float("-inf")}
_safety_clock_lock = threading.Lock()


def _safety_sent() -> None:
    with _safety_clock_lock:
        _safety_clock["last"] = time.monotonic()


def _space_safety(wait: bool = True) -> None:
    """Wait (when ``wait``) until :data:`SAFETY_SPACING` has passed since this process's last
    safety put; then note this put."""
    with _safety_clock_lock:
        left = _safety_clock["last"] + SAFETY_SPACING - time.monotonic()
        if wait and left > 0:
            time.sleep(left)  # product pacing against their rate limit, not test synchronisation
        _safety_clock["last"] = time.monotonic()


SAFETY_REPUT_WINDOW = 2.0
"""s: an e-stop issued this soon after the safety session opened is put a second time to live
peers that have not acked it ``SAFETY_REPUT_GRACE`` s after the peer query was answered (see
``emergency_stop``)."""
STOP_DEFER = 0.02
"""s: the longest an issuer whose known peers all ack e-stops waits for their acks before it
broadcasts ``stop`` (see ``emergency_stop``): 20 ms, twice the e-stop goal of issue 12 (p99
issue→ack 10 ms), so a peer that only knows the command path is stopped at most this much
later than the others."""
SAFETY_REPUT_GRACE = 0.02
"""s: how long acks are waited for before that second put (acks arrive in 1-3 ms here)."""


class _AckCollector:
    """The answers gathered for one e-stop or resume, by responder (an e-stop's ``stop``
    answers under ``stop:{responder}``), with their arrival times (monotonic s).

    One thread waits on it, and is woken only when what it waits for has happened, not at
    every answer: 13 robots ack an e-stop within a few milliseconds, and waking the issuer's
    thread for each one took the GIL from the Zenoh threads delivering the next acks
    (bench/bench_mesh.py estop; docs/benchmarks.md).
    """

    def __init__(self, expected: set[str]) -> None:
        self.expected = expected
        self.acks: dict[str, tuple[Any, float]] = {}
        self.heard: set[str] = set()  # responders that acked or answered ``stop``
        self.cond = threading.Condition()
        self._until: Callable[[], bool] | None = None  # the waiter's condition

    def add(self, responder: str, ack: Any, at: float | None = None) -> None:
        with self.cond:
            self.acks.setdefault(responder, (ack, time.monotonic() if at is None else at))
            self.heard.add(responder.removeprefix("stop:"))
            if self._until is not None and self._until():
                self.cond.notify_all()

    def snapshot(self) -> dict[str, tuple[Any, float]]:
        with self.cond:
            return dict(self.acks)

    def _wait(self, until: Callable[[], bool], timeout: float) -> None:
        """Wait up to ``timeout`` s for ``until()`` (checked under the lock at each answer)."""
        with self.cond:
            if until() or timeout <= 0:
                return
            self._until = until
            try:
                self.cond.wait(timeout)
            finally:
                self._until = None

    def wait_change(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for one more answer."""
        with self.cond:
            n = len(self.acks)
        self._wait(lambda: len(self.acks) != n, timeout)

    def wait_heard(self, expected: set[str] | None, timeout: float) -> None:
        """Wait up to ``timeout`` s until every peer in ``expected`` has acked or answered
        ``stop`` (None: the whole ``timeout``)."""
        self._wait((lambda: False) if expected is None else (lambda: expected <= self.heard), timeout)

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` s until every peer in :attr:`expected` has answered."""
        deadline = time.monotonic() + timeout
        while not self.expected.issubset(self.snapshot()) and (left := deadline - time.monotonic()) > 0:
            self._wait(lambda: self.expected.issubset(self.acks), left)


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
        s, the acks and the ``stop`` answers of every peer it knows of (the peer table, the
        liveliness tokens and presence answers of a peer query made right after the e-stop
        went out, and peers whose presence arrives meanwhile), and returns as soon as each has
        answered one way or the other. When that query is answered, the same e-stop is put once
        more if a live peer has not acked yet and the safety session opened less than
        ``SAFETY_REPUT_WINDOW`` s ago (it may have put it before its link to that peer was up).

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
        env = self.core.issue_estop(reason, source_zid=str(self._estop_pub.id.zid))
        collector = _AckCollector(set())
        self._estop_waits[env.seq] = collector
        try:
            # SourceInfo with the zid the body names: strands-robots 0.5.3 then takes estop_id
            # as its lockout epoch (both or neither, else it refuses the envelope).
            payload, source = env.to_json(), self._zenoh.SourceInfo(self._estop_pub.id, 1)
            try:
                self._estop_pub.put(payload, source_info=source)
                _safety_sent()
            finally:  # the record follows the e-stop out, and is written even if the put failed
                self.core.audit_issue(env, sorted(self._others_known()))

            def on_stop_answer(resp: Any) -> None:
                collector.add(f"stop:{resp.responder_id}", resp)

            def broadcast_stop() -> None:
                self._send(None, {"action": "stop"}, max(timeout, 0.05), on_response=on_stop_answer,
                           expected=frozenset())

            # ``stop`` on the command path is for peers that do not ack e-stops (strands-robots
            # peers, or any this process has not heard of yet). When every peer known is one of
            # ours and the table is complete, it waits until they have acked (at most
            # STOP_DEFER s): sent at once, every robot handled it, and the issuer every answer,
            # in the same milliseconds as the e-stop and its ack (bench/bench_mesh.py estop).
            young = time.monotonic() - self._started < self.config.peer_timeout
            if young or any(self.table.is_strands_robots(p) for p in self.table.present_ids()):
                broadcast_stop()
                stop_due = None
            else:
                stop_due = t0 + STOP_DEFER
            # Who is there, asked of the mesh after the e-stop went out (one round trip, ms):
            # every peer with a liveliness token or answering a presence query is expected. Only
            # a process that has just joined (the CLI) needs it: one up for a peer timeout has
            # heard every peer's presence, and its liveliness subscriber holds every token. The
            # query costs every peer a Python callback while it handles the e-stop (~0.4 ms of
            # CPU each, a third of its e-stop work: bench/bench_mesh.py estop).
            if young:
                try:
                    self.refresh_peers(max(timeout, 0.05))
                except Exception as exc:  # a failed query never holds up the e-stop report
                    log.warning("%s: peer query after e-stop failed: %s", self.peer_id, exc)
            # Put it once more if a live peer has not acked yet and the safety session has just
            # opened (the CLI): it may have put it before its link to that peer was up
            # (session.SAFETY_OPEN_WAIT_MS). Receivers latch a repeat as the same e-stop.
            if time.monotonic() - self._safety_opened < SAFETY_REPUT_WINDOW:
                live = self._others_known()
                until = time.monotonic() + SAFETY_REPUT_GRACE
                while live - set(collector.snapshot()) and (left := until - time.monotonic()) > 0:
                    collector.wait_change(left)
                if live - set(collector.snapshot()):
                    self._estop_pub.put(payload, source_info=source)
            deadline = t0 + timeout
            settled_at = t0 + min(max(settle, DISCOVERY_FLOOR), timeout)
            while True:
                expected = self._others_known()
                with collector.cond:
                    done = expected <= collector.heard
                now = time.monotonic()
                if stop_due is not None and (done or now >= stop_due):
                    broadcast_stop()
                    stop_due = None
                if now >= deadline or (done and now >= settled_at):
                    break
                # Woken when every peer known now has answered, else at the next look for
                # newly known peers (DISCOVERY_FLOOR), the deferred stop, or the deadline.
                wake = min(deadline, now + DISCOVERY_FLOOR, *(() if stop_due is None else (stop_due,)))
                collector.wait_heard(None if done else expected, (min(wake, settled_at) if done else wake) - now)
            if stop_due is not None:  # the deadline came first: still sent, never skipped
                broadcast_stop()
        finally:
            self._estop_waits.pop(env.seq, None)
        report = EStopReport(seq=env.seq, self_halted=self.core.robot is not None, elapsed=time.monotonic() - t0,
                             issued_at=env.t)
        acks = {k: v for k, v in collector.snapshot().items() if not k.startswith("stop:")}
        for peer, (ack, at) in acks.items():
            if ack.halted:
                report.stopped[peer] = at - t0
                if math.isfinite(ack.t):
                    report.halted_at[peer] = ack.t
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

    def _others_known(self) -> set[str]:
        """Every other peer this one knows of: heard (fresh presence) or holding a liveliness
        token. The peers an e-stop or a resume for all expects an answer from."""
        return (self.table.present_ids() | self.table.tokens()) - {self.peer_id}

    def _on_estop(self, sample: Any) -> None:
        self.core.halt()  # halt before anything else, even before parsing
        received = time.time()
        payload = sample.payload.to_bytes()
        if self.raw_estop_hook is not None:  # a bridge carries the halt into ROS, still unparsed
            try:
                self.raw_estop_hook(payload)
            except Exception:
                log.exception("%s: raw e-stop hook failed", self.peer_id)
        self._safety_received("estop", payload, received)

    def _safety_received(self, kind: str, payload: bytes, received: float) -> None:
        """Parse, latch, audit and ack one e-stop or resume, on the safety session's callback
        thread itself: handing it to a thread of ours cost a wake-up and a GIL hand-over per
        message, the e-stop tail under a flood (bench/bench_mesh.py estop). One at a time, in
        arrival order, so a resume never overtakes the e-stop that came after it."""
        with self._safety_lock:
            try:
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
        self._safety_put(answer.key, answer.data)

    def put_safety_from(self, key: str, payload: bytes) -> None:
        """Put bytes a robot behind this bridge produced (its e-stop or resume ack) on the
        safety session; the caller has checked the key (see the bridge)."""
        self._require()
        self._safety_put(key, payload)

    def _safety_put(self, key: str, payload: bytes) -> None:
        z = self._safety if self._safety is not None else self._open_safety()
        z.put(key, payload, congestion_control=self._zenoh.CongestionControl.BLOCK,
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
        at = time.monotonic()  # arrival, before the decode: the report's latency is the wire's
        try:
            ack = decode(EStopAck, bytes(sample.payload.to_bytes()), 64 * 1024)
        except ContractError as exc:
            log.warning("%s: bad e-stop ack: %s", self.peer_id, exc)
            return
        collector = self._estop_waits.get(ack.seq)
        if collector is not None:
            collector.add(ack.responder_id, ack, at)

    def resume(self, targets: list[str] | None = None, operator: str = "", timeout: float = 1.0, *,
               epoch: str | None = None, scheme: str = "auto") -> dict[str, dict[str, Any]]:
        """Ask peers to clear their e-stop lockout with a signed resume (docs/safety.md).

        Two signatures: ours, an HMAC envelope with the shared resume key (``hmac``), and
        strands-robots 0.5.3's Ed25519 assertion for one lockout epoch (``ed25519``; the
        signing key from ``resume_signing_key`` or env ``STRANDS_MESH_RESUME_PRIVATE_KEY_FILE``,
        :mod:`~strands_mesh_ros.robot.resume_ed25519`). ``auto``: the assertion when a signing
        key is configured, then, when a resume key is configured too, the HMAC envelope to the
        targets that did not accept the assertion; the HMAC envelope alone otherwise.

        Args:
            targets: peer ids to resume; None for every peer.
            operator: who resumes (audited by receivers).
            timeout: how long to gather answers (s), per envelope.
            epoch: the lockout epoch (an ``estop_id``) the assertion clears; default the epoch
                of the latest e-stop this peer issued or received.
            scheme: ``auto``, ``hmac`` or ``ed25519``.

        Returns:
            ``{peer: {"accepted": bool, "detail": str}}`` for peers that answered (our resume
            ack, or a strands-robots peer's ``remote_resume_applied`` safety event), plus
            ``{"accepted": False, "detail": "no answer"}`` for silent targets.

        Raises:
            MeshError: no key for the scheme, no epoch for an assertion, or a bad signing key.
        """
        self._require()
        if scheme not in ("auto", "hmac", "ed25519"):
            raise MeshError(f"unknown resume scheme {scheme!r}: auto, hmac or ed25519")
        signing = self._signing_key() if scheme in ("auto", "ed25519") else None
        if scheme == "ed25519" or (scheme == "auto" and signing is not None):
            if signing is None:
                raise MeshError(f"no Ed25519 resume signing key: set {ed.PRIVATE_KEY_FILE_ENV} (docs/safety.md)")
            out = self._resume_assertion(signing, targets, epoch, timeout)
            rest = [p for p, a in out.items() if not a["accepted"]]
            if scheme == "ed25519" or self._resume_key is None or not rest:
                return out
            for p, a in self._resume_hmac(rest, operator, timeout).items():
                if a["accepted"] or out.get(p, {}).get("detail") == "no answer":
                    out[p] = a
            return out
        return self._resume_hmac(targets, operator, timeout)

    def _signing_key(self) -> Any:
        if self._resume_signing_key is None:
            try:
                self._resume_signing_key = ed.load_signing_key()
            except ed.ResumeSigningKeyError as exc:
                raise MeshError(str(exc)) from None
        return self._resume_signing_key

    def _resume_hmac(self, targets: list[str] | None, operator: str, timeout: float) -> dict[str, dict[str, Any]]:
        if self._resume_key is None:
            raise MeshError("no resume key: set STRANDS_MESH_RESUME_KEY (or _FILE) to the fleet's resume key")
        # pace only when a strands-robots peer may receive it
        _space_safety(any(i.strands_robots for i in self.table.snapshot().values()))
        seq = time.time_ns()
        env = sign_resume(Resume(peer_id=self.peer_id, t=time.time(), seq=seq, operator=operator,
                                 targets=targets), self._resume_key)
        expected = set(targets) if targets is not None else self._others_known()
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

    def _resume_assertion(self, key: Any, targets: list[str] | None, epoch: str | None,
                          timeout: float) -> dict[str, dict[str, Any]]:
        """Sign 0.5.3's assertion and publish their envelope with a SourceInfo whose zid is the
        body's ``source_zid``; gather our peers' acks and their peers' safety events."""
        core = self.core
        epoch = epoch or core.last_epoch
        if epoch is None:
            raise MeshError("no lockout epoch to resume: this peer saw no e-stop with an estop_id; "
                            "pass the epoch (`strands-mesh resume --epoch`, or ask a robot's status)")
        if targets is None:
            names = self._others_known()
            if core.robot is not None:
                names.add(self.peer_id)
        else:
            names = set(targets)
        if not names:
            raise MeshError("no peers to resume")
        try:
            assertion = ed.sign_assertion(key, epoch, sorted(names))
        except ValueError as exc:
            raise MeshError(f"cannot sign the resume: {exc}") from None
        expected = names - {self.peer_id}
        out: dict[str, dict[str, Any]] = {}
        if self.peer_id in names:
            ok, detail = core.check_assertion(assertion, time.time())
            out[self.peer_id] = {"accepted": ok, "detail": "" if detail == "resumed" else detail}
        collector = _AckCollector(expected)
        elapsed = time.monotonic() - core.last_epoch_at if epoch == core.last_epoch else 0.0

        def on_event(key_: str, ev: Any) -> None:  # a strands-robots peer's safety event
            if not isinstance(ev, dict) or ev.get("peer_id") not in expected:
                return
            payload = ev.get("payload") if isinstance(ev.get("payload"), dict) else {}
            kind = ev.get("type")
            if kind in ("remote_resume_applied", "remote_resume_redundant") and (
                    payload.get("issuer") != self.peer_id or payload.get("issuer_t") != t):
                return
            verdict = {"remote_resume_applied": (True, ""),
                       "remote_resume_redundant": (True, "not locked out: nothing to clear"),
                       "resume_denied": (False, "refused (their reason is in their audit log)")}.get(kind)
            if verdict is not None:
                collector.add(ev["peer_id"], {"accepted": verdict[0], "detail": verdict[1]})

        t: float | None = None
        seq = -1
        events = self.subscribe(f"{self.keys.prefix}/*/safety/event", on_event)
        try:
            _space_safety()
            t = time.time()
            seq = int(t * 1e9)  # what our receivers name in their ack (ed.parse_envelope)
            self._resume_waits[seq] = collector
            pub = self._resume_pub
            data = ed.make_envelope(self.peer_id, assertion, elapsed, source_zid=str(pub.id.zid), t=t)
            pub.put(data, source_info=self._zenoh.SourceInfo(pub.id, next(self._source_sn)))
            self.audit.write("resume_issued", time.time(), scheme="ed25519", seq=seq, epoch=epoch,
                             nonce=assertion["nonce"], targets=assertion["targets"])
            collector.wait(timeout)
        finally:
            self._resume_waits.pop(seq, None)
            self.unsubscribe(events)
        for p, (a, _) in collector.snapshot().items():
            out[p] = {"accepted": bool(a.get("accepted")), "detail": a.get("detail", "")}
        for p in expected - set(out):
            out[p] = {"accepted": False, "detail": "no answer"}
        return out

    def lockout_epochs(self, targets: list[str] | None = None, timeout: float = 1.0) -> dict[str, str | None]:
        """Ask peers (``targets``, default every peer) for ``status`` and return
        ``{peer: its lockout epoch}``; None for a peer that is not locked out, names no epoch
        (a strands-robots peer's ``status`` does not) or did not answer."""
        res = self.broadcast({"action": "status"}, timeout=timeout)
        names = set(targets) if targets is not None else (set(res.responses) | set(res.missing))
        out: dict[str, str | None] = {}
        for p in sorted(names - {self.peer_id}):
            r = res.responses.get(p)
            result = r.result if r is not None and isinstance(r.result, dict) else {}
            lock = result.get("lockout") if isinstance(result.get("lockout"), dict) else {}
            epoch = lock.get("epoch")
            out[p] = epoch if isinstance(epoch, str) else None
        return out

    def _on_resume(self, sample: Any) -> None:
        self._safety_received("resume", sample.payload.to_bytes(), time.time())

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
