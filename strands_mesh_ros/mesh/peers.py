"""The peer table: who is on the mesh, from presence heartbeats and liveliness tokens.

A peer is present while its presence is fresh (heard within ``peer_timeout``). It leaves
when its liveliness token drops (a crash: seen within milliseconds) or its heartbeats stop (a
hang: within ``peer_timeout``). Pure Python: the mesh feeds it; no zenoh import.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..contract.payloads import Presence


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
        """A strands-robots peer: its presence has no ``schema`` (ours always sends one). Such a
        peer rate-limits what it receives (docs/interop-notes.md (g)) and needs a policy
        provider for ``execute``."""
        return self.presence.schema_ is None

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
        """``LOCKED OUT`` (an e-stop lockout is latched), ``ok`` (a robot that says it is not),
        ``–`` (no actuators: agents, bridges, dashboards) or ``?`` (a robot that does not say:
        a strands-robots peer, or an older one of ours)."""
        if self.presence.locked_out:
            return "LOCKED OUT"
        if self.presence.locked_out is False:
            return "ok"
        return "?" if self.peer_type in ("robot", "sim") else "–"


class PeerTable:
    """Thread-safe peer table with change notification.

    Args:
        timeout: seconds without presence after which a peer has left.
        on_leave: called ``on_leave(peer_id, why)`` (outside the lock) when a peer leaves.
    """

    def __init__(self, timeout: float, on_leave: Callable[[str, str], None] | None = None) -> None:
        self.timeout = timeout
        self._on_leave = on_leave
        self._cond = threading.Condition()
        self._presence: dict[str, tuple[Presence, float]] = {}  # id -> (presence, monotonic heard)
        self._tokens: set[str] = set()

    def heard(self, presence: Presence) -> None:
        with self._cond:
            self._presence[presence.id] = (presence, time.monotonic())
            self._cond.notify_all()

    def token(self, peer_id: str, up: bool) -> None:
        left = False
        with self._cond:
            if up:
                self._tokens.add(peer_id)
            else:
                self._tokens.discard(peer_id)
                left = self._presence.pop(peer_id, None) is not None
            self._cond.notify_all()
        if not up and self._on_leave:
            self._on_leave(peer_id, "liveliness token dropped" + ("" if left else " (no presence heard)"))

    def expire(self) -> list[str]:
        """Drop peers silent for longer than ``timeout``; returns their ids."""
        now = time.monotonic()
        with self._cond:
            gone = [p for p, (_, heard) in self._presence.items() if now - heard > self.timeout]
            for p in gone:
                del self._presence[p]
            if gone:
                self._cond.notify_all()
        for p in gone:
            if self._on_leave:
                self._on_leave(p, f"no presence for {self.timeout:.1f} s")
        return gone

    def _info_locked(self, pid: str, pr: Presence, heard: float, now: float) -> PeerInfo:
        return PeerInfo(pid, pr.robot_type, pr.peer_type, pr.hostname, now - heard, pid in self._tokens, pr)

    def _snapshot_locked(self) -> dict[str, PeerInfo]:
        now = time.monotonic()
        return {pid: self._info_locked(pid, pr, heard, now)
                for pid, (pr, heard) in self._presence.items() if now - heard <= self.timeout}

    def snapshot(self) -> dict[str, PeerInfo]:
        """Fresh peers by id."""
        with self._cond:
            return self._snapshot_locked()

    def get(self, peer_id: str) -> PeerInfo | None:
        """``peer_id`` if fresh, else None; without building the whole snapshot (command path)."""
        now = time.monotonic()
        with self._cond:
            entry = self._presence.get(peer_id)
            if entry is None or now - entry[1] > self.timeout:
                return None
            return self._info_locked(peer_id, entry[0], entry[1], now)

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
                if peer_id in self._tokens or (entry is not None and time.monotonic() - entry[1] <= self.timeout):
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
