"""The peer table: who is on the mesh, from presence heartbeats and liveliness tokens.

A peer is present while its presence is fresh (heard within ``peer_timeout``). It leaves
when its liveliness token drops (a crash: seen within milliseconds) or its heartbeats stop (a
hang): silent for ``peer_timeout``, it is first asked whether it runs (the table's ``confirm``
hook; the mesh sends a presence query), and it leaves only when no answer comes. Why: a
caller that is itself starved hears presences late, and without the question it would drop a
peer that still runs, which then runs the commands whose callers were told ``peer lost``
(docs/mesh.md, the frozen-peer rule). Pure Python: the mesh feeds it; no zenoh import.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..contract.payloads import Presence


def is_strands_robots(presence: Presence) -> bool:
    """A strands-robots peer: its presence has no ``schema`` (ours always sends one). Such a
    peer rate-limits what it receives (docs/interop-notes.md (g)), needs a policy provider for
    ``execute``, and answers no presence query."""
    return presence.schema_ is None


@dataclass(frozen=True)
class PeerInfo:
    """One peer as seen now.

    Attributes:
        peer_id, robot_type, peer_type, hostname: from its presence.
        age: seconds since its last presence was received.
        live_token: whether its liveliness token is up (False for strands-robots peers,
            which publish none).
        presence: the last presence payload.
    """

    peer_id: str
    robot_type: str
    peer_type: str
    hostname: str
    age: float
    live_token: bool
    presence: Presence

    @property
    def skills(self) -> list[dict[str, Any]]:
        return [s.model_dump() for s in self.presence.skills]

    @property
    def via(self) -> str | None:
        return self.presence.via

    @property
    def strands_robots(self) -> bool:
        """A strands-robots peer (:func:`is_strands_robots`)."""
        return is_strands_robots(self.presence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id, "robot_type": self.robot_type, "peer_type": self.peer_type,
            "hostname": self.hostname, "age": round(self.age, 3), "live_token": self.live_token,
            "via": self.via, "task_status": self.presence.task_status,
            "ros": self.presence.ros.model_dump() if self.presence.ros else None,
            "skills": [s.name for s in self.presence.skills],
            "locked_out": self.presence.locked_out, "lockout": self.presence.lockout,
        }

    @property
    def estop_state(self) -> str:
        """:attr:`Presence.estop_state <strands_mesh_ros.contract.payloads.Presence.estop_state>`."""
        return self.presence.estop_state


Confirm = Callable[[str, Callable[[], None]], None]
"""``confirm(peer_id, no_answer)``: ask ``peer_id`` whether it runs, without blocking. An answer
is fed to :meth:`PeerTable.heard`; ``no_answer()`` must be called once the question has ended,
answered or not (it does nothing when the peer was heard meanwhile)."""


class PeerTable:
    """Thread-safe peer table with change notification.

    Args:
        timeout: seconds without presence after which a peer has left, or, with ``confirm``,
            is asked whether it runs.
        on_leave: called ``on_leave(peer_id, why)`` (outside the lock) when a peer leaves.
        confirm: asks a silent peer whether it runs (:data:`Confirm`); None: silence alone
            ends a peer. Never used for strands-robots peers (:attr:`PeerInfo.strands_robots`):
            they answer no presence query, so asking would only delay their end.

    A peer under question stays present (its ``age`` over ``timeout``) until it answers or
    the question ends, so ``confirm`` must end every question (the mesh's ends at its query's
    deadline, in Zenoh).
    """

    def __init__(self, timeout: float, on_leave: Callable[[str, str], None] | None = None,
                 confirm: Confirm | None = None) -> None:
        self.timeout = timeout
        self._on_leave = on_leave
        self._confirm = confirm
        self._cond = threading.Condition()
        self._presence: dict[str, tuple[Presence, float]] = {}  # id -> (presence, monotonic heard)
        self._asked: dict[str, float] = {}  # id -> the heard time of the silence being confirmed
        self._tokens: set[str] = set()

    def heard(self, presence: Presence) -> None:
        with self._cond:
            self._presence[presence.id] = (presence, time.monotonic())
            self._asked.pop(presence.id, None)
            self._cond.notify_all()

    def token(self, peer_id: str, up: bool) -> None:
        left = False
        with self._cond:
            if up:
                self._tokens.add(peer_id)
            else:
                self._tokens.discard(peer_id)
                left = self._presence.pop(peer_id, None) is not None
                self._asked.pop(peer_id, None)  # a crash ends a peer at once, unconfirmed
            self._cond.notify_all()
        if not up and self._on_leave:
            self._on_leave(peer_id, "liveliness token dropped" + ("" if left else " (no presence heard)"))

    def expire(self) -> list[str]:
        """Ask peers silent for longer than ``timeout`` whether they run (``confirm``), once per
        silence; drop those that cannot be asked (no ``confirm``, a strands-robots peer).
        Returns the ids dropped here (a peer that does not answer leaves from
        :meth:`_no_answer`)."""
        now = time.monotonic()
        gone: list[str] = []
        ask: list[tuple[str, float]] = []
        with self._cond:
            for p, (pr, heard) in self._presence.items():
                if now - heard <= self.timeout:
                    continue
                if self._confirm is None or is_strands_robots(pr):
                    gone.append(p)
                elif self._asked.get(p) != heard:
                    self._asked[p] = heard
                    ask.append((p, heard))
            for p in gone:
                del self._presence[p]
            if gone:
                self._cond.notify_all()
        for p in gone:
            if self._on_leave:
                self._on_leave(p, f"no presence for {self.timeout:.1f} s")
        for p, heard in ask:
            self._confirm(p, lambda p=p, heard=heard: self._no_answer(p, heard))
        return gone

    def _no_answer(self, peer_id: str, heard: float) -> None:
        """The question about ``peer_id``'s silence since ``heard`` ended: it leaves unless it
        was heard meanwhile (or has left already)."""
        with self._cond:
            entry = self._presence.get(peer_id)
            if entry is None or entry[1] != heard:
                return
            del self._presence[peer_id]
            self._asked.pop(peer_id, None)
            self._cond.notify_all()
        if self._on_leave:
            self._on_leave(peer_id, f"no presence for {self.timeout:.1f} s and no answer to a presence query")

    def _present_locked(self, pid: str, heard: float, now: float) -> bool:
        """Fresh, or silent but still being asked whether it runs."""
        return now - heard <= self.timeout or self._asked.get(pid) == heard

    def _info_locked(self, pid: str, pr: Presence, heard: float, now: float) -> PeerInfo:
        return PeerInfo(pid, pr.robot_type, pr.peer_type, pr.hostname, now - heard, pid in self._tokens, pr)

    def _snapshot_locked(self) -> dict[str, PeerInfo]:
        now = time.monotonic()
        return {pid: self._info_locked(pid, pr, heard, now)
                for pid, (pr, heard) in self._presence.items() if self._present_locked(pid, heard, now)}

    def snapshot(self) -> dict[str, PeerInfo]:
        """Present peers by id: fresh, or being asked whether they run."""
        with self._cond:
            return self._snapshot_locked()

    def present_ids(self) -> set[str]:
        """The ids :meth:`snapshot` would hold, without building a :class:`PeerInfo` for each
        (an e-stop asks this at every answer it waits for)."""
        now = time.monotonic()
        with self._cond:
            return {pid for pid, (_, heard) in self._presence.items() if self._present_locked(pid, heard, now)}

    def get(self, peer_id: str) -> PeerInfo | None:
        """``peer_id`` if present (as in :meth:`snapshot`), else None; without building the whole
        snapshot (command path)."""
        now = time.monotonic()
        with self._cond:
            entry = self._presence.get(peer_id)
            if entry is None or not self._present_locked(peer_id, entry[1], now):
                return None
            return self._info_locked(peer_id, entry[0], entry[1], now)

    def is_strands_robots(self, peer_id: str) -> bool:
        """Whether ``peer_id``'s last presence heard is a strands-robots peer's (present or
        not): one dict read, for the command path's pacing check."""
        entry = self._presence.get(peer_id)  # a single dict read is atomic under the GIL
        return entry is not None and is_strands_robots(entry[0])

    def tokens(self) -> set[str]:
        """Ids whose liveliness token is up (presence heard or not)."""
        with self._cond:
            return set(self._tokens)

    def has_token(self, peer_id: str) -> bool:
        with self._cond:
            return peer_id in self._tokens

    def wait_known(self, peer_id: str, timeout: float) -> bool:
        """Block until ``peer_id`` is known (fresh presence or a live liveliness token) or
        ``timeout`` (s) passes; returns whether it is known. Wakes on each change, so it
        returns as soon as the peer is heard, never after a fixed wait."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                entry = self._presence.get(peer_id)
                if peer_id in self._tokens or (entry is not None
                                               and self._present_locked(peer_id, entry[1], time.monotonic())):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)

    def wait_for(self, predicate: Callable[[dict[str, PeerInfo]], bool], timeout: float) -> bool:
        """Block until ``predicate(snapshot)`` holds or ``timeout`` (s) passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self._snapshot_locked()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
