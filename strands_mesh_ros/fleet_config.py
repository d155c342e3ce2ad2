"""Fleet files: which robots a process runs, and how their drivers are built.

A fleet file is YAML (or the same structure as a dict)::

    robots:
      - id: arm1            # peer id; for ROS also a namespace token ([A-Za-z][A-Za-z0-9_]*)
        driver: mujoco      # mock | mujoco | ros_topics
        model: arm6         # mujoco: built-in name, MJCF/URDF path, menagerie:<robot>, ...
        state_rate: 20.0    # Hz, joint_states / state stream
        realtime: true      # mujoco: pace physics to the wall clock
        options: {}         # extra keyword arguments of the driver (see make_driver)
      - id: base1
        model: diffbot
    mesh: {}                # mesh settings, read by strands_mesh_ros.fleet (prefix, connect, ...)

Used by :mod:`strands_mesh_ros.fleet` (robots on the Zenoh mesh) and by
:mod:`strands_mesh_ros.ros.fleet_host` (robots as ROS nodes). Pure Python: drivers (and with
them mujoco / rclpy) are imported only by :func:`make_driver`, for the driver asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .contract.keys import check_peer_id
from .drivers.base import Driver

DriverKind = Literal["mock", "mujoco", "ros_topics"]


class RobotSpec(BaseModel):
    """One robot of a fleet.

    Attributes:
        id: the robot's peer id (1-64 of ``[A-Za-z0-9_-]``, not ``safety``/``broadcast``).
            Robots that live in ROS must also be valid namespace tokens (no ``-``); the ROS
            nodes check that.
        driver: ``mock`` (ideal joints, no physics), ``mujoco`` (simulated) or ``ros_topics``
            (a robot already in ROS, see :mod:`strands_mesh_ros.drivers.ros_topics`).
        model: the MuJoCo model reference (``mujoco`` only; ignored by the others).
        state_rate: joint-state / state publishing rate, Hz, in [1, 500].
        realtime: pace the simulation to the wall clock (``mujoco`` only).
        ros: when the fleet runs with ROS (``strands-mesh up``, the fleet host), run this robot
            as a ROS node in ``/<id>`` (default); ``false`` keeps it a mesh-only peer, which the
            bridge shows in ROS. Pure-mesh fleets (``Fleet``, ``up --no-ros``) ignore it.
        options: extra driver arguments: ``MockDriver(gripper, robot_type)``,
            ``MujocoDriver(timestep, gripper, home, search_path, robot_type, ...)``, or for
            ``ros_topics`` the driver config inline, or ``{config_file: path}``.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    driver: DriverKind = "mujoco"
    model: str = "arm6"
    state_rate: float = Field(20.0, ge=1.0, le=500.0)
    realtime: bool = True
    ros: bool = True
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        return check_peer_id(v, "robot id")


class FleetSpec(BaseModel):
    """A fleet: its robots (ids unique) and mesh settings (free-form, for the Zenoh side)."""

    model_config = ConfigDict(extra="forbid")

    robots: list[RobotSpec] = Field(min_length=1)
    mesh: dict[str, Any] = Field(default_factory=dict)

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
            problems.append(f"{'.'.join(str(p) for p in loc) or 'fleet'}: {err['msg']}")
        raise ValueError(f"{where}: invalid fleet: " + "; ".join(problems)) from None


def make_driver(spec: RobotSpec, *, node: Any = None, context: Any = None) -> Driver:
    """Build (not start) the driver of one robot.

    Args:
        spec: the robot.
        node: for ``ros_topics``: the rclpy node the driver uses (e.g. the robot node);
            None makes the driver create its own node in ``context``.
        context: for ``ros_topics`` without ``node``: the rclpy context (None: the default).

    Raises:
        TypeError: ``options`` the driver does not take (named in the message).
        ValueError, DriverError: what the driver raises for a bad model or config.
    """
    opts = dict(spec.options)
    try:
        if spec.driver == "mock":
            from .drivers.mock import MockDriver

            return MockDriver(spec.id, **opts)
        if spec.driver == "mujoco":
            from .drivers.mujoco_sim import MujocoDriver

            return MujocoDriver(spec.id, spec.model, realtime=spec.realtime, **opts)
        from .drivers.ros_topics import RosTopicsDriver, load_ros_topics_config

        config = load_ros_topics_config(opts, spec.id)  # inline, or {config_file: path, overrides...}
        return RosTopicsDriver(spec.id, config, node=node, context=context)
    except TypeError as exc:
        raise TypeError(f"robot {spec.id!r}: bad options for driver {spec.driver!r}: {exc}") from None


__all__ = ["RobotSpec", "FleetSpec", "DEFAULT_FLEET", "load_fleet", "make_driver", "DriverKind"]
