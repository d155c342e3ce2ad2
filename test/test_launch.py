"""Launch files, their pure helpers (strands_mesh_ros.launch_support) and the shipped configs.

Three kinds of test:

* pure ones that run everywhere: robots parsing, params re-rooting, URDFs, config files, and a
  static (``ast``) check of the launch files against CMakeLists.txt and package.xml;
* ``launch`` / ``launch_ros`` ones: each launch file's ``generate_launch_description()`` and its
  OpaqueFunction's actions and refusals; LaunchService runs (``python -m
  strands_mesh_ros.ros_launch``, what ``ros2 launch`` runs) of fleet.launch.py and
  bridge.launch.py checked with real rclpy (``/<id>/joint_states``, the latched
  ``/<id>/robot_description``, ``/mesh/peers``), launches with bad arguments that must start
  nothing, and a check that no process is left behind;
* a ``launch_pytest`` bring-up of robot.launch.py that waits, event-driven, for
  ``/<id>/joint_states`` and for its listener's own exit.

The launch tests need ROS 2 launch, launch_ros and launch_pytest (not on PyPI: scripts/bootstrap.sh
installs them from ../shared/vendor/ros2_launch, see /work/shared/ENVIRONMENT.md) and the package
installed as a ROS prefix (the bootstrap venv is one); otherwise they skip with the reason. Each
launch runs in its own ROS domain with the test's own STRANDS_MESH_PREFIX; robot_state_publisher,
tf2_ros and rviz2 exist only on a ROS install, so bring-ups here use
``use_robot_state_publisher:=false``.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import signal
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from helpers import Proc, wait_for
from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON, RosEnv

from strands_mesh_ros import launch_support as ls
from strands_mesh_ros.drivers.fleet_config import load_fleet
from strands_mesh_ros.ros import topics

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "launch"
CONFIG = REPO / "config"
LAUNCH_FILES = ("fleet.launch.py", "robot.launch.py", "bridge.launch.py")
NO_LAUNCH = ("ROS 2 'launch' is not importable: it is not on PyPI, so it exists only on a ROS install "
             "(source /opt/ros/<distro>/setup.bash)")
NO_LAUNCH_ROS = "ROS 2 'launch_ros' is not importable (not on PyPI; source a ROS install)"
NO_LAUNCH_PYTEST = ("'launch_pytest' is not importable (not on PyPI; on a ROS install: apt install "
                    "ros-<distro>-launch-pytest, then build and source the workspace)")


def _require_launch():
    """ROS 2 launch and launch_ros, or skip. (Without them, ``import launch`` can still succeed:
    it finds this repository's launch/ directory as a namespace package.)"""
    launch = pytest.importorskip("launch", reason=NO_LAUNCH)
    if not hasattr(launch, "LaunchDescription"):
        pytest.skip(NO_LAUNCH)
    return launch, pytest.importorskip("launch_ros", reason=NO_LAUNCH_ROS)


def _load_launch_file(name: str):
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _movable_joints(urdf: str) -> list[str]:
    robot = ET.fromstring(urdf)
    return [j.get("name") for j in robot.findall("joint") if j.get("type") in ("revolute", "continuous", "prismatic")]


# -- robots --------------------------------------------------------------------------------


def test_parse_robots_default_matches_the_default_fleet():
    specs = ls.parse_robots(ls.DEFAULT_ROBOTS)
    assert [(s.id, s.driver, s.model) for s in specs] == [
        ("arm1", "mujoco", "arm6"), ("arm2", "mujoco", "arm6"), ("base1", "mujoco", "diffbot")]
    default = load_fleet(None)
    assert [(s.id, s.model) for s in specs] == [(s.id, s.model) for s in default.robots]


def test_parse_robots_optional_parts_blanks_and_trailing_comma():
    specs = ls.parse_robots(" m1::mock , arm9 , gz:arm6:ros_topics,")
    assert [s.id for s in specs] == ["m1", "arm9", "gz"]
    assert specs[0].driver == "mock" and "model" not in specs[0].model_fields_set
    assert specs[1].model_fields_set == {"id"}  # left to the params file
    assert specs[2].driver == "ros_topics"


@pytest.mark.parametrize("text, message", [
    ("arm-1", r"'arm-1' cannot be a ROS namespace.*ROS names do not"),
    ("arm1,base-1:diffbot", r"entry 2 'base-1:diffbot'.*'base-1' cannot be a ROS namespace"),
    ("1arm", r"'1arm' cannot be a ROS namespace"),
    ("arm1:arm6:gazebo", r"driver 'gazebo' unknown; use one of mock, mujoco, ros_topics"),
    ("arm1:arm6,arm2,arm1:diffbot", r"entry 3: robot id 'arm1' appears twice"),
    ("", r"robots is empty"),
    (" , ", r"entry 1 '': expected id\[:model\[:driver\]\]"),
    ("a:b:mock:x", r"entry 1 'a:b:mock:x': expected id\[:model\[:driver\]\]"),
    (":arm6", r"expected id\[:model\[:driver\]\]"),
])
def test_parse_robots_refuses_bad_input(text, message):
    with pytest.raises(ValueError, match=message):
        ls.parse_robots(text)


def test_fleet_file_wins_over_robots_and_skips_mesh_only(tmp_path):
    f = tmp_path / "fleet.yaml"
    f.write_text(yaml.safe_dump({
        "robots": [{"id": "a1", "driver": "mock"}, {"id": "s1", "model": "diffbot", "ros": False}],
        "mesh": {"prefix": "lab", "connect": ["tcp/10.0.0.2:7447"]},
    }))
    plan = ls.fleet_robots("arm1:arm6", str(f))
    assert [s.id for s in plan.robots] == ["a1"]
    assert plan.mesh_only == ["s1"]
    assert plan.mesh == {"prefix": "lab", "connect": ["tcp/10.0.0.2:7447"]}
    assert [s.id for s in ls.fleet_robots("arm1:arm6", "").robots] == ["arm1"]


def test_fleet_file_with_an_id_ros_cannot_take(tmp_path):
    f = tmp_path / "fleet.yaml"
    f.write_text("robots:\n  - {id: arm-1, driver: mock}\n")  # a valid mesh id, not a ROS name
    with pytest.raises(ValueError, match=r"fleet.yaml: robot_id 'arm-1' cannot be a ROS namespace"):
        ls.fleet_robots("", str(f))
    with pytest.raises(FileNotFoundError):
        ls.fleet_robots("", str(tmp_path / "missing.yaml"))


# -- parameters ----------------------------------------------------------------------------


def test_params_file_is_rerooted_per_robot_and_the_spec_wins(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"robot_id": "arm1", "driver": "mujoco", "model": "arm6", "state_rate": 20,
                                    "resume_key_file": ""}},
        "/arm2/robot_node": {"ros__parameters": {"state_rate": 50, "realtime": False}},
        "/other/robot_node": {"ros__parameters": {"state_rate": 5.0}},
        "/arm2/robot_state_publisher": {"ros__parameters": {"publish_frequency": 1.0}},
    }))
    _, p1 = ls.robot_parameters(ls.parse_robots("arm1")[0], f)
    arm2, p2 = ls.robot_parameters(ls.parse_robots("arm2:diffbot")[0], f)
    assert p1 == {"robot_id": "arm1", "driver": "mujoco", "model": "arm6", "state_rate": 20.0,
                  "realtime": True, "resume_key_file": ""}
    assert isinstance(p1["state_rate"], float)  # the node declares a double: 20 would be refused
    assert p2["robot_id"] == "arm2" and p2["model"] == "diffbot"  # the spec wins over /**
    assert p2["state_rate"] == 50.0 and p2["realtime"] is False  # /arm2/robot_node wins over /**
    assert "publish_frequency" not in p2
    assert (arm2.model, arm2.state_rate, arm2.realtime) == ("diffbot", 50.0, False)


