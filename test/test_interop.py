"""Interop with the REAL strands-robots 0.5.3 mesh (PyPI), in both directions (issue 9).

Their peers (``srarm``, a mock robot, and ``srop``, robot-less) run in a subprocess on the
interop venv's Python >= 3.12 (test/interop_peer.py; ``bash scripts/bootstrap.sh test`` makes
the venv with scripts/interop_venv.sh and exports ``STRANDS_INTEROP_PYTHON``); ours run in this
process. Everything is on loopback, on a free port, with the key prefix ``strands`` (theirs is
hard-coded) and a Zenoh namespace of its own per test (their ``STRANDS_MESH_NAMESPACE``), our
operator ``op`` listening and their process joining as its client. No sleeps for sync: READY
lines, answers and :func:`wait_for`.

Without ``STRANDS_INTEROP_PYTHON`` the module skips with ``STRANDS_INTEROP_SKIP`` (the reason
bootstrap.sh found) or a note on how to set it up.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers import free_port, wait_for

INTEROP_PYTHON = os.environ.get("STRANDS_INTEROP_PYTHON", "")
SKIP_REASON = "strands-robots interop tests skipped: " + (
    os.environ.get("STRANDS_INTEROP_SKIP")
    or "STRANDS_INTEROP_PYTHON is not set (bash scripts/bootstrap.sh test sets it; or run "
       "bash scripts/interop_venv.sh and export STRANDS_INTEROP_PYTHON=<the python it prints>)")

pytestmark = [pytest.mark.skipif(not INTEROP_PYTHON, reason=SKIP_REASON), pytest.mark.timeout(90)]

PEER_SCRIPT = Path(__file__).resolve().parent / "interop_peer.py"
ESTOP_LATENCY_LIMIT = 0.100  # s, their envelope on the wire -> our robot latched (issue 9, item 1)


class TheirProcess:
    """test/interop_peer.py under the interop Python, driven one JSON line at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.p = subprocess.Popen([INTEROP_PYTHON, str(PEER_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
        self.ready = threading.Event()
        self.info: dict = {}
        self._results: queue.Queue = queue.Queue()
        self._n = 0
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:  # type: ignore[union-attr]
            if line.startswith("READY "):
                self.info = json.loads(line[6:])
                self.ready.set()
            elif line.startswith("RES "):
                self._results.put(json.loads(line[4:]))
        self._results.put(None)
        self.ready.set()

    def _read_err(self) -> None:
        for line in self.p.stderr:  # type: ignore[union-attr]
            self.stderr.append(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.ready.wait(timeout) and self.info, (
            f"their peer did not start in {timeout} s; stderr tail:\n" + "\n".join(self.stderr[-30:]))

    def call(self, do: str, wait: float = 15.0, **kw):
        self._n += 1
        self.p.stdin.write(json.dumps({"id": self._n, "do": do, **kw}) + "\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]
        deadline = time.monotonic() + wait
        while True:
            try:
                r = self._results.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"their peer did not answer {do!r} in {wait} s") from None
            assert r is not None, "their peer exited; stderr tail:\n" + "\n".join(self.stderr[-30:])
            if r.get("id") == self._n:
                assert "exc" not in r, f"their {do!r} raised {r['exc']}"
                return r["res"]

    def wait_answering(self, frm: str, to: str, timeout: float = 40.0) -> None:
        """Wait until ``to`` answers a ``status`` that their ``frm`` sends. Hearing a presence
        does not yet mean their session has the route to our command subscriber (a put made
        before it arrives goes nowhere: seen once on a loaded machine), so a test's first
        exchange goes through here."""
        wait_for(lambda: self.call("send", wait=15.0, **{"from": frm, "to": to, "cmd": {"action": "status"},
                                                         "timeout": 3.0}).get("responder_id") == to,
                 timeout, interval=0.2, what=f"{to} answering their {frm}'s first status")

    def task_stopped(self, timeout: float = 5.0) -> dict:
        """Wait until their arm runs no task and its last one ended stopped (not completed);
        returns the arm's record (``running``, ``history`` with ``t_end`` in UNIX s)."""
        arm = wait_for(lambda: (a := self.call("arm"))["running"] is None and a, timeout, interval=0.05,
                       what="their task stopped")
        assert arm["history"][-1]["stopped"] is True, arm
        return arm

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.p.stdin.write(json.dumps({"do": "quit"}) + "\n")  # type: ignore[union-attr]
                self.p.stdin.flush()  # type: ignore[union-attr]
                self.p.wait(10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)


class Tap:
    """A raw Zenoh session on the mesh that timestamps every e-stop envelope on arrival."""

    def __init__(self, namespace: str, endpoint: str) -> None:
        import zenoh

        conf = zenoh.Config()
        conf.insert_json5("mode", '"client"')
        conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
        conf.insert_json5("scouting/multicast/enabled", "false")
        conf.insert_json5("namespace", json.dumps(namespace))
        self.session = zenoh.open(conf)
        self.estops: list[tuple[float, dict, str | None]] = []  # (wall time on arrival, body, SourceInfo zid)
        self._sub = self.session.declare_subscriber("strands/safety/estop", self._on)

    def _on(self, sample) -> None:
        arrived = time.time()
        si = sample.source_info
        zid = str(si.source_id.zid) if si is not None and si.source_id is not None else None
        try:
            body = json.loads(bytes(sample.payload.to_bytes()))
        except ValueError:
            body = {}
        self.estops.append((arrived, body, zid))

    def close(self) -> None:
        self.session.close()


class Fleet:
    """Our operator (the hub), a tap and their process on a private mesh."""

    def __init__(self, tmp_path: Path, extra_env: dict[str, str] | None = None) -> None:
        from strands_mesh_ros.mesh.config import MeshConfig

        self.ns = "interop" + uuid.uuid4().hex[:10]
        self.endpoint = f"tcp/127.0.0.1:{free_port()}"
        self.audit = str(tmp_path / "audit")
        self.hub_config = MeshConfig(prefix="strands", namespace=self.ns, listen=(self.endpoint,),
                                     multicast_scouting=False)
        self.member_config = MeshConfig(prefix="strands", namespace=self.ns, connect=(self.endpoint,),
                                        multicast_scouting=False)
        self.ours: list = []
        self.theirs: TheirProcess | None = None
        self.tap: Tap | None = None
        self.op = self.mesh("op")  # first: it listens, and their process then joins as our client
        self.tap = Tap(self.ns, self.endpoint)
        home = tmp_path / "their_home"
        home.mkdir()
        self.theirs = TheirProcess({
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONUNBUFFERED": "1",
            "STRANDS_MESH_LOCAL_DEV": "1", "STRANDS_MESH_PORT": self.endpoint.rsplit(":", 1)[1],
            "STRANDS_MESH_NAMESPACE": self.ns, "STRANDS_MESH_MULTICAST": "false",
            "STRANDS_MESH_AUDIT_DIR": str(home),
            # their hardware motion gate: our operator `op` may start/execute on srarm
            "STRANDS_ROBOT_COMMAND_ALLOW": "execute@op,start@op",
            **(extra_env or {}),
        })
        self.theirs.wait_ready()

    def mesh(self, peer_id: str, robot=None, **kw):
        from strands_mesh_ros.mesh.mesh import Mesh

        cfg = self.hub_config if not self.ours else self.member_config
        m = Mesh(peer_id, robot=robot, config=cfg, audit_dir=self.audit, check_unique=False, **kw).start()
        self.ours.append(m)
        return m

    def their_peers_see(self, *ids: str, who: str = "srop") -> None:
        wait_for(lambda: set(ids) <= set(self.theirs.call("peers")[who]), 15, interval=0.2,
                 what=f"{who} (theirs) seeing {ids}")

    def close(self) -> None:
        if self.theirs is not None:
            self.theirs.close()
        if self.tap is not None:
            self.tap.close()
        for m in reversed(self.ours):
            m.stop()


@pytest.fixture
def resume_key():
    """An Ed25519 resume authority made for the test: (private key, its raw seed as base64url)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return key, base64.urlsafe_b64encode(seed).decode()


@pytest.fixture
def fleet(tmp_path, monkeypatch, request):
    # Their key prefix is the literal "strands": isolation comes from the Zenoh namespace.
    monkeypatch.setenv("STRANDS_MESH_PREFIX", "strands")
    extra = {}
    if "resume_key" in request.fixturenames:  # both sides trust the test's Ed25519 resume key
        from strands_mesh_ros.robot.resume_ed25519 import PUBLIC_KEY_ENV, public_key_text

        extra[PUBLIC_KEY_ENV] = public_key_text(request.getfixturevalue("resume_key")[0])
        monkeypatch.setenv(PUBLIC_KEY_ENV, extra[PUBLIC_KEY_ENV])
    f = Fleet(tmp_path, extra)
    try:
        f.op.wait_for_peer("srarm", 15)
        f.op.wait_for_peer("srop", 15)
        yield f
    finally:
        f.close()


def status(op, peer: str) -> dict:
    r = op.send(peer, {"action": "status"}, timeout=5)
    assert r.ok, f"status of {peer}: {r.status} {r.error}"
    return r.result


# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def our_two_robots(fleet, bridge_id: str):
    """Our mesh robot ``ourarm`` and a ROS robot behind our bridge (own ROS domain), both seen by
    our operator; yields ``(ourarm's Robot, the ROS robot's id, its RobotNode, the RosEnv)``."""
    from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON, RosEnv

    if not (HAVE_RCLPY and HAVE_MSGS):
        pytest.skip(NO_ROS_REASON if not HAVE_RCLPY else NO_MSGS_REASON)
    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.ros.bridge_node import BridgeNode
    from strands_mesh_ros.ros.robot_node import RobotNode

    ourarm = fleet.mesh("ourarm", robot=MockDriver("ourarm")).core.robot
    rosarm_id = f"rosarm_{uuid.uuid4().hex[:6]}"
    with contextlib.closing(RosEnv()) as ros:
        node = ros.add(RobotNode(rosarm_id, driver=MockDriver(rosarm_id), context=ros.context, close_driver=True))
        br = ros.add(BridgeNode(mesh_config=fleet.member_config, bridge_id=bridge_id, context=ros.context,
                                audit_dir=fleet.audit, node_name=f"bridge_{uuid.uuid4().hex[:6]}"))
        wait_for(lambda: rosarm_id in br.proxies, 15, what="the ROS robot bridged")
        fleet.op.wait_for_peer(rosarm_id, 15)
        yield ourarm, rosarm_id, node, ros


def test_their_estop_latches_our_mesh_robot_and_a_ros_robot_behind_our_bridge(fleet):
    from diagnostic_msgs.msg import DiagnosticArray

    from strands_mesh_ros.ros import qos, topics

    with our_two_robots(fleet, "bridge_i") as (ourarm, rosarm_id, node, ros):
        diagnostics = ros.sub(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
        fleet.their_peers_see("ourarm", rosarm_id, "bridge_i", "op")
        assert not status(fleet.op, "ourarm")["locked_out"] and not status(fleet.op, rosarm_id)["locked_out"]

        # their e-stop, from their process: stop broadcast (3 s of answers), then the envelope
        t_call = time.time()
        res = fleet.theirs.call("estop", wait=20, **{"from": "srop"})
        envs = wait_for(lambda: [e for e in fleet.tap.estops if e[1].get("peer_id") == "srop"], 5,
                        what="their envelope on the wire")
        arrived, body, zid = envs[0]
        assert "seq" not in body and len(body["estop_id"]) == 32 and body["source_zid"] == zid

        sts = {p: wait_for(lambda p=p: (s := status(fleet.op, p))["locked_out"] and s, 5, interval=0.05,
                           what=f"{p} locked out") for p in ("ourarm", rosarm_id)}
        latency = {}
        for peer, st in sts.items():
            lo = st["lockout"]
            latency[peer] = lo["t"] - arrived
            assert lo["issuer"] == "srop"
            assert lo["epoch"] == body["estop_id"], f"{peer}: lockout epoch is not their estop_id"
            assert latency[peer] < ESTOP_LATENCY_LIMIT, f"{peer} latched {latency[peer] * 1000:.1f} ms after the envelope"
        assert ourarm.locked_out and node.robot.locked_out
        # /diagnostics: both of our robots ERROR, naming their operator; their robot reported by
        # our bridge, its lockout unknown (their presence does not carry it)
        for peer in ("ourarm", rosarm_id):
            st = diagnostics.wait(lambda a, p=peer: any(s.hardware_id == p and s.level == b"\x02" for s in a.status), 10,
                                  what=f"{peer} in ERROR on /diagnostics")
            assert any(s.message == "e-stop latched by srop" for s in st.status if s.hardware_id == peer), st.status
        theirs = diagnostics.wait(lambda a: any(s.hardware_id == "srarm" for s in a.status), 10, what="srarm on /diagnostics")
        assert {("e-stop", "?")} <= {(v.key, v.value) for s in theirs.status if s.hardware_id == "srarm" for v in s.values}
        print(f"\ntheir e-stop: call at 0, envelope on the wire at +{arrived - t_call:.3f} s "
              f"(their call returned at +{res['t_return'] - t_call:.3f} s); latched after the envelope: "
              + ", ".join(f"{p} {v * 1000:.1f} ms" for p, v in latency.items()))

        # they read our answers to their `stop` broadcast as acks: none of ours silent or "not stopped"
        assert not body["peers_not_stopped"], body
        assert not {"ourarm", rosarm_id, "bridge_i", "op"} & set(body["peers_silent"]), body

        # a motion command is refused afterwards, on both robots
        for peer in ("ourarm", rosarm_id):
            r = fleet.op.send(peer, {"action": "execute", "instruction": "home"}, timeout=5)
            assert not r.ok and "locked out" in (r.error or ""), f"{peer}: {r.status} {r.error} {r.result}"
        assert ourarm.locked_out and node.robot.locked_out


def test_our_estop_stops_their_running_task(fleet):
    fleet.their_peers_see("op", who="srarm")  # their robot bound op's SourceInfo: our start is attributable
    r = fleet.op.send("srarm", {"action": "start", "instruction": "long task", "policy_provider": "mock",
                                "duration": 30.0}, timeout=5)
    assert r.ok and not (isinstance(r.result, dict) and r.result.get("error")), f"{r.status} {r.error} {r.result}"
    wait_for(lambda: fleet.theirs.call("arm")["running"] == "long task", 5, interval=0.05, what="their task running")

    t0 = time.time()
    report = fleet.op.emergency_stop("interop drill", timeout=2.0)
    assert "srarm" in report.stopped, report.to_dict()
    assert "srop" in report.no_actuators and not report.not_acked, report.to_dict()
    arm = fleet.theirs.task_stopped()
    locks = fleet.theirs.call("lockouts")
    assert all(v["locked"] for v in locks.values()), locks
    assert {v["epoch"] for v in locks.values()} == {fleet.tap.estops[-1][1]["estop_id"]}, locks
    print(f"\nour e-stop: their task stopped {(arm['history'][-1]['t_end'] - t0) * 1000:.1f} ms after the call; "
          f"report in {report.elapsed * 1000:.0f} ms: {report.to_dict()}")


def test_our_cli_estop_stops_their_running_task(fleet):
    fleet.theirs.call("start", instruction="long task", duration=30.0)
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "estop", "--json", "--prefix", "strands",
                        "--namespace", fleet.ns, "--connect", fleet.endpoint], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    report = json.loads(r.stdout)
    assert "srarm" in report["stopped"] and not report["not_acked"], report
    arm = fleet.theirs.task_stopped()
    print(f"\nCLI e-stop: their task stopped {(arm['history'][-1]['t_end'] - t0) * 1000:.0f} ms after spawning "
          f"the CLI; report {report}")


def test_send_and_tell_both_ways(fleet):
    from strands_mesh_ros.drivers.mock import MockDriver

    ourarm = fleet.mesh("ourarm", robot=MockDriver("ourarm"))
    fleet.their_peers_see("ourarm", "op")
    fleet.their_peers_see("op", who="srarm")
    # theirs -> ours: our answers carry the SourceInfo their presence binding expects
    fleet.theirs.wait_answering("srop", "ourarm")
    res = fleet.theirs.call("send", **{"from": "srop", "to": "ourarm", "cmd": {"action": "status"}, "timeout": 5})
    assert res.get("responder_id") == "ourarm" and res["result"]["robot_id"] == "ourarm", res
    res = fleet.theirs.call("tell", wait=40, **{"from": "srop", "to": "ourarm",
                                                "instruction": "move joints to 0.3 0 0 0 0 0 in 0.1 s",
                                                "kw": {"policy_provider": "mock", "duration": 5.0}})
    assert res.get("responder_id") == "ourarm" and "error" not in res, res
    assert ourarm.core.robot.driver.observe().position[0] == pytest.approx(0.3)
    # ours -> theirs
    r = fleet.op.send("srarm", {"action": "status"}, timeout=5)
    assert r.ok and r.responder_id == "srarm" and "RUNNING" not in json.dumps(r.result), f"{r.status} {r.result}"
    r = fleet.op.send("srarm", {"action": "execute", "instruction": "short task", "policy_provider": "mock",
                                "duration": 0.2}, timeout=10)
    assert r.ok and "done: short task" in json.dumps(r.result), f"{r.status} {r.error} {r.result}"
    r = fleet.op.send("srop", {"action": "status"}, timeout=5)
    assert r.ok and r.responder_id == "srop", f"{r.status} {r.error} {r.result}"


def test_their_signed_resume_clears_our_mesh_robot_and_a_ros_robot(fleet, resume_key):
    """Their e-stop latches ours with their estop_id; their Ed25519 resume (their Mesh.resume,
    envelope on strands/safety/resume with SourceInfo) clears our mesh robot and the ROS robot
    behind our bridge (the same peer core verifies on both transports)."""
    with our_two_robots(fleet, "bridge_r") as (ourarm, rosarm_id, node, _ros):
        fleet.their_peers_see("ourarm", rosarm_id)

        fleet.theirs.call("estop", wait=20, **{"from": "srop"})
        epoch = wait_for(lambda: [e for e in fleet.tap.estops if e[1].get("peer_id") == "srop"], 5,
                         what="their envelope")[0][1]["estop_id"]
        for p in ("ourarm", rosarm_id):
            wait_for(lambda p=p: (status(fleet.op, p).get("lockout") or {}).get("epoch") == epoch, 5,
                     interval=0.05, what=f"{p} locked out with their epoch")

        res = fleet.theirs.call("resume", **{"from": "srop", "seed": resume_key[1], "targets": ["ourarm", rosarm_id]})
        assert res["epoch"] == epoch and res["result"] == {"status": "ok"}, res
        t_sent = res["t_return"]
        wait_for(lambda: not ourarm.locked_out and not node.robot.locked_out, 5, interval=0.01,
                 what="both our robots resumed by their assertion")
        cleared = time.time() - t_sent
        for p in ("ourarm", rosarm_id):
            assert not status(fleet.op, p)["locked_out"]
        assert fleet.theirs.call("lockouts")["srop"]["locked"] is False
        for p in ("ourarm", rosarm_id):  # motion is no longer refused for the lockout
            r = fleet.op.send(p, {"action": "execute", "instruction": "home"}, timeout=10)
            assert "locked out" not in (r.error or ""), f"{p}: {r.status} {r.error} {r.result}"
        print(f"\ntheir signed resume: both our robots clear within {cleared * 1000:.0f} ms of their call returning")


def test_our_signed_resume_clears_their_peers(fleet, resume_key):
    """Our e-stop locks their peers with our estop_id; our Ed25519 assertion (their envelope
    form, SourceInfo zid == source_zid, at least 0.5 s after the e-stop) clears them, and their
    safety events are read back as their answers."""
    from strands_mesh_ros.drivers.mock import MockDriver

    op = fleet.mesh("op_ed", resume_signing_key=resume_key[0])
    ourarm = fleet.mesh("ourarm", robot=MockDriver("ourarm")).core.robot
    op.wait_for_peer("ourarm", 10)
    op.wait_for_peer("srarm", 15)
    op.wait_for_peer("srop", 15)
    report = op.emergency_stop("interop drill", timeout=2.0)
    assert not report.not_acked, report.to_dict()
    locks = wait_for(lambda: (lk := fleet.theirs.call("lockouts")) and all(v["locked"] for v in lk.values()) and lk,
                     5, interval=0.05, what="their peers locked out")
    assert {v["epoch"] for v in locks.values()} == {op.core.last_epoch} and ourarm.locked_out

    t0 = time.monotonic()
    out = op.resume(targets=["srarm", "srop", "ourarm"], timeout=3.0)
    took = time.monotonic() - t0
    locks = wait_for(lambda: (lk := fleet.theirs.call("lockouts")) and not any(v["locked"] for v in lk.values()) and lk,
                     5, interval=0.05, what="their peers resumed")
    assert not ourarm.locked_out
    assert out == {p: {"accepted": True, "detail": ""} for p in ("srarm", "srop", "ourarm")}, out
    print(f"\nour signed resume: their peers and ours cleared, answers in {took * 1000:.0f} ms "
          f"(including the 0.5 s safety spacing after the e-stop): {out}")


def test_our_cli_signed_resume_asks_the_epoch_and_clears_both_sides(fleet, resume_key, tmp_path):
    """`strands-mesh resume` with an Ed25519 key file and no --epoch: the epoch comes from our
    robot's status; their peers (whose status names none) are named in the same assertion."""
    from cryptography.hazmat.primitives import serialization

    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.robot.resume_ed25519 import PRIVATE_KEY_FILE_ENV

    from strands_mesh_ros.mesh.safety_path import SAFETY_SPACING

    ourarm = fleet.mesh("ourarm", robot=MockDriver("ourarm")).core.robot
    fleet.op.wait_for_peer("ourarm", 10)
    t_estop = time.monotonic()
    report = fleet.op.emergency_stop("interop drill", timeout=2.0)
    assert not report.not_acked, report.to_dict()
    wait_for(lambda: all(v["locked"] for v in fleet.theirs.call("lockouts").values()), 5, interval=0.05,
             what="their peers locked out")
    # The CLI reaches their process over the same Zenoh link as op's e-stop (through this
    # process's session), and their receiver drops a second safety message on one link within
    # 0.5 s (a rate rule, docs/interop.md): a CLI that starts fast must not resume inside it.
    # Not a synchronisation wait: the window of their limiter, as our own sender keeps it.
    threading.Event().wait(max(0.0, t_estop + SAFETY_SPACING - time.monotonic()))
    pem = tmp_path / "resume.pem"
    pem.write_bytes(resume_key[0].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRANDS_MESH_RESUME_KEY")}
    env.update({PRIVATE_KEY_FILE_ENV: str(pem), "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "resume", "--json", "--timeout", "3",
                        "--target", "ourarm", "--target", "srarm", "--target", "srop", "--prefix", "strands",
                        "--namespace", fleet.ns, "--connect", fleet.endpoint],
                       capture_output=True, text=True, timeout=60, env=env, check=False)
    took = time.monotonic() - t0
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    answers = json.loads(r.stdout)
    assert answers == {p: {"accepted": True, "detail": ""} for p in ("ourarm", "srarm", "srop")}, answers
    assert not ourarm.locked_out and not any(v["locked"] for v in fleet.theirs.call("lockouts").values())
    print(f"\nCLI signed resume: {took:.2f} s from spawning the CLI (1.2 s discovery included): {answers}")


def test_their_resume_throttle_matches_ours(fleet, resume_key, tmp_path):
    """What 0.5.3 does on repeated bad resume signatures (docs/safety.md, resume brute-force
    throttle): after 5 bad assertions, even a good one is refused. Ours refuses the same
    sequence the same way (test_resume_throttle.py), with the reason on the wire."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from strands_mesh_ros.robot import resume_ed25519 as ed

    report = fleet.op.emergency_stop("throttle drill", timeout=2.0)
    assert not report.not_acked, report.to_dict()
    wait_for(lambda: fleet.theirs.call("lockouts")["srarm"]["locked"], 5, interval=0.05, what="srarm locked out")
    epoch = fleet.op.core.last_epoch
    forger = Ed25519PrivateKey.generate()

    def resume_with(key) -> dict:
        r = fleet.op.send("srarm", {"action": "resume", "assertion": ed.sign_assertion(key, epoch, ["srarm"])},
                          timeout=5)
        assert r.status == "done", f"{r.status} {r.error}"
        return r.result

    for _ in range(5):
        assert resume_with(forger) == {"status": "error", "error": "resume rejected"}
    assert resume_with(resume_key[0]) == {"status": "error", "error": "resume rejected"}  # throttled
    assert fleet.theirs.call("lockouts")["srarm"]["locked"]
    # the reasons stay in their local audit log (the wire answer is generic by design)
    lines = [json.loads(x) for x in (tmp_path / "their_home" / "mesh_audit.jsonl").read_text().splitlines()]
    reasons = [e["payload"].get("reason") for e in lines if e.get("event") == "resume_denied"
               and e["payload"].get("reason")]
    assert reasons == ["assertion signature does not verify"] * 5 + ["resume rate-limited (brute-force throttle)"]
