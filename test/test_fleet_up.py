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
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "peers", "--json", "--discover", "1.5",
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
        p.signal(signal.SIGINT)
        wait_for(lambda: p.p.poll() is not None, 20, what="up to exit")
        assert p.p.returncode == 0 and any("fleet stopped" in line for line in p.lines)
    finally:
        p.close()


def test_up_with_ros_default_fleet(net):
    pytest.importorskip("rclpy", reason="the ROS path of up needs rclpy (bash scripts/bootstrap.sh setup)")
    pytest.importorskip("strands_mesh_ros.msg", reason="the ROS path needs the generated interfaces")
    pytest.importorskip("mujoco", reason="the default fleet is simulated in MuJoCo")
    from ros_helpers import domain_id

    env = {"ROS_DOMAIN_ID": str(domain_id(4) % 230)}
    p = up_proc(net, env=env).ready(90)
    listener = None
    try:
        peers = peers_json(net)
        assert {"arm1", "arm2", "base1"} <= set(peers)
        assert peers["arm1"]["ros"]["namespace"] == "/arm1" and peers["arm1"]["via"]
        assert peers["base1"]["ros"] is None  # mesh-only, shown in ROS by the bridge
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
