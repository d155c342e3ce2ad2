"""Signed wire identity on a secured (mutual TLS) fleet, against the REAL strands-robots 0.5.3
(issue 9, item 6): both directions.

A router of ours with TLS + mTLS (test/secure_router_proc.py, no ACL: the ACL is
test_security.py's subject) on a free port; certificates made here (RSA, their
``rsa-pss-sha256``). Our peers are its clients through their json5 (the certificate there is
also what they sign with; auto = signatures required). Their process (test/interop_peer.py)
runs with ``STRANDS_MESH_AUTH_MODE=mtls``, the ``srop`` certificate and
``STRANDS_MESH_REQUIRE_SIGNED_IDENTITY=1``; its peers are ``srop`` and ``srop__arm`` (the one
certificate speaks for its CN and ``<CN>__<robot>``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from helpers import free_port, make_pki, python_proc, wait_for
from test_interop import INTEROP_PYTHON, SKIP_REASON, TheirProcess

pytestmark = [pytest.mark.skipif(not INTEROP_PYTHON, reason=SKIP_REASON), pytest.mark.timeout(120)]

HERE = os.path.dirname(os.path.abspath(__file__))


class SignedFleet:
    def __init__(self, tmp_path) -> None:
        from strands_mesh_ros.mesh.config import MeshConfig
        from strands_mesh_ros.security import tls_config, write_json5

        self.pki = tmp_path / "pki"
        self.pki.mkdir()
        make_pki(self.pki, ["op", "ourarm", "srop", "eve"])
        self.ns = "signed" + uuid.uuid4().hex[:10]
        self.port = free_port()
        endpoint = f"tls/127.0.0.1:{self.port}"
        ca = self.pki / "ca.pem"
        write_json5(tmp_path / "router.json5", tls_config("router", ca, self.pki / "router.pem",
                                                           self.pki / "router.key", listen=[endpoint]))
        self.audit = tmp_path / "audit"
        self.ours: list = []
        self.sessions: list = []
        self.theirs = None
        self.router = python_proc(os.path.join(HERE, "secure_router_proc.py"), str(tmp_path / "router.json5")).ready()
        self.config = {}
        for cn in ("op", "ourarm", "eve"):
            write_json5(tmp_path / f"{cn}.json5", tls_config("client", ca, self.pki / f"{cn}.pem",
                                                              self.pki / f"{cn}.key", connect=[endpoint]))
            self.config[cn] = MeshConfig(prefix="strands", namespace=self.ns, config_file=str(tmp_path / f"{cn}.json5"))
        home = tmp_path / "their_home"
        home.mkdir()
        self.theirs = TheirProcess({
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONUNBUFFERED": "1",
            "STRANDS_MESH_AUTH_MODE": "mtls", "STRANDS_MESH_TLS_CA": str(ca),
            "STRANDS_MESH_TLS_CERT": str(self.pki / "srop.pem"), "STRANDS_MESH_TLS_KEY": str(self.pki / "srop.key"),
            "STRANDS_MESH_REQUIRE_SIGNED_IDENTITY": "1",
            # their session is a client of our router, whose configuration is the place for an ACL
            "STRANDS_MESH_ACCEPT_PERMISSIVE_ACL": "1",
            "STRANDS_MESH_PORT": str(self.port), "STRANDS_MESH_NAMESPACE": self.ns,
            "STRANDS_MESH_MULTICAST": "false", "STRANDS_MESH_AUDIT_DIR": str(home),
            "INTEROP_ARM_ID": "srop__arm", "INTEROP_OP_ID": "srop",
            "STRANDS_ROBOT_COMMAND_ALLOW": "execute@op,start@op",
        })
        self.theirs.wait_ready(45)

    def mesh(self, cn: str, robot=None):
        from strands_mesh_ros.mesh.mesh import Mesh

        m = Mesh(cn, robot=robot, config=self.config[cn], audit_dir=str(self.audit), check_unique=False).start()
        self.ours.append(m)
        return m

    def raw(self, cn: str):
        """A raw Zenoh client session with ``cn``'s certificate, in the fleet's namespace."""
        import zenoh

        s = zenoh.open(self.config[cn].zenoh_config())
        self.sessions.append(s)
        return s

    def their_peers_see(self, *ids: str, who: str = "srop") -> None:
        wait_for(lambda: set(ids) <= set(self.theirs.call("peers")[who]), 20, interval=0.2,
                 what=f"{who} (theirs, signatures required) admitting {ids}")

    def audit_events(self, peer: str) -> list[dict]:
        path = self.audit / f"audit-{peer}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def close(self) -> None:
        if self.theirs is not None:
            self.theirs.close()
        for s in self.sessions:
            s.close()
        for m in reversed(self.ours):
            m.stop()
        self.router.close()


@pytest.fixture
def signed(tmp_path, monkeypatch):
    monkeypatch.setenv("STRANDS_MESH_PREFIX", "strands")
    for var in ("STRANDS_MESH_REQUIRE_SIGNED_IDENTITY", "STRANDS_MESH_TLS_CA", "STRANDS_MESH_TLS_CERT",
                "STRANDS_MESH_TLS_KEY"):
        monkeypatch.delenv(var, raising=False)
    # Our peers require signatures only when told (their "auto" requires them under mTLS; ours
    # checks what is signed and requires nothing, for a bridge's ROS robots): here, told.
    monkeypatch.setenv("STRANDS_MESH_REQUIRE_SIGNED_IDENTITY", "1")
    f = SignedFleet(tmp_path)
    try:
        yield f
    finally:
        f.close()


def test_their_peer_requiring_signatures_accepts_our_presence_answers_and_commands(signed):
    from strands_mesh_ros.drivers.mock import MockDriver

    ourarm = signed.mesh("ourarm", robot=MockDriver("ourarm"))
    op = signed.mesh("op")
    assert ourarm._wire.identity.cn == "ourarm" and ourarm._wire.identity.alg == "rsa-pss-sha256"
    assert op._wire.trust.required  # STRANDS_MESH_REQUIRE_SIGNED_IDENTITY=1
    # presence: with STRANDS_MESH_REQUIRE_SIGNED_IDENTITY=1 an unsigned one is dropped
    signed.their_peers_see("ourarm", "op")
    signed.their_peers_see("op", who="srop__arm")
    # (it is in force: eve's unsigned presence is not admitted, her signed one put after it is)
    from strands_mesh_ros.contract.payloads import Presence
    from strands_mesh_ros.robot.wire_identity import WireIdentity

    eve, eve_id = signed.raw("eve"), WireIdentity.from_files(signed.pki / "eve.pem", signed.pki / "eve.key")

    def beat() -> bool:
        for pid, sign in (("eve", False), ("eve__x", True)):
            body = json.loads(Presence(robot_id=pid, peer_id=pid, robot_type="agent", peer_type="agent",
                                       timestamp=time.time()).to_json())
            eve.put(f"strands/{pid}/presence", json.dumps(eve_id.sign(body) if sign else body).encode())
        return "eve__x" in signed.theirs.call("peers")["srop"]

    wait_for(beat, 20, interval=0.3, what="their srop admitting eve's signed presence")
    assert "eve" not in signed.theirs.call("peers")["srop"]
    # answers: theirs -> ours; they verify our signature, CN and nonce before taking it
    signed.theirs.wait_answering("srop", "ourarm")
    res = signed.theirs.call("send", **{"from": "srop", "to": "ourarm", "cmd": {"action": "status"}, "timeout": 10})
    assert res.get("responder_id") == "ourarm" and res["result"]["robot_id"] == "ourarm", res
    # commands: ours -> their hardware robot; its motion gate attributes `start` to op by signature
    op.wait_for_peer("srop__arm", 15)
    r = op.send("srop__arm", {"action": "start", "instruction": "long task", "policy_provider": "mock",
                              "duration": 30.0}, timeout=10)
    assert r.ok and not (isinstance(r.result, dict) and r.result.get("error")), f"{r.status} {r.error} {r.result}"
    wait_for(lambda: signed.theirs.call("arm")["running"] == "long task", 5, interval=0.05, what="their task")
    # our e-stop: its `stop` broadcast (signed, target_id <broadcast>) and our report
    t0 = time.time()
    report = op.emergency_stop("signed drill", timeout=3.0)
    assert "srop__arm" in report.stopped and not report.not_acked, report.to_dict()
    arm = signed.theirs.task_stopped()
    print(f"\nsigned fleet, our e-stop: their task stopped {(arm['history'][-1]['t_end'] - t0) * 1000:.1f} ms "
          f"after the call; report in {report.elapsed * 1000:.0f} ms")


def test_we_verify_theirs_and_refuse_unsigned_or_badly_signed_messages(signed):
    from strands_mesh_ros.contract.payloads import CommandEnvelope, new_turn_id
    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.robot.wire_identity import WireIdentity

    ourarm = signed.mesh("ourarm", robot=MockDriver("ourarm"))
    op = signed.mesh("op")
    # their signed presence and answers pass our check (required: auto under mTLS)
    op.wait_for_peer("srop", 20)
    op.wait_for_peer("srop__arm", 20)
    r = op.send("srop", {"action": "status"}, timeout=10)
    assert r.ok and r.responder_id == "srop", f"{r.status} {r.error}"

    # eve holds a fleet certificate but does not sign, or signs for someone she is not
    eve = signed.raw("eve")
    answers: dict[str, dict] = {}

    def on_answer(sample) -> None:
        a = json.loads(bytes(sample.payload.to_bytes()))
        answers[a["turn_id"]] = a

    subs = [eve.declare_subscriber(f"strands/{who}/response/**", on_answer) for who in ("eve", "op")]
    eve_id = WireIdentity.from_files(signed.pki / "eve.pem", signed.pki / "eve.key")

    def command(sender: str, action: dict, sign: bool, target: str = "ourarm") -> str:
        env = CommandEnvelope(sender_id=sender, turn_id=new_turn_id(), command=action)
        body = json.loads(env.to_json())
        if sign:
            body["target_id"] = target
        eve.put("strands/ourarm/cmd", json.dumps(eve_id.sign(body) if sign else body).encode())
        return env.turn_id

    move = {"action": "execute", "instruction": "move joints to 0.3 0 0 0 0 0 in 0.1 s"}
    cases = [("eve", False, "ourarm", "carries no signature"), ("op", True, "ourarm", "does not speak for 'op'"),
             ("eve", True, "someone", "is for 'someone'")]
    turns: dict[str, str] = {}  # want -> turn of its latest attempt

    def all_answered() -> bool:  # eve's response subscription may reach our robot after her first puts
        for sender, sign, target, want in cases:
            if turns.get(want) not in answers:
                turns[want] = command(sender, move, sign, target)
        return all(t in answers for t in turns.values())

    wait_for(all_answered, 20, interval=0.5, what="our robot's refusals")
    for want, turn in turns.items():
        a = answers[turn]
        assert a["type"] == "error" and want in a["error"] and a["error"].startswith("refused:"), a
    assert not any(ourarm.core.robot.driver.observe().position)  # nothing moved
    refused = [e for e in signed.audit_events("ourarm") if e.get("event") == "identity_refused"]
    assert len(refused) >= 3 and all(e.get("reason") for e in refused), refused

    # their signed command passes our check and runs (a motion: not one of the never-refused actions)
    signed.their_peers_see("ourarm")
    res = signed.theirs.call("tell", wait=40, **{"from": "srop", "to": "ourarm", "instruction": move["instruction"],
                                                 "kw": {"policy_provider": "mock", "duration": 5.0}})
    assert res.get("responder_id") == "ourarm" and "error" not in res, res
    assert ourarm.core.robot.driver.observe().position[0] == pytest.approx(0.3)

    # an unsigned stop is never refused
    turn = command("eve", {"action": "stop"}, sign=False)
    a = wait_for(lambda: answers.get(turn), 10, what="answer to an unsigned stop")
    assert a["type"] == "response", a

    # presence: an unsigned one and one signed by a CN that does not speak for it are not admitted;
    # eve's own signed presence, put after them on the same link, is the barrier
    from strands_mesh_ros.contract.payloads import Presence

    def presence(pid: str) -> dict:
        return json.loads(Presence(robot_id=pid, peer_id=pid, robot_type="agent", peer_type="agent",
                                   hostname="h", timestamp=time.time()).to_json())

    for _ in range(3):
        eve.put("strands/ghost1/presence", json.dumps(presence("ghost1")).encode())
        eve.put("strands/ghost2/presence", json.dumps(eve_id.sign(presence("ghost2"))).encode())
        eve.put("strands/eve/presence", json.dumps(eve_id.sign(presence("eve"))).encode())
    op.wait_for_peer("eve", 10)
    assert not {"ghost1", "ghost2"} & set(op.peers), sorted(op.peers)
    # ... nor as answers to a presence query (Mesh.refresh_peers): the same checks as a beat
    asked: list[str] = []

    def answer(query, pid: str, body: dict) -> None:
        asked.append(pid)
        query.reply(f"strands/{pid}/presence", json.dumps(body).encode())

    subs += [eve.declare_queryable("strands/ghost3/presence", lambda q: answer(q, "ghost3", presence("ghost3"))),
             eve.declare_queryable("strands/ghost4/presence",
                                   lambda q: answer(q, "ghost4", eve_id.sign(presence("ghost4"))))]
    wait_for(lambda: op.refresh_peers(timeout=2.0) is not None and {"ghost3", "ghost4"} <= set(asked), 10,
             interval=0.5, what="eve's queryables asked")
    assert not {"ghost3", "ghost4"} & set(op.peers), sorted(op.peers)
    # ... nor by `strands-mesh peers` (op's certificate; it asks the same query)
    listing = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "peers", "--config",
                              signed.config["op"].config_file, "--namespace", signed.ns, "--json"],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    listed = {p["peer_id"] for p in json.loads(listing.stdout)}
    assert {"op", "ourarm"} <= listed and not {"ghost3", "ghost4"} & listed, sorted(listed)
    for s in subs:
        s.undeclare()
