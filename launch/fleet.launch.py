"""A fleet in ROS: one namespaced group per robot, the mesh bridge, optionally rviz and
zenoh-bridge-ros2dds.

    ros2 launch strands_mesh_ros fleet.launch.py
    ros2 launch strands_mesh_ros fleet.launch.py robots:=arm1:arm6,arm2:arm6 use_rviz:=true
    ros2 launch strands_mesh_ros fleet.launch.py fleet_file:=/path/to/fleet.yaml zenoh_connect:=tcp/10.0.0.2:7447

Robots come from ``robots`` (comma-separated ``id[:model[:driver]]``) or, when given, from
``fleet_file`` (the :mod:`strands_mesh_ros.drivers.fleet_config` YAML; it wins over ``robots``; robots
with ``ros: false`` are left to ``strands-mesh up`` and only reported here). Each robot is
``robot.launch.py`` in its own scoped group, as nav2's multi-robot bring-up includes one stack per
robot: ``robot_node`` and ``robot_state_publisher`` in ``/<robot_id>``, with the shared
``params_file`` re-rooted to that robot (its ``/**``, ``robot_node`` and ``/<id>/robot_node``
sections; the robot's own driver / model / state_rate / realtime win).
``use_robot_state_publisher:=false`` leaves out every robot's robot_state_publisher and world
placement (where robot_state_publisher / tf2_ros are not installed, e.g. the pip-only venv).

TF: every robot_state_publisher uses ``frame_prefix`` ``<robot_id>/`` on the global ``/tf`` and
``/tf_static`` (not remapped into the namespace), and a static transform places each robot's
root frame in ``world``, ``robot_spacing`` m apart along +y. One rviz (``config/fleet.rviz``,
Fixed Frame ``world``) therefore shows the whole fleet in one TF tree.

Everything is validated before any process starts (:mod:`strands_mesh_ros.launch_support`):
an id like ``arm-1`` (ROS names have no ``-``), an unknown driver, a duplicate id, a model that
does not load, fleet-file options that the robot node cannot take, or a missing executable
(robot_state_publisher, tf2_ros, rviz2, zenoh-bridge-ros2dds, our own nodes) stop the launch
with a message that names the robot or the argument, and no process is started.
"""

import shutil
import tempfile
from pathlib import Path

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    GroupAction,
    IncludeLaunchDescription,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from strands_mesh_ros import launch_support

LAUNCH_DIR = Path(__file__).resolve().parent
SHARE = LAUNCH_DIR.parent  # share/strands_mesh_ros, or the source tree
CONFIG = SHARE / "config"
ROBOT_LAUNCH = LAUNCH_DIR / "robot.launch.py"
BRIDGE_LAUNCH = LAUNCH_DIR / "bridge.launch.py"
ZENOH_BRIDGE = "zenoh-bridge-ros2dds"
PACKAGE = "strands_mesh_ros"

ARGUMENTS = (
    ("robots", launch_support.DEFAULT_ROBOTS, "robots as comma-separated id[:model[:driver]]"),
    ("fleet_file", "", "a fleet YAML (strands_mesh_ros.drivers.fleet_config format); wins over robots"),
    ("params_file", str(CONFIG / "robot.yaml"), "robot node parameters, shared and re-rooted per robot"),
    ("robot_spacing", str(launch_support.DEFAULT_SPACING), "distance between robots in the world frame, m"),
    ("use_bridge", "true", "start the strands mesh bridge node (ROS robots <-> the Zenoh mesh contract)"),
    ("mesh_prefix", "", "contract key prefix (empty: fleet file mesh.prefix, $STRANDS_MESH_PREFIX, strands)"),
    ("zenoh_connect", "", "Zenoh endpoints, comma-separated (empty: fleet file mesh.connect, $ZENOH_CONNECT)"),
    ("zenoh_config", "", "Zenoh json5 config of the bridge, e.g. " + str(CONFIG / "zenoh.json5")),
    ("use_robot_state_publisher", "true",
     "start each robot's robot_state_publisher and world placement (false where they are not installed)"),
    ("use_sim_time", "false", "true: every robot node, robot_state_publisher and rviz2 follow /clock"),
    ("publish_clock", "false", "true: the first simulated (mujoco) robot publishes /clock from its simulation"),
    ("use_rviz", "false", "start rviz2 with rviz_config"),
    ("rviz_config", str(CONFIG / "fleet.rviz"), "rviz2 config"),
    ("use_zenoh_bridge", "false", "also start zenoh-bridge-ros2dds (ROS topics as CDR on Zenoh; not the contract)"),
    ("zenoh_bridge_config", str(CONFIG / "zenoh-bridge-ros2dds.json5"), "zenoh-bridge-ros2dds json5 config"),
)


