"""Zenoh sessions: one per process and configuration, reference-counted, plus the safety one.

Every :class:`~strands_mesh_ros.mesh.mesh.Mesh` in a process (a fleet host runs several
robots) shares one main session, so a process is one Zenoh peer however many robots it
hosts. The e-stop path gets a *separate* session: measured here (ENVIRONMENT.md), a flood on a
shared session delayed e-stops by ~260 ms and lost 17 %, while a dedicated session with
express, real-time priority kept p99 under 10 ms with nothing lost.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
import time
from typing import Any, Callable, Literal

from .config import MeshConfig, one_line

log = logging.getLogger(__name__)

Role = Literal["main", "safety"]

SAFETY_OPEN_WAIT_MS = 50
"""Longest wait (ms) of the safety session's open for the peers it scouts (Zenoh's
``scouting/delay``, default 500 ms), unless the config sets one. Why: a peer found both by
multicast and by gossip (the process's own main session always is, when the config connects
somewhere) is booked twice by zenoh 1.10's start conditions and one booking never clears, so
half the opens waited the whole 500 ms (measured: 6 of 12 here) although every link was up in
~5 ms. The main session has already waited for the mesh when this opens, and an e-stop put
before a link is up is put again (``SafetyPath.emergency_stop``)."""


TICK = 0.05
"""Housekeeping period (s) of every :class:`~strands_mesh_ros.mesh.mesh.Mesh`: peer expiry,
command deadlines, the presence beat's schedule, the link-loss watchdog."""


CONFIRM_TIMEOUT = 0.2
"""Deadline (s) of the presence query that confirms a silent peer has gone before it is
declared lost (:class:`~strands_mesh_ros.mesh.peers.PeerTable`, ``confirm``). A running peer
answers in milliseconds (a loopback round trip through its queryable: median 1 ms, at most
3 ms in 100 queries here, idle); 0.2 s leaves a loaded peer room to answer and keeps hang
detection under 1.8 s: a peer frozen right after a beat is asked 1.5-1.55 s later (the peer
timeout, then the 50 ms expiry tick) and declared lost 0.2 s after that (measured: 1.21-1.69 s
from SIGSTOP to the caller's ``peer lost``, 50 freezes at random beat phases, idle; 1.02-1.50 s
in 20 without the query)."""


def _local(endpoint: str) -> str:
    """Turn a listen endpoint into one this process can connect to."""
    return re.sub(r"/(0\.0\.0\.0|\[::\])(?=:)", "/127.0.0.1", endpoint)


def token_peer_ids(replies: Any, keys: Any) -> set[str]:
    """The peer ids named by the replies of a liveliness query on ``keys.all_alive`` (replies
    that are errors or name no peer of this fleet are skipped)."""
    live: set[str] = set()
    for reply in replies:
        if reply.ok is None:
            continue
        try:
            peer = keys.parse(str(reply.ok.key_expr)).peer_id
        except ValueError:
            continue
        if peer:
            live.add(peer)
    return live


