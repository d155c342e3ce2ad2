"""The Mesh over real Zenoh, with peers in separate processes where it matters."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
import zenoh

from helpers import python_proc, route_replies, wait_for
from strands_mesh_ros.contract import CommandEnvelope, InvalidPeerId, new_turn_id
from strands_mesh_ros.robot.driver import Skill
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.mesh.mesh import Mesh


@pytest.fixture
def robot_proc(net):
    """A mock robot 'arm1' in its own process, connected to the test's hub."""
    procs = []

    def start(peer_id="arm1", *extra):
        p = python_proc("-m", "strands_mesh_ros.peer", peer_id, *net.peer_args, *extra).ready()
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()


@pytest.fixture
def op(net):
    with Mesh("op", config=net.hub()) as mesh:
        yield mesh


def raw_session(net):
    conf = net.member().zenoh_config()
    return zenoh.open(conf)


def test_discovery_of_a_peer_in_another_process(op, robot_proc):
    robot_proc("arm1")
    info = op.wait_for_peer("arm1", timeout=10)
    assert info.peer_type == "robot" and info.robot_type == "mock_arm"
    assert 0 <= info.age < 1.5
    assert {"move_joints", "home", "get_state", "move_gripper"} <= {s["name"] for s in info.skills}
    assert {s["name"]: s["lane"] for s in info.skills}["move_joints"] == "motion"
    wait_for(lambda: op.peers.get("arm1") and op.peers["arm1"].live_token, 5, what="liveliness token")


def test_tell_send_broadcast_round_trips(op, robot_proc):
    robot_proc("arm1")
    robot_proc("arm2")
    op.wait_for_peer("arm1", 10)
    op.wait_for_peer("arm2", 10)
    r = op.tell("arm1", "move joints to 0.1 0.2 0.3 0.4 0.5 0.6 in 0.1 s")
    assert r.ok, r.error
    assert r.result["result"]["positions"]["joint3"] == pytest.approx(0.3)
    st = op.send("arm1", {"action": "state"})
    assert st.ok and st.result["joints"]["joint3"]["position"] == pytest.approx(0.3)
    # arm2 was not moved: one robot's command never moves another
    st2 = op.send("arm2", {"action": "state"})
    assert st2.result["joints"]["joint3"]["position"] == 0.0
    b = op.broadcast({"action": "status"}, timeout=5)
    assert set(b.responses) == {"arm1", "arm2"} and not b.missing
    assert all(resp.ok for resp in b.responses.values())
    feats = op.send("arm1", {"action": "features"})
    assert "execute" in feats.result["actions"] and feats.result["skills"]


def test_fifty_concurrent_sends_each_answered_correctly(op, robot_proc):
    robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    futures = []
    for i in range(60):
        target = [round(0.01 * i, 3)] * 6
        cmd = {"action": "skill", "name": "move_joints", "args": {"positions": target, "duration": 0}}
        futures.append((target, op.send_async("arm1", cmd, timeout=30)))
    for target, fut in futures:
        r = fut.result()
        assert r.ok, r.error
        assert list(r.result["result"]["positions"].values()) == pytest.approx(target)


def test_peer_killed_mid_command_is_reported_within_one_second(op, robot_proc):
    p = robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    wait_for(lambda: op.peers["arm1"].live_token, 5, what="liveliness token")
    fut = op.send_async("arm1", {"action": "skill", "name": "move_joints",
                                 "args": {"positions": [1] * 6, "duration": 60}}, timeout=60)
    wait_for(lambda: "motion" in op.send("arm1", {"action": "status"}).result["lanes"], 5, what="move running")
    t0 = time.monotonic()
    p.signal(signal.SIGKILL)
    r = fut.result(timeout=5)
    elapsed = time.monotonic() - t0
    assert r.status == "error" and "peer lost" in r.error
    assert elapsed < 1.0, f"caller told after {elapsed:.3f} s"


def test_hung_peer_leaves_within_two_seconds_and_rejoins(op, robot_proc):
    p = robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    t0 = time.monotonic()
    p.signal(signal.SIGSTOP)
    wait_for(lambda: "arm1" not in op.peers, 5, what="hung peer to leave")
    assert time.monotonic() - t0 < 2.0
    p.signal(signal.SIGCONT)
    op.wait_for_peer("arm1", 5)


