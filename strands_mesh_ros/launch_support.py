"""What ``launch/*.launch.py`` compute before they build actions: pure Python, unit-tested.

The launch files (``fleet.launch.py``, ``robot.launch.py``, ``bridge.launch.py``) only turn the
results of these functions into ``launch`` / ``launch_ros`` actions, so everything that can go
wrong in a bring-up (a bad robot id, an unknown driver, a fleet file that the robot node cannot
honour, a URDF that cannot be built) is refused here, with a message naming the culprit, before
any process starts.

Nothing here imports ``launch``, ``launch_ros`` or ``rclpy``; :func:`robot_urdf` imports
``mujoco`` (through :class:`~strands_mesh_ros.drivers.mujoco_sim.MujocoDriver`) only for the
``mujoco`` driver.

Frames (REP-105 names, REP-103 units): every robot's ``robot_state_publisher`` gets
``frame_prefix`` ``<robot_id>/``, so ``arm1``'s links are ``arm1/world``, ``arm1/base_link``, ...
and all robots share the global ``/tf`` and ``/tf_static``. One static transform per robot,
``world`` -> ``<robot_id>/<root link>``, places the robots side by side (:func:`layout`), so one
rviz with Fixed Frame ``world`` shows the whole fleet.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .drivers.fleet_config import FleetSpec, RobotSpec, load_fleet
from .ros import topics

DRIVERS = ("mock", "mujoco", "ros_topics")
"""Drivers the robot node builds from its ``driver`` parameter."""

DEFAULT_ROBOTS = "arm1:arm6,arm2:arm6,base1:diffbot"
"""Default of the ``robots`` launch argument (= :data:`~strands_mesh_ros.drivers.fleet_config.DEFAULT_FLEET`)."""

WORLD_FRAME = "world"
"""The common fixed frame the fleet is placed in (rviz's Fixed Frame in config/fleet.rviz)."""

DEFAULT_SPACING = 1.5
"""Distance between neighbouring robots along +y of :data:`WORLD_FRAME`, m."""

NODE_NAME = "robot_node"
"""The robot node's ROS name (so its full name is ``/<robot_id>/robot_node``)."""

SPEC_PARAMETERS = ("driver", "model", "state_rate", "realtime")
"""Robot-node parameters that a robot's spec (``robots`` entry, fleet file, launch argument)
sets and that win over the params file."""

ROBOT_STATE_PUBLISHER_DESCRIPTION = "robot_state_publisher/robot_description"
"""Where each robot_state_publisher's own ``robot_description`` publication is remapped to
(relative to ``/<robot_id>``): the robot node already latches ``/<robot_id>/robot_description``
and one topic has one publisher."""


@dataclass(frozen=True)
class RobotPlan:
    """Everything one robot's launch group needs.

    Attributes:
        spec: the robot, with driver / model / state_rate / realtime resolved (spec > params
            file > defaults).
        parameters: the robot node's ROS parameters (typed: ``state_rate`` float,
            ``realtime`` bool), the params file's sections for this robot merged with the spec.
        urdf: the URDF the robot node publishes, for robot_state_publisher's
            ``robot_description`` parameter; None when no state publisher is started.
        root_link: the URDF's root link (unprefixed), e.g. ``world`` for MuJoCo models,
            ``base_link`` for mock robots; None without a URDF.
    """

    spec: RobotSpec
    parameters: dict[str, Any]
    urdf: str | None = None
    root_link: str | None = None

    @property
    def robot_id(self) -> str:
        return self.spec.id

    @property
    def frame_prefix(self) -> str:
        """robot_state_publisher's ``frame_prefix``: ``<robot_id>/``."""
        return f"{self.spec.id}/"

    @property
    def root_frame(self) -> str | None:
        """The robot's root TF frame, ``<robot_id>/<root link>`` (None without a URDF)."""
        return None if self.root_link is None else self.frame_prefix + self.root_link


# -- robots ------------------------------------------------------------------------------


def make_spec(robot_id: str, driver: str = "", model: str = "", state_rate: str | float = "",
              realtime: str | bool = "", where: str = "") -> RobotSpec:
    """A :class:`RobotSpec` from launch-argument strings; empty strings leave a field unset
    (so the params file or the robot node's default decides).

    Raises:
        ValueError: ``robot_id`` cannot be a ROS namespace (names the id and the rule), an
            unknown driver, ``state_rate`` not a number in [1, 500] Hz, or ``realtime`` not a
            boolean word. ``where`` prefixes the message (e.g. ``robots entry 2``).
    """
    at = f"{where}: " if where else ""
    try:
        topics.check_ros_robot_id(robot_id)
    except ValueError as exc:
        raise ValueError(f"{at}{exc}") from None
    fields: dict[str, Any] = {"id": robot_id}
    if driver != "":
        if driver not in DRIVERS:
            raise ValueError(f"{at}robot {robot_id!r}: driver {driver!r} unknown; use one of {', '.join(DRIVERS)}")
        fields["driver"] = driver
    if model != "":
        fields["model"] = model
    if state_rate != "":
        try:
            rate = float(state_rate)
        except (TypeError, ValueError):
            raise ValueError(f"{at}robot {robot_id!r}: state_rate {state_rate!r} is not a number (Hz)") from None
        if not (1.0 <= rate <= 500.0) or math.isnan(rate):
            raise ValueError(f"{at}robot {robot_id!r}: state_rate {rate} Hz out of range [1, 500]")
        fields["state_rate"] = rate
    if realtime != "":
        fields["realtime"] = parse_bool(realtime, f"{at}robot {robot_id!r}: realtime")
    return RobotSpec(**fields)


def parse_robots(text: str) -> list[RobotSpec]:
    """Parse the ``robots`` launch argument: comma-separated ``id[:model[:driver]]``.

    ``arm1:arm6,arm2:arm6,base1:diffbot`` gives two ``arm6`` arms and a ``diffbot`` base (driver
    ``mujoco``); ``m1::mock`` a mock robot. A part left empty is left to the params file (then
    the robot node's defaults: driver ``mujoco``, model ``arm6``). Blanks around entries and a
    trailing comma are ignored.

    Raises:
        ValueError: no robots; an entry with more than three parts or an empty id; an id that
            cannot be a ROS namespace (e.g. ``arm-1``: ROS names have no ``-``); an unknown
            driver; an id given twice. The message names the entry.
    """
    if not isinstance(text, str):
        raise TypeError(f"robots must be a string like {DEFAULT_ROBOTS!r}, got {type(text).__name__}")
    specs: list[RobotSpec] = []
    seen: set[str] = set()
    entries = [e.strip() for e in text.split(",")]
    if entries and entries[-1] == "":
        entries.pop()  # a trailing comma
    for n, entry in enumerate(entries, 1):
        parts = [p.strip() for p in entry.split(":")]
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"robots entry {n} {entry!r}: expected id[:model[:driver]], "
                             f"e.g. arm1:arm6 or m1::mock")
        robot_id, model, driver = (parts + ["", ""])[:3]
        if robot_id in seen:
            raise ValueError(f"robots entry {n}: robot id {robot_id!r} appears twice: one robot, one id")
        seen.add(robot_id)
        specs.append(make_spec(robot_id, driver=driver, model=model, where=f"robots entry {n} {entry!r}"))
    if not specs:
        raise ValueError(f"robots is empty: give at least one id[:model[:driver]], e.g. {DEFAULT_ROBOTS}")
    return specs