def test_params_file_values_the_node_would_refuse(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("/**:\n  ros__parameters:\n    driver: gazebo\n")
    with pytest.raises(ValueError, match=r"driver 'gazebo' unknown"):
        ls.robot_parameters(ls.parse_robots("arm1")[0], f)
    f.write_text("/**:\n  ros__parameters:\n    state_rate: 900.0\n")
    with pytest.raises(ValueError, match=r"state_rate 900.0 Hz out of range"):
        ls.robot_parameters(ls.parse_robots("arm1")[0], f)
    f.write_text("/**:\n  state_rate: 20.0\n")
    with pytest.raises(ValueError, match=r"section '/\*\*' has no ros__parameters"):
        ls.params_sections(f, "arm1")
    with pytest.raises(FileNotFoundError):
        ls.params_sections(tmp_path / "nope.yaml", "arm1")


def test_shipped_robot_yaml_applies_to_any_robot():
    _, params = ls.robot_parameters(ls.parse_robots("base7:diffbot")[0], CONFIG / "robot.yaml")
    assert params["robot_id"] == "base7"  # robot.yaml says arm1; the robot's own id wins
    assert params["model"] == "diffbot" and params["driver"] == "mujoco"


def test_robot_launch_arguments(tmp_path):
    spec = ls.parse_robots("arm2:arm6")[0]
    assert ls.robot_launch_arguments(spec, 2, spacing=1.0) == {
        "robot_id": "arm2", "model": "arm6", "world_frame": "world", "x": "0.0", "y": "2.0"}
    fleet = load_fleet({"robots": [{"id": "sim1", "model": "arm6", "options": {"timestep": 0.001}}]})
    with pytest.raises(ValueError, match=r"robot 'sim1': options \['timestep'\].*fleet_host"):
        ls.robot_launch_arguments(fleet.robots[0], 0, config_dir=tmp_path)


def test_ros_topics_options_become_a_driver_config_file(tmp_path, monkeypatch):
    from strands_mesh_ros.drivers.ros_topics_config import load_ros_topics_config

    monkeypatch.chdir(REPO)
    fleet = load_fleet({"robots": [
        {"id": "gz_arm", "driver": "ros_topics", "options": {"config_file": "config/ros_topics_example.yaml"}},
        {"id": "base2", "driver": "ros_topics", "realtime": False,
         "options": {"command_interface": "twist", "joints": ["wl", "wr"]}},
    ]})
    args = ls.robot_launch_arguments(fleet.robots[0], 0, config_dir=tmp_path)
    written = load_ros_topics_config(args["driver_config"], "gz_arm")
    expected = load_ros_topics_config("config/ros_topics_example.yaml", "gz_arm")
    assert written == expected
    args = ls.robot_launch_arguments(fleet.robots[1], 1, config_dir=tmp_path)
    assert args["realtime"] == "false" and args["y"] == repr(ls.DEFAULT_SPACING)
    assert load_ros_topics_config(args["driver_config"], "base2").command_interface == "twist"


def test_bridge_parameters_launch_arguments_win_over_the_fleet_file():
    mesh = {"prefix": "lab", "connect": ["tcp/10.0.0.2:7447"], "namespace": "strands"}
    assert ls.bridge_parameters(mesh) == {"prefix": "lab", "namespace": "strands", "connect": ["tcp/10.0.0.2:7447"]}
    assert ls.bridge_parameters(mesh, prefix="p2", connect="tcp/a:1, tcp/b:2") == {
        "prefix": "p2", "namespace": "strands", "connect": ["tcp/a:1", "tcp/b:2"]}
    assert ls.bridge_parameters(None) == {}  # all left to the node's defaults and the environment
    assert ls.bridge_parameters(None, zenoh_config=str(CONFIG / "zenoh.json5"))["zenoh_config"].endswith("zenoh.json5")
    with pytest.raises(ValueError, match="does not exist"):
        ls.bridge_parameters({"config_file": "/nonexistent/zenoh.json5"})


# -- URDF ----------------------------------------------------------------------------------


@pytest.mark.parametrize("driver, model", [("mujoco", "arm6"), ("mujoco", "diffbot"), ("mock", "")])
def test_robot_urdf_joints_are_the_drivers_joints(driver, model):
    from strands_mesh_ros.drivers.fleet_config import RobotSpec, make_driver

    urdf = ls.robot_urdf("r1", driver, model or "arm6")
    robot = ET.fromstring(urdf)  # parseable URDF
    assert robot.tag == "robot"
    built = make_driver(RobotSpec(id="r1", driver=driver, model=model or "arm6", realtime=False))
    try:
        assert _movable_joints(urdf) == [j.name for j in built.joints()]
        assert urdf == built.robot_description()  # exactly what the robot node latches
    finally:
        built.close()


def test_root_links_and_frames():
    plans = {s.id: ls.plan_robot(s) for s in ls.parse_robots("arm1:arm6,base1:diffbot,m1::mock")}
    assert plans["arm1"].root_frame == "arm1/world"  # MuJoCo models are rooted at the world body
    assert plans["base1"].root_frame == "base1/world"
    assert plans["m1"].root_frame == "m1/base_link"
    assert plans["arm1"].frame_prefix == "arm1/"
    with pytest.raises(ValueError, match="2 root links"):
        ls.root_link('<robot name="x"><link name="a"/><link name="b"/></robot>')
    with pytest.raises(ValueError, match="not a URDF"):
        ls.root_link("<sdf/>")


def test_ros_topics_robot_urdf_and_state_publisher(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    example = "config/ros_topics_example.yaml"
    spec = ls.make_spec("gz_arm", driver="ros_topics")
    plan = ls.plan_robot(spec, driver_config=example)
    assert _movable_joints(plan.urdf) == [f"joint{i}" for i in range(1, 7)]
    assert plan.parameters["driver_config"] == str(REPO / example)
    assert plan.root_frame == "gz_arm/base_link"
    # a robot that latches its own description (and so runs its own robot_state_publisher)
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"command_interface": "twist", "provides_robot_description": True}))
    plan = ls.plan_robot(ls.make_spec("ur1", driver="ros_topics"), driver_config=own)
    assert plan.urdf is None and plan.root_frame is None
    with pytest.raises(ValueError, match=r"'ur2': driver ros_topics needs a config"):
        ls.plan_robot(ls.make_spec("ur2", driver="ros_topics"))


