"""Who reads a peer's responses (strands_mesh_ros/mesh/response_intake.py), over real Zenoh with
robots in their own processes: blocking calls read their own answers and each other's, calls
nobody waits for are read by the intake's thread, a reader whose answer does not come still
returns at its timeout or when the mesh stops, and stray samples are refused while no call is
open. (A 60 s move stands for an answer that does not come: a robot stopped with SIGSTOP once
answered inside the call's second in a busy run, cause not found.)"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import zenoh

from helpers import python_proc, wait_for
from strands_mesh_ros.contract import new_turn_id
from strands_mesh_ros.mesh.mesh import Mesh

STATUS = {"action": "status"}
LONG_MOVE = {"action": "skill", "name": "move_joints", "args": {"positions": [1] * 6, "duration": 60}}
"""Answered when the move ends, 60 s on: a call whose answer does not come in a test's time."""


@pytest.fixture
def robots(net):
    procs: dict[str, object] = {}

    def start(*ids: str):
        for pid in ids:
            procs[pid] = python_proc("-m", "strands_mesh_ros.peer", pid, *net.peer_args)
        for pid in ids:
            procs[pid].ready()
        return procs

    yield start
    for p in procs.values():
        p.close()


@pytest.fixture
def op(net):
    with Mesh("op", config=net.hub()) as mesh:
        yield mesh


def _ok_from(resp, peer_id: str) -> bool:
    return resp.ok and resp.responder_id == peer_id and resp.result["robot_id"] == peer_id


def test_blocking_and_async_calls_from_many_threads_each_get_their_own_answer(op, robots):
    robots("arm1", "arm2")
    op.wait_for_peer("arm1", 10)
    op.wait_for_peer("arm2", 10)

    def blocking(i: int) -> list[bool]:
        target = ("arm1", "arm2")[i % 2]
        return [_ok_from(op.send(target, STATUS, timeout=10), target) for _ in range(30)]

    with ThreadPoolExecutor(6) as pool:
        blocking_runs = [pool.submit(blocking, i) for i in range(6)]
        futures = [(t, op.send_async(t, STATUS, timeout=10)) for t in ("arm1", "arm2") * 20]
        results = [r.result(timeout=60) for r in blocking_runs]
    assert all(all(r) for r in results), results
    assert all(_ok_from(f.result(timeout=10), t) for t, f in futures)
    assert op.stats["spoofed"] == 0 and op.stats["rejected"] == 0


def _moving(op, peer_id: str) -> bool:
    return "motion" in op.send(peer_id, STATUS, timeout=10).result["lanes"]


def test_a_reader_whose_answer_does_not_come_still_hands_other_callers_theirs_and_times_out(op, robots):
    robots("arm1", "arm2")
    op.wait_for_peer("arm1", 10)
    op.wait_for_peer("arm2", 10)
    started = threading.Event()
    slow: list = []

    def call_for_a_long_move() -> None:  # answered in 60 s: its caller reads, and times out at 1 s
        started.set()
        slow.append(op.send("arm1", LONG_MOVE, timeout=1.0))

    t = threading.Thread(target=call_for_a_long_move)
    t.start()
    started.wait(5)
    # whoever reads (that caller, blocked on the channel for an answer that does not come in time,
    # or this thread), every answer reaches its caller
    assert all(_ok_from(op.send("arm2", STATUS, timeout=10), "arm2") for _ in range(20))
    t.join(10)
    assert not t.is_alive(), "the call whose answer did not come never returned"
    assert slow[0].status == "timeout", slow[0]
    assert _ok_from(op.send("arm1", STATUS, timeout=10), "arm1")


def test_blocking_calls_take_the_channel_from_the_reader_of_an_open_async_call(op, robots):
    robots("arm1", "arm2")
    op.wait_for_peer("arm1", 10)
    op.wait_for_peer("arm2", 10)
    pending = op.send_async("arm1", LONG_MOVE, timeout=30)  # the intake's thread reads for it
    wait_for(lambda: _moving(op, "arm1"), 10, what="the move running")
    assert all(_ok_from(op.send("arm2", STATUS, timeout=10), "arm2") for _ in range(20))
    assert not pending.done()
    assert op.send("arm1", {"action": "stop"}, timeout=10).ok
    # the move's answer comes now; the intake's thread, reading again, hands it over
    r = pending.result(timeout=10)
    assert r.responder_id == "arm1" and r.status != "timeout", r


def test_stopping_the_mesh_ends_a_blocking_call_that_is_reading(net, op, robots):
    robots("arm1")
    op.wait_for_peer("arm1", 10)
    other = Mesh("op2", config=net.member()).start()
    try:
        other.wait_for_peer("arm1", 10)
        got: list = []
        t = threading.Thread(target=lambda: got.append(other.send("arm1", LONG_MOVE, timeout=30)))
        t.start()
        wait_for(lambda: _moving(op, "arm1"), 10, what="the move running: its caller waits, reading")
    finally:
        other.stop()
    t.join(5)
    assert not t.is_alive(), "stop() left a blocking call waiting"
    assert got[0].status == "error" and "mesh stopped" in got[0].error, got[0]


def test_stray_samples_on_the_response_key_are_refused_while_no_call_is_open(net, op):
    raw = zenoh.open(net.member().zenoh_config())
    try:
        before = op.stats["rejected"]
        raw.put(f"{net.prefix}/op/response/arm9/{new_turn_id()}", b"\xff not json")
        # a guess at the wake key is not the wake key: refused like any other bad response
        raw.put(f"{net.prefix}/op/response/~wake-0000000000000000", b"")
        wait_for(lambda: op.stats["rejected"] >= before + 2, 10, what="both stray samples refused")
    finally:
        raw.close()