def test_a_silent_peer_is_asked_before_it_leaves_but_not_after_a_crash_nor_a_strands_robots_peer():
    """The peer table (pure): a peer silent past the timeout is asked once whether it runs
    (``confirm``) and stays present meanwhile; an answer keeps it, no answer ends it, naming
    why; a liveliness-token drop (a crash) ends it at once; a strands-robots peer, which answers
    no presence query, leaves on silence alone. Timeout 0: every peer is silent at once."""
    from strands_mesh_ros.contract.payloads import make_presence
    from strands_mesh_ros.mesh.peers import PeerTable

    left: list[tuple[str, str]] = []
    asked: list[tuple[str, object]] = []
    table = PeerTable(0.0, on_leave=lambda p, why: left.append((p, why)),
                      confirm=lambda p, no_answer: asked.append((p, no_answer)))
    ours = make_presence("arm1", robot_type="mock", peer_type="robot")
    theirs = make_presence("sr1", robot_type="so100", peer_type="robot").model_copy(update={"schema_": None})

    def questions(n: int) -> None:  # the heartbeat's expiry tick, until the clock passed the last 'heard'
        def tick() -> bool:
            table.expire()
            return len(asked) >= n
        wait_for(tick, 1, what=f"question {n}")

    table.heard(ours)
    table.heard(theirs)
    questions(1)
    assert left == [("sr1", "no presence for 0.0 s")]
    assert [p for p, _ in asked] == ["arm1"] and "arm1" in table.snapshot()  # asked, still present
    table.expire()
    assert len(asked) == 1  # once per silence
    table.heard(ours)  # the answer
    asked[0][1]()  # the question ends: heard meanwhile, nothing happens
    questions(2)  # still in the table: its next silence is asked about
    assert left == [("sr1", "no presence for 0.0 s")]
    asked[1][1]()  # ...and this one ends unanswered
    asked[1][1]()
    assert left[1:] == [("arm1", "no presence for 0.0 s and no answer to a presence query")]
    assert "arm1" not in table.snapshot()

    table.heard(ours)
    table.token("arm1", True)
    questions(3)
    table.token("arm1", False)  # a crash while asked: at once, unconfirmed
    asked[2][1]()
    assert left[2:] == [("arm1", "liveliness token dropped")] and "arm1" not in table.snapshot()


def test_a_mesh_that_says_its_peer_is_not_live_answers_no_presence_query_and_is_lost(net):
    """``Mesh.presence_live`` (a bridge's proxy: 'my ROS robot was heard on ROS lately'): while
    it says no, the Mesh answers no presence query, so a caller that hears no beat from it
    (here it beats every 10 s) tells its callers ``peer lost``, although the Mesh itself runs;
    once it says yes, the answer brings the peer back."""
    live = threading.Event()
    live.set()
    peer = Mesh("pl1", robot=MockDriver("pl1"), config=net.member(presence_hz=0.1))
    peer.presence_live = live.is_set
    with Mesh("op", config=net.hub()) as op, peer:
        wait_for(lambda: "pl1" in op.refresh_peers(timeout=2.0) and "pl1" in op.peers, 10, what="pl1 answers")
        live.clear()
        t0 = time.monotonic()
        r = op.send_async("pl1", {"action": "skill", "name": "move_joints",
                                  "args": {"positions": [0.2] * 6, "duration": 30}}, timeout=30).result(timeout=10)
        assert r.status == "error" and "no answer to a presence query" in r.error, r
        assert time.monotonic() - t0 < 2.0 and peer.alive and "pl1" not in op.peers
        assert "pl1" in op.refresh_peers(timeout=1.0) and "pl1" not in op.peers  # its token is up; no answer
        live.set()
        wait_for(lambda: "pl1" in op.refresh_peers(timeout=2.0) and "pl1" in op.peers, 10, what="pl1 answers again")