# -- configs -------------------------------------------------------------------------------


def test_fleet_yaml_loads_and_launches():
    fleet = load_fleet(CONFIG / "fleet.yaml")
    assert [(r.id, r.driver, r.model) for r in fleet.robots] == [
        ("arm1", "mujoco", "arm6"), ("arm2", "mujoco", "arm6"), ("base1", "mujoco", "diffbot")]
    assert fleet.mesh.get("prefix") == "strands"
    plan = ls.fleet_robots("", CONFIG / "fleet.yaml")
    for i, spec in enumerate(plan.robots):
        assert ls.robot_launch_arguments(spec, i)["robot_id"] == spec.id


def test_fleet_yaml_commented_ros_topics_robot_is_valid(monkeypatch):
    """The commented example robot must work once uncommented."""
    monkeypatch.chdir(REPO)
    text = (CONFIG / "fleet.yaml").read_text()
    block = re.search(r"^  # - id: gz_arm\n(?:^  #  .*\n)+", text, re.MULTILINE)
    assert block, "config/fleet.yaml lost its commented ros_topics robot"
    uncommented = re.sub(r"^  # ?", "  ", block.group(0), flags=re.MULTILINE)
    fleet = load_fleet(yaml.safe_load(text.replace(block.group(0), uncommented)))
    gz = fleet.robot("gz_arm")
    assert gz.driver == "ros_topics"
    assert ls.ros_topics_config(gz).command_interface == "joint_trajectory"


def test_zenoh_json5_loads_in_zenoh():
    zenoh = pytest.importorskip("zenoh")
    conf = zenoh.Config.from_file(str(CONFIG / "zenoh.json5"))  # refuses unknown keys
    assert conf.get_json("mode") == '"peer"'
    assert conf.get_json("scouting/multicast/enabled") == "true"
    assert conf.get_json("transport/link/tx/lease") == "3000"
    from strands_mesh_ros.mesh.config import MeshConfig

    MeshConfig(config_file=str(CONFIG / "zenoh.json5")).zenoh_config()  # what the mesh does with it


def _ros2dds_config():
    json5 = pytest.importorskip("json5", reason="pip install json5 (test dependency) to parse json5 configs")
    return json5.loads((CONFIG / "zenoh-bridge-ros2dds.json5").read_text())["plugins"]["ros2dds"]


def test_zenoh_bridge_ros2dds_allow_list_covers_the_ros_side():
    cfg = _ros2dds_config()
    allow = cfg["allow"]
    assert "deny" not in cfg  # the bridge refuses allow and deny together
    rid = "arm1"
    wanted = [topics.robot_topic(rid, n) for n in (topics.JOINT_STATES, topics.ROBOT_DESCRIPTION,
                                                   topics.MESH_COMMAND, topics.MESH_RESPONSE)]
    wanted += [topics.PRESENCE, topics.ESTOP, topics.ESTOP_ACK, topics.RESUME, topics.RESUME_ACK,
               "/mesh/peers", "/tf", "/tf_static"]
    for kind in ("publishers", "subscribers"):
        regexes = [re.compile(r) for r in allow[kind]]
        for topic in wanted:
            assert any(r.fullmatch(topic) for r in regexes), f"{kind}: {topic} is not routed"
        for local in ("/rosout", "/parameter_events", f"/{rid}/robot_node/describe_parameters",
                      f"/{rid}/cmd_vel", "/a/b/joint_states"):
            assert not any(r.fullmatch(local) for r in regexes), f"{kind}: {local} should stay local"
    for kind in ("service_servers", "service_clients", "action_servers", "action_clients"):
        assert allow[kind] == []
    limits = dict(entry.rsplit("=", 1) for entry in cfg["pub_max_frequencies"])
    hits = [float(hz) for rx, hz in limits.items() if re.fullmatch(rx, topics.robot_topic(rid, topics.JOINT_STATES))]
    assert hits == [20.0]
    assert not any(re.fullmatch(rx, "/tf") for rx in limits)  # one topic for the whole fleet


