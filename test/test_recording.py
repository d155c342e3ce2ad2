"""`strands-mesh record` / `replay` (strands_mesh_ros.recording; docs/recording.md).

A real fleet on real Zenoh is recorded while it moves, is e-stopped and resumed; the bag is read
back with rosbags and, independently, with mcap + mcap-ros2-support, and checked message by
message against what a separate Zenoh session saw on the wire.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import zenoh

from helpers import Proc, wait_for
from strands_mesh_ros import Fleet
from strands_mesh_ros.recording import (
    MESH_SAMPLE_TYPE, BagWriter, Recorder, open_bag, wire_samples,
)

RESUME_KEY = "recording-test-resume-key-0123"


class Tap:
    """An independent Zenoh session that keeps every sample under a key expression."""

    def __init__(self, config, keyexpr: str) -> None:
        self.session = zenoh.open(config.zenoh_config(listen=False))
        self.samples: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._sub = self.session.declare_subscriber(keyexpr, self._on)

    def _on(self, sample) -> None:
        with self._lock:
            self.samples.append((str(sample.key_expr), bytes(sample.payload.to_bytes())))

    def of(self, pred) -> list[tuple[str, bytes]]:
        with self._lock:
            return [s for s in self.samples if pred(s[0])]

    def close(self) -> None:
        self._sub.undeclare()
        self.session.close()


def mcap_messages(bag: Path) -> list[tuple[str, str, object]]:
    """(topic, schema name, decoded message) of every message, read with mcap-ros2-support."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    (file,) = bag.glob("*.mcap")
    with file.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        return [(ch.topic, schema.name, msg) for schema, ch, _m, msg in reader.iter_decoded_messages()]


