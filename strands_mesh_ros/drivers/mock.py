"""Mock hardware driver: no physics, follows position commands ideally.

In the spirit of ros2_control's ``mock_components/GenericSystem``: the state of each joint
is the last commanded position, with velocity the finite difference of consecutive commands.
Use it for tests, dry runs of real fleets, and as the reference implementation of
:class:`~strands_mesh_ros.robot.driver.Driver`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import numpy as np

from ..robot.driver import BaseDriver, JointInfo, Observation
from .skills import Gripper, JointSkillsMixin

DEFAULT_ARM = tuple(
    JointInfo(f"joint{i}", "revolute", -2.9, 2.9, 2.0, 50.0) for i in range(1, 7)
)
"""Default mock arm: six revolute joints, ±2.9 rad, 2 rad/s, 50 N·m (a generic 6-DoF arm)."""


def urdf_for_joints(robot_id: str, joints: Sequence[JointInfo]) -> str:
    """A minimal serial-chain URDF so rviz can show a mock robot."""
    links = ['<link name="base_link"/>']
    js = []
    parent = "base_link"
    for i, j in enumerate(joints):
        child = f"link{i + 1}"
        links.append(
            f'<link name="{child}"><visual><geometry><cylinder radius="0.03" length="0.1"/>'
            f"</geometry></visual></link>"
        )
        kind = "revolute" if j.kind == "revolute" else j.kind
        limit = ""
        if kind != "continuous":
            limit = (
                f'<limit lower="{j.lower or 0}" upper="{j.upper or 0}" '
                f'effort="{j.max_effort or 0}" velocity="{j.max_velocity or 0}"/>'
            )
        js.append(
            f'<joint name="{j.name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="0 0 0.1"/><axis xyz="0 0 1"/>{limit}</joint>'
        )
        parent = child
    return f'<?xml version="1.0"?><robot name="{robot_id}">{"".join(links)}{"".join(js)}</robot>'


class MockDriver(JointSkillsMixin, BaseDriver):
    """An ideal joint-position robot.

    Args:
        robot_id: the peer id (1-64 of ``[A-Za-z0-9_-]``).
        joints: arm joints; default :data:`DEFAULT_ARM`.
        gripper: add a one-joint prismatic gripper (0 m closed .. 0.04 m open).
        robot_type: shown as the peer's kind on the mesh.

    Raises:
        ValueError: bad ``robot_id`` or duplicate joint names.
    """

    peer_type = "robot"

    def __init__(
        self,
        robot_id: str,
        joints: Sequence[JointInfo] = DEFAULT_ARM,
        gripper: bool = True,
        robot_type: str = "mock_arm",
    ) -> None:
        super().__init__(robot_id)
        self.robot_type = robot_type
        all_joints = list(joints)
        self._gripper = None
        if gripper:
            all_joints.append(JointInfo("gripper_finger", "prismatic", 0.0, 0.04, 0.1, 20.0))
            self._gripper = Gripper(("gripper_finger",), (0.04,), (0.0,))
        names = [j.name for j in all_joints]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate joint names in {names}")
        self._joints = tuple(all_joints)
        self._index = {n: i for i, n in enumerate(names)}
        self._lock = threading.Lock()
        self._q = np.zeros(len(names))
        self._dq = np.zeros(len(names))
        self._stamp = time.monotonic()
        self.halted = False
        self.commands_received = 0

    def joints(self) -> tuple[JointInfo, ...]:
        return self._joints

    def gripper(self) -> Gripper | None:
        return self._gripper

    def observe(self) -> Observation:
        with self._lock:
            return Observation(
                t=time.time(),
                names=tuple(self._index),
                position=self._q.copy(),
                velocity=self._dq.copy(),
                effort=np.zeros_like(self._q),
            )

    def command_positions(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Set position targets (rad or m); the mock reaches them at once."""
        with self._lock:
            if self.halted:
                return  # e-stopped: hold; the skill is preempted by the runtime
            now = time.monotonic()
            dt = max(now - self._stamp, 1e-6)
            new = self._q.copy()
            for n, p in zip(names, positions):
                new[self._index[n]] = self._joints[self._index[n]].clip(float(p))
            self._dq = (new - self._q) / dt
            self._q = new
            self._stamp = now
            self.commands_received += 1

    def stop(self) -> None:
        with self._lock:
            self._dq[:] = 0.0

    def emergency_stop(self) -> None:
        with self._lock:
            self.halted = True
            self._dq[:] = 0.0

    def resume(self) -> None:
        """Clear the driver-level halt after an authorised resume."""
        with self._lock:
            self.halted = False

    def reset(self) -> None:
        with self._lock:
            self._q[:] = 0.0
            self._dq[:] = 0.0
            self.halted = False

    def robot_description(self) -> str:
        return urdf_for_joints(self.robot_id, self._joints)

    def describe(self) -> dict[str, Any]:
        return {"driver": "mock", "joints": [j.to_dict() for j in self._joints]}