def test_ros2dds_keys_are_not_contract_keys():
    zenoh = pytest.importorskip("zenoh")
    from strands_mesh_ros.contract.keys import DEFAULT_PREFIX

    assert ls.ros2dds_key("/arm1/joint_states") == "arm1/joint_states"
    assert ls.ros2dds_key("/tf", "/site_a") == "site_a/tf"
    assert ls.ros2dds_key("/mesh/estop") == "mesh/estop"
    contract = zenoh.KeyExpr(f"{DEFAULT_PREFIX}/**")
    for name in (topics.JOINT_STATES, topics.ROBOT_DESCRIPTION, topics.MESH_COMMAND, topics.MESH_RESPONSE):
        key = zenoh.KeyExpr(ls.ros2dds_key(topics.robot_topic("arm1", name)))
        assert not contract.intersects(key), key
    for topic in (topics.PRESENCE, topics.ESTOP, "/tf"):
        assert not contract.intersects(zenoh.KeyExpr(ls.ros2dds_key(topic)))
    with pytest.raises(ValueError, match="absolute"):
        ls.ros2dds_key("arm1/joint_states")


def test_fleet_rviz_shows_the_default_fleet():
    rviz = yaml.safe_load((CONFIG / "fleet.rviz").read_text())
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == ls.WORLD_FRAME
    displays = manager["Displays"]
    classes = [d["Class"] for d in displays]
    assert "rviz_default_plugins/Grid" in classes and "rviz_default_plugins/TF" in classes
    models = {d["TF Prefix"]: d for d in displays if d["Class"] == "rviz_default_plugins/RobotModel"}
    assert sorted(models) == ["arm1", "arm2", "base1"]
    for rid, d in models.items():
        topic = d["Description Topic"]
        assert d["Description Source"] == "Topic"
        assert topic["Value"] == topics.robot_topic(rid, topics.ROBOT_DESCRIPTION)
        assert topic["Durability Policy"] == "Transient Local"  # the description is latched once
        assert topic["Reliability Policy"] == "Reliable"


# -- what robot.launch.py starts, started by hand ------------------------------------------


@pytest.mark.parametrize("robot_id, driver, model", [("lt2", "mock", ""), ("lt3", "mujoco", "arm6")])
def test_planned_parameters_start_the_real_robot_node(robot_id, driver, model, tmp_path, ros_domain):
    """robot.launch.py's robot node, started as launch_ros starts it (the parameters in a
    ``/**`` file, ``-r __node:= -r __ns:=``), accepts the planned parameters, latches exactly
    the URDF handed to robot_state_publisher, publishes joint_states for all of its movable
    joints, and exits 0 on SIGINT (how launch stops it)."""
    if not HAVE_RCLPY:
        pytest.skip(NO_ROS_REASON)
    if not HAVE_MSGS:
        pytest.skip(NO_MSGS_REASON)
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from strands_mesh_ros.ros import qos

    plan = ls.plan_robot(ls.make_spec(robot_id, driver=driver, model=model, state_rate="50.0"), CONFIG / "robot.yaml")
    assert plan.parameters["robot_id"] == robot_id and plan.parameters["state_rate"] == 50.0
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": plan.parameters}}))
    domain = ros_domain
    env = RosEnv(domain)
    proc = None
    try:
        states = env.sub(JointState, topics.robot_topic(robot_id, topics.JOINT_STATES), qos.JOINT_STATES)
        descriptions = env.sub(String, topics.robot_topic(robot_id, topics.ROBOT_DESCRIPTION), qos.ROBOT_DESCRIPTION)
        proc = Proc([sys.executable, str(REPO / "scripts" / "ros" / "robot_node"), "--ros-args",
                     "-r", f"__node:={ls.NODE_NAME}", "-r", f"__ns:=/{robot_id}", "--params-file", str(params)],
                    env={"ROS_DOMAIN_ID": str(domain), "STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")})
        state = states.wait(timeout=30.0, what=f"{robot_id}'s joint_states")
        assert sorted(state.name) == sorted(_movable_joints(plan.urdf))
        assert descriptions.wait(timeout=10.0, what="robot_description").data == plan.urdf
        proc.signal(signal.SIGINT)
        wait_for(lambda: proc.p.poll() is not None, 15.0, what="robot_node to exit on SIGINT")
        assert proc.p.returncode == 0, "\n".join(proc.lines[-20:])
    finally:
        if proc is not None:
            proc.close()
        env.close()


# -- launch files, statically --------------------------------------------------------------


def _installed_executables() -> set[str]:
    cmake = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"install\(\s*PROGRAMS(.*?)DESTINATION", cmake, re.DOTALL)
    assert block, "CMakeLists.txt installs no PROGRAMS"
    return {Path(p).name for p in block.group(1).split()}


def _launched(tree: ast.Module) -> set[tuple[str, str]]:
    """(package, executable) of every Node(...) call; Name arguments resolved to module constants."""
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              for t in n.targets if isinstance(t, ast.Name)}

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return consts.get(node.id)
        return None

    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
            kw = {k.arg: value(k.value) for k in node.keywords}
            out.add((kw.get("package"), kw.get("executable")))
    return out


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_is_valid_python_and_runs_installed_executables(name):
    tree = ast.parse((LAUNCH / name).read_text(), filename=name)
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    assert ast.get_docstring(tree), f"{name} has no module docstring"
    installed = _installed_executables()
    assert {"robot_node", "bridge_node", "fleet_host"} <= installed
    launched = _launched(tree)
    ours = {exe for pkg, exe in launched if pkg == "strands_mesh_ros"}
    assert ours <= installed, f"{name} runs {ours - installed}, which CMakeLists.txt does not install"
    assert all(pkg and exe for pkg, exe in launched), f"{name}: a Node without a literal package/executable"
    deps = {e.text for e in ET.parse(REPO / "package.xml").getroot() if e.tag in ("exec_depend", "depend")}
    others = {pkg for pkg, _ in launched} - {"strands_mesh_ros"}
    assert others <= deps, f"{name} launches packages package.xml does not exec_depend on: {others - deps}"