def test_unknown_peer_and_bad_ids(op):
    r = op.send("nobody", {"action": "status"}, timeout=1.0)
    assert r.status == "error" and "unknown peer 'nobody'" in r.error
    with pytest.raises(InvalidPeerId):
        op.send("a/b", {"action": "status"})
    with pytest.raises(InvalidPeerId):
        Mesh("bad*id")
    with pytest.raises(ValueError, match="action"):
        op.send("x", {"no": "action"})
    with pytest.raises(ValueError, match="16384-byte limit"):
        op.send("x", {"action": "execute", "instruction": "x" * 20000})


def test_hostile_inputs_get_named_errors_and_the_peer_survives(op, robot_proc, net):
    robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    s = raw_session(net)
    replies: list[dict] = []
    s.declare_subscriber(f"{net.prefix}/rogue/response/**", lambda smp: replies.append(json.loads(smp.payload.to_bytes())))
    cmd_key = f"{net.prefix}/arm1/cmd"
    route_replies(s, net, "arm1", replies)

    def env(command, turn):
        return json.dumps({"sender_id": "rogue", "turn_id": turn, "command": command, "timestamp": time.time()})

    s.put(cmd_key, b"{this is not json")
    s.put(cmd_key, b"\x00\xff" * 10)
    s.put(cmd_key, b"[]")
    s.put(cmd_key, env({"action": "fly"}, "t1"))
    s.put(cmd_key, env({"action": "execute", "instruction": 42}, "t2"))
    s.put(cmd_key, env({"action": "skill", "name": "move_joints", "args": {"positions": "high"}}, "t3"))
    s.put(cmd_key, env({"action": "execute", "instruction": "x" * 17000}, "t4"))
    s.put(cmd_key, env({"action": "execute", "instruction": "dance the tango"}, "t5"))
    s.put(cmd_key, env({"action": "skill", "name": "self_destruct"}, "t6"))
    # a stamp in the past must not be mistaken for one sent while the robot was frozen
    s.put(cmd_key, json.dumps({"sender_id": "rogue", "turn_id": "t7", "command": {"action": "fly"}, "timestamp": -5}))
    wait_for(lambda: len(replies) >= 7, 5, what="seven error replies")
    by_turn = {r["turn_id"]: r for r in replies}
    assert all(r["type"] == "error" and r["status"] == "error" for r in replies)
    assert "unknown action 'fly'" in by_turn["t1"]["error"]
    assert "instruction" in by_turn["t2"]["error"]
    assert "bad args for skill 'move_joints'" in by_turn["t3"]["error"]
    assert "exceeds the 16384-byte limit" in by_turn["t4"]["error"]
    assert "unknown instruction 'dance the tango'" in by_turn["t5"]["error"]
    assert "unknown skill 'self_destruct'" in by_turn["t6"]["error"]
    assert "unknown action 'fly'" in by_turn["t7"]["error"]
    # the peer is still alive and unmoved
    st = op.send("arm1", {"action": "state"})
    assert st.ok and all(j["position"] == 0.0 for j in st.result["joints"].values())
    s.close()


def test_spoofed_responses_are_refused(op, robot_proc, net):
    robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    s = raw_session(net)
    sniffed: list[dict] = []
    s.declare_subscriber(f"{net.prefix}/arm1/cmd", lambda smp: sniffed.append(json.loads(smp.payload.to_bytes())))
    # The rogue's subscription takes a moment to reach op's session: probe until it sniffs.
    wait_for(lambda: sniffed or op.send("arm1", {"action": "status"}).ok and sniffed, 5, what="rogue routed")
    sniffed.clear()
    fut = op.send_async("arm1", {"action": "skill", "name": "move_joints",
                                 "args": {"positions": [0.5] * 6, "duration": 1.0}}, timeout=20)
    turn = wait_for(lambda: sniffed and sniffed[0]["turn_id"], 5, what="sniffed command")
    fake = {"type": "response", "status": "done", "turn_id": turn, "result": "pwned", "timestamp": time.time()}
    # 1) the wrong responder, on its own key
    s.put(f"{net.prefix}/op/response/rogue/{turn}", json.dumps({**fake, "responder_id": "rogue"}))
    # 2) the right key, but a payload claiming another responder
    s.put(f"{net.prefix}/op/response/arm1/{turn}", json.dumps({**fake, "responder_id": "rogue"}))
    # 3) the short seed form from the wrong responder
    s.put(f"{net.prefix}/op/response/{turn}", json.dumps({**fake, "responder_id": "rogue"}))
    wait_for(lambda: op.stats["spoofed"] >= 3, 5, what="three spoofs refused")
    r = fut.result()
    assert r.ok and r.responder_id == "arm1" and r.result != "pwned"
    s.close()


