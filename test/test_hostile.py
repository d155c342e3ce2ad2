"""Hostile and malformed payloads (hypothesis) on every key a robot peer listens on, against robot
peers in other processes, put with a raw Zenoh session.

Keys: ``P/<id>/presence``, ``P/<id>/cmd``, ``P/broadcast``, ``P/<peer>/response/...``,
``P/safety/resume``, ``P/safety/{estop,resume}/ack/...``, ``P/<id>/state`` and ``/stream`` (the victim
subscribes to them, as a dashboard would), bad key segments; and ``P/safety/estop`` on a separate
mesh, because ANY payload there halts and latches every robot by design (fail-safe).

Asserted: no crash (each peer answers ``status`` periodically and at the end); every hostile
command with a recoverable sender_id + turn_id gets exactly one response from each peer it
reached, an ``error`` naming the problem unless the command was in fact a valid harmless one;
nothing else is answered; no effect on the robot (joints unchanged, not locked out, no hostile
resume accepted); the e-stop-key robot stays alive, latched and refuses motion.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict
from itertools import count

import pytest
import zenoh
from helpers import free_port, python_proc, route_replies, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strands_mesh_ros.contract.keys import TURN_ID_PATTERN, InvalidPeerId, check_peer_id
from strands_mesh_ros.contract.payloads import (
    MAX_COMMAND_BYTES,
    MAX_PAYLOAD_BYTES,
    CommandEnvelope,
    ContractError,
    decode,
)
from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh

VICTIM = "hv1"  # every key but the e-stop's
LATCHED = "he1"  # the e-stop key, on its own mesh
OP = "hop"
RESUME_KEY = "hostile-fleet-resume-key-0123456789"
SENDERS = ("fuzzer", "fz-2", "A_b-9")
SAFE_DONE = frozenset({"status", "features", "state", "peers", "stop"})
"""Actions that, when valid, are answered ``done`` and change nothing observable here."""
SAFE_DONE_AGENT = frozenset({"status", "features", "peers", "stop"})
"""The same for an agent peer (no robot: ``state`` is an error; ``stop`` succeeds with nothing stopped)."""
ROBOT_SKILLS = frozenset({"move_joints", "home", "get_state", "move_gripper"})

FUZZ = {"deadline": None, "database": None, "derandomize": False,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                  HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                  HealthCheck.large_base_example]}
LIVENESS_EVERY = 50
"""Check the peers answer ``status`` every this many examples."""

_turns = count()
_VALID_TURN = re.compile(TURN_ID_PATTERN)


def fresh_turn() -> str:
    return f"h{next(_turns)}x{uuid.uuid4().hex[:6]}"


# -- strategies ---------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2 ** 63, -(2 ** 63), 2 ** 64, 1e308, -1e308, 5e-324]),
)
ODD_STRINGS = st.sampled_from(["", " ", "*", "**", "$*", "a/b", "../..", "\x00", "\ud800", "\u202e", "🤖" * 30,
                               "null", "NaN", "-1", "status", "a\n", "arm1\n", "é" * 70, "x" * 65])
STRINGS = st.one_of(st.text(max_size=40), ODD_STRINGS, st.integers(4_000, 40_000).map(lambda n: "x" * n))
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=16),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
ANY_VALUE = st.one_of(JSON, STRINGS, NUMBERS)
DEEP = "__DEEP__"
"""Placeholder string replaced in the serialised JSON by nesting ``[[[...]]]`` of a drawn depth."""
PARSE_DEPTH = 1000
"""Nesting Python's json parses (its recursion limit); deeper payloads are refused unread."""
DEPTHS = st.one_of(st.integers(2, 800), st.integers(1200, 5000))
"""Nesting depths, clear of the parse limit's edge (how much stack a parsing thread has left)."""


def nesting(payload: bytes) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text (outside strings)."""
    depth = best = 0
    in_str = esc = False
    for c in payload:
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:  # backslash
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return best


def reply_key(reply_to) -> bool:
    """The robot's rule for a usable ``reply_to`` (a concrete key)."""
    return (isinstance(reply_to, str) and bool(reply_to)
            and all(c and c not in ("*", "**") and not set(c) & set("$?#*") for c in reply_to.split("/")))


def dumps(obj, depth: int = 0) -> bytes:
    text = json.dumps(obj)  # NaN / Infinity come out as the non-standard literals: hostile too
    if depth:
        text = text.replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    return text.encode("utf-8", "surrogatepass")