def test_launch_files_wire_up_as_documented():
    trees = {name: ast.parse((LAUNCH / name).read_text()) for name in LAUNCH_FILES}
    assert ("strands_mesh_ros", "robot_node") in _launched(trees["robot.launch.py"])
    assert ("robot_state_publisher", "robot_state_publisher") in _launched(trees["robot.launch.py"])
    assert ("strands_mesh_ros", "bridge_node") in _launched(trees["bridge.launch.py"])
    assert ("rviz2", "rviz2") in _launched(trees["fleet.launch.py"])
    fleet_src = (LAUNCH / "fleet.launch.py").read_text()
    for included in ("robot.launch.py", "bridge.launch.py"):  # fleet = robot.launch per robot + the bridge
        assert f'"{included}"' in fleet_src and (LAUNCH / included).is_file()
    for arg in ("robots", "fleet_file", "use_rviz", "use_zenoh_bridge", "mesh_prefix", "zenoh_connect",
                "params_file"):
        assert f'("{arg}"' in fleet_src, f"fleet.launch.py does not declare {arg}"
    robot_src = (LAUNCH / "robot.launch.py").read_text()
    for arg in ("robot_id", "model", "driver", "params_file", "state_rate"):
        assert f'("{arg}"' in robot_src, f"robot.launch.py does not declare {arg}"
    bridge_src = (LAUNCH / "bridge.launch.py").read_text()
    for arg in ("prefix", "namespace", "connect", "zenoh_config"):
        assert f'("{arg}"' in bridge_src, f"bridge.launch.py does not declare {arg}"


# -- launch files, with ROS 2 launch -------------------------------------------------------
#
# ROS 2 launch is not on PyPI: scripts/bootstrap.sh installs it into the venv from
# ../shared/vendor/ros2_launch and makes the venv a ROS prefix (lib/ and share/strands_mesh_ros);
# without those these tests skip with the reason (STRANDS_LAUNCH_SKIP, set by bootstrap, says why).
# robot_state_publisher, tf2_ros and rviz2 are C++ packages that only a ROS install has: the
# bring-ups here run with use_robot_state_publisher:=false, and their absence is a test case.

LAUNCH_SKIP = os.environ.get("STRANDS_LAUNCH_SKIP", "")


def _require_launch():
    """ROS 2 launch and launch_ros, or skip. (Without them, ``import launch`` can still succeed:
    it finds this repository's launch/ directory as a namespace package.)"""
    reason = LAUNCH_SKIP or NO_LAUNCH
    launch = pytest.importorskip("launch", reason=reason)
    if not hasattr(launch, "LaunchDescription"):
        pytest.skip(reason)
    return launch, pytest.importorskip("launch_ros", reason=LAUNCH_SKIP or NO_LAUNCH_ROS)


def _require_prefix():
    """The venv (or a sourced ROS workspace) as a prefix holding strands_mesh_ros's executables,
    on AMENT_PREFIX_PATH; else skip."""
    from strands_mesh_ros.launch_support import find_ros_executable

    try:
        find_ros_executable("strands_mesh_ros", "robot_node")
    except LookupError as exc:
        pytest.skip(f"strands_mesh_ros is not installed as a ROS prefix ({exc}): run bash scripts/bootstrap.sh "
                    "setup (it makes the venv one and exports AMENT_PREFIX_PATH=$VIRTUAL_ENV), or source a colcon "
                    "install")


def _has(package: str, executable: str) -> bool:
    try:
        ls.find_ros_executable(package, executable)
    except LookupError:
        return False
    return True


@pytest.fixture
def fake_ros_prefix(tmp_path, monkeypatch):
    """A prefix with stand-ins for robot_state_publisher and tf2_ros's static_transform_publisher
    (never started: for what the launch files plan), prepended to AMENT_PREFIX_PATH."""
    prefix = tmp_path / "fake_ros"
    for package, executable in (("robot_state_publisher", "robot_state_publisher"),
                                ("tf2_ros", "static_transform_publisher")):
        (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True, exist_ok=True)
        (prefix / "share" / "ament_index" / "resource_index" / "packages" / package).write_text("")
        exe = prefix / "lib" / package / executable
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join(filter(None, [str(prefix),
                                                                          os.environ.get("AMENT_PREFIX_PATH")])))
    return prefix


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_generate_launch_description(name):
    launch, _ = _require_launch()
    ld = _load_launch_file(name).generate_launch_description()
    assert isinstance(ld, launch.LaunchDescription)
    declared = {a.name for a in ld.get_launch_arguments()}
    expected = {"prefix", "connect"} if name == "bridge.launch.py" else {"params_file", "use_robot_state_publisher"}
    assert expected <= declared


def _context(launch, module, **arguments):
    """A LaunchContext holding the module's launch-argument defaults, then ``arguments``."""
    context = launch.LaunchContext()
    context.launch_configurations.update({name: default for name, default, _ in module.ARGUMENTS})
    context.launch_configurations.update(arguments)
    return context


def _robot_args(group, launch) -> dict[str, str]:
    """The launch arguments a fleet GroupAction hands to its robot.launch.py."""
    (include,) = [a for a in group.get_sub_entities() if isinstance(a, launch.actions.IncludeLaunchDescription)]
    context = launch.LaunchContext()
    u = launch.utilities

    def text(value):
        return u.perform_substitutions(context, u.normalize_to_list_of_substitutions(value))

    return {text(k): text(v) for k, v in include.launch_arguments}


def test_fleet_opaque_function_builds_one_group_per_robot():
    launch, _ = _require_launch()
    _require_prefix()
    module = _load_launch_file("fleet.launch.py")
    context = _context(launch, module, robots="arm1:arm6,m1::mock", use_robot_state_publisher="false")
    actions = module.fleet_actions(context)
    groups = [a for a in actions if isinstance(a, launch.actions.GroupAction)]
    assert len(groups) == 3  # two robots and the bridge
    robot_args = [_robot_args(g, launch) for g in groups[:2]]
    assert [a["robot_id"] for a in robot_args] == ["arm1", "m1"]
    assert all(a["use_robot_state_publisher"] == "false" and a["world_frame"] == "world" for a in robot_args)
    assert all(a["use_sim_time"] == "false" and a["publish_clock"] == "false" for a in robot_args)
    context.launch_configurations["robots"] = "arm-1"
    with pytest.raises(ValueError, match="cannot be a ROS namespace"):
        module.fleet_actions(context)


