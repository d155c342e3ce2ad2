"""The wire contract as code: keys, peer ids, payload validation (pure, no transport)."""

import json
import threading

import pytest
from helpers import wait_for

from strands_mesh_ros.contract import (
    CommandEnvelope, ContractError, InvalidPeerId, KeySpace, Presence, Response, check_peer_id, decode,
    make_presence, new_turn_id,
)
from strands_mesh_ros.contract.payloads import MAX_COMMAND_BYTES


def test_import_is_light():
    import subprocess
    import sys

    code = "import strands_mesh_ros, sys; from strands_mesh_ros import contract; " \
           "print(sorted(m for m in ('zenoh', 'rclpy', 'mujoco') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("bad", ["", "a/b", "x*", "$x", "a#", "q?", "a b", "x" * 65, "safety", "broadcast", 7, None])
def test_bad_peer_ids_are_refused_with_a_clear_error(bad):
    with pytest.raises(InvalidPeerId) as exc:
        check_peer_id(bad)
    assert "peer id" in str(exc.value)


@pytest.mark.parametrize("good", ["a", "arm1", "ARM_1-b", "x" * 64])
def test_good_peer_ids(good):
    assert check_peer_id(good) == good


def test_keys_round_trip():
    k = KeySpace("strands")
    assert k.presence("arm1") == "strands/arm1/presence"
    assert k.cmd("arm1") == "strands/arm1/cmd"
    assert k.broadcast == "strands/broadcast"
    assert k.response("op", "arm1", "abc") == "strands/op/response/arm1/abc"
    assert k.estop == "strands/safety/estop"
    assert k.estop_ack("op", "arm1") == "strands/safety/estop/ack/op/arm1"
    p = k.parse("strands/op/response/arm1/abc")
    assert (p.kind, p.peer_id, p.responder_id, p.turn_id) == ("response", "op", "arm1", "abc")
    short = k.parse("strands/op/response/abc")  # the seed's shorter form
    assert (short.kind, short.peer_id, short.responder_id, short.turn_id) == ("response", "op", None, "abc")
    assert k.parse("strands/safety/estop/ack/op/arm1").kind == "estop_ack"
    assert k.parse("strands/arm1/camera/wrist").name == "wrist"
    with pytest.raises(ValueError, match="not under prefix"):
        k.parse("other/arm1/cmd")
    with pytest.raises(ValueError, match="not a contract key"):
        k.parse("strands/arm1/bogus")


def test_prefix_is_configurable_and_validated():
    assert KeySpace("fleet/a").presence("r") == "fleet/a/r/presence"
    for bad in ["", "a/*", "a//b", "/a"]:
        with pytest.raises(ValueError):
            KeySpace(bad)


def test_presence_accepts_strands_robots_form():
    # strands-robots sends robot_id (no peer_id) and its own fields.
    raw = {"robot_id": "so100", "robot_type": "so100", "hostname": "h", "timestamp": 1.0, "status": "idle"}
    pr = decode(Presence, json.dumps(raw).encode())
    assert pr.id == "so100" and pr.peer_id == "so100"
    assert pr.model_extra["status"] == "idle"  # unknown fields are kept
    with pytest.raises(ContractError, match="differ"):
        decode(Presence, json.dumps({**raw, "peer_id": "other"}).encode())


def test_presence_wire_form_puts_the_kind_in_robot_type_and_keeps_the_model():
    pr = make_presence("arm1", robot_type="arm6", peer_type="sim")
    doc = json.loads(pr.to_json())
    # strands-robots 0.5.3 shows robot_type as the peer's type: the kind goes there, the model in `model`
    assert (doc["robot_type"], doc["model"], doc["peer_type"]) == ("sim", "arm6", "sim")
    back = decode(Presence, pr.to_json())
    assert (back.robot_type, back.peer_type) == ("arm6", "sim")
    # theirs: no peer_type, robot_type is the kind
    theirs = decode(Presence, json.dumps({"robot_id": "srop", "robot_type": "agent", "hostname": "h",
                                          "timestamp": 1.0}).encode())
    assert (theirs.peer_type, theirs.robot_type) == ("agent", "agent")
    # an older peer of ours: robot_type is the model, peer_type given
    older = decode(Presence, json.dumps({"robot_id": "b1", "peer_id": "b1", "robot_type": "diffbot",
                                         "peer_type": "sim", "timestamp": 1.0}).encode())
    assert (older.peer_type, older.robot_type) == ("sim", "diffbot")


