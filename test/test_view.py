"""The fleet view (`strands-mesh view`): a real fleet (MuJoCo arm and base, real Zenoh), the
page loaded in real headless Chromium over the DevTools protocol, and its HTTP endpoints."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import urllib.request
from urllib.parse import urlsplit

import pytest

from browser import Browser, chromium_path, pixels
from helpers import Proc, free_port, wait_for
from strands_mesh_ros.fleet import Fleet
from strands_mesh_ros.view import FleetView

BACKGROUND = (0x15, 0x18, 0x1C)  # view.js scene.background


def need_browser() -> None:
    if chromium_path() is None:
        why = os.environ.get("STRANDS_VIEW_BROWSER_SKIP", "chromium is not installed (apt-get install chromium)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {why}")
        pytest.skip(why)


def colored(img, hue: str):
    """Mask of the pixels drawn in a robot's tint (view.js COLORS): blue arm1, orange base1,
    red e-stopped. Grid, labels and background are grey, so they never count."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return {"blue": b - r > 60, "orange": r - b > 60, "red": (r - g > 100) & (r - b > 100)}[hue]


def world_shot(page: Browser):
    """A screenshot cropped to the 3D canvas (no banner, no panels), shape (h, w, 3)."""
    r = page.eval("document.querySelector('#world canvas').getBoundingClientRect().toJSON()")
    img = pixels(page.screenshot())
    return img[round(r["top"]): round(r["bottom"]), round(r["left"]): round(r["right"])]


def test_view_shows_the_fleet_live_in_chromium(net):
    need_browser()
    robots = [{"id": "arm1", "driver": "mujoco", "model": "arm6"},
              {"id": "base1", "driver": "mujoco", "model": "diffbot"}]
    with Fleet(robots=robots, config=net.hub()) as fleet, FleetView(net.member()) as view, \
            Browser(1200, 700) as page:
        fleet.wait_ready(30)
        page.goto(view.url)
        page.wait("document.body.dataset.models === '2'", 60, what="both robot models loaded in the page")
        page.wait("['arm1', 'base1'].every(id => document.getElementById('peer-' + id))", 10)
        panel = page.eval("document.getElementById('peer-arm1').innerText")
        assert "arm6" in panel and "mesh" in panel and "sim" in panel, panel
        assert page.eval("document.getElementById('estop-banner').hidden") is True

        canvas = world_shot(page)
        half = canvas.shape[1] // 2  # two robots side by side: arm1 on the left, base1 on the right
        assert colored(canvas[:, :half], "blue").sum() > 500, "arm1 not drawn"
        assert colored(canvas[:, half:], "orange").sum() > 200, "base1 not drawn"
        assert (canvas != BACKGROUND).any(axis=2).mean() > 0.01

        # joint motion changes the picture, where the arm is
        assert fleet.tell("arm1", "move joints to 1.2 0.6 -0.8 0 0.4 0 in 0.5 s").ok
        page.wait("Math.abs(lastSnapshot.peers.find(p => p.id === 'arm1').joints.joint1 - 1.2) < 0.02", 15)
        after = world_shot(page)
        assert after.shape == canvas.shape
        changed = (after != canvas).any(axis=2)
        assert changed[:, :half].sum() > 500, "arm1's motion did not change the picture"

        # the base moves from its odometry
        assert fleet.tell("base1", "drive forward 0.3 m at 0.3 m/s").ok
        page.wait("lastSnapshot.peers.find(p => p.id === 'base1').base_pose.x > 0.2", 15)

        # e-stop: every robot shown locked out, unmistakably
        assert fleet.estop("view test").all_stopped
        page.wait("document.body.dataset.estopped === 'arm1,base1'", 15, what="both robots shown e-stopped")
        assert page.eval("document.getElementById('estop-banner').hidden") is False
        assert "E-STOP" in page.eval("document.getElementById('estop-banner').innerText")
        for rid in ("arm1", "base1"):
            assert page.eval(f"document.getElementById('peer-{rid}').dataset.estop") == "1"
            # the ack shows the lockout at once; the reason follows with the robot's presence
            page.wait(f"document.getElementById('peer-{rid}').innerText.includes('view test')", 10)
        page.wait("document.getElementById('estop-banner').offsetHeight > 0", 5)
        stopped = world_shot(page)  # the banner pushed the world down: crop it again
        assert colored(stopped, "red").sum() > 500, "e-stopped robots are not drawn red"
        assert colored(stopped, "blue").sum() < 50


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, url[len(f"{u.scheme}://{u.netloc}"):] or "/")
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read()
    finally:
        conn.close()


