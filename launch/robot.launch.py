"""One robot in its namespace: the strands_mesh_ros robot node and its robot_state_publisher.

    ros2 launch strands_mesh_ros robot.launch.py robot_id:=arm1 model:=arm6
    ros2 launch strands_mesh_ros robot.launch.py robot_id:=m1 driver:=mock state_rate:=50.0
    ros2 launch strands_mesh_ros robot.launch.py robot_id:=gz_arm driver:=ros_topics \
        driver_config:=config/ros_topics_example.yaml

Started in ``/<robot_id>`` (``PushROSNamespace``):

* ``robot_node`` (``/<robot_id>/robot_node``): the driver, ``joint_states``, the latched
  ``robot_description`` and the mesh contract as typed messages (docs/ros.md);
* ``robot_state_publisher`` with the same URDF, ``frame_prefix`` ``<robot_id>/``, publishing
  on the global ``/tf`` and ``/tf_static`` (its own ``robot_description`` publication is remapped
  away: the robot node already latches ``/<robot_id>/robot_description``);
* with ``world_frame`` set, a static transform ``world_frame`` -> ``<robot_id>/<root link>``
  at (``x``, ``y``), so several robots share one fixed frame in rviz.

Empty ``driver`` / ``model`` / ``state_rate`` / ``realtime`` leave the value to ``params_file``
(then to the node's defaults). Bad values, a model that does not load, and a missing executable
(robot_state_publisher, tf2_ros) are refused before anything starts, with a message naming the
robot (:mod:`strands_mesh_ros.launch_support`). Where robot_state_publisher is not installed
(e.g. the pip-only venv), launch with ``use_robot_state_publisher:=false``.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

try:  # Jazzy and later
    from launch_ros.actions import PushROSNamespace
except ImportError:  # Humble
    from launch_ros.actions import PushRosNamespace as PushROSNamespace

from strands_mesh_ros import launch_support

PACKAGE = "strands_mesh_ros"
SHARE = Path(__file__).resolve().parent.parent  # share/strands_mesh_ros, or the source tree

ARGUMENTS = (
    ("robot_id", "arm1", "robot id = mesh peer id = ROS namespace token ([A-Za-z][A-Za-z0-9_]*)"),
    ("driver", "", "mock | mujoco | ros_topics (empty: params_file, else mujoco)"),
    ("model", "", "MuJoCo model: arm6, diffbot, an MJCF/URDF path, menagerie:<robot> (empty: params_file, else arm6)"),
    ("params_file", str(SHARE / "config" / "robot.yaml"), "robot node parameters (keyed /** or <ns>/robot_node)"),
    ("state_rate", "", "joint_states rate, Hz, 1..500 (empty: params_file, else 20.0)"),
    ("realtime", "", "mujoco: pace physics to the wall clock, true|false (empty: params_file, else true)"),
    ("driver_config", "", "ros_topics: the driver's YAML (plain or fleet form)"),
    ("mesh_prefix", "", "key prefix of the robot's fleet (empty: $STRANDS_MESH_PREFIX, else strands)"),
    ("use_robot_state_publisher", "true", "start robot_state_publisher (TF of the robot's links)"),
    ("use_sim_time", "", "true: the robot node and robot_state_publisher follow /clock (empty: params_file, else false)"),
    ("publish_clock", "", "true: publish /clock from this robot's simulation, one per ROS graph (mujoco only; "
                          "empty: params_file, else false)"),
    ("world_frame", "", "if set, publish a static transform <world_frame> -> <robot_id>/<root link>"),
    ("x", "0.0", "with world_frame: the robot's x in it, m"),
    ("y", "0.0", "with world_frame: the robot's y in it, m"),
)


def robot_group(context):
    """The robot's namespaced group, built once the launch arguments are known. Everything is
    checked first (the arguments, the model, and that every executable exists), so a bad
    argument starts no process at all."""
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    plan = launch_support.plan_robot_launch(arg)
    launch_support.check_executables(launch_support.robot_launch_executables(plan, world_frame=arg["world_frame"]))

    actions = [
        PushROSNamespace(plan.robot_id),
        Node(
            package=PACKAGE,
            executable="robot_node",
            name=launch_support.NODE_NAME,
            parameters=[plan.parameters],
            output="screen",
            emulate_tty=True,
        ),
    ]
    if plan.urdf is None:
        actions.append(LogInfo(msg=f"{plan.robot_id}: no robot_state_publisher (disabled, or the robot "
                                   "publishes its own description and TF)"))
    else:
        actions.append(Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            name="robot_state_publisher",
            parameters=[{"robot_description": plan.urdf, "frame_prefix": plan.frame_prefix,
                         "use_sim_time": bool(plan.parameters.get("use_sim_time", False))}],
            remappings=[("robot_description", launch_support.ROBOT_STATE_PUBLISHER_DESCRIPTION)],
            output="screen",
        ))
        if arg["world_frame"]:
            actions.append(Node(
                package="tf2_ros",
                executable="static_transform_publisher",
                name="world_placement",
                arguments=["--x", str(float(arg["x"])), "--y", str(float(arg["y"])), "--z", "0.0",
                           "--frame-id", arg["world_frame"], "--child-frame-id", plan.root_frame],
                output="log",
            ))
    return [GroupAction(actions)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=robot_group)]
    )
