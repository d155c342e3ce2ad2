"""``Mesh``: one peer of the strands mesh on Zenoh (CONTRACT.md).

A Mesh with a robot is a robot peer: it answers commands through its
:class:`~strands_mesh_ros.mesh.dispatcher.Dispatcher`, publishes state, and halts on e-stop.
A Mesh without one is an agent (or dashboard) peer that commands others.

    from strands_mesh_ros import Mesh
    with Mesh("operator") as mesh:
        mesh.wait_for_peer("arm1", timeout=5)
        print(mesh.tell("arm1", "home").result)

Threads: Zenoh callbacks only parse and hand work on (commands to one dispatcher thread),
except the e-stop callback, which halts the robot in place before anything else.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from ..contract.keys import InvalidPeerId, check_peer_id
from ..contract.payloads import (
    MAX_COMMAND_BYTES,
    CommandEnvelope,
    ContractError,
    EStop,
    EStopAck,
    Presence,
    Response,
    Resume,
    State,
    Step,
    decode,
    make_presence,
    make_response,
    new_turn_id,
)
from ..drivers.base import Driver
from ..robot.runtime import Robot
from .config import MeshConfig
from .dispatcher import Dispatcher
from .peers import PeerInfo, PeerTable
from .safety import ESTOP_ACK_TIMEOUT, AuditLog, EStopReport, ResumeGuard, load_resume_key, sign_resume
from .session import POOL

log = logging.getLogger(__name__)

DEDUP_WINDOW = 10_000
"""How many recent (sender, turn_id) pairs a peer remembers so a repeat never runs twice."""

DISCOVERY_GRACE = 2.0
"""How long (s) a command waits for an unknown target to appear before failing."""

INBOX_CAPACITY = 65536
"""Commands buffered per key before Zenoh applies back-pressure to senders."""

TICK = 0.05
"""Housekeeping period (s): peer expiry, command deadlines."""


class MeshError(RuntimeError):
    """The mesh is not running, or a call cannot be made."""


@dataclass
class _Pending:
    target: str | None  # None: broadcast
    future: Future
    deadline: float
    sent: float = field(default_factory=time.monotonic)
    expected: frozenset[str] = frozenset()
    responses: dict[str, Response] = field(default_factory=dict)


@dataclass
class BroadcastResult:
    """Answers to one broadcast: ``responses`` by responder, and known peers that stayed silent."""

    turn_id: str
    responses: dict[str, Response]
    missing: list[str]


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


class Subscription:
    """Handle returned by :meth:`Mesh.subscribe`; pass it to :meth:`Mesh.unsubscribe`."""

    def __init__(self, keyexpr: str, zsub: Any) -> None:
        self.keyexpr = keyexpr
        self._zsub = zsub


class Mesh:
    """One peer on the strands mesh.

    Args:
        peer_id: 1-64 characters of ``[A-Za-z0-9_-]``; for a robot, its robot id.
        robot: a :class:`Robot` or a bare :class:`Driver` (wrapped in a Robot); None for agents.
        config: :class:`MeshConfig`; default ``MeshConfig.from_env()``.
        peer_type: ``robot``/``sim`` (default from the driver) or ``agent``/``dashboard``/``bridge``.
        robot_type: shown as the peer's kind; default from the driver, else the peer type.
        resume_key: shared key for signed resumes (default from the environment).
        audit_dir: directory of the JSON-lines audit log (default docs/safety.md).
        ros: ``{"namespace", "node"}`` advertised in presence when the robot lives in ROS.
        via: peer id of the bridge relaying this peer, if any.

    Raises:
        InvalidPeerId: bad peer id.
        ValueError: the robot's id differs from ``peer_id`` (one id everywhere).
    """

    def __init__(
        self,
        peer_id: str,
        *,
        robot: Robot | Driver | None = None,
        config: MeshConfig | None = None,
        peer_type: str | None = None,
        robot_type: str | None = None,
        resume_key: str | bytes | None = None,
        audit_dir: str | None = None,
        ros: dict[str, str] | None = None,
        via: str | None = None,
    ) -> None:
        self.peer_id = check_peer_id(peer_id)
        if robot is not None and not isinstance(robot, Robot):
            robot = Robot(robot)
        if robot is not None and robot.robot_id != peer_id:
            raise ValueError(f"robot id {robot.robot_id!r} differs from peer id {peer_id!r}: one robot, one id")
        self.robot: Robot | None = robot
        self.config = config or MeshConfig.from_env()
        self.keys = self.config.keys
        self.peer_type = peer_type or (robot.driver.peer_type if robot else "agent")
        self.robot_type = robot_type or (robot.driver.robot_type if robot else self.peer_type)
        self._resume_key = load_resume_key(resume_key)
        self._guard = ResumeGuard(self._resume_key)
        self._audit_dir = audit_dir
        self._ros = ros
        self._via = via
        self.table = PeerTable(self.config.peer_timeout, on_leave=self._peer_left)
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], Response | None] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._cmd_subs: list[Any] = []
        self._safety_q: queue.SimpleQueue = queue.SimpleQueue()
        self._estop_waits: dict[int, _AckCollector] = {}
        self._resume_waits: dict[int, _AckCollector] = {}
        self._step = itertools.count()
        self._state_seq = itertools.count()
        self._stop_evt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._decl: list[Any] = []
        self._subs: list[Subscription] = []
        self._session = self._safety = None
        self.audit: AuditLog | None = None
        self.stats = {"commands": 0, "rejected": 0, "duplicates": 0, "spoofed": 0, "responses": 0}
        self.dispatcher = Dispatcher(
            self.peer_id, robot, peers=self._peers_answer, state=self._state_answer,
            estop=self._estop_command, resume=self._resume_command, peer_type=self.peer_type,
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "Mesh":
        """Open sessions, declare keys, start heartbeats. Idempotent.

        Raises:
            RuntimeError / ValueError: Zenoh could not open a session with this config.
        """
        if self._session is not None:
            return self
        import zenoh

        self._zenoh = zenoh
        self.audit = AuditLog(self.peer_id, self._audit_dir)
        self._session = POOL.acquire(self.config, "main")
        try:
            self._safety = POOL.acquire(self.config, "safety")
        except Exception:
            POOL.release(self._session)
            self._session = None
            raise
        k, s, z = self.keys, self._session, self._safety
        block = zenoh.CongestionControl.BLOCK
        self._presence_pub = s.declare_publisher(k.presence(self.peer_id), congestion_control=block)
        self._state_pub = s.declare_publisher(k.state(self.peer_id), congestion_control=block)
        self._stream_pub = s.declare_publisher(k.stream(self.peer_id), congestion_control=block)
        rt = dict(congestion_control=block, priority=zenoh.Priority.REAL_TIME, express=True)
        self._estop_pub = z.declare_publisher(k.estop, **rt)
        self._resume_pub = z.declare_publisher(k.resume, **rt)
        self._decl += [self._presence_pub, self._state_pub, self._stream_pub, self._estop_pub, self._resume_pub]
        self._decl.append(s.declare_subscriber(k.all_presence, self._on_presence))
        self._decl.append(s.liveliness().declare_subscriber(k.all_alive, self._on_alive, history=True))
        # Commands arrive through Zenoh's own FIFO channel, read by a dispatcher thread: one
        # thread hand-off fewer than a Python callback feeding a queue (bench/bench_mesh.py rtt).
        # A full channel blocks the sender's link (back-pressure), never drops.
        self._cmd_subs = [s.declare_subscriber(key, zenoh.handlers.FifoChannel(INBOX_CAPACITY))
                          for key in (k.cmd(self.peer_id), k.broadcast)]
        self._decl.append(s.declare_subscriber(k.responses_for(self.peer_id), self._on_response))
        self._decl.append(z.declare_subscriber(k.estop, self._on_estop))
        self._decl.append(z.declare_subscriber(k.resume, self._on_resume))
        self._decl.append(z.declare_subscriber(k.estop_acks_for(self.peer_id), self._on_estop_ack))
        self._decl.append(z.declare_subscriber(k.resume_acks_for(self.peer_id), self._on_resume_ack))
        self._token = s.liveliness().declare_token(k.alive(self.peer_id))
        for i, sub in enumerate(self._cmd_subs):
            self._spawn(lambda sub=sub: self._dispatch_loop(sub), f"dispatch{i}")
        self._spawn(self._safety_loop, "safety")
        self._spawn(self._heartbeat_loop, "heartbeat")
        if self.robot is not None:
            self._spawn(self._state_loop, "state")
        self._publish_presence()
        self.audit.write("start", time.time(), peer_type=self.peer_type, robot_type=self.robot_type)
        return self

    def _spawn(self, fn: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=fn, name=f"{self.peer_id}-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Leave the mesh: fail pending calls, undeclare, release sessions. Idempotent."""
        if self._session is None:
            return
        self._stop_evt.set()
        for sub in self._cmd_subs:
            self._undeclare(sub)  # ends the dispatcher threads' recv loops
        self._safety_q.put(None)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)
        self._threads.clear()
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for turn, p in pending.items():
            self._finish(p, make_response(p.target or self.peer_id, turn, error="mesh stopped before an answer"))
        for sub in self._subs:
            self._undeclare(sub._zsub)
        self._subs.clear()
        self._undeclare(self._token)
        for d in reversed(self._decl):
            self._undeclare(d)
        self._decl.clear()
        POOL.release(self._safety)
        POOL.release(self._session)
        self._session = self._safety = None
        if self.audit:
            self.audit.write("stop", time.time())
            self.audit.close()

    @staticmethod
    def _undeclare(obj: Any) -> None:
        try:
            obj.undeclare()
        except Exception:  # already closed with its session: nothing left to release
            pass

    def __enter__(self) -> "Mesh":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._session is not None and not self._stop_evt.is_set()

    def _require(self) -> None:
        if not self.alive:
            raise MeshError(f"mesh peer {self.peer_id} is not started")

    # -- peers ----------------------------------------------------------------------------

    @property
    def peers(self) -> dict[str, PeerInfo]:
        """Fresh peers other than this one, by id (each with its ``age`` in s)."""
        snap = self.table.snapshot()
        snap.pop(self.peer_id, None)
        return snap

    def wait_for_peer(self, peer_id: str, timeout: float = 5.0) -> PeerInfo:
        """Block until ``peer_id`` is present.

        Raises:
            TimeoutError: not seen within ``timeout`` s.
        """
        check_peer_id(peer_id)
        if not self.table.wait_for(lambda s: peer_id in s, timeout):
            raise TimeoutError(f"peer {peer_id!r} not seen on the mesh within {timeout} s")
        return self.table.snapshot()[peer_id]

    def _on_presence(self, sample: Any) -> None:
        try:
            pr = decode(Presence, bytes(sample.payload.to_bytes()), 64 * 1024)
            parsed = self.keys.parse(str(sample.key_expr))
        except (ContractError, ValueError) as exc:
            log.warning("%s: bad presence on %s: %s", self.peer_id, sample.key_expr, exc)
            return
        if parsed.peer_id != pr.id:
            log.warning("%s: presence for %s published on %s's key: ignored", self.peer_id, pr.id, parsed.peer_id)
            return
        if not pr.is_fresh():
            log.debug("%s: stale presence from %s dropped", self.peer_id, pr.id)
            return
        self.table.heard(pr)

    def _on_alive(self, sample: Any) -> None:
        try:
            peer = self.keys.parse(str(sample.key_expr)).peer_id
        except ValueError:
            return
        if peer and peer != self.peer_id:
            self.table.token(peer, sample.kind == self._zenoh.SampleKind.PUT)

    def _peer_left(self, peer_id: str, why: str) -> None:
        with self._pending_lock:
            lost = [(t, p) for t, p in self._pending.items() if p.target == peer_id]
            for t, _ in lost:
                del self._pending[t]
        for turn, p in lost:
            self._finish(p, make_response(peer_id, turn, error=f"peer lost: {peer_id} left the mesh ({why}) before answering"))

    def _publish_presence(self) -> None:
        robot = self.robot
        pr = make_presence(
            self.peer_id, robot_type=self.robot_type, peer_type=self.peer_type,
            skills=robot.describe_skills() if robot else None, ros=self._ros, via=self._via,
            task_status=robot.task["status"] if robot else None,
        )
        self._presence_pub.put(pr.to_json())
        self.table.heard(pr)

    def _heartbeat_loop(self) -> None:
        period = 1.0 / self.config.presence_hz
        next_beat = time.monotonic() + period
        while not self._stop_evt.wait(TICK):
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + period
                try:
                    self._publish_presence()
                except Exception as exc:  # a closed session during shutdown
                    log.debug("presence publish failed: %s", exc)
            self.table.expire()
            self._expire_pending(now)

    # -- sending --------------------------------------------------------------------------

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
        """Blocking :meth:`send_async`."""
        return self.send_async(peer_id, command, timeout).result()

    def tell(self, peer_id: str, instruction: str, timeout: float = 60.0) -> Response:
        """``execute`` an instruction on ``peer_id`` and wait for it to finish."""
        return self.send(peer_id, {"action": "execute", "instruction": instruction}, timeout)

    def broadcast(self, command: dict[str, Any], timeout: float = 2.0) -> BroadcastResult:
        """Send ``command`` to every peer; returns when all known peers answered or at ``timeout``."""
        return self._send(None, command, timeout).result()

    def _send(self, target: str | None, command: dict[str, Any], timeout: float) -> Future:
        self._require()
        if not isinstance(command, dict) or not isinstance(command.get("action"), str):
            raise ValueError("command must be a dict with an 'action' string")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout!r}")
        env = CommandEnvelope(sender_id=self.peer_id, turn_id=new_turn_id(), command=command)
        data = env.to_json()
        if len(data) > MAX_COMMAND_BYTES:
            raise ValueError(f"command envelope of {len(data)} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit")
        fut: Future = Future()
        expected = frozenset(self.peers) if target is None else frozenset()
        p = _Pending(target, fut, time.monotonic() + timeout, expected=expected)
        with self._pending_lock:
            self._pending[env.turn_id] = p
        self._session.put(self.keys.cmd(target) if target else self.keys.broadcast, data,
                          congestion_control=self._zenoh.CongestionControl.BLOCK)
        return fut

    def _finish(self, p: _Pending, resp: Response | None, turn: str | None = None) -> None:
        if p.future.done():
            return
        if p.target is None:
            missing = sorted(p.expected - set(p.responses))
            p.future.set_result(BroadcastResult(turn or "", dict(p.responses), missing))
        else:
            p.future.set_result(resp)

    def _expire_pending(self, now: float) -> None:
        known = set(self.table.snapshot())
        done: list[tuple[str, _Pending, Response | None]] = []
        with self._pending_lock:
            for turn, p in list(self._pending.items()):
                unknown = p.target is not None and p.target not in known and not self.table.has_token(p.target)
                if unknown and (now >= p.deadline or now - p.sent > DISCOVERY_GRACE):
                    resp = make_response(p.target, turn, error=f"unknown peer {p.target!r}: not on the mesh "
                                                                f"(known: {sorted(known - {self.peer_id})})")
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
        try:
            parsed = self.keys.parse(str(sample.key_expr))
            resp = decode(Response, bytes(sample.payload.to_bytes()))
        except (ContractError, ValueError) as exc:
            log.warning("%s: bad response on %s: %s", self.peer_id, sample.key_expr, exc)
            self.stats["rejected"] += 1
            return
        if parsed.responder_id is not None and parsed.responder_id != resp.responder_id:
            self._spoof(f"key names {parsed.responder_id} but payload says {resp.responder_id}")
            return
        if parsed.turn_id != resp.turn_id:
            self._spoof(f"key turn {parsed.turn_id} but payload turn {resp.turn_id}")
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
                    if p.expected and p.expected.issubset(p.responses):
                        del self._pending[resp.turn_id]
                    else:
                        return
        if spoof:
            self._spoof(spoof)
            return
        self.stats["responses"] += 1
        self._finish(p, resp, resp.turn_id)

    def _spoof(self, what: str) -> None:
        self.stats["spoofed"] += 1
        log.warning("%s: refused a spoofed response: %s", self.peer_id, what)
        if self.audit:
            self.audit.write("spoofed_response", time.time(), detail=what)

    # -- receiving commands ---------------------------------------------------------------

    def _dispatch_loop(self, sub: Any) -> None:
        while not self._stop_evt.is_set():
            try:
                sample = sub.recv()
            except self._zenoh.ZError:
                return  # undeclared: the mesh is stopping
            try:
                self._handle_command(str(sample.key_expr), bytes(sample.payload.to_bytes()))
            except Exception:  # never let one command kill the peer
                log.exception("%s: command handling failed", self.peer_id)

    def _handle_command(self, key: str, payload: bytes) -> None:
        self.stats["commands"] += 1
        try:
            env = decode(CommandEnvelope, payload, MAX_COMMAND_BYTES)
        except ContractError as exc:
            self.stats["rejected"] += 1
            if exc.sender_id and exc.turn_id:
                try:
                    self._put_response(exc.sender_id, None, make_response(self.peer_id, exc.turn_id, error=str(exc)))
                    return
                except (InvalidPeerId, ValueError):
                    pass
            # Nobody to answer: record it where operators look.
            log.warning("%s: rejected command on %s: %s", self.peer_id, key, exc)
            self.audit.write("rejected_command", time.time(), key=key, error=str(exc), size=len(payload))
            return
        if key == self.keys.broadcast and env.sender_id == self.peer_id:
            return  # our own broadcast
        dedup = (env.sender_id, env.turn_id)
        with self._seen_lock:
            if dedup in self._seen:
                self.stats["duplicates"] += 1
                cached = self._seen[dedup]
            else:
                self._seen[dedup] = cached = None
                if len(self._seen) > DEDUP_WINDOW:
                    self._seen.popitem(last=False)
                dedup = None  # first time: run it
        if dedup is not None:
            # A repeated turn_id never runs twice: re-send the answer, or let the running
            # call's answer serve both.
            if cached is not None:
                self._put_response(env.sender_id, env.reply_to, cached)
            return
        self.audit.write("command", time.time(), sync=False, sender=env.sender_id, turn_id=env.turn_id,
                         action=env.command.get("action"))
        self.dispatcher.dispatch(env, lambda resp: self._respond(env, resp))

    def _respond(self, env: CommandEnvelope, resp: Response) -> None:
        with self._seen_lock:
            if (env.sender_id, env.turn_id) in self._seen:
                self._seen[(env.sender_id, env.turn_id)] = resp
        try:
            self._put_response(env.sender_id, env.reply_to, resp)
        except Exception as exc:  # the session closed under us during shutdown
            log.debug("response not sent: %s", exc)

    def _put_response(self, sender: str, reply_to: str | None, resp: Response) -> None:
        key = self.keys.response(sender, self.peer_id, resp.turn_id)
        if reply_to and self._valid_reply_to(reply_to):
            key = reply_to
        self._session.put(key, resp.to_json(), congestion_control=self._zenoh.CongestionControl.BLOCK)

    def _valid_reply_to(self, key: str) -> bool:
        # A concrete key: no wildcards, no empty chunks.
        return all(c and c not in ("*", "**") and not set(c) & set("$?#*") for c in key.split("/"))

    def _peers_answer(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.peers.values()]

    # -- state and streams ----------------------------------------------------------------

    def state(self) -> State | None:
        """This robot's contract State now (None for agents)."""
        if self.robot is None:
            return None
        obs = self.robot.driver.observe()
        return State(peer_id=self.peer_id, t=obs.t, joints=obs.joints_dict(), task=self.robot.task,
                     sim_time=obs.sim_time, seq=next(self._state_seq))

    def _state_answer(self) -> dict[str, Any] | None:
        st = self.state()
        return st.model_dump(exclude_none=True) if st else None

    def _state_loop(self) -> None:
        period = 1.0 / self.config.state_hz
        next_t = time.monotonic()
        while True:
            next_t += period
            if self._stop_evt.wait(max(0.0, next_t - time.monotonic())):
                return
            if time.monotonic() - next_t > period:
                next_t = time.monotonic()  # fell behind: skip, do not burst
            try:
                self._state_pub.put(self.state().to_json())
            except Exception as exc:
                log.debug("state publish failed: %s", exc)

    def publish_step(self, observation: Any, action: Any, *, instruction: str | None = None,
                     policy: str | None = None) -> int:
        """Publish one control step on ``P/{peer}/stream``; returns its step number.

        ``observation`` and ``action`` must be JSON-able (lists, not numpy arrays).
        """
        self._require()
        n = next(self._step)
        step = Step(peer_id=self.peer_id, step=n, t=time.time(), observation=observation, action=action,
                    instruction=instruction, policy=policy)
        self._stream_pub.put(step.to_json())
        return n

    def on_stream(self, peer_id: str, callback: Callable[[Step], None]) -> Subscription:
        """Call ``callback(step)`` for each step of ``peer_id`` (``"*"`` for every peer)."""
        if peer_id != "*":
            check_peer_id(peer_id)
        key = f"{self.keys.prefix}/{peer_id}/stream"

        def cb(_key: str, payload: bytes) -> None:
            try:
                callback(decode(Step, payload))
            except ContractError as exc:
                log.warning("%s: bad step on %s: %s", self.peer_id, _key, exc)

        return self.subscribe(key, cb, raw=True)

    def subscribe(self, keyexpr: str, callback: Callable[[str, Any], None], *, raw: bool = False) -> Subscription:
        """Call ``callback(key, value)`` for every sample matching ``keyexpr`` (wildcards ok).

        ``value`` is the parsed JSON, or the bytes when the payload is not JSON or ``raw``.
        An exception in ``callback`` is logged and does not stop the subscription.

        Raises:
            ValueError: invalid key expression. MeshError: not started.
        """
        self._require()

        def handler(sample: Any) -> None:
            payload = bytes(sample.payload.to_bytes())
            value: Any = payload
            if not raw:
                try:
                    value = json.loads(payload)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    pass
            try:
                callback(str(sample.key_expr), value)
            except Exception:
                log.exception("%s: subscriber callback for %s failed", self.peer_id, keyexpr)

        try:
            zsub = self._session.declare_subscriber(keyexpr, handler)
        except self._zenoh.ZError as exc:
            raise ValueError(f"invalid key expression {keyexpr!r}: {exc}") from None
        sub = Subscription(keyexpr, zsub)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop a subscription made by :meth:`subscribe` / :meth:`on_stream`."""
        if sub in self._subs:
            self._subs.remove(sub)
            self._undeclare(sub._zsub)

    # -- safety ---------------------------------------------------------------------------

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
            self._estop_pub.put(EStop(peer_id=self.peer_id, t=time.time(), seq=seq, reason=reason).to_json())
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
        if env.peer_id == self.peer_id:
            return  # our own; halted and audited by emergency_stop()
        halted = False
        if self.robot is not None:
            self.robot.emergency_stop(env.peer_id, env.reason)
            halted = True
        self.audit.write("estop_received", received, issuer=env.peer_id, seq=env.seq, reason=env.reason,
                         halted=halted)
        ack = EStopAck(issuer_id=env.peer_id, responder_id=self.peer_id, seq=env.seq, t=time.time(), halted=halted,
                       detail="" if halted else "no actuators on this peer")
        self._safety.put(self.keys.estop_ack(env.peer_id, self.peer_id), ack.to_json(),
                         congestion_control=self._zenoh.CongestionControl.BLOCK,
                         priority=self._zenoh.Priority.REAL_TIME, express=True)

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
        refusal = self._guard.check(env, self.peer_id, received)
        if refusal == "not a target":
            return
        if refusal is None and self.robot is not None:
            self.robot.resume()
        self.audit.write("resume_received", received, issuer=env.peer_id, operator=env.operator, seq=env.seq,
                         accepted=refusal is None, detail=refusal or "")
        body = json.dumps({"responder_id": self.peer_id, "seq": env.seq, "accepted": refusal is None,
                           "detail": refusal or ""}).encode()
        self._safety.put(self.keys.resume_ack(env.peer_id, self.peer_id), body,
                         congestion_control=self._zenoh.CongestionControl.BLOCK)

    def _on_resume_ack(self, sample: Any) -> None:
        try:
            ack = json.loads(bytes(sample.payload.to_bytes()))
            collector = self._resume_waits.get(int(ack["seq"]))
            responder = check_peer_id(ack["responder_id"])
        except (ValueError, KeyError, TypeError) as exc:
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
        self.audit.write("resume_command", time.time(), issuer=sender, accepted=refusal is None, detail=refusal or "")
        return refusal