@pytest.mark.parametrize("result, failed", [
    ({"ok": True, "stopped": []}, False), ({"skill": "home", "result": {}}, False), (None, False),
    ({"ok": False, "error": "stop_task failed"}, True), ({"error": "motion gate closed"}, True),
    ({"status": "error", "content": [{"text": "nope"}]}, True),
])
def test_a_done_answer_whose_result_reports_a_failure_is_a_failure(result, failed):
    resp = Response(responder_id="sr", turn_id="t1", result=result)
    assert resp.ok and (resp.failure() is not None) == failed
    assert Response(responder_id="sr", turn_id="t1", type="error", status="refused", error="locked").failure() == "locked"


def test_presence_freshness_window():
    pr = make_presence("a", robot_type="x", peer_type="sim")
    assert pr.is_fresh()
    assert not pr.is_fresh(now=pr.timestamp + 61)
    assert not pr.is_fresh(now=pr.timestamp - 6)
    doc = json.loads(pr.to_json())
    assert doc["robot_id"] == doc["peer_id"] == "a" and doc["schema"] == "strands-mesh/1"


def test_response_derives_status_from_type():
    r = decode(Response, b'{"type": "error", "responder_id": "a", "turn_id": "t", "error": "x"}')
    assert r.status == "error" and not r.ok


@pytest.mark.parametrize(
    "payload, needle",
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "malformed JSON"),
        (json.dumps({"sender_id": "a/b", "turn_id": "t", "command": {}}).encode(), "sender_id"),
        (json.dumps({"sender_id": "a", "turn_id": "t", "command": "status"}).encode(), "command"),
    ],
)
def test_bad_commands_name_the_problem(payload, needle):
    with pytest.raises(ContractError) as exc:
        decode(CommandEnvelope, payload, MAX_COMMAND_BYTES)
    assert needle in str(exc.value)


def test_oversize_command_keeps_sender_for_the_error_reply():
    env = {"sender_id": "op", "turn_id": "t1", "command": {"action": "execute", "instruction": "x" * 20000}}
    with pytest.raises(ContractError) as exc:
        decode(CommandEnvelope, json.dumps(env).encode(), MAX_COMMAND_BYTES)
    assert "exceeds the 16384-byte limit" in str(exc.value)
    assert (exc.value.sender_id, exc.value.turn_id) == ("op", "t1")


@pytest.mark.parametrize(
    "command, needle",
    [
        ({"action": "fly"}, "unknown action 'fly'"),
        ({}, "no 'action'"),
        ({"action": "execute"}, "instruction"),
        ({"action": "execute", "instruction": 3}, "instruction"),
        ({"action": "skill", "args": {}}, "name"),
        ({"action": "skill", "name": "x", "args": [1]}, "args"),
    ],
)
def test_actions_are_validated(command, needle):
    env = CommandEnvelope(sender_id="op", turn_id=new_turn_id(), command=command)
    with pytest.raises(ContractError) as exc:
        env.action()
    assert needle in str(exc.value)


def test_command_json_is_a_valid_envelope_and_refuses_what_json_cannot_carry():
    from strands_mesh_ros.contract.payloads import CommandEnvelope, command_json, decode

    env = decode(CommandEnvelope, command_json("op", "t1", {"action": "skill", "name": "wave", "args": {"n": 2}}))
    assert (env.sender_id, env.turn_id, env.command["args"]) == ("op", "t1", {"n": 2})
    assert env.reply_to is None
    assert decode(CommandEnvelope, command_json("op", "t2", {"action": "status"}, reply_to="P/op/x")).reply_to == "P/op/x"
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        command_json("op", "t3", {"action": "skill", "args": {"x": float("nan")}})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        command_json("op", "t4", {"action": "skill", "args": {"x": {1, 2}}})


def test_audit_log_keeps_event_order_and_writes_queued_lines_on_close(tmp_path):
    from strands_mesh_ros.robot.safety import AuditLog

    audit = AuditLog("arm1", tmp_path)
    audit.write("command", 1.0, sync=False, n=1)
    audit.write("command", 2.0, sync=False, n=2)
    audit.write("estop_received", 3.0, issuer="op")  # a safety line: written before write() returns
    events = [json.loads(line)["event"] for line in audit.path.read_text().splitlines()]
    assert events == ["command", "command", "estop_received"]  # queued routine lines first: file order is event order
    audit.write("command", 4.0, sync=False, n=3)
    audit.close()
    lines = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert [(x["event"], x.get("n")) for x in lines] == [("command", 1), ("command", 2), ("estop_received", None),
                                                         ("command", 3)]


