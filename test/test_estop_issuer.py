"""The issuer's side of an e-stop (docs/safety.md, steps 3-4): when the ``stop`` broadcast goes
out, and who it reaches. Real Zenoh; the robot in its own process."""

from __future__ import annotations

import json
import threading
import time

import pytest
import zenoh

from helpers import python_proc, wait_for
from strands_mesh_ros.mesh.mesh import Mesh
from strands_mesh_ros.mesh import safety_path
from strands_mesh_ros.mesh.safety_path import STOP_DEFER


@pytest.fixture
def fleet(net):
    """A mock robot 'arm1' in its own process, an operator on the hub, and a raw Zenoh session
    recording what arrives on the broadcast and e-stop keys (monotonic s, this process)."""
    seen: list[tuple[str, float, bytes]] = []
    lock = threading.Lock()

    def record(kind):
        def cb(sample):
            with lock:
                seen.append((kind, time.monotonic(), sample.payload.to_bytes()))
        return cb

    with Mesh("op", config=net.hub()) as op:
        conf = zenoh.Config()
        conf.insert_json5("connect/endpoints", json.dumps([net.endpoint]))
        conf.insert_json5("scouting/multicast/enabled", "false")
        raw = zenoh.open(conf)
        subs = [raw.declare_subscriber(f"{net.prefix}/broadcast", record("broadcast")),
                raw.declare_subscriber(f"{net.prefix}/safety/estop", record("estop"))]
        robot = python_proc("-m", "strands_mesh_ros.peer", "arm1", *net.peer_args).ready()
        try:
            op.wait_for_peer("arm1", 10)
            yield op, raw, seen
        finally:
            robot.close()
            for sub in subs:
                sub.undeclare()
            raw.close()


def _stops(seen):
    return [t for kind, t, data in seen if kind == "broadcast" and json.loads(data)["command"]["action"] == "stop"]


def _stop_sent_after_issue(seen) -> float:
    """s from the e-stop's issue to the ``stop`` broadcast's send, both stamped by the issuer
    (the envelopes' ``t`` and ``timestamp``, its wall clock): when the issuer sent it, not when
    this session happened to receive it."""
    wait_for(lambda: _stops(seen) and any(k == "estop" for k, _, _ in seen), 2, what="the e-stop and the stop broadcast")
    estop = next(json.loads(d) for k, _, d in seen if k == "estop")  # a just-opened issuer may put it twice
    (stop,) = [json.loads(d) for k, _, d in seen if k == "broadcast" and json.loads(d)["command"]["action"] == "stop"]
    return stop["timestamp"] - estop["t"]


# A deferred ``stop`` waits for every known peer's ack, or for STOP_DEFER. The tests that must
# tell why a ``stop`` went out push STOP_DEFER (to NEVER) past their e-stop's deadline: held
# back, the ``stop`` would go out at that deadline; sent at once or on the acks, within
# milliseconds. Comparing with the shipped 20 ms instead failed on a loaded machine, where an
# ack, or the issuing thread, was held up for longer than that.
NEVER = 10.0
DEADLINE = 5.0  # the e-stop's own deadline (s) in the settled-issuer tests


def test_a_settled_issuer_broadcasts_stop_after_its_robots_acked(fleet, net, monkeypatch):
    """Every peer known is ours (it acks e-stops): ``stop`` goes out once they have acked, so
    it does not compete with the e-stop for their CPU, and it still goes out for peers that
    only know the command path (here: the raw session, which the issuer does not know).
    STOP_DEFER is pushed past the e-stop's deadline, so a ``stop`` sent before that deadline was
    sent by the acks (with the shipped 20 ms, a loaded machine can delay an ack past it)."""
    op, _raw, seen = fleet
    monkeypatch.setattr(safety_path, "STOP_DEFER", NEVER)
    # settled: up for a peer timeout, so its table holds every peer (docs/safety.md step 4)
    wait_for(lambda: time.monotonic() - op._started >= op.config.peer_timeout, 5, what="a settled issuer")
    report = op.emergency_stop("drill", timeout=DEADLINE)
    assert set(report.stopped) == {"arm1"} and not report.not_acked
    sent = _stop_sent_after_issue(seen)
    assert sent >= report.stopped["arm1"] - 0.001, "stop was broadcast before the robot's ack arrived"
    assert sent < DEADLINE / 2, f"stop went out {sent:.3f} s after the issue: at the deadline, not on the acks"


def test_a_settled_issuer_sends_stop_at_stop_defer_when_a_known_peer_never_acks(fleet, net):
    """A known peer that never acks holds the ``stop`` back by STOP_DEFER at most, not until the
    e-stop's deadline."""
    op, raw, seen = fleet
    ghost = raw.liveliness().declare_token(f"{net.prefix}/ghost/alive")
    try:
        wait_for(lambda: op.table.has_token("ghost"), 5, what="the silent peer's token")
        wait_for(lambda: time.monotonic() - op._started >= op.config.peer_timeout, 5, what="a settled issuer")
        report = op.emergency_stop("drill", timeout=DEADLINE)
        assert "arm1" in report.stopped and "ghost" in report.not_acked
        sent = _stop_sent_after_issue(seen)
        assert STOP_DEFER - 0.002 <= sent < DEADLINE / 2, f"stop went out {sent:.3f} s after the issue"
    finally:
        ghost.undeclare()


def test_a_just_started_issuer_broadcasts_stop_at_once(net, fleet, monkeypatch):
    """An issuer up for less than a peer timeout (the CLI) may not know every peer yet: ``stop``
    goes out with the e-stop, without waiting for any ack."""
    _op, raw, seen = fleet
    monkeypatch.setattr(safety_path, "STOP_DEFER", NEVER)
    ghost = raw.liveliness().declare_token(f"{net.prefix}/ghost/alive")  # a known peer that never acks
    try:
        with Mesh("cli", config=net.member()) as cli:
            cli.wait_for_peer("arm1", 10)
            wait_for(lambda: cli.table.has_token("ghost"), 5, what="the silent peer's token")
            assert time.monotonic() - cli._started < cli.config.peer_timeout
            report = cli.emergency_stop("drill", timeout=1.0)
            assert "arm1" in report.stopped and "ghost" in report.not_acked
            assert _stop_sent_after_issue(seen) < 0.5, "stop waited for the acks"
    finally:
        ghost.undeclare()


def test_stop_goes_out_at_once_when_a_strands_robots_peer_is_known(fleet, net, monkeypatch):
    """A strands-robots peer (presence without our schema) is stopped by ``stop``, not by our
    acked e-stop path: it is not kept waiting for anyone's ack."""
    op, raw, seen = fleet
    monkeypatch.setattr(safety_path, "STOP_DEFER", NEVER)
    pres = {"robot_id": "legacy", "robot_type": "so100", "hostname": "h", "timestamp": time.time()}
    raw.put(f"{net.prefix}/legacy/presence", json.dumps(pres))
    op.wait_for_peer("legacy", 5)
    wait_for(lambda: time.monotonic() - op._started >= op.config.peer_timeout, 5, what="a settled issuer")
    raw.put(f"{net.prefix}/legacy/presence", json.dumps({**pres, "timestamp": time.time()}))
    wait_for(lambda: "legacy" in op.peers, 5, what="legacy heard")
    report = op.emergency_stop("drill", timeout=1.0)
    assert "arm1" in report.stopped and report.not_acked == ["legacy"]
    assert _stop_sent_after_issue(seen) < 0.5, "stop waited for the acks"