def test_http_endpoints_answer_and_reject_bad_input(net):
    with FleetView(net.hub()) as view:
        base = view.url.rstrip("/")
        status, ctype, body = get(base + "/")
        assert status == 200 and "text/html" in ctype and b"fleet view" in body
        status, ctype, body = get(base + "/static/vendor/three/build/three.module.js")
        assert status == 200 and "javascript" in ctype
        status, _, body = get(base + "/api/fleet")
        assert status == 200 and json.loads(body)["peers"] == []
        for path in ("/nope", "/static/nope.js", "/static/../view.py", "/static/%2e%2e/view.py",
                     "/static/..%2f..%2fcli.py", "/api/description/ghost"):
            status, ctype, body = get(base + path)
            assert status == 404 and "json" in ctype, path
            assert json.loads(body)["error"], path
        status, _, body = get(base + "/api/description/bad$id")
        assert status == 400 and "bad$id" in json.loads(body)["error"]
        for method in ("POST", "PUT", "DELETE"):
            status, _, body = get(base + "/api/fleet", method)
            assert status == 405 and "read-only" in json.loads(body)["error"]
        # a peer publishing garbage state (NaN, a string) leaves the page's JSON strict and readable
        from strands_mesh_ros.mesh.mesh import Mesh

        def strict(body: bytes):
            return json.loads(body, parse_constant=lambda c: pytest.fail(f"{c} in the view's JSON"))

        def rogue_with(joint: str):
            return lambda: next((p for p in strict(get(base + "/api/fleet")[2])["peers"]
                                 if p["id"] == "rogue" and joint in p["joints"]), None)

        with Mesh("rogue", config=net.member()) as rogue:
            key = rogue.keys.state("rogue")
            rogue._session.put(key, b'{"peer_id": "rogue", "t": 1, "joints": {"j": {"position": NaN}}, '
                                    b'"base_pose": {"x": NaN, "y": 0, "z": 0, "yaw": 0}}')
            seen = wait_for(rogue_with("j"), 10, what="the NaN state in the view")
            assert seen["joints"] == {"j": None} and seen["base_pose"] is None
            for raw in (b'{"peer_id": "rogue", "t": 1, "joints": {"j": {"position": "high"}}, "base_pose": 3}',
                        b"[1, 2]", b"\xff\xfe",
                        b'{"peer_id": "rogue", "t": 1, "joints": {"k": {"position": 0.5}}}'):
                rogue._session.put(key, raw)
            seen = wait_for(rogue_with("k"), 10, what="the view still reading state after garbage")
            assert seen["joints"] == {"k": 0.5} and seen["base_pose"] is None
        with urllib.request.urlopen(base + "/api/events", timeout=10) as events:  # one pushed snapshot
            assert events.headers["Content-Type"] == "text/event-stream"
            line = events.readline()
            assert line.startswith(b"data: ") and "peers" in json.loads(line[6:])


def test_cli_view_prints_its_url_and_stops_on_ctrl_c(net):
    port = free_port()
    cmd = [sys.executable, "-m", "strands_mesh_ros.cli", "view", "--port", str(port),
           "--prefix", net.prefix, "--listen", net.endpoint]
    proc = Proc(cmd)
    try:
        line = proc.wait_line("fleet view: http://127.0.0.1:", 30)
        assert line.strip().endswith(f":{port}/")
        status, _, _ = get(f"http://127.0.0.1:{port}/api/fleet")
        assert status == 200
        # a second view on the same port says why it cannot start
        second = Proc(cmd[:-2] + ["--connect", net.endpoint])
        try:
            second.wait_line("cannot serve the fleet view", 30)
            wait_for(lambda: second.p.poll() is not None, 15, what="the second view to exit")
            assert second.p.returncode == 2
        finally:
            second.close()
        proc.signal(signal.SIGINT)
        wait_for(lambda: proc.p.poll() is not None, 15, what="view to stop on Ctrl-C")
        assert proc.p.returncode == 0
    finally:
        proc.close()


def test_up_view_serves_the_fleet(net, tmp_path):
    port = free_port()
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text("robots:\n  - {id: armv, driver: mock}\n")
    cmd = [sys.executable, "-m", "strands_mesh_ros.cli", "up", str(fleet_file), "--headless", "--no-ros",
           "--view", "--view-port", str(port), "--prefix", net.prefix, "--listen", net.endpoint]
    proc = Proc(cmd, env={"XDG_CONFIG_HOME": str(tmp_path / "config")})
    try:
        proc.wait_line(f"fleet view: http://127.0.0.1:{port}/", 60)

        def armv():
            peers = json.loads(get(f"http://127.0.0.1:{port}/api/fleet")[2])["peers"]
            return next((p for p in peers if p["id"] == "armv" and p["joints"]), None)

        assert wait_for(armv, 30, what="armv in the view")["robot"]
        proc.signal(signal.SIGINT)
        wait_for(lambda: proc.p.poll() is not None, 20, what="up to stop on Ctrl-C")
        assert proc.p.returncode == 0
    finally:
        proc.close()


