"""The supplementary software e-stop: audit log, resume authorisation and the issuer's report.

This is NOT the hardwired emergency stop of IEC 60204-1 / ISO 13850; see docs/safety.md.

Resume authorisation: operators and robots share a secret key (env ``STRANDS_MESH_RESUME_KEY``
or a key file, ``STRANDS_MESH_RESUME_KEY_FILE``; ``strands-mesh up`` and ``strands-mesh resume``
also use the per-user key file :func:`default_resume_key_path`, which ``up`` creates with mode
0600 when it is missing). A resume envelope carries an HMAC-SHA256
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

import collections
import datetime as _dt
import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from ..contract.keys import check_peer_id
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


RESUME_KEY_ENV = "STRANDS_MESH_RESUME_KEY"
"""Environment variable holding the resume key itself (wins over every file)."""

RESUME_KEY_FILE_ENV = "STRANDS_MESH_RESUME_KEY_FILE"
"""Environment variable naming a file that holds the resume key (wins over the per-user file)."""

RESUME_KEY_MIN_BYTES = 16
"""Shortest acceptable resume key, bytes."""

_KEY_FILE_MAX_BYTES = 4096


class ResumeKeyFileError(ValueError):
    """A resume key file that must not be used: missing where a variable names it, not a
    regular file, not owned by this user, open to group/others, or holding no usable key.
    The message is one line naming the path and the fix."""


def default_resume_key_path() -> Path:
    """The per-user resume key file: ``$XDG_CONFIG_HOME/strands_mesh_ros/resume.key``
    (``XDG_CONFIG_HOME`` only when absolute, as the XDG spec says), else
    ``~/.config/strands_mesh_ros/resume.key``. Nothing is read or created."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "strands_mesh_ros" / "resume.key"


def _key_from_bytes(raw: bytes, path: Path) -> bytes:
    key = raw.strip()
    if len(key) < RESUME_KEY_MIN_BYTES:
        raise ResumeKeyFileError(
            f"resume key file {path} holds no usable key (fewer than {RESUME_KEY_MIN_BYTES} bytes): delete it "
            f"and run `strands-mesh up` to make a new one, or write the fleet's key into it")
    return key


