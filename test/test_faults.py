"""Faults with real processes and real Zenoh: robots killed and hung, the Zenoh router restarted,
the bridge node killed and restarted. Every wait is a condition poll with a timeout; the bounds the
issue states (1 s for a crash, 2 s for a hang, 5 s after a router restart) are asserted."""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import ros_helpers
from helpers import Proc, free_port, python_proc, wait_for

from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh

HERE = Path(__file__).resolve().parent

# A Fleet (strands_mesh_ros.fleet) of mock robots in one process: "python -c FLEET_PROC prefix endpoint id..."
FLEET_PROC = r"""
import signal, sys, threading
from strands_mesh_ros.fleet import Fleet
from strands_mesh_ros.mesh.config import MeshConfig
prefix, endpoint, *ids = sys.argv[1:]
cfg = MeshConfig(prefix=prefix, connect=(endpoint,), multicast_scouting=False)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
with Fleet(robots=[{"id": i, "driver": "mock"} for i in ids], config=cfg) as fleet:
    fleet.wait_ready(30)
    print("READY", *ids, flush=True)
    done.wait()
"""

# Mock robots with a counting skill, any Zenoh mode:
# "python -c COUNTING_PROC prefix mode endpoint id..."; skills bump(tag) and counts().
# $COUNTING_PRESENCE_HZ sets their presence rate (default the mesh's 2 Hz).
COUNTING_PROC = r"""
import collections, os, signal, sys, threading
from strands_mesh_ros.robot.driver import Skill
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh
prefix, mode, endpoint, *ids = sys.argv[1:]
cfg = MeshConfig(prefix=prefix, mode=mode, connect=(endpoint,), multicast_scouting=False,
                 presence_hz=float(os.environ.get("COUNTING_PRESENCE_HZ", "2")))
lock = threading.Lock()

class Counting(MockDriver):
    def __init__(self, rid):
        super().__init__(rid)
        self.counts = collections.Counter()
    def skills(self):
        def bump(ctx, tag):
            with lock:
                self.counts[tag] += 1
                return self.counts[tag]
        def counts(ctx):
            with lock:
                return dict(self.counts)
        tag = {"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]}
        return [*super().skills(), Skill("bump", bump, params=tag), Skill("counts", counts)]

done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
meshes = [Mesh(i, robot=Counting(i), config=cfg).start() for i in ids]
print("READY", *ids, flush=True)
done.wait()
for m in meshes:
    m.stop()
print("STOPPED", flush=True)
"""


# Prepended to a process's program: once the file named by $FREEZE_AFTER_BUILD_FLAG exists, the
# process deletes it and stops itself (SIGSTOP) right after building its next beat, before sending
# it: the point where a frozen robot once counted a beat its peers never heard (PeerCore.beat).
FREEZE_HOOK = r"""
import os as _os, signal as _signal, threading as _threading
from strands_mesh_ros.robot.peer_core import PeerCore as _PeerCore
_flag = _os.environ.get("FREEZE_AFTER_BUILD_FLAG")
if _flag:
    _build = _PeerCore.presence
    def _presence(self):
        pr = _build(self)
        try:
            _os.unlink(_flag)
        except FileNotFoundError:
            return pr
        _signal.pthread_kill(_threading.get_ident(), _signal.SIGSTOP)  # this thread stops before it returns
        return pr
    _PeerCore.presence = _presence
"""


# Prepended to a robot_node's program: the node publishes no joint_states.
NO_JOINT_STATES = r"""
from strands_mesh_ros.ros.robot_node import RobotNode as _RobotNode
_RobotNode._publish_joint_states = lambda self: None
"""


