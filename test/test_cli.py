"""`strands-mesh` against a robot in another process: output, --json, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import python_proc, wait_for


def cli(net, *args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    conn = ["--prefix", net.prefix, "--connect", net.endpoint]
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", *args, *conn],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


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
    r = cli(net, "peers", "--json")  # no listening time: the mesh is asked
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


# -- issue 11: network speed, readable output, JSON errors, one operator audit file -------------


def test_tell_and_send_do_not_wait_their_discovery_bound_for_a_live_peer(net, robot):
    """--discover is an upper bound: a live peer is found by its liveliness token at once."""
    t0 = time.monotonic()
    r = cli(net, "send", "arm1", '{"action": "status"}', "--discover", "30", "--json")
    assert r.returncode == 0, r.stderr
    r = cli(net, "tell", "arm1", "home", "--discover", "30", "--json")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30, "the CLI waited its --discover bound although arm1 was live"


def test_peers_shows_estop_lockout_and_fits_80_columns_when_piped(net, robot):
    r = cli(net, "peers", env={"COLUMNS": "80"})  # piped: rich lays the table out for COLUMNS
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), r.stdout
    header = next(line for line in lines if " e-stop " in line)
    for col in ("peer", "model", "e-stop", "task"):  # high-priority columns whole, never blanked
        assert f" {col} " in header, header
    assert any("arm1" in line and " ok " in line for line in lines), r.stdout
    r = cli(net, "estop", "--reason", "lockout shown", "--json")
    assert r.returncode == 0, r.stderr
    r = cli(net, "peers", "--json")
    arm1 = {p["peer_id"]: p for p in json.loads(r.stdout)}["arm1"]
    assert arm1["locked_out"] is True and arm1["lockout"]["reason"] == "lockout shown"
    r = cli(net, "peers", env={"COLUMNS": "80"})
    assert any("arm1" in line and "LOCKED OUT" in line for line in r.stdout.splitlines()), r.stdout
    wide = cli(net, "peers", env={"COLUMNS": "200"})
    assert " skills " in wide.stdout and "move_joints" in wide.stdout


def test_errors_under_json_are_one_json_line_on_stderr(net, robot):
    cases = [(("send", "arm1", "{not json", "--json"), 2, "not valid JSON"),
             (("send", "--json"), 2, "Missing argument"),
             (("peers", "--json", "--no-such-option"), 2, "No such option"),
             (("send", "arm1", '{"action": "fly"}', "--json"), 1, "unknown action 'fly'"),
             (("tell", "ghost", "home", "--discover", "0.3", "--json"), 1, "peer 'ghost' not found")]
    for args, code, text in cases:
        r = cli(net, *args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        error = json.loads(r.stderr.strip().splitlines()[-1])
        assert error["exit"] == code and text in error["error"], (args, r.stderr)
    r = cli(net, "send", "arm1", "{not json")  # without --json: a plain line
    assert r.returncode == 2 and r.stderr.startswith("error:")


def test_cli_calls_share_one_operator_audit_file(net, robot, tmp_path):
    audit = tmp_path / "audit"
    env = {"STRANDS_MESH_AUDIT_DIR": str(audit)}
    for args in (("send", "arm1", '{"action": "status"}'), ("estop", "--reason", "audit"), ("peers",)):
        r = cli(net, *args, env=env)
        assert r.returncode == 0, r.stderr
    # the robot's own file (if it writes here) and one for every CLI call, never one per call
    assert sorted(p.name for p in audit.iterdir() if p.name != "audit-arm1.jsonl") == ["audit-operator.jsonl"]
    lines = [json.loads(line) for line in (audit / "audit-operator.jsonl").read_text().splitlines()]
    assert {line["event"] for line in lines} >= {"start", "estop_report", "stop"}
    assert len({line["peer"] for line in lines}) == 2  # send and estop: each its own peer, one file
    # the issue is on record (written once the e-stop is out), before the report of its acks
    issued = [line for line in lines if line["event"] == "estop_issued"]
    report = [line for line in lines if line["event"] == "estop_report"]
    assert len(issued) == 1 and issued[0]["reason"] == "audit" and issued[0]["self_halted"] is False, issued
    assert issued[0]["seq"] == report[0]["seq"] and lines.index(issued[0]) < lines.index(report[0]), lines


def test_help_has_no_raw_doc_markup():
    for args in ((), ("peers",), ("estop",), ("resume",)):
        r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", *args, "--help"], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "COLUMNS": "100"})
        assert r.returncode == 0, r.stderr
        assert "``" not in r.stdout and ":func:" not in r.stdout and ":class:" not in r.stdout, r.stdout
    assert "Exit codes" in subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "--help"],
                                          capture_output=True, text=True, timeout=60).stdout


def test_a_presence_query_finds_peers_without_waiting_for_a_beat(net):
    """Presence beats every 20 s here: a peer that joins later learns the robot only because
    the robot answers the presence query (and its token the liveliness query)."""
    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.mesh.mesh import Mesh

    slow = dict(presence_hz=0.05, peer_timeout=60.0)
    with Mesh("arm1", robot=MockDriver("arm1"), config=net.hub(**slow)):
        with Mesh("op", config=net.member(**slow)) as op:
            wait_for(lambda: "arm1" in op.refresh_peers(), 10, what="arm1's liveliness token")
            info = op.peers["arm1"]  # its presence came with the query, not with a beat
            assert info.live_token and info.presence.locked_out is False and "home" in [s["name"] for s in info.skills]


@pytest.mark.parametrize("width", [60, 80, 140])
def test_peer_table_keeps_columns_whole_by_priority(width):
    """The table of `peers` and of up's live view fits the width; lower-priority columns go
    whole, the peer, its e-stop state, model and task stay."""
    from rich.console import Console

    from strands_mesh_ros.contract.payloads import make_presence
    from strands_mesh_ros.mesh.peers import PeerTable
    from strands_mesh_ros.peer_columns import peers_table

    table = PeerTable(30.0)
    table.heard(make_presence("arm1", robot_type="arm6", peer_type="robot", skills=[{"name": "move_joints"}],
                              ros={"namespace": "/arm1", "node": "robot_node"}, via="bridge-host-1234",
                              task_status="idle", locked_out=True, lockout={"reason": "drill"}))
    table.heard(make_presence("base1", robot_type="diffbot", peer_type="sim", task_status="running", locked_out=False))
    table.heard(make_presence("cli-host-1", robot_type="cli", peer_type="agent"))
    console = Console(width=width, record=True)
    console.print(peers_table(table.snapshot(), width, title="t", hide_kinds=("cli",)))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    header = next(line for line in lines if " e-stop " in line)
    assert all(f" {c} " in header for c in ("peer", "model", "e-stop", "task")), text
    assert ("skills" in header) == (width >= 140), text
    assert any("arm1" in line and "LOCKED OUT" in line for line in lines)
    assert any("base1" in line and " ok " in line for line in lines)
    assert "cli-host-1" not in text


def test_each_cli_call_reaches_the_safety_path_and_leaves_the_mesh(net, tmp_path):
    """Every `estop` call is received by the robot on the e-stop key (not only through the
    `stop` command), each call's peer is gone from the mesh right after its process ended
    (it exits without closing its Zenoh sessions), and its audit lines are all written."""
    from strands_mesh_ros.mesh.mesh import Mesh

    audit = tmp_path / "audit"
    env = {**os.environ, "STRANDS_MESH_AUDIT_DIR": str(audit)}
    robot = python_proc("-m", "strands_mesh_ros.peer", "arm1", "--prefix", net.prefix, "--listen", net.endpoint,
                        "--no-multicast", env=env).ready()
    try:
        with Mesh("observer", config=net.member()) as obs:  # acks e-stops (no actuators)
            for i in range(3):
                r = cli(net, "estop", "--reason", f"round {i}", "--json", env={"STRANDS_MESH_AUDIT_DIR": str(audit)})
                assert r.returncode == 0, r.stderr
                assert "arm1" in json.loads(r.stdout)["stopped"]
                # the CLI's peer (cli-<host>-<pid>) has left: no token of a cli- peer remains
                assert wait_for(lambda: not any(p.startswith("cli-") for p in obs.refresh_peers(1.0)), 5)
    finally:
        robot.close()
    robot_lines = [json.loads(line) for line in (audit / "audit-arm1.jsonl").read_text().splitlines()]
    received = [line["reason"] for line in robot_lines if line["event"] == "estop_received"]
    # each once, or twice when its ack was late (an e-stop from a just-opened safety session is
    # put again to peers that have not acked: SafetyPath.emergency_stop)
    assert list(dict.fromkeys(received)) == ["round 0", "round 1", "round 2"] and len(received) <= 6
    operator = [json.loads(line) for line in (audit / "audit-operator.jsonl").read_text().splitlines()]
    assert [line["event"] for line in operator].count("stop") == 3
