"""The robot side of the strands mesh contract, once, for every transport.

:class:`PeerCore` is what a peer *is* on the mesh, with no transport: its presence, its
command intake (one decoder, one size and depth limit, dedup by ``(sender, turn_id)``,
lockout, dispatch, exactly one answer per command), its e-stop receipt (halt first, then
parse, latch, audit, ack) and its resume verification, with one audit line per event.

Two transports drive it and do nothing else of the contract themselves:

* :class:`~strands_mesh_ros.mesh.mesh.Mesh` (Zenoh): samples in, :class:`Answer` bytes out
  on the keys the core names;
* :class:`~strands_mesh_ros.ros.robot_node.RobotNode` (rclpy): the same bytes carried in ROS
  messages; the bridge relays them between ROS and Zenoh verbatim and re-implements nothing.

So a robot behind the bridge and a robot on the mesh run the same code for every guarantee.
Pure Python: imports neither zenoh nor rclpy.

The e-stop handled here is the contract's supplementary software stop, NOT the hardwired
emergency stop of IEC 60204-1 / ISO 13850 (docs/safety.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from ..contract.keys import InvalidPeerId, KeySpace, check_peer_id
from ..contract.payloads import (
    MAX_COMMAND_BYTES,
    CommandEnvelope,
    ContractError,
    EStop,
    Presence,
    Resume,
    Response,
    State,
    decode,
    estop_ack_json,
    loads,
    make_presence,
    make_response,
)
from . import resume_ed25519 as ed
from .dispatcher import Dispatcher
from .resume_throttle import ResumeThrottle
from .safety import AuditLog, EStopGuard, ResumeGuard, halt_without_latch
from .runtime import Robot
from .watchdog import LinkWatchdog, WatchdogConfig

log = logging.getLogger(__name__)

DEDUP_WINDOW = 10_000
"""How many recent (sender, turn_id) pairs a peer remembers so a repeat never runs twice."""

BEAT_HANDOFF = 0.05
"""s: a beat handed to its transport later than this after it was built is not counted as heard
(:meth:`PeerCore.beat`). Why this value: a presence query's answer has 0.2 s in all to reach its
caller (``mesh/session.py`` ``CONFIRM_TIMEOUT``), travel included; a running process takes
microseconds between the two, and a stall of a quarter of that deadline (the mesh's housekeeping
tick, ``mesh/session.py`` ``TICK``) may already have cost the answer its deadline."""

DEDUP_ANSWER_BYTES = 2048
"""Largest answer (JSON bytes) kept to re-send to a repeated turn_id; a larger one (``features``
with its robot_description, say) is remembered as a short error instead. Whole Response objects
for DEDUP_WINDOW turns held ~2-8 KB each per peer: memory grew ~2 MB/min per 5 robots under a
modest load until the window filled (bench/soak.py)."""

SAFETY_MAX_BYTES = 64 * 1024
"""Largest e-stop / resume envelope parsed (a larger one still halts: it is an e-stop)."""

ROBOTLESS_STOP = {"ok": True, "stopped": []}
"""What a peer without actuators answers to ``stop`` (strands-robots 0.5.3 counts any other
answer, an error included, as "did NOT stop"; CONTRACT.md, stop accounting)."""


@dataclass(frozen=True)
class Answer:
    """What a transport sends for one received message.

    Attributes:
        key: the mesh key to put ``data`` on (a response or ack key); None when nothing is
            owed on the mesh (a repeat still running, an unreadable command without a sender).
        data: the JSON bytes to put there.
        response: the contract Response (command answers only), for typed ROS fields.
        sender: the peer the answer goes to (command answers and acks).
    """

    key: str | None
    data: bytes | None = None
    response: Response | None = None
    sender: str | None = None


NOTHING = Answer(None)


class NullAudit:
    """An audit log that records nothing: for a bridge's proxy of a ROS robot, whose own node
    keeps that robot's audit (one line per event per robot, never two)."""

    path = None

    def write(self, event: str, t: float, *, sync: bool = True, **fields: Any) -> None:
        """Record nothing."""

    def close(self) -> None:
        """Nothing to close."""


OVERRIDE_CODE_RETIRED = ("override codes are retired: a plain override code (the strands-robots 2026-08 "
                         "resume) is never accepted; resume with the signed HMAC resume or an Ed25519 assertion "
                         "(docs/safety.md)")
