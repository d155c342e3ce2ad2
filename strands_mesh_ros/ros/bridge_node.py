"""``BridgeNode``: the ROS graph and the strands mesh as one fleet.

ROS robots become mesh peers
    Every robot node of this fleet (same key prefix) heard on ``/mesh/presence`` gets a proxy
    peer on the mesh with the same id, its ROS namespace in presence and ``via`` = this bridge.
    The proxy *relays*; it implements none of the contract. Each mesh command is carried
    verbatim (``Command.envelope``) on ``/<id>/mesh/command``; the robot node's own peer core
    (:class:`~strands_mesh_ros.robot.peer_core.PeerCore`, the code of every mesh robot) decodes,
    deduplicates, answers, and names the key its answer goes to, which the bridge checks and
    puts on the mesh verbatim. At most :data:`RELAY_WINDOW` commands per robot are in flight;
    beyond that the proxy's intake waits, so a burst queues with back-pressure to its senders
    instead of overflowing a ROS queue (nothing is dropped). ``/<id>/joint_states`` becomes its
    contract state. A robot node silent for the peer timeout (1.5 s) leaves the mesh, and calls
    in flight to it fail with ``peer lost``.

Mesh peers appear in ROS
    ``/mesh/peers`` (PeerArray, 2 Hz) lists every peer. Each robot that is not in ROS
    (no ``ros`` and no ``via`` in its presence) and publishes state is mirrored as
    ``/<peer>/joint_states`` and a latched ``/<peer>/robot_description`` (from its ``features``
    answer), so rviz shows it. ROS nodes command any peer with the ``/mesh/send_command``
    service, or fire-and-forget on ``/mesh/command`` (answers on ``/mesh/response``).
    ``/diagnostics`` (2 Hz) carries a status per peer that is not a ROS robot behind this bridge,
    and the bridge's own (:mod:`strands_mesh_ros.robot.diagnostics`; a standby bridge: its own only).

E-stop and resume cross in both directions
    Every sample on the mesh e-stop key is carried onto ``/mesh/estop`` in Zenoh's callback,
    before anything reads it (``EStop.envelope``, ``relayed_by`` = this bridge, ``prefix`` =
    this fleet): an unreadable e-stop halts ROS robots exactly as mesh robots. Each ROS robot's
    ack on ``/mesh/estop_ack`` goes back to the issuer verbatim, so a ROS robot that did not
    halt is reported as not stopped. An e-stop issued in ROS (empty ``relayed_by``) is issued on
    the mesh by the bridge; one that came in from a mesh never goes back out, so fleets sharing
    a ROS domain never loop (the bridge's ``/mesh/estop`` subscription has a DDS content filter,
    ``relayed_by = ''``, so relayed ones do not even wake its executor). Signed resume envelopes
    pass through unchanged (the robots verify them).

Loop-free, one bridge active per ROS domain and fleet
    Relayed peers carry ``via``: a bridge never mirrors a peer that is in ROS or relayed, and
    never forwards back what it forwarded. Several bridges may watch one ROS domain: of those
    on one fleet's mesh, the one with the lowest peer id is active, the others stand by and take
    over when it leaves, so peers are never duplicated on the mesh. The default bridge id is
    unique per process (``bridge_<host>_<pid>``).

No callback ends the bridge's executor: each is contained and logged, and the bridge never
blocks in one (an e-stop from ROS is issued on a worker thread).

The e-stop carried here is the supplementary software stop of docs/safety.md, never the
hardwired emergency stop of IEC 60204-1 / ISO 13850.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.node import Node
from rclpy.subscription import ContentFilterOptions
from std_msgs.msg import String

from ..contract.keys import InvalidPeerId, check_peer_id
from ..contract.payloads import ContractError, State, decode, loads, state_json
from ..mesh.config import MeshConfig
from ..mesh.mesh import DuplicatePeer, Mesh
from ..robot.diagnostics import OK, Diagnostic, peer_diagnostic
from ..robot.peer_core import answer_key_allowed
from . import convert, qos, topics
from .spin import contained, read_backlogs, run_main

PEERS_TOPIC = topics.PEERS
SEND_SERVICE = "/mesh/send_command"
COMMAND_TOPIC = "/mesh/command"
RESPONSE_TOPIC = "/mesh/response"

HOUSEKEEPING_HZ = 4.0
"""Rate of the election / expiry / mirror bookkeeping timer."""

JOIN_BUDGET = 0.1
"""s of one housekeeping tick spent bringing ROS robots onto the mesh; the rest join on later
ticks. Starting a robot's endpoints and proxy takes ~15 ms here, so 100 robots in one tick
held the executor ~1.5 s: presence and joint_states went unread meanwhile, and the next tick
dropped robots for a silence the bridge had caused itself (bench/bench_bridge.py fanin)."""

FORWARD_MEMORY = 256
"""How many forwarded resumes are remembered to keep forwarding loop-free."""

RELAY_WINDOW = 100
"""Commands relayed to one ROS robot and not yet answered, at most. Equal to the depth of the
command and response topics' QoS (:mod:`.qos`), so with RELIABLE KEEP_LAST no relayed command
or answer can be overwritten before it is read; past it the proxy's intake waits and Zenoh
applies back-pressure to the senders (bench/bench_bridge.py flood)."""


SIM_STAMP_BEFORE = 365 * 86400.0
"""A ``joint_states`` stamp more than this many s before the wall clock is simulated time (a
robot node on ``use_sim_time``), not a wall-clock stamp."""


def default_bridge_id() -> str:
    """``bridge_<host>_<pid>``: unique per process, so two fleets on one host never share an id."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40]
    return f"bridge_{host}_{os.getpid()}"


