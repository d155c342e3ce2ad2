"""``strands-mesh router`` (issue 12, item 5): the package's Zenoh router as a command.

A real ``strands-mesh router`` process on a free port; a mesh-native robot (``python -m
strands_mesh_ros.peer``, a Zenoh client) and an operator (a client ``Mesh`` here) reach each
other only through it. Plus its exits: 0 on SIGINT / SIGTERM, 2 with one line for a bad
configuration, 3 for a port already taken. The secured profile's router (TLS, mTLS, ACL) runs
the same :class:`~strands_mesh_ros.mesh.router.Router` in test/test_security.py.
"""

from __future__ import annotations

import signal
import socket

import pytest

pytest.importorskip("zenoh")

from helpers import free_port, python_proc  # noqa: E402

from strands_mesh_ros.mesh.config import MeshConfig  # noqa: E402
from strands_mesh_ros.mesh.mesh import Mesh  # noqa: E402


def router_cmd(*args: str):
    return python_proc("-m", "strands_mesh_ros.cli", "router", *args)


def test_two_clients_talk_through_the_router_and_sigint_exits_0(key_prefix):
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    router = router_cmd("--listen", endpoint, "--no-multicast")
    try:
        line = router.wait_line("listening on", 60)
        assert endpoint in line, line
        robot = python_proc("-m", "strands_mesh_ros.peer", "arm_r", "--prefix", key_prefix, "--mode", "client",
                            "--connect", endpoint, "--no-multicast")
        try:
            robot.ready(60)
            cfg = MeshConfig(prefix=key_prefix, mode="client", connect=(endpoint,), multicast_scouting=False)
            with Mesh("op_r", config=cfg) as op:
                op.wait_for_peer("arm_r", 30)
                r = op.send("arm_r", {"action": "status"}, timeout=15)
                assert r.ok and r.responder_id == "arm_r", r
                r = op.send("arm_r", {"action": "skill", "name": "home", "args": {}}, timeout=30)
                assert r.ok, r
        finally:
            robot.close()
        router.signal(signal.SIGINT)
        assert router.p.wait(30) == 0, router.lines
    finally:
        router.close()


def test_sigterm_exits_0():
    router = router_cmd("--listen", f"tcp/127.0.0.1:{free_port()}", "--no-multicast")
    try:
        router.wait_line("listening on", 60)
        router.signal(signal.SIGTERM)
        assert router.p.wait(30) == 0, router.lines
    finally:
        router.close()


@pytest.mark.parametrize("args, needle", [
    (["--config", "/nonexistent/" + "a-long-directory-name/" * 6 + "router.json5"], "does not exist"),
    (["--listen", "bogus"], "Endpoints must be of the form"),
    (["--config", "config/robot-client.json5"], "sets mode 'client'"),
])
def test_bad_configuration_exits_2_with_one_line(args, needle):
    proc = router_cmd(*args)
    assert proc.p.wait(60) == 2
    proc.close()
    lines = [x for x in proc.lines if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert ".rs:" not in lines[0] and "Json5Err" not in lines[0], lines  # no Rust debug form


def test_a_port_already_taken_exits_3():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = router_cmd("--listen", f"tcp/127.0.0.1:{s.getsockname()[1]}", "--no-multicast")
        assert proc.p.wait(60) == 3, proc.lines
        proc.close()
    lines = [x for x in proc.lines if x.strip()]
    assert len(lines) == 1 and "could not start the Zenoh router" in lines[0], lines
    assert ".rs:" not in lines[0], lines


@pytest.mark.parametrize("listen, needle", [(("bogus",), "Endpoints must be of the form"),
                                            (("tcp/203.0.113.7:1",), "Cannot assign requested address")])
def test_mesh_errors_from_zenoh_are_one_line_without_rust_locations(key_prefix, listen, needle):
    """The same errors on a Mesh: the bad endpoint is named, Zenoh's debug form is not shown."""
    with pytest.raises((ValueError, RuntimeError)) as err:
        Mesh("p1", config=MeshConfig(prefix=key_prefix, listen=listen, multicast_scouting=False)).start()
    text = str(err.value)
    assert needle in text and "\n" not in text and ".rs:" not in text and "Json5Err" not in text, text