class SessionPool:
    """Reference-counted Zenoh sessions keyed by (role, configuration). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple, list[Any]] = {}  # key -> [session, refcount]
        self._shared: dict[tuple, "SharedPeers"] = {}

    def acquire(self, config: MeshConfig, role: Role = "main"):
        """Open (or share) the session for ``config`` and ``role``.

        The safety session never binds the main session's listen ports; it connects to them
        instead, so it reaches the same mesh.

        Raises:
            ValueError: Zenoh rejected the configuration.
            RuntimeError: the session could not be opened (e.g. a listen port in use).
        """
        import zenoh

        key = (role, config.session_key())
        with self._lock:
            entry = self._sessions.get(key)
            if entry is not None:
                entry[1] += 1
                return entry[0]
            if role == "main":
                conf = config.zenoh_config()
            else:
                conf = config.with_(connect=config.connect + tuple(_local(e) for e in config.listen)).zenoh_config(listen=False)
                if json.loads(conf.get_json("scouting/delay")) is None:  # unset in the config
                    conf.insert_json5("scouting/delay", str(SAFETY_OPEN_WAIT_MS))
            try:
                session = zenoh.open(conf)
            except zenoh.ZError as exc:
                raise RuntimeError(f"could not open the {role} Zenoh session: {one_line(exc)}") from None
            self._sessions[key] = [session, 1]
            log.debug("opened %s Zenoh session %s", role, session.zid())
            return session

    def release(self, session) -> None:
        """Drop one reference; the last one closes the session."""
        with self._lock:
            for key, entry in list(self._sessions.items()):
                if entry[0] is session:
                    entry[1] -= 1
                    if entry[1] > 0:
                        return
                    del self._sessions[key]
                    break
            else:
                return
        session.close()

    def peers_for(self, session: Any, config: MeshConfig, on_leave: Any,
                  keeper: Any = None) -> "SharedPeers":
        """The :class:`SharedPeers` of ``session`` and ``config.prefix``; registers ``on_leave``
        and ``keeper`` (:meth:`SharedPeers.add`)."""
        key = (id(session), config.prefix, config.peer_timeout)
        with self._lock:  # registered under the lock: a release cannot close it in between
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = SharedPeers(session, config.keys, config.peer_timeout)
            shared.add(on_leave, keeper)
        return shared

    def release_peers(self, shared: "SharedPeers", on_leave: Any, keeper: Any = None) -> None:
        """Unregister ``on_leave`` and ``keeper``; the last one undeclares the shared
        subscriptions and ends the housekeeping thread."""
        if keeper is not None:
            shared.drop_keeper(keeper)  # outside the pool's lock: it waits for a running round
        with self._lock:
            if shared.remove(on_leave):
                return
            for key, value in list(self._shared.items()):
                if value is shared:
                    del self._shared[key]
        shared.close()

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)


POOL = SessionPool()
"""The process's session pool."""


BARRIER_CHUNK = "~presence-barrier"
"""The peer chunk of the key a session puts its presence-reader barrier on
(``P/~presence-barrier-<random>/presence``, delivered to this session only; see
:meth:`SharedPeers._after_backlog`). ``~`` is not allowed in a peer id, so no peer's key is it,
and the random part keeps other peers from putting on it."""