def read_resume_key_file(path: str | os.PathLike) -> bytes:
    """Read a per-user resume key file, refusing one that others could read or replace.

    The file must be a regular file (symlinks are followed), owned by the effective user and
    without any group/other permission bits (mode 0600 or stricter), and hold at least
    :data:`RESUME_KEY_MIN_BYTES` bytes; surrounding whitespace is stripped.

    Returns:
        The key, bytes.

    Raises:
        FileNotFoundError: no file at ``path``.
        ResumeKeyFileError: the file exists but must not be used (one line: path and fix).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ResumeKeyFileError(f"resume key file {path} cannot be read ({exc.strerror}): fix its permissions "
                                 f"(`chmod 600 {path}`) or delete it and run `strands-mesh up`") from None
    try:
        st = os.fstat(fd)  # the file actually opened, not whatever the path names now
        if not stat.S_ISREG(st.st_mode):
            raise ResumeKeyFileError(f"resume key file {path} is not a regular file: remove it and run "
                                     f"`strands-mesh up` to make a new one")
        me = os.geteuid() if hasattr(os, "geteuid") else None
        if me is not None and st.st_uid != me:
            raise ResumeKeyFileError(f"resume key file {path} is owned by uid {st.st_uid}, not by you (uid {me}): "
                                     f"remove it (`strands-mesh up` makes a new one) or `chown` it to yourself")
        if me is not None and st.st_mode & 0o077:
            raise ResumeKeyFileError(f"resume key file {path} has mode {stat.S_IMODE(st.st_mode):04o}, open to "
                                     f"group/others: run `chmod 600 {path}` (and replace the key if others "
                                     f"may have read it)")
        raw = os.read(fd, _KEY_FILE_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > _KEY_FILE_MAX_BYTES:
        raise ResumeKeyFileError(f"resume key file {path} is larger than {_KEY_FILE_MAX_BYTES} bytes: "
                                 f"not a key file; move it away and run `strands-mesh up`")
    return _key_from_bytes(raw, path)


def ensure_resume_key_file(path: str | os.PathLike | None = None) -> tuple[Path, bytes, bool]:
    """Read the per-user resume key file, creating it first if it does not exist.

    A new file holds 32 random bytes as 64 hex characters (:func:`secrets.token_hex`), has
    mode 0600 and lives in a directory created with mode 0700. Creation is atomic: the key is
    written to a temporary file in the same directory and hard-linked into place, so a reader
    never sees a partial key, and when two processes race, both end up with the one that
    landed first.

    Args:
        path: the key file (default :func:`default_resume_key_path`).

    Returns:
        ``(path, key, created)``.

    Raises:
        ResumeKeyFileError: an existing file that must not be used (see
            :func:`read_resume_key_file`), or a key directory that is not yours or is writable
            by group/others.
        OSError: the directory or file could not be created.
    """
    path = Path(path) if path is not None else default_resume_key_path()
    try:
        return path, read_resume_key_file(path), False
    except FileNotFoundError:
        pass
    d = path.parent
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.stat()
    if hasattr(os, "geteuid") and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
        raise ResumeKeyFileError(f"resume key directory {d} is not yours or is writable by group/others: "
                                 f"run `chmod 700 {d}` (it must be owned by you)")
    key = secrets.token_hex(32).encode()
    tmp = d / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path, read_resume_key_file(path), False  # another process made it first
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    try:  # make the new directory entry durable (best effort)
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path, key, True


def load_resume_key(key: str | bytes | None = None, *, user_file: bool = False) -> bytes | None:
    """The resume key, first found of: ``key`` if given; env ``STRANDS_MESH_RESUME_KEY``; the
    file named by env ``STRANDS_MESH_RESUME_KEY_FILE``; with ``user_file=True``, the per-user
    key file (:func:`default_resume_key_path`, read with :func:`read_resume_key_file`'s
    checks). None when there is none. Never creates a file.

    ``user_file`` is off by default so that a peer that is not an operator tool (and every
    e-stop) never depends on the state of the user's key file; ``strands-mesh up`` and
    ``strands-mesh resume`` turn it on.

    Raises:
        ValueError: a key shorter than :data:`RESUME_KEY_MIN_BYTES` bytes (too weak to sign
            with).
        ResumeKeyFileError (a ValueError): ``STRANDS_MESH_RESUME_KEY_FILE`` names a file that
            cannot be read, or the per-user file must not be used.
    """
    if key is None:
        key = os.environ.get(RESUME_KEY_ENV)
        if key is None and (name := os.environ.get(RESUME_KEY_FILE_ENV)):
            try:
                key = Path(name).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ResumeKeyFileError(f"{RESUME_KEY_FILE_ENV}={name}: cannot read the resume key file "
                                         f"({why}): fix the path or unset the variable") from None
        if key is None and user_file:
            try:
                key = read_resume_key_file(default_resume_key_path())
            except FileNotFoundError:
                return None
    if key is None:
        return None
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < RESUME_KEY_MIN_BYTES:
        raise ValueError(f"resume key must be at least {RESUME_KEY_MIN_BYTES} bytes")
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
        """Whether ``env`` authorises peer ``me`` to resume at ``now`` (UNIX s).

        Never raises, whatever the envelope holds (a non-ASCII or non-string ``mac``,
        non-finite ``t``, odd ``targets``, an object that is not a :class:`Resume` at all):
        anything that cannot be verified is refused.

        Returns:
            None if authorised (and the envelope's ``seq`` is then recorded against replay);
            else the reason it is refused, e.g. ``"not a target"``, ``"bad resume
            signature"``, ``"stale resume envelope (...)"``, ``"replayed resume envelope
            (...)"``, ``"malformed resume envelope: ..."``.
        """
        try:
            return self._check(env, me, now)
        except Exception as exc:  # noqa: BLE001 - hostile input must never end the caller's thread
            return f"malformed resume envelope: {type(exc).__name__}"

    def _check(self, env: Resume, me: str, now: float) -> str | None:
        targets = env.targets
        if targets is not None:
            if not isinstance(targets, (list, tuple)):
                return "malformed resume envelope: targets is not a list"
            if me not in targets:
                return "not a target"
        if self._key is None:
            return "no resume key configured on this peer (set STRANDS_MESH_RESUME_KEY); resume it locally"
        mac = env.mac if env.mac is not None else ""
        if not isinstance(mac, str):
            return "malformed resume envelope: mac is not a string"
        if not mac.isascii():
            return "bad resume signature (mac is not ASCII hex)"
        good = hmac.new(self._key, _canonical(env), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, mac):
            return "bad resume signature"
        t, seq, issuer = env.t, env.seq, env.peer_id
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            return f"malformed resume envelope: t is not a finite time ({t!r:.40})"
        if isinstance(seq, bool) or not isinstance(seq, int):
            return "malformed resume envelope: seq is not an integer"
        if abs(now - t) > RESUME_MAX_SKEW:
            return f"stale resume envelope ({now - t:+.1f} s old)"
        with self._lock:
            if seq <= self._last_seq.get(issuer, -1):
                return f"replayed resume envelope (seq {seq})"
            self._last_seq[issuer] = seq
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
    guard will not latch: preempt its calls; once they have all ended, hold position and
    release the driver-level halt the e-stop callback set, unless a real lockout is in force
    (:meth:`~strands_mesh_ros.robot.runtime.Robot.release_halt`). Released at once, a skill
    that had just checked for preemption wrote its next target into a running driver and the
    arm moved after the e-stop (seen: 0.076 rad/s, test_robot_guarantees.py under load)."""
    since = robot.halts
    robot.lanes.preempt_all(why, then=lambda: robot.release_halt(since))


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


AUDIT_BATCH_INTERVAL = 0.05
"""How often (s), at most, the audit writer thread writes the routine lines queued meanwhile,
in one write. Waking it per line cost the command path a thread switch and GIL
contention per command (bench/bench_mesh.py rtt); a safety line never waits for it. An idle log
does not wake it at all: a bridge runs one log per robot, and 100 writers waking 20 times a
second each took the GIL 2,000 times a second from the thread relaying joint_states
(bench/bench_bridge.py fanin)."""


class AuditLog:
    """Append-only JSON-lines audit log, one file per peer (``audit-{peer_id}.jsonl``), or one
    file shared by several peers (``name``: ``audit-{name}.jsonl``, e.g. every CLI call's
    operator peer; each line is appended whole, in one write, and names its peer).

    Each line: ``{"ts": ISO-8601 UTC ms, "t": UNIX s, "peer": id, "event": ..., ...}``.
    Safety events are written (one unbuffered write) in the caller's thread (the contract orders the
    audit line before the ack), after any routine lines still queued, so the file keeps event
    order. Routine lines (``sync=False``, e.g. every command) are queued and written by a writer
    thread every :data:`AUDIT_BATCH_INTERVAL` s, so they stay off the command path.
    """

    def __init__(self, peer_id: str, directory: str | os.PathLike | None = None, name: str | None = None) -> None:
        self.peer_id = peer_id
        d = Path(directory) if directory is not None else default_audit_dir()
        d.mkdir(parents=True, exist_ok=True)
        self.path = d / f"audit-{check_peer_id(name) if name is not None else peer_id}.jsonl"
        self._lock = threading.Lock()  # the file, and the order of lines in it
        # Unbuffered, append-only: each batch is one write(2) at the end of the file, with no
        # text-layer encode and flush on the e-stop path (a third of a cold safety line's
        # cost here, bench/bench_mesh.py estop), and whole even when processes share the file.
        self._file = open(self.path, "ab", buffering=0)
        # deque append / popleft are thread-safe: writers never take the lock for a routine line
        self._pending: collections.deque[tuple[str, float, dict[str, Any]]] = collections.deque()
        self._closing = threading.Event()
        self._queued = threading.Event()  # set when a routine line is queued, or on close
        self._writer = threading.Thread(target=self._drain, name=f"{peer_id}-audit", daemon=True)
        self._writer.start()

    def _line(self, event: str, t: float, fields: dict[str, Any]) -> bytes:
        # pydantic-core's serialiser (UTF-8 JSON, compact; anything else as str()): a cold safety
        # line in ~half the time of json.dumps, which builds an encoder per call
        return to_json({"ts": iso_ms(t), "t": round(t, 3), "peer": self.peer_id, "event": event, **fields},
                       fallback=str)

    def _write_locked(self, extra: bytes | None = None) -> None:
        """Write the queued routine lines, then ``extra``, in one write. Caller holds the lock."""
        lines = []
        while self._pending:
            lines.append(self._line(*self._pending.popleft()))
        if self._file.closed:
            return
        if extra is not None:
            lines.append(extra)
        if lines:
            data = memoryview(b"".join(line + b"\n" for line in lines))
            while data:  # a regular file takes it whole; a short write (disk nearly full) goes on
                data = data[self._file.write(data):]

    def _drain(self) -> None:
        while True:
            self._queued.wait()  # sleeps while nothing is queued
            if self._closing.wait(AUDIT_BATCH_INTERVAL):  # gather a batch; close() writes the rest
                return
            self._queued.clear()  # before writing: a line queued from here on sets it again
            if self._pending:
                with self._lock:
                    self._write_locked()

    def write(self, event: str, t: float, *, sync: bool = True, **fields: Any) -> None:
        """Append one line; ``t`` is the event's UNIX time (s). ``sync``: written to the file
        before this returns (safety events); else queued for the writer thread."""
        if sync:
            line = self._line(event, t, fields)
            with self._lock:
                self._write_locked(line)
        else:
            self._pending.append((event, t, fields))
            if not self._queued.is_set():
                self._queued.set()

    def close(self) -> None:
        """Write what is queued, then close the file."""
        self._closing.set()
        self._queued.set()
        self._writer.join(timeout=5)
        with self._lock:
            self._write_locked()
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
        issued_at: the e-stop envelope's ``t``: UNIX time (s) of the issue, by this clock.
        halted_at: ``{peer: UNIX time s}``, by each peer's own clock: when it had halted,
            latched and written its audit line (its ack's ``t``, taken just before the ack is
            put). For the peers in ``stopped`` that acked on the safety path with a finite
            ``t``; not for those stopped by the command path's ``stop`` (no such time). On one
            host, ``halted_at[p] - issued_at`` is how long ``p`` took, without the time its ack
            then took to reach this process (``stopped``); across hosts it includes their
            clock offset.
    """

    seq: int
    self_halted: bool
    stopped: dict[str, float] = field(default_factory=dict)
    no_actuators: list[str] = field(default_factory=list)
    not_acked: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    issued_at: float = 0.0
    halted_at: dict[str, float] = field(default_factory=dict)

    @property
    def all_stopped(self) -> bool:
        """True when every known peer acked (none missing)."""
        return not self.not_acked

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "self_halted": self.self_halted, "stopped": self.stopped,
                "no_actuators": self.no_actuators, "not_acked": self.not_acked,
                "elapsed": self.elapsed, "all_stopped": self.all_stopped, "issued_at": self.issued_at,
                "halted_at": self.halted_at}
