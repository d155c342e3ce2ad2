"""MujocoDriver on real MuJoCo: built-in models, skills through Robot, e-stop, lanes,
several robots per process, and third-party models shipped in PyPI packages.

No mocks and no sleeps: waits poll a condition with a timeout (helpers.wait_for).

Bounds used below (and why):
* REACH_TOL = 0.02 rad (the skills' default tolerance): position servos with gravity
  compensation settle well inside it; move_joints itself fails when it is not met.
* E-stop: every |qdot| < 0.05 rad/s (a base: chassis speed < 0.05 m/s) within 0.2 s of
  emergency_stop() returning, and the running call ends "refused".
* Real-time moves of 1 s must be done within 1 s + 2 s of settling slack on a loaded 2-core
  machine (the skill gives up 3 s after its trajectory).
"""

from __future__ import annotations

import importlib.util
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from helpers import wait_for  # noqa: E402

from strands_mesh_ros.robot.driver import DriverError, InstructionError  # noqa: E402
from strands_mesh_ros.drivers.models import AUTO_BANDWIDTH_HZ, load_model  # noqa: E402
from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver, parse_base_instruction  # noqa: E402
from strands_mesh_ros.drivers.skills import Gripper  # noqa: E402
from strands_mesh_ros.robot.runtime import LockedOut, Robot  # noqa: E402

REACH_TOL = 0.02  # rad (or m)
ESTOP_SPEED = 0.05  # rad/s
ESTOP_WITHIN = 0.2  # s
ARM_JOINTS = [f"joint{i}" for i in range(1, 7)]
TARGET = [0.6, 0.1, 0.9, 0.4, 0.7, -0.5]  # rad, a reachable pose of arm6


@pytest.fixture
def make():
    """Build drivers (started) and Robots; closes them all at teardown."""
    robots: list[Robot] = []

    def _make(robot_id: str, model: str = "arm6", **kw) -> tuple[MujocoDriver, Robot]:
        driver = MujocoDriver(robot_id, model, **kw)
        driver.start()
        robot = Robot(driver)
        robots.append(robot)
        return driver, robot

    yield _make
    for r in robots:
        r.close()


def positions(driver: MujocoDriver, names: list[str]) -> np.ndarray:
    obs = driver.observe()
    index = {n: i for i, n in enumerate(obs.names)}
    return np.array([obs.position[index[n]] for n in names])


# --- the built-in arm ----------------------------------------------------------------------


def test_arm6_loads_with_joints_gripper_home_and_urdf():
    d = MujocoDriver("arm_a", "arm6")
    try:
        names = [j.name for j in d.joints()]
        assert names == ARM_JOINTS + ["finger_left_joint", "finger_right_joint"]
        assert [j.name for j in d.arm_joints()] == ARM_JOINTS
        assert d.peer_type == "sim" and d.robot_type == "arm6"
        assert d.joints()[0].lower == -2.9 and d.joints()[0].max_effort == 150.0
        assert d.joints()[0].max_velocity == 2.0
        assert d.gripper() == Gripper(("finger_left_joint", "finger_right_joint"), (0.04, 0.04), (0.0, 0.0))
        np.testing.assert_allclose(d.home_positions(), [0, 0.3, 1.2, 0, 1.2, 0])
        np.testing.assert_allclose(positions(d, ARM_JOINTS), d.home_positions())  # starts at home
        assert {s.name for s in d.skills()} == {"move_joints", "home", "move_gripper", "get_state"}
        # robot_description: a URDF generated from the MJCF, same joints and limits.
        urdf = ET.fromstring(d.robot_description())
        joints = {j.get("name"): j for j in urdf.iter("joint")}
        assert set(names) <= set(joints)
        assert joints["joint2"].get("type") == "revolute"
        assert joints["finger_left_joint"].get("type") == "prismatic"
        assert float(joints["joint3"].find("limit").get("upper")) == pytest.approx(2.6)
    finally:
        d.close()


def test_observe_is_a_snapshot():
    d = MujocoDriver("arm_s", "arm6")
    try:
        obs = d.observe()
        obs.position[:] = 99.0  # a copy: writing to it must not touch the simulation
        assert np.all(np.abs(d.observe().position) < 3.0)
        assert d.observe().sim_time == 0.0  # not started: no steps
    finally:
        d.close()