class SharedPeers:
    """One presence subscription, one liveliness subscription and one peer table per Zenoh
    session and key prefix, shared by every :class:`Mesh` on that session.

    Without it, K robots in one process each decode every presence beat: O(K²) decodes per
    beat (measured in bench/bench_state.py: 2(K+1)² calls/s, saturating a core at K = 50).
    Peers that leave are reported to every registered Mesh. A peer silent for the peer timeout
    is asked for its presence (:meth:`_confirm`) before it is declared lost.

    One housekeeping thread serves every Mesh registered here: every :data:`TICK` it runs each
    one's ``keeper(now)`` and expires the shared table once. A bridge runs one Mesh per robot,
    and 100 heartbeat threads waking 20 times a second each took the GIL 2,000 times a second
    from the thread relaying joint_states (bench/bench_bridge.py fanin, py-spy: ~26 % of the
    GIL's held time).
    """

    def __init__(self, session: Any, keys: Any, timeout: float) -> None:
        import zenoh

        from .peers import PeerTable

        self._zenoh = zenoh
        self._session = session
        self.keys = keys
        self._listeners: list[Any] = []
        self._lock = threading.Lock()
        self.table = PeerTable(timeout, on_leave=self._left, confirm=self._confirm)
        self.trust: Any = None  # a WireTrust, set by the first Mesh on this session (mesh/identity.py)
        self._refused: dict[tuple[str, str], float] = {}  # (peer, reason) -> last warned, monotonic s
        self._barrier_key = f"{keys.prefix}/{BARRIER_CHUNK}-{secrets.token_hex(8)}/presence"
        self._barrier_seq = itertools.count(1)
        self._behind_barrier: dict[int, Callable[[], None]] = {}  # barrier seq -> what runs once it is read
        self._barrier_lock = threading.Lock()
        self._subs = [
            session.declare_subscriber(keys.all_presence, self._on_presence),
            session.liveliness().declare_subscriber(keys.all_alive, self._on_alive, history=True),
        ]
        self._keepers: list[Callable[[float], None]] = []
        self._keeping = threading.RLock()  # held while keepers run: drop_keeper() waits for the round
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def add(self, on_leave: Any, keeper: Callable[[float], None] | None = None) -> None:
        """Register a Mesh: ``on_leave(peer_id, why)`` when a peer leaves, and ``keeper(now)``
        (monotonic s) every :data:`TICK` on the housekeeping thread."""
        with self._lock:
            self._listeners.append(on_leave)
            if keeper is not None:
                self._keepers.append(keeper)
                if self._ticker is None:
                    self._ticker = threading.Thread(target=self._tick_loop, name="mesh-housekeeping", daemon=True)
                    self._ticker.start()

    def drop_keeper(self, keeper: Callable[[float], None]) -> None:
        """Unregister ``keeper``; once this returns it is not running and never runs again."""
        with self._keeping, self._lock:
            if keeper in self._keepers:
                self._keepers.remove(keeper)

    def remove(self, on_leave: Any) -> int:
        """Unregister ``on_leave``; returns how many are still registered."""
        with self._lock:
            if on_leave in self._listeners:
                self._listeners.remove(on_leave)
            return len(self._listeners)

    def _tick_loop(self) -> None:
        while not self._closed.wait(TICK):
            with self._keeping:
                with self._lock:
                    keepers = list(self._keepers)
                for keeper in keepers:
                    try:
                        keeper(time.monotonic())
                    except Exception:  # one Mesh's failure must not stop the others' housekeeping
                        log.exception("mesh housekeeping failed")
            try:
                self.table.expire()
            except Exception:
                log.exception("peer expiry failed")

    def _left(self, peer_id: str, why: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            cb(peer_id, why)

    def _confirm(self, peer_id: str, no_answer: Callable[[], None]) -> None:
        """Ask silent ``peer_id`` for its presence now, without waiting: a presence query on
        its key (every :class:`Mesh` answers one, ``Mesh._on_presence_query``) with a
        :data:`CONFIRM_TIMEOUT` deadline. An answer passes the checks of a beat
        (:meth:`_on_presence`) and counts as hearing the peer; ``no_answer`` runs when the
        query ends, after its last reply (Zenoh calls it as the handler's drop: at the
        deadline, at once when no queryable matches, or when the session closes), and ends
        the peer unless it was heard meanwhile.

        Why: a caller that is itself starved hears beats late, and must not declare lost a peer
        that still runs: that peer would run the commands whose callers were told ``peer
        lost`` (docs/mesh.md, the frozen-peer rule). A frozen peer cannot answer.

        ``no_answer`` runs only once the presence reader has read every beat received before
        the question ended (:meth:`_after_backlog`): a caller whose reader lags could otherwise
        hold the peer's last beat unread through the whole question."""

        def on_reply(reply: Any) -> None:
            if reply.ok is not None:  # an error reply (the deadline passed) is no answer
                self._on_presence(reply.ok)

        def ended() -> None:
            self._after_backlog(no_answer)

        try:
            self._session.get(self.keys.presence(peer_id), self._zenoh.handlers.Callback(on_reply, ended),
                              timeout=CONFIRM_TIMEOUT)
        except self._zenoh.ZError as exc:  # the session is closing: nobody can answer
            log.debug("presence query to %s not sent: %s", peer_id, exc)
            no_answer()  # Zenoh has usually called it already; a second call does nothing

    def query(self, timeout: float = 1.0) -> set[str]:
        """Ask the mesh who is on it now: the live liveliness tokens, and the current presence
        of every peer that answers a presence query (each :class:`Mesh` does, **(ext)**;
        strands-robots peers answer none and are only heard at their 2 Hz beat). Each answer
        passes the checks of a beat (:meth:`_on_presence`: decoding, key, freshness, signed
        identity) before it enters the table. Both queries go out at once and complete as soon
        as every peer has answered (milliseconds on a LAN), so nothing waits a fixed discovery
        time.

        Args:
            timeout: s, the queries' deadline (reached only when a peer hangs).

        Returns:
            The ids whose liveliness token is up.
        """
        tokens = self._session.liveliness().get(self.keys.all_alive, timeout=timeout)
        presences = self._session.get(self.keys.all_presence, timeout=timeout)
        live = token_peer_ids(tokens, self.keys)
        for peer in live:
            self.table.token(peer, True)
        for reply in presences:
            if reply.ok is not None:
                self._on_presence(reply.ok)
        return live

    def _after_backlog(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the presence reader once it has read every sample it had received
        before now: a barrier sample is put on :data:`BARRIER_CHUNK`'s key for this session
        only, and Zenoh hands a subscriber's samples to its one Python thread in order.

        Why: a caller starved of CPU had read a robot's beat before last but not its last one,
        for ~1 s; it then said ``peer lost`` 0.5 s early by the robot's own count, and the robot,
        thawed within its own peer timeout, ran the command (test_faults.py, heavy load)."""
        seq = next(self._barrier_seq)
        with self._barrier_lock:
            self._behind_barrier[seq] = fn
        try:
            self._session.put(self._barrier_key, str(seq).encode(),
                              allowed_destination=self._zenoh.Locality.SESSION_LOCAL)
        except self._zenoh.ZError as exc:  # the session is closing: nothing is left to read
            log.debug("presence barrier not put: %s", exc)
            with self._barrier_lock:
                left = self._behind_barrier.pop(seq, None)
            if left is not None:
                left()

    def _on_barrier(self, payload: bytes) -> None:
        try:
            seq = int(payload)
        except ValueError:
            return
        with self._barrier_lock:
            due = sorted(s for s in self._behind_barrier if s <= seq)
            fns = [self._behind_barrier.pop(s) for s in due]
        for fn in fns:
            try:
                fn()
            except Exception:  # one listener's failure must not stop the reader
                log.exception("presence barrier callback failed")

    def _on_presence(self, sample: Any) -> None:
        """A presence beat, or an answer to a presence query (the same checks for both), or
        this session's own barrier (:meth:`_after_backlog`)."""
        from ..contract.payloads import ContractError, Presence, decode

        if str(sample.key_expr) == self._barrier_key:
            self._on_barrier(bytes(sample.payload.to_bytes()))
            return
        try:
            pr = decode(Presence, bytes(sample.payload.to_bytes()), 64 * 1024)
            parsed = self.keys.parse(str(sample.key_expr))
        except (ContractError, ValueError) as exc:
            log.warning("bad presence on %s: %s", sample.key_expr, exc)
            return
        if parsed.peer_id != pr.id:
            log.warning("presence for %s published on %s's key: ignored", pr.id, parsed.peer_id)
            return
        if not pr.is_fresh():
            log.debug("stale presence from %s dropped", pr.id)
            return
        if self.trust is not None and (why := self._identity_refusal(bytes(sample.payload.to_bytes()), pr.id)):
            self._warn_refused(pr.id, why)
            return
        self.table.heard(pr)

    def _identity_refusal(self, payload: bytes, peer_id: str) -> str | None:
        """Why a presence is refused under the signed-identity policy (docs/security.md), or
        None. Replays are not checked: a presence is re-announced every beat anyway."""
        if not self.trust.concerns(payload):
            return None
        got = self.trust.check(json.loads(payload), peer_id, replay=False)
        return got if isinstance(got, str) else None

    def _warn_refused(self, peer_id: str, why: str) -> None:
        """Warn about a refused presence once per peer and reason per 30 s (it beats at 2 Hz)."""
        now = time.monotonic()
        if now - self._refused.get((peer_id, why), -1e9) >= 30.0:
            self._refused[(peer_id, why)] = now
            log.warning("presence of %s refused (not admitted as a peer): %s", peer_id, why)

    def _on_alive(self, sample: Any) -> None:
        try:
            peer = self.keys.parse(str(sample.key_expr)).peer_id
        except ValueError:
            return
        if peer:
            self.table.token(peer, sample.kind == self._zenoh.SampleKind.PUT)

    def close(self) -> None:
        self._closed.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=5)
        for sub in self._subs:
            try:
                sub.undeclare()
            except Exception as exc:  # the session closed first
                log.debug("undeclare: %s", exc)