def test_audit_lines_are_whole_json_lines_whatever_the_fields_hold(tmp_path):
    """Hostile or odd values (an e-stop's 2**70 seq, non-ASCII, a newline in a reason, a path, an
    object) still make one JSON line each, and a second log on the same file (the CLI's shared
    operator file) appends after it."""
    from pathlib import Path

    from strands_mesh_ros.robot.safety import AuditLog

    audit = AuditLog("arm1", tmp_path, name="shared")
    other = AuditLog("cli-x", tmp_path, name="shared")
    try:
        audit.write("estop_received", 5.0, issuer="op", seq=2 ** 70, reason="stop\nnow é", where=Path("/x"),
                    thing=object())
        other.write("estop_issued", 6.0, seq=-5)
        audit.write("command", 7.0, sync=False, n=1)
    finally:
        audit.close()
        other.close()
    lines = [json.loads(line) for line in audit.path.read_bytes().decode("utf-8").splitlines()]
    assert [(x["peer"], x["event"]) for x in lines] == [("arm1", "estop_received"), ("cli-x", "estop_issued"),
                                                         ("arm1", "command")]
    first = lines[0]
    assert first["seq"] == 2 ** 70 and first["reason"] == "stop\nnow é" and first["where"] == "/x"
    assert first["thing"].startswith("<object object") and first["ts"] == "1970-01-01T00:00:05.000Z"


def test_estop_ack_bytes_decode_to_the_ack_they_describe():
    from strands_mesh_ros.contract.payloads import EStopAck, estop_ack_json

    data = estop_ack_json("op", "arm1", 2 ** 63 + 5, 1795267031.654321, True, "replayed e-stop from op")
    ack = decode(EStopAck, data)
    assert (ack.issuer_id, ack.responder_id, ack.seq, ack.t, ack.halted, ack.detail) == (
        "op", "arm1", 2 ** 63 + 5, 1795267031.654321, True, "replayed e-stop from op")
    assert json.loads(data) == ack.model_dump()


def test_audit_writer_sleeps_while_idle_and_writes_routine_lines_in_batches(tmp_path):
    """The writer thread wakes only when routine lines are queued (a bridge runs one log per
    robot: idle writers waking 20 times a second cost its joint_states relay the GIL), and
    writes them within about one batch interval without any close."""
    from strands_mesh_ros.robot.safety import AUDIT_BATCH_INTERVAL, AuditLog

    audit = AuditLog("arm1", tmp_path)
    try:
        tid = audit._writer.native_id

        def switches() -> int:  # the writer thread's voluntary context switches (it sleeping, waking)
            with open(f"/proc/self/task/{tid}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))

        before = switches()
        idle = threading.Event()
        idle.wait(10 * AUDIT_BATCH_INTERVAL)  # a bounded window: absence of wake-ups is what is asserted
        assert switches() - before <= 1, "the idle writer woke up"
        for n in range(3):
            audit.write("command", float(n), sync=False, n=n)
        wait_for(lambda: audit.path.read_text().count("\n") == 3, 5, interval=0.01, what="the queued lines")
        written = switches()
        idle.wait(10 * AUDIT_BATCH_INTERVAL)
        assert switches() - written <= 1, "the writer kept waking after its batch"
        audit.write("command", 9.0, sync=False, n=9)
        wait_for(lambda: audit.path.read_text().count("\n") == 4, 5, interval=0.01, what="a line after idling")
    finally:
        audit.close()


def test_state_json_is_a_valid_state_and_refuses_nan():
    from strands_mesh_ros.contract.payloads import State, decode, state_json

    st = decode(State, state_json("arm1", 12.5, {"j1": (0.25, -1.0, 3.0)}, {"status": "idle"}, sim_time=2.0))
    assert (st.peer_id, st.t, st.sim_time, st.task) == ("arm1", 12.5, 2.0, {"status": "idle"})
    assert (st.joints["j1"].position, st.joints["j1"].velocity, st.joints["j1"].effort) == (0.25, -1.0, 3.0)
    assert decode(State, state_json("arm1", 1.0, {}, {})).sim_time is None
    with pytest.raises(ValueError, match="state of arm1 is not JSON-serialisable"):
        state_json("arm1", 1.0, {"j1": (float("nan"), 0.0, 0.0)}, {})
