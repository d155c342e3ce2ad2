"""The supplementary software e-stop: audit log, resume authorisation and the issuer's report.

This is NOT the hardwired emergency stop of IEC 60204-1 / ISO 13850; see docs/safety.md.

Resume authorisation: operators and robots share a secret key (env ``STRANDS_MESH_RESUME_KEY``
or a key file, ``STRANDS_MESH_RESUME_KEY_FILE``). A resume envelope carries an HMAC-SHA256
(RFC 2104, Python's ``hmac``) over its canonical JSON; a receiver accepts it only if the MAC
matches, the envelope is fresh (|now - t| <= :data:`RESUME_MAX_SKEW`) and its ``seq`` is
higher than any seen from that issuer (no replay). A peer with no key refuses every remote
resume.

E-stop replay: every receiver halts on any payload on ``P/safety/estop`` (fail-safe, never
refused). :class:`EStopGuard` only decides whether that stop also *latches* the lockout: an
envelope already superseded by an authorised resume (a replay) halts the robot but does not
undo the resume; see docs/security.md. Pure Python: no zenoh import.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import math
import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.payloads import EStop, Resume

RESUME_MAX_SKEW = 10.0
"""A resume envelope older or newer than this (s) is refused (clock skew + transit)."""

ESTOP_ACK_TIMEOUT = 0.5
"""Default time (s) ``emergency_stop`` gathers acks for before naming the missing peers."""

ESTOP_MAX_AGE = RESUME_MAX_SKEW
"""An e-stop envelope whose ``t`` is older than this (s) on arrival is *stale*. The same bound
as resume freshness: the fleet's clocks are already assumed to agree within it."""

ESTOP_MAX_ISSUERS = 1024
"""How many issuers :class:`EStopGuard` remembers (least recently heard forgotten first)."""


def load_resume_key(key: str | bytes | None = None) -> bytes | None:
    """The resume key: ``key`` if given, else env ``STRANDS_MESH_RESUME_KEY``, else the file
    named by ``STRANDS_MESH_RESUME_KEY_FILE``; None when there is none.

    Raises:
        ValueError: a key shorter than 16 bytes (too weak to sign with).
    """
    if key is None:
        key = os.environ.get("STRANDS_MESH_RESUME_KEY")
        if key is None and (path := os.environ.get("STRANDS_MESH_RESUME_KEY_FILE")):
            key = Path(path).read_text().strip()
    if key is None:
        return None
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < 16:
        raise ValueError("resume key must be at least 16 bytes")
    return raw


def _canonical(env: Resume) -> bytes:
    body = {"peer_id": env.peer_id, "t": env.t, "seq": env.seq, "operator": env.operator,
            "targets": env.targets}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign_resume(env: Resume, key: bytes) -> Resume:
    """Return ``env`` with its ``mac`` set (hex HMAC-SHA256 of the canonical JSON)."""
    mac = hmac.new(key, _canonical(env), hashlib.sha256).hexdigest()
    return env.model_copy(update={"mac": mac})


class ResumeGuard:
    """Decides whether a resume envelope is authorised. Thread-safe.

    Args:
        key: the shared resume key, or None to refuse all remote resumes.
    """

    def __init__(self, key: bytes | None) -> None:
        self._key = key
        self._last_seq: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, env: Resume, me: str, now: float) -> str | None:
        """None if authorised for peer ``me``; else the reason it is refused."""
        if env.targets is not None and me not in env.targets:
            return "not a target"
        if self._key is None:
            return "no resume key configured on this peer (set STRANDS_MESH_RESUME_KEY); resume it locally"
        good = hmac.new(self._key, _canonical(env), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, env.mac or ""):
            return "bad resume signature"
        if abs(now - env.t) > RESUME_MAX_SKEW:
            return f"stale resume envelope ({now - env.t:+.1f} s old)"
        with self._lock:
            if env.seq <= self._last_seq.get(env.peer_id, -1):
                return f"replayed resume envelope (seq {env.seq})"
            self._last_seq[env.peer_id] = env.seq
        return None


@dataclass(frozen=True)
class EStopVerdict:
    """What :meth:`EStopGuard.check` decided about one e-stop envelope.

    Attributes:
        latch: latch the lockout (``Robot.emergency_stop``). When False the robot is still
            halted (its driver stopped in the Zenoh callback, running calls preempted) but
            the authorised resume that superseded this envelope stands.
        replay: why the envelope is taken for a replay (audited as ``estop_replay``), or None.
    """

    latch: bool
    replay: str | None = None