class _RosEndpoints:
    """The ROS side of one bridged robot: its command publisher and its response and
    joint_states subscriptions, routed to the robot's current proxy (if any).

    Created once per robot id and kept until the bridge node is destroyed: destroying a
    subscription while an executor thread builds its wait set kills that thread in rclpy
    (ros2/rclpy#1206), and robots come and go while the bridge spins.
    """

    def __init__(self, bridge: "BridgeNode", robot_id: str) -> None:
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import JointState

        self.proxy: _RosRobotProxy | None = None
        self.base_pose: dict[str, float] | None = None  # from the robot's odom, relayed in its state
        self.last_answer = 0.0  # monotonic time of the robot node's last answer: evidence of life
        self.last_joint_states = 0.0  # ... of its last joint_states: evidence of life if own_joint_states
        # Whether the robot's own node publishes its joint_states (the ROS graph says,
        # BridgeNode._own_joint_states): a Gazebo robot's come from ros_gz_bridge, and go on
        # after its robot node has died.
        self.own_joint_states = False
        # relay_seq numbers outlive proxies: a late answer to a command the robot's previous
        # proxy relayed must never settle (and so drop the answer of) one the current proxy relayed
        self.relay_seq = itertools.count(1)
        self.cmd_pub = bridge.create_publisher(convert_msg("Command"), topics.robot_topic(robot_id, topics.MESH_COMMAND),
                                               qos.COMMAND)
        log = bridge.get_logger()
        self.subs = [
            bridge.create_subscription(convert_msg("Response"), topics.robot_topic(robot_id, topics.MESH_RESPONSE),
                                       contained(log, f"{robot_id} response", self._on_response), qos.RESPONSE,
                                       callback_group=bridge.fast_group),
            bridge.create_subscription(JointState, topics.robot_topic(robot_id, topics.JOINT_STATES),
                                       contained(log, f"{robot_id} joint_states", self._on_joint_states),
                                       qos.JOINT_STATES_RELAY, callback_group=bridge.fast_group),
            bridge.create_subscription(Odometry, topics.robot_topic(robot_id, topics.ODOM),
                                       contained(log, f"{robot_id} odom", self._on_odom), qos.ODOM,
                                       callback_group=bridge.fast_group),
        ]
        self._log, self._robot_id = log, robot_id

    def _on_odom(self, msg: Any) -> None:
        try:
            self.base_pose = convert.odometry_to_base_pose(msg)
        except ContractError as exc:
            self._log.warning(f"{self._robot_id}: bad odom: {exc}", throttle_duration_sec=5.0)

    def life(self) -> float:
        """Monotonic time of the last evidence of life besides presence: an answer, or joint_states
        the robot's own node published (a flood can delay presence); 0.0 when none."""
        return max(self.last_answer, self.last_joint_states if self.own_joint_states else 0.0)

    def _on_response(self, msg: Any) -> None:
        self.last_answer = time.monotonic()
        if (proxy := self.proxy) is not None:
            proxy._on_response(msg)

    def _on_joint_states(self, msg: Any) -> None:
        self.last_joint_states = time.monotonic()
        if (proxy := self.proxy) is not None:
            proxy._on_joint_states(msg)


