"""Record the strands mesh to a rosbag2 bag (MCAP storage) and replay its state.

A bag written here is a standard rosbag2 directory (``metadata.yaml`` + one ``.mcap`` file,
rosbag2 format version 9 with RIHS01 type hashes), written by the ``rosbags`` library, so
``ros2 bag info``, Foxglove, ``rosbags`` and ``mcap`` + ``mcap-ros2-support`` all read it.

Topics (docs/recording.md):

======================  ======================================  =============================
topic                   type                                    from
======================  ======================================  =============================
``/<id>/joint_states``  sensor_msgs/msg/JointState              every State on ``P/<id>/state``
``/<id>/odom``          nav_msgs/msg/Odometry                   a State that carries ``base_pose``
``/mesh_wire/<kind>``   strands_mesh_ros/msg/MeshSample         every sample under ``P/**``, raw
======================  ======================================  =============================

``<kind>`` is the contract key kind (:meth:`~strands_mesh_ros.contract.keys.KeySpace.parse`):
``presence``, ``state``, ``stream``, ``camera``, ``cmd``, ``broadcast``, ``response``,
``estop``, ``estop_ack``, ``resume``, ``resume_ack``; a key under the prefix that is not a
contract key goes to ``other``. Contract traffic is kept as ``MeshSample`` (key expression +
exact payload bytes + the payload as text when it is UTF-8) rather than as typed messages:
garbage, over-size or future payloads must be recorded byte for byte for an incident to be
inspected, acks and resumes have no typed message in ``msg/``, and one type for every key
means nothing is lost in a conversion. The type is defined here (:data:`MESH_SAMPLE_MSGDEF`)
and embedded in the bag, so readers need no installed package; ``ros2 bag play`` skips its
topics on machines without it, which is what a replay of commands and e-stops must do anyway.

Bag timestamps (log time) are the recorder's receive time, ns since the UNIX epoch;
``header.stamp`` of JointState / Odometry is the State's own ``t``. Never imports rclpy.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .contract.keys import KeySpace, check_peer_id, check_prefix
from .contract.payloads import ContractError, State, decode
from .mesh.config import MeshConfig
from .ros.topics import check_ros_robot_id

log = logging.getLogger(__name__)

BAG_VERSION = 9
"""rosbag2 metadata version written (the latest rosbags 0.11 writes; ROS 2 Jazzy and later read it)."""

WIRE_NS = "/mesh_wire"
"""Topic namespace of the raw mesh samples (kept apart from the bridge's typed ``/mesh/...`` topics)."""

MESH_SAMPLE_TYPE = "strands_mesh_ros/msg/MeshSample"
MESH_SAMPLE_MSGDEF = """\
# One Zenoh sample of the strands mesh, as it was on the wire (written by strands-mesh record).
builtin_interfaces/Time stamp  # when the recorder received it (UNIX time)
string key                     # full key expression, e.g. strands/safety/estop
string kind                    # contract key kind (presence, cmd, estop, ...) or "other"
bool utf8                      # the payload is valid UTF-8 (then text holds it)
string text                    # the payload as text when utf8, else empty
uint8[] payload                # the exact payload bytes
"""

KINDS = ("presence", "alive", "state", "stream", "camera", "cmd", "broadcast", "response", "estop",
         "estop_ack", "resume", "resume_ack", "other")

META_PREFIX = "strands_mesh.prefix"
META_NAMESPACE = "strands_mesh.namespace"


class RecordingError(ValueError):
    """A bag cannot be written or read; the message names the path and the problem."""


def make_typestore() -> Any:
    """A rosbags typestore of ROS 2 Kilted's messages plus :data:`MESH_SAMPLE_TYPE`."""
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(MESH_SAMPLE_MSGDEF, MESH_SAMPLE_TYPE))
    return store


def wire_topic(kind: str) -> str:
    """The bag topic of raw samples of key kind ``kind`` (``/mesh_wire/<kind>``)."""
    return f"{WIRE_NS}/{kind if kind in KINDS else 'other'}"