def test_fleet_sim_time_reaches_every_robot_and_one_publishes_clock():
    launch, _ = _require_launch()
    _require_prefix()
    module = _load_launch_file("fleet.launch.py")
    context = _context(launch, module, robots="m1::mock,arm1:arm6,arm2:arm6", use_robot_state_publisher="false",
                       use_sim_time="true", publish_clock="true")
    robot_args = [_robot_args(g, launch) for g in module.fleet_actions(context)
                  if isinstance(g, launch.actions.GroupAction)][:3]
    # one /clock per ROS graph: the first simulated robot's, not the mock's
    assert [(a["robot_id"], a["use_sim_time"], a["publish_clock"]) for a in robot_args] == [
        ("m1", "true", "false"), ("arm1", "true", "true"), ("arm2", "true", "false")]
    plans = [ls.plan_robot_launch(a) for a in robot_args]
    assert [(p.parameters["use_sim_time"], p.parameters["publish_clock"]) for p in plans] == [
        (True, False), (True, True), (True, False)]
    context.launch_configurations["robots"] = "m1::mock"
    with pytest.raises(ValueError, match=r"publish_clock:=true needs a simulated robot .* m1 \(mock\)"):
        module.fleet_actions(context)
    with pytest.raises(ValueError, match="robot 'm2': publish_clock:=true needs a simulated robot"):
        ls.plan_robot_launch({"robot_id": "m2", "driver": "mock", "publish_clock": "true",
                              "use_robot_state_publisher": "false"})
    with pytest.raises(ValueError, match="use_sim_time"):
        ls.plan_robot_launch({"robot_id": "m2", "driver": "mock", "use_sim_time": "sometimes",
                              "use_robot_state_publisher": "false"})


def test_fleet_passes_the_state_publisher_and_world_placement_to_every_robot(fake_ros_prefix):
    launch, _ = _require_launch()
    _require_prefix()
    module = _load_launch_file("fleet.launch.py")
    actions = module.fleet_actions(_context(launch, module, robots="a1:arm6,b1::mock", use_bridge="false"))
    robot_args = [_robot_args(g, launch) for g in actions if isinstance(g, launch.actions.GroupAction)]
    assert [(a["robot_id"], a["use_robot_state_publisher"], a["world_frame"], a["y"]) for a in robot_args] == [
        ("a1", "true", "world", "0.0"), ("b1", "true", "world", repr(ls.DEFAULT_SPACING))]


@pytest.mark.parametrize("arguments, message", [
    # a bad model on the second robot: refused, naming it, before the first robot starts
    ({"robots": "a1:arm6,x2:nosuchmodel"}, r"robot 'x2' \(mujoco, model 'nosuchmodel'\): unknown model"),
    ({"robots": "a1:arm6,b1::gazebo"}, r"robots entry 2.*driver 'gazebo' unknown"),
    ({"robots": "a1:arm6", "use_rviz": "true"}, r"cannot start rviz2/rviz2, needed by use_rviz:=true"),
    ({"robots": "a1:arm6", "use_zenoh_bridge": "true"}, r"zenoh-bridge-ros2dds is not on PATH"),
    ({"robots": "a1:arm6", "robot_spacing": "wide"}, r"robot_spacing 'wide' is not a number"),
    ({"robots": "a1:arm6", "use_bridge": "maybe"}, r"use_bridge: 'maybe' is not true or false"),
])
def test_fleet_refuses_bad_arguments_before_building_any_action(arguments, message):
    launch, _ = _require_launch()
    _require_prefix()
    if "use_rviz" in arguments and _has("rviz2", "rviz2"):
        pytest.skip("rviz2 is installed here")
    if "use_zenoh_bridge" in arguments and shutil.which("zenoh-bridge-ros2dds"):
        pytest.skip("zenoh-bridge-ros2dds is installed here")
    module = _load_launch_file("fleet.launch.py")
    with pytest.raises((ValueError, LookupError), match=message):
        module.fleet_actions(_context(launch, module, use_robot_state_publisher="false", **arguments))


def test_fleet_without_robot_state_publisher_names_the_robots():
    launch, _ = _require_launch()
    _require_prefix()
    if _has("robot_state_publisher", "robot_state_publisher"):
        pytest.skip("robot_state_publisher is installed here")
    module = _load_launch_file("fleet.launch.py")
    with pytest.raises(LookupError, match=r"cannot start robot_state_publisher/robot_state_publisher, needed by "
                                          r"robot 'a1' .*robot 'b1' .*use_robot_state_publisher:=false"):
        module.fleet_actions(_context(launch, module, robots="a1:arm6,b1::mock"))


def test_robot_opaque_function_builds_the_namespaced_group(fake_ros_prefix, monkeypatch):
    launch, launch_ros = _require_launch()
    _require_prefix()
    module = _load_launch_file("robot.launch.py")

    def executables(**arguments):
        arguments = {"robot_id": "m7", "driver": "mock", "world_frame": "world", **arguments}
        (group,) = module.robot_group(_context(launch, module, **arguments))
        return [n.node_executable for n in group.get_sub_entities() if isinstance(n, launch_ros.actions.Node)]

    assert executables() == ["robot_node", "robot_state_publisher", "static_transform_publisher"]
    assert executables(use_robot_state_publisher="false") == ["robot_node"]
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.environ["AMENT_PREFIX_PATH"].split(os.pathsep, 1)[1])
    if not _has("robot_state_publisher", "robot_state_publisher"):
        with pytest.raises(LookupError, match=r"robot_state_publisher, needed by robot 'm7'"):
            executables()
    with pytest.raises(ValueError, match=r"robot 'm7' \(mujoco, model 'nosuchmodel'\)"):
        executables(driver="mujoco", model="nosuchmodel", use_robot_state_publisher="false")


# -- LaunchService runs, as `ros2 launch` (python -m strands_mesh_ros.ros_launch) ------------

