"""The Fleet porcelain, and `strands-mesh up` (pure mesh and ROS) seen from other processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Proc, wait_for
from strands_mesh_ros.fleet import Fleet, SkillCallError

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path, monkeypatch):
    """`up` makes its per-user resume key under XDG_CONFIG_HOME: the test's, not the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY", raising=False)
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY_FILE", raising=False)


def test_fleet_lifecycle_skills_isolation_estop_restart(net):
    robots = [{"id": "a1", "driver": "mock"}, {"id": "a2", "driver": "mock"}]
    with Fleet(robots=robots, config=net.hub()) as fleet:
        fleet.wait_ready(10)
        assert set(fleet.robot_ids) <= set(fleet.peers)
        a1, a2 = fleet["a1"], fleet["a2"]
        assert {"move_joints", "home", "move_gripper", "get_state"} <= set(a1.skills.names())
        out = a1.skills.move_joints(positions=[0.2, 0, 0, 0, 0, 0], duration=0)
        assert out["positions"]["joint1"] == pytest.approx(0.2)
        assert a2.state()["joints"]["joint1"]["position"] == 0.0  # identical robots stay isolated
        with pytest.raises(AttributeError, match="no skill 'fly'"):
            a1.skills.fly
        with pytest.raises(SkillCallError, match="bad args"):
            a1.skills.move_joints(positions=[1])
        assert fleet.tell("a2", "open gripper").ok
        report = fleet.estop("test")
        assert {"a1", "a2"} <= set(report.stopped) and report.all_stopped
        with pytest.raises(SkillCallError, match="locked out"):
            a1.skills.home()
        # a restarted robot: fresh driver, skills looked up afresh, lockout gone
        fleet.restart_robot("a1")
        wait_for(lambda: not a1.status()["locked_out"], 10, what="a1 back")
        assert a1.skills.home(duration=0)["reached"]
    assert not fleet.meshes


def up_proc(net, *args, env=None) -> Proc:
    cmd = [sys.executable, "-m", "strands_mesh_ros.cli", "up", "--headless", *args,
           "--prefix", net.prefix, "--listen", net.endpoint]
    return Proc(cmd, env=env)


def peers_json(net) -> dict:
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "peers", "--json",
                        "--prefix", net.prefix, "--connect", net.endpoint], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return {p["peer_id"]: p for p in json.loads(r.stdout)}


def test_up_no_ros_is_seen_by_another_process_and_stops_cleanly(net, tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("robots:\n  - {id: m1, driver: mock}\n  - {id: m2, driver: mock}\n")
    p = up_proc(net, str(fleet), "--no-ros").ready(60)
    try:
        peers = peers_json(net)
        assert {"m1", "m2"} <= set(peers) and peers["m1"]["ros"] is None
        # a second fleet with one of the same ids refuses to start, naming it (one robot, one id)
        other = tmp_path / "other.yaml"
        other.write_text("robots:\n  - {id: m2, driver: mock}\n  - {id: m3, driver: mock}\n")
        second = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "up", str(other), "--no-ros",
                                 "--headless", "--prefix", net.prefix, "--connect", net.endpoint],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "m2 already live on the mesh" in second.stderr and "Traceback" not in second.stderr
        p.signal(signal.SIGINT)
        wait_for(lambda: p.p.poll() is not None, 20, what="up to exit")
        assert p.p.returncode == 0
        p.wait_line("fleet stopped", 10)  # its output reader may still be draining the pipe
    finally:
        p.close()


def test_up_with_ros_default_fleet(net, ros_domain):
    pytest.importorskip("rclpy", reason="the ROS path of up needs rclpy (bash scripts/bootstrap.sh setup)")
    pytest.importorskip("strands_mesh_ros.msg", reason="the ROS path needs the generated interfaces")
    pytest.importorskip("mujoco", reason="the default fleet is simulated in MuJoCo")
    env = {"ROS_DOMAIN_ID": str(ros_domain)}
    p = up_proc(net, env=env).ready(90)
    listener = None
    try:
        peers = peers_json(net)
        assert {"arm1", "arm2", "base1"} <= set(peers)
        assert peers["arm1"]["ros"]["namespace"] == "/arm1" and peers["arm1"]["via"]
        assert peers["base1"]["ros"] is None  # mesh-only, shown in ROS by the bridge
        # e-stop state on the wire for ROS robots (via the bridge) and mesh robots alike
        assert peers["arm1"]["locked_out"] is False and peers["base1"]["locked_out"] is False
        r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "estop", "--json", "--prefix", net.prefix,
                            "--connect", net.endpoint], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_for(lambda: all(p["locked_out"] for rid, p in peers_json(net).items() if rid in ("arm1", "arm2", "base1")),
                 20, what="every robot's presence to say it is locked out")
        assert peers_json(net)["arm1"]["lockout"]["reason"] == "operator e-stop"
        topics = ["/arm1/joint_states", "/arm2/joint_states", "/base1/joint_states"]
        listener = Proc([sys.executable, str(HERE / "ros_listener.py"), *topics], env=env).ready(30)
        for t in topics:
            listener.wait_line(f"SEEN {t} ", 30)
        p.signal(signal.SIGINT)
        wait_for(lambda: p.p.poll() is not None, 30, what="up to exit")
        assert p.p.returncode == 0
    finally:
        if listener is not None:
            listener.close()
        p.close()


