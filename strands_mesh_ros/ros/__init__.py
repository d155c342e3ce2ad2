"""ROS 2 side of strands_mesh_ros: robot nodes, the fleet host, topics, QoS and conversions.

* :mod:`.topics` -- topic names (pure Python);
* :mod:`.qos` -- QoS profiles, each with its reason (imports rclpy);
* :mod:`.convert` -- ROS message <-> contract payload conversions (imports messages lazily);
* :mod:`.robot_node` -- :class:`RobotNode`, one robot in namespace ``/<robot_id>``;
* :mod:`.fleet_host` -- :class:`FleetHost`, N robot nodes in one process.

Importing this package imports no rclpy: ``RobotNode`` and ``FleetHost`` resolve lazily, so
pure-logic users and machines without ROS can import ``strands_mesh_ros.ros.topics``.
"""

_LAZY = {
    "RobotNode": ("strands_mesh_ros.ros.robot_node", "RobotNode"),
    "FleetHost": ("strands_mesh_ros.ros.fleet_host", "FleetHost"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'strands_mesh_ros.ros' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
