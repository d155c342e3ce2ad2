"""ROS topic names of strands_mesh_ros (CONTRACT.md "ROS side"), in one place.

Per robot, under the namespace ``/<robot_id>`` (names here are relative to it):

=====================  ==================================  =====================================
name                   type                                direction (seen from the robot node)
=====================  ==================================  =====================================
``joint_states``       sensor_msgs/JointState              published at ``state_rate`` Hz
``robot_description``  std_msgs/String (URDF)              published once, latched
``mesh/command``       strands_mesh_ros/Command            subscribed
``mesh/response``      strands_mesh_ros/Response           published, one per command
=====================  ==================================  =====================================

Fleet-wide (absolute names):

=====================  ==================================  =====================================
``/mesh/presence``     strands_mesh_ros/Presence           every robot node, 2 Hz
``/mesh/estop``        strands_mesh_ros/EStop              subscribed by every robot node
``/mesh/estop_ack``    strands_mesh_ros/Response           one per robot node per e-stop
``/mesh/resume``       std_msgs/String (Resume JSON)       subscribed by every robot node
``/mesh/resume_ack``   std_msgs/String (ack JSON)          one per robot node per resume
``/mesh/peers``        strands_mesh_ros/PeerArray          the bridge, 2 Hz (every mesh peer)
=====================  ==================================  =====================================

QoS of each is in :mod:`strands_mesh_ros.ros.qos`. Pure Python: no rclpy import, so the
bridge, launch files and the fleet code can use these names without ROS.
"""

from __future__ import annotations

import re

JOINT_STATES = "joint_states"
ROBOT_DESCRIPTION = "robot_description"
ODOM = "odom"
"""nav_msgs/Odometry of a mobile base (frames ``<id>/odom`` -> ``<id>/base_link``, REP-105)."""
MESH_COMMAND = "mesh/command"
MESH_RESPONSE = "mesh/response"

PRESENCE = "/mesh/presence"
ESTOP = "/mesh/estop"
ESTOP_ACK = "/mesh/estop_ack"
RESUME = "/mesh/resume"
RESUME_ACK = "/mesh/resume_ack"
PEERS = "/mesh/peers"
DIAGNOSTICS = "/diagnostics"
"""``diagnostic_msgs/DiagnosticArray``, absolute as ``diagnostic_updater`` publishes it (REP-107)."""

PRESENCE_HZ = 2.0
"""Presence heartbeat rate on ``/mesh/presence`` (CONTRACT.md: 2 Hz)."""

DEFAULT_STATE_RATE = 20.0
"""Default ``joint_states`` rate, Hz (the contract's state stream runs at 10-50 Hz)."""

ROS_ROBOT_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
"""A robot id usable as a ROS namespace token *and* a mesh peer id: a letter, then letters,
digits or ``_``, 64 characters at most. The mesh also allows ``-``; ROS names do not."""

_ROS_ID_RE = re.compile(ROS_ROBOT_ID_PATTERN)


def check_ros_robot_id(robot_id: object) -> str:
    """Return ``robot_id`` if it can name a ROS namespace; else raise ValueError.

    Raises:
        ValueError: not a string, empty, over 64 characters, not starting with a letter, or
            containing anything but ``[A-Za-z0-9_]`` (the message names the id and the rule).
    """
    if not isinstance(robot_id, str) or not _ROS_ID_RE.fullmatch(robot_id):
        raise ValueError(
            f"robot_id {robot_id!r} cannot be a ROS namespace: a robot that lives in ROS needs an id "
            "of a letter then letters, digits or '_' ([A-Za-z][A-Za-z0-9_]*, at most 64 characters); "
            "the mesh allows '-', ROS names do not"
        )
    return robot_id


def namespace(robot_id: str) -> str:
    """The robot's ROS namespace, ``/<robot_id>``.

    Raises:
        ValueError: ``robot_id`` is not a valid ROS name token (see :func:`check_ros_robot_id`).
    """
    return "/" + check_ros_robot_id(robot_id)


def robot_topic(robot_id: str, name: str) -> str:
    """Absolute name of a per-robot topic, e.g. ``robot_topic("arm1", JOINT_STATES)`` ->
    ``/arm1/joint_states``.

    Raises:
        ValueError: bad ``robot_id``.
    """
    return f"{namespace(robot_id)}/{name}"


def resolve(ns: str, name: str) -> str:
    """Resolve ``name`` against namespace ``ns`` as ROS does for relative names
    (``~`` private names are not supported): absolute names are returned unchanged.

    Raises:
        ValueError: an empty name, or one starting with ``~``.
    """
    if not name or name.startswith("~"):
        raise ValueError(f"topic name {name!r} must be absolute or relative (not empty, no '~')")
    if name.startswith("/"):
        return name
    ns = ns.rstrip("/")
    return f"{ns}/{name}" if ns else f"/{name}"


__all__ = [
    "JOINT_STATES", "ROBOT_DESCRIPTION", "ODOM", "MESH_COMMAND", "MESH_RESPONSE", "PRESENCE", "ESTOP",
    "ESTOP_ACK", "RESUME", "RESUME_ACK", "PEERS", "PRESENCE_HZ", "DEFAULT_STATE_RATE", "ROS_ROBOT_ID_PATTERN",
    "check_ros_robot_id", "namespace", "robot_topic", "resolve",
]