# -- the fleet file's mesh: section and driver options (issue 8) ----------------------------


def up_fails(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`strands-mesh up` expected to refuse its input before starting anything."""
    import os

    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "up", "--headless", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_up_uses_the_fleet_file_mesh_section(net, tmp_path):
    # No --prefix / --listen on the command line: the file's mesh: section says where the fleet is.
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"robots:\n  - {{id: y1, driver: mock}}\n"
                     f"mesh:\n  prefix: {net.prefix}\n  listen: [{net.endpoint}]\n  multicast_scouting: false\n")
    p = Proc([sys.executable, "-m", "strands_mesh_ros.cli", "up", "--headless", "--no-ros", str(fleet)]).ready(60)
    try:
        assert "y1" in peers_json(net)
    finally:
        p.close()


def test_up_mesh_precedence_command_line_over_file_over_environment(tmp_path, monkeypatch):
    from strands_mesh_ros.drivers.fleet_config import load_fleet
    from strands_mesh_ros.up import resolve_mesh_config

    monkeypatch.setenv("STRANDS_MESH_PREFIX", "fromenv")
    monkeypatch.setenv("ZENOH_CONNECT", "tcp/10.0.0.9:7447")
    monkeypatch.delenv("STRANDS_MESH_NAMESPACE", raising=False)
    spec = load_fleet({"robots": [{"id": "a"}], "mesh": {"prefix": "fromfile", "namespace": "strands",
                                                          "connect": ["tcp/10.0.0.1:7447"], "lease_ms": 3000}})
    cfg = resolve_mesh_config(spec.mesh, None)
    assert (cfg.prefix, cfg.namespace, cfg.connect, cfg.lease_ms) == ("fromfile", "strands", ("tcp/10.0.0.1:7447",), 3000)
    cfg = resolve_mesh_config(spec.mesh, {"prefix": "fromcli", "connect": ["tcp/10.0.0.2:7447"], "namespace": None,
                                          "listen": None, "config_file": None})
    assert (cfg.prefix, cfg.namespace, cfg.connect) == ("fromcli", "strands", ("tcp/10.0.0.2:7447",))
    cfg = resolve_mesh_config({}, {})
    assert (cfg.prefix, cfg.connect) == ("fromenv", ("tcp/10.0.0.9:7447",))  # no file, no option: environment
    monkeypatch.delenv("STRANDS_MESH_PREFIX")
    assert resolve_mesh_config({}, None).prefix == "strands"  # the default


@pytest.mark.parametrize("mesh, key", [
    ("{prefx: lab}", "mesh.prefx: unknown key; valid keys: prefix,"),
    ("{prefix: 'bad prefix'}", "mesh.prefix: invalid key prefix 'bad prefix'"),
    ("{prefix: 'a/*'}", "mesh.prefix: invalid key prefix"),
    ("{prefix: 42}", "mesh.prefix: Input should be a valid string (got 42)"),
    ("{connect: tcp/10.0.0.2:7447}", "mesh.connect: Input should be a valid list"),
    ("{connect: [localhost]}", "mesh.connect: 'localhost' is not a Zenoh endpoint"),
    ("{mode: mesh}", "mesh.mode: Input should be 'peer', 'client' or 'router'"),
    ("{multicast_scouting: 'no'}", "mesh.multicast_scouting: Input should be a valid boolean"),
    ("{lease_ms: -1}", "mesh.lease_ms: Input should be greater than 0"),
    ("{config_file: /nonexistent/zenoh.json5}", "mesh.config_file: Zenoh config file '/nonexistent/zenoh.json5' does not exist"),
    ("[prefix, lab]", "mesh: must be a mapping of prefix,"),
])
def test_fleet_file_mesh_section_is_validated(tmp_path, mesh, key):
    from strands_mesh_ros.drivers.fleet_config import load_fleet

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"robots:\n  - {{id: m1, driver: mock}}\nmesh: {mesh}\n")
    with pytest.raises(ValueError) as exc:
        load_fleet(fleet)
    assert key in str(exc.value) and str(fleet) in str(exc.value)


def test_up_refuses_an_invalid_mesh_section_in_one_line(tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("robots:\n  - {id: m1, driver: mock}\nmesh:\n  prefix: strands\n  conect: [tcp/10.0.0.2:7447]\n")
    line = one_error_line(up_fails("--no-ros", str(fleet)))
    assert str(fleet) in line and "mesh.conect: unknown key" in line
    assert not (tmp_path / "config").exists()  # refused before anything, the resume key included


@pytest.mark.parametrize("ros", [False, True], ids=["no-ros", "ros"])
def test_up_unknown_driver_option_is_one_line(tmp_path, ros, ros_domain):
    pytest.importorskip("mujoco", reason="the option is checked against the MuJoCo driver")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("robots:\n  - {id: arm1, driver: mock}\n  - {id: arm9, driver: mujoco, options: {bogus: 1}}\n")
    env = None
    if ros:
        env = {"ROS_DOMAIN_ID": str(ros_domain)}
    line = one_error_line(up_fails(*([] if ros else ["--no-ros"]), str(fleet), env=env))
    assert "robot 'arm9'" in line and "unknown option 'bogus'" in line
    assert "valid options: " in line and "timestep" in line and "gripper" in line


def test_driver_options_checked_without_building_the_driver():
    from strands_mesh_ros.drivers.fleet_config import DriverOptionError, RobotSpec, check_driver_options

    check_driver_options(RobotSpec(id="m1", driver="mock", options={"gripper": False}))
    with pytest.raises(DriverOptionError, match=r"robot 'm1': bad options for driver 'mock': unknown option 'wings'; "
                                                r"valid options: gripper, joints, robot_type$"):
        check_driver_options(RobotSpec(id="m1", driver="mock", options={"wings": 2}))
    with pytest.raises(ValueError, match=r"robot 'g1': .*command_interface"):
        check_driver_options(RobotSpec(id="g1", driver="ros_topics", options={"bogus": 1}))


# -- Ctrl-C ends `up` cleanly, also when its output went into a pipe that closed (issue 11) ----


@pytest.mark.parametrize("ros,sig", [(False, signal.SIGINT), (True, signal.SIGTERM)], ids=["mesh-sigint", "ros-sigterm"])
def test_up_live_view_into_a_closed_pipe_still_stops_the_fleet(net, tmp_path, ros, sig, ros_domain):
    """`up | tee log`, then Ctrl-C: tee dies first, the live view's last write hits a closed
    pipe; the fleet must still stop in order, the process exit, and no robot stay live."""
    import os
    import threading

    from strands_mesh_ros.mesh.mesh import live_peer_ids
    from strands_mesh_ros.mesh.session import POOL

    if ros:
        pytest.importorskip("rclpy", reason="the ROS path of up needs rclpy (bash scripts/bootstrap.sh setup)")
        pytest.importorskip("strands_mesh_ros.msg", reason="the ROS path needs the generated interfaces")
    fleet = tmp_path / "fleet.yaml"
    robots = {"p1", "p2"}
    fleet.write_text("robots:\n  - {id: p1, driver: mock}\n  - {id: p2, driver: mock" + (", ros: true" if ros else "")
                     + "}\n")
    hub = POOL.acquire(net.hub(), "main")  # the watcher holds the mesh, so it outlives the fleet
    env = {**os.environ, "COLUMNS": "100"}
    if ros:
        env["ROS_DOMAIN_ID"] = str(ros_domain)
    p = subprocess.Popen([sys.executable, "-m", "strands_mesh_ros.cli", "up", str(fleet), *([] if ros else ["--no-ros"]),
                          "--prefix", net.prefix, "--connect", net.endpoint],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        ready = threading.Event()

        def read() -> None:
            for line in iter(p.stdout.readline, b""):
                if b"READY" in line:
                    ready.set()
                    return

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(90), "up never printed READY"
        wait_for(lambda: robots <= live_peer_ids(hub, net.hub().keys), 30, what="the robots live")
        p.stdout.close()  # the reader is gone, as tee is after Ctrl-C
        p.send_signal(sig)
        assert p.wait(timeout=30) == 0
        wait_for(lambda: not (robots & live_peer_ids(hub, net.hub().keys)), 10, what="no robot left on the mesh")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        POOL.release(hub)