def test_view_shows_a_ros_base_through_the_bridge(net):
    """A MuJoCo base living in ROS: on the mesh through the bridge, its base pose from its
    odometry (nav_msgs/Odometry on /<id>/odom), its lockout from its relayed presence."""
    ros_helpers = pytest.importorskip("ros_helpers")
    if not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS):
        pytest.skip(ros_helpers.NO_ROS_REASON if not ros_helpers.HAVE_RCLPY else ros_helpers.NO_MSGS_REASON)
    import uuid

    from strands_mesh_ros.drivers.fleet_config import RobotSpec, make_driver
    from strands_mesh_ros.mesh.mesh import Mesh
    from strands_mesh_ros.ros.bridge_node import BridgeNode
    from strands_mesh_ros.ros.robot_node import RobotNode

    env = ros_helpers.RosEnv()
    try:
        rid = f"base_{uuid.uuid4().hex[:6]}"
        driver = make_driver(RobotSpec(id=rid, driver="mujoco", model="diffbot"))
        env.add(RobotNode(rid, driver=driver, context=env.context, close_driver=True))
        env.add(BridgeNode(mesh_config=net.hub(), bridge_id="bridge_v", context=env.context,
                           node_name=f"bridge_{uuid.uuid4().hex[:6]}"))
        with FleetView(net.member()) as view, Mesh("op", config=net.member()) as op:
            def shown():
                return next((p for p in view.snapshot()["peers"] if p["id"] == rid and p["base_pose"]), None)

            peer = wait_for(shown, 30, what="the ROS base in the view with a base pose")
            assert peer["lives"] == "ros via bridge_v" and peer["robot"] and peer["lockout"] is None
            wait_for(lambda: shown()["model"], 20, what="its robot_description")
            assert view.description(rid).startswith("<?xml") and "base_free" in view.description(rid)
            assert op.tell(rid, "drive forward 0.3 m at 0.3 m/s", timeout=30).ok
            wait_for(lambda: shown()["base_pose"]["x"] > 0.2, 15, what="the base pose to follow its odometry")
            op.emergency_stop("ros view drill", timeout=2.0)
            lock = wait_for(lambda: (shown()["lockout"] or {}).get("reason"), 15, what="the ROS base shown locked out")
            assert lock == "ros view drill"
    finally:
        env.close()


def test_an_estop_ack_shows_the_lockout_until_presence_says_otherwise(net):
    """A halted-and-latched ack shows its robot locked out at once (ahead of its next presence);
    the robot's presence heard afterwards is the word from then on. Acks that prove no latch
    and unreadable ones do not disturb the view."""
    import time as _time

    from strands_mesh_ros.contract.payloads import EStopAck
    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.mesh.mesh import Mesh

    with Mesh("rb", robot=MockDriver("rb"), config=net.hub()) as rb, FleetView(net.member()) as view, \
            Mesh("op", config=net.member()) as op:
        def lockout():
            return next((p["lockout"] for p in view.snapshot()["peers"] if p["id"] == "rb"), "absent")

        wait_for(lambda: lockout() is None, 10, what="rb in the view, not locked out")
        for halted, detail in ((False, "no actuators on this peer"), (True, "replayed e-stop")):
            ack = EStopAck(issuer_id="op", responder_id="rb", seq=1, t=_time.time(), halted=halted, detail=detail)
            op._session.put(op.keys.estop_ack("op", "rb"), ack.to_json())
        op._session.put(op.keys.estop_ack("op", "rb"), b'{"halted": "yes"}')  # unreadable: logged, ignored
        ack = EStopAck(issuer_id="op", responder_id="rb", seq=2, t=_time.time(), halted=True)
        op._session.put(op.keys.estop_ack("op", "rb"), ack.to_json())
        shown = wait_for(lambda: lockout() or None, 10, what="the ack's lockout in the view")
        assert shown["issuer"] == "op"
        # rb never latched (the ack was forged): its next presence clears the page
        wait_for(lambda: lockout() is None, 10, what="rb's presence to clear the ack's lockout")
        assert not rb.robot.locked_out


def test_a_strands_robots_peer_appears_with_its_state_and_lockout(tmp_path, monkeypatch):
    """The REAL strands-robots 0.5.3 (test/interop_peer.py in the interop venv): its peers
    appear as strands-robots peers without a model, and its lockout (announced on its
    ``safety/event`` key) shows once another of its peers e-stops the fleet."""
    interop = pytest.importorskip("test_interop")
    if not interop.INTEROP_PYTHON:
        pytest.skip(interop.SKIP_REASON)
    monkeypatch.setenv("STRANDS_MESH_PREFIX", "strands")  # theirs is literal; the namespace isolates
    fleet = interop.Fleet(tmp_path)
    try:
        fleet.op.wait_for_peer("srarm", 15)
        with FleetView(fleet.member_config) as view:
            def srarm():
                return next((p for p in view.snapshot()["peers"] if p["id"] == "srarm"), None)

            peer = wait_for(lambda: (p := srarm()) and p["model"] is False and p, 20,
                            what="srarm in the view, its features answered without a model")
            assert peer["lives"] == "strands-robots" and peer["robot"] and peer["lockout"] is None
            fleet.theirs.call("estop", wait=30, **{"from": "srop"})
            lock = wait_for(lambda: srarm()["lockout"], 15, what="srarm shown locked out")
            assert lock["issuer"] == "srop" and lock["reason"] == "remote_estop_engaged"
    finally:
        fleet.close()