def test_realtime_pacing_never_runs_ahead_of_the_clock():
    d = MujocoDriver("arm_p", "arm6")
    t_start = time.monotonic()
    d.start()
    try:
        ahead = []

        def check() -> bool:
            sim = d.sim_time
            ahead.append(sim - (time.monotonic() - t_start))
            return time.monotonic() - t_start > 0.5

        wait_for(check, 2.0)
        # The loop steps one tick then sleeps to that tick's deadline: sim time leads wall
        # time by at most one tick (0.002 s). Under CPU contention it lags instead.
        assert max(ahead) <= 0.002 + 1e-6, f"sim ran {max(ahead):.4f} s ahead of the clock"
        assert d.sim_time > 0.25, "real-time sim made less than half speed"
    finally:
        d.close()


def test_free_running_sim_outpaces_the_clock(make):
    d, _ = make("arm_fast", realtime=False)
    t0 = time.monotonic()
    wait_for(lambda: d.sim_time > 1.0, 5.0, what="1 s of simulated time")
    assert time.monotonic() - t0 < 0.5, "realtime=False should run several times faster than real time"


def test_move_joints_reaches_target(make):
    d, robot = make("arm_a")
    t0 = time.monotonic()
    outcome = robot.call_skill("move_joints", {"positions": TARGET, "duration": 1.0}).result(timeout=10)
    elapsed = time.monotonic() - t0
    assert outcome.status == "done", outcome.error
    assert outcome.result["reached"] and outcome.result["max_error"] <= REACH_TOL
    assert np.max(np.abs(positions(d, ARM_JOINTS) - TARGET)) <= REACH_TOL
    assert elapsed < 3.0, f"1 s move took {elapsed:.2f} s"
    # The servos keep converging and then hold the pose (gravity is compensated).
    s = d.sim_time
    wait_for(lambda: d.sim_time > s + 0.5, 2.0)
    assert np.max(np.abs(positions(d, ARM_JOINTS) - TARGET)) < 0.005


def test_gripper_opens_and_closes(make):
    d, robot = make("arm_a")
    fingers = ["finger_left_joint", "finger_right_joint"]
    out = robot.call_skill("move_gripper", {"opening": 0.0, "duration": 0.5}).result(timeout=10)
    assert out.status == "done", out.error
    assert np.all(positions(d, fingers) < 0.002)  # closed: 0 m, within 2 mm
    out = robot.call_skill("move_gripper", {"opening": 1.0, "duration": 0.5}).result(timeout=10)
    assert out.status == "done", out.error
    assert np.all(positions(d, fingers) > 0.038)  # open: 0.04 m, within 2 mm


def test_estop_during_long_move_halts_within_bound(make):
    d, robot = make("arm_a")
    fut = robot.call_skill("move_joints", {"positions": [2.0, -0.6, -1.0, 1.5, -1.0, 2.0], "duration": 4.0})
    wait_for(lambda: np.max(np.abs(d.observe().velocity)) > 0.2, 3.0, what="the arm to move")
    robot.emergency_stop("tester", "test")
    t_stop = time.monotonic()
    wait_for(lambda: np.max(np.abs(d.observe().velocity)) < ESTOP_SPEED, ESTOP_WITHIN,
             what=f"all |qdot| < {ESTOP_SPEED} rad/s within {ESTOP_WITHIN} s")
    assert time.monotonic() - t_stop <= ESTOP_WITHIN + 0.05
    outcome = fut.result(timeout=2)
    assert outcome.status == "refused"
    assert d.halted and robot.locked_out
    # Halted: the arm holds still and ignores commands until resume.
    held = positions(d, ARM_JOINTS)
    d.command_positions(ARM_JOINTS, TARGET)
    s = d.sim_time
    wait_for(lambda: d.sim_time > s + 0.3, 2.0)
    assert np.max(np.abs(positions(d, ARM_JOINTS) - held)) < 0.01
    assert np.max(np.abs(d.observe().velocity)) < ESTOP_SPEED
    with pytest.raises(LockedOut):
        robot.call_skill("home")
    robot.resume()
    assert not d.halted
    out = robot.call_skill("move_joints", {"positions": TARGET, "duration": 0.5}).result(timeout=10)
    assert out.status == "done", out.error