def rosbags_messages(bag: Path) -> dict[str, list[tuple[int, object]]]:
    """{topic: [(log time ns, message)]} read with rosbags."""
    out: dict[str, list] = defaultdict(list)
    reader = open_bag(bag)
    try:
        for conn, ns, raw in reader.messages():
            out[conn.topic].append((ns, reader.deserialize(raw, conn.msgtype)))
    finally:
        reader.close()
    return out


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_record_a_moving_fleet_through_an_estop_and_read_it_back(net, tmp_path, monkeypatch):
    monkeypatch.setenv("STRANDS_MESH_RESUME_KEY", RESUME_KEY)
    bag = tmp_path / "incident"
    p = net.prefix
    robots = [{"id": "arm1", "driver": "mock"}, {"id": "arm2", "driver": "mock"}]
    with Fleet(robots=robots, config=net.hub()) as fleet:
        fleet.wait_ready(10)
        tap = Tap(net.member(), f"{p}/**")
        rec = Recorder(bag, net.member()).start()
        try:
            # both sessions hear both robots' state before anything happens
            for rid in ("arm1", "arm2"):
                key, topic = f"{p}/{rid}/state", f"/{rid}/joint_states"
                wait_for(lambda key=key: tap.of(lambda k: k == key), 10, what=f"tap hears {rid}")
                wait_for(lambda topic=topic: rec.stats.topics.get(topic), 10, what=f"recorder hears {rid}")
            target = [0.3, -0.2, 0.1, 0.0, 0.25, -0.1]
            fleet["arm1"].skills.move_joints(positions=target, duration=0.3)
            assert fleet.tell("arm2", "open gripper").ok
            report = fleet.estop("recording drill")
            assert {"arm1", "arm2"} <= set(report.stopped)
            answers = fleet.operator.resume(operator="tester")
            assert all(a["accepted"] for a in answers.values()) and {"arm1", "arm2"} <= set(answers)
            fleet["arm1"].skills.home(duration=0)

            def arm1_home_in_bag() -> bool:
                last = [b for k, b in tap.samples if k == f"{p}/arm1/state"][-1]
                return all(abs(j["position"]) < 1e-6 for j in json.loads(last)["joints"].values())

            wait_for(arm1_home_in_bag, 10, what="arm1 home")
            for topic, n in (("/mesh_wire/estop_ack", 2), ("/mesh_wire/resume_ack", 2), ("/mesh_wire/estop", 1)):
                wait_for(lambda topic=topic, n=n: rec.stats.topics.get(topic, 0) >= n, 10, what=f"{n} on {topic}")
            wait_for(lambda: len(tap.of(lambda k: "/safety/resume/ack/" in k)) >= 2, 10, what="tap acks")
        finally:
            stats = rec.stop()
            tap.close()
    assert (bag / "metadata.yaml").is_file() and list(bag.glob("*.mcap"))
    meta = (bag / "metadata.yaml").read_text()
    assert "storage_identifier: mcap" in meta and "version: 9" in meta and "RIHS01_" in meta

    by_topic = rosbags_messages(bag)
    assert {t: len(v) for t, v in by_topic.items()} == stats.topics
    # -- state: every seq from the first to the last recorded, none missing, none doubled, and
    # exactly what the independent session saw in that window
    raw_states = [m for _ns, m in by_topic["/mesh_wire/state"]]
    for rid in ("arm1", "arm2"):
        mine = [json.loads(bytes(m.payload)) for m in raw_states if m.key == f"{p}/{rid}/state"]
        seqs = [s["seq"] for s in mine]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{rid}: gaps or reordering in {seqs}"
        seen = [json.loads(b)["seq"] for k, b in tap.samples if k == f"{p}/{rid}/state"]
        assert [s for s in seen if seqs[0] <= s <= seqs[-1]] == seqs
        js = [m for _ns, m in by_topic[f"/{rid}/joint_states"]]
        assert len(js) == len(mine)
        for st, msg in zip(mine, js):  # one JointState per State, same stamp, names and values
            assert msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 == pytest.approx(st["t"], abs=1e-6)
            assert list(msg.name) == list(st["joints"])
            assert list(msg.position) == [j["position"] for j in st["joints"].values()]
    # the known motion is in the joint_states: arm1 reached the target, then went home
    arm1 = [list(m.position[:6]) for _ns, m in by_topic["/arm1/joint_states"]]
    assert any(pos == pytest.approx(target, abs=1e-6) for pos in arm1)
    assert arm1[-1] == pytest.approx([0.0] * 6, abs=1e-6)
    # -- contract traffic: the e-stop envelope and every ack, byte for byte as on the wire
    def wire(kind_topic: str) -> list[tuple[str, bytes]]:
        return [(m.key, bytes(m.payload)) for _ns, m in by_topic[kind_topic]]

    tap_estops = tap.of(lambda k: k == f"{p}/safety/estop")
    assert wire("/mesh_wire/estop") == tap_estops and len(tap_estops) == 1
    env = json.loads(tap_estops[0][1])
    assert env["reason"] == "recording drill"
    acks = wire("/mesh_wire/estop_ack")
    assert sorted(acks) == sorted(tap.of(lambda k: k.startswith(f"{p}/safety/estop/ack/")))
    assert {k.rsplit("/", 1)[1] for k, _ in acks} >= {"arm1", "arm2"}
    assert all(json.loads(b)["seq"] == env["seq"] for _, b in acks)
    assert sorted(wire("/mesh_wire/resume")) == sorted(tap.of(lambda k: k == f"{p}/safety/resume"))
    assert sorted(wire("/mesh_wire/resume_ack")) == sorted(tap.of(lambda k: k.startswith(f"{p}/safety/resume/ack/")))
    cmds = wire("/mesh_wire/cmd")
    assert any(b'"move_joints"' in b for k, b in cmds if k == f"{p}/arm1/cmd")
    assert wire("/mesh_wire/response") and wire("/mesh_wire/presence")
    # -- the same bag through mcap + mcap-ros2-support (the readers Foxglove's stack uses)
    mc = mcap_messages(bag)
    counts: dict[str, int] = defaultdict(int)
    for topic, _schema, _msg in mc:
        counts[topic] += 1
    assert dict(counts) == stats.topics
    assert {s for t, s, _ in mc if t == "/arm1/joint_states"} == {"sensor_msgs/msg/JointState"}
    mc_estop = [(m.key, bytes(m.payload)) for t, s, m in mc if t == "/mesh_wire/estop"]
    assert mc_estop == tap_estops and all(s == MESH_SAMPLE_TYPE for t, s, _ in mc if t.startswith("/mesh_wire/"))
    mc_js = [list(m.position) for t, _s, m in mc if t == "/arm1/joint_states"]
    assert mc_js == [list(m.position) for _ns, m in by_topic["/arm1/joint_states"]]


