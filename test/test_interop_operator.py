"""THEIR ``Mesh`` (strands-robots 0.5.3, PyPI) as the operator of OUR ``strands-mesh up`` fleet
(issue 9, item 7): a mesh-native robot (``m1``) and a ROS robot behind our bridge (``r1``), both
in the ``up`` process. Their peer ``srop`` discovers them, sends, tells, broadcasts, subscribes
to their state, e-stops them while both run a task (both latch with their ``estop_id``, and
they read our answers to their ``stop`` as acks), and resumes them with their Ed25519 resume
authority. Their process joins ours as a client (``STRANDS_MESH_PORT`` = our listen port).

Skips as test_interop.py does without ``STRANDS_INTEROP_PYTHON``, and without rclpy or our
generated messages (the ROS half).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from helpers import free_port, wait_for
from strands_mesh_ros.testing import Proc
from test_interop import ESTOP_LATENCY_LIMIT, INTEROP_PYTHON, SKIP_REASON, Tap, TheirProcess

pytestmark = [pytest.mark.skipif(not INTEROP_PYTHON, reason=SKIP_REASON), pytest.mark.timeout(180)]

LONG_MOVE = "move joints to 1 0 0 0 0 0 in 30 s"


@pytest.fixture
def up_fleet(tmp_path, monkeypatch, ros_domain):
    """Our `strands-mesh up` (m1 mesh-only, r1 a ROS node behind the bridge) on a private
    namespace, their process as its client; yields (their process, namespace, endpoint, key)."""
    from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON

    if not (HAVE_RCLPY and HAVE_MSGS):
        pytest.skip(NO_ROS_REASON if not HAVE_RCLPY else NO_MSGS_REASON)
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from strands_mesh_ros.robot.resume_ed25519 import PUBLIC_KEY_ENV, public_key_text

    monkeypatch.setenv("STRANDS_MESH_PREFIX", "strands")
    key = Ed25519PrivateKey.generate()
    seed = base64.urlsafe_b64encode(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                      serialization.NoEncryption())).decode()
    ns = "upop" + uuid.uuid4().hex[:10]
    port = free_port()
    endpoint = f"tcp/127.0.0.1:{port}"
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("robots:\n  - {id: m1, driver: mock, ros: false}\n  - {id: r1, driver: mock, ros: true}\n"
                     "mesh:\n  multicast_scouting: false\n")
    env = {**os.environ, "ROS_DOMAIN_ID": str(ros_domain), "STRANDS_MESH_RESUME_KEY": "x" * 32,
           PUBLIC_KEY_ENV: public_key_text(key), "STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")}
    up = Proc([sys.executable, "-m", "strands_mesh_ros.cli", "up", "--headless", str(fleet), "--prefix", "strands",
               "--namespace", ns, "--listen", endpoint], env=env).ready(90)
    home = tmp_path / "their_home"
    home.mkdir()
    theirs = None
    try:
        theirs = TheirProcess({
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONUNBUFFERED": "1",
            "STRANDS_MESH_LOCAL_DEV": "1", "STRANDS_MESH_PORT": str(port), "STRANDS_MESH_NAMESPACE": ns,
            "STRANDS_MESH_MULTICAST": "false", "STRANDS_MESH_AUDIT_DIR": str(home),
            PUBLIC_KEY_ENV: public_key_text(key),
        })
        theirs.wait_ready()
        yield theirs, ns, endpoint, seed
    finally:
        if theirs is not None:
            theirs.close()
        up.close()


def send(theirs, to: str, cmd: dict, timeout: float = 10.0) -> dict:
    return theirs.call("send", wait=timeout + 10, **{"from": "srop", "to": to, "cmd": cmd, "timeout": timeout})


def status(theirs, to: str) -> dict:
    res = send(theirs, to, {"action": "status"})
    assert res.get("responder_id") == to and isinstance(res.get("result"), dict), res
    return res["result"]


def test_their_mesh_operates_our_up_fleet(up_fleet):
    theirs, ns, endpoint, seed = up_fleet
    ours = ("m1", "r1")
    # discovery: their table has both robots, with our peer kind in their type column
    peers = wait_for(lambda: (p := theirs.call("peers")) and set(ours) <= set(p["srop"]) and p, 60, interval=0.3,
                     what="their srop discovering our up fleet")
    assert set(ours) <= set(peers["srarm"]), peers
    # send: both answer, the ROS robot through the bridge's session
    for r in ours:
        theirs.wait_answering("srop", r)
        st = status(theirs, r)
        assert st["robot_id"] == r and st["locked_out"] is False, st
    # tell (blocking execute with their policy_provider): both move
    for r in ours:
        res = theirs.call("tell", wait=60, **{"from": "srop", "to": r, "instruction": "move joints to 0.2 0 0 0 0 0 "
                                              "in 0.1 s", "kw": {"policy_provider": "mock", "duration": 5.0}})
        assert res.get("responder_id") == r and "error" not in res and res.get("type") == "response", res
    # broadcast: every robot of ours answers it, in their form
    answers = theirs.call("broadcast", wait=30, **{"from": "srop", "cmd": {"action": "status"}, "timeout": 5.0})
    by = {a.get("responder_id"): a for a in answers}
    assert set(ours) <= set(by) and all(by[r].get("type") == "response" for r in ours), answers
    # their subscription to our state: ≥ 10 samples per robot, SI joint positions, ~20 Hz
    for r in ours:
        got = theirs.call("state", wait=30, **{"from": "srop", "peer": r, "n": 10, "timeout": 15.0})
        assert got["n"] >= 10 and got["key"].endswith(f"strands/{r}/state"), got
        assert got["last"]["joints"]["joint1"]["position"] == pytest.approx(0.2), got["last"]
        rate = (got["n"] - 1) / got["span"]
        assert rate > 5.0, f"{r}: state at {rate:.1f} Hz"  # 20 Hz nominal; generous on a loaded machine
        print(f"\ntheir subscription to {r}'s state: {rate:.1f} Hz")

    # e-stop with a task running on both robots
    for r in ours:
        res = send(theirs, r, {"action": "start", "instruction": LONG_MOVE, "policy_provider": "mock"})
        assert res.get("type") == "response", res
    for r in ours:
        wait_for(lambda r=r: (status(theirs, r)["task"] or {}).get("instruction") == LONG_MOVE, 10, interval=0.1,
                 what=f"{r} running the long move")
    tap = Tap(ns, endpoint)  # their envelope leaves 3 s after the call: time for the tap to be routed
    try:
        est = theirs.call("estop", wait=30, **{"from": "srop"})
        arrived, body, _zid = wait_for(lambda: [e for e in tap.estops if e[1].get("peer_id") == "srop"], 10,
                                       what="their envelope on the wire")[0]
    finally:
        tap.close()
    epoch = body["estop_id"]
    assert theirs.call("lockouts")["srop"]["epoch"] == epoch and len(epoch) == 32
    # acks in their form: our answers to their `stop` count; none of ours silent or "did NOT stop"
    assert not set(ours) & (set(body["peers_silent"]) | set(body["peers_not_stopped"])), body
    stopped = {a.get("responder_id") for a in est["responses"]}
    assert set(ours) <= stopped, est["responses"]
    for r in ours:
        st = wait_for(lambda r=r: (s := status(theirs, r))["locked_out"] and s, 10, interval=0.1,
                      what=f"{r} latched by their e-stop")
        assert st["lockout"]["epoch"] == epoch and st["lockout"]["issuer"] == "srop", st
        latency = st["lockout"]["t"] - arrived
        assert latency < ESTOP_LATENCY_LIMIT, f"{r} latched {latency * 1000:.1f} ms after their envelope"
        print(f"\nthe up fleet's {r} latched {latency * 1000:.1f} ms after their envelope")
        assert (st["task"] or {}).get("status") != "running", st
        # halted: over 5 state samples (their subscription) joint1 stays short of the 1 rad goal
        got = theirs.call("state", wait=30, **{"from": "srop", "peer": r, "n": 5, "timeout": 10.0})
        first, last = (got[k]["joints"]["joint1"]["position"] for k in ("first", "last"))
        assert 0.2 <= first < 0.99 and last == pytest.approx(first, abs=1e-9), got
        res = send(theirs, r, {"action": "execute", "instruction": "home", "policy_provider": "mock"})
        assert res.get("type") == "error" and "locked out" in json.dumps(res), res

    # resume with their Ed25519 resume authority: both clear
    res = theirs.call("resume", **{"from": "srop", "seed": seed, "targets": list(ours)})
    assert res["result"] == {"status": "ok"} and res["epoch"] == epoch, res
    for r in ours:
        wait_for(lambda r=r: not status(theirs, r)["locked_out"], 10, interval=0.1, what=f"{r} resumed")
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "peers", "--json", "--discover", "1",
                        "--prefix", "strands", "--namespace", ns, "--connect", endpoint],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    listed = {p["peer_id"]: p for p in json.loads(r.stdout)}
    assert {"srop", "srarm", "m1", "r1"} <= set(listed), sorted(listed)
