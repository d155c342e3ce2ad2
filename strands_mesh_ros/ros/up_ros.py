"""The ROS path of ``strands-mesh up``: robots as ROS nodes, the bridge, and mesh-only robots.

One process runs, in one rclpy executor, a :class:`~.fleet_host.FleetHost` (every robot with
``ros: true`` as a RobotNode in ``/<id>``) and a :class:`~.bridge_node.BridgeNode`; robots
with ``ros: false`` run as plain mesh peers, which the bridge mirrors into ROS. So the fleet
is at once ROS nodes (``ros2 topic echo /arm1/joint_states``) and mesh peers
(``strands-mesh peers``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..fleet_config import FleetSpec, load_fleet
from ..mesh.config import MeshConfig


class RosFleet:
    """The running ROS fleet, with the interface :func:`strands_mesh_ros.up.hold` needs.

    Args:
        fleet: fleet spec / file / None for the default fleet.
        config: mesh configuration for the bridge and the mesh-only robots.
        context: an initialised rclpy context (None: the default one).
    """

    def __init__(self, fleet: FleetSpec | str | None, config: MeshConfig, *, context: Any = None) -> None:
        from ..fleet import Fleet
        from .bridge_node import BridgeNode
        from .fleet_host import FleetHost
        from .spin import BackgroundSpin

        self.spec = load_fleet(fleet)
        self.robot_ids = [r.id for r in self.spec.robots]
        ros_robots = [r for r in self.spec.robots if r.ros]
        mesh_robots = [r for r in self.spec.robots if not r.ros]
        self.host = self.bridge = self.mesh_fleet = self._spin = None
        try:
            if ros_robots:
                self.host = FleetHost(FleetSpec(robots=ros_robots, mesh=self.spec.mesh), context=context,
                                      prefix=config.prefix)
            self.bridge = BridgeNode(mesh_config=config, context=context)
            # The bridge on its own single-threaded executor (see bridge_node.main); the robots
            # on the fleet host's.
            from rclpy.executors import SingleThreadedExecutor

            self.executor = SingleThreadedExecutor(context=context)
            self.executor.add_node(self.bridge)
            self._spin = BackgroundSpin(self.executor, "up-bridge")
            if self.host is not None:
                self.host.start()
            # The mesh-only robots, and an operator peer for the live view.
            if mesh_robots:
                self.mesh_fleet = Fleet(FleetSpec(robots=mesh_robots, mesh=self.spec.mesh), config=config).start()
                self.operator = self.mesh_fleet.operator
            else:
                from ..mesh.mesh import Mesh

                self.operator = Mesh(f"up-{os.getpid()}", config=config, peer_type="agent", robot_type="fleet").start()
        except BaseException:
            self.stop()
            raise

    @property
    def peers(self) -> dict:
        return self.operator.peers

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every robot, ROS or mesh-only, is a mesh peer. Raises TimeoutError."""
        for rid in self.robot_ids:
            self.operator.wait_for_peer(rid, timeout)

    def stop(self) -> None:
        if self.mesh_fleet is not None:
            self.mesh_fleet.stop()
        elif getattr(self, "operator", None) is not None:
            self.operator.stop()
        if self._spin is not None:
            self._spin.stop()
        if self.bridge is not None:
            self.bridge.destroy_node()
        if self.host is not None:
            self.host.close()
        self.host = self.bridge = self.mesh_fleet = self._spin = None


def run_ros_fleet(fleet: FleetSpec | str | None, config: MeshConfig, *, stop: threading.Event, headless: bool,
                  duration: float) -> int:
    """Run :class:`RosFleet` until ``stop``/Ctrl-C/``duration``.

    Args:
        fleet: the fleet spec, a fleet YAML path, or None for the built-in fleet.
        config: the mesh configuration (see :func:`strands_mesh_ros.up.resolve_mesh_config`).
        stop: set to end the fleet.
        headless, duration: as for :func:`strands_mesh_ros.up.hold`.

    Returns:
        The exit status: 0 clean stop, 1 robots not up in time, 2 the fleet could not start
        (one ``error:`` line on stderr).
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from ..up import error, hold

    # Ctrl-C stays a KeyboardInterrupt in this thread: the fleet is stopped in order below.
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        try:
            running = RosFleet(fleet, config)
        except (ValueError, RuntimeError, OSError) as exc:
            error(f"could not start the ROS fleet: {exc}")
            return 2
        return hold(running, stop, headless=headless, duration=duration)
    finally:
        rclpy.try_shutdown()
