"""``RobotNode``: one robot (any :class:`~strands_mesh_ros.robot.driver.Driver`) as a ROS 2 node.

The node lives in namespace ``/<robot_id>`` and speaks the ROS side of the contract
(CONTRACT.md "ROS side"; names in :mod:`.topics`, QoS in :mod:`.qos`):

* publishes ``/<id>/joint_states`` at ``state_rate`` Hz and ``/<id>/robot_description``
  (latched) once at start-up, ``/mesh/presence`` at 2 Hz, and its status on ``/diagnostics``
  with each presence (:mod:`strands_mesh_ros.robot.diagnostics`);
* answers ``strands_mesh_ros/Command`` on ``/<id>/mesh/command`` with exactly one
  ``strands_mesh_ros/Response`` on ``/<id>/mesh/response``;
* halts on ``/mesh/estop`` before anything else, latches the lockout, audits, then acks on
  ``/mesh/estop_ack``; clears the lockout on a signed resume on ``/mesh/resume`` (acked on
  ``/mesh/resume_ack``).

All of that contract is :class:`~strands_mesh_ros.robot.peer_core.PeerCore`, the very code a
mesh-native robot runs: this node only carries its bytes. A command relayed by the bridge
arrives as the mesh envelope verbatim (``Command.envelope``) and its answer leaves as the
bytes to put on the mesh (``Response.key`` / ``payload``), so a robot behind the bridge
decodes, deduplicates, locks out, answers and acks exactly as one on the mesh. No exception in
a callback ends the executor (each is contained and logged; a caller still gets an answer).

The e-stop here is the contract's supplementary software stop, NOT the hardwired emergency
stop of IEC 60204-1 / ISO 13850.

Parameters (declared up front, validated on set; YAML keyed ``/**: ros__parameters:``, see
``config/robot.yaml``): ``robot_id`` (string; default: the node's namespace), ``driver``
(``mock`` | ``mujoco`` | ``ros_topics``), ``model`` (string, default ``arm6``), ``state_rate``
(double, Hz, [1, 500], default 20.0, the only one changeable at run time), ``realtime``
(bool), ``driver_config`` (path of a ros_topics YAML), ``resume_key_file`` (path; default the
``STRANDS_MESH_RESUME_KEY`` / ``STRANDS_MESH_RESUME_KEY_FILE`` environment, as the Mesh does),
``prefix`` (the fleet's key prefix; default ``$STRANDS_MESH_PREFIX``, else ``strands``: the
bridge relays only robots of its own fleet, and e-stops of other fleets are ignored),
``publish_clock`` (bool, default false: publish ``/clock`` from this robot's simulation),
``watchdog_operators`` (string array, unset by default) and ``watchdog_timeout`` (double, s;
0.0 = off): the link-loss watchdog (:mod:`strands_mesh_ros.robot.watchdog`, docs/safety.md),
fed by the bridge's ``/mesh/peers`` (each operator's presence ``age``) and by ``/mesh/presence``.

Time: the robot's skills run on its driver's clock, simulated time for a simulation (see
:mod:`strands_mesh_ros.robot.driver`). With ``publish_clock`` the node publishes that simulated
time on ``/clock`` (``rosgraph_msgs/Clock``, every :data:`CLOCK_PERIOD` simulated s), as a
simulator does; one node per ROS graph should. The standard ``use_sim_time`` parameter is
honoured as by any rclpy node: the node clock then follows ``/clock``, and ``joint_states``
(stamped with the node clock, published on a timer of the node clock) follow simulated time.
Presence stays on the steady clock: it is the robot's liveness on the wall clock.

Why not a lifecycle node: the safety path must be live for as long as the process holds a
driver. A lifecycle node in the *unconfigured* or *inactive* state would hold actuators
(a real robot's ros_topics driver is connected from construction) while its e-stop
subscription and latched ``robot_description`` are not yet, or no longer, active; and a
lifecycle manager (nav2_lifecycle_manager) is not always present to walk it to *active*. The
node is therefore "active" from construction to :meth:`RobotNode.destroy_node`: construction
creates and starts everything (configure + activate), ``destroy_node`` preempts every skill,
closes the driver it owns and releases everything (deactivate + cleanup).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import rclpy
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, ParameterType, SetParametersResult
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from ..contract.keys import DEFAULT_PREFIX, KeySpace, check_prefix
from ..robot.driver import Driver, DriverError, Preempted, SkillContext
from ..drivers.mock import urdf_for_joints
from ..drivers.fleet_config import RobotSpec, make_driver
from ..mesh.config import PEER_TIMEOUT
from ..robot.diagnostics import peer_diagnostic
from ..robot.safety import AuditLog, load_resume_key
from ..robot.peer_core import Answer, PeerCore
from ..robot.runtime import Robot
from ..robot.watchdog import WatchdogConfig
from . import convert, qos, topics
from .spin import contained, read_backlogs, run_main

DRIVER_KINDS = ("mock", "mujoco", "ros_topics")
"""Drivers the node can build from its ``driver`` parameter."""

EXTERNAL = "external"
"""Value of the ``driver`` parameter when the driver object was handed in (fleet host, tests)."""

STATE_RATE_RANGE = (1.0, 500.0)
"""Allowed ``state_rate``, Hz."""

WATCHDOG_HZ = 20.0
"""How often a ROS robot checks its link-loss watchdog (the mesh robot's housekeeping tick, 50 ms)."""

CLOCK_TOPIC = "/clock"
CLOCK_PERIOD = 0.01
"""Simulated s between two ``/clock`` messages of a node with ``publish_clock`` (100 Hz of
simulated time, whatever the simulation's speed)."""

CONFIG_ERRORS = (ValueError, TypeError, DriverError, FileNotFoundError,
                 rclpy.exceptions.InvalidParameterValueException, rclpy.exceptions.InvalidParameterTypeException)
"""What a refused configuration raises while nodes are built; ``main()`` prints it and exits 2."""


def _descriptor(kind: int, description: str, *, read_only: bool = True, constraints: str = "",
                rng: tuple[float, float] | None = None) -> ParameterDescriptor:
    d = ParameterDescriptor(type=kind, description=description, read_only=read_only,
                            additional_constraints=constraints)
    if rng is not None:
        d.floating_point_range = [FloatingPointRange(from_value=rng[0], to_value=rng[1], step=0.0)]
    return d


class RobotNode(Node):
    """One robot in namespace ``/<robot_id>`` (see the module docstring for the topics).

    Args:
        robot_id: the robot's id; None reads the ``robot_id`` parameter (or, if that is
            empty, the node's namespace). Must be a ROS name token ``[A-Za-z][A-Za-z0-9_]*``.
        driver: an already-built driver (fleet host, tests); None builds one from the
            ``driver`` / ``model`` / ``realtime`` / ``driver_config`` parameters.
        driver_options: extra arguments of the driver built from parameters (see
            :func:`strands_mesh_ros.drivers.fleet_config.make_driver`).
        context: the rclpy context (None: the default one).
        node_name: ROS node name.
        parameter_overrides: ROS parameters that win over the command line and YAML.
        resume_key: shared resume key (default: the ``resume_key_file`` parameter, else
            the environment).
        audit_dir: directory of the JSON-lines audit log (default: docs/safety.md).
        close_driver: close the driver in :meth:`destroy_node` (default: only one it built).
        cli_args: node-specific ROS command-line arguments.
        prefix: the fleet's key prefix (wins over the ``prefix`` parameter).

    Raises:
        ValueError: bad robot id (names the id and the rule), a namespace other than
            ``/<robot_id>``, a driver id different from ``robot_id``, or missing config.
        rclpy.exceptions.InvalidParameterValueException: a parameter fails validation.
        DriverError, TypeError: the driver could not be built.

    Attributes:
        robot: the :class:`~strands_mesh_ros.robot.runtime.Robot` (lanes, lockout).
        robot_id, ros_namespace: the id and ``/<robot_id>``.
    """

    def __init__(
        self,
        robot_id: str | None = None,
        *,
        driver: Driver | None = None,
        driver_options: dict[str, Any] | None = None,
        context: rclpy.context.Context | None = None,
        node_name: str = "robot_node",
        parameter_overrides: Sequence[Parameter] | None = None,
        resume_key: str | bytes | None = None,
        audit_dir: str | None = None,
        close_driver: bool | None = None,
        cli_args: list[str] | None = None,
        prefix: str | None = None,
    ) -> None:
        if robot_id is None and driver is not None:
            robot_id = driver.robot_id
        if robot_id is not None:
            topics.check_ros_robot_id(robot_id)
        if driver is not None and driver.robot_id != robot_id:
            raise ValueError(f"driver's robot id {driver.robot_id!r} differs from robot_id {robot_id!r}: "
                             "one robot, one id")
        overrides = list(parameter_overrides or [])
        if robot_id is not None:
            overrides.append(Parameter("robot_id", value=robot_id))
        if driver is not None:
            overrides.append(Parameter("driver", value=EXTERNAL))
        if prefix is not None:
            overrides.append(Parameter("prefix", value=prefix))
        super().__init__(node_name, context=context, cli_args=cli_args, parameter_overrides=overrides,
                         namespace=topics.namespace(robot_id) if robot_id is not None else None)
        self._external_driver = driver is not None
        self._destroyed = False
        # The e-stop's log line, written at the next presence tick (see _on_estop): (text of
        # the latest, how many since the last line written).
        self._estop_log: tuple[str, int] | None = None
        self._estop_log_lock = threading.Lock()
        self._clock_thread: threading.Thread | None = None
        self._clock_ctx: SkillContext | None = None
        self.robot: Robot | None = None
        self.audit: AuditLog | None = None
        self._owns_driver = (driver is None) if close_driver is None else close_driver
        self._driver_to_close: Driver | None = driver if self._owns_driver else None
        try:
            self._setup(driver, driver_options, resume_key, audit_dir)
        except BaseException:
            self._release()
            super().destroy_node()
            raise

    # -- set-up -------------------------------------------------------------------------

    def _declare(self) -> None:
        s, d, b = ParameterType.PARAMETER_STRING, ParameterType.PARAMETER_DOUBLE, ParameterType.PARAMETER_BOOL
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.declare_parameters("", [
            ("robot_id", "", _descriptor(s, "Robot id = mesh peer id = ROS namespace token "
                                            "([A-Za-z][A-Za-z0-9_]*); empty: the node's namespace")),
            ("driver", "mujoco", _descriptor(s, "Driver to build", constraints="one of: mock, mujoco, ros_topics")),
            ("model", "arm6", _descriptor(s, "MuJoCo model reference (mujoco driver): arm6, diffbot, a path, ...")),
            ("state_rate", topics.DEFAULT_STATE_RATE,
             _descriptor(d, "joint_states publishing rate, Hz", read_only=False, rng=STATE_RATE_RANGE)),
            ("realtime", True, _descriptor(b, "Pace the simulation to the wall clock (mujoco driver)")),
            ("driver_config", "", _descriptor(s, "Path of the ros_topics driver's YAML config")),
            ("resume_key_file", "", _descriptor(s, "File holding the shared resume key; empty: environment")),
            ("prefix", "", _descriptor(s, "Key prefix of this robot's fleet; empty: $STRANDS_MESH_PREFIX or strands")),
            ("publish_clock", False, _descriptor(b, "Publish /clock from this robot's simulated time (one per ROS graph)")),
            ("watchdog_timeout", 0.0, _descriptor(d, "Link-loss watchdog: halt and latch after this many s without "
                                                     "presence from any watchdog operator; 0.0: off")),
        ])
        self.declare_parameter("watchdog_operators", Parameter.Type.STRING_ARRAY, _descriptor(
            ParameterType.PARAMETER_STRING_ARRAY, "Link-loss watchdog: peer ids of the supervising operators"))

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            v = p.value
            if p.name == "robot_id" and v != "":
                try:
                    topics.check_ros_robot_id(v)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
            elif p.name == "driver":
                allowed = DRIVER_KINDS + ((EXTERNAL,) if self._external_driver else ())
                if v not in allowed:
                    return SetParametersResult(successful=False,
                                               reason=f"driver {v!r} unknown; use one of {', '.join(DRIVER_KINDS)}")
            elif p.name == "state_rate" and not (STATE_RATE_RANGE[0] <= v <= STATE_RATE_RANGE[1]):
                return SetParametersResult(successful=False,
                                           reason=f"state_rate {v} Hz out of range {list(STATE_RATE_RANGE)}")
            elif p.name in ("driver_config", "resume_key_file") and v and not Path(v).is_file():
                return SetParametersResult(successful=False, reason=f"{p.name}: no file {v!r}")
            elif p.name == "prefix" and v:
                try:
                    check_prefix(v)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _setup(self, driver: Driver | None, driver_options: dict[str, Any] | None,
               resume_key: str | bytes | None, audit_dir: str | None) -> None:
        self._declare()
        rid = self.get_parameter("robot_id").value or self.get_namespace().strip("/")
        if not rid:
            raise ValueError("robot_node needs a robot id: set parameter robot_id, or run the node in "
                             "namespace /<robot_id>")
        topics.check_ros_robot_id(rid)
        ns = topics.namespace(rid)
        if self.get_namespace() not in ("/", ns):
            raise ValueError(f"node namespace {self.get_namespace()!r} is not {ns!r}: robot {rid!r} lives in "
                             f"{ns} (CONTRACT.md, ROS side)")
        self.robot_id, self.ros_namespace = rid, ns
        self.prefix = self.get_parameter("prefix").value or os.environ.get("STRANDS_MESH_PREFIX") or DEFAULT_PREFIX
        check_prefix(self.prefix)
        key_file = self.get_parameter("resume_key_file").value
        if resume_key is None and key_file:
            resume_key = Path(key_file).read_text(encoding="utf-8").strip()
        if driver is None:
            driver = self._build_driver(driver_options)
            self._driver_to_close = driver if self._owns_driver else None
        self.robot = Robot(driver)
        self.audit = AuditLog(rid, audit_dir)
        self.core = PeerCore(rid, self.robot, KeySpace(self.prefix), audit=self.audit,
                             resume_key=load_resume_key(resume_key), peer_timeout=PEER_TIMEOUT,
                             ros={"namespace": ns, "node": self.get_name()}, watchdog=self._watchdog_config())
        self.dispatcher = self.core.dispatcher
        provided = getattr(driver, "ros_provides", frozenset())

        safety = MutuallyExclusiveCallbackGroup()
        self._cmd_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        from strands_mesh_ros.msg import Command, EStop, Presence
        from strands_mesh_ros.msg import Response as ResponseMsg

        t = topics.robot_topic
        log = self.get_logger()
        self._js_pub = None
        self._odom_pub = None  # made at the first observation with a base pose (a mobile base)
        if topics.JOINT_STATES not in provided:
            from sensor_msgs.msg import JointState

            self._js_pub = self.create_publisher(JointState, t(rid, topics.JOINT_STATES), qos.JOINT_STATES)
        self._desc_pub = None
        if topics.ROBOT_DESCRIPTION not in provided:
            self._desc_pub = self.create_publisher(String, t(rid, topics.ROBOT_DESCRIPTION), qos.ROBOT_DESCRIPTION)
        self._response_pub = self.create_publisher(ResponseMsg, t(rid, topics.MESH_RESPONSE), qos.RESPONSE)
        self._presence_pub = self.create_publisher(Presence, topics.PRESENCE, qos.PRESENCE)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
        self._estop_ack_pub = self.create_publisher(ResponseMsg, topics.ESTOP_ACK, qos.ESTOP_ACK)
        self._resume_ack_pub = self.create_publisher(ResponseMsg, topics.RESUME_ACK, qos.RESUME_ACK)
        self.create_subscription(EStop, topics.ESTOP, contained(log, "e-stop", self._on_estop), qos.ESTOP,
                                 callback_group=safety)
        self.create_subscription(String, topics.RESUME, contained(log, "resume", self._on_resume), qos.RESUME,
                                 callback_group=safety)
        self.create_subscription(Command, t(rid, topics.MESH_COMMAND), contained(log, "command", self._on_command),
                                 qos.COMMAND, callback_group=self._cmd_group)

        driver.start()
        if self._desc_pub is not None:
            urdf = driver.robot_description() or urdf_for_joints(rid, driver.joints())
            self._desc_pub.publish(String(data=urdf))
        self._js_timer = None
        if self._js_pub is not None:
            self._js_timer = self.create_timer(1.0 / self.get_parameter("state_rate").value,
                                               contained(log, "joint_states", self._publish_joint_states),
                                               callback_group=self._timer_group)
        self.add_post_set_parameters_callback(self._parameters_set)
        # Presence is liveness on the wall clock (the bridge drops a robot silent for 1.5 s):
        # steady time, whatever use_sim_time says.
        self._presence_timer = self.create_timer(1.0 / topics.PRESENCE_HZ,
                                                 contained(log, "presence", self._publish_presence),
                                                 callback_group=self._timer_group,
                                                 clock=RosClock(clock_type=ClockType.STEADY_TIME))
        if self.get_parameter("publish_clock").value:
            self._start_clock(driver)
        if self.core.watchdog is not None:
            self._start_watchdog(safety)
        self._publish_presence()
        self.audit.write("start", time.time(), peer_type=driver.peer_type, robot_type=driver.robot_type, via="ros")
        self.get_logger().info(f"robot {rid} ({driver.robot_type}, {driver.peer_type}) up in {ns}, fleet {self.prefix}")

    def _watchdog_config(self) -> WatchdogConfig | None:
        """The watchdog parameters as a config (None: off). Raises ValueError naming a bad one."""
        try:
            ops = list(self.get_parameter("watchdog_operators").value or [])
        except rclpy.exceptions.ParameterUninitializedException:
            ops = []
        timeout = self.get_parameter("watchdog_timeout").value
        if not ops and timeout == 0.0:
            return None  # the default: off
        try:
            return WatchdogConfig.from_options(ops, timeout)
        except ValueError as exc:
            raise ValueError(f"robot {self.robot_id!r}: parameters watchdog_operators / watchdog_timeout: {exc}") from None

    def _start_watchdog(self, group: Any) -> None:
        """Heartbeats: operators' entries in the bridge's ``/mesh/peers`` (``age`` = s since the
        bridge last heard that presence, so the bridge is part of the supervised link) and
        operators publishing ``/mesh/presence`` in ROS. Checked at :data:`WATCHDOG_HZ` on the
        steady clock, in the safety callback group."""
        from strands_mesh_ros.msg import PeerArray, Presence

        log = self.get_logger()
        wd = self.core.watchdog

        def on_peers(msg: Any) -> None:
            now = time.monotonic()
            for p in msg.peers:
                if p.peer_id in wd.operators and (not p.prefix or p.prefix == self.prefix):
                    self.core.watchdog_heard(p.peer_id, now - max(0.0, p.age))

        def on_presence(msg: Any) -> None:
            if msg.peer_id in wd.operators and (not msg.prefix or msg.prefix == self.prefix):
                self.core.watchdog_heard(msg.peer_id, time.monotonic() - max(0.0, msg.age))

        subs = (self.create_subscription(PeerArray, topics.PEERS, contained(log, "watchdog peers", on_peers),
                                         qos.PRESENCE, callback_group=group),
                self.create_subscription(Presence, topics.PRESENCE, contained(log, "watchdog presence", on_presence),
                                         qos.PRESENCE, callback_group=group))

        def check() -> None:
            # A due timer runs ahead of messages already received (spin.read_backlog): before
            # the watchdog may trip, read the heartbeats waiting behind it, so a busy executor
            # is not taken for a lost link. A silent link still trips on this same tick.
            if wd.armed and wd.silent_for(time.monotonic()) > wd.config.timeout:
                read_backlogs(subs, log)
            self.core.watchdog_check(time.monotonic())

        self.create_timer(1.0 / WATCHDOG_HZ, contained(log, "watchdog", check),
                          callback_group=group, clock=RosClock(clock_type=ClockType.STEADY_TIME))
        log.info(f"link-loss watchdog on: halt after {wd.config.timeout} s without presence from "
                 f"{', '.join(wd.operators)} (armed at the first one heard)")

    def _start_clock(self, driver: Driver) -> None:
        """Publish the driver's simulated time on ``/clock`` from a thread of its own that
        waits on the simulated clock (so ``/clock`` ticks every :data:`CLOCK_PERIOD` of
        simulated time however fast or slow the simulation runs)."""
        clock = getattr(driver, "clock", None)
        if clock is None or not clock.simulated:
            raise ValueError(f"robot {self.robot_id!r}: publish_clock needs a simulated driver "
                             f"({type(driver).__name__} runs on the wall clock)")
        if getattr(clock, "follows_ros_time", False):
            raise ValueError(f"robot {self.robot_id!r}: publish_clock with a driver that follows /clock "
                             f"(use_sim_time) would republish /clock to itself; the simulator publishes it")
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock as ClockMsg

        # depth 1, reliable: matches rclpy's and rclcpp's best-effort /clock subscriptions and reliable ones
        pub = self.create_publisher(ClockMsg, CLOCK_TOPIC, QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        ctx = self._clock_ctx = SkillContext(clock=clock)

        def run() -> None:
            t = clock.now()
            while True:
                now = clock.now()
                sec = int(now)
                self._publish(pub, ClockMsg(clock=TimeMsg(sec=sec, nanosec=int((now - sec) * 1e9))))
                t = max(t + CLOCK_PERIOD, now)
                try:
                    ctx.wait_until(t)
                except Preempted:
                    return
                except DriverError as exc:  # a stalled or closed simulation: no time to publish
                    if ctx.cancelled:
                        return
                    self.get_logger().warning(f"/clock: {exc}", throttle_duration_sec=5.0)

        self._clock_thread = threading.Thread(target=run, name=f"{self.robot_id}-clock", daemon=True)
        self._clock_thread.start()

    def _build_driver(self, options: dict[str, Any] | None) -> Driver:
        p = {n: self.get_parameter(n).value for n in ("driver", "model", "state_rate", "realtime", "driver_config")}
        opts = dict(options or {})
        if p["driver"] == "ros_topics":
            if p["driver_config"]:
                opts.setdefault("config_file", p["driver_config"])
            if not opts:
                raise ValueError(f"robot {self.robot_id!r}: driver ros_topics needs parameter driver_config "
                                 "(a YAML file, see config/ros_topics_example.yaml)")
        spec = RobotSpec(id=self.robot_id, driver=p["driver"], model=p["model"], state_rate=p["state_rate"],
                         realtime=p["realtime"], options=opts)
        if spec.driver == "ros_topics":
            from .ros_topics import make_ros_topics_driver

            return make_ros_topics_driver(spec, node=self)
        return make_driver(spec)

    @classmethod
    def from_spec(cls, spec: RobotSpec, **kwargs: Any) -> "RobotNode":
        """A node for one robot of a fleet file (``kwargs`` as for the constructor).

        Raises:
            as the constructor.
        """
        overrides = [
            Parameter("driver", value=spec.driver), Parameter("model", value=spec.model),
            Parameter("state_rate", value=float(spec.state_rate)), Parameter("realtime", value=spec.realtime),
            *([Parameter("watchdog_operators", value=list(wd.operators)), Parameter("watchdog_timeout", value=wd.timeout)]
              if (wd := spec.watchdog()) is not None else []),
            *kwargs.pop("parameter_overrides", []),
        ]
        return cls(spec.id, driver_options=spec.options, parameter_overrides=overrides, **kwargs)

    def _parameters_set(self, params: list[Parameter]) -> None:
        for p in params:
            if p.name == "state_rate" and self._js_timer is not None:
                self.destroy_timer(self._js_timer)
                self._js_timer = self.create_timer(1.0 / p.value, contained(self.get_logger(), "joint_states",
                                                                            self._publish_joint_states),
                                                   callback_group=self._timer_group)

    # -- periodic -----------------------------------------------------------------------

    def _publish_joint_states(self) -> None:
        try:
            obs = self.robot.driver.observe()  # type: ignore[union-attr]
        except DriverError as exc:  # e.g. a ros_topics robot that has not published yet
            self.get_logger().warning(f"no joint state: {exc}", throttle_duration_sec=5.0)
            return
        stamp = self.get_clock().now().to_msg()
        self._js_pub.publish(convert.observation_to_joint_state(obs, stamp))
        if obs.base_pose is not None:
            if self._odom_pub is None:
                from nav_msgs.msg import Odometry

                self._odom_pub = self.create_publisher(Odometry, topics.robot_topic(self.robot_id, topics.ODOM),
                                                       qos.ODOM)
            self._odom_pub.publish(convert.base_pose_to_odometry(obs.base_pose, stamp, self.robot_id))

    def _publish_presence(self) -> None:
        """The presence beat, then the e-stop log line if one waits, then ``/diagnostics`` from
        the presence just sent (robot/diagnostics.py)."""
        pr = self.core.beat(lambda pr: self._presence_pub.publish(convert.presence_to_msg(pr, prefix=self.prefix)))
        with self._estop_log_lock:
            pending, self._estop_log = self._estop_log, None
        if pending is not None:
            text, n = pending
            self.get_logger().warning(text if n == 1 else f"{text} ({n} e-stops since the last line)")
        status = peer_diagnostic(pr, name=f"{self.get_fully_qualified_name()}: robot", stale_after=PEER_TIMEOUT)
        self._diag_pub.publish(convert.diagnostics_to_msg([status], self.get_clock().now().to_msg()))

    # -- commands and safety: bytes in, bytes out, the peer core in between ---------------

    def _on_command(self, msg: Any) -> None:
        relay_seq = msg.relay_seq
        if msg.target_id and msg.target_id != self.robot_id:
            error = (f"command for {msg.target_id!r} arrived on {self.robot_id}'s topic "
                     f"{topics.robot_topic(self.robot_id, topics.MESH_COMMAND)}")
            try:
                answer = self.core.error_answer(msg.sender_id, msg.turn_id, error)
            except ValueError:  # ids that cannot name a response key: nobody to answer on the mesh
                self._publish(self._response_pub, convert.error_response_msg(
                    self.robot_id, msg.sender_id, msg.turn_id, error))
                return
            self._answer(answer, relay_seq, msg.turn_id)
            return
        payload = bytes(msg.envelope) if len(msg.envelope) else convert.command_msg_payload(msg)
        broadcast = relay_seq != 0 and not msg.target_id  # the bridge relays P/broadcast with no target
        self.core.handle_command(payload, lambda answer: self._answer(answer, relay_seq, msg.turn_id), broadcast=broadcast)

    def _answer(self, answer: Answer, relay_seq: int, turn_id: str) -> None:
        """Publish one command's answer (from any thread: skills finish on lane threads)."""
        if answer.response is None and not relay_seq:
            return  # nothing owed to a ROS caller; a relayed command always gets a receipt
        self._publish(self._response_pub, convert.answer_to_msg(self.robot_id, answer, relay_seq, turn_id))

    def _on_estop(self, msg: Any) -> None:
        if msg.prefix and msg.prefix != self.prefix:
            return  # another fleet's e-stop (same ROS domain, other key prefix)
        self.core.halt()  # actuators first, before anything is read
        received = time.time()
        payload = bytes(msg.envelope) if len(msg.envelope) else convert.estop_msg_payload(msg)
        ack, env = self.core.estop_received(payload, received)
        if ack.key is not None:
            self._publish(self._estop_ack_pub, convert.answer_to_msg(self.robot_id, ack, 0, str(env.seq)))
        who = env.peer_id if env is not None else "an unreadable or own e-stop"
        # Logged at the next presence tick (<= 0.5 s), not here: a ROS log line (console, file
        # and /rosout) held the GIL ~2.5 ms, and in a process with several robot nodes (a fleet
        # host, `up`, a bridge beside them) that delayed the other nodes' e-stops and the
        # bridge's forwarding of their acks (bench/bench_mesh.py estop). The audit line, the
        # record, is written before the ack.
        text = f"E-STOP ({who}) via {msg.relayed_by or 'ROS'}; halted, locked out"
        with self._estop_log_lock:
            self._estop_log = (text, 1 + (self._estop_log[1] if self._estop_log else 0))

    def _on_resume(self, msg: String) -> None:
        ack, env = self.core.resume_received(msg.data.encode(), time.time())
        if ack.key is not None:
            self._publish(self._resume_ack_pub, convert.answer_to_msg(self.robot_id, ack, 0, str(env.seq)))
            self.get_logger().info(f"resume from {env.peer_id if env else '?'}: {ack.data.decode()}")

    def _publish(self, pub: Any, msg: Any) -> None:
        """Publish from any thread; a node destroyed meanwhile (shutdown) is not an error."""
        if self._destroyed:
            return
        try:
            pub.publish(msg)
        except (rclpy.exceptions.InvalidHandle, RuntimeError) as exc:
            if not self._destroyed:
                raise
            self.get_logger().debug(f"publish after shutdown dropped: {exc}")

    # -- shutdown -----------------------------------------------------------------------

    def _release(self) -> None:
        if self._clock_ctx is not None:
            self._clock_ctx.cancel("shut down")
            if self._clock_thread is not None:
                self._clock_thread.join(5.0)
        if self.robot is not None:
            self.robot.lanes.close()
        if self._driver_to_close is not None:
            self._driver_to_close.close()
            self._driver_to_close = None
        if self.audit is not None:
            self.audit.write("stop", time.time(), via="ros")
            self.audit.close()
            self.audit = None

    def destroy_node(self) -> None:
        """Preempt every skill, close the driver if owned, then destroy the node. Idempotent."""
        if self._destroyed:
            return
        self._release()  # skills answer "refused" while the response publisher still exists
        self._destroyed = True
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run strands_mesh_ros robot_node --ros-args -r __ns:=/arm1 -p driver:=mujoco``.

    Returns 0 on a normal shutdown, 2 when the configuration is refused (printed to stderr).
    """
    # One executor of the package's kind (ros/spin.py make_executor), as in the fleet host.
    return run_main("robot_node", lambda argv: RobotNode(), args, CONFIG_ERRORS)


if __name__ == "__main__":
    raise SystemExit(main())