class EStopGuard:
    """Tells replayed e-stop envelopes from new ones, per receiving peer. Thread-safe.

    A stop is never ignored: the caller halts the robot on *every* envelope. The guard only
    says whether to latch the lockout, and it declines only when the envelope is provably
    superseded by an authorised resume of this peer:

    * its ``seq`` is not above the highest recorded from that issuer, and this peer accepted
      a resume after that one arrived: a replay (or a late duplicate) of a stop already dealt
      with. Clock-free.
    * never seen, stale (``now - t > max_age``), and this peer accepted a resume more than
      ``max_age`` after the envelope's ``t``: a replay of an old capture.

    Everything else latches: a first envelope whatever its age (a stop delayed in the network,
    or a replay reaching a peer that was never resumed since), a duplicate before any resume,
    envelopes dated in the future or with a non-finite ``t``. Only fresh envelopes whose
    ``seq`` agrees with ``t`` (``seq`` is the issue time in ns, CONTRACT.md) are recorded, so
    a forged huge ``seq`` cannot make later genuine stops look old.

    Args:
        max_age: staleness bound, s (default :data:`ESTOP_MAX_AGE`).
    """

    def __init__(self, max_age: float = ESTOP_MAX_AGE) -> None:
        if not max_age > 0:
            raise ValueError(f"max_age must be > 0 s, got {max_age!r}")
        self.max_age = max_age
        self._resumed = float("-inf")  # last authorised resume, UNIX s (this host's clock)
        self._last: OrderedDict[str, tuple[int, float]] = OrderedDict()  # issuer -> (max seq, received)
        self._lock = threading.Lock()

    def resumed(self, at: float | None = None) -> None:
        """Record that this peer's lockout was cleared by an authorised resume at ``at``
        (UNIX s, this host's clock; default now). Call it for remote, command-path and local
        resumes alike."""
        with self._lock:
            self._resumed = max(self._resumed, time.time() if at is None else at)

    def check(self, env: EStop, received: float) -> EStopVerdict:
        """Classify ``env``, received at ``received`` (UNIX s), and remember it."""
        if not math.isfinite(env.t):
            return EStopVerdict(True, f"e-stop with a non-finite time ({env.t}): latched")
        age = received - env.t
        with self._lock:
            last = self._last.get(env.peer_id)
            if last is not None and env.seq <= last[0]:
                self._last.move_to_end(env.peer_id)
                what = "seen before" if env.seq == last[0] else "older than one seen"
                if self._resumed >= last[1]:
                    return EStopVerdict(False, f"replayed e-stop (seq {env.seq} from {env.peer_id} {what}, "
                                               f"resumed since): halted, not latched")
                return EStopVerdict(True, f"repeated e-stop (seq {env.seq} from {env.peer_id} {what}, "
                                          f"not resumed since): latched")
            plausible = -2**63 < env.seq < 2**63 and abs(env.seq - env.t * 1e9) <= self.max_age * 1e9
            if abs(age) <= self.max_age and plausible:
                self._last[env.peer_id] = (env.seq, received)
                self._last.move_to_end(env.peer_id)
                while len(self._last) > ESTOP_MAX_ISSUERS:
                    self._last.popitem(last=False)
            if age <= self.max_age:
                return EStopVerdict(True)
            if self._resumed > env.t + self.max_age:
                return EStopVerdict(False, f"replayed e-stop (stale: {age:.1f} s old, issued before this "
                                           f"peer's last resume): halted, not latched")
            return EStopVerdict(True, f"stale e-stop ({age:.1f} s old, no resume since): latched")


def halt_without_latch(robot: Any, why: str) -> None:
    """Halt ``robot`` (a :class:`~strands_mesh_ros.robot.runtime.Robot`) for an e-stop the
    guard will not latch: preempt its calls and hold position, then release the driver-level
    halt the e-stop callback set, unless a real lockout is in force."""
    robot.lanes.preempt_all(why)
    robot.driver.stop()
    if not robot.locked_out:
        robot.driver.resume()


def iso_ms(t: float) -> str:
    """UTC ISO-8601 with milliseconds, e.g. ``2026-11-21T13:45:01.123Z``."""
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def default_audit_dir() -> Path:
    """``$STRANDS_MESH_AUDIT_DIR``, else ``$XDG_STATE_HOME/strands_mesh_ros``, else
    ``~/.local/state/strands_mesh_ros``."""
    if d := os.environ.get("STRANDS_MESH_AUDIT_DIR"):
        return Path(d)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "strands_mesh_ros"


class AuditLog:
    """Append-only JSON-lines audit log, one file per peer (``audit-{peer_id}.jsonl``).

    Each line: ``{"ts": ISO-8601 UTC ms, "t": UNIX s, "peer": id, "event": ..., ...}``.
    Safety events are written and flushed in the caller's thread (the contract orders the
    audit line before the ack); routine lines (``sync=False``, e.g. every command) go through
    a writer thread so they stay off the command path, and are flushed line by line.
    """

    def __init__(self, peer_id: str, directory: str | os.PathLike | None = None) -> None:
        self.peer_id = peer_id
        d = Path(directory) if directory is not None else default_audit_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / f"audit-{peer_id}.jsonl"
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._drain, name=f"{peer_id}-audit", daemon=True)
        self._writer.start()

    def _line(self, event: str, t: float, fields: dict[str, Any]) -> str:
        return json.dumps({"ts": iso_ms(t), "t": round(t, 3), "peer": self.peer_id, "event": event, **fields},
                          default=str)

    def _append(self, line: str) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._append(self._line(*item))

    def write(self, event: str, t: float, *, sync: bool = True, **fields: Any) -> None:
        """Append one line; ``t`` is the event's UNIX time (s)."""
        if sync:
            self._append(self._line(event, t, fields))
        else:
            self._queue.put((event, t, fields))

    def close(self) -> None:
        """Write what is queued, then close the file."""
        self._queue.put(None)
        self._writer.join(timeout=5)
        with self._lock:
            self._file.close()


@dataclass
class EStopReport:
    """What ``Mesh.emergency_stop`` returns.

    Attributes:
        seq: the envelope's sequence number.
        self_halted: the issuer's own robot was halted first (False when it has none).
        stopped: ``{peer: ack latency s}`` of peers that acked with actuators halted.
        no_actuators: peers that acked but had nothing to halt (agents, dashboards).
        not_acked: known peers that did not ack within the deadline: NOT known to be stopped.
        elapsed: seconds from issue to return.
    """

    seq: int
    self_halted: bool
    stopped: dict[str, float] = field(default_factory=dict)
    no_actuators: list[str] = field(default_factory=list)
    not_acked: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def all_stopped(self) -> bool:
        """True when every known peer acked (none missing)."""
        return not self.not_acked

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "self_halted": self.self_halted, "stopped": self.stopped,
                "no_actuators": self.no_actuators, "not_acked": self.not_acked,
                "elapsed": self.elapsed, "all_stopped": self.all_stopped}
