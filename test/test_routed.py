"""The fleet through a Zenoh router (docs/scale.md): robots and an operator as clients.

The router is a Python Zenoh session in router mode in its own process (test/router_proc.py);
each robot is a ``strands_mesh_ros.peer`` process in client mode reading the shipped
config/robot-client.json5 (its router endpoint overridden with ``--connect``); the operator is
a client session of this test process. Clients never link to each other: everything below
crosses the router.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import zenoh
from helpers import free_port, python_proc, wait_for
from router_proc import CLIENT_MODE

from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh

REPO = Path(__file__).resolve().parent.parent
ROBOTS = ("arm1", "arm2", "base1")


@pytest.fixture
def routed():
    """A router on a free port, three robot clients, and the operator client 'op'."""
    prefix = "r" + uuid.uuid4().hex[:10]
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    procs = [python_proc(str(REPO / "test" / "router_proc.py"), endpoint).ready()]
    try:
        for rid in ROBOTS:
            procs.append(python_proc("-c", CLIENT_MODE, "strands_mesh_ros.peer", rid, "--prefix", prefix,
                                     "--connect", endpoint, "--resume-key", "routed-resume-key-0123",
                                     env={"ZENOH_CONFIG": str(REPO / "config" / "robot-client.json5")}))
        for p in procs[1:]:
            p.ready()
        cfg = MeshConfig(prefix=prefix, mode="client", connect=(endpoint,), multicast_scouting=False)
        with Mesh("op", config=cfg, resume_key="routed-resume-key-0123") as op:
            yield op
    finally:
        for p in reversed(procs):
            p.close()


def test_shipped_backbone_configs_are_valid_zenoh_configs():
    router = zenoh.Config.from_file(str(REPO / "config" / "router.json5"))
    client = zenoh.Config.from_file(str(REPO / "config" / "robot-client.json5"))
    assert router.get_json("mode") == '"router"' and client.get_json("mode") == '"client"'
    assert client.get_json("scouting/multicast/enabled") == "false"


def test_discovery_through_the_router(routed):
    op = routed
    for rid in ROBOTS:
        info = op.wait_for_peer(rid, 15)
        assert info.peer_type == "robot"
    wait_for(lambda: all(op.peers[r].live_token for r in ROBOTS), 10, what="liveliness tokens via the router")
    # Robot to robot too (client -> router -> client): arm1's own peer table lists the others.
    def arm1_sees_all():
        r = op.send("arm1", {"action": "peers"}, timeout=5)
        return r.ok and {"arm2", "base1", "op"} <= {p["peer_id"] for p in r.result}
    wait_for(arm1_sees_all, 10, interval=0.1, what="arm1 seeing the fleet through the router")


def test_command_round_trip_through_the_router(routed):
    op = routed
    for rid in ROBOTS:
        op.wait_for_peer(rid, 15)
    r = op.tell("arm1", "move joints to 0.1 0.2 0.3 0.4 0.5 0.6 in 0.1 s", timeout=15)
    assert r.ok, r.error
    st = op.send("arm1", {"action": "state"}, timeout=10)
    assert st.ok and st.result["joints"]["joint3"]["position"] == pytest.approx(0.3)
    res = op.broadcast({"action": "status"}, timeout=10)
    assert set(ROBOTS) <= set(res.responses) and not res.missing, res


def test_estop_is_acked_by_every_robot_through_the_router(routed):
    op = routed
    for rid in ROBOTS:
        op.wait_for_peer(rid, 15)
    report = op.emergency_stop("routed drill", timeout=5)
    assert set(report.stopped) == set(ROBOTS) and report.all_stopped, report.to_dict()
    for rid in ROBOTS:
        st = op.send(rid, {"action": "status"}, timeout=10)
        assert st.ok and st.result["locked_out"], st
    answers = op.resume(list(ROBOTS), operator="test", timeout=5)
    assert all(a["accepted"] for a in answers.values()), answers
