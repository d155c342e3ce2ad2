"""The strands_mesh_ros bridge node alone: ROS robots as mesh peers, mesh robots mirrored into ROS.

    ros2 launch strands_mesh_ros bridge.launch.py
    ros2 launch strands_mesh_ros bridge.launch.py connect:=tcp/192.168.1.10:7447 namespace:=strands

The bridge speaks the wire contract on Zenoh (CONTRACT.md); it is not zenoh-bridge-ros2dds, which
carries ROS topics as CDR (see fleet.launch.py ``use_zenoh_bridge``). Empty arguments leave the
setting to the environment (``STRANDS_MESH_PREFIX``, ``STRANDS_MESH_NAMESPACE``,
``ZENOH_CONNECT``, ``ZENOH_CONFIG``) and then to the defaults (prefix ``strands``, no Zenoh
namespace, multicast scouting). Run one bridge per ROS domain; a second one stands by.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from strands_mesh_ros import launch_support

PACKAGE = "strands_mesh_ros"

ARGUMENTS = (
    ("prefix", "", "contract key prefix P (empty: $STRANDS_MESH_PREFIX, else strands)"),
    ("namespace", "", "Zenoh session namespace; strands-robots deployments use 'strands'"),
    ("connect", "", "Zenoh endpoints to connect to, comma-separated (e.g. tcp/10.0.0.2:7447)"),
    ("zenoh_config", "", "a Zenoh json5 config file (e.g. share/strands_mesh_ros/config/zenoh.json5)"),
)


def bridge_node(context):
    """The bridge node; unset arguments are left out so the node's defaults apply."""
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    params = launch_support.bridge_parameters(
        prefix=arg["prefix"], namespace=arg["namespace"], connect=arg["connect"], zenoh_config=arg["zenoh_config"])
    return [Node(
        package=PACKAGE,
        executable="bridge_node",
        name="strands_mesh_bridge",
        parameters=[params] if params else [],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=bridge_node)]
    )