REPORT = "LAUNCH_PROCESS"


class LaunchRun:
    """``python -m strands_mesh_ros.ros_launch -n --report-processes PACKAGE FILE args`` in its
    own ROS domain and mesh prefix, with its processes' starts and exits collected."""

    def __init__(self, launch_file: str, arguments: dict[str, str], *, domain: int, prefix: str, tmp: Path):
        self.domain, self.prefix = domain, prefix
        words = [f"{k}:={v}" for k, v in arguments.items()]
        self.proc = Proc(
            [sys.executable, "-m", "strands_mesh_ros.ros_launch", "-n", "--report-processes", "strands_mesh_ros",
             launch_file, *words],
            env={"ROS_DOMAIN_ID": str(domain), "STRANDS_MESH_PREFIX": prefix,
                 "STRANDS_MESH_AUDIT_DIR": str(tmp / "audit"), "ROS_LOG_DIR": str(tmp / "ros_log"),
                 "TMPDIR": str(tmp)},  # launch_ros's launch_params_* files
            cwd=str(tmp))  # not the repository root: there `import launch` would find launch/

    def reports(self, kind: str) -> list[list[str]]:
        return [line.split()[2:] for line in list(self.proc.lines) if line.startswith(f"{REPORT} {kind} ")]

    def output(self) -> str:
        return "\n".join(self.proc.lines[-60:])

    def wait_exit(self, timeout: float) -> int:
        wait_for(lambda: self.proc.p.poll() is not None, timeout, what=f"the launch to end; output:\n{self.output()}")
        self.proc._reader.join(5)
        return self.proc.p.returncode

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT to launch alone (it forwards one SIGINT to each process, -n), then its exit status."""
        os.kill(self.proc.p.pid, signal.SIGINT)
        return self.wait_exit(timeout)


def _leftovers(prefix: str) -> list[str]:
    """Processes other than this one whose environment has STRANDS_MESH_PREFIX=prefix."""
    needle = f"STRANDS_MESH_PREFIX={prefix}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {cmdline[:200]}")
        except OSError:
            continue
    return found


@pytest.fixture
def launch_run(tmp_path, key_prefix):
    """Start LaunchRuns; at the end each is stopped (group-killed if need be) and no process of
    the test's mesh prefix may be left."""
    _require_launch()
    _require_prefix()
    runs: list[LaunchRun] = []

    def start(launch_file: str, arguments: dict[str, str], domain: int) -> LaunchRun:
        run = LaunchRun(launch_file, arguments, domain=domain, prefix=key_prefix, tmp=tmp_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.proc.close()
    leftovers = _leftovers(key_prefix)
    assert not leftovers, f"processes left behind: {leftovers}"


def _assert_clean_exits(run: LaunchRun, expected: set[str]) -> None:
    started = {name: pid for name, pid in run.reports("started")}
    exits = {name: int(code) for name, _pid, code in run.reports("exited")}
    assert {n.rsplit("-", 1)[0] for n in started} == expected, run.output()
    assert set(exits) == set(started), f"started {sorted(started)}, exited {sorted(exits)}:\n{run.output()}"
    assert all(code == 0 for code in exits.values()), f"exit codes {exits}:\n{run.output()}"


@pytest.mark.skipif(not (HAVE_RCLPY and HAVE_MSGS), reason=NO_ROS_REASON if not HAVE_RCLPY else NO_MSGS_REASON)
def test_fleet_launch_brings_up_robots_and_bridge(launch_run, ros_domain):
    """fleet.launch.py as ros2 launch runs it: every robot's joint_states and latched
    robot_description, /mesh/peers listing them, and one SIGINT ends every process with 0."""
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from strands_mesh_ros import msg as msgs
    from strands_mesh_ros.ros import qos

    suffix = uuid.uuid4().hex[:6]
    ids = [f"la{suffix}", f"lm{suffix}"]
    domain = ros_domain
    env = RosEnv(domain)
    try:
        states = {rid: env.sub(JointState, topics.robot_topic(rid, topics.JOINT_STATES), qos.JOINT_STATES)
                  for rid in ids}
        peers = env.sub(msgs.PeerArray, "/mesh/peers", qos.PRESENCE)
        clock = env.sub(Clock, "/clock", 1)
        run = launch_run("fleet.launch.py", {"robots": f"{ids[0]}:arm6,{ids[1]}::mock",
                                             "use_robot_state_publisher": "false", "robot_spacing": "2.0",
                                             "use_sim_time": "true", "publish_clock": "true"}, domain)
        for rid in ids:
            state = states[rid].wait(timeout=60.0, what=f"{rid}'s joint_states")
            assert state.name, state
        # /clock from the simulated arm's physics (which started at 0 s), and joint_states stamped
        # with the node clock that follows it (wall-clock stamps would be ~1.8e9 s)
        clock.wait(lambda m: m.clock.sec + m.clock.nanosec > 0, timeout=30.0, what="/clock")
        stamped = states[ids[0]].wait(lambda m: 0 < m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 < 1e6,
                                      timeout=30.0, what=f"{ids[0]}'s joint_states on simulated time")
        assert stamped.header.stamp.sec < 1e6
        # latched: a subscription made now, after the publication, still gets the description
        for rid, model, driver in ((ids[0], "arm6", "mujoco"), (ids[1], "arm6", "mock")):
            description = env.sub(String, topics.robot_topic(rid, topics.ROBOT_DESCRIPTION), qos.ROBOT_DESCRIPTION)
            assert description.wait(timeout=15.0, what=f"{rid}'s latched robot_description").data == \
                ls.robot_urdf(rid, driver, model)
        peers.wait(lambda m: set(ids) <= {p.peer_id for p in m.peers}, timeout=30.0, what="/mesh/peers listing both")
        assert run.proc.p.poll() is None
    finally:
        env.close()
    assert run.stop() == 0, run.output()
    _assert_clean_exits(run, {"robot_node", "bridge_node"})


@pytest.mark.skipif(not (HAVE_RCLPY and HAVE_MSGS), reason=NO_ROS_REASON if not HAVE_RCLPY else NO_MSGS_REASON)
def test_bridge_launch_publishes_mesh_peers(launch_run, key_prefix, ros_domain):
    from strands_mesh_ros import msg as msgs
    from strands_mesh_ros.ros import qos

    domain = ros_domain
    env = RosEnv(domain)
    try:
        peers = env.sub(msgs.PeerArray, "/mesh/peers", qos.PRESENCE)
        run = launch_run("bridge.launch.py", {"prefix": key_prefix}, domain)
        peers.wait(timeout=30.0, what="the bridge's /mesh/peers")
    finally:
        env.close()
    assert run.stop() == 0, run.output()
    _assert_clean_exits(run, {"bridge_node"})


@pytest.mark.parametrize("launch_file, arguments, message", [
    ("fleet.launch.py", {"robots": "a1:arm6,x2:nosuchmodel", "use_robot_state_publisher": "false"},
     "robot 'x2' (mujoco, model 'nosuchmodel'): unknown model"),
    ("fleet.launch.py", {"robots": "a1:arm6", "use_robot_state_publisher": "false", "use_rviz": "true"},
     "cannot start rviz2/rviz2"),
    ("fleet.launch.py", {"robots": "a1:arm6,b1::mock"}, "cannot start robot_state_publisher/robot_state_publisher"),
    ("robot.launch.py", {"robot_id": "r1", "model": "nosuchmodel", "use_robot_state_publisher": "false"},
     "robot 'r1' (mujoco, model 'nosuchmodel')"),
], ids=["bad-model-on-2nd-robot", "rviz-missing", "robot_state_publisher-missing", "robot-bad-model"])
def test_launch_with_bad_arguments_fails_before_starting_anything(launch_run, launch_file, arguments, message,
                                                                  ros_domain):
    if "use_rviz" in arguments and _has("rviz2", "rviz2"):
        pytest.skip("rviz2 is installed here")
    if "use_robot_state_publisher" not in arguments and _has("robot_state_publisher", "robot_state_publisher"):
        pytest.skip("robot_state_publisher is installed here")
    run = launch_run(launch_file, arguments, ros_domain)
    assert run.wait_exit(60.0) == 1, run.output()
    assert message in run.output()
    assert run.reports("started") == [], f"processes were started:\n{run.output()}"


# -- bring-up with launch_pytest -----------------------------------------------------------

try:
    import launch_pytest
except ImportError:  # not on PyPI: only on a ROS install, or installed by scripts/bootstrap.sh
    launch_pytest = None

if launch_pytest is not None:
    import launch
    import launch_ros  # noqa: F401  (robot.launch.py needs it)
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler, SetEnvironmentVariable
    from launch.event_handlers import OnProcessExit
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_pytest.tools import process as process_tools

    BRINGUP_ID = "lt1"

    class Exits:
        """Exit codes of the launch's processes, and an event per process name (set on exit)."""

        def __init__(self) -> None:
            self.codes: dict[str, int] = {}
            self._events: dict[str, threading.Event] = {}
            self._lock = threading.Lock()

        def event(self, name: str) -> threading.Event:
            with self._lock:
                return self._events.setdefault(name, threading.Event())

        def __call__(self, event, _context) -> None:
            name = event.action.name.rsplit("-", 1)[0]  # launch numbers them: ros_listener-2
            with self._lock:
                self.codes[name] = event.returncode
            self.event(name).set()

    @pytest.fixture
    def exits():
        return Exits()

    @pytest.fixture
    def listener():
        """A plain rclpy process that prints ``SEEN <topic>`` for the first JointState, then exits 0."""
        return launch.actions.ExecuteProcess(
            cmd=[sys.executable, str(Path(__file__).with_name("ros_listener.py")),
                 topics.robot_topic(BRINGUP_ID, topics.JOINT_STATES)],
            name="ros_listener", cached_output=True, output="screen",
            additional_env={"PYTHONUNBUFFERED": "1"})

    @launch_pytest.fixture
    def robot_bringup(listener, exits, tmp_path, key_prefix, ros_domain):
        _require_prefix()
        return launch.LaunchDescription([
            # this launch's own ROS domain and mesh fleet, for every process it starts
            SetEnvironmentVariable("ROS_DOMAIN_ID", str(ros_domain)),
            SetEnvironmentVariable("STRANDS_MESH_PREFIX", key_prefix),
            SetEnvironmentVariable("STRANDS_MESH_AUDIT_DIR", str(tmp_path / "audit")),
            SetEnvironmentVariable("ROS_LOG_DIR", str(tmp_path / "ros_log")),
            RegisterEventHandler(OnProcessExit(on_exit=exits)),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(LAUNCH / "robot.launch.py")),
                launch_arguments={"robot_id": BRINGUP_ID, "driver": "mock", "state_rate": "50.0",
                                  "params_file": "", "use_robot_state_publisher": "false"}.items()),
            listener,
            launch_pytest.actions.ReadyToTest(),
        ])

    @pytest.mark.launch(fixture=robot_bringup)
    def test_robot_launch_publishes_joint_states(listener, exits, launch_context):
        def seen(output: str) -> bool:
            return f"SEEN {topics.robot_topic(BRINGUP_ID, topics.JOINT_STATES)}" in output

        assert process_tools.wait_for_output_sync(launch_context, listener, seen, timeout=60.0), \
            f"no joint_states on /{BRINGUP_ID}; listener output: {listener.get_stdout()!r}"
        # the listener ends by itself once it has seen them: its exit code is its own, not SIGINT's
        assert exits.event("ros_listener").wait(30.0), "the listener did not exit after seeing joint_states"
        assert exits.codes["ros_listener"] == 0
        assert "robot_node" not in exits.codes, f"robot_node exited early: {exits.codes}"
        yield
        # after the launch service shut down (one SIGINT to robot_node, which was up): clean exits
        assert exits.codes.get("robot_node") == 0, f"exit codes: {exits.codes}"
else:
    def test_robot_launch_publishes_joint_states():
        pytest.importorskip("launch_pytest", reason=LAUNCH_SKIP or NO_LAUNCH_PYTEST)