def test_garbage_on_contract_keys_is_recorded_raw_and_a_base_pose_becomes_odometry(net, tmp_path):
    p = net.prefix
    bag = tmp_path / "garbage"
    with zenoh.open(net.hub().zenoh_config()) as pub:
        rec = Recorder(bag, net.member()).start()
        try:
            probe = f"{p}/probe/presence"
            wait_for(lambda: pub.put(probe, b"{}") or rec.stats.topics.get("/mesh_wire/presence"), 10,
                     interval=0.05, what="recorder routed")
            state = {"peer_id": "base1", "t": 1790000000.25, "seq": 7,
                     "joints": {"left_wheel": {"position": 1.0, "velocity": 2.0, "effort": 0.0}},
                     "base_pose": {"x": 1.5, "y": -0.5, "z": 0.0, "yaw": 1.0}}
            sent = [
                (f"{p}/safety/estop", b"\xff\xfe not json \x00"),          # not UTF-8: still recorded
                (f"{p}/arm9/cmd", b'{"action": '),                          # truncated JSON
                (f"{p}/arm9/state", b'{"peer_id": "arm9"}'),                # a State missing fields
                (f"{p}/arm9/health", b"ok"),                                # not a contract key
                (f"{p}/arm-9/state", json.dumps({**state, "peer_id": "arm-9"}).encode()),  # no ROS name
                (f"{p}/base1/state", json.dumps(state).encode()),
            ]
            for key, payload in sent:
                pub.put(key, payload)
            wait_for(lambda: rec.stats.topics.get("/base1/odom"), 10, what="odometry written")
        finally:
            stats = rec.stop()
    got = [(k, b) for _ns, k, b in wire_samples(bag) if not k.endswith("/presence")]
    assert sorted(got) == sorted(sent)
    assert stats.unconvertible == 1  # arm9's State: kept raw, no joint_states for it
    assert "/arm9/joint_states" not in stats.topics
    assert stats.no_ros_name == {"arm-9"} and not any(t.startswith("/arm-9") for t in stats.topics)
    by_topic = rosbags_messages(bag)
    (_ns, garbage), = by_topic["/mesh_wire/estop"]
    assert bytes(garbage.payload) == sent[0][1] and not garbage.utf8 and garbage.text == ""
    assert [m.key for _ns, m in by_topic["/mesh_wire/other"]] == [f"{p}/arm9/health"]
    (_ns, odom), = by_topic["/base1/odom"]
    assert (odom.header.frame_id, odom.child_frame_id) == ("base1/odom", "base1/base_link")
    assert (odom.pose.pose.position.x, odom.pose.pose.position.y) == (1.5, -0.5)
    assert odom.pose.pose.orientation.z == pytest.approx(0.479425538604203)  # sin(yaw / 2)
    assert (odom.header.stamp.sec, odom.header.stamp.nanosec) == (1790000000, 250000000)
    mc = {t for t, _s, _m in mcap_messages(bag)}
    assert {"/base1/odom", "/base1/joint_states", "/mesh_wire/estop", "/mesh_wire/other"} <= mc