@dataclass(frozen=True)
class FleetPlan:
    """The robots a bring-up starts as ROS nodes, the fleet's mesh-only robots (``ros: false``
    in the fleet file: not started by the launch; ``strands-mesh up`` runs them and the bridge
    shows them in ROS), and the fleet file's ``mesh`` settings."""

    robots: list[RobotSpec]
    mesh_only: list[str]
    mesh: dict[str, Any]


def fleet_robots(robots: str = DEFAULT_ROBOTS, fleet_file: str | os.PathLike | None = None) -> FleetPlan:
    """The robots of a bring-up.

    ``fleet_file`` (a :func:`~strands_mesh_ros.drivers.fleet_config.load_fleet` YAML) wins over
    ``robots`` when both are given; an empty ``fleet_file`` means none.

    Raises:
        FileNotFoundError: ``fleet_file`` does not exist.
        ValueError: a bad ``robots`` string or fleet (see :func:`parse_robots`,
            :func:`~strands_mesh_ros.drivers.fleet_config.load_fleet`), a robot id that cannot be a
            ROS namespace (mesh-only robots too: the bridge mirrors them into ``/<id>``), or a
            fleet without a single ROS robot.
    """
    if not fleet_file:
        return FleetPlan(parse_robots(robots), [], {})
    fleet: FleetSpec = load_fleet(fleet_file)
    for spec in fleet.robots:
        try:
            topics.check_ros_robot_id(spec.id)
        except ValueError as exc:
            raise ValueError(f"{fleet_file}: {exc}") from None
    in_ros = [s for s in fleet.robots if getattr(s, "ros", True)]
    if not in_ros:
        raise ValueError(f"{fleet_file}: every robot has ros: false; nothing to launch in ROS")
    return FleetPlan(in_ros, [s.id for s in fleet.robots if s not in in_ros], dict(fleet.mesh))