class _RosRobotProxy:
    """A ROS robot node seen as a mesh peer: relays its commands and answers, and its state.

    The proxy's :class:`Mesh` hands every command's raw bytes to :meth:`forward` on its
    intake thread; the robot node's answer comes back on ``/<id>/mesh/response`` with the key
    to put it on. Nothing here parses a command.
    """

    def __init__(self, bridge: "BridgeNode", presence: Any, endpoints: _RosEndpoints) -> None:
        self.bridge = bridge
        self.robot_id = presence.id
        self.presence = presence
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(RELAY_WINDOW)
        self._in_flight: set[int] = set()
        self._seq = endpoints.relay_seq
        self._closed = threading.Event()
        self._endpoints = endpoints
        self._cmd_pub = endpoints.cmd_pub
        ros = {"namespace": presence.ros.namespace, "node": presence.ros.node} if presence.ros else None
        self.mesh = Mesh(self.robot_id, config=bridge.mesh_config, peer_type=presence.peer_type,
                         robot_type=presence.robot_type, ros=ros, via=bridge.bridge_id, relay=self.forward,
                         presence=self._presence_fields, safety=False, audit=False)
        # A presence query confirms to a caller about to drop this peer that it runs: the
        # proxy runs whether or not its robot does, so it answers only while the robot is
        # heard on ROS (a frozen robot must leave the mesh, not be kept by its proxy).
        self.mesh.presence_live = self._ros_live
        self.mesh.start()
        endpoints.proxy = self

    def _ros_live(self) -> bool:
        """The ROS robot was heard within the peer timeout (:meth:`BridgeNode.ros_silence`)."""
        return self.bridge.ros_silence(self.robot_id) <= self.bridge.mesh_config.peer_timeout

    def _presence_fields(self) -> dict[str, Any]:
        pr = self.presence
        return {"skills": [s.model_dump() for s in pr.skills], "task_status": pr.task_status,
                "hostname": pr.hostname, "locked_out": pr.locked_out, "lockout": pr.lockout}

    def forward(self, payload: bytes, broadcast: bool) -> None:
        """Relay one mesh command into ROS (the proxy Mesh's intake thread). Waits while
        :data:`RELAY_WINDOW` commands are unanswered: back-pressure, never a drop."""
        while not self._slots.acquire(timeout=0.5):
            if self._closed.is_set():
                return  # the robot left: its callers are told 'peer lost' by their own Mesh
        seq = next(self._seq)
        with self._lock:
            self._in_flight.add(seq)
        msg = convert_msg("Command")(target_id="" if broadcast else self.robot_id, relay_seq=seq)
        msg.envelope = payload
        try:
            self._cmd_pub.publish(msg)
        except Exception as exc:  # a publisher torn down under us: the bridge is shutting down
            self._settle(seq)
            self.bridge.get_logger().warning(f"{self.robot_id}: command not relayed: {exc}")

    def _settle(self, seq: int) -> bool:
        with self._lock:
            if seq not in self._in_flight:
                return False
            self._in_flight.discard(seq)
        self._slots.release()
        return True

    def _on_response(self, msg: Any) -> None:
        if not msg.relay_seq or not self._settle(msg.relay_seq):
            return  # an answer to a ROS-side caller, not to the mesh
        if not msg.key:
            return  # nothing owed on the mesh (a repeat still running, an unreadable command)
        if not answer_key_allowed(self.mesh.keys, msg.key, msg.sender_id, self.robot_id):
            self.bridge.get_logger().warning(f"{self.robot_id} asked to answer on {msg.key!r}: refused",
                                             throttle_duration_sec=5.0)
            return
        self.mesh.put_answer(msg.key, bytes(msg.payload))

    def _on_joint_states(self, msg: Any) -> None:
        try:
            entries = convert.joint_state_entries(msg)
        except ContractError as exc:
            self.bridge.get_logger().warning(f"{self.robot_id}: bad joint_states: {exc}", throttle_duration_sec=5.0)
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        now = time.time()
        # A robot node on use_sim_time stamps with simulated time (seconds since the simulation
        # started): the contract's t is wall-clock time, so that stamp travels as sim_time.
        sim_time = stamp if 0 < stamp < now - SIM_STAMP_BEFORE else None
        try:
            data = state_json(self.robot_id, now if sim_time is not None or not stamp else stamp, entries,
                              {"status": self.presence.task_status or "idle"}, sim_time,
                              self._endpoints.base_pose)
        except ValueError as exc:  # a NaN reading: the contract's JSON cannot carry it
            self.bridge.get_logger().warning(f"{self.robot_id}: joint_states not relayed: {exc}",
                                             throttle_duration_sec=5.0)
            return
        try:
            self.mesh.publish_state(data)
        except Exception as exc:  # the proxy is stopping
            self.bridge.get_logger().debug(f"state relay of {self.robot_id} stopped: {exc}")

    def close(self, why: str) -> None:
        """Leave the mesh; callers with commands in flight are told ``peer lost`` by their own
        Mesh when this proxy's liveliness token drops."""
        self._endpoints.proxy = None  # the ROS endpoints stay (see _RosEndpoints)
        self._closed.set()
        self.mesh.stop()
        self.bridge.get_logger().info(f"{self.robot_id} left the mesh: {why}")


def convert_msg(name: str) -> Any:
    import strands_mesh_ros.msg as m

    return getattr(m, name)


class _Mirror:
    """A mesh-only robot shown in ROS: ``/<id>/joint_states`` and ``/<id>/robot_description``."""

    def __init__(self, bridge: "BridgeNode", peer_id: str) -> None:
        from sensor_msgs.msg import JointState

        self.peer_id = peer_id
        self.bridge = bridge
        self.js_pub = bridge.create_publisher(JointState, topics.robot_topic(peer_id, topics.JOINT_STATES), qos.JOINT_STATES)
        self.desc_pub = bridge.create_publisher(String, topics.robot_topic(peer_id, topics.ROBOT_DESCRIPTION),
                                                qos.ROBOT_DESCRIPTION)
        self.described = False
        fut = bridge.mesh.send_async(peer_id, {"action": "features"}, timeout=5.0)
        fut.add_done_callback(self._on_features)

    def _on_features(self, fut: Any) -> None:
        resp = fut.result()
        urdf = resp.result.get("robot_description") if resp.ok and isinstance(resp.result, dict) else None
        if urdf:
            self.desc_pub.publish(String(data=urdf))
            self.described = True

    def publish(self, state: State) -> None:
        from builtin_interfaces.msg import Time
        from sensor_msgs.msg import JointState

        msg = JointState()
        sec = int(state.t)
        msg.header.stamp = Time(sec=sec, nanosec=int((state.t - sec) * 1e9))
        msg.name = list(state.joints)
        msg.position = [j.position for j in state.joints.values()]
        msg.velocity = [j.velocity for j in state.joints.values()]
        msg.effort = [j.effort for j in state.joints.values()]
        self.js_pub.publish(msg)

    def close(self) -> None:
        self.bridge.destroy_publisher(self.js_pub)
        self.bridge.destroy_publisher(self.desc_pub)