def _synthetic_bag(path: Path, prefix: str, n: int = 30) -> list[bytes]:
    """A bag with robot state interleaved with commands, an e-stop and acks; returns the states."""
    from strands_mesh_ros.mesh.config import MeshConfig

    w = BagWriter(path, MeshConfig(prefix=prefix))
    t0 = time.time_ns()
    states = []
    pres = {"robot_id": "arm1", "peer_id": "arm1", "robot_type": "mock", "peer_type": "sim", "hostname": "h",
            "timestamp": 1.0, "skills": [{"name": "home", "lane": "motion"}], "ros": {"namespace": "/arm1"}}
    for i in range(n):
        if i % 10 == 0:  # presence beats, as recorded from a live robot
            w.write(f"{prefix}/arm1/presence", json.dumps(pres).encode(), t0 + i * 20_000_000 + 1)
        st = json.dumps({"peer_id": "arm1", "t": 1790000000 + i * 0.02, "seq": i,
                         "joints": {"joint1": {"position": i * 0.01, "velocity": 0.0, "effort": 0.0}}}).encode()
        states.append(st)
        w.write(f"{prefix}/arm1/state", st, t0 + (i + 1) * 20_000_000)
        if i == 5:
            w.write(f"{prefix}/arm1/cmd", b'{"sender_id": "op", "turn_id": "t1", "command": {"action": "home"}}', t0 + i)
            w.write(f"{prefix}/broadcast", b'{"sender_id": "op", "turn_id": "t2", "command": {"action": "stop"}}', t0 + i)
        if i == 10:
            w.write(f"{prefix}/safety/estop", b'{"peer_id": "op", "t": 1.0, "seq": 1, "reason": "drill"}', t0 + i)
            w.write(f"{prefix}/safety/estop/ack/op/arm1", b'{"seq": 1}', t0 + i)
            w.write(f"{prefix}/safety/resume", b'{"peer_id": "op", "seq": 2}', t0 + i)
    w.close()
    return states


def test_replay_republishes_state_under_the_replay_prefix_and_never_commands_or_estops(net, tmp_path):
    src = net.prefix + "live"
    bag = tmp_path / "bag"
    states = _synthetic_bag(bag, src)
    replay_prefix = f"{net.prefix}rp"
    hub = net.hub()
    with zenoh.open(hub.zenoh_config()) as session:
        got: list[tuple[str, bytes]] = []
        bad: list[str] = []
        lock = threading.Lock()

        def keep(sample):
            with lock:
                got.append((str(sample.key_expr), bytes(sample.payload.to_bytes())))

        def forbidden(sample):
            with lock:
                bad.append(str(sample.key_expr))

        subs = [session.declare_subscriber(f"{replay_prefix}/**", keep)]
        for prefix in (src, replay_prefix):  # neither the live prefix nor the replay one
            subs += [session.declare_subscriber(f"{prefix}/safety/**", forbidden),
                     session.declare_subscriber(f"{prefix}/*/cmd", forbidden),
                     session.declare_subscriber(f"{prefix}/broadcast", forbidden)]
        subs.append(session.declare_subscriber(f"{src}/**", forbidden))
        r = cli("replay", str(bag), "--prefix", replay_prefix, "--rate", "2", "--json",
                "--connect", net.endpoint)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert summary["states"] == len(states) and summary["presences"] == 3 and summary["peers"] == ["arm1"]
        assert summary["skipped"] == 0
        others = [k for _ns, k, _b in wire_samples(bag) if not k.endswith(("/state", "/presence"))]
        assert len(others) == 5  # the bag does hold a command, a broadcast, an e-stop, an ack, a resume
        wait_for(lambda: any(b == states[-1] for _k, b in got), 10, what="the last state replayed")
        with lock:
            replayed = [b for k, b in got if k == f"{replay_prefix}/arm1/state"]
            presences = [json.loads(b) for k, b in got if k == f"{replay_prefix}/arm1/presence"]
            assert not bad, f"replay published on {bad}"
            assert {k for k, _ in got} <= {f"{replay_prefix}/arm1/state", f"{replay_prefix}/arm1/presence"}
        # in order, byte for byte, no gaps (the first few may precede the route to this session)
        assert replayed and replayed == states[len(states) - len(replayed):]
        assert presences
        for pr in presences:
            assert pr["replay"] is True and "skills" not in pr and "ros" not in pr
            assert abs(pr["timestamp"] - time.time()) < 60  # fresh, or receivers drop it
        for s in subs:
            s.undeclare()