def frozen_by_itself(proc: Proc, timeout: float = 5.0) -> None:
    """Wait until ``proc`` has stopped itself (state ``T`` in /proc)."""
    def stopped() -> bool:
        with open(f"/proc/{proc.p.pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    wait_for(stopped, timeout, interval=0.005, what="the robot frozen between building a beat and sending it")


def long_move(mesh: Mesh, robot: str, timeout: float = 60.0):
    """Start a 60 s move on ``robot`` and return its future once the robot reports it running."""
    fut = mesh.send_async(robot, {"action": "skill", "name": "move_joints",
                                  "args": {"positions": [1] * 6, "duration": 60}}, timeout=timeout)
    wait_for(lambda: "motion" in (mesh.send(robot, {"action": "status"}, timeout=20).result or {}).get("lanes", {}),
             30, what=f"the move running on {robot}")
    return fut


# -- (a) a Fleet process killed mid-command ---------------------------------------------------------

@contextmanager
def fleet_process(net, *ids: str):
    """An agent peer (the hub) and a Fleet process running mock robots ``ids``, all on the mesh."""
    with Mesh("op", config=net.hub()) as op:
        fleet = python_proc("-c", FLEET_PROC, net.prefix, net.endpoint, *ids).ready()
        try:
            for rid in ids:
                op.wait_for_peer(rid, 15)
            yield op, fleet
        finally:
            fleet.close()


def test_fleet_process_killed_mid_command_callers_told_within_one_second(net):
    with fleet_process(net, "fa1", "fa2") as (op, fleet):
        for rid in ("fa1", "fa2"):
            wait_for(lambda rid=rid: op.peers.get(rid) and op.peers[rid].live_token, 10, what=f"{rid}'s token")
        moves = {rid: long_move(op, rid) for rid in ("fa1", "fa2")}
        t0 = time.monotonic()
        fleet.signal(signal.SIGKILL)
        for rid, fut in moves.items():
            r = fut.result(timeout=10)
            elapsed = time.monotonic() - t0
            assert r.status == "error" and "peer lost" in r.error and rid in r.error, r
            assert elapsed < 1.0, f"caller of {rid} told after {elapsed:.3f} s"
        wait_for(lambda: not {"fa1", "fa2"} & set(op.peers), 2, what="killed robots gone")
        r = op.send("fa1", {"action": "status"}, timeout=1.0)
        assert r.status == "error" and "unknown peer" in r.error


# -- (b) a hung Fleet process leaves within 2 s and rejoins -----------------------------------------

def test_hung_fleet_process_leaves_within_two_seconds_rejoins_and_answers(net):
    with fleet_process(net, "fh1", "fh2") as (op, fleet):
        moving = long_move(op, "fh1")
        t0 = time.monotonic()
        fleet.signal(signal.SIGSTOP)
        wait_for(lambda: not {"fh1", "fh2"} & set(op.peers), 5, what="hung robots to leave")
        left = time.monotonic() - t0
        assert left < 2.0, f"hung robots left after {left:.3f} s"
        r = moving.result(timeout=5)  # the caller of the running move is told
        assert r.status == "error" and "peer lost" in r.error, r
        assert time.monotonic() - t0 < 2.5
        fleet.signal(signal.SIGCONT)
        t1 = time.monotonic()
        for rid in ("fh1", "fh2"):
            op.wait_for_peer(rid, 5)
        rejoined = time.monotonic() - t1
        # a command sent after the resume works, on both robots
        r = op.tell("fh2", "move joints to 0.2 0 0 0 0 0 in 0.1 s", timeout=15)
        if not r.ok and "peer lost" in (r.error or ""):
            # The resumed process starved past the peer timeout once more (seen once, with two
            # busy loops beside two suites): by the frozen-peer rule its caller is told "peer
            # lost". That says nothing of the resume; once the robot is back, ask again.
            print(f"fh2 starved again after the resume ({r.error}); asking again")
            op.wait_for_peer("fh2", 10)
            r = op.tell("fh2", "move joints to 0.2 0 0 0 0 0 in 0.1 s", timeout=15)
        assert r.ok, r.error
        assert r.result["result"]["positions"]["joint1"] == pytest.approx(0.2)
        st = op.send("fh1", {"action": "status"}, timeout=10)
        assert st.ok and not st.result["locked_out"]
        print(f"hung robots left after {left:.3f} s; rejoined {rejoined:.3f} s after SIGCONT")


def test_command_sent_to_a_hung_robot_is_failed_and_not_run_after_it_resumes(net):
    """A caller told 'peer lost' may retry; the first attempt must then never run late.

    A command that reached a robot's socket while the robot was hung (SIGSTOP): the caller is
    told ``peer lost`` when the robot leaves the mesh (within 2 s); when the robot resumes it
    must not execute that command behind the caller's back: it refuses it, naming why."""
    with Mesh("op", config=net.hub()) as op:
        bots = python_proc("-c", COUNTING_PROC, net.prefix, "peer", net.endpoint, "hc1").ready()
        try:
            op.wait_for_peer("hc1", 15)
            assert op.send("hc1", {"action": "skill", "name": "bump", "args": {"tag": "before"}}, timeout=10).ok
            bots.signal(signal.SIGSTOP)
            fut = op.send_async("hc1", {"action": "skill", "name": "bump", "args": {"tag": "while-hung"}}, timeout=30)
            r = fut.result(timeout=10)
            assert r.status == "error" and "peer lost" in r.error, r
            thaw_and_check_not_run(op, bots, "hc1")
        finally:
            bots.close()


def thaw_and_check_not_run(op, bots, rid: str, rejoin=None) -> None:
    """Resume the hung robot ``rid`` (SIGCONT) and, once it is back on the mesh (``rejoin()``,
    default: its presence within 5 s), check from its own counts that the bump tagged
    ``before`` ran once and the one tagged ``while-hung`` never ran."""
    bots.signal(signal.SIGCONT)
    (rejoin or (lambda: op.wait_for_peer(rid, 5)))()
    counts = op.send(rid, {"action": "skill", "name": "counts"}, timeout=10).result["result"]
    assert counts.get("before") == 1
    assert counts.get("while-hung", 0) == 0, (
        f"the robot ran a command after its caller was told it was lost: {counts}")


def test_robot_frozen_between_building_a_beat_and_sending_it_refuses_what_was_sent_meanwhile(net, tmp_path):
    """A robot that froze (SIGSTOP) after building a beat and before sending it was silent, by its
    caller's count, from the beat before: its caller is told ``peer lost`` about 1.2 s after the
    freeze. Counting from the beat it built, the thawed robot would see 1.2 s of silence, under
    the 1.5 s peer timeout, and run the command sent meanwhile; it must refuse it."""
    flag = tmp_path / "freeze"
    with Mesh("op", config=net.hub()) as op:
        bots = python_proc("-c", FREEZE_HOOK + COUNTING_PROC, net.prefix, "peer", net.endpoint, "hb1",
                           env={"FREEZE_AFTER_BUILD_FLAG": str(flag)}).ready()
        try:
            op.wait_for_peer("hb1", 15)
            assert op.send("hb1", {"action": "skill", "name": "bump", "args": {"tag": "before"}}, timeout=10).ok
            flag.touch()
            frozen_by_itself(bots)
            r = op.send_async("hb1", {"action": "skill", "name": "bump", "args": {"tag": "while-hung"}},
                              timeout=30).result(timeout=10)
            assert r.status == "error" and "peer lost" in r.error, r
            thaw_and_check_not_run(op, bots, "hb1")
        finally:
            bots.close()


class _LaggingPresenceReader:
    """Makes one session's presence reader stall (a starved process), and freezes a robot right
    after its next beat.

    Once :meth:`arm`-ed with a ``SharedPeers``, that session's reader stalls right after it
    reads a beat of ``rid`` (later samples queue behind it) until :attr:`release` is set.
    :meth:`freeze_after_next_beat` has another session, reading at once, send ``SIGSTOP`` to
    ``proc`` as soon as a beat newer than the stalled one is out.
    """

    def __init__(self, monkeypatch, rid: str) -> None:
        import threading

        from strands_mesh_ros.mesh import session as mesh_session

        read = mesh_session.SharedPeers._on_presence
        self.reader = None
        self.t: float | None = None  # the stalled beat's timestamp
        self.stalled, self.release, self.frozen = threading.Event(), threading.Event(), threading.Event()

        def lagging_reader(shared, sample):
            read(shared, sample)
            if self.reader is shared and str(sample.key_expr).endswith(f"/{rid}/presence"):
                self.reader = None
                self.t = json.loads(bytes(sample.payload.to_bytes()))["timestamp"]
                self.stalled.set()
                self.release.wait(20)  # the reader is stuck here; later samples queue behind this one

        monkeypatch.setattr(mesh_session.SharedPeers, "_on_presence", lagging_reader)

    def freeze_after_next_beat(self, watcher: Mesh, key: str, proc) -> None:
        def on_beat(_key, value):
            if self.stalled.is_set() and not self.frozen.is_set() and json.loads(value)["timestamp"] > self.t:
                proc.signal(signal.SIGSTOP)
                self.frozen.set()

        watcher.subscribe(key, on_beat, raw=True)

    def arm(self, shared_peers) -> None:
        self.reader = shared_peers
        assert self.stalled.wait(5) and self.frozen.wait(5), "no beat after the reader stalled"

    def early_answer(self, fut, wait: float = 2.5):
        """``fut``'s answer if it comes within ``wait`` s while the reader is stalled, else
        None; the reader goes on either way."""
        try:
            return fut.result(timeout=wait)
        except TimeoutError:
            return None
        finally:
            self.release.set()


def test_caller_whose_presence_reader_lags_never_says_peer_lost_for_a_command_the_robot_runs(net, monkeypatch):
    """The caller's presence reader stalls (a starved process) after reading one beat of the
    robot; the robot beats once more, and freezes right after that beat (SIGSTOP). The caller
    must not say ``peer lost`` while that last beat is still unread: counted from the beat
    before, its silence would reach the peer timeout 0.5 s before the robot's own count does,
    and the robot, thawed at once, would run the command sent meanwhile. Here the caller says
    ``peer lost`` only after it has read the last beat and the robot stayed silent a full peer
    timeout more, and the thawed robot refuses the command."""
    lag = _LaggingPresenceReader(monkeypatch, "hl1")
    with Mesh("op", config=net.hub()) as op, Mesh("watcher", config=net.member()) as watcher:
        bots = python_proc("-c", COUNTING_PROC, net.prefix, "peer", net.endpoint, "hl1").ready()
        try:
            op.wait_for_peer("hl1", 15)
            assert op.send("hl1", {"action": "skill", "name": "bump", "args": {"tag": "before"}}, timeout=10).ok
            lag.freeze_after_next_beat(watcher, f"{net.prefix}/hl1/presence", bots)
            lag.arm(op._shared_peers)  # not the watcher's: it must read at once
            fut = op.send_async("hl1", {"action": "skill", "name": "bump", "args": {"tag": "while-hung"}}, timeout=30)
            # Said on silence counted from the beat before last, 'peer lost' would come ~1.2 s
            # after the freeze; give it 2.5 s, then let the reader go on.
            early = lag.early_answer(fut)
            r = early or fut.result(timeout=10)
            assert r.status == "error" and "peer lost" in r.error, r
            thaw_and_check_not_run(op, bots, "hl1")
            assert early is None, "peer lost said while the robot's last beat was still unread"
        finally:
            lag.release.set()
            bots.close()


def test_robot_heard_late_is_kept_while_it_answers_and_lost_once_frozen(net):
    """A caller that hears a robot's presence late must not say 'peer lost' while the robot runs,
    or the robot would run what the caller was told had failed (docs/mesh.md, the frozen-peer
    rule). Here the lateness is made certain: the robot beats every 10 s, far past the 1.5 s
    peer timeout (in the field: a caller starved of CPU, hearing 2 Hz beats late). Before a
    silent peer is declared lost its caller asks for its presence: a running robot answers,
    so a 4 s move (two peer timeouts without a beat) is answered ``done``. Frozen (SIGSTOP), it
    cannot answer: the caller is told ``peer lost ... no answer to a presence query`` within
    2 s, and once resumed the robot has not run the command sent meanwhile."""
    with Mesh("op", config=net.hub()) as op:
        bots = python_proc("-c", COUNTING_PROC, net.prefix, "peer", net.endpoint, "sb1",
                           env={"COUNTING_PRESENCE_HZ": "0.1"}).ready()
        try:
            # Ask rather than wait for a beat. Each answer also restarts the robot's own count of
            # its silence: commands sent right after one are never stamped before the moment
            # this robot, beating so slowly, notes its silence (PeerCore.tick).
            wait_for(lambda: "sb1" in op.refresh_peers(timeout=2.0) and "sb1" in op.peers, 15, what="sb1 heard")
            assert op.send("sb1", {"action": "skill", "name": "bump", "args": {"tag": "before"}}, timeout=10).ok
            t0 = time.monotonic()
            moved = op.send("sb1", {"action": "skill", "name": "move_joints",
                                    "args": {"positions": [0.3, 0, 0, 0, 0, 0], "duration": 4.0}}, timeout=30)
            assert moved.ok, f"a running robot heard late was dropped by its caller: {moved}"
            assert time.monotonic() - t0 >= 4.0 - 0.1  # the move did span two peer timeouts
            assert moved.result["result"]["positions"]["joint1"] == pytest.approx(0.3)

            bots.signal(signal.SIGSTOP)
            t1 = time.monotonic()
            r = op.send_async("sb1", {"action": "skill", "name": "bump", "args": {"tag": "while-hung"}},
                              timeout=30).result(timeout=10)
            told = time.monotonic() - t1
            assert r.status == "error" and "peer lost" in r.error and "no answer to a presence query" in r.error, r
            assert told < 2.0, f"caller told {told:.3f} s after SIGSTOP"
            assert "sb1" not in op.peers

            thaw_and_check_not_run(op, bots, "sb1", rejoin=lambda: wait_for(
                lambda: "sb1" in op.refresh_peers(timeout=2.0) and "sb1" in op.peers, 10, what="sb1 back"))
            print(f"caller told {told:.3f} s after SIGSTOP of a robot beating every 10 s")
        finally:
            bots.close()


# -- (c) the Zenoh router restarted ---------------------------------------------------------------

def test_router_restart_clients_reconnect_within_five_seconds_nothing_runs_twice():
    prefix = "r" + uuid.uuid4().hex[:10]
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    router = python_proc(str(HERE / "router_proc.py"), endpoint).ready()
    procs = [router]
    try:
        robots = {"rc1": None, "rc2": None, "rc3": None}
        # three robots in two client processes, and the test's own client peer
        procs.append(python_proc("-c", COUNTING_PROC, prefix, "client", endpoint, "rc1", "rc2").ready())
        procs.append(python_proc("-c", COUNTING_PROC, prefix, "client", endpoint, "rc3").ready())
        cfg = MeshConfig(prefix=prefix, mode="client", connect=(endpoint,), multicast_scouting=False)
        with Mesh("op", config=cfg) as op:
            everyone = {"op", *robots}

            def all_see_all() -> bool:
                if not set(robots) <= set(op.peers):
                    return False
                for rid in robots:
                    r = op.send(rid, {"action": "peers"}, timeout=2.0)
                    if not r.ok or not (everyone - {rid}) <= {p["peer_id"] for p in r.result}:
                        return False
                return True

            wait_for(all_see_all, 20, interval=0.1, what="every peer in every peer list")
            sent: dict[str, set[str]] = {rid: set() for rid in robots}

            def bump(rid: str, tag: str, timeout: float = 10.0):
                sent[rid].add(tag)
                return op.send_async(rid, {"action": "skill", "name": "bump", "args": {"tag": tag}}, timeout=timeout)

            for rid in robots:
                assert bump(rid, "pre").result().ok
            # in flight when the router dies: may or may not run, but never twice
            inflight = [bump(rid, f"inflight{i}") for i in range(5) for rid in robots]
            router.signal(signal.SIGKILL)
            router.p.wait(5)
            wait_for(lambda: not set(robots) & set(op.peers), 5, what="robots gone with the router")
            during = bump("rc1", "during", timeout=3.0).result()
            assert not during.ok  # no route: the caller is told, nothing hangs
            for f in inflight:
                f.result(timeout=15)
            router = python_proc(str(HERE / "router_proc.py"), endpoint).ready()
            procs.append(router)
            t0 = time.monotonic()
            wait_for(lambda: set(robots) <= set(op.peers), 10, interval=0.02, what="robots back in op's list")
            wait_for(all_see_all, 10, interval=0.05, what="every peer back in every peer list")
            back = time.monotonic() - t0
            assert back < 5.0, f"peers back in each other's lists {back:.2f} s after the router restart"
            for i, p in enumerate(procs[1:3]):
                assert p.p.poll() is None, f"robot process {i} died: {p.lines[-10:]}"
            # commands work again, and nothing ran twice
            for rid in robots:
                r = bump(rid, "post").result()
                assert r.ok and r.result["result"] == 1, r
            for rid in robots:
                counts = op.send(rid, {"action": "skill", "name": "counts"}, timeout=10).result["result"]
                assert set(counts) <= sent[rid], f"{rid} ran tags never sent: {counts}"
                assert all(n == 1 for n in counts.values()), f"{rid} ran a command twice: {counts}"
                assert counts["pre"] == 1 and counts["post"] == 1
            # the dedicated safety sessions reconnected too: an e-stop reaches every robot
            report = op.emergency_stop("router drill", timeout=3.0)
            assert set(report.stopped) == set(robots) and not report.not_acked, report.to_dict()
            print(f"peers back {back:.2f} s after the router restart")
        for p in procs[1:3]:
            p.signal(signal.SIGTERM)
            p.wait_line("STOPPED", 20)
    finally:
        for p in procs:
            p.close()


# -- (d) the bridge node killed and restarted -------------------------------------------------------


def _ros_skip() -> str | None:
    if not ros_helpers.HAVE_RCLPY:
        return ros_helpers.NO_ROS_REASON
    if not ros_helpers.HAVE_MSGS:
        return ros_helpers.NO_MSGS_REASON
    return None


@pytest.fixture
def ros_side(net, tmp_path, ros_domain):
    """Start ROS robots (fleet_host) and bridges (bridge_node) as subprocesses on a private domain."""
    why = _ros_skip()
    if why:
        pytest.skip(why)
    zconf = tmp_path / "zenoh.json5"
    zconf.write_text('{ scouting: { multicast: { enabled: false } } }')
    env = {"ROS_DOMAIN_ID": str(ros_domain), "STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit"),
           "ROS_LOCALHOST_ONLY": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    procs: list[Proc] = []

    class Side:
        def robots(self, *ids: str) -> Proc:
            fleet = tmp_path / f"fleet-{ids[0]}.yaml"
            fleet.write_text(json.dumps({"robots": [{"id": i, "driver": "mock", "state_rate": 10.0} for i in ids]}))
            p = Proc([sys.executable, "-m", "strands_mesh_ros.ros.fleet_host", str(fleet)], env=env)
            procs.append(p)
            return p

        def bridge(self, bridge_id: str) -> Proc:
            p = Proc([sys.executable, "-m", "strands_mesh_ros.ros.bridge_node", "--ros-args",
                      "-p", f"bridge_id:={bridge_id}", "-p", f"prefix:={net.prefix}",
                      "-p", f"connect:=['{net.endpoint}']", "-p", f"zenoh_config:={zconf}"], env=env)
            procs.append(p)
            return p

    yield Side()
    for p in procs:
        p.close()


def _via(op: Mesh, rid: str) -> str | None:
    info = op.peers.get(rid)
    return info.via if info else None


def test_bridge_killed_and_restarted_ros_robots_leave_and_reappear(net, ros_side):
    tag = uuid.uuid4().hex[:6]
    ids = [f"rb{tag}_1", f"rb{tag}_2"]
    with Mesh("op", config=net.hub()) as op:
        robots = ros_side.robots(*ids)
        first = ros_side.bridge("bridge_a")
        for rid in ids:
            wait_for(lambda rid=rid: _via(op, rid) == "bridge_a", 60, interval=0.05, what=f"{rid} on the mesh via bridge_a")
        assert op.send(ids[1], {"action": "status"}, timeout=30).ok
        moving = long_move(op, ids[0])
        # the bridge dies: its proxies' liveliness tokens go with it; callers are told at once
        t0 = time.monotonic()
        first.signal(signal.SIGKILL)
        r = moving.result(timeout=10)
        told = time.monotonic() - t0
        assert r.status == "error" and "peer lost" in r.error, r
        assert told < 1.0, f"caller told {told:.3f} s after the bridge was killed"
        wait_for(lambda: not set(ids) & set(op.peers), 2, what="ROS robots to leave the mesh")
        assert robots.p.poll() is None, "the ROS robots died with the bridge"
        # a new bridge: the robots reappear (ROS discovery + the bridge's settle time)
        t1 = time.monotonic()
        ros_side.bridge("bridge_b")
        for rid in ids:
            wait_for(lambda rid=rid: _via(op, rid) == "bridge_b", 60, interval=0.05, what=f"{rid} back via bridge_b")
        back = time.monotonic() - t1
        r = op.send(ids[1], {"action": "skill", "name": "move_joints",
                             "args": {"positions": [0.25, 0, 0, 0, 0, 0], "duration": 0}}, timeout=30)
        assert r.ok and r.responder_id == ids[1], r
        st = wait_for(lambda: (s := op.send(ids[1], {"action": "state"}, timeout=20)).ok and s, 30, what="state")
        assert st.result["joints"]["joint1"]["position"] == pytest.approx(0.25)
        print(f"caller told {told:.3f} s after the bridge was killed; robots back {back:.1f} s after a new bridge "
              f"was spawned (process start, ROS discovery, bridge settle)")
        assert back < 30.0


def test_ros_robot_process_killed_under_a_bridge_caller_told(net, ros_side):
    """A ROS robot node dies mid-command: the bridge only sees its /mesh/presence stop, so the
    caller is told after the bridge's presence timeout, not within the 1 s a mesh peer's
    liveliness token gives."""
    tag = uuid.uuid4().hex[:6]
    victim, other = f"rk{tag}_1", f"rk{tag}_2"
    with Mesh("op", config=net.hub()) as op:
        doomed = ros_side.robots(victim)
        ros_side.robots(other)
        ros_side.bridge("bridge_k")
        for rid in (victim, other):
            wait_for(lambda rid=rid: _via(op, rid) == "bridge_k", 60, interval=0.05, what=f"{rid} on the mesh")
        moving = long_move(op, victim)
        t0 = time.monotonic()
        doomed.signal(signal.SIGKILL)
        r = moving.result(timeout=15)
        told = time.monotonic() - t0
        assert r.status == "error" and "peer lost" in r.error, r
        wait_for(lambda: victim not in op.peers, 5, what="the dead ROS robot to leave the mesh")
        assert op.send(other, {"action": "status"}, timeout=30).ok  # the other robot is unaffected
        print(f"caller of a killed ROS robot told after {told:.3f} s")
        # bound: the bridge's presence timeout (1.5 s) + a housekeeping tick (0.25 s) + load slack
        assert told < 2.5, f"caller told {told:.3f} s after the ROS robot was killed"


# -- (e) a hung ROS robot behind the bridge ---------------------------------------------------------

HUNG_TARGET = [0.7, -0.6, 0.5, -0.4, 0.3, -0.2]
"""A distinctive joint target (rad, within the mock arm's ±2.9 rad) sent while the ROS robot is hung."""


def _arm(op: Mesh, rid: str) -> list[float]:
    """``rid``'s six arm joint positions, from a ``state`` command (the driver's own reading)."""
    st = op.send(rid, {"action": "state"}, timeout=20)
    assert st.ok, st
    return [st.result["joints"][f"joint{i}"]["position"] for i in range(1, 7)]


def test_caller_whose_presence_reader_lags_never_says_peer_lost_for_a_move_a_ros_robot_runs(net, monkeypatch, ros_domain):
    """The twin of the lagging-reader test above for a ROS robot behind the bridge: the beats
    the caller reads are the bridge proxy's, sent while the bridge hears the robot on ROS, and
    the robot node (a process of its own) freezes right after one of them, while the caller's
    presence reader is stalled on the beat before. The caller may be told ``peer lost`` only
    once the robot's own silence has reached the peer timeout: when the bridge drops the silent
    robot (its proxy's liveliness token goes), or on silence counted from the last beat, read.
    The thawed node then refuses the move sent meanwhile (heard on its ROS response topic) and
    the arm stays where it was."""
    why = _ros_skip()
    if why:
        pytest.skip(why)
    from strands_mesh_ros.msg import Response as ResponseMsg
    from strands_mesh_ros.ros import qos, topics

    tag = uuid.uuid4().hex[:8]
    rid, bridge_id = f"rl{tag}", f"bl_{tag}"
    start = [0.1, 0, 0, 0, 0, 0]
    lag = _LaggingPresenceReader(monkeypatch, rid)
    with Mesh("op", config=net.hub()) as op, Mesh("watcher", config=net.member()) as watcher:
        domain = ros_domain
        ros = ros_helpers.RosEnv(domain)
        robot = None
        try:
            answers = ros.sub(ResponseMsg, topics.robot_topic(rid, topics.MESH_RESPONSE), qos.RESPONSE)
            robot = _bridged_robot_node(op, net, ros, rid, bridge_id, domain)
            first = op.send(rid, _move(start), timeout=30)
            assert first.ok, first
            answers.wait(lambda m: m.turn_id == first.turn_id, 10, what="the first move's answer in ROS")
            lag.freeze_after_next_beat(watcher, f"{net.prefix}/{rid}/presence", robot)
            lag.arm(op._shared_peers)
            hung = op.send_async(rid, _move(HUNG_TARGET), timeout=30)
            early = lag.early_answer(hung)
            r = early or hung.result(timeout=15)
            assert r.status == "error" and "peer lost" in r.error, r
            # within the stall only the bridge's own drop may have said it (the robot silent on
            # ROS for the peer timeout), never the caller's count from a beat it had not read
            assert early is None or "liveliness token dropped" in early.error, early
            _thawed_node_refuses(op, robot, rid, answers, r, bridge_id, start)
        finally:
            lag.release.set()
            if robot is not None:
                robot.signal(signal.SIGCONT)
                robot.close()
            ros.close()


def test_ros_robot_frozen_between_building_a_beat_and_sending_it_refuses_what_was_sent_meanwhile(net, tmp_path, ros_domain):
    """The twin of the mesh-native test for a ROS robot behind the bridge: the robot node froze
    after building a beat and before publishing it, so the bridge last heard it on ROS a beat
    earlier and drops it a peer timeout after that one. The thawed node refuses the move sent
    meanwhile (heard on its ROS response topic) and the arm stays where it was. The node here
    publishes no joint_states (as when its driver cannot observe yet): the bridge counts them as
    life too, and one sent just before the freeze would delay the drop past the robot's own count."""
    why = _ros_skip()
    if why:
        pytest.skip(why)
    from strands_mesh_ros.msg import Response as ResponseMsg
    from strands_mesh_ros.ros import qos, topics

    tag = uuid.uuid4().hex[:8]
    rid, bridge_id = f"rb{tag}", f"bb_{tag}"
    start, flag = [0.3, 0, 0, 0, 0, 0], tmp_path / "freeze"
    with Mesh("op", config=net.hub()) as op:
        domain = ros_domain
        ros = ros_helpers.RosEnv(domain)
        robot = None
        try:
            answers = ros.sub(ResponseMsg, topics.robot_topic(rid, topics.MESH_RESPONSE), qos.RESPONSE)
            robot = _bridged_robot_node(op, net, ros, rid, bridge_id, domain, prelude=FREEZE_HOOK + NO_JOINT_STATES,
                                        node_env={"FREEZE_AFTER_BUILD_FLAG": str(flag)})
            first = op.send(rid, _move(start), timeout=30)
            assert first.ok, first
            answers.wait(lambda m: m.turn_id == first.turn_id, 10, what="the first move's answer in ROS")
            flag.touch()
            frozen_by_itself(robot)
            r = op.send_async(rid, _move(HUNG_TARGET), timeout=30).result(timeout=15)
            assert r.status == "error" and "peer lost" in r.error, r
            _thawed_node_refuses(op, robot, rid, answers, r, bridge_id, start)
        finally:
            if robot is not None:
                robot.signal(signal.SIGCONT)
                robot.close()
            ros.close()


@pytest.mark.parametrize("graph", ["readable", "unreadable"])
def test_ros_robot_whose_joint_states_come_from_elsewhere_leaves_when_its_node_dies(net, tmp_path, monkeypatch, graph, ros_domain):
    """A Gazebo robot's joint_states come from ros_gz_bridge, not from its robot node (the
    ``ros_topics`` driver, config/ros_topics_example.yaml), and go on when that node dies: they
    must not keep the robot on the mesh. Here the test publishes the joint_states (50 Hz) of a
    ``ros_topics`` robot node behind the bridge and kills the node (SIGKILL): a command in flight
    is answered ``peer lost`` and the robot leaves the mesh within 2.5 s (the 1.5 s peer timeout,
    the bridge's 4 Hz housekeeping, travel), while its joint_states still flow. ``unreadable``:
    the bridge's read of the ROS graph before the drop fails, and the robot is dropped all the same."""
    why = _ros_skip()
    if why:
        pytest.skip(why)
    from sensor_msgs.msg import JointState

    from strands_mesh_ros.ros.bridge_node import BridgeNode

    tag = uuid.uuid4().hex[:8]
    rid, bridge_id = f"rg{tag}", f"bg_{tag}"
    joints = [f"j{i}" for i in range(1, 5)]
    config = tmp_path / "gz_arm.yaml"
    config.write_text(json.dumps({"command_interface": "position_controller", "home": [0.0] * 4, "joints": [
        {"name": n, "lower": -2.0, "upper": 2.0, "max_velocity": 2.0} for n in joints]}))
    with Mesh("op", config=net.hub()) as op:
        domain = ros_domain
        ros = ros_helpers.RosEnv(domain)
        robot = None
        try:
            js = ros.probe.create_publisher(JointState, f"/{rid}/joint_states", 10)
            flowing: list[float] = []

            def publish() -> None:  # the simulator's joint_states, on the test's own executor
                js.publish(JointState(name=joints, position=[0.0] * 4))
                flowing.append(time.monotonic())

            ros.probe.create_timer(0.02, publish)
            robot = _bridged_robot_node(op, net, ros, rid, bridge_id, domain, extra_args=[
                "-p", "driver:=ros_topics", "-p", f"driver_config:={config}"])
            assert op.send(rid, {"action": "status"}, timeout=30).ok
            if graph == "unreadable":
                def unreadable(self, rid, pr):
                    raise RuntimeError("graph read failed (injected)")

                monkeypatch.setattr(BridgeNode, "_own_joint_states", unreadable)
            pending = op.send_async(rid, {"action": "skill", "name": "move_joints",
                                          "args": {"positions": [0.1] * 4, "duration": 30}}, timeout=60)
            robot.signal(signal.SIGKILL)
            killed = time.monotonic()
            r = pending.result(timeout=10)
            assert r.status == "error" and "peer lost" in r.error, r
            wait_for(lambda: rid not in op.peers, 2.5 - (time.monotonic() - killed), interval=0.02,
                     what=f"{rid} gone from the mesh after its node died")
            assert flowing[-1] > time.monotonic() - 0.5, "the joint_states stopped: the test proves nothing"
        finally:
            if robot is not None:
                robot.close()
            ros.close()


@pytest.mark.parametrize("executor", ["single", "events"])
def test_a_starved_bridge_drops_a_ros_robot_only_after_its_last_beat_is_a_peer_timeout_old(net, executor, ros_domain):
    """The bridge's executor stalls (a starved process) while a ROS robot beats on; the robot
    freezes right after a beat sent ≥ 0.5 s into the stall, and a move is sent to it. When the
    executor runs again its housekeeping timer is due at once and finds the robot silent since
    before the stall, with the robot's last beats still unread behind it (both executors run
    a due timer first). The bridge must read them before it judges: ``peer lost`` may reach
    the caller only once the robot's last beat is a peer timeout old, so the thawed robot
    refuses the move (heard on its ROS response topic) and the arm stays where it was."""
    why = _ros_skip()
    if why:
        pytest.skip(why)
    import threading

    from strands_mesh_ros.msg import Presence as PresenceMsg
    from strands_mesh_ros.msg import Response as ResponseMsg
    from strands_mesh_ros.ros import qos, topics

    tag = uuid.uuid4().hex[:8]
    rid, bridge_id = f"rs{tag}", f"bs_{tag}"
    start = [0.2, 0, 0, 0, 0, 0]
    timeout = net.member().peer_timeout
    armed, stalled, gate, frozen = (threading.Event() for _ in range(4))
    stall: dict[str, float] = {}
    last_beat: list[float] = []  # the wall time of the robot's last beat before it froze
    robot: Proc | None = None

    def stall_executor() -> None:  # a timer on the bridge's executor: holds it while armed
        if armed.is_set() and not stalled.is_set():
            stall["mono"], stall["wall"] = time.monotonic(), time.time()
            stalled.set()
            gate.wait(20)

    def on_presence(msg) -> None:  # on the test's own executor, which never stalls
        if msg.peer_id == rid and stalled.is_set() and not frozen.is_set() and msg.timestamp > stall["wall"] + 0.5:
            robot.signal(signal.SIGSTOP)
            last_beat.append(msg.timestamp)
            frozen.set()

    with Mesh("op", config=net.hub()) as op:
        domain = ros_domain
        bridge_env, ros = ros_helpers.RosEnv(domain, executor), ros_helpers.RosEnv(domain)
        try:
            answers = ros.sub(ResponseMsg, topics.robot_topic(rid, topics.MESH_RESPONSE), qos.RESPONSE)
            ros.probe.create_subscription(PresenceMsg, topics.PRESENCE, on_presence, qos.PRESENCE)
            bridge_env.probe.create_timer(0.02, stall_executor)
            robot = _bridged_robot_node(op, net, bridge_env, rid, bridge_id, domain)
            assert op.send(rid, _move(start), timeout=30).ok
            armed.set()
            assert stalled.wait(5), "the bridge's executor did not stall"
            assert frozen.wait(5), "no beat of the robot during the stall"
            hung = op.send_async(rid, _move(HUNG_TARGET), timeout=30)
            # The stall ends once the robot's silence, as the bridge last read it, passes the
            # timeout: without reading its backlog the bridge would drop the robot at once.
            gate.wait(max(0.0, stall["mono"] + timeout + 0.15 - time.monotonic()))
            gate.set()
            r = hung.result(timeout=15)
            told = time.time()
            assert r.status == "error" and "peer lost" in r.error, r
            silent = told - last_beat[0]
            assert silent > timeout, f"'peer lost' said {silent:.3f} s after the robot's last beat (peer timeout {timeout} s)"
            _thawed_node_refuses(op, robot, rid, answers, r, bridge_id, start)
            print(f"{executor}: 'peer lost' said {silent:.3f} s after the robot's last beat")
        finally:
            gate.set()
            if robot is not None:
                robot.signal(signal.SIGCONT)
                robot.close()
            ros.close()
            bridge_env.close()


def _bridged_robot_node(op: Mesh, net, env, rid: str, bridge_id: str, domain: int,
                        node_env: dict[str, str] | None = None, prelude: str | None = None,
                        extra_args: list[str] | None = None) -> Proc:
    """A bridge ``bridge_id`` spun on ``env`` (a ``ros_helpers.RosEnv`` on ``domain``) and a
    ``robot_node`` ``rid`` behind it (``node_env``, ``prelude``, ``extra_args``:
    :func:`_robot_node`'s ``env``, ``prelude`` and ``extra_args``); returned once ``op`` sees
    the robot via that bridge."""
    from strands_mesh_ros.ros.bridge_node import BridgeNode

    env.add(BridgeNode(mesh_config=net.member(), bridge_id=bridge_id, context=env.context,
                       node_name=f"bridge_{bridge_id}", mirror=False))
    robot = _robot_node(rid, net, domain, node_env, prelude, extra_args)
    wait_for(lambda: _via(op, rid) == bridge_id, 60, interval=0.05, what=f"{rid} on the mesh via {bridge_id}")
    return robot


def _thawed_node_refuses(op: Mesh, robot: Proc, rid: str, answers, lost, bridge_id: str, start: list[float]) -> None:
    """Resume the frozen robot node ``rid`` (SIGCONT): it answers ``lost``'s move (its caller was
    told ``peer lost``) with a refusal on its ROS response topic (``answers``), comes back on the
    mesh through the bridge, and its arm is still at ``start``."""
    robot.signal(signal.SIGCONT)
    refusal = answers.wait(lambda m: m.turn_id == lost.turn_id, 30, what="the robot's answer to the move sent while frozen")
    assert refusal.status == "refused" and "not run" in refusal.error, refusal
    # back through a new proxy, its liveliness token up (beats of the old proxy, read late by a
    # stalled reader, can show the robot present before a proxy takes its commands)
    wait_for(lambda: (info := op.peers.get(rid)) is not None and info.via == bridge_id and info.live_token,
             30, interval=0.05, what=f"{rid} back on the mesh")
    assert _arm(op, rid) == pytest.approx(start), "the robot ran a move after its caller was told it was lost"


def _move(positions: list[float]) -> dict:
    return {"action": "skill", "name": "move_joints", "args": {"positions": positions, "duration": 0}}


def _robot_node(rid: str, net, domain: int, env: dict[str, str] | None = None, prelude: str | None = None,
                extra_args: list[str] | None = None) -> Proc:
    """A ``robot_node`` process (mock arm, unless ``extra_args`` set ``driver``) in namespace
    ``/rid`` of ``net``'s fleet, on ROS domain ``domain``; ``prelude``: Python run in it before
    the node's ``main``; ``extra_args``: more ``--ros-args`` arguments."""
    if prelude is None:
        entry = Path(sys.executable).with_name("robot_node")  # the console entry point
        program = [str(entry if entry.is_file() else HERE.parent / "scripts" / "ros" / "robot_node")]
    else:
        program = ["-c", prelude + "\nfrom strands_mesh_ros.ros.robot_node import main\nraise SystemExit(main())\n"]
    return Proc([sys.executable, *program, "--ros-args", "-r", f"__ns:=/{rid}", "-p", "driver:=mock",
                 "-p", f"prefix:={net.prefix}", *(extra_args or [])], env={"ROS_DOMAIN_ID": str(domain), **(env or {})})


def _audit_lines(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines audit log (one being written may end mid-line)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def test_command_sent_to_a_hung_ros_robot_is_failed_and_not_run_after_it_resumes(net, tmp_path, ros_domain):
    """The twin of the mesh-native test above for a ROS robot behind the bridge: a
    ``robot_node`` process of its own (mock arm) made a mesh peer by a bridge (in this process,
    on this test's key prefix). A move to a distinctive target sent while the node is hung
    (SIGSTOP) is relayed onto its command topic; its caller is told ``peer lost`` when the bridge
    drops the silent robot. When the node resumes its peer core refuses that move, naming why
    (the frozen-peer rule, docs/mesh.md): the refusal is heard on the robot's ROS response topic,
    its audit log has an ``unresponsive`` line and no ``command`` line for that turn, and the arm
    is still where it was, while a move sent after the robot rejoined the mesh runs."""
    why = _ros_skip()
    if why:
        pytest.skip(why)
    from strands_mesh_ros.msg import Response as ResponseMsg
    from strands_mesh_ros.ros import qos, topics
    from strands_mesh_ros.ros.bridge_node import BridgeNode

    tag = uuid.uuid4().hex[:8]
    rid, bridge_id = f"rh{tag}", f"br_{tag}"
    domain = ros_domain
    audit = tmp_path / "robot-audit"
    start, after_target = [0.1, 0, 0, 0, 0, 0], [-0.3, 0.2, 0, 0, 0, 0]

    with Mesh("op", config=net.hub()) as op:
        ros = ros_helpers.RosEnv(domain)
        robot = None
        try:
            answers = ros.sub(ResponseMsg, topics.robot_topic(rid, topics.MESH_RESPONSE), qos.RESPONSE)
            bridge = ros.add(BridgeNode(mesh_config=net.member(), bridge_id=bridge_id, context=ros.context,
                                        node_name=f"bridge_{tag}", mirror=False))
            robot = _robot_node(rid, net, domain, {"STRANDS_MESH_AUDIT_DIR": str(audit)})
            wait_for(lambda: _via(op, rid) == bridge_id, 60, interval=0.05, what=f"{rid} on the mesh via {bridge_id}")
            first = op.send(rid, _move(start), timeout=30)
            assert first.ok, first
            assert _arm(op, rid) == pytest.approx(start)
            # the test hears the robot's answers in ROS too (its subscription matched before the hang)
            answers.wait(lambda m: m.turn_id == first.turn_id, 10, what="the first move's answer in ROS")

            proxy = bridge.proxies[rid]
            assert proxy.mesh.presence_live(), "the proxy of a robot heard on ROS must answer presence queries"
            assert bridge._endpoints[rid].own_joint_states, "the node's own joint_states are not counted as its life"

            robot.signal(signal.SIGSTOP)
            t0 = time.monotonic()
            hung = op.send_async(rid, _move(HUNG_TARGET), timeout=30)
            r = hung.result(timeout=15)
            told = time.monotonic() - t0
            assert r.status == "error" and "peer lost" in r.error, r
            wait_for(lambda: rid not in op.peers, 2, what="the hung ROS robot gone from the mesh")
            # its proxy would answer no presence query now: an answer would tell a caller about to
            # drop the silent robot that it runs (docs/mesh.md)
            assert bridge.ros_silence(rid) > net.member().peer_timeout
            assert not proxy.mesh.presence_live()

            robot.signal(signal.SIGCONT)
            t1 = time.monotonic()
            # the move that waited on the node's command topic is answered, refused, never run
            refusal = answers.wait(lambda m: m.turn_id == r.turn_id, 30, what="the robot's answer to the move sent while hung")
            assert refusal.status == "refused" and "unresponsive" in refusal.error and "not run" in refusal.error, refusal
            wait_for(lambda: _via(op, rid) == bridge_id, 30, interval=0.05, what=f"{rid} back on the mesh")
            rejoined = time.monotonic() - t1
            assert _arm(op, rid) == pytest.approx(start), (
                f"the robot ran a move after its caller was told it was lost (target {HUNG_TARGET})")
            after = op.send(rid, _move(after_target), timeout=30)  # the robot works: a move sent now runs
            assert after.ok, after
            assert _arm(op, rid) == pytest.approx(after_target)

            log = audit / f"audit-{rid}.jsonl"

            def audited() -> list[dict] | None:  # routine audit lines are written in batches
                lines = _audit_lines(log)
                return lines if any(e["event"] == "command" and e.get("turn_id") == after.turn_id for e in lines) else None

            lines = wait_for(audited, 10, what="the robot's audit line of the move after the resume")
            assert any(e["event"] == "unresponsive" and e["seconds"] > 1.5 for e in lines), lines
            assert not [e for e in lines if e.get("turn_id") == r.turn_id], "the move sent while hung was dispatched"
            assert robot.p.poll() is None, robot.lines[-20:]
            print(f"caller told {told:.3f} s after SIGSTOP; robot back on the mesh {rejoined:.3f} s after SIGCONT")
        finally:
            if robot is not None:
                robot.close()
            ros.close()
