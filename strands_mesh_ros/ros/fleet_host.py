"""``FleetHost``: N robots in one process, each a :class:`~.robot_node.RobotNode` in its own
namespace ``/<robot_id>``, each spun by a single-threaded executor of its own.

Built from a fleet file (:mod:`strands_mesh_ros.drivers.fleet_config`; default
:data:`~strands_mesh_ros.drivers.fleet_config.DEFAULT_FLEET`: sim arms ``arm1``, ``arm2`` and base
``base1``). Robots share nothing but the process: each has its own driver, lanes, lockout and
node, so a command to ``arm1`` never moves ``arm2`` (as in nav2's multi-robot bringup, one
namespace per robot; per-robot ``tf`` is left to robot_state_publisher in each namespace).

    ros2 run strands_mesh_ros fleet_host config/fleet.yaml
    ros2 run strands_mesh_ros fleet_host --ros-args -p fleet_file:=config/fleet.yaml

A ROS ``--params-file`` keyed ``/**: ros__parameters:`` applies to every robot node (e.g. a
shared ``state_rate``); values in the fleet file win over it.

Simulation time: ``--ros-args -p publish_clock:=true`` makes the fleet's first simulated robot
publish ``/clock`` from its simulation (only that one: a ROS graph has one clock), and
``-p use_sim_time:=true`` puts every robot node on it (their ``joint_states`` stamps follow).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..drivers.fleet_config import FleetSpec, load_fleet
from .robot_node import CONFIG_ERRORS, RobotNode
from .spin import BackgroundSpin, make_executor, run_main


class FleetHost:
    """Runs every robot of a fleet as a :class:`RobotNode`, each on an executor of its own.

    Each robot node is spun by an executor of its own (:func:`~.spin.make_executor`: rclpy's
    ``EventsExecutor``, or ``SingleThreadedExecutor`` with ``STRANDS_MESH_EXECUTOR=single``) on
    its own thread, so one robot's callbacks never wait behind another's. Measured (bench/bench_halt.py, bench_bridge.py
    flood): rclpy's ``MultiThreadedExecutor`` rebuilt its wait set ~6 times per command, a
    bridged robot's e-stop then took p99 239 ms and a flood starved its presence timer for up to
    4 s (the bridge dropped the robot); one single-threaded executor per node halts in p99 6-8 ms
    and answered ~1,000 cmd/s with nothing lost. Nothing in a robot node blocks: skills run on
    the robot's lane threads.

    Args:
        fleet: a :class:`FleetSpec`, a fleet file path, its parsed mapping, or None for the
            default fleet.
        context: the rclpy context (None: the default one; must be initialised).
        num_threads: ignored (kept for callers of the earlier shared executor).
        publish_clock: the first ``mujoco`` robot publishes ``/clock`` from its simulated time
            (every other robot is told not to, whatever its parameters say).
        **node_kwargs: passed to every :class:`RobotNode` (e.g. ``resume_key``, ``audit_dir``).

    Raises:
        ValueError, FileNotFoundError: a bad fleet (see :func:`load_fleet`), or a robot id that
            cannot be a ROS namespace. Nodes built before the failure are destroyed.

    Attributes:
        nodes: ``{robot_id: RobotNode}`` in fleet order.
        executors: ``{robot_id: executor}`` (see :func:`~.spin.make_executor`).
    """

    def __init__(self, fleet: FleetSpec | str | os.PathLike | Mapping[str, Any] | None = None, *,
                 context: rclpy.context.Context | None = None, num_threads: int | None = None,
                 publish_clock: bool = False, **node_kwargs: Any) -> None:
        self.fleet = load_fleet(fleet)
        from . import topics

        self.mesh_only = [spec for spec in self.fleet.robots if not spec.ros]
        for spec in self.fleet.robots:  # refuse the whole fleet before building any robot
            topics.check_ros_robot_id(spec.id)
        self.context = context
        self.nodes: dict[str, RobotNode] = {}
        sims = [spec.id for spec in self.fleet.robots if spec.ros and spec.driver == "mujoco"]
        self.clock_robot = sims[0] if publish_clock and sims else None
        if publish_clock and self.clock_robot is None:
            raise ValueError("publish_clock: the fleet has no simulated (mujoco) ROS robot to take /clock from")
        try:
            for spec in self.fleet.robots:
                if not spec.ros:
                    continue  # a mesh-only robot: strands_mesh_ros.fleet runs it, the bridge mirrors it
                clock = Parameter("publish_clock", value=spec.id == self.clock_robot)
                self.nodes[spec.id] = RobotNode.from_spec(
                    spec, context=context, **{**node_kwargs, "parameter_overrides": [
                        *node_kwargs.get("parameter_overrides", []), clock]})
        except BaseException:
            self._destroy_nodes()
            raise
        self.executors: dict[str, Any] = {}
        for rid, node in self.nodes.items():
            self.executors[rid] = make_executor(context)
            self.executors[rid].add_node(node)
        self._spinners: list[BackgroundSpin] = []

    def spin(self) -> None:
        """Spin until shutdown (Ctrl-C or context shutdown): every robot on its own thread,
        this thread waiting for them."""
        self.start()
        try:
            for spinner in self._spinners:
                spinner.join()
        finally:
            self._stop_spinning()

    def start(self, on_exit: Callable[[], Any] | None = None) -> "FleetHost":
        """Spin every robot on a background thread; :meth:`close` stops them. Idempotent.

        Args:
            on_exit: called when any robot's spinning ends (a :meth:`close`, the context shut
                down, or an executor that died): ``fleet_host``'s main then shuts the process
                down rather than run on with a robot that no longer answers.
        """
        if not self._spinners:
            self._spinners = [BackgroundSpin(ex, f"robot-{rid}", on_exit=on_exit) for rid, ex in self.executors.items()]
        return self

    def _stop_spinning(self) -> None:
        for spinner in self._spinners:
            spinner.stop()
        if not self._spinners:
            for ex in self.executors.values():
                ex.shutdown(timeout_sec=5.0)
        self._spinners = []

    def _destroy_nodes(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.destroy_node()

    def close(self) -> None:
        """Stop spinning, then preempt every robot, close its driver and destroy its node.
        Idempotent."""
        self._stop_spinning()
        self._destroy_nodes()
        self.nodes.clear()

    def __enter__(self) -> "FleetHost":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _host_parameters(context: rclpy.context.Context | None = None) -> tuple[str, bool]:
    """The ``fleet_file`` (empty when unset) and ``publish_clock`` ROS parameters of node
    ``fleet_host``."""
    node = Node("fleet_host", context=context, start_parameter_services=False)
    try:
        fleet_file = node.declare_parameter(
            "fleet_file", "", ParameterDescriptor(type=ParameterType.PARAMETER_STRING, read_only=True,
                                                  description="Fleet YAML (robots: [...]); empty: default fleet"),
        ).value
        publish_clock = node.declare_parameter(
            "publish_clock", False, ParameterDescriptor(type=ParameterType.PARAMETER_BOOL, read_only=True,
                                                        description="the first simulated robot publishes /clock"),
        ).value
        return fleet_file, bool(publish_clock)
    finally:
        node.destroy_node()


def main(args: list[str] | None = None) -> int:
    """``fleet_host [FLEET.yaml] [--ros-args -p fleet_file:=FLEET.yaml]``: run a fleet.

    The positional path wins over the ``fleet_file`` parameter; with neither, the default
    fleet runs. Returns 0 on shutdown, 2 when the fleet is refused (printed to stderr).
    """
    def build(argv: list[str]) -> FleetHost:
        rest = rclpy.utilities.remove_ros_args(argv)[1:]
        if len(rest) > 1:
            raise ValueError(f"expected at most one fleet file, got {rest}")
        fleet_file, publish_clock = _host_parameters()
        path = rest[0] if rest else fleet_file
        return FleetHost(path or None, publish_clock=publish_clock)

    return run_main("fleet_host", build, args, CONFIG_ERRORS)


if __name__ == "__main__":
    raise SystemExit(main())