def base_commands(turn: str):
    """Commands that are harmless when valid, or invalid by construction (never motion)."""
    zz = st.text(max_size=20).map(lambda t: "zz " + t)
    return st.one_of(
        st.sampled_from(sorted(SAFE_DONE)).map(lambda a: {"action": a}),
        st.text(max_size=20).map(lambda t: {"action": "skill", "name": "zz_" + t, "args": {}}),
        st.just({"action": "skill", "name": "move_joints", "args": {"positions": [0.0] * 6, "zz_extra": 1}}),
        st.just({"action": "skill", "name": "move_joints", "args": {"positions": "high"}}),
        zz.map(lambda t: {"action": "execute", "instruction": t}),
        zz.map(lambda t: {"action": "start", "instruction": t}),
        st.just({"action": "resume"}),
        st.just({"action": "resume", "t": 1.0, "seq": 2 ** 62, "mac": "00" * 32}),
        st.text(max_size=20).map(lambda t: {"action": "zz" + t}),
    )


@st.composite
def near_valid_command(draw, turn: str):
    """A command envelope with one thing broken (or, sometimes, nothing: a valid harmless one)."""
    env = {"sender_id": draw(st.sampled_from(SENDERS)), "turn_id": turn, "command": draw(base_commands(turn)),
           "timestamp": 1.7e9}
    depth = 0
    how = draw(st.sampled_from(["none", "drop", "type", "string", "number", "extra", "deep", "pad",
                                "action", "command_field", "reply_to", "many_extras"]))
    field = draw(st.sampled_from(["sender_id", "turn_id", "command", "timestamp", "reply_to"]))
    cmd = env["command"]
    if how == "drop":
        env.pop(field, None)
    elif how == "type":
        env[field] = draw(JSON)
    elif how == "string":
        env[field] = draw(STRINGS)
        if field == "turn_id" and isinstance(env[field], str) and _VALID_TURN.match(env[field] + turn):
            # A drawn string that is a valid turn id ("NaN", "status", ...) is kept unique: drawn
            # again in a later example or test of this module, it would meet the robot's dedup
            # window and be answered "repeated turn_id", which the owed answers do not count.
            env[field] += turn
    elif how == "number":
        env[field] = draw(NUMBERS)
    elif how == "extra":
        env[draw(st.text(max_size=12))] = draw(ANY_VALUE)
    elif how == "many_extras":
        for i in range(draw(st.integers(1, 300))):
            env[f"k{i}"] = i
    elif how == "deep":
        depth = draw(DEPTHS)
        if draw(st.booleans()):
            cmd["deep"] = DEEP
        else:
            env["deep"] = DEEP
    elif how == "pad":
        cmd["pad"] = "p" * draw(st.integers(15_000, 40_000))
    elif how == "action":
        cmd["action"] = draw(ANY_VALUE)
        if cmd["action"] == "emergency_stop":
            cmd["action"] = "zz"
    elif how == "command_field":
        key = draw(st.sampled_from(["instruction", "name", "args", "t", "seq", "mac", "operator", "reason"]))
        cmd[key] = draw(ANY_VALUE)
        if key == "instruction" and isinstance(cmd[key], str):
            cmd[key] = "zz " + cmd[key]  # a random text must never become a motion instruction
        if key == "name" and isinstance(cmd[key], str) and cmd[key] in ROBOT_SKILLS:
            cmd[key] = "zz"  # nor a real skill
    elif how == "reply_to":
        env["reply_to"] = draw(st.one_of(
            st.sampled_from(["", "*", "**", "a//b", "/abs", "trail/", "x/$*", "a?b", "a#b", "P/**/x"]),
            JSON.filter(lambda v: not isinstance(v, str)),
            st.just("CUSTOM")))
    return env, depth