class BridgeNode(Node):
    """The bridge (see the module docstring).

    Args:
        mesh_config: Zenoh / contract settings (default: ``MeshConfig.from_env()`` with the
            ``prefix`` / ``namespace`` / ``connect`` / ``listen`` parameters applied).
        bridge_id: this bridge's mesh peer id (default parameter ``bridge_id``, else
            ``bridge_<hostname>``).
        context: rclpy context.
        mirror: mirror mesh-only robots into ROS (parameter ``mirror``, default True).
        audit_dir: audit log directory for the bridge and its proxies.

    Raises:
        InvalidPeerId: a bad ``bridge_id``.
        RuntimeError / ValueError: the mesh could not be joined.
    """

    def __init__(self, *, mesh_config: MeshConfig | None = None, bridge_id: str | None = None,
                 context: Any = None, mirror: bool | None = None, audit_dir: str | None = None,
                 node_name: str = "strands_mesh_bridge", cli_args: list[str] | None = None) -> None:
        super().__init__(node_name, context=context, cli_args=cli_args)
        d = self.declare_parameter
        d("bridge_id", bridge_id or "", ParameterDescriptor(description="mesh peer id of this bridge (default bridge_<host>)", read_only=True))
        d("prefix", "", ParameterDescriptor(description="contract key prefix (default strands or $STRANDS_MESH_PREFIX)", read_only=True))
        d("namespace", "", ParameterDescriptor(description="Zenoh session namespace ('strands' for strands-robots)", read_only=True))
        d("connect", [""], ParameterDescriptor(description="Zenoh endpoints to connect to", read_only=True))
        d("listen", [""], ParameterDescriptor(description="Zenoh endpoints to listen on", read_only=True))
        d("zenoh_config", "", ParameterDescriptor(description="Zenoh json5 config file", read_only=True))
        d("mirror", True if mirror is None else mirror,
          ParameterDescriptor(description="show mesh-only robots in ROS (joint_states, robot_description)", read_only=True))
        p = self.get_parameter
        self.bridge_id = check_peer_id(p("bridge_id").value or default_bridge_id(), "bridge id")
        if mesh_config is None:
            mesh_config = MeshConfig.from_env(
                prefix=p("prefix").value or None, namespace=p("namespace").value or None,
                connect=[e for e in p("connect").value if e] or None, listen=[e for e in p("listen").value if e] or None,
                config_file=p("zenoh_config").value or None)
        self.mesh_config = mesh_config
        self.mirror_enabled = bool(p("mirror").value)
        self.audit_dir = audit_dir
        self.domain_id = self.context.get_domain_id() if hasattr(self.context, "get_domain_id") else int(os.environ.get("ROS_DOMAIN_ID", "0"))
        self.prefix = mesh_config.prefix
        self.fast_group = ReentrantCallbackGroup()
        self.slow_group = ReentrantCallbackGroup()
        self._house_group = MutuallyExclusiveCallbackGroup()
        self._lock = threading.RLock()
        self.proxies: dict[str, _RosRobotProxy] = {}
        self._endpoints: dict[str, _RosEndpoints] = {}
        self.mirrors: dict[str, _Mirror] = {}
        self._ros_presence: dict[str, tuple[Any, float]] = {}
        self._stateful: set[str] = set()  # mirror candidates seen publishing a valid state
        # One state subscription per mirror candidate, not one on every state: a wildcard also
        # delivered each state this bridge's own proxies relay (N x 50 Hz) to a Python callback,
        # and that thread's GIL hand-offs starved the executor (bench_bridge.py fanin, N = 100).
        self._state_subs: dict[str, Any] = {}
        self._warned: set[str] = set()
        self._forwarded_resumes: dict[bytes, None] = {}  # digests of resumes carried either way
        self.active = False
        self._started = time.monotonic()
        self.mesh: Mesh | None = None

        msgs = __import__("strands_mesh_ros.msg", fromlist=["x"])
        srvs = __import__("strands_mesh_ros.srv", fromlist=["x"])
        # The ROS e-stop publisher exists before the mesh is joined: the first mesh e-stop
        # sample must find it (it is published from Zenoh's callback, before any parsing).
        self._estop_pub = self.create_publisher(msgs.EStop, topics.ESTOP, qos.ESTOP)
        self._resume_pub = self.create_publisher(String, topics.RESUME, qos.RESUME)
        try:
            self.mesh = Mesh(self.bridge_id, config=mesh_config, peer_type="bridge", robot_type="ros_bridge",
                             ros={"namespace": "/", "node": self.get_fully_qualified_name(), "domain_id": self.domain_id},
                             safety_hook=self._on_mesh_safety, raw_estop_hook=self._on_mesh_estop_raw,
                             audit_dir=audit_dir)
            self.mesh.start()
        except BaseException:  # e.g. a listen endpoint in use: release the node, report the cause
            self.destroy_node()
            raise

        log = self.get_logger()

        def sub(kind: Any, topic: str, fn: Any, profile: Any, group: Any, **options: Any) -> Any:
            return self.create_subscription(kind, topic, contained(log, topic, fn), profile, callback_group=group,
                                            **options)

        self._presence_sub = sub(msgs.Presence, topics.PRESENCE, self._on_ros_presence, qos.PRESENCE, self.fast_group)
        # Only e-stops issued in ROS: DDS drops the ones a bridge relayed from a mesh (every
        # mesh e-stop, this bridge's own included) before they reach Python, a callback fewer
        # on the e-stop's way in this process (docs/benchmarks.md). _on_ros_estop still checks,
        # for an RMW without content filtering (rclpy then delivers everything).
        self._ros_estop_sub = sub(msgs.EStop, topics.ESTOP, self._on_ros_estop, qos.ESTOP, self.fast_group,
                                  content_filter_options=ContentFilterOptions("relayed_by = ''", []))
        sub(msgs.Response, topics.ESTOP_ACK, self._on_ros_ack, qos.ESTOP_ACK, self.fast_group)
        sub(String, topics.RESUME, self._on_ros_resume, qos.RESUME, self.fast_group)
        sub(msgs.Response, topics.RESUME_ACK, self._on_ros_ack, qos.RESUME_ACK, self.fast_group)
        sub(msgs.Command, COMMAND_TOPIC, self._on_ros_command, qos.COMMAND, self.fast_group)
        self._peers_pub = self.create_publisher(msgs.PeerArray, PEERS_TOPIC, qos.PRESENCE)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
        self._response_pub = self.create_publisher(msgs.Response, RESPONSE_TOPIC, qos.RESPONSE)
        self.create_service(srvs.SendCommand, SEND_SERVICE, self._on_send_command, callback_group=self.slow_group)
        # Liveness and election are wall-clock matters: steady timers even on use_sim_time.
        steady = RosClock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / HOUSEKEEPING_HZ, contained(log, "housekeeping", self._housekeeping),
                          callback_group=self._house_group, clock=steady)
        self.create_timer(1.0 / topics.PRESENCE_HZ, contained(log, "/mesh/peers", self._publish_peers),
                          callback_group=self._house_group, clock=steady)
        self.get_logger().info(f"bridge {self.bridge_id} on the mesh (prefix {mesh_config.prefix!r}, ROS domain {self.domain_id})")

    # -- election and bookkeeping ----------------------------------------------------------

    def _rival_bridges(self) -> list[str]:
        out = []
        for pid, info in self.mesh.peers.items():
            ros = info.presence.ros
            if info.peer_type == "bridge" and ros is not None and (ros.model_extra or {}).get("domain_id") == self.domain_id:
                out.append(pid)
        return out

    def _housekeeping(self) -> None:
        settled = time.monotonic() - self._started > self.mesh_config.peer_timeout
        active = settled and all(self.bridge_id < rival for rival in self._rival_bridges())
        if active != self.active:
            self.get_logger().info(f"bridge {self.bridge_id} is now {'active' if active else 'standing by'}")
            self.active = active
            if not active:
                self._drop_all("bridge standing by")
        if not self.active:
            return
        now = time.monotonic()
        with self._lock:
            seen = dict(self._ros_presence)
        estop_namespaces: set[str] | None = None  # read once per tick, only when a robot waits to join
        join_until = now + JOIN_BUDGET
        backlog_read = False
        for rid, (pr, heard) in seen.items():
            if self.ros_silence(rid, now) > self.mesh_config.peer_timeout and not backlog_read:
                # Judge by what has arrived, not by what this executor has got round to: this
                # timer can run while the robot's last beats still wait unread behind it, and a
                # robot dropped early would, thawed, run commands whose callers were told
                # 'peer lost' (the frozen-peer rule, docs/mesh.md).
                self._read_backlog()
                backlog_read, now = True, time.monotonic()
                with self._lock:
                    pr = self._ros_presence.get(rid, (pr, heard))[0]
            if self.ros_silence(rid, now) > self.mesh_config.peer_timeout and not self._own_joint_states_found(rid, pr, now):
                with self._lock:
                    self._ros_presence.pop(rid, None)
                    proxy = self.proxies.pop(rid, None)
                if proxy is not None:
                    proxy.close(f"left ROS (no /mesh/presence for {self.mesh_config.peer_timeout:.1f} s)")
                continue
            if rid not in self.proxies:
                if time.monotonic() > join_until:
                    continue  # joins on a later tick (JOIN_BUDGET)
                other = self.mesh.peers.get(rid)
                if other is not None and other.via != self.bridge_id:
                    self._warn_once(rid, f"ROS robot {rid} not bridged: peer id {rid!r} is already on the mesh "
                                         f"(via {other.via or other.hostname})")
                    continue
                try:
                    ends = self._endpoints.get(rid)
                    if ends is None:
                        ends = self._endpoints[rid] = _RosEndpoints(self, rid)
                    if estop_namespaces is None:
                        estop_namespaces = self._estop_namespaces()
                    if not self._ros_paths_matched(rid, ends, estop_namespaces):
                        continue  # not on the mesh before an e-stop and its commands can reach it
                    ends.own_joint_states = self._own_joint_states(rid, pr)
                    self.proxies[rid] = _RosRobotProxy(self, pr, ends)
                    self.get_logger().info(f"ROS robot {rid} ({pr.ros.namespace if pr.ros else '?'}) is now a mesh peer")
                except DuplicatePeer as exc:
                    self._warn_once(rid, f"ROS robot {rid} not bridged: {exc}")
                except (RuntimeError, ValueError) as exc:
                    self._warn_once(rid, f"could not bridge ROS robot {rid}: {exc}")
            else:
                self.proxies[rid].presence = pr
        if self.mirror_enabled:
            self._update_mirrors()

    def _read_backlog(self) -> None:
        """Handle every ROS message that counts as a robot's evidence of life (``/mesh/presence``,
        each robot's joint_states and answers) already received but not yet read
        (:func:`~strands_mesh_ros.ros.spin.read_backlogs`). Called from the housekeeping timer
        before a robot may be dropped for silence: runs only when one seems silent."""
        read_backlogs([self._presence_sub, *(s for ends in list(self._endpoints.values()) for s in ends.subs)],
                      self.get_logger())

    def _own_joint_states(self, rid: str, pr: Any) -> bool:
        """Whether ROS robot ``rid``'s joint_states have a publisher in its node (the node and
        namespace its presence names), by the ROS graph. Only then are they evidence that the
        node runs: a Gazebo robot's joint_states come from ros_gz_bridge (the ``ros_topics``
        driver, config/ros_topics_example.yaml) and go on when its robot node has died or hung."""
        if pr.ros is None:
            return False
        node = (pr.ros.node, pr.ros.namespace)
        return any((info.node_name, info.node_namespace) == node
                   for info in self.get_publishers_info_by_topic(topics.robot_topic(rid, topics.JOINT_STATES)))

    def _own_joint_states_found(self, rid: str, pr: Any, now: float) -> bool:
        """Before ``rid`` is dropped for silence: its joint_states are fresh but were not known
        to come from its own node (ROS discovery can lag behind its join), and the graph now
        says they do. Reads the graph only in that case; a graph that cannot be read says no
        (the robot is dropped: a robot not known to run never stays on the mesh)."""
        ends = self._endpoints.get(rid)
        if ends is None or ends.own_joint_states or now - ends.last_joint_states > self.mesh_config.peer_timeout:
            return False
        try:
            ends.own_joint_states = self._own_joint_states(rid, pr)
        except Exception as exc:  # rclpy raises several kinds (a context shutting down, say)
            self.get_logger().warning(f"{rid}: ROS graph not readable: {exc}", throttle_duration_sec=5.0)
            return False
        return ends.own_joint_states  # then fresh joint_states of its own: not silent

    def ros_silence(self, rid: str, now: float | None = None) -> float:
        """Seconds since ROS robot ``rid`` was last heard: its ``/mesh/presence``, or an answer
        or joint_states of its own node (evidence of life too, :meth:`_RosEndpoints.life`: a
        flood can delay presence); infinite when never heard."""
        entry = self._ros_presence.get(rid)
        ends = self._endpoints.get(rid)
        heard = max(entry[1] if entry else 0.0, ends.life() if ends else 0.0)
        return ((time.monotonic() if now is None else now) - heard) if heard else float("inf")

    def _estop_namespaces(self) -> set[str]:
        """Namespaces of the nodes subscribed to ``/mesh/estop``. Read once per housekeeping
        tick: reading the graph once per waiting robot cost O(N²) per tick while 100 robots
        joined (bench/bench_bridge.py fanin)."""
        return {info.node_namespace for info in self.get_subscriptions_info_by_topic(topics.ESTOP)}

    def _ros_paths_matched(self, rid: str, ends: _RosEndpoints, estop_namespaces: set[str]) -> bool:
        """The robot's e-stop subscription and command subscription are matched in ROS.

        Presence can be heard before DDS has matched the bridge's ``/mesh/estop`` publisher with
        the robot node's subscription; a robot announced on the mesh in that gap could miss an
        e-stop (it would get only the ``stop`` broadcast: stopped, not latched)."""
        return (topics.namespace(rid) in estop_namespaces and ends.cmd_pub.get_subscription_count() > 0
                and self._estop_pub.get_subscription_count() > 0)

    def _update_mirrors(self) -> None:
        peers = self.mesh.peers
        candidates = {pid for pid, info in peers.items() if self._mirrorable(info)}
        for pid in list(self.mirrors):
            if pid not in candidates:
                self.mirrors.pop(pid).close()
        for pid in list(self._state_subs):
            if pid not in candidates:
                self.mesh.unsubscribe(self._state_subs.pop(pid))
                self._stateful.discard(pid)
        for pid in candidates:
            if pid not in self._state_subs:
                self._state_subs[pid] = self.mesh.subscribe(self.mesh.keys.state(pid), self._on_mesh_state, raw=True)
            if pid in self.mirrors or pid not in self._stateful:
                continue
            try:
                topics.check_ros_robot_id(pid)
            except ValueError as exc:
                self._warn_once(pid, f"mesh peer not shown in ROS: {exc}")
                continue
            self.mirrors[pid] = _Mirror(self, pid)
            self.get_logger().info(f"mesh peer {pid} is now shown in ROS as /{pid}")

    def _mirrorable(self, info: Any) -> bool:
        pr = info.presence
        return (pr.ros is None and pr.via is None and info.peer_type in ("robot", "sim")
                and info.peer_id not in self._ros_presence)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _drop_all(self, why: str) -> None:
        with self._lock:
            proxies, self.proxies = self.proxies, {}
            mirrors, self.mirrors = self.mirrors, {}
            state_subs, self._state_subs = self._state_subs, {}
            self._stateful.clear()
        for p in proxies.values():
            p.close(why)
        for m in mirrors.values():
            m.close()
        if self.mesh is not None:
            for sub in state_subs.values():
                self.mesh.unsubscribe(sub)

    # -- ROS -> mesh -----------------------------------------------------------------------

    def _on_ros_presence(self, msg: Any) -> None:
        if msg.prefix and msg.prefix != self.prefix:
            return  # a robot of another fleet in this ROS domain: its own bridge relays it
        try:
            pr = convert.msg_to_presence(msg)
            topics.check_ros_robot_id(pr.id)
        except (ContractError, ValueError) as exc:
            self._warn_once(f"presence:{msg.peer_id}", f"ignored ROS presence of {msg.peer_id!r}: {exc}")
            return
        if pr.via:
            return  # something relayed it into ROS: never relay it back
        with self._lock:
            self._ros_presence[pr.id] = (pr, time.monotonic())

    def _on_ros_command(self, msg: Any) -> None:
        """Fire-and-forget command from ROS to any mesh peer; answer on /mesh/response."""
        try:
            target = check_peer_id(msg.target_id, "target_id")
            env = convert.command_to_envelope(msg)
            fut = self.mesh.send_async(target, env.command, timeout=30.0)
        except (ContractError, InvalidPeerId, ValueError) as exc:
            self._response_pub.publish(convert.error_response_msg(self.bridge_id, msg.sender_id, msg.turn_id, str(exc)))
            return
        sender, turn = msg.sender_id, msg.turn_id

        def done(f: Any) -> None:  # a mesh thread
            resp = f.result()
            resp = resp.model_copy(update={"turn_id": turn or resp.turn_id})
            try:
                out = convert.response_to_msg(resp, sender)
            except (TypeError, ValueError) as exc:
                out = convert.error_response_msg(resp.responder_id, sender, resp.turn_id, f"result not JSON: {exc}")
            self._response_pub.publish(out)

        fut.add_done_callback(done)

    async def _on_send_command(self, request: Any, response: Any) -> Any:
        """``/mesh/send_command``: call any mesh peer from ROS.

        A coroutine: while the mesh call is in flight the executor keeps relaying (the bridge
        runs on a single-threaded executor; a blocking callback would stall it)."""
        from rclpy.task import Future as RosFuture

        try:
            command = loads(request.command_json, what="command_json")
            call = self.mesh.send_async(request.peer_id, command,
                                        timeout=request.timeout if request.timeout > 0 else 10.0)
        except ContractError as exc:
            response.status, response.error = "error", f"command_json is not valid: {exc}"
            return response
        except (InvalidPeerId, ValueError) as exc:
            response.status, response.error = "error", str(exc)
            return response
        except Exception as exc:  # noqa: BLE001 - a service callback must answer, never end the executor
            response.status, response.error = "error", f"internal error: {type(exc).__name__}: {exc}"
            return response
        done: RosFuture = RosFuture(executor=self.executor)
        done.add_done_callback(lambda _f: None)  # completing it then wakes the executor at once
        call.add_done_callback(lambda f: done.set_result(f.result()))
        resp = await done
        response.status = resp.status
        response.responder_id = resp.responder_id
        try:
            response.result_json = json.dumps(resp.result) if resp.ok else ""
        except (TypeError, ValueError) as exc:
            response.status, response.error = "error", f"result not JSON: {exc}"
            return response
        response.error = resp.error or ""
        return response

    def _on_ros_estop(self, msg: Any) -> None:
        if msg.relayed_by:
            return  # came in from a mesh (this bridge's or another fleet's): never back out
        if msg.prefix and msg.prefix != self.prefix:
            return  # another fleet's
        # ROS robots halted on this very message already; now stop the rest of the mesh, on a
        # worker thread: gathering acks takes up to a deadline, and the executor must not wait.
        reason = f"from ROS {msg.issuer_id}: {msg.reason}".rstrip(": ")[:1024]
        self.get_logger().warning(f"e-stop from ROS ({msg.issuer_id}): issuing on the mesh")
        threading.Thread(target=self._issue_estop, args=(reason,), name="bridge-estop", daemon=True).start()

    def _issue_estop(self, reason: str) -> None:
        try:
            report = self.mesh.emergency_stop(reason)
        except Exception as exc:  # noqa: BLE001 - a thread of our own: report, never die silently
            self.get_logger().error(f"e-stop from ROS NOT issued on the mesh: {type(exc).__name__}: {exc}")
            return
        if report.not_acked:
            self.get_logger().error(f"e-stop: NOT acked by {report.not_acked}: not known to be stopped")

    # -- mesh -> ROS -----------------------------------------------------------------------

    def _on_mesh_estop_raw(self, payload: bytes) -> None:
        """Zenoh's e-stop callback, before anything is parsed: carry the halt into ROS."""
        msg = convert_msg("EStop")(relayed_by=self.bridge_id, prefix=self.prefix)
        msg.envelope = payload
        self._estop_pub.publish(msg)

    def _remember_resume(self, payload: bytes) -> bool:
        """Note a resume carried either way; False when it was carried already (no loops)."""
        digest = hashlib.sha256(payload).digest()
        with self._lock:
            if digest in self._forwarded_resumes:
                return False
            self._forwarded_resumes[digest] = None
            while len(self._forwarded_resumes) > FORWARD_MEMORY:
                self._forwarded_resumes.pop(next(iter(self._forwarded_resumes)))
        return True

    def _on_mesh_safety(self, kind: str, payload: Any) -> None:
        if kind == "resume" and self._remember_resume(payload):
            self._resume_pub.publish(String(data=payload.decode("utf-8", "replace")))

    def _on_ros_ack(self, msg: Any) -> None:
        """An e-stop or resume ack of a ROS robot: put it on the mesh as the robot made it."""
        if not msg.key:
            return
        try:
            parsed = self.mesh.keys.parse(msg.key)
        except ValueError:
            return
        if parsed.kind not in ("estop_ack", "resume_ack") or parsed.responder_id != msg.responder_id:
            return
        if msg.responder_id not in self.proxies:
            return  # not a robot this bridge speaks for
        self.mesh.put_safety_from(msg.key, bytes(msg.payload))

    def _on_ros_resume(self, msg: String) -> None:
        payload = msg.data.encode()
        if self._remember_resume(payload):
            self.mesh.put_resume(payload)

    def _on_mesh_state(self, key: str, payload: bytes) -> None:
        """Zenoh thread: a mirror candidate's state (``P/{peer}/state``). The first valid one
        marks the peer as publishing state (its mirror is made at the next housekeeping tick);
        later ones are published on its mirror."""
        peer = key.rsplit("/", 2)[-2] if key.count("/") >= 2 else ""
        if peer in self._stateful and peer not in self.mirrors:
            return
        try:
            state = decode(State, payload)
        except ContractError:
            return
        if key != self.mesh.keys.state(state.peer_id):
            return  # a state published under another peer's key
        self._stateful.add(state.peer_id)
        mirror = self.mirrors.get(state.peer_id)
        if mirror is not None:
            try:
                mirror.publish(state)
            except Exception as exc:  # a mirror being torn down
                self.get_logger().debug(f"mirror {state.peer_id}: {exc}")

    def _publish_peers(self) -> None:
        msgs = __import__("strands_mesh_ros.msg", fromlist=["x"])
        arr = msgs.PeerArray()
        arr.stamp = self.get_clock().now().to_msg()
        peers = self.mesh.peers
        arr.peers = [convert.presence_to_msg(info.presence, info.age, self.prefix) for info in peers.values()]
        self._peers_pub.publish(arr)
        self._diag_pub.publish(convert.diagnostics_to_msg(self._diagnostics(peers), arr.stamp))

    def _diagnostics(self, peers: dict[str, Any]) -> list[Diagnostic]:
        """The bridge's own status, and (when active) one per mesh peer that is not a ROS robot
        behind it: those report their own from their robot node (robot/diagnostics.py)."""
        name = self.get_fully_qualified_name()
        proxied = set(self.proxies)
        role = "active" if self.active else "standby"
        said = role if self.active else "standing by (another bridge of this fleet and ROS domain is active)"
        own = Diagnostic(OK, f"{name}: mesh bridge", f"{said}; {len(proxied)} ROS robots on the mesh, "
                         f"{len(peers)} mesh peers", self.bridge_id,
                         (("fleet", self.prefix), ("ROS domain", str(self.domain_id)), ("role", role),
                          ("ROS robots", ", ".join(sorted(proxied))),
                          ("mirrored mesh robots", ", ".join(sorted(self.mirrors)))))
        if not self.active:
            return [own]
        timeout = self.mesh_config.peer_timeout
        return [own] + [peer_diagnostic(info.presence, name=f"{name}: mesh peer {pid}", age=info.age, stale_after=timeout)
                        for pid, info in sorted(peers.items()) if pid not in proxied]

    def destroy_node(self) -> None:
        self._drop_all("bridge shut down")
        for ends in self._endpoints.values():  # the executor no longer spins this node
            for sub in ends.subs:
                self.destroy_subscription(sub)
            self.destroy_publisher(ends.cmd_pub)
        self._endpoints.clear()
        if self.mesh is not None:
            self.mesh.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run strands_mesh_ros bridge_node`` (parameters: see :class:`BridgeNode`)."""
    # The package's executor (ros/spin.py make_executor): nothing in the bridge blocks, and the
    # EventsExecutor's CPU per message decides how many robots one bridge carries.
    return run_main("bridge_node", lambda argv: BridgeNode(), args, (InvalidPeerId, ValueError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