"""The answer to a resume that carries ``override_code``: a shared code any subscriber of the
command key could read and replay; strands-robots 0.5.3 retired it too (``core.py`` ~3250)."""


class PeerCore:
    """One peer's side of the contract (see the module docstring).

    Args:
        peer_id: the peer's id; a robot's id (one robot, one id).
        robot: the :class:`Robot` behind this peer; None for agents, bridges, dashboards.
        keys: the fleet's key space (prefix).
        peer_type, robot_type: advertised in presence (default from the driver).
        resume_key: the shared resume key (None: every remote HMAC resume is refused).
        resume_public_keys: Ed25519 keys trusted for strands-robots 0.5.3 resume assertions
            (default from env ``STRANDS_MESH_RESUME_PUBLIC_KEY``; none: every assertion is
            refused); see :mod:`.resume_ed25519`.
        audit: the peer's audit log (one line per event).
        peers: returns the ``peers`` action's answer (transports that see the mesh).
        ros, via: presence fields for robots that live in ROS / peers relayed by a bridge.
        presence_extra: returns extra presence fields at each beat.
        peer_timeout: s; a longer gap between :meth:`tick` calls means this process did not
            run (frozen), and commands stamped meanwhile are refused (see :meth:`tick`).
        watchdog: the link-loss watchdog's operators and timeout (None: off, the default); the
            transport feeds :meth:`watchdog_heard` and calls :meth:`watchdog_check`.
        clock: monotonic seconds for the frozen-process rule (:meth:`tick`, :meth:`beat`);
            tests pass a clock of their own.

    Raises:
        InvalidPeerId: a bad ``peer_id``.
        ValueError: the robot's id differs from ``peer_id``.
    """

    def __init__(self, peer_id: str, robot: Robot | None, keys: KeySpace, *, audit: AuditLog,
                 peer_type: str | None = None, robot_type: str | None = None,
                 resume_key: bytes | None = None, resume_public_keys: list[Any] | None = None,
                 peers: Callable[[], Any] = lambda: [],
                 ros: dict[str, str] | None = None, via: str | None = None,
                 presence_extra: Callable[[], dict[str, Any]] | None = None,
                 peer_timeout: float = 1.5, watchdog: WatchdogConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.peer_id = check_peer_id(peer_id)
        if robot is not None and robot.robot_id != peer_id:
            raise ValueError(f"robot id {robot.robot_id!r} differs from peer id {peer_id!r}: one robot, one id")
        self.robot = robot
        self.keys = keys
        self.audit = audit
        self.peer_type = peer_type or (robot.driver.peer_type if robot else "agent")
        self.robot_type = robot_type or (robot.driver.robot_type if robot else self.peer_type)
        self.resume_key = resume_key
        self.ros, self.via = ros, via
        self._presence_extra = presence_extra
        self._guard = ResumeGuard(resume_key)
        self.resume_throttle = ResumeThrottle()
        self._assertions = ed.AssertionGuard(ed.load_public_keys() if resume_public_keys is None
                                             else resume_public_keys)
        self.last_epoch: str | None = None  # estop_id of the latest e-stop issued or received here
        self.last_epoch_at = 0.0  # when it was issued or received (monotonic s)
        self.estop_guard = EStopGuard()
        self._issued: set[int] = set()  # seqs of e-stops this peer issued (skip them on receipt)
        self._seen: OrderedDict[tuple[str, str], bytes | None] = OrderedDict()  # answer JSON, once sent
        self._seen_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._clock = clock
        self._last_tick = clock()
        self._last_presence: float | None = None  # monotonic s the last beat counted was built
        self._peer_timeout = peer_timeout
        self.thawed_at = 0.0  # wall time this peer last came back from being unresponsive
        self._thaw_gap = 0.0
        self.stats = {"commands": 0, "rejected": 0, "duplicates": 0}
        self.watchdog = LinkWatchdog(watchdog) if watchdog is not None and robot is not None else None
        self.dispatcher = Dispatcher(self.peer_id, robot, peers=peers, state=self._state_answer,
                                     estop=self.estop_command, resume=self.resume_command, peer_type=self.peer_type)

    # -- presence and state -------------------------------------------------------------

    def presence(self) -> Presence:
        """This peer's presence now (CONTRACT.md "Payloads"). To send it, use :meth:`beat`."""
        robot = self.robot
        fields: dict[str, Any] = dict(
            robot_type=self.robot_type, peer_type=self.peer_type,
            skills=robot.describe_skills() if robot else None, ros=self.ros, via=self.via,
            task_status=robot.task["status"] if robot else None,
            locked_out=robot.locked_out if robot else None, lockout=robot.lockout if robot else None)
        if self._presence_extra is not None:
            fields.update(self._presence_extra())
        return make_presence(self.peer_id, **fields)

    def beat(self, send: Callable[[Presence], None]) -> Presence:
        """Build this peer's presence and ``send`` it now (a heartbeat, or the answer to a
        presence query); returns what was sent.

        The beat counts as heard by peers (for :meth:`tick`) from the time it was built, and only
        if ``send`` returned within :data:`BEAT_HANDOFF` s of that. A process that stalls between
        building a beat and sending it (SIGSTOP, starvation) sent nothing its peers could hear,
        and they may have told callers ``peer lost`` meanwhile, counting from the beat before.
        So a beat found stale before it is sent is built again after :meth:`tick` has noted the
        silence (commands stamped before are refused): the note comes before anything goes out,
        so a caller that hears this beat and sends a command at once is never refused. A stall
        inside ``send`` is noted after it. Without this rule, a robot frozen right after
        building a beat and thawed once its caller had said ``peer lost`` counted a silence
        shorter than the peer timeout and ran the command sent meanwhile (test_faults.py
        freezes a robot at that point; found by a busy CI run).

        Raises:
            whatever ``send`` raises (the beat is then not counted).
        """
        for _ in range(2):  # a second stall in a row is rare; its beat is then sent as it is
            self.tick()  # a silence that ends here is noted before this beat ends it
            built = self._clock()
            pr = self.presence()
            if self._clock() - built <= BEAT_HANDOFF:
                break
        send(pr)
        if self._clock() - built <= BEAT_HANDOFF:
            with self._tick_lock:
                if self._last_presence is None or built > self._last_presence:
                    self._last_presence = built
        else:
            self.tick()
        return pr

    def state(self, seq: int | None = None) -> State | None:
        """This robot's contract State now (None without a robot). SI units (REP-103).

        Raises:
            DriverError: the driver cannot observe (e.g. a ROS robot not heard yet).
        """
        if self.robot is None:
            return None
        obs = self.robot.driver.observe()
        return State(peer_id=self.peer_id, t=obs.t, joints=obs.joints_dict(), task=self.robot.task,
                     sim_time=obs.sim_time, seq=seq,
                     base_pose=dict(zip(("x", "y", "z", "yaw"), obs.base_pose)) if obs.base_pose else None)

    def _state_answer(self) -> dict[str, Any] | None:
        st = self.state()
        return st.model_dump(exclude_none=True) if st else None

    def tick(self) -> None:
        """Note that this process runs; call it at least every ``peer_timeout / 3`` s.

        A gap longer than ``peer_timeout``, or a silence that long since the last beat counted
        (:meth:`beat`), means no presence went out meanwhile (SIGSTOP, a starved process), so
        every peer dropped this one and told its callers ``peer lost``;
        commands stamped before now are then refused rather than run behind their callers'
        backs (a retry must never run twice).
        """
        now = self._clock()
        with self._tick_lock:
            gap, self._last_tick = now - self._last_tick, now
            # Peers judge by the age of the last *presence* (2 Hz), not by ticks (20 Hz): a process
            # frozen 0.45 s after a beat has a tick gap 0.45 s shorter than the silence its peers
            # saw, and a command queued meanwhile ran although its caller had been told 'peer lost'.
            silent = now - self._last_presence if self._last_presence is not None else 0.0
            gap = max(gap, silent)
            if gap <= self._peer_timeout:
                return
            self._last_presence = now  # one report per silence
            self.thawed_at, self._thaw_gap = time.time(), gap
        log.warning("%s: unresponsive for %.1f s; commands sent meanwhile will be refused", self.peer_id, gap)
        self.audit.write("unresponsive", time.time(), sync=False, seconds=round(gap, 3))

    # -- commands -----------------------------------------------------------------------

    def handle_command(self, payload: bytes, respond: Callable[[Answer], None], *, broadcast: bool = False) -> None:
        """Take one command envelope (raw bytes from ``P/{id}/cmd`` or ``P/broadcast``).

        ``respond`` is called exactly once, now or when the call ends, with the answer to
        send (or :data:`NOTHING` when none is owed). Never raises for bad input: an envelope
        that is malformed, too big or too deep but names its sender and turn gets an error
        answer; one that names neither is audited as rejected.
        """
        self.stats["commands"] += 1
        self.tick()  # before anything queued during a freeze is run
        try:
            env = decode(CommandEnvelope, payload, MAX_COMMAND_BYTES)
        except ContractError as exc:
            self.stats["rejected"] += 1
            answer = NOTHING
            if exc.sender_id and exc.turn_id:
                try:
                    answer = self._answer(exc.sender_id, None, make_response(self.peer_id, exc.turn_id, error=str(exc)))
                except (InvalidPeerId, ValueError):
                    answer = NOTHING
            if answer is NOTHING:  # nobody to answer: record it where operators look
                log.warning("%s: rejected command: %s", self.peer_id, exc)
            self.audit.write("rejected_command", time.time(), sync=False, sender=exc.sender_id,
                             turn_id=exc.turn_id, error=str(exc), size=len(payload))
            respond(answer)
            return
        if broadcast and env.sender_id == self.peer_id:
            respond(NOTHING)  # our own broadcast
            return
        if self.thawed_at and env.timestamp < self.thawed_at:
            respond(self._answer(env.sender_id, env.reply_to, make_response(
                self.peer_id, env.turn_id, status="refused",
                error=f"sent while {self.peer_id} was unresponsive ({self._thaw_gap:.1f} s, longer than the "
                      f"peer timeout): its caller was told 'peer lost'; not run")))
            return
        dedup = (env.sender_id, env.turn_id)
        with self._seen_lock:
            repeat = dedup in self._seen
            if repeat:
                self.stats["duplicates"] += 1
                cached = self._seen[dedup]
            else:
                self._seen[dedup] = None
                if len(self._seen) > DEDUP_WINDOW:
                    self._seen.popitem(last=False)
        if repeat:
            # A repeated turn_id never runs twice: re-send the answer, or let the running
            # call's answer serve both.
            respond(Answer(self._answer_key(env.sender_id, env.reply_to, env.turn_id), cached, None, env.sender_id)
                    if cached is not None else NOTHING)
            return
        self.audit.write("command", time.time(), sync=False, sender=env.sender_id, turn_id=env.turn_id,
                         action=env.command.get("action"))
        self.dispatcher.dispatch(env, lambda resp: respond(self._finish(env, resp)))

    def _finish(self, env: CommandEnvelope, resp: Response) -> Answer:
        try:
            data = resp.to_json()
        except Exception as exc:  # a result JSON cannot hold (pydantic raises several kinds): still answer
            resp = make_response(self.peer_id, env.turn_id, error=f"result is not JSON-serialisable: {exc}")
            data = resp.to_json()
        with self._seen_lock:
            if (env.sender_id, env.turn_id) in self._seen:
                self._seen[(env.sender_id, env.turn_id)] = data if len(data) <= DEDUP_ANSWER_BYTES else (
                    make_response(self.peer_id, env.turn_id, error=f"repeated turn_id {env.turn_id}: already run; "
                                                                   f"its {len(data)}-byte answer is not kept").to_json())
        return Answer(self._answer_key(env.sender_id, env.reply_to, env.turn_id, checked=True), data, resp,
                      env.sender_id)

    def error_answer(self, sender: str, turn_id: str, error: str) -> Answer:
        """An error answer to a command the transport refuses before the core sees it (say,
        one on this robot's topic addressed to another robot).

        Raises:
            InvalidPeerId, ValueError: ``sender`` or ``turn_id`` cannot name a response key.
        """
        return self._answer(sender, None, make_response(self.peer_id, turn_id, error=error))

    def _answer(self, sender: str, reply_to: str | None, resp: Response) -> Answer:
        return Answer(self._answer_key(sender, reply_to, resp.turn_id), resp.to_json(), resp, sender)

    def _answer_key(self, sender: str, reply_to: str | None, turn_id: str, checked: bool = False) -> str:
        """The key an answer goes on. ``checked``: ``sender`` and ``turn_id`` come from an envelope
        that :func:`decode` validated, so the key is built without checking them again (the
        command path's hot loop, bench/bench_mesh.py rtt)."""
        key = self.keys.response(sender, self.peer_id, turn_id, checked=checked)
        if reply_to:
            if answer_key_allowed(self.keys, reply_to, sender, self.peer_id):
                return reply_to
            log.warning("%s: refused reply_to %r of %s; answered on %s", self.peer_id, reply_to[:200], sender, key)
            self.audit.write("reply_to_refused", time.time(), sync=False, sender=sender, turn_id=turn_id,
                             reply_to=reply_to[:200])
        return key

    # -- e-stop -------------------------------------------------------------------------

    def halt(self) -> None:
        """Halt the actuators, nothing else: the first thing done for anything on the e-stop
        key, before it is read (fail-safe)."""
        if self.robot is not None:
            self.robot.halt_now()

    def issue_estop(self, reason: str, source_zid: str | None = None) -> EStop:
        """Begin an e-stop issued by this peer: halt its own robot first, latch.

        Args:
            reason: audited by every receiver.
            source_zid: the Zenoh id the transport will attach as SourceInfo (strands-robots
                0.5.3 requires body and SourceInfo to agree), or None for neither.

        Returns the envelope for the transport to publish: ``seq`` = issue time (ns), a fresh
        ``estop_id`` (32 lowercase hex) that is the lockout epoch here and at every receiver.
        The transport records it with :meth:`audit_issue` once it is out.
        """
        estop_id = uuid.uuid4().hex
        self._note_epoch(estop_id)
        if self.robot is not None:
            self.robot.emergency_stop(self.peer_id, reason, epoch=estop_id)
        seq = time.time_ns()  # grows across restarts, unlike a counter
        self._issued.add(seq)
        return EStop(peer_id=self.peer_id, t=time.time(), seq=seq, reason=reason, estop_id=estop_id,
                     source_zid=source_zid)

    def audit_issue(self, env: EStop, expected: list[str]) -> None:
        """Record (synchronously) the e-stop :meth:`issue_estop` began, with ``expected``, the
        peers known when it went out. Called after the put, as a receiver audits after its
        halt: written before it, the line held every e-stop back (a stamped probe, 10 robots, a
        loaded machine: issue to put 0.30-1.61 ms with it first, 0.12-0.23 ms without)."""
        self.audit.write("estop_issued", env.t, seq=env.seq, estop_id=env.estop_id, reason=env.reason,
                         self_halted=self.robot is not None, expected=expected)

    def estop_received(self, payload: bytes, received: float) -> tuple[Answer, EStop | None]:
        """Handle an e-stop sample after :meth:`halt`: parse, latch, audit, and say the ack.

        Any payload latches unless the guard proves it a replay superseded by a resume
        (docs/security.md); an unreadable one latches with issuer ``unknown`` and has nobody
        to ack. Returns ``(ack, envelope)``: the ack to put (:data:`NOTHING` when none) and
        the parsed envelope (None when unreadable or this peer's own).
        """
        try:
            env = decode(EStop, payload, SAFETY_MAX_BYTES)
        except ContractError as exc:
            if self.robot is not None:  # already halted; an unreadable e-stop is still an e-stop
                self.robot.emergency_stop("unknown", f"malformed e-stop: {exc}")
            self.audit.write("estop_malformed", received, error=str(exc), halted=self.robot is not None)
            return NOTHING, None
        verdict = self.estop_guard.check(env, received)  # never refuses a stop; see docs/security.md
        if env.estop_id is not None and verdict.latch:
            self._note_epoch(env.estop_id)
        if verdict.replay is not None:
            self.audit.write("estop_replay", received, issuer=env.peer_id, seq=env.seq, detail=verdict.replay,
                             latched=verdict.latch)
        if env.peer_id == self.peer_id and verdict.latch and (
                env.seq in self._issued or self.robot is None or self.robot.locked_out):
            return NOTHING, None  # our own; halted and latched by issue_estop(), audited by audit_issue()
        halted = False
        if self.robot is not None:
            if verdict.latch:
                self.robot.emergency_stop(env.peer_id, env.reason, epoch=env.estop_id)
            else:  # halted by halt(); an authorised resume came after this envelope: keep it
                halt_without_latch(self.robot, f"replayed e-stop from {env.peer_id}")
            halted = True
        self.audit.write("estop_received", received, issuer=env.peer_id, seq=env.seq, estop_id=env.estop_id,
                         reason=env.reason, halted=halted)
        return self.estop_ack(env, halted, verdict.replay or ("" if halted else "no actuators on this peer")), env

    def estop_ack(self, env: EStop, halted: bool, detail: str = "", responder: str | None = None) -> Answer:
        """The ack of ``env`` by this peer (or by ``responder``, a robot this peer speaks for)."""
        responder = responder or self.peer_id
        key = self.keys.estop_ack(env.peer_id, responder)  # checks both ids before the bytes are built
        return Answer(key, estop_ack_json(env.peer_id, responder, env.seq, time.time(), halted, detail), None,
                      env.peer_id)

    def estop_command(self, issuer: str, reason: str) -> dict[str, Any]:
        """``emergency_stop`` over the command path: halt, latch, audit."""
        halted = False
        if self.robot is not None:
            self.robot.emergency_stop(issuer, reason)
            halted = True
        self.audit.write("estop_command", time.time(), issuer=issuer, reason=reason, halted=halted)
        return {"halted": halted}

    def _note_epoch(self, epoch: str) -> None:
        self.last_epoch, self.last_epoch_at = epoch, time.monotonic()

    # -- link-loss watchdog (robot/watchdog.py) -------------------------------------------

    def watchdog_heard(self, operator: str, at: float) -> None:
        """A heartbeat (presence) of ``operator`` received at monotonic ``at`` s."""
        if self.watchdog is not None and self.watchdog.heard(operator, at):
            log.info("%s: link-loss watchdog armed by %s", self.peer_id, operator)
            self.audit.write("watchdog_armed", time.time(), sync=False, operator=operator,
                             timeout=self.watchdog.config.timeout)

    def watchdog_check(self, now: float) -> str | None:
        """Halt and latch (as an e-stop of this robot's own, audited) when the watchdog has
        heard no operator for its timeout at monotonic ``now`` s. Returns the reason when it
        halted, else None."""
        reason = self.watchdog.check(now) if self.watchdog is not None else None
        if reason is None:
            return None
        epoch = uuid.uuid4().hex
        self.robot.emergency_stop(self.peer_id, reason, epoch=epoch)  # actuators first, then the lockout
        self._note_epoch(epoch)
        log.warning("%s: %s; halted, locked out", self.peer_id, reason)
        self.audit.write("link_loss", time.time(), reason=reason, estop_id=epoch,
                         operators=list(self.watchdog.operators), timeout=self.watchdog.config.timeout,
                         silent_s=round(self.watchdog.silent_for(now), 3))
        return reason

    # -- resume -------------------------------------------------------------------------

    def resume_received(self, payload: bytes, received: float) -> tuple[Answer, Resume | ed.AssertionEnvelope | None]:
        """Verify a resume envelope, ours (HMAC) or strands-robots 0.5.3's (an Ed25519
        assertion, :mod:`.resume_ed25519`); clear the lockout when authorised. Returns the ack
        to put (:data:`NOTHING` for this peer's own or one not aimed at it) and the envelope.
        Never raises on what the payload holds: every refusal is audited with its reason."""
        try:
            data = loads(payload, SAFETY_MAX_BYTES, "resume envelope")
        except ContractError as exc:
            self.audit.write("resume_malformed", received, error=str(exc))
            return NOTHING, None
        if ed.is_assertion_form(data):
            return self._assertion_received(data, received)
        if isinstance(data, dict) and "override_code" in data:
            return self._override_code_received(data, received), None
        try:
            env = decode(Resume, payload, SAFETY_MAX_BYTES)
        except ContractError as exc:
            self.audit.write("resume_malformed", received, error=str(exc))
            return NOTHING, None
        if env.peer_id == self.peer_id:
            return NOTHING, env
        if isinstance(env.targets, (list, tuple)) and self.peer_id not in env.targets:
            return NOTHING, env  # not for this peer: no answer, and no throttle oracle either
        refusal = self._throttled(env.peer_id, received) or self._counted(
            env.peer_id, self._guard.check(env, self.peer_id, received))
        if refusal == "not a target":
            return NOTHING, env
        self._resumed(refusal, received)
        self.audit.write("resume_received", received, issuer=env.peer_id, operator=env.operator, seq=env.seq,
                         accepted=refusal is None, detail=refusal or "")
        return self.resume_ack(env, refusal is None, refusal or ""), env

    def _assertion_received(self, data: dict[str, Any], received: float) -> tuple[Answer, ed.AssertionEnvelope | None]:
        env = ed.parse_envelope(data)
        if isinstance(env, str):
            self.audit.write("resume_malformed", received, scheme="ed25519", error=env)
            return NOTHING, None
        if env.peer_id == self.peer_id:
            return NOTHING, env
        a = env.assertion if isinstance(env.assertion, dict) else {}
        # one not aimed at this peer is not throttled here (a well-signed one gets no answer)
        aimed = not (isinstance(a.get("targets"), list) and self.peer_id not in a["targets"])
        throttled = self._throttled(env.peer_id, received) if aimed else None
        accepted, detail = (False, throttled) if throttled else self._counted_assertion(
            env.peer_id, *self.check_assertion(env.assertion, received))
        self.audit.write("resume_received", received, sync=detail != "not a target", scheme="ed25519",
                         issuer=env.peer_id, epoch=str(a.get("epoch"))[:64], nonce=str(a.get("nonce"))[:64],
                         accepted=accepted, detail=detail)
        if detail == "not a target":
            return NOTHING, env
        return self.resume_ack(env, accepted, "" if accepted and detail == "resumed" else detail), env

    def _override_code_received(self, data: dict[str, Any], received: float) -> Answer:
        """A 2026-08 override-code resume on the safety key: refused, audited, answered (when
        it names an issuer we can answer) and counted by the throttle; never compared."""
        issuer = data.get("peer_id")
        self.audit.write("resume_received", received, scheme="override_code", issuer=str(issuer)[:64],
                         accepted=False, detail=OVERRIDE_CODE_RETIRED)
        try:
            check_peer_id(issuer)
        except (InvalidPeerId, TypeError, ValueError):
            return NOTHING
        if issuer == self.peer_id:
            return NOTHING
        refusal = self._throttled(issuer, received) or self._counted(issuer, OVERRIDE_CODE_RETIRED)
        body = json.dumps({"responder_id": self.peer_id, "seq": None, "accepted": False, "detail": refusal}).encode()
        return Answer(self.keys.resume_ack(issuer, self.peer_id), body, None, issuer)

    def check_assertion(self, assertion: Any, now: float) -> tuple[bool, str]:
        """Check a strands-robots 0.5.3 resume assertion for this peer and clear the lockout
        when it may: exact fields, v 1, a signature by a trusted key, this peer a target, the
        lockout's epoch, ``t`` within 60 s back / 5 s ahead, a nonce never used here.

        Returns ``(accepted, detail)``: ``(True, "resumed")`` when the lockout was cleared;
        ``(True, why)`` for a valid assertion with nothing to clear (no robot, or not locked
        out); else ``(False, why not)``. Never raises."""
        try:
            robot = self.robot
            lock = robot.lockout if robot is not None else None
            if lock is None:  # nothing to clear: say whether the assertion would have been good
                refusal = self._assertions.check(assertion, self.peer_id, None, now, use=False)
                if refusal is not None:
                    return False, refusal
                return True, "no actuators on this peer" if robot is None else "not locked out: nothing to clear"
            epoch = lock.get("epoch")
            if epoch is None:
                refusal = self._assertions.check(assertion, self.peer_id, None, now, use=False)
                return False, refusal or ("this lockout has no epoch (an e-stop without estop_id): resume it "
                                          "with the HMAC resume or locally")
            refusal = self._assertions.check(assertion, self.peer_id, epoch, now)
            if refusal is not None:
                return False, refusal
            if not robot.resume_epoch(epoch):
                return False, "the lockout changed while the assertion was checked (a new e-stop): not resumed"
            self.estop_guard.resumed(now)
            return True, "resumed"
        except Exception as exc:  # noqa: BLE001 - hostile input must never end the caller's thread
            log.exception("%s: checking a resume assertion failed", self.peer_id)
            return False, f"malformed resume assertion: {type(exc).__name__}"

    def resume_ack(self, env: Resume | ed.AssertionEnvelope, accepted: bool, detail: str = "",
                   responder: str | None = None) -> Answer:
        """The answer to resume envelope ``env`` by this peer (or by ``responder``)."""
        responder = responder or self.peer_id
        body = json.dumps({"responder_id": responder, "seq": env.seq, "accepted": accepted,
                           "detail": detail}).encode()
        return Answer(self.keys.resume_ack(env.peer_id, responder), body, None, env.peer_id)

    def resume_command(self, fields: dict[str, Any], sender: str) -> str | None:
        """``resume`` over the command path: same signed fields, targets = [this peer]; or
        strands-robots 0.5.3's ``{"action": "resume", "assertion": {...}}``.
        Returns None when resumed, else why not."""
        now = time.time()
        if throttled := self._throttled(sender, now):
            return throttled
        if "override_code" in fields:
            self.audit.write("resume_command", now, scheme="override_code", issuer=sender, accepted=False,
                             detail=OVERRIDE_CODE_RETIRED)
            return self._counted(sender, OVERRIDE_CODE_RETIRED)
        if "assertion" in fields:
            accepted, detail = self._counted_assertion(sender, *self.check_assertion(fields["assertion"], now))
            a = fields["assertion"] if isinstance(fields["assertion"], dict) else {}
            self.audit.write("resume_command", now, scheme="ed25519", issuer=sender, epoch=str(a.get("epoch"))[:64],
                             nonce=str(a.get("nonce"))[:64], accepted=accepted, detail=detail)
            return None if accepted else detail
        try:
            env = Resume(peer_id=sender, t=fields.get("t", 0.0), seq=fields.get("seq", -1),
                         operator=fields.get("operator", ""), targets=[self.peer_id], mac=fields.get("mac", ""))
        except ValueError as exc:
            return f"bad resume fields: {exc}"
        refusal = self._counted(sender, self._guard.check(env, self.peer_id, time.time()))
        self._resumed(refusal, time.time())
        self.audit.write("resume_command", time.time(), issuer=sender, accepted=refusal is None, detail=refusal or "")
        return refusal

    def _throttled(self, sender: str, now: float) -> str | None:
        """The throttle's refusal for a resume from ``sender`` (audited), or None."""
        refusal = self.resume_throttle.refusal(sender)
        if refusal:
            self.audit.write("resume_throttled", now, sync=False, issuer=sender, detail=refusal)
        return refusal

    def _counted(self, sender: str, refusal: str | None) -> str | None:
        """Count a resume check's outcome in the throttle; returns ``refusal``. Not a target
        and replays are not guesses (a replay carries a good signature), so they do not count."""
        if refusal != "not a target" and "replayed" not in (refusal or ""):
            if self.resume_throttle.note(sender, refusal is None):
                log.warning("%s: %d bad resume attempts: resumes refused for %.0f s (last from %s)", self.peer_id,
                            self.resume_throttle.max_fails, self.resume_throttle.backoff, sender)
                self.audit.write("resume_throttle_engaged", time.time(), issuer=sender,
                                 seconds=self.resume_throttle.backoff)
        return refusal

    def _counted_assertion(self, sender: str, accepted: bool, detail: str) -> tuple[bool, str]:
        self._counted(sender, None if accepted else detail)
        return accepted, detail

    def resume_local(self) -> None:
        """Clear this peer's own lockout (an operator resuming from this very peer)."""
        self._resumed(None, time.time())

    def _resumed(self, refusal: str | None, at: float) -> None:
        if refusal is None:
            if self.robot is not None:
                self.robot.resume()
            self.estop_guard.resumed(at)


def answer_key_allowed(keys: KeySpace, key: str, sender: str, responder: str) -> bool:
    """May ``responder`` put its answer to ``sender`` on ``key``?

    Yes for ``P/{sender}/response/{responder}/{turn}`` and for a ``reply_to`` within the
    sender's own keys ``P/{sender}/...`` (a response key, or a key of its own outside the
    contract); never onto another peer's keys or the safety keys, where an answer could, say,
    e-stop the fleet. Concrete keys only (no wildcards). A bridge checks what ROS robots ask
    it to put with the same rule.
    """
    if not all(c and not set(c) & set("$?#*") for c in key.split("/")):
        return False
    if not key.startswith(f"{keys.prefix}/{sender}/"):
        return False
    try:
        parsed = keys.parse(key)
    except ValueError:
        return True  # the sender's own key outside the contract
    return parsed.kind == "response" and parsed.responder_id in (None, responder)