class CountingDriver(MockDriver):
    """A mock robot with a skill that counts its executions."""

    def __init__(self, robot_id):
        super().__init__(robot_id)
        self.count = 0

    def skills(self):
        def bump(ctx):
            self.count += 1
            return self.count
        return [*super().skills(), Skill("bump", bump, lane="motion")]


def test_repeated_turn_id_is_never_executed_twice(net):
    drv = CountingDriver("arm1")
    with Mesh("arm1", robot=drv, config=net.hub()) as robot:
        s = raw_session(net)
        replies: list[dict] = []
        s.declare_subscriber(f"{net.prefix}/rogue/response/**", lambda smp: replies.append(json.loads(smp.payload.to_bytes())))
        route_replies(s, net, "arm1", replies)
        env = CommandEnvelope(sender_id="rogue", turn_id=new_turn_id(), command={"action": "skill", "name": "bump"})
        s.put(f"{net.prefix}/arm1/cmd", env.to_json())
        wait_for(lambda: replies, 5, what="first reply")
        s.put(f"{net.prefix}/arm1/cmd", env.to_json())
        wait_for(lambda: len(replies) == 2, 5, what="second reply")
        assert drv.count == 1
        assert replies[0] == replies[1] and replies[0]["result"]["result"] == 1
        assert robot.stats["duplicates"] == 1
        s.close()


def test_commands_are_never_dropped_in_a_burst(op, robot_proc):
    # strands-robots drops a second command inside 50 ms; we answer every one.
    robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    futs = [op.send_async("arm1", {"action": "status"}) for _ in range(200)]
    assert all(f.result().ok for f in futs)


def test_estop_reaches_every_peer_issuer_first_and_latches(net, robot_proc):
    key = "fleet-resume-key-0123456789"
    with Mesh("arm0", robot=MockDriver("arm0"), config=net.hub(), resume_key=key) as issuer:
        robot_proc("arm1", "--resume-key", key)
        robot_proc("arm2", "--resume-key", key)
        issuer.wait_for_peer("arm1", 10)
        issuer.wait_for_peer("arm2", 10)
        running = issuer.send_async("arm1", {"action": "skill", "name": "move_joints",
                                             "args": {"positions": [1] * 6, "duration": 30}}, timeout=30)
        wait_for(lambda: "motion" in issuer.send("arm1", {"action": "status"}).result["lanes"], 5, what="move running")
        report = issuer.emergency_stop("test")
        assert report.self_halted and issuer.robot.locked_out
        assert set(report.stopped) == {"arm1", "arm2"} and not report.not_acked and report.all_stopped
        assert running.result().status == "refused"
        r = issuer.tell("arm1", "home")
        assert r.status == "refused" and "locked out" in r.error
        assert issuer.send("arm2", {"action": "status"}).result["locked_out"]
        # an unauthorised resume: wrong key
        with Mesh("intruder", config=net.member(), resume_key="not-the-fleet-key-000") as intruder:
            intruder.wait_for_peer("arm1", 10)
            answers = intruder.resume(targets=["arm1"])
            assert answers["arm1"] == {"accepted": False, "detail": "bad resume signature"}
            # and over the command path with no signature
            r = intruder.send("arm1", {"action": "resume"})
            assert r.status == "refused" and "bad resume signature" in r.error
        assert issuer.send("arm1", {"action": "status"}).result["locked_out"]
        answers = issuer.resume(operator="tester")
        assert answers == {"arm1": {"accepted": True, "detail": ""}, "arm2": {"accepted": True, "detail": ""}}
        assert not issuer.robot.locked_out
        assert issuer.tell("arm1", "home").ok