def fleet_actions(context):
    """Robots, bridge, zenoh-bridge-ros2dds and rviz, built once the launch arguments are known.

    Every robot is planned (:func:`launch_support.plan_robot_launch`, as its robot.launch.py
    will) and every executable looked up before the first action is returned: a bad second
    robot or a missing rviz2 fails the launch with nothing started."""
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    fleet = launch_support.fleet_robots(arg["robots"], arg["fleet_file"] or None)
    try:
        spacing = float(arg["robot_spacing"])
    except ValueError:
        raise ValueError(f"robot_spacing {arg['robot_spacing']!r} is not a number (m)") from None
    use_rsp = launch_support.parse_bool(arg["use_robot_state_publisher"], "use_robot_state_publisher")
    use_bridge = launch_support.parse_bool(arg["use_bridge"], "use_bridge")
    use_rviz = launch_support.parse_bool(arg["use_rviz"], "use_rviz")
    use_zenoh_bridge = launch_support.parse_bool(arg["use_zenoh_bridge"], "use_zenoh_bridge")
    use_sim_time = launch_support.parse_bool(arg["use_sim_time"], "use_sim_time")
    clock_robot = launch_support.clock_publisher(fleet.robots, launch_support.parse_bool(arg["publish_clock"], "publish_clock"))
    config_dir = None
    if any(spec.driver == "ros_topics" and spec.options for spec in fleet.robots):
        # the robot node takes a ros_topics config as a file: write the fleet file's inline ones
        config_dir = tempfile.mkdtemp(prefix="strands_mesh_launch_")
    try:
        # The robots join the bridge's fleet: same key prefix (the bridge relays only its own fleet's).
        bridge = launch_support.bridge_parameters(
            fleet.mesh, prefix=arg["mesh_prefix"], connect=arg["zenoh_connect"], zenoh_config=arg["zenoh_config"])
        robots = []
        needed = []
        for index, spec in enumerate(fleet.robots):
            robot_args = launch_support.robot_launch_arguments(spec, index, spacing=spacing, config_dir=config_dir)
            robot_args["params_file"] = arg["params_file"]
            robot_args["use_robot_state_publisher"] = str(use_rsp).lower()
            robot_args["use_sim_time"] = str(use_sim_time).lower()
            robot_args["publish_clock"] = str(spec.id == clock_robot).lower()
            if "prefix" in bridge:
                robot_args["mesh_prefix"] = bridge["prefix"]
            plan = launch_support.plan_robot_launch(robot_args, where=f"robots entry {index + 1}")
            needed += launch_support.robot_launch_executables(plan, world_frame=robot_args["world_frame"])
            robots.append(robot_args)
        if use_bridge:
            needed.append((PACKAGE, "bridge_node", "use_bridge:=true"))
        if use_rviz:
            needed.append(("rviz2", "rviz2", "use_rviz:=true (or launch with use_rviz:=false)"))
            if not Path(arg["rviz_config"]).is_file():
                raise ValueError(f"rviz_config {arg['rviz_config']!r} does not exist")
        launch_support.check_executables(needed)
        if use_zenoh_bridge and shutil.which(ZENOH_BRIDGE) is None:
            raise LookupError(f"use_zenoh_bridge:=true but {ZENOH_BRIDGE} is not on PATH; install it from the "
                              "eclipse-zenoh releases or apt (see docs/ros.md), or launch with use_zenoh_bridge:=false")
    except Exception:
        if config_dir is not None:
            shutil.rmtree(config_dir, ignore_errors=True)
        raise

    actions = []
    if config_dir is not None:
        actions.append(RegisterEventHandler(OnShutdown(
            on_shutdown=[OpaqueFunction(function=lambda _: shutil.rmtree(config_dir, ignore_errors=True))])))
    for robot_args in robots:
        actions.append(GroupAction(  # scoped: one robot's arguments never reach the next
            [IncludeLaunchDescription(PythonLaunchDescriptionSource(str(ROBOT_LAUNCH)),
                                      launch_arguments=robot_args.items())],
        ))
    if fleet.mesh_only:
        actions.append(LogInfo(msg=f"mesh-only robots (ros: false) not started here: {', '.join(fleet.mesh_only)}; "
                                   "run them with strands-mesh up, the bridge shows them in ROS"))
    if use_bridge:
        bridge_args = {k: (",".join(v) if isinstance(v, list) else v) for k, v in bridge.items() if k != "listen"}
        actions.append(GroupAction(
            [IncludeLaunchDescription(PythonLaunchDescriptionSource(str(BRIDGE_LAUNCH)),
                                      launch_arguments=bridge_args.items())],
        ))
    if use_zenoh_bridge:
        cmd = [ZENOH_BRIDGE, "-c", arg["zenoh_bridge_config"]]
        for endpoint in launch_support.split_list(arg["zenoh_connect"]):
            cmd += ["-e", endpoint]
        actions.append(ExecuteProcess(cmd=cmd, name=ZENOH_BRIDGE, output="screen"))
    if use_rviz:
        actions.append(Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", arg["rviz_config"]],
            parameters=[{"use_sim_time": use_sim_time}],
            output="log",
        ))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS]
        + [OpaqueFunction(function=fleet_actions)]
    )