def prepare_output(out: str | Path, force: bool = False) -> Path:
    """Check that a bag can be written at ``out`` (a directory that must not exist yet).

    With ``force``, an existing *bag* (a directory of only ``metadata.yaml`` and storage files
    ``*.mcap`` / ``*.db3``, possibly ``.zstd``-compressed, or an empty directory) is removed
    first; anything else is never removed.

    Raises:
        RecordingError: ``out`` exists (without ``force``, or not a bag), or its parent is
            missing, not a directory or not writable.
    """
    path = Path(out)
    if path.exists() or path.is_symlink():
        if not force:
            raise RecordingError(f"{path} already exists: choose a new OUT, or pass --force to replace that bag")
        if not _is_bag_dir(path):
            raise RecordingError(f"{path} exists and is not a rosbag2 bag (only metadata.yaml and .mcap/.db3 "
                                 "files): not replacing it")
        shutil.rmtree(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise RecordingError(f"cannot write {path}: {parent} is not a directory")
    try:
        Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent)).rmdir()  # can we create it there?
    except OSError as exc:
        raise RecordingError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _is_bag_dir(path: Path) -> bool:
    if path.is_symlink() or not path.is_dir():
        return False
    entries = list(path.iterdir())
    storage = (".mcap", ".db3", ".mcap.zstd", ".db3.zstd")
    return all(e.is_file() and not e.is_symlink() and (e.name == "metadata.yaml" or e.name.endswith(storage))
               for e in entries) and (not entries or (path / "metadata.yaml").is_file())


def _stamp(t: float) -> tuple[int, int]:
    sec = math.floor(t)
    return int(sec), min(int((t - sec) * 1e9), 999_999_999)


@dataclass
class BagStats:
    """What a recording holds: samples per bag topic, and States not convertible to ROS."""

    topics: dict[str, int] = field(default_factory=dict)
    unconvertible: int = 0
    no_ros_name: set[str] = field(default_factory=set)

    @property
    def samples(self) -> int:
        """Raw mesh samples written (``/mesh_wire/*``)."""
        return sum(n for t, n in self.topics.items() if t.startswith(WIRE_NS + "/"))

    def to_dict(self) -> dict[str, Any]:
        return {"topics": dict(sorted(self.topics.items())), "samples": self.samples,
                "unconvertible_states": self.unconvertible, "ids_without_ros_name": sorted(self.no_ros_name)}


