"""`strands-mesh` against a robot in another process: output, --json, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import python_proc


def cli(net, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    conn = ["--prefix", net.prefix, "--connect", net.endpoint]
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", *args, *conn],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _no_resume_key(tmp_path, monkeypatch):
    """No resume key unless a test gives one: neither in the environment nor in a per-user
    key file (XDG_CONFIG_HOME is the test's own directory)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY", raising=False)
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY_FILE", raising=False)


@pytest.fixture
def robot(net):
    # The robot listens on the test's endpoint; every CLI process connects to it.
    p = python_proc("-m", "strands_mesh_ros.peer", "arm1", "--prefix", net.prefix, "--listen", net.endpoint,
                    "--no-multicast", "--resume-key", "cli-test-resume-key-0001").ready()
    yield p
    p.close()


def test_peers_json_lists_the_robot(net, robot):
    r = cli(net, "peers", "--json", "--discover", "1.5")
    assert r.returncode == 0, r.stderr
    peers = {p["peer_id"]: p for p in json.loads(r.stdout)}
    assert peers["arm1"]["peer_type"] == "robot" and "move_joints" in peers["arm1"]["skills"]


def test_tell_send_and_errors(net, robot):
    r = cli(net, "tell", "arm1", "move joints to 0.1 0 0 0 0 0 in 0.1 s", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "done"
    r = cli(net, "send", "arm1", '{"action": "state"}', "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["result"]["joints"]["joint1"]["position"] == pytest.approx(0.1)
    r = cli(net, "send", "arm1", '{"action": "fly"}')
    assert r.returncode == 1 and "unknown action 'fly'" in r.stderr
    r = cli(net, "send", "arm1", "{not json")
    assert r.returncode == 2 and "not valid JSON" in r.stderr
    r = cli(net, "send", "bad/id", '{"action": "status"}')
    assert r.returncode == 2 and "invalid peer id" in r.stderr
    r = cli(net, "tell", "ghost", "home", "--discover", "0.5")
    assert r.returncode == 1 and "peer 'ghost' not found" in r.stderr


def test_broadcast_estop_resume(net, robot):
    r = cli(net, "broadcast", '{"action": "status"}', "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["responses"]["arm1"]["status"] == "done"
    r = cli(net, "estop", "--reason", "cli test", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert "arm1" in rep["stopped"] and rep["all_stopped"]
    r = cli(net, "tell", "arm1", "home")
    assert r.returncode == 1 and "locked out" in r.stderr
    r = cli(net, "resume")  # no key in this environment
    assert r.returncode == 2 and "no resume key" in r.stderr
    env_key = {"STRANDS_MESH_RESUME_KEY": "cli-test-resume-key-0001"}
    conn = ["--prefix", net.prefix, "--connect", net.endpoint]
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "resume", "--json", *conn],
                       capture_output=True, text=True, timeout=60, env={**__import__("os").environ, **env_key})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["arm1"]["accepted"] is True


def test_echo_prints_state_samples(net, robot):
    r = cli(net, "echo", f"{net.prefix}/arm1/state", "-n", "3", "--timeout", "10", "--json")
    assert r.returncode == 0, r.stderr
    samples = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(samples) == 3 and all(s["value"]["peer_id"] == "arm1" for s in samples)
    r = cli(net, "echo", "a//b", "-n", "1")
    assert r.returncode == 2 and "invalid key expression" in r.stderr
