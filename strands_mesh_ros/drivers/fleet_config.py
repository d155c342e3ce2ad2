"""Fleet files: which robots a process runs, and how their drivers are built.

A fleet file is YAML (or the same structure as a dict)::

    robots:
      - id: arm1            # peer id; for ROS also a namespace token ([A-Za-z][A-Za-z0-9_]*)
        driver: mujoco      # mock | mujoco | ros_topics
        model: arm6         # mujoco: built-in name, MJCF/URDF path, menagerie:<robot>, ...
        state_rate: 20.0    # Hz, joint_states / state stream
        realtime: true      # mujoco: pace physics to the wall clock
        options: {}         # extra keyword arguments of the driver (see make_driver)
        watchdog_operators: [console]  # optional link-loss watchdog (docs/safety.md): halt when
        watchdog_timeout: 2.0          #   no presence from any of them for this many s
      - id: base1
        model: diffbot
    mesh:                   # optional mesh (Zenoh) settings, validated by MeshSettings
      prefix: strands       # contract key prefix P

Used by :mod:`strands_mesh_ros.fleet` (robots on the Zenoh mesh), by
:mod:`strands_mesh_ros.ros.fleet_host` (robots as ROS nodes), by ``strands-mesh up`` and by the
launch files. Pure Python: drivers (and with them mujoco / rclpy) are imported only by
:func:`make_driver` and :func:`check_driver_options`, for the driver asked for.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..contract.keys import check_peer_id, check_prefix
from ..robot.driver import Driver
from ..robot.watchdog import WatchdogConfig

DriverKind = Literal["mock", "mujoco", "ros_topics"]


class RobotSpec(BaseModel):
    """One robot of a fleet.

    Attributes:
        id: the robot's peer id (1-64 of ``[A-Za-z0-9_-]``, not ``safety``/``broadcast``).
            Robots that live in ROS must also be valid namespace tokens (no ``-``); the ROS
            nodes check that.
        driver: ``mock`` (ideal joints, no physics), ``mujoco`` (simulated) or ``ros_topics``
            (a robot already in ROS, see :mod:`strands_mesh_ros.ros.ros_topics`).
        model: the MuJoCo model reference (``mujoco`` only; ignored by the others).
        state_rate: joint-state / state publishing rate, Hz, in [1, 500].
        realtime: pace the simulation to the wall clock (``mujoco`` only).
        ros: when the fleet runs with ROS (``strands-mesh up``, the fleet host), run this robot
            as a ROS node in ``/<id>`` (default); ``false`` keeps it a mesh-only peer, which the
            bridge shows in ROS. Pure-mesh fleets (``Fleet``, ``up --no-ros``) ignore it.
        options: extra driver arguments: ``MockDriver(gripper, robot_type)``,
            ``MujocoDriver(timestep, gripper, home, search_path, robot_type, ...)``, or for
            ``ros_topics`` the driver config inline, or ``{config_file: path}``.
        watchdog_operators, watchdog_timeout: the link-loss watchdog (off unless both are
            given): halt and latch when no presence of any of these operator peer ids was heard
            for ``watchdog_timeout`` s (>= 1.0); see :mod:`strands_mesh_ros.robot.watchdog`.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    driver: DriverKind = "mujoco"
    model: str = "arm6"
    state_rate: float = Field(20.0, ge=1.0, le=500.0)
    realtime: bool = True
    ros: bool = True
    options: dict[str, Any] = Field(default_factory=dict)
    watchdog_operators: list[str] = Field(default_factory=list)
    watchdog_timeout: float | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        return check_peer_id(v, "robot id")

    @model_validator(mode="after")
    def _check_watchdog(self) -> "RobotSpec":
        WatchdogConfig.from_options(self.watchdog_operators, self.watchdog_timeout)  # ValueError names the problem
        return self

    def watchdog(self) -> WatchdogConfig | None:
        """This robot's link-loss watchdog settings, or None when it is off."""
        return WatchdogConfig.from_options(self.watchdog_operators, self.watchdog_timeout)


