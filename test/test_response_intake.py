"""Who reads a peer's responses (strands_mesh_ros/mesh/response_intake.py), over real Zenoh with
robots in their own processes: blocking calls read their own answers and each other's, calls
nobody waits for are read by the intake's thread, a reader whose answer never comes still returns
at its timeout or when the mesh stops, and stray samples are refused while no call is open."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import zenoh

from helpers import python_proc, wait_for
from strands_mesh_ros.contract import new_turn_id
from strands_mesh_ros.mesh.mesh import Mesh

STATUS = {"action": "status"}


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
        p.signal(signal.SIGCONT)
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


def test_a_reader_whose_robot_hangs_still_hands_other_callers_their_answers_and_times_out(op, robots):
    procs = robots("arm1", "arm2")
    op.wait_for_peer("arm1", 10)
    op.wait_for_peer("arm2", 10)
    procs["arm1"].signal(signal.SIGSTOP)  # hung, well within the peer timeout: still on the mesh
    try:
        started = threading.Event()
        hung: list = []

        def call_the_hung_robot() -> None:
            started.set()
            hung.append(op.send("arm1", STATUS, timeout=1.0))

        t = threading.Thread(target=call_the_hung_robot)
        t.start()
        started.wait(5)
        # whoever reads (that caller is blocked on the channel for an answer that will not come,
        # or this thread), every answer reaches its caller
        assert all(_ok_from(op.send("arm2", STATUS, timeout=10), "arm2") for _ in range(20))
        t.join(10)
        assert not t.is_alive(), "the call to the hung robot never returned"
        assert hung[0].status == "timeout", hung[0]
    finally:
        procs["arm1"].signal(signal.SIGCONT)
    assert _ok_from(op.send("arm1", STATUS, timeout=10), "arm1")


def test_blocking_calls_take_the_channel_from_the_reader_of_an_open_async_call(op, robots):
    procs = robots("arm1", "arm2")
    op.wait_for_peer("arm1", 10)
    op.wait_for_peer("arm2", 10)
    procs["arm1"].signal(signal.SIGSTOP)
    try:
        pending = op.send_async("arm1", STATUS, timeout=10)  # the intake's thread reads for it
        assert all(_ok_from(op.send("arm2", STATUS, timeout=10), "arm2") for _ in range(20))
        assert not pending.done()
    finally:
        procs["arm1"].signal(signal.SIGCONT)
    # the robot runs it on thawing; the intake's thread, reading again, hands the answer over
    assert _ok_from(pending.result(timeout=10), "arm1")


def test_stopping_the_mesh_ends_a_blocking_call_that_is_reading(net, op, robots):
    procs = robots("arm1")
    op.wait_for_peer("arm1", 10)
    other = Mesh("op2", config=net.member()).start()
    try:
        other.wait_for_peer("arm1", 10)
        procs["arm1"].signal(signal.SIGSTOP)
        got: list = []
        t = threading.Thread(target=lambda: got.append(other.send("arm1", STATUS, timeout=30)))
        t.start()
        wait_for(lambda: len(other._pending) == 1, 5, what="the call in flight")
    finally:
        other.stop()
        procs["arm1"].signal(signal.SIGCONT)
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
