"""``Fleet``: the porcelain for running and commanding robots from Python.

    from strands_mesh_ros import Fleet
    with Fleet() as fleet:                              # the default fleet: arm1, arm2, base1
        fleet["arm1"].skills.move_joints(positions=[0, 0.5, -0.5, 0, 0, 0], duration=1.0)
        fleet.tell("arm2", "open gripper")
        fleet.estop("drill")

A Fleet runs its own robots (each a mesh peer with its own driver and id) and an operator peer
that commands any robot on the mesh, its own or remote. Skills are looked up afresh from the
peer's current presence on every call, so a restarted robot's skills are never stale. Nothing
here changes global configuration, and no lock is held across a network call.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from typing import Any

from .drivers.fleet_config import DEFAULT_FLEET, FleetSpec, RobotSpec, load_fleet, make_driver
from .mesh.config import MeshConfig
from .mesh.mesh import BroadcastResult, Mesh
from .mesh.peers import PeerInfo
from .robot.safety import EStopReport
from .contract.payloads import Response


class SkillCallError(RuntimeError):
    """A skill call came back with an error, refusal or timeout. ``response`` has the details."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"{response.responder_id}: {response.status}: {response.error}")
        self.response = response


class _Skills:
    """``robot.skills.<name>(**args)``: calls the skill on the robot, over the mesh."""

    def __init__(self, handle: "RobotHandle") -> None:
        self._h = handle

    def names(self) -> list[str]:
        """Skill names the robot advertises now."""
        return [s["name"] for s in self._h.info().skills]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        available = self.names()
        if name not in available:
            raise AttributeError(f"robot {self._h.robot_id!r} has no skill {name!r}; it offers {sorted(available)}")

        def call(timeout: float = 60.0, **args: Any) -> Any:
            """Run the skill; returns its result. Raises SkillCallError on error/refusal/timeout."""
            resp = self._h.send({"action": "skill", "name": name, "args": args}, timeout=timeout)
            if not resp.ok:
                raise SkillCallError(resp)
            return resp.result["result"] if isinstance(resp.result, dict) and "result" in resp.result else resp.result

        call.__name__ = name
        return call

    def __dir__(self) -> list[str]:
        return self.names()


class RobotHandle:
    """One robot of the fleet (local or remote), addressed by its id."""

    def __init__(self, fleet: "Fleet", robot_id: str) -> None:
        self.robot_id = robot_id
        self._fleet = fleet
        self.skills = _Skills(self)

    def info(self, timeout: float = 5.0) -> PeerInfo:
        """The robot's current presence. Raises TimeoutError if it is not on the mesh."""
        return self._fleet.operator.wait_for_peer(self.robot_id, timeout)

    def send(self, command: dict[str, Any], timeout: float = 30.0) -> Response:
        return self._fleet.operator.send(self.robot_id, command, timeout)

    def tell(self, instruction: str, timeout: float = 60.0) -> Response:
        return self._fleet.operator.tell(self.robot_id, instruction, timeout)

    def status(self) -> dict[str, Any]:
        resp = self.send({"action": "status"})
        if not resp.ok:
            raise SkillCallError(resp)
        return resp.result

    def state(self) -> dict[str, Any]:
        resp = self.send({"action": "state"})
        if not resp.ok:
            raise SkillCallError(resp)
        return resp.result

    def __repr__(self) -> str:
        return f"RobotHandle({self.robot_id!r})"


def _operator_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:36]
    return f"fleet-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Fleet:
    """Run a fleet of robots on the mesh and command any robot on it.

    Args:
        spec: a :class:`FleetSpec`, a path to a fleet YAML, a dict of its content, or None
            for the built-in default fleet (two ``arm6`` sim arms and one ``diffbot`` base).
        robots: alternatively, a list of robot dicts (``[{"id": "arm1", "driver": "mock"}]``).
        config: mesh configuration (default ``MeshConfig.from_env()``, then the spec's ``mesh``).

    Raises:
        ValueError: invalid spec (duplicate ids, unknown driver, bad id).
    """

    def __init__(self, spec: FleetSpec | str | os.PathLike | dict | None = None, *,
                 robots: list[dict[str, Any]] | None = None, config: MeshConfig | None = None) -> None:
        if robots is not None:
            if spec is not None:
                raise ValueError("give a fleet spec or robots=..., not both")
            spec = {"robots": robots}
        self.spec: FleetSpec = spec if isinstance(spec, FleetSpec) else (
            DEFAULT_FLEET if spec is None else load_fleet(spec))
        base = config or MeshConfig.from_env()
        mesh_opts = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (self.spec.mesh or {}).items()}
        self.config = base.with_(**mesh_opts) if mesh_opts and config is None else base
        self.meshes: dict[str, Mesh] = {}
        self.operator = Mesh(_operator_id(), config=self.config, peer_type="agent", robot_type="fleet")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "Fleet":
        """Start every robot (driver then mesh peer) and the operator peer."""
        try:
            for rs in self.spec.robots:
                self._start_robot(rs)
            self.operator.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_robot(self, rs: RobotSpec) -> None:
        if rs.driver == "ros_topics":  # needs rclpy: the ROS layer builds it (a node of its own)
            from .ros.ros_topics import make_ros_topics_driver

            driver = make_ros_topics_driver(rs)
        else:
            driver = make_driver(rs)
        driver.start()
        try:
            mesh = Mesh(rs.id, robot=driver, config=self.config.with_(state_hz=rs.state_rate), watchdog=rs.watchdog())
            mesh.start()
        except BaseException:
            driver.close()
            raise
        self.meshes[rs.id] = mesh

    def stop(self) -> None:
        """Stop the operator and every robot (preempting their calls). Idempotent."""
        self.operator.stop()
        for mesh in self.meshes.values():
            mesh.stop()
            if mesh.robot is not None:
                mesh.robot.close()
        self.meshes.clear()

    def restart_robot(self, robot_id: str) -> None:
        """Stop one local robot and start it again from its spec (a fresh driver)."""
        mesh = self.meshes.pop(robot_id)
        mesh.stop()
        if mesh.robot is not None:
            mesh.robot.close()
        self._start_robot(next(r for r in self.spec.robots if r.id == robot_id))

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- access ---------------------------------------------------------------------------

    @property
    def robot_ids(self) -> list[str]:
        """Ids of the robots this Fleet runs."""
        return [r.id for r in self.spec.robots]

    @property
    def peers(self) -> dict[str, PeerInfo]:
        """Every peer on the mesh (this fleet's robots and anything else), by id."""
        return self.operator.peers

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the operator sees every local robot. Raises TimeoutError."""
        for rid in self.robot_ids:
            self.operator.wait_for_peer(rid, timeout)

    def __getitem__(self, robot_id: str) -> RobotHandle:
        from .contract.keys import check_peer_id

        return RobotHandle(self, check_peer_id(robot_id, "robot id"))

    def tell(self, robot_id: str, instruction: str, timeout: float = 60.0) -> Response:
        return self.operator.tell(robot_id, instruction, timeout)

    def send(self, robot_id: str, command: dict[str, Any], timeout: float = 30.0) -> Response:
        return self.operator.send(robot_id, command, timeout)

    def broadcast(self, command: dict[str, Any], timeout: float = 2.0) -> BroadcastResult:
        return self.operator.broadcast(command, timeout)

    def estop(self, reason: str = "fleet e-stop", timeout: float = 0.5) -> EStopReport:
        """Software e-stop of the whole mesh (see docs/safety.md: supplementary only)."""
        return self.operator.emergency_stop(reason, timeout)