class MeshSettings(BaseModel):
    """The ``mesh:`` section of a fleet file: the Zenoh side of the fleet. Every key is
    optional; YAML types are taken as they are (``lease_ms: "2000"`` is refused, not coerced).

    Attributes:
        prefix: the contract key prefix ``P`` (chunks of ``[A-Za-z0-9_-]`` joined by ``/``).
        namespace: Zenoh session namespace (same syntax); ``strands`` for strands-robots.
        mode: Zenoh mode: ``peer``, ``client`` or ``router``.
        connect, listen: Zenoh endpoints, lists of ``<protocol>/<address>`` such as
            ``tcp/10.0.0.2:7447``.
        multicast_scouting: enable (true) or disable (false) UDP multicast discovery.
        lease_ms: Zenoh link lease, ms, > 0 (how fast a hung link is dropped).
        config_file: a Zenoh json5 file applied before the settings above; it must exist
            (a relative path resolves against the working directory).

    Where they apply: ``strands-mesh up`` (built-in defaults < environment < this section <
    command-line options), :class:`~strands_mesh_ros.fleet.Fleet` without an explicit
    ``config``, and ``fleet.launch.py`` (its launch arguments win).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    prefix: str | None = None
    namespace: str | None = None
    mode: Literal["peer", "client", "router"] | None = None
    connect: list[str] | None = None
    listen: list[str] | None = None
    multicast_scouting: bool | None = None
    lease_ms: int | None = Field(None, gt=0)
    config_file: str | None = None

    @field_validator("prefix", "namespace")
    @classmethod
    def _check_prefix(cls, v: str | None) -> str | None:
        return None if v is None else check_prefix(v)

    @field_validator("connect", "listen")
    @classmethod
    def _check_endpoints(cls, v: list[str] | None) -> list[str] | None:
        for e in v or []:
            if not re.fullmatch(r"[A-Za-z0-9_-]+/\S+", e):
                raise ValueError(f"{e!r} is not a Zenoh endpoint: write <protocol>/<address>, e.g. tcp/10.0.0.2:7447")
        return v

    @field_validator("config_file")
    @classmethod
    def _check_config_file(cls, v: str | None) -> str | None:
        if v is not None and not os.path.isfile(v):
            raise ValueError(f"Zenoh config file {v!r} does not exist")
        return v


MESH_KEYS: tuple[str, ...] = tuple(MeshSettings.model_fields)
"""The keys a fleet file's ``mesh:`` section may hold."""


def check_mesh_settings(mesh: Any) -> dict[str, Any]:
    """Validate a fleet file's ``mesh:`` section.

    Args:
        mesh: the section (a mapping, a :class:`MeshSettings`, or None for none).

    Returns:
        The settings as a plain dict holding only the keys given (null values dropped),
        lists as lists, e.g. ``{"prefix": "lab", "connect": ["tcp/10.0.0.2:7447"]}``.

    Raises:
        ValueError: an unknown key, a value of the wrong type or a bad value; the message
            names each offending key as ``mesh.<key>``.
    """
    if mesh is None:
        return {}
    if isinstance(mesh, MeshSettings):
        return mesh.model_dump(exclude_none=True)
    if not isinstance(mesh, Mapping):
        raise ValueError(f"mesh: must be a mapping of {', '.join(MESH_KEYS)}, got {type(mesh).__name__}")
    bad_keys = [k for k in mesh if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f"mesh.{bad_keys[0]!r}: unknown key; valid keys: {', '.join(MESH_KEYS)}")
    try:
        return MeshSettings.model_validate(dict(mesh)).model_dump(exclude_none=True)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"][:1]) or "mesh"
            if err["type"] == "extra_forbidden":
                msg = f"unknown key; valid keys: {', '.join(MESH_KEYS)}"
            else:
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] != "value_error":
                    msg += f" (got {str(repr(err.get('input')))[:60]})"
                if len(err["loc"]) > 1:
                    msg = f"item {err['loc'][1]}: {msg}"
            problems.append(f"mesh.{key}: {msg}")
        raise ValueError("; ".join(dict.fromkeys(problems))) from None