def layout(index: int, spacing: float = DEFAULT_SPACING) -> tuple[float, float]:
    """Where robot number ``index`` (0-based, fleet order) stands in :data:`WORLD_FRAME`:
    ``(x, y)`` in m, robots in a row along +y, ``spacing`` m apart.

    Raises:
        ValueError: a negative index or spacing.
    """
    if index < 0 or not spacing >= 0:
        raise ValueError(f"layout needs index >= 0 and spacing >= 0 m, got {index}, {spacing}")
    return 0.0, index * float(spacing)


def parse_bool(value: str | bool, what: str = "value") -> bool:
    """``true``/``false`` (any case, also ``1``/``0``, ``yes``/``no``) as launch arguments spell them.

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{what}: {value!r} is not true or false")


def split_list(text: str | Iterable[str] | None) -> list[str]:
    """Comma- or blank-separated words (e.g. Zenoh endpoints) as a list, empties dropped."""
    if text is None:
        return []
    if isinstance(text, str):
        text = text.replace(",", " ").split()
    return [str(t).strip() for t in text if str(t).strip()]


# -- parameters --------------------------------------------------------------------------


def params_sections(params_file: str | os.PathLike | None, robot_id: str) -> dict[str, Any]:
    """The params file re-rooted for one robot node: the ``ros__parameters`` of its sections
    that address ``/<robot_id>/robot_node``, merged least specific first: ``/**``,
    ``/**/robot_node``, ``robot_node``, ``/robot_node``, ``<robot_id>/robot_node``,
    ``/<robot_id>/robot_node``. Sections for other nodes or robots are left out, so one file
    can hold the whole fleet's settings.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not YAML, not a mapping of ``<node>: {ros__parameters: {...}}``.
    """
    if not params_file:
        return {}
    path = Path(params_file)
    if not path.is_file():
        raise FileNotFoundError(f"params_file {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a ROS params file is a mapping of node names to "
                         f"{{ros__parameters: ...}}, got {type(data).__name__}")
    keys = ("/**", f"/**/{NODE_NAME}", NODE_NAME, f"/{NODE_NAME}", f"{robot_id}/{NODE_NAME}",
            f"/{robot_id}/{NODE_NAME}")
    merged: dict[str, Any] = {}
    for key in keys:
        section = data.get(key)
        if section is None:
            continue
        params = section.get("ros__parameters") if isinstance(section, Mapping) else None
        if not isinstance(params, Mapping):
            raise ValueError(f"{path}: section {key!r} has no ros__parameters mapping")
        merged.update(params)
    return merged


def robot_parameters(spec: RobotSpec, params_file: str | os.PathLike | None = None, *,
                     driver_config: str | os.PathLike | None = None) -> tuple[RobotSpec, dict[str, Any]]:
    """The robot node's parameters: the params file's sections for this robot
    (:func:`params_sections`), then the fields the spec sets explicitly, ``driver_config``
    (made absolute) if given, then ``robot_id``.

    Returns:
        ``(effective spec, parameters)``; the effective spec has driver / model /
        state_rate / realtime as the node will see them, and the parameters are typed as the
        node declares them (``state_rate`` a float even if the file says ``20``).

    Raises:
        FileNotFoundError, ValueError: see :func:`params_sections`; a params-file value the
            node would refuse (unknown driver, rate out of range).
    """
    params = params_sections(params_file, spec.id)
    for name in SPEC_PARAMETERS:
        if name in spec.model_fields_set:
            params[name] = getattr(spec, name)
    if (wd := spec.watchdog()) is not None:  # the fleet file's link-loss watchdog
        params["watchdog_operators"], params["watchdog_timeout"] = list(wd.operators), wd.timeout
    if driver_config:
        params["driver_config"] = str(Path(driver_config).resolve())
    params["robot_id"] = spec.id
    where = f"robot {spec.id!r} ({params_file})" if params_file else f"robot {spec.id!r}"
    resolved = make_spec(spec.id, driver=params.get("driver", ""), model=params.get("model", ""),
                         state_rate=params.get("state_rate", ""), realtime=params.get("realtime", ""),
                         where=where)
    for name in SPEC_PARAMETERS:
        params[name] = getattr(resolved, name)
    params["state_rate"] = float(params["state_rate"])
    effective = spec.model_copy(update={n: params[n] for n in SPEC_PARAMETERS})
    return effective, params


def ros_topics_config(spec: RobotSpec, driver_config: str | os.PathLike | None = None) -> Any:
    """The resolved :class:`~strands_mesh_ros.ros.ros_topics.RosTopicsConfig` of a
    ``ros_topics`` robot: its inline ``options`` (which may name a ``config_file``), else the
    ``driver_config`` file (plain or fleet form).

    Raises:
        ValueError: neither is given, or the config is invalid (names the file and field).
        FileNotFoundError: a named file does not exist.
    """
    from .drivers.ros_topics_config import load_ros_topics_config

    if spec.options:
        return load_ros_topics_config(dict(spec.options), spec.id)
    if driver_config:
        return load_ros_topics_config(driver_config, spec.id)
    raise ValueError(f"robot {spec.id!r}: driver ros_topics needs a config: options in the fleet file, or "
                     "parameter driver_config (see config/ros_topics_example.yaml)")


def write_ros_topics_config(spec: RobotSpec, directory: str | os.PathLike) -> Path:
    """Write a ``ros_topics`` robot's resolved config (from its fleet-file ``options``) to
    ``<directory>/<robot_id>_ros_topics.yaml`` for the robot node's ``driver_config``
    parameter, which takes a file. Returns the path.

    Raises:
        ValueError, FileNotFoundError: see :func:`ros_topics_config`.
    """
    cfg = ros_topics_config(spec)
    path = Path(directory) / f"{spec.id}_ros_topics.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False),
                    encoding="utf-8")
    return path


def robot_launch_arguments(spec: RobotSpec, index: int, *, spacing: float = DEFAULT_SPACING,
                           config_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Launch arguments of ``robot.launch.py`` for one robot of a fleet: only what the spec
    sets (the rest stays with the params file), its place in the row, and for a
    ``ros_topics`` robot with inline options the ``driver_config`` file written to
    ``config_dir``.

    Raises:
        ValueError: ``options`` for a ``mock`` / ``mujoco`` robot: the robot node builds those
            drivers from its parameters alone, so the options could not be honoured (use
            ``fleet_host`` for such a fleet file); a ``ros_topics`` robot with options but no
            ``config_dir``; see also :func:`write_ros_topics_config`.
    """
    args = {"robot_id": spec.id}
    for name in SPEC_PARAMETERS:
        if name in spec.model_fields_set:
            value = getattr(spec, name)
            args[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if spec.options:
        if spec.driver != "ros_topics":
            raise ValueError(
                f"robot {spec.id!r}: options {sorted(spec.options)} of driver {spec.driver!r} cannot be passed to "
                "robot_node, which builds mock and mujoco drivers from its parameters only; drop them, or run "
                "this fleet file with fleet_host (ros2 run strands_mesh_ros fleet_host <file>)")
        if config_dir is None:
            raise ValueError(f"robot {spec.id!r}: ros_topics options need a directory to write the driver config to")
        args["driver_config"] = str(write_ros_topics_config(spec, config_dir))
    x, y = layout(index, spacing)
    args.update(world_frame=WORLD_FRAME, x=repr(x), y=repr(y))
    return args


def bridge_parameters(mesh: Mapping[str, Any] | None = None, *, prefix: str = "", namespace: str = "",
                      connect: str | Iterable[str] = "", listen: str | Iterable[str] = "",
                      zenoh_config: str = "") -> dict[str, Any]:
    """The bridge node's parameters: the launch arguments, else the fleet file's ``mesh``
    settings (``prefix``, ``namespace``, ``connect``, ``listen``, ``config_file``). Unset
    ones are left out, so the node's defaults and the environment (``STRANDS_MESH_PREFIX``,
    ``ZENOH_CONNECT``, ``ZENOH_CONFIG``, ...) apply.

    Raises:
        ValueError: a ``mesh`` value of the wrong type, or a ``zenoh_config`` that does not exist.
    """
    mesh = dict(mesh or {})
    out: dict[str, Any] = {}
    for name, arg in (("prefix", prefix), ("namespace", namespace)):
        value = arg or mesh.get(name) or ""
        if not isinstance(value, str):
            raise ValueError(f"mesh.{name} must be a string, got {value!r}")
        if value:
            out[name] = value
    for name, arg in (("connect", connect), ("listen", listen)):
        value = split_list(arg) or split_list(mesh.get(name))
        if value:
            out[name] = value
    config = zenoh_config or mesh.get("config_file") or ""
    if config:
        if not Path(config).is_file():
            raise ValueError(f"Zenoh config file {config!r} does not exist")
        out["zenoh_config"] = str(config)
    return out


def ros2dds_key(topic: str, namespace: str = "") -> str:
    """The Zenoh key under which zenoh-bridge-ros2dds routes ROS topic ``topic``: the name
    without its leading ``/``, behind the bridge's ``namespace`` if one is set
    (``/arm1/joint_states`` -> ``arm1/joint_states``; with namespace ``/site_a``,
    ``site_a/arm1/joint_states``). The payload is the message as CDR; this is ROS traffic on
    Zenoh, not the contract's ``P/<peer>/...`` JSON keys.

    Raises:
        ValueError: ``topic`` is not an absolute ROS name, or ``namespace`` is not absolute.
    """
    if not topic.startswith("/") or topic == "/" or "//" in topic:
        raise ValueError(f"topic {topic!r} must be an absolute ROS name such as /arm1/joint_states")
    if namespace and (not namespace.startswith("/") or "//" in namespace):
        raise ValueError(f"namespace {namespace!r} must be absolute, e.g. /site_a")
    ns = namespace.strip("/")
    return f"{ns}/{topic[1:]}" if ns else topic[1:]


# -- URDF --------------------------------------------------------------------------------


def robot_urdf(robot_id: str, driver: str = "mujoco", model: str = "arm6", *,
               options: Mapping[str, Any] | None = None, driver_config: str | os.PathLike | None = None) -> str:
    """The URDF the robot node publishes as ``/<robot_id>/robot_description``, built without
    starting anything: for ``mujoco`` the model is loaded (not stepped) and
    :meth:`~strands_mesh_ros.drivers.mujoco_sim.MujocoDriver.robot_description` returned; for
    ``mock`` the :class:`~strands_mesh_ros.drivers.mock.MockDriver`'s; for ``ros_topics``
    the config's ``urdf_file``, else the minimal chain the node generates from its joints.

    Raises:
        ValueError: bad id or driver; ros_topics without a config (see :func:`ros_topics_config`).
        DriverError: the MuJoCo model does not load (names the source).
    """
    topics.check_ros_robot_id(robot_id)
    if driver not in DRIVERS:
        raise ValueError(f"robot {robot_id!r}: driver {driver!r} unknown; use one of {', '.join(DRIVERS)}")
    opts = dict(options or {})
    if driver == "mock":
        from .drivers.mock import MockDriver

        return MockDriver(robot_id, **opts).robot_description()
    if driver == "mujoco":
        from .drivers.mujoco_sim import MujocoDriver

        sim = MujocoDriver(robot_id, model, realtime=False, **opts)
        try:
            return sim.robot_description()
        finally:
            sim.close()
    from .robot.driver import JointInfo
    from .drivers.mock import urdf_for_joints

    cfg = ros_topics_config(RobotSpec(id=robot_id, driver="ros_topics", options=opts), driver_config)
    if cfg.urdf_file:
        try:
            return Path(cfg.urdf_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"robot {robot_id!r}: cannot read urdf_file {cfg.urdf_file!r}: {exc}") from None
    joints = [JointInfo(j.name, j.kind, j.lower, j.upper, j.max_velocity, j.max_effort) for j in cfg.joints]
    return urdf_for_joints(robot_id, joints)


def root_link(urdf: str) -> str:
    """The root link of a URDF: the one link that is no joint's child.

    Raises:
        ValueError: not URDF XML, or not exactly one root.
    """
    try:
        robot = ET.fromstring(urdf.encode("utf-8") if isinstance(urdf, str) else urdf)
    except ET.ParseError as exc:
        raise ValueError(f"not a URDF: {exc}") from None
    if robot.tag != "robot":
        raise ValueError(f"not a URDF: root element <{robot.tag}>, expected <robot>")
    links = [link.get("name") for link in robot.findall("link")]
    children = {c.get("link") for c in robot.findall("joint/child")}
    roots = [name for name in links if name not in children]
    if len(roots) != 1:
        raise ValueError(f"URDF {robot.get('name')!r} has {len(roots)} root links {roots}; expected one")
    return roots[0]


def plan_robot(spec: RobotSpec, params_file: str | os.PathLike | None = None, *,
               state_publisher: bool = True, driver_config: str | os.PathLike | None = None) -> RobotPlan:
    """Resolve one robot for ``robot.launch.py``: its node parameters
    (:func:`robot_parameters`; ``driver_config`` wins over the params file's) and, unless
    ``state_publisher`` is False or the robot already publishes its own description
    (``ros_topics`` with ``provides_robot_description``), the URDF for robot_state_publisher.

    The URDF is built even when no robot_state_publisher is wanted: building it loads the
    robot's model (not stepped), so an unknown model or driver option is refused here, before
    any process starts, rather than by the robot node after others have started.

    Raises:
        ValueError, FileNotFoundError: from the functions above; a model or driver that does not
            load is a ValueError naming the robot (``robot 'x2' (mujoco, model 'nosuchmodel'): ...``).
    """
    effective, params = robot_parameters(spec, params_file, driver_config=driver_config)
    driver_config = params.get("driver_config") or None
    if effective.driver == "ros_topics":
        cfg = ros_topics_config(effective, driver_config)
        if cfg.provides_robot_description:
            return RobotPlan(effective, params)
    try:
        urdf = robot_urdf(effective.id, effective.driver, effective.model, options=effective.options,
                          driver_config=driver_config)
    except Exception as exc:  # DriverError, ValueError, OSError: all mean "this robot cannot start"
        what = effective.driver if effective.driver != "mujoco" else f"mujoco, model {effective.model!r}"
        raise ValueError(f"robot {effective.id!r} ({what}): {exc}") from exc
    if not state_publisher:
        return RobotPlan(effective, params)
    return RobotPlan(effective, params, urdf, root_link(urdf))


def plan_robot_launch(arguments: Mapping[str, str], where: str = "") -> RobotPlan:
    """What ``robot.launch.py`` makes of its launch arguments (strings; a missing one counts as
    empty, ``use_robot_state_publisher`` defaults to true): :func:`make_spec` of ``robot_id``,
    ``driver``, ``model``, ``state_rate``, ``realtime``, then :func:`plan_robot` with
    ``params_file`` and ``driver_config``; ``mesh_prefix`` becomes the node's ``prefix``
    parameter, ``use_sim_time`` and ``publish_clock`` (true | false, empty: the params file's)
    the node's parameters of those names. ``fleet.launch.py`` calls it for every robot before
    it starts anything.

    Raises:
        ValueError, FileNotFoundError: see :func:`make_spec` and :func:`plan_robot`; ``x`` /
            ``y`` not numbers; ``publish_clock`` on a robot that is not simulated. ``where``
            prefixes make_spec's messages.
    """
    arg = {k: ("" if v is None else str(v)) for k, v in arguments.items()}
    robot_id = arg.get("robot_id", "")
    spec = make_spec(robot_id, driver=arg.get("driver", ""), model=arg.get("model", ""),
                     state_rate=arg.get("state_rate", ""), realtime=arg.get("realtime", ""), where=where)
    rsp = parse_bool(arg.get("use_robot_state_publisher") or "true", "use_robot_state_publisher")
    for name in ("x", "y"):
        try:
            float(arg.get(name) or 0.0)
        except ValueError:
            raise ValueError(f"robot {robot_id!r}: {name} {arg[name]!r} is not a number (m)") from None
    plan = plan_robot(spec, arg.get("params_file") or None, state_publisher=rsp,
                      driver_config=arg.get("driver_config") or None)
    if arg.get("mesh_prefix"):
        plan.parameters["prefix"] = arg["mesh_prefix"]
    if arg.get("use_sim_time"):
        plan.parameters["use_sim_time"] = parse_bool(arg["use_sim_time"], "use_sim_time")
    if arg.get("publish_clock"):
        publish = parse_bool(arg["publish_clock"], "publish_clock")
        if publish and plan.spec.driver != "mujoco":
            raise ValueError(f"robot {robot_id!r}: publish_clock:=true needs a simulated robot (driver mujoco); "
                             f"{plan.spec.driver!r} runs on the wall clock")
        plan.parameters["publish_clock"] = publish
    return plan


def clock_publisher(specs: Sequence[RobotSpec], publish_clock: bool) -> str | None:
    """The one robot of a fleet that publishes ``/clock`` under ``publish_clock:=true``: the
    first simulated (``mujoco``) robot. One ``/clock`` per ROS graph, as a simulator provides;
    every robot's simulation steps on its own, so the others' skills keep their own simulated
    time and only their ``joint_states`` stamps follow ``/clock`` (with ``use_sim_time``).

    Raises:
        ValueError: ``publish_clock`` and no simulated robot in the fleet.
    """
    if not publish_clock:
        return None
    for spec in specs:
        if spec.driver == "mujoco":
            return spec.id
    raise ValueError("publish_clock:=true needs a simulated robot (driver mujoco) in the fleet; it has "
                     + (", ".join(f"{s.id} ({s.driver})" for s in specs) or "no robots"))


# -- executables -------------------------------------------------------------------------


def find_ros_executable(package: str, executable: str) -> str:
    """``<prefix>/lib/<package>/<executable>`` of a ROS package, looked up as launch_ros's
    ``Node(package=..., executable=...)`` does (the ament index, i.e. ``AMENT_PREFIX_PATH``).

    Raises:
        LookupError: the package is not installed, or has no such executable (names both).
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        raise LookupError(f"cannot look up ROS package {package!r}: ament_index_python is not installed "
                          "(source a ROS install, or use the bootstrap venv)") from None
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        raise LookupError(f"package {package!r} not found (AMENT_PREFIX_PATH="
                          f"{os.environ.get('AMENT_PREFIX_PATH', '')!r})") from None
    path = Path(prefix) / "lib" / package / executable
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise LookupError(f"package {package!r} ({prefix}) has no executable {executable!r}")
    return str(path)


def robot_launch_executables(plan: RobotPlan, *, world_frame: str = "") -> list[tuple[str, str, str]]:
    """``(package, executable, why)`` of every process ``robot.launch.py`` starts for ``plan``."""
    rid = plan.robot_id
    out = [("strands_mesh_ros", "robot_node", f"robot {rid!r}")]
    if plan.urdf is not None:
        out.append(("robot_state_publisher", "robot_state_publisher",
                    f"robot {rid!r} (TF of its links; launch with use_robot_state_publisher:=false to leave it out)"))
        if world_frame:
            out.append(("tf2_ros", "static_transform_publisher",
                        f"robot {rid!r} (its place in {world_frame!r}; needs use_robot_state_publisher)"))
    return out


def check_executables(needed: Iterable[tuple[str, str, str]]) -> None:
    """Check that every ``(package, executable, why)`` can be started; all are checked before
    any process starts, and one error lists every one missing with who needs it.

    Raises:
        LookupError: e.g. ``cannot start robot_state_publisher/robot_state_publisher, needed by
            robot 'a1' (...), robot 'b1' (...): package 'robot_state_publisher' not found (...)``.
    """
    wanted: dict[tuple[str, str], list[str]] = {}
    for package, executable, why in needed:
        wanted.setdefault((package, executable), []).append(why)
    missing: list[str] = []
    for (package, executable), whys in wanted.items():
        try:
            find_ros_executable(package, executable)
        except LookupError as exc:
            missing.append(f"cannot start {package}/{executable}, needed by {', '.join(whys)}: {exc}")
    if missing:
        raise LookupError("; ".join(missing))


__all__ = [
    "DEFAULT_ROBOTS",
    "DEFAULT_SPACING",
    "DRIVERS",
    "NODE_NAME",
    "ROBOT_STATE_PUBLISHER_DESCRIPTION",
    "SPEC_PARAMETERS",
    "WORLD_FRAME",
    "FleetPlan",
    "RobotPlan",
    "bridge_parameters",
    "check_executables",
    "clock_publisher",
    "find_ros_executable",
    "fleet_robots",
    "layout",
    "make_spec",
    "params_sections",
    "parse_bool",
    "parse_robots",
    "plan_robot",
    "plan_robot_launch",
    "robot_launch_executables",
    "robot_launch_arguments",
    "robot_parameters",
    "robot_urdf",
    "root_link",
    "ros2dds_key",
    "ros_topics_config",
    "split_list",
    "write_ros_topics_config",
]
