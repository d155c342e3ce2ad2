"""strands_mesh_ros: ROS 2 robots and simulated robots on the strands mesh (Zenoh).

Importing this package imports neither zenoh nor rclpy nor mujoco: the public names are
resolved lazily, so pure-logic users (and the ROS launch files) stay light.

    from strands_mesh_ros import Mesh, Fleet
"""

# The generated ROS interfaces (``strands_mesh_ros.msg`` / ``.srv``) are installed by the
# rosidl build into a second ``strands_mesh_ros`` directory (the venv's site-packages, or a
# colcon install space); extend_path lets both halves form one package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

_LAZY = {
    "Mesh": ("strands_mesh_ros.mesh.mesh", "Mesh"),
    "MeshConfig": ("strands_mesh_ros.mesh.config", "MeshConfig"),
    "Fleet": ("strands_mesh_ros.fleet", "Fleet"),
    "KeySpace": ("strands_mesh_ros.contract.keys", "KeySpace"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'strands_mesh_ros' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value