class FleetSpec(BaseModel):
    """A fleet: its robots (ids unique) and its mesh settings (validated by
    :class:`MeshSettings`, kept as a plain dict of the keys given)."""

    model_config = ConfigDict(extra="forbid")

    robots: list[RobotSpec] = Field(min_length=1)
    mesh: dict[str, Any] = Field(default_factory=dict)

    @field_validator("mesh", mode="before")
    @classmethod
    def _check_mesh(cls, v: Any) -> dict[str, Any]:
        return check_mesh_settings(v)

    @model_validator(mode="after")
    def _unique_ids(self) -> "FleetSpec":
        seen: set[str] = set()
        for r in self.robots:
            if r.id in seen:
                raise ValueError(f"robot id {r.id!r} appears twice: one robot, one id")
            seen.add(r.id)
        return self

    def robot(self, robot_id: str) -> RobotSpec:
        """The spec of ``robot_id``.

        Raises:
            KeyError: no such robot (the message lists the fleet's ids).
        """
        for r in self.robots:
            if r.id == robot_id:
                return r
        raise KeyError(f"no robot {robot_id!r} in the fleet; it has {[r.id for r in self.robots]}")


DEFAULT_FLEET = FleetSpec(robots=[
    RobotSpec(id="arm1", driver="mujoco", model="arm6"),
    RobotSpec(id="arm2", driver="mujoco", model="arm6"),
    RobotSpec(id="base1", driver="mujoco", model="diffbot", ros=False),
])
"""The built-in fleet: two simulated ``arm6`` arms ``arm1``/``arm2`` and a ``diffbot`` base ``base1``.

With ROS, the arms run as ROS nodes and the base as a mesh-only peer that the bridge mirrors
into ROS, so the default fleet shows both directions of the bridge."""


def load_fleet(source: str | os.PathLike | Mapping[str, Any] | FleetSpec | None = None) -> FleetSpec:
    """Read a fleet.

    Args:
        source: a YAML file path, the parsed structure, a :class:`FleetSpec`, or None for
            :data:`DEFAULT_FLEET`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not YAML, not a mapping, or not a valid fleet (the message names the
            offending robot and field).
    """
    if source is None:
        return DEFAULT_FLEET.model_copy(deep=True)
    if isinstance(source, FleetSpec):
        return source
    where = "fleet"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"fleet file {str(path)!r} not found")
        where = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{where}: not valid YAML: {exc}") from None
    else:
        data = source
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: a fleet must be a mapping with a 'robots' list, got {type(data).__name__}")
    try:
        return FleetSpec.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            loc = list(err["loc"])
            if len(loc) >= 2 and loc[0] == "robots" and isinstance(loc[1], int):
                robots = data.get("robots") or []
                rid = robots[loc[1]].get("id") if loc[1] < len(robots) and isinstance(robots[loc[1]], Mapping) else None
                loc[1] = f"{loc[1]} ({rid})" if rid else loc[1]
            msg = err["msg"].removeprefix("Value error, ")
            if loc == ["mesh"] and msg.startswith("mesh"):
                problems.append(msg)  # already names the key (check_mesh_settings)
            else:
                problems.append(f"{'.'.join(str(p) for p in loc) or 'fleet'}: {msg}")
        raise ValueError(f"{where}: invalid fleet: " + "; ".join(problems)) from None


class DriverOptionError(TypeError, ValueError):
    """A robot's ``options`` that its driver does not take. A TypeError (what calling the
    driver with them raises) and a ValueError (bad fleet input), so callers catching either
    see it. The message is one line naming the robot, the option(s) and the valid options."""


_SPEC_FIELDS: dict[str, frozenset[str]] = {
    "mock": frozenset({"robot_id"}),
    "mujoco": frozenset({"robot_id", "model", "realtime"}),
}
"""Constructor arguments :func:`make_driver` fills from the robot's own fields."""


