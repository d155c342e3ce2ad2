"""Configuration of the ROS-topics driver (:mod:`strands_mesh_ros.ros.ros_topics`): which
topics a robot that already lives in ROS reads and is commanded on, its joints and limits.

Pure (pydantic + YAML): fleet files and launch planning validate a ``ros_topics`` robot's
config here without rclpy. See ``config/ros_topics_example.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..contract.payloads import validation_summary


CommandInterface = Literal["joint_trajectory", "position_controller", "twist"]

DEFAULT_COMMAND_TOPICS: dict[str, str] = {
    "joint_trajectory": "joint_trajectory_controller/joint_trajectory",
    "position_controller": "forward_position_controller/commands",
    "twist": "cmd_vel",
}
"""Command topics (relative to the robot's namespace) of ros2_control's default controller names."""


class JointConfig(BaseModel):
    """One joint: limits in rad | m, rad/s | m/s, N·m | N (None: unknown / unlimited)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    kind: Literal["revolute", "prismatic", "continuous"] = "revolute"
    lower: float | None = None
    upper: float | None = None
    max_velocity: float | None = Field(None, gt=0)
    max_effort: float | None = Field(None, gt=0)


class GripperConfig(BaseModel):
    """Gripper joints (also listed in ``joints``) and their open / closed positions (rad | m)."""

    model_config = ConfigDict(extra="forbid")
    joints: list[str] = Field(min_length=1)
    open: list[float]
    closed: list[float]


class TwistConfig(BaseModel):
    """Limits of the ``drive`` skill and the rate twists are streamed at."""

    model_config = ConfigDict(extra="forbid")
    max_linear: float = Field(0.5, gt=0, description="m/s")
    max_angular: float = Field(1.0, gt=0, description="rad/s")
    rate: float = Field(20.0, ge=1, le=200, description="Hz")


class RosTopicsConfig(BaseModel):
    """Configuration of :class:`RosTopicsDriver` (YAML keys of the same names).

    Attributes:
        command_interface: ``joint_trajectory`` | ``position_controller`` | ``twist``.
        namespace: the robot's ROS namespace; relative topic names resolve against it.
            None means ``/<robot_id>``; ``/`` for a robot at the root.
        joint_states_topic: where the robot publishes ``sensor_msgs/JointState``.
        joint_states_reliable: subscribe reliable (default best effort, which matches both
            reliable and best-effort publishers).
        command_topic: default :data:`DEFAULT_COMMAND_TOPICS` of the interface.
        joints: the commanded joints, in controller order (names or :class:`JointConfig`).
        home: home pose of the non-gripper joints (list in order, or ``{name: value}``);
            default zeros clipped to the limits.
        gripper: optional :class:`GripperConfig`.
        trajectory_mode: ``streamed`` or ``single`` (``joint_trajectory`` only).
        stream_lead: s ahead each streamed point is due.
        hold_time: s after which a hold (stop, e-stop) point is due.
        twist: :class:`TwistConfig` (``twist`` only).
        urdf_file: URDF published as ``robot_description``; None: a minimal one is generated.
        provides_robot_description: the robot already publishes ``/<robot_id>/robot_description``.
        robot_type, peer_type: shown on the mesh.
    """

    model_config = ConfigDict(extra="forbid")
    command_interface: CommandInterface
    namespace: str | None = None
    joint_states_topic: str = "joint_states"
    joint_states_reliable: bool = False
    command_topic: str | None = None
    joints: list[JointConfig | str] = Field(default_factory=list)
    home: list[float] | dict[str, float] | None = None
    gripper: GripperConfig | None = None
    trajectory_mode: Literal["streamed", "single"] = "streamed"
    stream_lead: float = Field(0.1, gt=0, le=5)
    hold_time: float = Field(0.05, gt=0, le=5)
    twist: TwistConfig = Field(default_factory=TwistConfig)
    urdf_file: str | None = None
    provides_robot_description: bool = False
    robot_type: str = "ros_robot"
    peer_type: Literal["robot", "sim"] = "robot"

    @model_validator(mode="after")
    def _consistent(self) -> "RosTopicsConfig":
        self.joints = [JointConfig(name=j) if isinstance(j, str) else j for j in self.joints]
        names = [j.name for j in self.joints]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate joint names in {names}")
        if self.command_interface != "twist" and not names:
            raise ValueError(f"command_interface {self.command_interface!r} needs 'joints' (controller order)")
        if self.namespace is not None and self.namespace and not self.namespace.startswith("/"):
            raise ValueError(f"namespace {self.namespace!r} must be absolute (start with '/')")
        if self.gripper is not None:
            g = self.gripper
            if not (len(g.joints) == len(g.open) == len(g.closed)):
                raise ValueError("gripper joints, open and closed must have the same length")
            missing = sorted(set(g.joints) - set(names))
            if missing:
                raise ValueError(f"gripper joints {missing} are not in joints {names}")
        arm = [n for n in names if not self.gripper or n not in self.gripper.joints]
        if isinstance(self.home, list) and len(self.home) != len(arm):
            raise ValueError(f"home has {len(self.home)} values for {len(arm)} arm joints {arm}")
        if isinstance(self.home, dict) and (unknown := sorted(set(self.home) - set(arm))):
            raise ValueError(f"home names unknown joints {unknown}; arm joints are {arm}")
        return self


def load_ros_topics_config(
    source: str | os.PathLike | Mapping[str, Any] | RosTopicsConfig | None, robot_id: str | None = None
) -> RosTopicsConfig:
    """Read a :class:`RosTopicsConfig`.

    Args:
        source: a YAML path, a mapping or a config. A mapping may name a file in
            ``config_file`` that its other keys override. A file (or mapping) in fleet form
            (``robots: [{id, driver: ros_topics, options: {...}}]``) yields the options of
            ``robot_id``.
        robot_id: which robot of a fleet-form file.

    Raises:
        FileNotFoundError: a named file does not exist.
        ValueError: bad YAML or config (the message names the field and the file).
    """
    if isinstance(source, RosTopicsConfig):
        return source
    if source is None:
        raise ValueError("the ros_topics driver needs a config (driver_config file or options)")
    where = "ros_topics config"
    if isinstance(source, (str, os.PathLike)):
        data: Any = _read_yaml(Path(source))
        where = str(source)
    else:
        data = dict(source)
        if "config_file" in data:
            path = data.pop("config_file")
            base = _read_yaml(Path(path))
            if isinstance(base, Mapping) and "robots" in base:
                base = _from_fleet(base, robot_id, str(path))
            data = {**base, **data}
            where = str(path)
    if isinstance(data, Mapping) and "robots" in data:
        data = _from_fleet(data, robot_id, where)
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: must be a mapping, got {type(data).__name__}")
    try:
        return RosTopicsConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ValueError(f"{where}: invalid ros_topics config: {validation_summary(exc, 5)}") from None


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"ros_topics config file {str(path)!r} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None


def _from_fleet(data: Mapping[str, Any], robot_id: str | None, where: str) -> Mapping[str, Any]:
    robots = [r for r in data.get("robots") or [] if isinstance(r, Mapping)]
    for r in robots:
        if r.get("id") == robot_id:
            return r.get("options") or {}
    raise ValueError(f"{where}: no robot {robot_id!r} in its robots list ({[r.get('id') for r in robots]})")