def test_stop_and_reset(make):
    d, robot = make("arm_a", realtime=False)
    fut = robot.call_skill("move_joints", {"positions": TARGET, "duration": 2.0})
    wait_for(lambda: np.max(np.abs(positions(d, ARM_JOINTS) - d.home_positions())) > 0.05, 3.0)
    assert robot.stop() >= 1
    assert fut.result(timeout=2).status == "refused"
    assert not d.halted  # a controlled stop latches nothing
    d.emergency_stop()
    d.reset()
    assert not d.halted
    np.testing.assert_allclose(positions(d, ARM_JOINTS), d.home_positions(), atol=1e-3)


def test_lane_ordering_motion_serial_gripper_overlaps(make):
    d, robot = make("arm_a")
    first = robot.call_skill("move_joints", {"positions": TARGET, "duration": 0.6})
    second = robot.call_skill("move_joints", {"positions": d.home_positions().tolist(), "duration": 0.6})
    grip = robot.call_skill("move_gripper", {"opening": 0.0, "duration": 0.3})
    a, b, g = first.result(timeout=10), second.result(timeout=10), grip.result(timeout=10)
    assert (a.status, b.status, g.status) == ("done", "done", "done"), (a.error, b.error, g.error)
    assert b.started >= a.ended, "motion lane ran two calls at once"
    assert g.started < a.ended and g.ended > a.started, "gripper lane waited for the motion lane"


def test_two_identical_robots_do_not_share_state(make):
    a, ra = make("twin_a", realtime=False)
    b, rb = make("twin_b", realtime=False)
    assert a.model is not b.model and a.data is not b.data
    before = positions(b, ARM_JOINTS)
    out = ra.call_skill("move_joints", {"positions": TARGET, "duration": 0.3}).result(timeout=10)
    assert out.status == "done", out.error
    assert np.max(np.abs(positions(a, ARM_JOINTS) - TARGET)) <= REACH_TOL
    assert np.max(np.abs(positions(b, ARM_JOINTS) - before)) < 1e-6
    ra.emergency_stop("tester")
    assert a.halted and not b.halted
    assert rb.call_skill("move_joints", {"positions": TARGET, "duration": 0.2}).result(timeout=10).status == "done"


# --- the built-in base ---------------------------------------------------------------------


def test_diffbot_drives_forward_and_turns(make):
    d, robot = make("base_a", "diffbot", realtime=False)
    assert {s.name for s in d.skills()} == {"drive", "get_state"}  # no arm: no move_joints / home
    assert d.arm_joints() == []
    x0, y0, _, yaw0 = d.base_pose()
    out = robot.call_skill("drive", {"linear": 0.2, "duration": 1.0}).result(timeout=10)
    assert out.status == "done", out.error
    x1, y1, _, _ = d.base_pose()
    assert 0.15 < x1 - x0 < 0.21 and abs(y1 - y0) < 0.01  # 0.2 m/s for 1 s, open loop
    out = robot.execute("turn left at 0.5 rad/s for 1 s").result(timeout=10)
    assert out.status == "done", out.error
    assert 0.35 < out.result["rotation"] < 0.55  # +z is a left turn (REP-103)
    state = robot.call_skill("get_state").result(timeout=5).result
    assert set(state["joints"]) == {"wheel_left_joint", "wheel_right_joint"}
    assert state["base_pose"]["x"] > x0


def test_diffbot_estop_stops_the_base(make):
    d, robot = make("base_e", "diffbot")
    fut = robot.call_skill("drive", {"linear": 0.5, "duration": 5.0})

    def base_speed() -> float:
        with d.locked() as data:
            return float(np.linalg.norm(data.qvel[:3]))

    wait_for(lambda: base_speed() > 0.2, 3.0, what="the base to move")
    robot.emergency_stop("tester")
    wait_for(lambda: base_speed() < ESTOP_SPEED, ESTOP_WITHIN, what="the base to stop")
    assert fut.result(timeout=2).status == "refused"
    x = d.base_pose()[0]
    s = d.sim_time
    wait_for(lambda: d.sim_time > s + 0.3, 2.0)
    assert abs(d.base_pose()[0] - x) < 0.005  # stays stopped: wheels held at zero speed