def test_estop_names_peers_without_a_stop_path(op, robot_proc, net):
    robot_proc("arm1")
    op.wait_for_peer("arm1", 10)
    # A strands-robots-style peer: presence only, no safety path.
    s = raw_session(net)
    pres = {"robot_id": "legacy", "robot_type": "so100", "hostname": "h", "timestamp": time.time()}
    stop_evt = __import__("threading").Event()
    s.put(f"{net.prefix}/legacy/presence", json.dumps(pres))
    op.wait_for_peer("legacy", 5)
    report = op.emergency_stop("drill", timeout=0.3)
    assert "arm1" in report.stopped
    assert report.not_acked == ["legacy"] and not report.all_stopped
    stop_evt.set()
    s.close()


def test_double_prefix_namespace_interop(net):
    """A strands-robots peer (Zenoh namespace 'strands') sees our keys as strands/strands/..."""
    cfg = net.hub(namespace="strands").with_(prefix="strands")
    with Mesh("op", config=cfg) as op:
        raw = raw_session(net)  # no namespace: sees the wire keys
        seen: list[str] = []
        raw.declare_subscriber("strands/strands/op/presence", lambda smp: seen.append(str(smp.key_expr)))
        wait_for(lambda: seen, 5, what="our presence on the double-prefix key")

        def legacy_cmd(smp):
            env = json.loads(smp.payload.to_bytes())
            # strands-robots answers on the short form with only `type`
            raw.put(f"strands/strands/{env['sender_id']}/response/{env['turn_id']}",
                    json.dumps({"type": "response", "responder_id": "legacy", "turn_id": env["turn_id"],
                                "result": {"ok": True}, "timestamp": time.time()}))

        raw.declare_subscriber("strands/strands/legacy/cmd", legacy_cmd)
        raw.put("strands/strands/legacy/presence",
                json.dumps({"robot_id": "legacy", "robot_type": "so100", "hostname": "h", "timestamp": time.time()}))
        op.wait_for_peer("legacy", 5)
        r = op.send("legacy", {"action": "status"}, timeout=5)
        assert r.ok and r.status == "done" and r.result == {"ok": True}
        raw.close()


def test_stream_and_subscribe(net):
    with Mesh("pub", config=net.hub()) as pub, Mesh("sub", config=net.member()) as sub:
        steps, states = [], []
        sub.on_stream("pub", steps.append)
        handle = sub.subscribe(f"{net.prefix}/*/stream", lambda k, v: states.append((k, v)))
        sub.wait_for_peer("pub", 5)
        wait_for(lambda: (pub.publish_step([1.0], [0.5], instruction="x") is not None) and steps and states, 5,
                 interval=0.05, what="a step")
        assert steps[0].peer_id == "pub" and steps[0].observation == [1.0]
        assert states[0][0] == f"{net.prefix}/pub/stream" and states[0][1]["action"] == [0.5]
        sub.unsubscribe(handle)
        with pytest.raises(ValueError, match="invalid key expression"):
            sub.subscribe("a/**/**/$*x", lambda k, v: None)


def test_reply_to_cannot_aim_an_answer_at_the_safety_keys_or_other_peers(net, robot_proc):
    """A command's reply_to moves its answer only within the sender's own keys."""
    robot_proc("arm1")
    robot_proc("arm2")
    with Mesh("op", config=net.hub()) as op:
        op.wait_for_peer("arm1", 10)
        op.wait_for_peer("arm2", 10)
        s = raw_session(net)
        replies: list[dict] = []
        s.declare_subscriber(f"{net.prefix}/rogue/response/**", lambda smp: replies.append(json.loads(smp.payload.to_bytes())))
        route_replies(s, net, "arm1", replies)
        for i, target in enumerate([f"{net.prefix}/safety/estop", f"{net.prefix}/arm2/cmd", f"{net.prefix}/op/response/x"]):
            env = CommandEnvelope(sender_id="rogue", turn_id=f"rt{i}", command={"action": "status"}, reply_to=target)
            s.put(f"{net.prefix}/arm1/cmd", env.to_json())
        # every answer came back on the sender's own response key instead
        wait_for(lambda: {r["turn_id"] for r in replies} >= {"rt0", "rt1", "rt2"}, 10, what="answers on the default key")
        for rid in ("arm1", "arm2"):
            assert not op.send(rid, {"action": "status"}).result["locked_out"]
        s.close()
