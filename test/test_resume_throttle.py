"""The resume brute-force throttle (strands_mesh_ros.robot.resume_throttle), alone and in the
peer core on all three resume paths: our HMAC envelope, 0.5.3's Ed25519 envelope, the command
form. A test clock drives the cool-down; no sleeps."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strands_mesh_ros.contract.keys import KeySpace
from strands_mesh_ros.contract.payloads import Resume
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.robot import resume_ed25519 as ed
from strands_mesh_ros.robot.peer_core import PeerCore
from strands_mesh_ros.robot.resume_throttle import BACKOFF_ENV, MAX_FAILS_ENV, ResumeThrottle
from strands_mesh_ros.robot.runtime import Robot
from strands_mesh_ros.robot.safety import AuditLog, sign_resume

KEY = b"fleet-resume-key-0123456789abcdef"
EPOCH = "671d2e2eabca4dbdaa7b9342f2a492be"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_consecutive_failures_from_anyone_cool_every_resume_down():
    clock = Clock()
    th = ResumeThrottle(max_fails=3, backoff=30, clock=clock)
    assert not th.note("a", False) and not th.note("b", False)
    assert th.note("c", False)  # the third consecutive failure, from anyone (0.5.3's rule)
    for who in ("a", "b", "c", "op"):
        r = th.refusal(who)
        assert r and "resume throttled" in r and "retry in 30 s" in r, r
    clock.now += 30.5
    assert th.refusal("op") is None


def test_one_sender_is_cooled_down_even_with_good_resumes_in_between():
    clock = Clock()
    th = ResumeThrottle(max_fails=3, backoff=10, clock=clock)
    for _ in range(2):
        th.note("eve", False)
        th.note("op", True)  # resets the consecutive count, not eve's own
    assert th.note("eve", False)
    assert th.refusal("eve") and th.refusal("op") is None
    clock.now += 11
    assert th.refusal("eve") is None
    # failures older than the window no longer count
    th.note("eve", False)
    th.note("eve", False)
    clock.now += 61
    th.note("op", True)
    assert not th.note("eve", False) and th.refusal("eve") is None


def test_settings_come_from_their_variables(monkeypatch):
    monkeypatch.setenv(MAX_FAILS_ENV, "7")
    monkeypatch.setenv(BACKOFF_ENV, "12.5")
    th = ResumeThrottle()
    assert (th.max_fails, th.backoff) == (7, 12.5)
    monkeypatch.setenv(MAX_FAILS_ENV, "-1")
    monkeypatch.setenv(BACKOFF_ENV, "nan")
    assert (ResumeThrottle().max_fails, ResumeThrottle().backoff) == (5, 30.0)


def locked_core(tmp_path, pub=None):
    robot = Robot(MockDriver("arm1"))
    robot.emergency_stop("srop", "drill", epoch=EPOCH)
    core = PeerCore("arm1", robot, KeySpace("strands"), audit=AuditLog("arm1", tmp_path), resume_key=KEY,
                    resume_public_keys=[pub] if pub else [])
    clock = Clock()
    core.resume_throttle = ResumeThrottle(max_fails=5, backoff=30, clock=clock)
    return core, clock


def hmac_resume(key: bytes, seq: int) -> bytes:
    return sign_resume(Resume(peer_id="op", t=time.time(), seq=seq, operator="t", targets=["arm1"]), key).to_json()


def test_five_bad_hmac_resumes_then_even_a_good_one_is_refused_until_the_cool_down_ends(tmp_path):
    core, clock = locked_core(tmp_path)
    for i in range(5):
        ack, _ = core.resume_received(hmac_resume(b"guessed-key-0000000000000000", time.time_ns() + i), time.time())
        assert json.loads(ack.data)["detail"] == "bad resume signature"
    ack, _ = core.resume_received(hmac_resume(KEY, time.time_ns()), time.time())
    body = json.loads(ack.data)
    assert not body["accepted"] and body["detail"].startswith("resume throttled"), body
    assert core.robot.locked_out
    # the command form is throttled too, with the same answer
    assert core.resume_command({"t": time.time(), "seq": time.time_ns()}, "op").startswith("resume throttled")
    core.audit.close()
    events = [json.loads(x)["event"] for x in core.audit.path.read_text().splitlines()]
    assert "resume_throttle_engaged" in events and events.count("resume_throttled") == 2
    clock.now += 31
    ack, _ = core.resume_received(hmac_resume(KEY, time.time_ns()), time.time())
    assert json.loads(ack.data)["accepted"] and not core.robot.locked_out


def test_bad_ed25519_assertions_are_throttled_and_replays_do_not_count(tmp_path):
    key = Ed25519PrivateKey.generate()
    core, clock = locked_core(tmp_path, key.public_key())
    other = Ed25519PrivateKey.generate()
    good = ed.sign_assertion(key, EPOCH, ["arm1"])
    for _ in range(4):
        assert "bad resume signature" in core.resume_command(
            {"assertion": ed.sign_assertion(other, EPOCH, ["arm1"])}, "srop")
    # a good assertion for another peer earns neither an answer nor a count
    ack, _ = core.resume_received(ed.make_envelope("srop", ed.sign_assertion(key, EPOCH, ["arm2"]), 1.0), time.time())
    assert ack.key is None
    ack, _ = core.resume_received(ed.make_envelope("srop", ed.sign_assertion(other, EPOCH, ["arm1"]), 1.0), time.time())
    assert json.loads(ack.data)["detail"].startswith("bad resume signature")  # the fifth
    assert core.resume_command({"assertion": good}, "srop").startswith("resume throttled")
    clock.now += 31
    assert core.resume_command({"assertion": good}, "srop") is None and not core.robot.locked_out
    core.robot.emergency_stop("srop", "again", epoch=EPOCH)
    for _ in range(6):  # a replayed good assertion is refused each time, and never counted
        assert "replayed" in core.resume_command({"assertion": good}, "srop")
    assert core.resume_throttle.refusal("srop") is None