def test_base_instruction_grammar():
    assert parse_base_instruction("Drive at 0.2 m/s for 2 s") == (
        "drive", {"linear": 0.2, "angular": 0.0, "duration": 2.0})
    assert parse_base_instruction("drive backward at 0.1 m/s for 1 s")[1]["linear"] == -0.1
    name, args = parse_base_instruction("drive forward 1 m at 0.5 m/s")
    assert args == {"linear": 0.5, "angular": 0.0, "duration": 2.0}
    assert parse_base_instruction("turn right at 0.5 rad/s for 1 s")[1]["angular"] == -0.5
    args = parse_base_instruction("turn left 90 deg")[1]
    assert args["angular"] == 0.5 and args["duration"] == pytest.approx(np.pi)
    assert parse_base_instruction("drive at 0.3 m/s and turn at -0.2 rad/s for 3 s")[1] == {
        "linear": 0.3, "angular": -0.2, "duration": 3.0}
    assert parse_base_instruction("open gripper") is None
    with pytest.raises(InstructionError, match="zero speed"):
        parse_base_instruction("drive forward 1 m at 0 m/s")
    base = MujocoDriver("base_g", "diffbot", realtime=False)
    arm = MujocoDriver("arm_g", "arm6", realtime=False)
    try:
        assert base.instruction_to_skill("get state") == ("get_state", {})  # base grammar
        with pytest.raises(InstructionError, match="drive"):
            base.instruction_to_skill("fly to the moon")
        with pytest.raises(InstructionError):
            arm.instruction_to_skill("drive at 0.2 m/s for 2 s")  # an arm has no drive
        assert arm.instruction_to_skill("move joint2 to 0.5 in 1 s") == (
            "move_joints", {"targets": {"joint2": 0.5}, "duration": 1.0})
    finally:
        base.close()
        arm.close()


# --- loading, auto actuators, errors -------------------------------------------------------

INLINE = """
<mujoco model="inline">
  <worldbody>
    <body name="floater" pos="0 0 1"><freejoint/><geom type="sphere" size="0.05" mass="1"/></body>
    <body name="arm">
      <joint name="hinge" type="hinge" axis="0 1 0" range="-1 1"/>
      <geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.02" mass="2"/>
      <body name="slider" pos="0.5 0 0">
        <joint name="slide" type="slide" axis="1 0 0" range="0 0.2"/>
        <geom type="box" size="0.02 0.02 0.02" mass="0.5"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_auto_actuators_on_an_actuatorless_mjcf():
    loaded = load_model(INLINE)
    m = loaded.model
    assert loaded.auto_actuated == ("hinge", "slide")  # the free joint gets none
    assert m.nu == 2
    # ctrlrange = joint range (the MJCF is in degrees: ±1° for the hinge).
    np.testing.assert_allclose(m.actuator_ctrlrange[0], np.radians([-1, 1]))
    np.testing.assert_allclose(m.actuator_ctrlrange[1], [0, 0.2])
    # kp = I·ω² with I the joint-space inertia at qpos0 (see add_position_actuators).
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    full = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, full)
    omega = 2 * np.pi * AUTO_BANDWIDTH_HZ
    dof = m.jnt_dofadr[1]
    assert m.actuator_gainprm[0, 0] == pytest.approx(full[dof, dof] * omega**2, rel=1e-6)
    assert not m.body_gravcomp.any()  # a free body in the model: no gravity compensation


SCALED = """
<mujoco model="scaled">
  <compiler angle="radian"/>
  <option gravity="0 0 0"/>
  <worldbody>
    <body><joint name="j" axis="0 0 1" range="-2 2" damping="1"/><geom type="box" size="0.2 0.02 0.02" pos="0.2 0 0" mass="1"/></body>
  </worldbody>
  <actuator>
    <!-- a Menagerie-style servo: f = 100·ctrl - 200·q - 10·qdot, so ctrl = 2·q at rest -->
    <general joint="j" gainprm="100" biastype="affine" biasprm="0 -200 -10"/>
  </actuator>