def raw_bytes():
    return st.one_of(st.binary(max_size=2048), st.integers(17_000, 40_000).map(lambda n: bytes(range(256)) * (n // 256)),
                     st.sampled_from([b"", b"{", b"[]", b"null", b"{}", b"\xff\xfe", b"\x00" * 64,
                                      b'{"sender_id": "fuzzer"}', b'{"turn_id": "x"}', b"NaN", b"1e400"]))


def any_json_payload():
    return st.one_of(JSON.map(dumps), DEPTHS.map(lambda d: dumps(DEEP, d)))


# -- what a robot owes a hostile command -------------------------------------------------------

def owed(payload: bytes, responder: str, broadcast: bool, safe: frozenset = SAFE_DONE):
    """``(sender, turn, kind, message)`` of the one answer ``responder`` owes, or None.

    ``kind`` is ``done`` for a valid harmless command, else ``error``; ``message`` is the exact
    contract error when the envelope or its action is invalid (the robot must name that problem).
    """
    if len(payload) > MAX_PAYLOAD_BYTES or nesting(payload) >= PARSE_DEPTH:
        return None  # refused unread: nobody to answer (the robot audits it)
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    sender, turn = data.get("sender_id"), data.get("turn_id")
    if not (isinstance(sender, str) and isinstance(turn, str) and re.fullmatch(TURN_ID_PATTERN, turn)):
        return None
    try:
        check_peer_id(sender)
    except InvalidPeerId:
        return None
    if broadcast and sender == responder:
        return None  # its own broadcast
    try:
        env = decode(CommandEnvelope, payload, MAX_COMMAND_BYTES)
        action = env.action()
    except ContractError as exc:
        return sender, turn, "error", str(exc)
    if reply_key(env.reply_to) and any(c.startswith("@") for c in env.reply_to.split("/")):
        return None  # answered on a verbatim key, which `**` cannot observe
    if action.action in safe:
        return sender, turn, "done", None
    return sender, turn, "error", None


# -- the module's mesh --------------------------------------------------------------------------

class Replies:
    """Every response seen anywhere (``**``), by turn id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_turn: dict[str, list[dict]] = defaultdict(list)
        self.probe: list[dict] = []  # for route_replies

    def __call__(self, sample) -> None:
        raw = bytes(sample.payload.to_bytes())
        if b'"responder_id"' not in raw:
            return  # state, presence, our own hostile commands...
        try:
            d = json.loads(raw)
        except (ValueError, RecursionError):
            return
        if not isinstance(d, dict):
            return
        d["_key"] = str(sample.key_expr)
        with self.lock:
            self.by_turn[str(d.get("turn_id"))].append(d)
        self.probe.append(d)

    def get(self, turn: str) -> list[dict]:
        with self.lock:
            return list(self.by_turn.get(turn, []))


class World:
    def __init__(self, tmp) -> None:
        self.prefix = "h" + uuid.uuid4().hex[:10]
        self.prefix2 = "e" + uuid.uuid4().hex[:10]
        self.endpoint = f"tcp/127.0.0.1:{free_port()}"
        audit = str(tmp / "audit")
        env = {"STRANDS_MESH_AUDIT_DIR": audit}
        self.op = Mesh(OP, config=MeshConfig(prefix=self.prefix, listen=(self.endpoint,), multicast_scouting=False),
                       audit_dir=audit).start()
        self.op2 = Mesh(OP, config=MeshConfig(prefix=self.prefix2, connect=(self.endpoint,), multicast_scouting=False),
                        audit_dir=audit).start()
        common = ["--connect", self.endpoint, "--no-multicast", "--resume-key", RESUME_KEY]
        self.victim = python_proc("-m", "strands_mesh_ros.peer", VICTIM, "--prefix", self.prefix, *common,
                                  "--subscribe", f"{self.prefix}/*/state", "--subscribe", f"{self.prefix}/*/stream",
                                  env=env)
        self.latched = python_proc("-m", "strands_mesh_ros.peer", LATCHED, "--prefix", self.prefix2, *common, env=env)
        self.victim.ready()
        self.latched.ready()
        self.op.wait_for_peer(VICTIM, 15)
        self.op2.wait_for_peer(LATCHED, 15)
        self.raw = zenoh.open(MeshConfig(prefix=self.prefix, connect=(self.endpoint,),
                                         multicast_scouting=False).zenoh_config())
        self.replies = Replies()
        self.acks: list[dict] = []
        # answers go to P/<sender>/response/..., or to any concrete key a command names in reply_to
        self._subs = [self.raw.declare_subscriber("**", self.replies)]
        self._subs += [self.raw.declare_subscriber(f"{p}/safety/resume/ack/**", self._on_ack)
                       for p in (self.prefix, self.prefix2)]
        route_replies(self.raw, self, VICTIM, self.replies.probe, sender=SENDERS[0])
        self._route_safety()
        self.sent = 0

    def _route_safety(self) -> None:
        """Until the victim's safety session answers a (refused) resume, hostile safety payloads
        might go nowhere: probe until its ack arrives."""
        seq = count(1)

        def probe() -> bool:
            env = {"peer_id": SENDERS[0], "t": time.time(), "seq": next(seq), "targets": [VICTIM], "mac": "00" * 32}
            self.raw.put(f"{self.prefix}/safety/resume", json.dumps(env), congestion_control=zenoh.CongestionControl.BLOCK)
            return wait_for(lambda: self.acks, 0.2, what="ack") if not self.acks else True

        def attempt() -> bool:
            try:
                return probe()
            except AssertionError:
                return False

        wait_for(attempt, 15, interval=0.0, what="the victim's safety session routed")
        assert not [a for a in self.acks if a.get("accepted")], self.acks

    def _on_ack(self, sample) -> None:
        # P/safety/resume/ack/{issuer}/{responder}: keep the robots' answers to our resumes (issued
        # as SENDERS), not our own hostile acks (put as issuer VICTIM) delivered back to us
        *_, issuer, responder = str(sample.key_expr).split("/")
        if issuer not in SENDERS or responder not in (VICTIM, LATCHED):
            return
        try:
            ack = json.loads(bytes(sample.payload.to_bytes()))
        except ValueError:
            ack = None
        self.acks.append(ack if isinstance(ack, dict) else {"unparsable": True, "accepted": True})

    def put(self, key: str, payload: bytes) -> bool:
        """Put one hostile payload (reliably: congestion control BLOCK); False if Zenoh refused the key."""
        try:
            self.raw.put(key, payload, congestion_control=zenoh.CongestionControl.BLOCK)
        except zenoh.ZError:
            return False
        self.sent += 1
        return True

    def alive(self, mesh: Mesh, peer: str, proc) -> dict:
        assert proc.p.poll() is None, f"{peer} died:\n" + "\n".join(proc.lines[-30:])
        r = mesh.send(peer, {"action": "status"}, timeout=15)
        assert r.ok, f"{peer} did not answer status: {r.error}"
        return r.result

    def close(self) -> None:
        for s in self._subs:
            s.undeclare()
        self.raw.close()
        for p in (self.victim, self.latched):
            p.close()
        self.op2.stop()
        self.op.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("hostile"))
    yield w
    w.close()
    print(f"hostile payloads put: {w.sent}")


def assert_unharmed(w: World) -> None:
    status = w.alive(w.op, VICTIM, w.victim)
    assert not status["locked_out"], status
    st_ = w.op.send(VICTIM, {"action": "state"}, timeout=15)
    assert st_.ok and all(j["position"] == 0.0 for j in st_.result["joints"].values()), st_.result
    assert not [a for a in w.acks if a.get("accepted")], "a hostile resume was accepted"


def check_answers(w: World, owed_list: list[tuple], responders: tuple[str, ...]) -> None:
    """Each owed answer arrives exactly once per responder, of the right kind, naming the problem."""
    def arrived() -> bool:
        return all(len([r for r in w.replies.get(t) if r.get("responder_id") in responders]) >= len(responders)
                   for (_, t, _, _, _) in owed_list)

    try:
        wait_for(arrived, 30, interval=0.05, what="every owed answer")
    except AssertionError:
        missing = [o for o in owed_list if len(w.replies.get(o[1])) < len(responders)]
        raise AssertionError(f"{len(missing)} hostile commands unanswered, e.g. {missing[:3]}") from None
    # a final routed round trip: any duplicate would have arrived by now (same FIFO path)
    w.alive(w.op, VICTIM, w.victim)
    # Hypothesis may send one (sender, turn_id) more than once: the contract then answers each
    # repeat with the first answer, unchanged, and never runs the command again.
    sends: dict[tuple, int] = {}
    for sender, turn, *_ in owed_list:
        sends[(sender, turn)] = sends.get((sender, turn), 0) + 1
    checked: set[tuple] = set()
    for sender, turn, kind, message, payload in owed_list:
        if (sender, turn) in checked:
            continue  # a repeat: covered by the first send's checks below
        checked.add((sender, turn))
        got = [r for r in w.replies.get(turn) if r["_key"].startswith(f"{w.prefix}/{sender}/")]
        for responder in responders:
            mine = [r for r in got if r.get("responder_id") == responder]
            n = sends[(sender, turn)]
            assert len(mine) == n, f"{responder} answered turn {turn} {len(mine)} times for {n} sends: {mine}; sent {payload!r}"
            assert all(r == mine[0] for r in mine), f"a repeated turn {turn} got a different answer: {mine}"
            r = mine[0]
            if kind == "done":
                assert r["status"] == "done", (r, payload)
                continue
            assert r["type"] == "error" and r["status"] in ("error", "refused") and r.get("error"), (r, payload)
            if message is not None:
                assert r["error"] == message, (r["error"], message, payload)


# -- commands -----------------------------------------------------------------------------------

def test_hostile_commands_to_the_cmd_key(world):
    w = world
    key = f"{w.prefix}/{VICTIM}/cmd"
    owed_list: list[tuple] = []
    n = count(1)

    @settings(max_examples=300, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        kind = data.draw(st.sampled_from(["near", "near", "near", "bytes", "json"]))
        if kind == "near":
            turn = fresh_turn()
            env, depth = data.draw(near_valid_command(turn))
            if env.get("reply_to") == "CUSTOM":
                env["reply_to"] = f"{w.prefix}/fuzzer/response/custom/{turn}"
            payload = dumps(env, depth)
        elif kind == "bytes":
            payload = data.draw(raw_bytes())
        else:
            payload = data.draw(any_json_payload())
        assert w.put(key, payload)
        o = owed(payload, VICTIM, broadcast=False)
        if o is not None:
            owed_list.append((*o, payload[:300]))
        if next(n) % LIVENESS_EVERY == 0:
            w.alive(w.op, VICTIM, w.victim)

    fuzz()
    assert len(owed_list) >= 100, f"only {len(owed_list)} commands were answerable: the strategy is off"
    assert any(o[2] == "done" for o in owed_list) and any(o[3] for o in owed_list)
    check_answers(w, owed_list, (VICTIM,))
    assert_unharmed(w)


def test_hostile_commands_on_broadcast(world):
    w = world
    key = f"{w.prefix}/broadcast"
    owed_v: list[tuple] = []
    owed_op: list[tuple] = []
    n = count(1)

    @settings(max_examples=120, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        if data.draw(st.integers(0, 3)):
            env, depth = data.draw(near_valid_command(fresh_turn()))
            env.pop("reply_to", None)
            payload = dumps(env, depth)
        else:
            payload = data.draw(st.one_of(raw_bytes(), any_json_payload()))
        assert w.put(key, payload)
        for responder, lst, safe in ((VICTIM, owed_v, SAFE_DONE), (OP, owed_op, SAFE_DONE_AGENT)):
            o = owed(payload, responder, broadcast=True, safe=safe)
            if o is not None:
                lst.append((*o, payload[:300]))
        if next(n) % LIVENESS_EVERY == 0:
            w.alive(w.op, VICTIM, w.victim)

    fuzz()
    assert len(owed_v) >= 40
    check_answers(w, owed_v, (VICTIM,))
    check_answers(w, owed_op, (OP,))  # the in-process agent peer answers hostile broadcasts too
    assert_unharmed(w)


# -- presence, responses, state ---------------------------------------------------------------------

SEGMENTS = st.one_of(st.sampled_from([VICTIM, OP, "fuzzer", "safety", "broadcast", "x" * 65, "a b", "é", "🤖",
                                      "$x", "-", "_", "response", "cmd", "presence"]),
                     st.text(alphabet=st.characters(blacklist_characters="/*$?#", blacklist_categories=("Cs",)),
                              min_size=1, max_size=20))


@st.composite
def near_valid_presence(draw, peer: str):
    pr = {"robot_id": peer, "peer_id": peer, "robot_type": "mock_arm", "peer_type": "robot", "hostname": "h",
          "timestamp": time.time(), "schema": "strands-mesh/1", "skills": [], "task_status": "idle"}
    field = draw(st.sampled_from(sorted(pr) + ["ros", "via", "skills"]))
    how = draw(st.sampled_from(["drop", "value", "deep", "big"]))
    depth = 0
    if how == "drop":
        pr.pop(field, None)
    elif how == "value":
        pr[field] = draw(ANY_VALUE)
    elif how == "deep":
        depth = draw(DEPTHS)
        pr[field] = DEEP
    else:
        pr["skills"] = [{"name": f"s{i}", "params": {"type": "object"}} for i in range(draw(st.integers(100, 2000)))]
    return dumps(pr, depth)


def test_hostile_presence(world):
    w = world
    n = count(1)

    @settings(max_examples=150, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        seg = data.draw(st.one_of(st.just("ghost"), SEGMENTS))
        payload = data.draw(st.one_of(near_valid_presence(seg if seg.isascii() else "ghost"), raw_bytes(),
                                      any_json_payload()))
        w.put(f"{w.prefix}/{seg}/presence", payload)
        if next(n) % LIVENESS_EVERY == 0:
            w.alive(w.op, VICTIM, w.victim)

    fuzz()
    assert_unharmed(w)
    # nothing with a bad id entered either peer table (a well-formed presence for a valid id is
    # by design a peer: the contract has no authentication of presence)
    r = w.op.send(VICTIM, {"action": "peers"}, timeout=15)
    assert r.ok
    for p in r.result:
        check_peer_id(p["peer_id"])
    for pid in w.op.peers:
        check_peer_id(pid)


def test_hostile_responses_to_the_robot(world):
    w = world
    n = count(1)

    @settings(max_examples=120, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        tail = data.draw(st.lists(SEGMENTS, min_size=1, max_size=4))
        payload = data.draw(st.one_of(
            raw_bytes(), any_json_payload(),
            st.fixed_dictionaries({"type": st.sampled_from(["response", "error"]), "status": ANY_VALUE,
                                   "responder_id": SEGMENTS, "turn_id": st.one_of(SEGMENTS, ANY_VALUE),
                                   "result": ANY_VALUE}).map(dumps)))
        w.put(f"{w.prefix}/{VICTIM}/response/" + "/".join(tail), payload)
        if next(n) % LIVENESS_EVERY == 0:
            w.alive(w.op, VICTIM, w.victim)

    fuzz()
    assert_unharmed(w)


def test_hostile_state_and_stream(world):
    w = world

    @settings(max_examples=80, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        seg = data.draw(st.one_of(st.just(VICTIM), SEGMENTS))
        leaf = data.draw(st.sampled_from(["state", "stream"]))
        payload = data.draw(st.one_of(raw_bytes(), any_json_payload(),
                                      st.fixed_dictionaries({"peer_id": SEGMENTS, "t": ANY_VALUE, "seq": ANY_VALUE,
                                                             "joints": ANY_VALUE}).map(dumps)))
        w.put(f"{w.prefix}/{seg}/{leaf}", payload)

    fuzz()
    assert_unharmed(w)


# -- safety keys other than the e-stop -------------------------------------------------------------

def _resume_payloads(issuer):
    env = st.fixed_dictionaries({"peer_id": issuer, "t": st.one_of(st.just(1.7e9), NUMBERS),
                                 "seq": st.one_of(st.integers(), NUMBERS, ANY_VALUE), "operator": ANY_VALUE,
                                 "targets": st.one_of(st.none(), st.lists(SEGMENTS, max_size=3), ANY_VALUE),
                                 "mac": st.one_of(st.just("00" * 32), STRINGS)})
    return st.one_of(env.map(dumps), raw_bytes(), any_json_payload())


def test_hostile_resume_and_acks(world):
    w = world
    n = count(1)
    ack_body = st.fixed_dictionaries({"issuer_id": SEGMENTS, "responder_id": SEGMENTS,
                                      "seq": st.one_of(NUMBERS, ANY_VALUE), "t": ANY_VALUE,
                                      "halted": ANY_VALUE, "accepted": ANY_VALUE})

    @settings(max_examples=150, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        which = data.draw(st.sampled_from(["resume", "resume", "estop_ack", "resume_ack"]))
        if which == "resume":
            w.put(f"{w.prefix}/safety/resume", data.draw(_resume_payloads(st.sampled_from(SENDERS))))
        else:
            leaf = "estop" if which == "estop_ack" else "resume"
            responder = data.draw(SEGMENTS)
            payload = data.draw(st.one_of(ack_body.map(dumps), raw_bytes(), any_json_payload(),
                                          st.just(b'{"seq": 1e400, "responder_id": "x"}')))
            w.put(f"{w.prefix}/safety/{leaf}/ack/{VICTIM}/{responder}", payload)
        if next(n) % LIVENESS_EVERY == 0:
            w.alive(w.op, VICTIM, w.victim)

    fuzz()
    assert_unharmed(w)
    # and the victim still takes an ordinary command after all that
    r = w.op.tell(VICTIM, "get state", timeout=15)
    assert r.ok, r.error


# -- the e-stop key: every payload halts and latches --------------------------------------------------

def _estop_payloads():
    env = st.fixed_dictionaries({"peer_id": st.one_of(st.sampled_from([LATCHED, OP, "fuzzer"]), SEGMENTS, ANY_VALUE),
                                 "t": ANY_VALUE, "seq": ANY_VALUE, "reason": ANY_VALUE})
    return st.one_of(env.map(dumps), raw_bytes(), any_json_payload(),
                     DEPTHS.map(lambda d: dumps({"peer_id": "x", "t": 1.0, "seq": 1, "reason": DEEP}, d)))


def test_any_payload_on_the_estop_key_latches_and_the_robot_survives(world):
    w = world
    key = f"{w.prefix2}/safety/estop"
    n = count(1)
    first = [True]

    @settings(max_examples=120, **FUZZ)
    @given(data=st.data())
    def fuzz(data):
        payload = data.draw(_estop_payloads())
        if data.draw(st.integers(0, 3)) == 0:  # mix in hostile resumes: none may unlatch
            w.put(f"{w.prefix2}/safety/resume", data.draw(_resume_payloads(st.sampled_from(SENDERS))))
        assert w.put(key, payload)
        if first[0]:  # the very first hostile payload, whatever it is, already latches (put again
            first[0] = False  # until the robot's safety session is routed; repeats are idempotent)
            wait_for(lambda: w.put(key, payload) and w.alive(w.op2, LATCHED, w.latched)["locked_out"], 15,
                     interval=0.1, what=f"latched by {payload[:80]!r}")
        if next(n) % LIVENESS_EVERY == 0:
            assert w.alive(w.op2, LATCHED, w.latched)["locked_out"]

    fuzz()
    status = w.alive(w.op2, LATCHED, w.latched)
    assert status["locked_out"], status
    r = w.op2.tell(LATCHED, "move joints to 0.5 0 0 0 0 0 in 0.1 s", timeout=15)
    assert r.status == "refused" and "locked out" in r.error, r
    st_ = w.op2.send(LATCHED, {"action": "state"}, timeout=15)
    assert st_.status == "refused"  # only status and an authorised resume while latched
    assert not [a for a in w.acks if a.get("accepted")], "a hostile resume was accepted"
    # the other mesh never heard any of it
    assert not w.alive(w.op, VICTIM, w.victim)["locked_out"]


def test_each_estop_payload_latches_a_fresh_robot(world):
    """Payloads that once slipped through (a deep-nested body; an e-stop naming the receiver
    itself, which it never issued): each must latch, not only halt."""
    w = world
    cases = {
        "deep": dumps({"peer_id": "x", "t": 1.0, "seq": 1, "reason": DEEP}, 3000),
        "own_id": dumps({"peer_id": "SELF", "t": 1.7e9, "seq": 1, "reason": "spoofed as the robot itself"}),
        "bytes": b"\xff\x00",
    }
    prefix = {name: "e" + uuid.uuid4().hex[:10] for name in cases}
    procs = {name: python_proc("-m", "strands_mesh_ros.peer", f"fresh_{name}", "--prefix", prefix[name],
                               "--connect", w.endpoint, "--no-multicast") for name in cases}
    try:
        for name, payload in cases.items():
            rid, key = f"fresh_{name}", f"{prefix[name]}/safety/estop"
            payload = payload.replace(b'"SELF"', json.dumps(rid).encode())
            procs[name].ready()
            cfg = MeshConfig(prefix=prefix[name], connect=(w.endpoint,), multicast_scouting=False)
            with Mesh("op3", config=cfg) as op3:
                op3.wait_for_peer(rid, 15)

                def latched(op3=op3, rid=rid, key=key, payload=payload) -> bool:
                    # put again until the robot's safety session is routed (repeats are idempotent)
                    w.put(key, payload)
                    return op3.send(rid, {"action": "status"}, timeout=15).result["locked_out"]

                wait_for(latched, 15, interval=0.1, what=f"{name}: latched")
                r = op3.tell(rid, "home", timeout=15)
                assert r.status == "refused", (name, r)
    finally:
        for p in procs.values():
            p.close()