def test_replay_refuses_the_recorded_prefix_a_bad_rate_and_a_missing_bag(net, tmp_path):
    bag = tmp_path / "bag"
    _synthetic_bag(bag, net.prefix, n=2)
    r = cli("replay", str(bag), "--prefix", net.prefix, "--connect", net.endpoint)
    assert r.returncode == 2 and "recorded under" in r.stderr
    r = cli("replay", str(bag), "--rate", "0", "--connect", net.endpoint)
    assert r.returncode == 2 and "rate must be a positive number" in r.stderr
    r = cli("replay", str(tmp_path / "nothing"), "--connect", net.endpoint)
    assert r.returncode == 2 and "not a rosbag2 bag" in r.stderr


def test_record_cli_writes_a_bag_and_refuses_bad_outputs(net, tmp_path, monkeypatch):
    bag = tmp_path / "run1"
    with Fleet(robots=[{"id": "arm1", "driver": "mock"}], config=net.hub()) as fleet:
        fleet.wait_ready(10)
        tap = Tap(net.member(), f"{net.prefix}/arm1/state")
        proc = Proc([sys.executable, "-m", "strands_mesh_ros.cli", "record", str(bag), "--json",
                     "--prefix", net.prefix, "--connect", net.endpoint])
        try:
            proc.wait_line("receiving samples", 30)
            # "receiving samples" comes with the first sample of any key, a presence beat as
            # likely as a state (once, under load, the SIGTERM came before any state): stop only
            # once three more states have gone out, so the recorder has had its chance at them
            seen = len(tap.of(lambda k: True))
            wait_for(lambda: len(tap.of(lambda k: True)) >= seen + 3, 30, what="three more arm1 states")
            proc.signal(signal.SIGTERM)  # as a service manager stops it: the bag is closed, not lost
            assert proc.p.wait(30) == 0, "\n".join(proc.lines)
        finally:
            proc.close()
            tap.close()
    summary = json.loads(next(line for line in proc.lines if line.startswith("{")))
    assert summary["topics"]["/arm1/joint_states"] > 0 and summary["topics"]["/mesh_wire/state"] > 0
    assert sum(1 for _ in wire_samples(bag)) == summary["samples"]
    # an existing OUT is refused, and replaced only with --force (and only if it is a bag)
    r = cli("record", str(bag), "--duration", "0.2", "--connect", net.endpoint)
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr
    r = cli("record", str(bag), "--duration", "0.2", "--force", "--json", "--connect", net.endpoint)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["samples"] == 0 and (bag / "metadata.yaml").is_file()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    (precious / "metadata.yaml").write_text("not: a bag")  # a metadata.yaml alone does not make a bag
    r = cli("record", str(precious), "--duration", "0.2", "--force", "--connect", net.endpoint)
    assert r.returncode == 2 and "not a rosbag2 bag" in r.stderr and (precious / "notes.txt").exists()
    # an unwritable OUT: its parent is a file, or a directory nothing may be created in
    (tmp_path / "a_file").write_text("")
    for out in (tmp_path / "a_file" / "bag", Path("/proc/strands_bag")):
        r = cli("record", str(out), "--duration", "0.2", "--connect", net.endpoint)
        assert r.returncode == 2 and "cannot write" in r.stderr, r.stderr
    r = cli("record", str(tmp_path / "x"), "--duration", "-1")
    assert r.returncode == 2 and "--duration" in r.stderr
    # a mesh that cannot be joined (the listen port is taken): exit 3, and no half-made bag left
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("record", str(tmp_path / "y"), "--duration", "0.2", "--listen", f"tcp/127.0.0.1:{port}")
    assert r.returncode == 3 and "could not join the mesh" in r.stderr, r.stderr
    assert not (tmp_path / "y").exists()