class BagWriter:
    """Writes mesh samples into a new rosbag2/MCAP bag. Not thread-safe: one writer thread.

    Args:
        path: the bag directory to create (see :func:`prepare_output`).
        config: the mesh recorded (its prefix parses keys; prefix and namespace go into the
            bag's ``custom_data``).

    Raises:
        RecordingError: the bag cannot be created.
    """

    def __init__(self, path: str | Path, config: MeshConfig) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        self.path = Path(path)
        self.keys = KeySpace(config.prefix)
        self.stats = BagStats()
        self._ts = make_typestore()
        self._conns: dict[str, Any] = {}
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_custom_data(META_PREFIX, config.prefix)
        self._writer.set_custom_data(META_NAMESPACE, config.namespace or "")
        try:
            self._writer.open()
        except (OSError, WriterError) as exc:
            raise RecordingError(f"cannot write {self.path}: {exc}") from None
        t = self._ts.types
        self._Time, self._Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
        self._Sample, self._JointState = t[MESH_SAMPLE_TYPE], t["sensor_msgs/msg/JointState"]

    def _conn(self, topic: str, msgtype: str) -> Any:
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self._ts)
        return conn

    def _put(self, topic: str, msgtype: str, msg: Any, ns: int) -> None:
        self._writer.write(self._conn(topic, msgtype), ns, self._ts.serialize_cdr(msg, msgtype))
        self.stats.topics[topic] = self.stats.topics.get(topic, 0) + 1

    def write(self, key: str, payload: bytes, recv_ns: int) -> None:
        """Write one sample of ``key``: raw on ``/mesh_wire/<kind>``, and a State also as
        JointState (and Odometry when it carries ``base_pose``). A payload that is not a
        readable State is recorded raw only (counted in ``stats.unconvertible``)."""
        try:
            parsed = self.keys.parse(key)
            kind = parsed.kind
        except ValueError:
            parsed, kind = None, "other"
        try:
            text, utf8 = payload.decode("utf-8"), True
        except UnicodeDecodeError:
            text, utf8 = "", False
        import numpy as np

        stamp = self._Time(sec=recv_ns // 1_000_000_000, nanosec=recv_ns % 1_000_000_000)
        sample = self._Sample(stamp=stamp, key=key, kind=kind, utf8=utf8, text=text,
                              payload=np.frombuffer(payload, dtype=np.uint8))
        self._put(wire_topic(kind), MESH_SAMPLE_TYPE, sample, recv_ns)
        if kind == "state" and parsed is not None:
            self._write_state(parsed.peer_id, payload, recv_ns)

    def _write_state(self, peer_id: str, payload: bytes, recv_ns: int) -> None:
        import numpy as np

        try:
            st = decode(State, payload)
            sec, nsec = _stamp(st.t)
        except (ContractError, ValueError, OverflowError):
            self.stats.unconvertible += 1
            return
        try:
            ns = "/" + check_ros_robot_id(peer_id)
        except ValueError:
            if peer_id not in self.stats.no_ros_name:
                log.warning("robot id %r is not a ROS name: its state is recorded raw only (%s/state)", peer_id, WIRE_NS)
            self.stats.no_ros_name.add(peer_id)
            return
        header = self._Header(stamp=self._Time(sec=sec, nanosec=nsec), frame_id="")
        names = list(st.joints)
        js = self._JointState(
            header=header, name=names,
            position=np.array([st.joints[n].position for n in names], dtype=np.float64),
            velocity=np.array([st.joints[n].velocity for n in names], dtype=np.float64),
            effort=np.array([st.joints[n].effort for n in names], dtype=np.float64))
        self._put(f"{ns}/joint_states", "sensor_msgs/msg/JointState", js, recv_ns)
        # ``base_pose`` is a State extension: a declared field once the contract names it, an
        # extra field from peers whose contract does not (read both ways)
        pose = getattr(st, "base_pose", None) or (st.model_extra or {}).get("base_pose")
        if isinstance(pose, dict):
            odom = self._odometry(peer_id, header, pose)
            if odom is not None:
                self._put(f"{ns}/odom", "nav_msgs/msg/Odometry", odom, recv_ns)

    def _odometry(self, peer_id: str, header: Any, pose: dict[str, Any]) -> Any:
        """``base_pose`` ``{x, y, z, yaw}`` (m, rad, REP-103) -> nav_msgs/Odometry in
        ``<id>/odom`` with child frame ``<id>/base_link`` (covariances unknown: zero)."""
        import numpy as np

        t = self._ts.types
        try:
            x, y, z, yaw = (float(pose.get(k, 0.0)) for k in ("x", "y", "z", "yaw"))
        except (TypeError, ValueError):
            self.stats.unconvertible += 1
            return None
        Vec, Pt, Quat = t["geometry_msgs/msg/Vector3"], t["geometry_msgs/msg/Point"], t["geometry_msgs/msg/Quaternion"]
        zero6 = np.zeros(36, dtype=np.float64)
        pose_msg = t["geometry_msgs/msg/PoseWithCovariance"](
            pose=t["geometry_msgs/msg/Pose"](position=Pt(x=x, y=y, z=z),
                                             orientation=Quat(x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2))),
            covariance=zero6)
        twist = t["geometry_msgs/msg/TwistWithCovariance"](
            twist=t["geometry_msgs/msg/Twist"](linear=Vec(x=0.0, y=0.0, z=0.0), angular=Vec(x=0.0, y=0.0, z=0.0)),
            covariance=zero6.copy())
        hdr = self._Header(stamp=header.stamp, frame_id=f"{peer_id}/odom")
        return t["nav_msgs/msg/Odometry"](header=hdr, child_frame_id=f"{peer_id}/base_link", pose=pose_msg, twist=twist)

    def close(self) -> None:
        """Finish the bag (writes ``metadata.yaml``). Idempotent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Recorder:
    """Records every sample under the mesh prefix (``P/**``) into a new bag until stopped.

    Samples are taken in Zenoh's callback (a copy and a queue put, nothing else: callbacks
    must not block) and written by one writer thread; the queue is unbounded, so a slow disk
    costs memory, never a lost sample nor back-pressure on the fleet's publishers.

    Args:
        out: the bag directory (must not exist; see :func:`prepare_output`).
        config: which mesh to join (default ``MeshConfig.from_env()``).

    Raises:
        RecordingError: the bag cannot be written. RuntimeError / ValueError: Zenoh could
            not open a session with ``config``.
    """

    def __init__(self, out: str | Path, config: MeshConfig | None = None) -> None:
        self.config = config or MeshConfig.from_env()
        self.path = Path(out)
        self.first_sample = threading.Event()
        self.received = 0
        """Samples taken from Zenoh so far (written, or queued to be)."""
        self._count_lock = threading.Lock()
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = BagWriter(self.path, self.config)
        self._session = self._sub = None
        self._thread = threading.Thread(target=self._drain, name="bag-writer", daemon=True)
        self._error: BaseException | None = None

    @property
    def stats(self) -> BagStats:
        return self._writer.stats

    def start(self) -> "Recorder":
        from .mesh.session import POOL

        try:
            self._session = POOL.acquire(self.config, "main")
        except BaseException:
            self._writer.close()
            shutil.rmtree(self.path, ignore_errors=True)  # the empty bag we just made: a retry must not need --force
            raise
        self._thread.start()
        self._sub = self._session.declare_subscriber(f"{self.config.prefix}/**", self._on_sample)
        return self

    def _on_sample(self, sample: Any) -> None:
        self._q.put((str(sample.key_expr), bytes(sample.payload.to_bytes()), time.time_ns()))
        with self._count_lock:  # Zenoh may call back from several threads
            self.received += 1
        self.first_sample.set()

    def _drain(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                self._writer.write(*item)
            except Exception as exc:  # a failing disk: stop writing, report at stop()
                self._error = exc
                log.error("recording to %s failed: %s", self.path, exc)
                return

    def stop(self) -> BagStats:
        """Stop taking samples, write what was queued, close the bag. Idempotent.

        Raises:
            RecordingError: writing the bag failed (names the cause).
        """
        from .mesh.session import POOL

        if self._sub is not None:
            self._sub.undeclare()
            self._sub = None
        if self._session is not None:
            POOL.release(self._session)
            self._session = None
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise RecordingError(f"recording to {self.path} failed: {self._error}")
        return self.stats

    def __enter__(self) -> "Recorder":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- reading and replay ------------------------------------------------------------------------

def open_bag(path: str | Path) -> Any:
    """An opened ``rosbags.highlevel.AnyReader`` of the bag at ``path`` (close it after use).

    Raises:
        RecordingError: no bag there, or not readable.
    """
    from rosbags.highlevel import AnyReader, AnyReaderError

    p = Path(path)
    if not (p / "metadata.yaml").is_file():
        raise RecordingError(f"{p} is not a rosbag2 bag (no metadata.yaml)")
    reader = AnyReader([p], default_typestore=make_typestore())
    try:
        reader.open()
    except (AnyReaderError, OSError) as exc:
        raise RecordingError(f"cannot read bag {p}: {exc}") from None
    return reader


def recorded_prefix(path: str | Path) -> str | None:
    """The mesh prefix a bag was recorded under (its ``custom_data``), or None if unknown."""
    import yaml

    try:
        meta = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
        return meta["rosbag2_bagfile_information"].get("custom_data", {}).get(META_PREFIX)
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def wire_samples(path: str | Path, kinds: tuple[str, ...] = KINDS) -> Iterator[tuple[int, str, bytes]]:
    """``(log time ns, key, payload bytes)`` of the raw samples of ``kinds``, in log-time order.

    Raises:
        RecordingError: see :func:`open_bag`.
    """
    reader = open_bag(path)
    try:
        conns = [c for c in reader.connections if c.topic in {wire_topic(k) for k in kinds}
                 and c.msgtype == MESH_SAMPLE_TYPE]
        for conn, ns, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            yield ns, msg.key, bytes(msg.payload)
    finally:
        reader.close()


@dataclass
class ReplayStats:
    states: int = 0
    presences: int = 0
    skipped: int = 0
    peers: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"states": self.states, "presences": self.presences, "skipped": self.skipped,
                "peers": sorted(self.peers)}


def replay(path: str | Path, config: MeshConfig, *, replay_prefix: str | None = None, rate: float = 1.0,
           stop: threading.Event | None = None, on_start: Callable[[str], None] | None = None) -> ReplayStats:
    """Republish a bag's recorded State (and robot presence) under ``replay_prefix``.

    Only ``P/<id>/state`` samples that read as a contract State are put, byte for byte, on
    ``<replay_prefix>/<id>/state``; recorded presence of robots and sims is put on
    ``<replay_prefix>/<id>/presence`` re-stamped to now (receivers drop presence older than
    60 s) with its skills, ``ros`` and ``via`` removed (nothing answers commands there, and a
    bridge mirrors only mesh-only peers into ROS). Commands, responses, e-stops, resumes and
    acks are never published: no key but these two is ever built.

    Args:
        path: the bag (written by :class:`Recorder`).
        config: the mesh to publish on (its prefix is not used).
        replay_prefix: key prefix to publish under; default ``<recorded prefix>_replay``.
        rate: playback speed factor (1.0 = as recorded), timed by the bag's log times.
        stop: set it to end the replay early.
        on_start: called with the replay prefix once publishing starts.

    Raises:
        RecordingError: unreadable bag, bad ``rate``, or ``replay_prefix`` equal to the
            recorded prefix (recorded state would mix with the live robots').
        ValueError: malformed ``replay_prefix``.
    """
    from .mesh.session import POOL

    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise RecordingError(f"rate must be a positive number, got {rate!r}")
    source = recorded_prefix(path)
    target = check_prefix(replay_prefix or f"{source or 'strands'}_replay")
    if source is not None and target == source:
        raise RecordingError(f"replay prefix {target!r} is the prefix the bag was recorded under: the replay "
                             "would mix with the live robots; choose another --prefix")
    samples = wire_samples(path, ("state", "presence"))
    stats = ReplayStats()
    stop = stop or threading.Event()
    session = POOL.acquire(config, "main")
    try:
        start_wall = t0 = None
        for ns, key, payload in samples:
            item = _replay_item(key, payload, source, target)
            if item is None:
                stats.skipped += 1
                continue
            if t0 is None:
                t0, start_wall = ns, time.monotonic()
                if on_start is not None:
                    on_start(target)
            due = start_wall + (ns - t0) / 1e9 / rate
            while not stop.is_set() and (left := due - time.monotonic()) > 0:
                stop.wait(min(left, 0.2))  # short ticks: Ctrl-C reaches the main thread between them
            if stop.is_set():
                break
            out_key, out_payload, kind, peer = item
            if kind == "presence":
                out_payload = _restamp(out_payload)
                stats.presences += 1
            else:
                stats.states += 1
            stats.peers.add(peer)
            session.put(out_key, out_payload)
    finally:
        samples.close()
        POOL.release(session)
    return stats


def _replay_item(key: str, payload: bytes, source: str | None, target: str) -> tuple[str, bytes, str, str] | None:
    """``(key, payload, kind, peer)`` to republish for a recorded sample, or None to skip it."""
    head, _, kind = key.rpartition("/")
    prefix, _, peer = head.rpartition("/")
    if kind not in ("state", "presence") or (source is not None and prefix != source):
        return None
    try:
        check_peer_id(peer)
        if kind == "state":
            decode(State, payload)
        else:
            pres = json.loads(payload)
            if not isinstance(pres, dict) or pres.get("peer_type") not in ("robot", "sim"):
                return None
    except (ValueError, ContractError):
        return None
    return f"{target}/{peer}/{kind}", payload, kind, peer


def _restamp(payload: bytes) -> bytes:
    pres = json.loads(payload)
    for k in ("skills", "ros", "via", "sig"):
        pres.pop(k, None)
    pres["timestamp"] = time.time()
    pres["replay"] = True
    return json.dumps(pres).encode()


__all__ = ["BagWriter", "Recorder", "RecordingError", "BagStats", "ReplayStats", "replay", "wire_samples",
           "open_bag", "prepare_output", "make_typestore", "wire_topic", "recorded_prefix",
           "MESH_SAMPLE_TYPE", "MESH_SAMPLE_MSGDEF", "WIRE_NS"]
