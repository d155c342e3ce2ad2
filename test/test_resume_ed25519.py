"""strands-robots 0.5.3's Ed25519 resume assertion, verified by our peer core (both transports
share it) and issued by our Mesh (issue 9, item 4). Constructed and recorded assertions; no
sleeps (the mesh test uses wait_for and answers)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strands_mesh_ros.contract import CommandEnvelope, new_turn_id
from strands_mesh_ros.contract.keys import KeySpace
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.robot import resume_ed25519 as ed
from strands_mesh_ros.robot.peer_core import PeerCore
from strands_mesh_ros.robot.runtime import Robot
from strands_mesh_ros.robot.safety import AuditLog

EPOCH = "671d2e2eabca4dbdaa7b9342f2a492be"

# A recorded assertion in 0.5.3's exact form: signed by their resume_authority.sign_assertion
# (strands-robots 0.5.3, .venv-interop) with the private seed below, for the epoch above.
RECORDED_SEED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
RECORDED = {"v": 1, "epoch": EPOCH, "targets": ["arm1", "srarm"], "t": 1795693525.25,
            "nonce": "0123456789abcdef0123456789abcdef",
            "sig": "QHIqIk5g8-JeNksqIBJpNwMxcGaoBNrB8-C3FU9mubMP4Vb63MOb9eBwkqFo0SpDBZq844yZ8mCZCYEN6-uFCw=="}


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def make_core(tmp_path, key, *, peer="arm1", locked=True, epoch=EPOCH, keys=None):
    robot = Robot(MockDriver(peer))
    if locked:
        robot.emergency_stop("srop", "drill", epoch=epoch)
    audit = AuditLog(peer, tmp_path)
    core = PeerCore(peer, robot, KeySpace("strands"), audit=audit,
                    resume_public_keys=[key.public_key()] if keys is None else keys)
    return core


def envelope(assertion, issuer="srop", t=None):
    return ed.make_envelope(issuer, assertion, 3.2, source_zid="5b20b4574f582d6e9da2f06dc2276a78", t=t)


def audit_lines(core):
    core.audit.close()
    return [json.loads(x) for x in core.audit.path.read_text().splitlines()]


def ack_of(answer):
    return json.loads(answer.data)


def test_valid_envelope_clears_and_acks(tmp_path, key):
    core = make_core(tmp_path, key)
    a = ed.sign_assertion(key, EPOCH, ["arm1", "arm2"])
    ack, env = core.resume_received(envelope(a), time.time())
    assert not core.robot.locked_out
    assert env.peer_id == "srop" and ack.key == "strands/safety/resume/ack/srop/arm1"
    assert ack_of(ack) == {"responder_id": "arm1", "seq": env.seq, "accepted": True, "detail": ""}
    line = [x for x in audit_lines(core) if x["event"] == "resume_received"][-1]
    assert line["accepted"] and line["scheme"] == "ed25519" and line["epoch"] == EPOCH


def test_recorded_assertion_from_their_code(tmp_path, monkeypatch):
    """Bytes their sign_assertion produced verify here (same canonical JSON, same base64url)."""
    priv = Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(RECORDED_SEED + "="))
    monkeypatch.setenv(ed.PUBLIC_KEY_ENV, ed.public_key_text(priv).rstrip("="))  # padding optional
    robot = Robot(MockDriver("arm1"))
    robot.emergency_stop("srop", "drill", epoch=EPOCH)
    core = PeerCore("arm1", robot, KeySpace("strands"), audit=AuditLog("arm1", tmp_path))
    ok, detail = core.check_assertion(dict(RECORDED), RECORDED["t"] + 1.0)
    assert ok and detail == "resumed" and not robot.locked_out
    # and ours signs the same bytes for the same fields
    ours = ed.sign_assertion(priv, EPOCH, ["srarm", "arm1"], t=RECORDED["t"], nonce=RECORDED["nonce"])
    assert ours == RECORDED
    assert core.check_assertion(dict(RECORDED), RECORDED["t"] + 2.0) == (True, "not locked out: nothing to clear")


@pytest.mark.parametrize("case", ["bad_sig", "other_key", "wrong_epoch", "not_target", "stale", "future",
                                  "extra_key", "missing_key", "v2", "non_ascii_sig", "garbage_types"])
def test_refusals_name_why_and_keep_the_lockout(tmp_path, key, case):
    core = make_core(tmp_path, key)
    now = time.time()
    a = ed.sign_assertion(key, EPOCH, ["arm1"], t=now)
    want = {
        "bad_sig": "bad resume signature", "other_key": "bad resume signature",
        "wrong_epoch": "for another lockout", "not_target": "not a target", "stale": "stale resume assertion",
        "future": "stale resume assertion", "extra_key": "unexpected field", "missing_key": "missing nonce",
        "v2": "unsupported resume assertion version", "non_ascii_sig": "sig is not a base64url",
        "garbage_types": "malformed resume assertion",
    }[case]
    if case == "bad_sig":
        a["sig"] = ("A" if a["sig"][0] != "A" else "B") + a["sig"][1:]
    elif case == "other_key":
        a = ed.sign_assertion(Ed25519PrivateKey.generate(), EPOCH, ["arm1"], t=now)
    elif case == "wrong_epoch":
        a = ed.sign_assertion(key, uuid.uuid4().hex, ["arm1"], t=now)
    elif case == "not_target":
        a = ed.sign_assertion(key, EPOCH, ["arm2"], t=now)
    elif case == "stale":
        a = ed.sign_assertion(key, EPOCH, ["arm1"], t=now - 61)
    elif case == "future":
        a = ed.sign_assertion(key, EPOCH, ["arm1"], t=now + 6)
    elif case == "extra_key":
        a["operator"] = "mallory"
    elif case == "missing_key":
        del a["nonce"]
    elif case == "v2":
        a["v"] = 2
    elif case == "non_ascii_sig":
        a["sig"] = "é" * 86 + "=="
    elif case == "garbage_types":
        a.update(targets="arm1", t="now", epoch=["x"])
    # the envelope form: refused, audited, acked (no ack only for a non-target)
    ack, env = core.resume_received(envelope(a), now)
    assert core.robot.locked_out, case
    if case == "not_target":
        assert ack.key is None and env is not None
    else:
        body = ack_of(ack)
        assert body["accepted"] is False and want in body["detail"], body
    # the command form: refused with the reason
    reason = core.resume_command({"action": "resume", "assertion": a}, "srop")
    assert reason is not None and want in reason and core.robot.locked_out, reason
    lines = [x for x in audit_lines(core) if x["event"] in ("resume_received", "resume_command")]
    assert len(lines) == 2 and all(not x["accepted"] and want in x["detail"] for x in lines), lines


def test_replayed_nonce_refused(tmp_path, key):
    core = make_core(tmp_path, key)
    a = ed.sign_assertion(key, EPOCH, ["arm1"])
    ack, _ = core.resume_received(envelope(a), time.time())
    assert ack_of(ack)["accepted"] and not core.robot.locked_out
    core.robot.emergency_stop("srop", "again", epoch=EPOCH)  # same epoch latched again
    ack, _ = core.resume_received(envelope(a, t=time.time()), time.time())
    assert not ack_of(ack)["accepted"] and "replayed resume assertion" in ack_of(ack)["detail"]
    assert core.robot.locked_out
    assert "replayed" in core.resume_command({"action": "resume", "assertion": a}, "srop")


def test_nonce_memory_is_bounded_and_fails_closed(tmp_path, key, monkeypatch):
    monkeypatch.setattr(ed, "NONCE_MEMORY", 3)
    g = ed.AssertionGuard([key.public_key()])
    now = time.time()
    for _ in range(3):
        assert g.check(ed.sign_assertion(key, EPOCH, ["arm1"], t=now), "arm1", EPOCH, now) is None
    assert "too many" in g.check(ed.sign_assertion(key, EPOCH, ["arm1"], t=now), "arm1", EPOCH, now)
    assert len(g._nonces) == 3


def test_no_key_configured_refuses(tmp_path, key, monkeypatch):
    monkeypatch.delenv(ed.PUBLIC_KEY_ENV, raising=False)
    core = make_core(tmp_path, key, keys=[])
    ack, _ = core.resume_received(envelope(ed.sign_assertion(key, EPOCH, ["arm1"])), time.time())
    assert "STRANDS_MESH_RESUME_PUBLIC_KEY" in ack_of(ack)["detail"] and core.robot.locked_out


def test_lockout_without_epoch_is_refused(tmp_path, key):
    core = make_core(tmp_path, key, epoch=None)
    reason = core.resume_command({"action": "resume", "assertion": ed.sign_assertion(key, EPOCH, ["arm1"])}, "op")
    assert "no epoch" in reason and core.robot.locked_out


def test_not_locked_and_robotless_accept_without_clearing(tmp_path, key):
    core = make_core(tmp_path, key, locked=False)
    ok, detail = core.check_assertion(ed.sign_assertion(key, EPOCH, ["arm1"]), time.time())
    assert ok and "not locked out" in detail
    agent = PeerCore("srop2", None, KeySpace("strands"), audit=AuditLog("srop2", tmp_path),
                     resume_public_keys=[key.public_key()])
    ok, detail = agent.check_assertion(ed.sign_assertion(key, EPOCH, ["srop2"]), time.time())
    assert ok and "no actuators" in detail
    ok, detail = agent.check_assertion(ed.sign_assertion(key, EPOCH, ["other"]), time.time())
    assert not ok and detail == "not a target"


HOSTILE = [
    b"", b"\xff\xfe\x00garbage", b"[1,2]", b'{"assertion": 1}', b'{"peer_id": "s\xc3\xa9", "t": 1, "assertion": {}}',
    b'{"peer_id": "srop", "t": "x", "assertion": {}}', b'{"peer_id": "srop", "t": 1e400, "assertion": {}}',
    b'{"peer_id": "srop", "t": 1, "assertion": ' + b"[" * 100 + b"]" * 100 + b"}",
    json.dumps({"peer_id": "srop", "t": time.time(), "assertion": {"v": 1, "epoch": "\u00e9" * 32, "targets": ["arm1"],
                "t": 1, "nonce": "\u2603" * 32, "sig": "\u0000" * 88}}).encode(),
    json.dumps({"peer_id": "srop", "t": time.time(), "assertion": {"v": 1, "epoch": EPOCH, "targets": [["arm1"]],
                "t": 1e308, "nonce": "0" * 32, "sig": "A" * 86 + "=="}}).encode(),
    json.dumps({"peer_id": "srop", "t": time.time(), "assertion": {"v": 1, "epoch": EPOCH, "targets": ["arm1"],
                "t": time.time(), "nonce": "0" * 32, "sig": "A" * 86 + "=="}}).encode(),
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_payloads_never_raise_and_never_clear(tmp_path, key, payload):
    core = make_core(tmp_path, key)
    ack, _ = core.resume_received(payload, time.time())
    assert core.robot.locked_out
    if ack.key is not None:
        assert ack_of(ack)["accepted"] is False and ack_of(ack)["detail"]
    assert audit_lines(core)[-1]["event"] in ("resume_malformed", "resume_received")
    try:
        data = json.loads(payload)
    except ValueError:
        return
    if isinstance(data, dict):
        assert core.resume_command({"action": "resume", "assertion": data.get("assertion")}, "x") is not None


def test_command_form_answers_status_ok(tmp_path, key):
    core = make_core(tmp_path, key)
    a = ed.sign_assertion(key, EPOCH, ["arm1"])
    env = CommandEnvelope(sender_id="srop", turn_id=new_turn_id(), command={"action": "resume", "assertion": a})
    answers = []
    core.handle_command(env.to_json(), answers.append)
    assert json.loads(answers[0].data)["result"]["status"] == "ok" and not core.robot.locked_out
    core.robot.emergency_stop("srop", "again", epoch=EPOCH)
    env = CommandEnvelope(sender_id="srop", turn_id=new_turn_id(), command={"action": "resume", "assertion": a})
    answers.clear()
    core.handle_command(env.to_json(), answers.append)
    body = json.loads(answers[0].data)
    assert body["status"] == "refused" and "replayed resume assertion" in body["error"] and core.robot.locked_out


def test_epoch_change_during_check_is_not_resumed(tmp_path, key, monkeypatch):
    core = make_core(tmp_path, key)
    real = core._assertions.check

    def check_then_new_estop(*args, **kw):
        r = real(*args, **kw)
        core.robot.resume()
        core.robot.emergency_stop("op", "new", epoch=uuid.uuid4().hex)
        return r

    monkeypatch.setattr(core._assertions, "check", check_then_new_estop)
    ok, detail = core.check_assertion(ed.sign_assertion(key, EPOCH, ["arm1"]), time.time())
    assert not ok and "changed" in detail and core.robot.locked_out


@pytest.mark.parametrize("form", ["pem", "pem_encrypted", "raw", "raw_unpadded"])
def test_signing_key_files(tmp_path, key, monkeypatch, form):
    path = tmp_path / "resume.key"
    if form.startswith("pem"):
        enc = (serialization.BestAvailableEncryption(b"Correct-Horse-9!") if form == "pem_encrypted"
               else serialization.NoEncryption())
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
        if form == "pem_encrypted":
            monkeypatch.setenv(ed.PASSPHRASE_ENV, "Correct-Horse-9!")
    else:
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        text = base64.urlsafe_b64encode(raw).decode()
        path.write_text((text.rstrip("=") if form == "raw_unpadded" else text) + "\n")
    monkeypatch.setenv(ed.PRIVATE_KEY_FILE_ENV, str(path))
    loaded = ed.load_signing_key()
    assert ed.public_key_text(loaded) == ed.public_key_text(key)


def test_bad_signing_key_file(tmp_path, monkeypatch):
    p = tmp_path / "k"
    p.write_text("not a key\n")
    with pytest.raises(ed.ResumeSigningKeyError, match="not a usable Ed25519"):
        ed.load_signing_key(p)
    monkeypatch.delenv(ed.PRIVATE_KEY_FILE_ENV, raising=False)
    monkeypatch.delenv(ed.THEIR_PRIVATE_KEY_FILE_ENV, raising=False)
    assert ed.load_signing_key() is None


def test_public_keys_from_env(key, monkeypatch):
    other = Ed25519PrivateKey.generate()
    monkeypatch.setenv(ed.PUBLIC_KEY_ENV, f"{ed.public_key_text(key).rstrip('=')}, not-a-key ,{ed.public_key_text(other)}")
    assert [ed.public_key_text(k) for k in ed.load_public_keys()] == [ed.public_key_text(key), ed.public_key_text(other)]


def test_mesh_resume_signs_their_envelope(tmp_path, key, monkeypatch):
    """Our Mesh issues the assertion for the latest e-stop's epoch; our robot clears; the
    envelope on the wire is their form with SourceInfo zid == source_zid."""
    import zenoh
    from helpers import free_port, wait_for

    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.mesh import Mesh

    monkeypatch.setenv(ed.PUBLIC_KEY_ENV, ed.public_key_text(key))
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY", raising=False)
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY_FILE", raising=False)
    ep = f"tcp/127.0.0.1:{free_port()}"
    ns = "edtest" + uuid.uuid4().hex[:8]
    hub = MeshConfig(prefix="strands", namespace=ns, listen=(ep,), multicast_scouting=False)
    member = MeshConfig(prefix="strands", namespace=ns, connect=(ep,), multicast_scouting=False)
    op = Mesh("op", config=hub, audit_dir=str(tmp_path), check_unique=False, resume_signing_key=key).start()
    arm = Mesh("arm1", robot=MockDriver("arm1"), config=member, audit_dir=str(tmp_path), check_unique=False).start()
    conf = zenoh.Config()
    conf.insert_json5("mode", '"client"')
    conf.insert_json5("connect/endpoints", json.dumps([ep]))
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("namespace", json.dumps(ns))
    tap = zenoh.open(conf)
    seen = []
    sub = tap.declare_subscriber("strands/safety/resume", lambda s: seen.append(
        (json.loads(bytes(s.payload.to_bytes())), str(s.source_info.source_id.zid) if s.source_info else None)))
    try:
        op.wait_for_peer("arm1", 10)
        report = op.emergency_stop("drill", timeout=2.0)
        assert "arm1" in report.stopped
        wait_for(lambda: arm.robot.locked_out, 5, what="arm1 locked out")
        out = op.resume(targets=["arm1"], timeout=3.0)
        assert out == {"arm1": {"accepted": True, "detail": ""}}, out
        assert not arm.robot.locked_out
        body, zid = wait_for(lambda: seen and seen[-1], 5, what="the envelope on the tap")
        assert set(body) == {"peer_id", "t", "lockout_elapsed_s", "assertion", "source_zid"} and body["source_zid"] == zid
        assert body["assertion"]["epoch"] == op.core.last_epoch and body["assertion"]["targets"] == ["arm1"]
        # from the e-stop's issue (its seq, ns) to the resume's (its t, stamped once the spacing
        # is over), both this issuer's wall clock; not from emergency_stop()'s return, which a
        # loaded machine delays while the spacing already runs
        assert body["t"] - report.seq / 1e9 >= 0.4, \
            "the resume went out less than 0.5 s after the e-stop (their 2 Hz safety limit)"
        # the same assertion again (a replay of the envelope) is refused
        arm.robot.emergency_stop("op", "again", epoch=op.core.last_epoch)
        ack, _ = arm.core.resume_received(json.dumps(body).encode(), time.time())
        assert "replayed" in json.loads(ack.data)["detail"] and arm.robot.locked_out
    finally:
        sub.undeclare()
        tap.close()
        arm.stop()
        op.stop()