</mujoco>
"""


def test_general_position_servo_scaling(make):
    d, robot = make("scaled", SCALED, realtime=False)
    assert [j.name for j in d.arm_joints()] == ["j"]
    out = robot.call_skill("move_joints", {"positions": [0.3], "duration": 0.2}).result(timeout=10)
    assert out.status == "done", out.error
    with d.locked() as data:
        assert data.ctrl[0] == pytest.approx(0.6)
    d.emergency_stop()  # hold: ctrl = 2·q
    with d.locked() as data:
        assert data.ctrl[0] == pytest.approx(2 * data.qpos[0], abs=1e-6)


def test_model_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown model 'nosuchrobot'"):
        MujocoDriver("x", "nosuchrobot")
    with pytest.raises(TypeError):
        MujocoDriver("x", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid robot_id"):
        MujocoDriver("bad id!", "arm6")
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body><joint type='hinge'/><geom size='x'/></body></worldbody></mujoco>")
    with pytest.raises(DriverError, match="broken.xml"):
        MujocoDriver("x", str(broken))
    with pytest.raises(DriverError, match="not found"):
        MujocoDriver("x", str(tmp_path / "missing.urdf"))
    with pytest.raises(ValueError, match="home has 2 values"):
        MujocoDriver("x", "arm6", home=[0.0, 0.0])
    with pytest.raises(ValueError, match="not position-servoed"):
        MujocoDriver("x", "arm6", gripper=Gripper(("nope",), (1.0,), (0.0,)))
    with pytest.raises(ValueError, match="timestep"):
        MujocoDriver("x", "arm6", timestep=-1.0)
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    if importlib.util.find_spec("mujoco_menagerie") is None:
        with pytest.raises(DriverError, match="pip install mujoco-menagerie"):
            MujocoDriver("x", "menagerie:franka_emika_panda")
    if importlib.util.find_spec("robot_descriptions") is None:
        with pytest.raises(DriverError, match="pip install robot_descriptions"):
            MujocoDriver("x", "robot_descriptions:panda_mj_description")


def test_menagerie_root_is_honoured(tmp_path, monkeypatch):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "scene.xml").write_text(INLINE)
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    d = MujocoDriver("toy", "menagerie:toy", realtime=False)
    try:
        assert [j.name for j in d.joints()] == ["hinge", "slide"]
    finally:
        d.close()


def test_close_joins_the_physics_thread():
    d = MujocoDriver("arm_c", "arm6", realtime=False)
    d.start()
    assert d.running
    d.close()
    assert not d.running
    with pytest.raises(DriverError):
        d.start()


# --- third-party models from PyPI packages -------------------------------------------------


def _pybullet_data() -> Path:
    pbd = pytest.importorskip("pybullet_data", reason="pybullet not installed (pip install pybullet)")
    return Path(pbd.getDataPath())


def _jaco() -> Path:
    spec = importlib.util.find_spec("dm_control")
    if spec is None or spec.origin is None:
        pytest.skip("dm_control not installed (pip install dm_control)")
    return Path(spec.origin).parent / "third_party" / "kinova" / "jaco_arm.xml"


def _reach(make, robot_id: str, model: str, delta: float = 0.4, **kw) -> MujocoDriver:
    """Load, check auto actuation, move every arm joint by ``delta`` (clipped) and check it."""
    d, robot = make(robot_id, model, **kw)
    hinge_slide = [
        mujoco.mj_id2name(d.model, mujoco.mjtObj.mjOBJ_JOINT, j)
        for j in range(d.model.njnt)
        if int(d.model.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    ]
    assert list(d.loaded.auto_actuated) == hinge_slide and d.model.nu == len(hinge_slide)
    arm = d.arm_joints()
    target = [j.clip(h + delta) for j, h in zip(arm, d.home_positions())]
    out = robot.call_skill("move_joints", {"positions": target, "duration": 1.0}).result(timeout=15)
    assert out.status == "done", out.error
    assert np.max(np.abs(positions(d, [j.name for j in arm]) - target)) <= REACH_TOL
    return d


def test_pybullet_kuka_iiwa_urdf(make):
    d = _reach(make, "iiwa", str(_pybullet_data() / "kuka_iiwa" / "model.urdf"))
    assert len(d.arm_joints()) == 7 and d.gripper() is None
    assert d.robot_description().lstrip().startswith("<?xml") and "lbr_iiwa_joint_1" in d.robot_description()


def test_pybullet_unitree_a1_leg_joints(make):
    # MuJoCo's URDF import fixes the root link (the trunk) to the world: the base is pinned.
    d = _reach(make, "a1", str(_pybullet_data() / "a1" / "a1.urdf"))
    assert len(d.arm_joints()) == 12 and d.base_pose() is None


def test_pybullet_franka_panda_package_uris(make, monkeypatch):
    root = _pybullet_data() / "franka_panda"
    urdf = (root / "panda.urdf").read_text()
    assert "package://" in urdf
    monkeypatch.delenv("STRANDS_MODEL_PATH", raising=False)
    with pytest.raises(DriverError, match="cannot resolve 'package://meshes/"):
        MujocoDriver("panda_x", urdf)  # a robot_description string: nothing to resolve against
    d = _reach(make, "panda", urdf, search_path=[str(root)])
    assert d.gripper() is not None and len(d.gripper().joints) == 2
    assert d.robot_description() == urdf  # published as given, package:// URIs intact
    monkeypatch.setenv("STRANDS_MODEL_PATH", os.pathsep.join(["/nonexistent", str(root)]))
    MujocoDriver("panda_env", urdf, realtime=False).close()


def test_dm_control_jaco_mjcf(make):
    d = _reach(make, "jaco", str(_jaco()))
    assert [j.name for j in d.arm_joints()] == [f"joint_{i}" for i in range(1, 7)]
    assert d.joints()[0].kind == "continuous"


# --- the URDF generated for MJCF models ----------------------------------------------------


def _urdf_fk(urdf: str, q: dict[str, float]) -> dict[str, np.ndarray]:
    """World position of every link of a URDF (fixed / revolute / continuous / prismatic)."""
    def rot(rpy: list[float]) -> np.ndarray:
        r, p, y = rpy
        rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
        ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
        return rz @ ry @ rx

    def axis_rot(axis: np.ndarray, angle: float) -> np.ndarray:
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k

    root = ET.fromstring(urdf)
    pose = {"world": (np.eye(3), np.zeros(3))}
    joints = list(root.iter("joint"))
    while len(pose) <= len(joints):
        for j in joints:
            parent, child = j.find("parent").get("link"), j.find("child").get("link")
            if parent not in pose or child in pose:
                continue
            o = j.find("origin")
            R, p = pose[parent]
            R = R @ rot([float(v) for v in o.get("rpy").split()])
            p = p + pose[parent][0] @ np.array([float(v) for v in o.get("xyz").split()])
            axis = j.find("axis")
            if axis is not None:
                a = np.array([float(v) for v in axis.get("xyz").split()])
                if j.get("type") == "prismatic":
                    p = p + R @ (a * q.get(j.get("name"), 0.0))
                else:
                    R = R @ axis_rot(a, q.get(j.get("name"), 0.0))
            pose[child] = (R, p)
    return {k: v[1] for k, v in pose.items()}


@pytest.mark.parametrize("model", ["arm6", "jaco"])
def test_generated_urdf_matches_mujoco_kinematics(model):
    ref = str(_jaco()) if model == "jaco" else model
    d = MujocoDriver("fk", ref)
    try:
        rng = np.random.default_rng(0)
        q = {j.name: j.clip(float(rng.uniform(-1.5, 1.5))) for j in d.joints()}
        m, data = d.model, d.data
        for name, value in q.items():
            data.qpos[m.joint(name).qposadr[0]] = value
        mujoco.mj_kinematics(m, data)
        links = _urdf_fk(d.robot_description(), q)
        for b in range(1, m.nbody):
            # The link frame sits at the body's first joint anchor (jnt_pos); compare there.
            anchor = m.jnt_pos[m.body_jntadr[b]] if m.body_jntnum[b] else np.zeros(3)
            expected = data.xpos[b] + data.xmat[b].reshape(3, 3) @ anchor
            np.testing.assert_allclose(links[m.body(b).name], expected, atol=1e-5, err_msg=m.body(b).name)
    finally:
        d.close()
