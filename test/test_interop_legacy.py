"""The older strands-robots wire forms (the 2026-08 code), from the fixtures in
test/data/strands_robots_2026_08/ (its README says where each form comes from): accepted where
it is safe, refused with a clear reason where not (issue 9, item 7)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from helpers import wait_for
from strands_mesh_ros.contract.keys import KeySpace
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.robot.peer_core import OVERRIDE_CODE_RETIRED, PeerCore
from strands_mesh_ros.robot.runtime import Robot
from strands_mesh_ros.robot.safety import AuditLog

DATA = Path(__file__).resolve().parent / "data" / "strands_robots_2026_08"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def make_core(tmp_path, peer: str = "arm1") -> PeerCore:
    return PeerCore(peer, Robot(MockDriver(peer)), KeySpace("strands"), audit=AuditLog(peer, tmp_path))


def audit(core: PeerCore) -> list[dict]:
    core.audit.close()
    return [json.loads(x) for x in core.audit.path.read_text().splitlines()]


def test_an_estop_without_seq_or_estop_id_latches_and_is_acked(tmp_path):
    core = make_core(tmp_path)
    payload = fixture("estop_no_estop_id.json")
    sent = json.loads(payload)["t"]
    core.halt()
    ack, env = core.estop_received(payload, sent + 3.0)  # it arrives ~3 s old, as theirs did
    assert env is not None and env.peer_id == "srop" and env.estop_id is None
    assert core.robot.locked_out and core.robot.lockout["issuer"] == "srop"
    assert core.robot.lockout.get("epoch") is None  # no estop_id: the lockout has no epoch
    assert ack.key == "strands/safety/estop/ack/srop/arm1"
    body = json.loads(ack.data)
    assert body["halted"] is True and body["responder_id"] == "arm1", body
    assert [e for e in audit(core) if e["event"] == "estop_received"][0]["estop_id"] is None


def test_override_code_resume_command_is_refused_by_name_and_keeps_the_lockout(tmp_path):
    core = make_core(tmp_path)
    core.robot.emergency_stop("srop", "drill")
    answers: list = []
    core.handle_command(fixture("resume_override_code_command.json"), answers.append)
    wait_for(lambda: answers, 5, what="the answer to the override-code resume")
    resp = answers[0].response
    assert resp.status == "refused" and "override codes are retired" in resp.error, resp
    assert answers[0].key == "strands/srop/response/arm1/9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
    assert core.robot.locked_out
    line = [e for e in audit(core) if e["event"] == "resume_command"][0]
    assert line["scheme"] == "override_code" and not line["accepted"]


def test_override_code_resume_envelope_is_refused_and_acked(tmp_path):
    core = make_core(tmp_path)
    core.robot.emergency_stop("srop", "drill")
    ack, env = core.resume_received(fixture("resume_override_code_envelope.json"), time.time())
    assert env is None and core.robot.locked_out
    assert ack.key == "strands/safety/resume/ack/srop/arm1"
    body = json.loads(ack.data)
    assert body["accepted"] is False and body["detail"] == OVERRIDE_CODE_RETIRED
    assert [e for e in audit(core) if e["event"] == "resume_received"][0]["scheme"] == "override_code"


def test_override_code_attempts_count_toward_the_resume_throttle(tmp_path):
    core = make_core(tmp_path)
    core.robot.emergency_stop("srop", "drill")
    for _ in range(core.resume_throttle.max_fails):
        core.resume_received(fixture("resume_override_code_envelope.json"), time.time())
    ack, _ = core.resume_received(fixture("resume_override_code_envelope.json"), time.time())
    assert json.loads(ack.data)["detail"].startswith("resume throttled")


def test_an_answer_on_the_3_segment_key_is_taken_as_that_turns_answer(net):
    """Over real Zenoh: our operator sends to ``srarm``, a raw session answering as the 2026-08
    code did (the fixture's payload, on ``P/{sender}/response/{turn_id}``)."""
    import zenoh

    from strands_mesh_ros.contract.payloads import Presence
    from strands_mesh_ros.mesh.mesh import Mesh

    recorded = json.loads(fixture("response_3_segment.json"))
    assert len(recorded["key"].split("/")) == 4  # P / sender / response / turn
    op = Mesh("op", config=net.hub()).start()
    raw = zenoh.open(net.member().zenoh_config())
    stop = threading.Event()
    try:
        def answer(sample) -> None:
            cmd = json.loads(bytes(sample.payload.to_bytes()))
            reply = {**recorded["payload"], "turn_id": cmd["turn_id"], "timestamp": time.time()}
            raw.put(f"{net.prefix}/{cmd['sender_id']}/response/{cmd['turn_id']}", json.dumps(reply).encode())

        sub = raw.declare_subscriber(f"{net.prefix}/srarm/cmd", answer)

        def beat() -> None:  # srarm's presence, as their peers announce it
            while not stop.wait(0.5):
                raw.put(f"{net.prefix}/srarm/presence", Presence(robot_id="srarm", robot_type="robot",
                                                                  timestamp=time.time()).to_json())

        threading.Thread(target=beat, daemon=True).start()
        op.wait_for_peer("srarm", 10)
        r = op.send("srarm", {"action": "status"}, timeout=10)
        assert r.ok and r.responder_id == "srarm", f"{r.status} {r.error}"
        assert r.result == recorded["payload"]["result"]
        sub.undeclare()
    finally:
        stop.set()
        raw.close()
        op.stop()


@pytest.mark.parametrize("name", ["estop_no_estop_id.json", "response_3_segment.json",
                                  "resume_override_code_command.json", "resume_override_code_envelope.json"])
def test_fixtures_are_listed_in_their_readme(name):
    assert f"`{name}`" in (DATA / "README.md").read_text()
