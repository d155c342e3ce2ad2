"""``Mesh``: one peer of the strands mesh on Zenoh (CONTRACT.md).

A Mesh with a robot is a robot peer: it answers commands through its
:class:`~strands_mesh_ros.robot.dispatcher.Dispatcher`, publishes state, and halts on e-stop.
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
import secrets
import threading
import time
from typing import Any, Callable

from ..contract.keys import check_peer_id
from ..contract.payloads import ContractError, Presence, State, Step, decode, loads, make_response
from ..robot.driver import Driver
from ..robot.peer_core import NullAudit, PeerCore
from ..robot.runtime import Robot
from ..robot.watchdog import WatchdogConfig
from .commands import INBOX_CAPACITY, BroadcastResult, CommandPath, _Pending  # noqa: F401 (re-exported)
from .config import MeshConfig
from .identity import WireSetup, signer_for, warn_if_cannot_speak, wire_setup
from .peers import PeerInfo, PeerTable
from .response_intake import WAKE_CHUNK, ResponseIntake
from ..robot.safety import AuditLog, load_resume_key
from .safety_path import MeshError, SafetyPath, _AckCollector
from .session import POOL, token_peer_ids


class DuplicatePeer(MeshError):
    """A peer with this id is already live on the mesh (its liveliness token is up)."""

log = logging.getLogger(__name__)


def live_peer_ids(session: Any, keys: Any, timeout: float = 1.0) -> set[str]:
    """Ids whose liveliness token is up on the mesh now, asked of the network (a liveliness
    query answers within milliseconds, even just after a session opens).

    Args:
        session: an open Zenoh session (e.g. ``POOL.acquire(config)``).
        keys: the fleet's :class:`~strands_mesh_ros.contract.keys.KeySpace`.
        timeout: s, the query's deadline.
    """
    return token_peer_ids(session.liveliness().get(keys.all_alive, timeout=timeout), keys)


class Subscription:
    """Handle returned by :meth:`Mesh.subscribe`; pass it to :meth:`Mesh.unsubscribe`."""

    def __init__(self, keyexpr: str, zsub: Any) -> None:
        self.keyexpr = keyexpr
        self._zsub = zsub


class Mesh(CommandPath, SafetyPath):
    """One peer on the strands mesh.

    Args:
        peer_id: 1-64 characters of ``[A-Za-z0-9_-]``; for a robot, its robot id.
        robot: a :class:`Robot` or a bare :class:`Driver` (wrapped in a Robot); None for agents.
        config: :class:`MeshConfig`; default ``MeshConfig.from_env()``.
        peer_type: ``robot``/``sim`` (default from the driver) or ``agent``/``dashboard``/``bridge``.
        robot_type: shown as the peer's kind; default from the driver, else the peer type.
        resume_key: shared key for signed resumes (default from the environment).
        resume_signing_key: an Ed25519 private key (``cryptography``) to sign strands-robots
            0.5.3 resume assertions with (default: env ``STRANDS_MESH_RESUME_PRIVATE_KEY_FILE``,
            read at the first :meth:`resume`); see docs/safety.md.
        audit_dir: directory of the JSON-lines audit log (default docs/safety.md).
        ros: ``{"namespace", "node"}`` advertised in presence when the robot lives in ROS.
        via: peer id of the bridge relaying this peer, if any.
        relay: takes every received command instead of this peer's core, as raw bytes:
            ``relay(payload, broadcast)``; the bridge's proxies hand them to the ROS robot,
            whose own core answers. Called on the intake thread: blocking in it applies
            back-pressure to senders.
        presence: returns extra presence fields (``skills``, ``task_status``, ...) at each beat.
        safety: subscribe to the safety keys (default). A bridge's proxies say False: the
            bridge's own peer takes the safety path for them. With False the safety session
            opens only when first needed (an e-stop or resume put), so a CLI ``send`` does
            not pay for opening it.
        safety_hook: called ``safety_hook("resume", raw bytes)`` for every readable resume
            envelope of another peer (the bridge carries them into ROS).
        raw_estop_hook: called with the raw bytes of every sample on the e-stop key, in
            Zenoh's thread right after this peer halted and before anything is parsed; the
            bridge carries the halt into ROS with it.
        check_unique: refuse to start when ``peer_id`` is already live on the mesh.
        audit: keep an audit log (default); a bridge's proxies say False, since the ROS
            robot's own node keeps that robot's audit.
        watchdog: halt and latch the robot when none of these operators' presence was heard
            for this long (:mod:`strands_mesh_ros.robot.watchdog`; docs/safety.md). Off by default.
        audit_name: the audit file's name part (``audit-{audit_name}.jsonl``), default the peer
            id; short-lived operator peers (the CLI) share one file, ``operator``, and each line
            still names its peer.

    Raises:
        InvalidPeerId: bad peer id.
        ValueError: the robot's id differs from ``peer_id`` (one id everywhere); a watchdog
            without a robot.
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
        resume_signing_key: Any = None,
        audit_dir: str | None = None,
        ros: dict[str, str] | None = None,
        via: str | None = None,
        relay: Callable[[bytes, bool], None] | None = None,
        presence: Callable[[], dict[str, Any]] | None = None,
        safety: bool = True,
        safety_hook: Callable[[str, Any], None] | None = None,
        raw_estop_hook: Callable[[bytes], None] | None = None,
        check_unique: bool = True,
        audit: bool = True,
        watchdog: WatchdogConfig | None = None,
        audit_name: str | None = None,
    ) -> None:
        self.peer_id = check_peer_id(peer_id)
        if robot is not None and not isinstance(robot, Robot):
            robot = Robot(robot)
        if robot is not None and robot.robot_id != peer_id:
            raise ValueError(f"robot id {robot.robot_id!r} differs from peer id {peer_id!r}: one robot, one id")
        self.robot: Robot | None = robot
        if watchdog is not None and (robot is None or not isinstance(watchdog, WatchdogConfig)):
            raise ValueError(f"peer {peer_id!r}: a link-loss watchdog needs a robot and a WatchdogConfig "
                             f"(got robot={robot!r}, watchdog={watchdog!r})")
        self._watchdog = watchdog
        self.config = config or MeshConfig.from_env()
        self.keys = self.config.keys
        self.peer_type = peer_type or (robot.driver.peer_type if robot else "agent")
        self.robot_type = robot_type or (robot.driver.robot_type if robot else self.peer_type)
        self._resume_key = load_resume_key(resume_key)
        self._resume_signing_key = resume_signing_key  # Ed25519; None: env, read at the first resume
        self._audit_dir = audit_dir
        self._ros = ros
        self._via = via
        self.table = PeerTable(self.config.peer_timeout)  # until start(): the session's shared table
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._intake: ResponseIntake | None = None
        self._cmd_subs: list[Any] = []
        self._safety_lock = threading.Lock()  # one safety message at a time, in arrival order
        self._estop_waits: dict[int, _AckCollector] = {}
        self._resume_waits: dict[int, _AckCollector] = {}
        self._step = itertools.count()
        self._source_sn = itertools.count(1)
        self._state_seq = itertools.count()
        self._stop_evt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._decl: list[Any] = []
        self._subs: list[Subscription] = []
        self._session = self._safety = None
        self._safety_open_lock = threading.Lock()  # opening (and dropping) the safety session
        self._safety_pubs: tuple[Any, Any] | None = None  # (e-stop, resume) publishers
        self._safety_opened = 0.0  # time.monotonic() when the safety session was opened
        self._started = 0.0  # time.monotonic() when start() opened the main session
        self.audit: AuditLog | None = None
        self._sender_stats = {"spoofed": 0, "rejected": 0, "responses": 0}
        self._presence_extra = presence
        self._with_safety = safety
        self.safety_hook = safety_hook
        self.raw_estop_hook = raw_estop_hook
        self._relay = relay
        self._check_unique = check_unique
        self._with_audit = audit
        self._audit_name = audit_name
        self.core: PeerCore | None = None
        self._wire: WireSetup | None = None
        self._signer = None  # the identity this peer signs with (identity.signer_for)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: commands taken, rejected, duplicates (this peer's core); spoofed and
        accepted responses (its calls)."""
        core = self.core.stats if self.core is not None else {"commands": 0, "rejected": 0, "duplicates": 0}
        return {**core, "spoofed": self._sender_stats["spoofed"], "responses": self._sender_stats["responses"],
                "rejected": core["rejected"] + self._sender_stats["rejected"]}

    @property
    def dispatcher(self) -> Any:
        """This peer's :class:`~strands_mesh_ros.robot.dispatcher.Dispatcher` (after start)."""
        return self.core.dispatcher if self.core is not None else None

    def start(self) -> "Mesh":
        """Open sessions, declare keys, start heartbeats. Idempotent.

        Raises:
            RuntimeError / ValueError: Zenoh could not open a session with this config.
        """
        if self._session is not None:
            return self
        import zenoh

        self._zenoh = zenoh
        self._wire = wire_setup(self.config)  # raises before any session opens
        warn_if_cannot_speak(self._wire, self.peer_id)
        self._signer = signer_for(self._wire, self.peer_id)
        self._session = POOL.acquire(self.config, "main")
        self._started = time.monotonic()
        if self._check_unique:
            try:
                live = [r for r in self._session.liveliness().get(self.keys.alive(self.peer_id), timeout=1.0)
                        if r.ok is not None]
            except Exception:
                POOL.release(self._session)
                self._session = None
                raise
            if live:
                POOL.release(self._session)
                self._session = None
                raise DuplicatePeer(
                    f"peer id {self.peer_id!r} is already live on the mesh (prefix {self.keys.prefix!r}): one robot, "
                    f"one id. Stop the other {self.peer_id}, or give this one another id")
        self.audit = AuditLog(self.peer_id, self._audit_dir, name=self._audit_name) if self._with_audit else NullAudit()
        self.core = PeerCore(self.peer_id, self.robot, self.keys, audit=self.audit, peer_type=self.peer_type,
                             robot_type=self.robot_type, resume_key=self._resume_key, peers=self._peers_answer,
                             ros=self._ros, via=self._via, presence_extra=self._presence_extra,
                             peer_timeout=self.config.peer_timeout, watchdog=self._watchdog)
        if self._with_safety:
            try:
                self._open_safety()
            except Exception:
                POOL.release(self._session)
                self._session = None
                raise
        k, s = self.keys, self._session
        block = self._block = zenoh.CongestionControl.BLOCK
        self._presence_pub = s.declare_publisher(k.presence(self.peer_id), congestion_control=block)
        self._state_pub = s.declare_publisher(k.state(self.peer_id), congestion_control=block)
        self._stream_pub = s.declare_publisher(k.stream(self.peer_id), congestion_control=block)
        self._decl += [self._presence_pub, self._state_pub, self._stream_pub]
        self._source_id = self._presence_pub.id  # read once: each read builds a new object
        self._next_beat = time.monotonic() + 1.0 / self.config.presence_hz
        self._shared_peers = POOL.peers_for(s, self.config, self._peer_left, self._housekeep)
        self._shared_peers.trust = self._wire.trust
        self.table = self._shared_peers.table
        # Commands arrive through Zenoh's own FIFO channel, read by a dispatcher thread: one
        # thread hand-off fewer than a Python callback feeding a queue (bench/bench_mesh.py rtt).
        # A full channel blocks the sender's link (back-pressure), never drops.
        self._cmd_subs = [s.declare_subscriber(key, zenoh.handlers.FifoChannel(INBOX_CAPACITY))
                          for key in (k.cmd(self.peer_id), k.broadcast)]
        # Responses go into Zenoh's FIFO channel, read by whoever waits for one (response_intake.py).
        resp_sub = s.declare_subscriber(k.responses_for(self.peer_id), zenoh.handlers.FifoChannel(INBOX_CAPACITY))
        self._decl.append(resp_sub)
        wake_key = f"{k.prefix}/{self.peer_id}/response/{WAKE_CHUNK}-{secrets.token_hex(8)}"
        local = zenoh.Locality.SESSION_LOCAL
        self._intake = ResponseIntake(resp_sub.handler, self._on_response,
                                      lambda: s.put(wake_key, b"", allowed_destination=local), wake_key, self.peer_id)
        if self._with_safety:
            z = self._safety
            self._decl.append(z.declare_subscriber(k.estop, self._on_estop))
            self._decl.append(z.declare_subscriber(k.resume, self._on_resume))
            self._decl.append(z.declare_subscriber(k.estop_acks_for(self.peer_id), self._on_estop_ack))
            self._decl.append(z.declare_subscriber(k.resume_acks_for(self.peer_id), self._on_resume_ack))
        # (ext) A presence query is answered at once with this peer's presence now, so a process
        # that has just joined (the CLI) learns the fleet in one round trip, not a 2 Hz beat.
        self._decl.append(s.declare_queryable(k.presence(self.peer_id), self._on_presence_query))
        self._token = s.liveliness().declare_token(k.alive(self.peer_id))
        for i, sub in enumerate(self._cmd_subs):
            self._spawn(lambda sub=sub: self._dispatch_loop(sub), f"dispatch{i}")
        if self.robot is not None:
            self._spawn(self._state_loop, "state")
        self._publish_presence()
        self.audit.write("start", time.time(), peer_type=self.peer_type, robot_type=self.robot_type)
        return self

    def _open_safety(self) -> Any:
        """The safety session, opened (with its real-time e-stop and resume publishers) on
        first call.

        Raises:
            RuntimeError / ValueError: Zenoh could not open it.
        """
        with self._safety_open_lock:
            if self._session is None:
                raise MeshError(f"mesh peer {self.peer_id} is not started")
            if self._safety is None:
                zenoh = self._zenoh
                z = POOL.acquire(self.config, "safety")
                rt = dict(congestion_control=zenoh.CongestionControl.BLOCK, priority=zenoh.Priority.REAL_TIME,
                          express=True)
                self._safety_pubs = (z.declare_publisher(self.keys.estop, **rt),
                                     z.declare_publisher(self.keys.resume, **rt))
                self._decl += self._safety_pubs
                self._safety = z
                self._safety_opened = time.monotonic()
            return self._safety

    @property
    def _estop_pub(self) -> Any:
        if self._safety_pubs is None:
            self._open_safety()
        return self._safety_pubs[0]

    @property
    def _resume_pub(self) -> Any:
        if self._safety_pubs is None:
            self._open_safety()
        return self._safety_pubs[1]

    presence_live: Callable[[], bool] | None = None
    """Whether the peer this Mesh stands for runs now; None: this process is that peer. A
    bridge's proxy sets it (its ROS robot was heard on ROS within the peer timeout): when it
    says False, presence queries go unanswered, since an answer tells a caller about to drop a
    silent peer that the peer runs (``SharedPeers._confirm``)."""

    def _on_presence_query(self, query: Any) -> None:
        """Answer a presence query with this peer's presence now, signed as a beat is. The
        answer also confirms to a caller that this peer runs (``SharedPeers._confirm``); the
        peer core counts it as a beat (``PeerCore.beat``)."""
        if self.presence_live is not None and not self.presence_live():
            return
        try:
            key = self.keys.presence(self.peer_id)
            self.core.beat(lambda pr: query.reply(key, self.signed(pr.to_json()), express=True))
        except Exception as exc:  # the session closing under us, or a presence callback failing
            log.debug("%s: presence query not answered: %s", self.peer_id, exc)

    def refresh_peers(self, timeout: float = 1.0) -> set[str]:
        """Ask the mesh who is on it now (:meth:`SharedPeers.query`) and update :attr:`table`;
        returns the ids with a live liveliness token. Returns in milliseconds when every
        peer answers; ``timeout`` (s) bounds it when one hangs.

        Raises:
            MeshError: not started.
        """
        self._require()
        return self._shared_peers.query(timeout) - {self.peer_id}

    def source_info(self) -> Any:
        """A Zenoh SourceInfo naming this peer's presence publisher (its session's zid) and the
        next sequence number. Presence, answers and commands carry it: strands-robots 0.5.3
        binds a peer id to the zid its presence came with and drops answers from any other
        (CONTRACT.md, strands-robots 0.5.3, item 1)."""
        return self._zenoh.SourceInfo(self._source_id, next(self._source_sn))

    def signed(self, data: bytes, **fields: Any) -> bytes:
        """``data`` (a JSON object) plus ``fields``, with this peer's ``sig`` block, when it has a
        signing identity (docs/security.md, signed wire identity); else ``data`` unchanged."""
        if self._signer is None:
            return data
        return json.dumps(self._signer.sign({**json.loads(data), **fields}), separators=(",", ":")).encode()

    def _spawn(self, fn: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=fn, name=f"{self.peer_id}-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, *, close_sessions: bool = True) -> None:
        """Leave the mesh: fail pending calls, undeclare, release sessions. Idempotent.

        Args:
            close_sessions: False leaves the Zenoh sessions open for a process that ends
                with ``os._exit`` right after (the CLI): closing them took 50-180 ms here, the
                largest part of a short CLI call after its answer (bench/bench_cli.py); the
                peers see the links close when the process ends.
        """
        if self._session is None:
            return
        self._stop_evt.set()
        for sub in self._cmd_subs:
            self._undeclare(sub)  # ends the dispatcher threads' recv loops
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)
        self._threads.clear()
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for turn, p in pending.items():
            self._finish(p, make_response(p.target or self.peer_id, turn, error="mesh stopped before an answer"))
        if self._intake is not None:
            self._intake.close()
        for sub in self._subs:
            self._undeclare(sub._zsub)
        self._subs.clear()
        self._undeclare(self._token)
        for d in reversed(self._decl):
            self._undeclare(d)
        self._decl.clear()
        POOL.release_peers(self._shared_peers, self._peer_left, self._housekeep)
        self.table = PeerTable(self.config.peer_timeout)  # a stopped peer sees no one
        if close_sessions:
            # The two sessions close side by side: closing one with an open link takes ~80 ms
            # here (bench/bench_cli.py), the whole of a CLI call's stop.
            closer = None
            if self._safety is not None:
                closer = threading.Thread(target=POOL.release, args=(self._safety,), name=f"{self.peer_id}-close",
                                          daemon=True)
                closer.start()
            POOL.release(self._session)
            if closer is not None:
                closer.join(timeout=5)
        with self._safety_open_lock:
            self._session = self._safety = None
            self._safety_pubs = None
        if self.audit:
            self.audit.write("stop", time.time())
            self.audit.close()

    @staticmethod
    def _undeclare(obj: Any) -> None:
        try:
            obj.undeclare()
        except Exception as exc:  # already closed with its session: nothing left to release
            log.debug("undeclare of %r: %s", obj, exc)

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

    def _peer_left(self, peer_id: str, why: str) -> None:
        with self._pending_lock:
            lost = [(t, p) for t, p in self._pending.items() if p.target == peer_id]
            for t, _ in lost:
                del self._pending[t]
        for turn, p in lost:
            self._finish(p, make_response(peer_id, turn, error=f"peer lost: {peer_id} left the mesh ({why}) before answering"))

    def _publish_presence(self) -> None:
        def send(pr: Presence) -> None:
            self._presence_pub.put(self.signed(pr.to_json()), source_info=self.source_info())

        self.table.heard(self.core.beat(send))

    def _housekeep(self, now: float) -> None:
        """Every :data:`~strands_mesh_ros.mesh.session.TICK` s, on the session's housekeeping
        thread (``SharedPeers``, shared by every Mesh of the process on this session): the
        frozen-process check, the link-loss watchdog, the presence beat when due, and the
        deadlines of pending commands. The shared peer table is expired there too."""
        if self._stop_evt.is_set():
            return
        self.core.tick()
        if self.core.watchdog is not None:
            self._feed_watchdog(now)
        if now >= self._next_beat:
            self._next_beat = now + 1.0 / self.config.presence_hz
            try:
                self._publish_presence()
            except Exception as exc:  # a closed session during shutdown
                log.debug("presence publish failed: %s", exc)
        self._expire_pending(now)

    def _feed_watchdog(self, now: float) -> None:
        """Heartbeats = the operators' presence, read as its age in the peer table (a frozen
        operator keeps its liveliness token until the link lease ends; its presence stops)."""
        for op in self.core.watchdog.operators:
            info = self.table.get(op)
            if info is not None:
                self.core.watchdog_heard(op, now - info.age)
        self.core.watchdog_check(now)

    def state(self) -> State | None:
        """This robot's contract State now (None for agents).

        Raises:
            MeshError: not started.
        """
        self._require()
        return self.core.state(next(self._state_seq))

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

    def put_answer(self, key: str, payload: bytes) -> None:
        """Put an answer a ROS robot behind this bridge proxy produced on ``key`` (the caller
        has checked the key with :func:`~strands_mesh_ros.robot.peer_core.answer_key_allowed`).

        Raises:
            MeshError: not started.
        """
        self._require()
        self._session.put(key, self.signed(payload), congestion_control=self._zenoh.CongestionControl.BLOCK,
                          source_info=self.source_info())

    def publish_state(self, state: State | bytes) -> None:
        """Publish a State this peer did not compute itself (a bridge relaying ROS joint_states):
        the model, or its wire form from :func:`~strands_mesh_ros.contract.payloads.state_json`."""
        self._require()
        self._state_pub.put(state if isinstance(state, bytes) else state.to_json())

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
                    value = loads(payload)
                except ContractError:
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