def driver_option_names(driver: DriverKind) -> frozenset[str] | None:
    """The keyword options a driver kind takes in ``options`` (read from the driver class's
    signature, so the list never drifts from the code), or None when they are not a fixed
    set of names (``ros_topics``: its config, checked by
    :func:`~strands_mesh_ros.ros.ros_topics.load_ros_topics_config`).

    Imports the driver's module (``mujoco`` for ``mujoco``).

    Raises:
        ImportError: the driver's module cannot be imported here.
    """
    if driver == "mock":
        from .mock import MockDriver as cls
    elif driver == "mujoco":
        from .mujoco_sim import MujocoDriver as cls
    else:
        return None
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    return frozenset(named - _SPEC_FIELDS.get(driver, frozenset()))


def check_driver_options(spec: RobotSpec) -> None:
    """Check a robot's ``options`` against its driver without building the driver.

    ``mock`` / ``mujoco``: every option must be a keyword argument of the driver class
    (other than the ones the robot's own fields set: ``model``, ``realtime``).
    ``ros_topics``: the options must form a valid driver config (a named ``config_file``
    must exist). A driver whose module cannot be imported here is not checked (building it
    reports that).

    Raises:
        DriverOptionError: an option the driver does not take, e.g. ``robot 'arm1': bad
            options for driver 'mujoco': unknown option 'bogus'; valid options: gripper,
            home, ...``.
        ValueError: a ``ros_topics`` config that is invalid or names a missing file (the
            message names the robot).
    """
    if spec.driver == "ros_topics":
        from .ros_topics_config import load_ros_topics_config

        try:
            load_ros_topics_config(dict(spec.options), spec.id)
        except (ValueError, OSError) as exc:
            raise ValueError(f"robot {spec.id!r}: {exc}") from None
        return
    try:
        valid = driver_option_names(spec.driver)
    except ImportError:
        return
    if valid is None:
        return
    unknown = sorted(set(spec.options) - valid)
    if not unknown:
        return
    names = ", ".join(repr(k) for k in unknown)
    fields = sorted(set(unknown) & _SPEC_FIELDS.get(spec.driver, frozenset()))
    hint = f" ({', '.join(fields)}: set on the robot itself, not in options)" if fields else ""
    raise DriverOptionError(
        f"robot {spec.id!r}: bad options for driver {spec.driver!r}: unknown option{'s' if len(unknown) > 1 else ''} "
        f"{names}{hint}; valid options: {', '.join(sorted(valid))}")


def make_driver(spec: RobotSpec) -> Driver:
    """Build (not start) the driver of one ``mock`` or ``mujoco`` robot. A ``ros_topics``
    robot needs rclpy, so the ROS layer builds it
    (:func:`strands_mesh_ros.ros.ros_topics.make_ros_topics_driver`): this layer never imports
    the ones above it.

    Args:
        spec: the robot.

    Raises:
        DriverOptionError (a TypeError): ``options`` the driver does not take (the message
            names the robot, the options and the valid ones; see :func:`check_driver_options`).
        TypeError: an option value of a type the driver refuses (named in the message).
        ValueError, DriverError: what the driver raises for a bad model or config; a
            ``ros_topics`` spec.
    """
    opts = dict(spec.options)
    if spec.driver != "ros_topics":
        check_driver_options(spec)
    try:
        if spec.driver == "mock":
            from .mock import MockDriver

            return MockDriver(spec.id, **opts)
        if spec.driver == "mujoco":
            from .mujoco_sim import MujocoDriver

            return MujocoDriver(spec.id, spec.model, realtime=spec.realtime, **opts)
        raise ValueError(f"robot {spec.id!r}: driver ros_topics is built in the ROS layer "
                         "(strands_mesh_ros.ros.ros_topics.make_ros_topics_driver; RobotNode and FleetHost do it)")
    except DriverOptionError:
        raise
    except TypeError as exc:
        raise TypeError(f"robot {spec.id!r}: bad options for driver {spec.driver!r}: {exc}") from None


__all__ = ["RobotSpec", "FleetSpec", "MeshSettings", "MESH_KEYS", "DEFAULT_FLEET", "load_fleet", "make_driver",
           "check_driver_options", "check_mesh_settings", "driver_option_names", "DriverOptionError", "DriverKind"]
