"""The secured profile (docs/security.md): Zenoh TLS + mTLS + access control, over real sessions.

Certificates are made at test time with ``cryptography``: a fleet CA; the router's certificate
(SAN localhost and 127.0.0.1); robots ``arm1`` and ``arm2`` (CN = robot id); operator ``op``;
``eve``, a certificate of the fleet CA that the ACL does not name; ``mallory``, from another CA.
The router is a Python Zenoh session in router mode in its own process
(test/secure_router_proc.py), robots are ``python -m strands_mesh_ros.peer`` processes reading
their json5 from ``ZENOH_CONFIG``, and the operator and attackers are client sessions of this
test process, each with its own certificate.

Negative checks ("never delivered") are not timed windows: after the denied message the
sender makes a round trip through the router on the same link (:func:`router_barrier`), and a
marker that would have been queued behind the denied message, on the same link and priority,
is then awaited at the receiver.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import time
import uuid
from pathlib import Path

import pytest
import zenoh
from helpers import free_port, python_proc, wait_for
from router_proc import CLIENT_MODE

from strands_mesh_ros.contract import CommandEnvelope, new_turn_id
from strands_mesh_ros.contract.keys import InvalidPeerId, KeySpace
from strands_mesh_ros.contract.payloads import EStop, Resume
from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh
from strands_mesh_ros.robot.safety import EStopGuard, EStopVerdict
from strands_mesh_ros.security import (
    acl_config,
    example_configs,
    tls_config,
    write_json5,
)

RESUME_KEY = "test-resume-key-0123456789"
REPO = Path(__file__).resolve().parent.parent


# -- PKI ---------------------------------------------------------------------------------------

def _pki(directory: Path) -> None:
    """CA, router, router-b, arm1, arm2, op, eve (fleet CA) and mallory (another CA), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save(stem: str, key, cert) -> None:
        (directory / f"{stem}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=2)))

    def ca(cn: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (builder(name(cn), name(cn), key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    def leaf(ca_key, ca_cert, cn: str, sans: list) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (builder(name(cn), ca_cert.subject, key.public_key())
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("strands fleet test CA")
    save("ca", ca_key, ca_cert)
    for cn in ("router", "router-b"):
        save(cn, *leaf(ca_key, ca_cert, cn, [x509.DNSName("localhost"),
                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
    for cn in ("arm1", "arm2", "op", "eve"):
        save(cn, *leaf(ca_key, ca_cert, cn, [x509.DNSName(cn)]))
    other_key, other_cert = ca("some other CA")
    save("mallory", *leaf(other_key, other_cert, "mallory", [x509.DNSName("mallory")]))


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _pki(d)
    return d


class Secure:
    """One secured mesh: a router with TLS + mTLS + ACL on a free port, a unique prefix, and
    a json5 per identity. Robots arm1, arm2; operator op."""

    def __init__(self, pki: Path, tmp: Path, backbone: bool = False) -> None:
        self.pki = pki
        self.prefix = "s" + uuid.uuid4().hex[:10]
        self.keys = KeySpace(self.prefix)
        self.endpoint = f"tls/127.0.0.1:{free_port()}"
        self.conf_dir = tmp / "zenoh"
        self.conf_dir.mkdir()
        acl = acl_config(["arm1", "arm2"], ["op"], prefix=self.prefix, routers=["router", "router-b"])
        router = tls_config("router", pki / "ca.pem", pki / "router.pem", pki / "router.key", listen=[self.endpoint])
        router["access_control"] = acl
        write_json5(self.conf_dir / "router.json5", router)
        # backbone: a second router, linked to the first over mTLS; op and eve are its clients.
        self.endpoint_b = f"tls/127.0.0.1:{free_port()}" if backbone else self.endpoint
        if backbone:
            router_b = tls_config("router", pki / "ca.pem", pki / "router-b.pem", pki / "router-b.key",
                                  listen=[self.endpoint_b], connect=[self.endpoint])
            router_b["access_control"] = acl
            write_json5(self.conf_dir / "router-b.json5", router_b)
        for cn in ("arm1", "arm2", "op", "eve", "mallory"):
            ep = self.endpoint_b if cn in ("op", "eve") else self.endpoint
            write_json5(self.conf_dir / f"{cn}.json5",
                        tls_config("client", pki / "ca.pem", pki / f"{cn}.pem", pki / f"{cn}.key", connect=[ep]))
        self.procs: list = []
        self.sessions: list = []
        self.meshes: list[Mesh] = []
        self.router = self._proc(python_proc(str(REPO / "test" / "secure_router_proc.py"),
                                             str(self.conf_dir / "router.json5")))
        if backbone:
            self._proc(python_proc(str(REPO / "test" / "secure_router_proc.py"), str(self.conf_dir / "router-b.json5")))

    def _proc(self, p):
        self.procs.append(p)
        return p.ready()

    def conf(self, cn: str) -> str:
        return str(self.conf_dir / f"{cn}.json5")

    def robot(self, robot_id: str):
        """A mock robot process with its own certificate (ZENOH_CONFIG)."""
        return self._proc(python_proc("-c", CLIENT_MODE, "strands_mesh_ros.peer", robot_id, "--prefix", self.prefix,
                                      "--no-multicast", "--resume-key", RESUME_KEY,
                                      env={"ZENOH_CONFIG": self.conf(robot_id)}))

    def operator(self) -> Mesh:
        """The operator peer 'op' (client mode, op's certificate), started."""
        mesh = Mesh("op", config=MeshConfig(prefix=self.prefix, mode="client", config_file=self.conf("op")),
                    resume_key=RESUME_KEY).start()
        self.meshes.append(mesh)
        return mesh

    def session(self, cn: str):
        """A raw Zenoh client session with ``cn``'s certificate."""
        s = zenoh.open(zenoh.Config.from_file(self.conf(cn)))
        self.sessions.append(s)
        return s

    def close(self) -> None:
        for m in self.meshes:
            m.stop()
        for s in self.sessions:
            s.close()
        for p in reversed(self.procs):
            p.close()


@pytest.fixture
def sec(pki, tmp_path):
    s = Secure(pki, tmp_path)
    yield s
    s.close()


def router_barrier(session, sec: Secure) -> None:
    """A liveliness query answered by the router, on ``session``'s link: when it returns, the
    router has handled (routed or denied) everything ``session`` sent before it. The
    operator's own token ``P/op/alive`` guarantees an answer."""
    # The token itself reaches the router asynchronously after Mesh.start() returns: ask again
    # until it answers (each query is still ordered after what the session sent before it).
    wait_for(lambda: list(session.liveliness().get(f"{sec.prefix}/*/alive", timeout=10)), 15, interval=0.05,
             what="router barrier: a liveliness reply (is the operator up?)")


RT = {"priority": zenoh.Priority.REAL_TIME, "express": True, "congestion_control": zenoh.CongestionControl.BLOCK}
DATA = {"congestion_control": zenoh.CongestionControl.BLOCK}


def command(sender: str, action: dict) -> bytes:
    return CommandEnvelope(sender_id=sender, turn_id=new_turn_id(), command=action).to_json()


def status(op: Mesh, robot: str = "arm1") -> dict:
    r = op.send(robot, {"action": "status"}, timeout=10)
    assert r.ok, r.error
    return r.result


def audit_events(audit_dir: Path, peer: str) -> list[dict]:
    path = audit_dir / f"audit-{peer}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- the generator, pure -----------------------------------------------------------------------

def test_acl_config_is_accepted_by_zenoh_and_shaped_as_documented():
    acl = acl_config(["arm1", "arm2"], ["op"], prefix="fleet")
    conf = zenoh.Config()
    conf.insert_json5("access_control", json.dumps(acl))  # Zenoh validates the schema
    assert json.loads(conf.get_json("access_control/default_permission")) == "deny"
    rules = {r["id"]: r for r in acl["rules"]}
    assert rules["operators-command"]["key_exprs"] == ["fleet/*/cmd", "fleet/broadcast", "fleet/safety/estop",
                                                     "fleet/safety/resume"]
    assert set(rules["peer-arm1-put"]["key_exprs"]) == {
        "fleet/arm1/**", "fleet/*/response/arm1/*", "fleet/safety/estop/ack/*/arm1", "fleet/safety/resume/ack/*/arm1"}
    assert {"id": "operators", "cert_common_names": ["op"]} in acl["subjects"]
    ns = acl_config(["arm1"], [], prefix="strands", namespace="strands", hosts={"host1": ["arm7", "arm8"]})
    rules = {r["id"]: r for r in ns["rules"]}
    assert "operators-command" not in rules
    assert "strands/strands/arm8/**" in rules["peer-host1-put"]["key_exprs"]
    trunk = acl_config(["arm1"], ["op"], routers=["router.site-b.example"])
    assert {"id": "routers", "cert_common_names": ["router.site-b.example"]} in trunk["subjects"]


@pytest.mark.parametrize("robots, operators, error", [
    (["arm1", "arm/*"], ["op"], InvalidPeerId),
    (["arm1"], ["**"], InvalidPeerId),
    (["arm1", "arm1"], ["op"], ValueError),
    ("arm1", ["op"], TypeError),
])
def test_acl_config_refuses_ids_that_would_widen_a_rule(robots, operators, error):
    with pytest.raises(error):
        acl_config(robots, operators)


def test_tls_config_validates_roles_and_endpoints():
    with pytest.raises(ValueError, match="not a TLS endpoint"):
        tls_config("robot", "ca.pem", "c.pem", "k.pem", connect=["tcp/10.0.0.1:7447"])
    with pytest.raises(ValueError, match="does not listen"):
        tls_config("robot", "ca.pem", "c.pem", "k.pem", connect=["tls/r:7447"], listen=["tls/0.0.0.0:7448"])
    with pytest.raises(ValueError, match="listen endpoint"):
        tls_config("router", "ca.pem", "c.pem", "k.pem")
    client = tls_config("operator", "ca.pem", "c.pem", "k.pem", connect=["tls/r:7447"])
    assert client["mode"] == "client" and client["listen"] == {"endpoints": []}
    assert client["transport"]["link"]["tls"]["enable_mtls"] is True  # else no client certificate is sent


def test_shipped_templates_match_the_generator():
    for name, conf in example_configs().items():
        text = (REPO / "config" / "secure" / name).read_text()
        body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
        assert json.loads(body) == conf, f"config/secure/{name} is stale: regenerate with write_example_configs()"
        zenoh.Config.from_json5(body)


# -- EStopGuard, pure --------------------------------------------------------------------------

def _estop(t: float, seq: int, issuer: str = "op") -> EStop:
    return EStop(peer_id=issuer, t=t, seq=seq, reason="test")


def test_estop_guard_latches_new_stops_and_spares_a_resume_from_replays():
    now = 1_000_000.0
    g = EStopGuard()
    first = _estop(now, int(now * 1e9))
    assert g.check(first, now + 0.01) == EStopVerdict(True)
    assert g.check(first, now + 0.5).latch, "a duplicate before any resume keeps the lockout"
    g.resumed(now + 2)
    v = g.check(first, now + 3)
    assert not v.latch and v.replay.startswith("replayed e-stop")
    assert not g.check(_estop(now - 1, int((now - 1) * 1e9)), now + 3).latch, "older than one already resumed"
    again = _estop(now + 4, int((now + 4) * 1e9))
    assert g.check(again, now + 4) == EStopVerdict(True), "a new stop after the resume latches"
    assert g.check(again, now + 5).latch, "and its duplicate too: no resume since"
    assert g.check(_estop(now + 5, int((now + 5) * 1e9), issuer="op2"), now + 5).latch, "issuers are independent"


def test_estop_guard_latches_stale_and_odd_envelopes_unless_a_resume_came_after():
    now = 1_000_000.0
    g = EStopGuard(max_age=10)
    assert g.check(_estop(now - 3600, 5), now).latch, "never resumed: even an old capture latches"
    g.resumed(now)
    old = g.check(_estop(now - 3600, 6, issuer="op2"), now + 1)
    assert not old.latch and "stale" in old.replay, "issued long before the last resume"
    delayed = g.check(_estop(now - 5, 7, issuer="op3"), now + 20)
    assert delayed.latch and "stale" in delayed.replay, "issued after the resume, delayed in the network"
    assert g.check(_estop(now + 3600, 8, issuer="op4"), now + 21).latch, "future-dated: latched"
    assert g.check(_estop(float("nan"), 9, issuer="op5"), now + 21).latch
    # A forged huge seq is not recorded, so the issuer's later genuine stops still latch.
    assert g.check(_estop(now + 22, 10**30, issuer="op6"), now + 22).latch
    g.resumed(now + 23)
    assert g.check(_estop(now + 24, int((now + 24) * 1e9), issuer="op6"), now + 24) == EStopVerdict(True)
    with pytest.raises(ValueError):
        EStopGuard(max_age=0)


# -- the secured mesh, real sessions in separate processes ------------------------------------

def test_operator_commands_estops_and_resumes_a_robot(sec):
    sec.robot("arm1")
    op = sec.operator()
    op.wait_for_peer("arm1", 15)
    r = op.tell("arm1", "move joints to 0.1 0.2 0.3 0.4 0.5 0.6 in 0.1 s", timeout=15)
    assert r.ok, r.error
    report = op.emergency_stop("drill", timeout=5)
    assert "arm1" in report.stopped and report.all_stopped, report.to_dict()
    assert status(op)["locked_out"]
    assert op.resume(["arm1"], operator="test", timeout=5) == {"arm1": {"accepted": True, "detail": ""}}
    assert not status(op)["locked_out"]
    # The CLI with op's certificate: signatures are required here (mTLS + a trust root), so its
    # operator id is op__cli-<host>-<pid>, which op's certificate speaks for; its tell is run.
    tell = python_proc("-c", CLIENT_MODE, "strands_mesh_ros.cli", "tell", "arm1", "move joints to 0.2 0 0 0 0 0 in 0.1 s",
                       "--config", sec.conf("op"), "--prefix", sec.prefix, "--json")
    sec.procs.append(tell)
    assert tell.p.wait(45) == 0, "\n".join(tell.lines)
    answer = json.loads(next(line for line in tell.lines if line.startswith("{")))
    assert answer["status"] == "done" and answer["responder_id"] == "arm1", answer
    # A second operator process (the CLI, op's certificate) e-stops the fleet through the router.
    cli = python_proc("-c", CLIENT_MODE, "strands_mesh_ros.cli", "estop", "--config", sec.conf("op"), "--prefix", sec.prefix,
                      "--reason", "cli drill", "--timeout", "5", "--json")
    sec.procs.append(cli)
    assert cli.p.wait(45) == 0, "\n".join(cli.lines)
    out = json.loads(next(line for line in cli.lines if line.startswith("{")))
    assert "arm1" in out["stopped"] and out["all_stopped"], out
    assert status(op)["lockout"]["reason"] == "cli drill"


@pytest.mark.parametrize("intruder", ["eve", "arm2"])
def test_a_fleet_certificate_outside_the_operators_cannot_command_or_estop(sec, intruder, _audit_dir):
    """eve: a fleet-CA certificate the ACL does not name; arm2: a robot's certificate."""
    sec.robot("arm1")
    op = sec.operator()
    op.wait_for_peer("arm1", 15)
    s = sec.session(intruder)
    # It is connected and authenticated: it may watch the fleet's state ...
    states: list = []
    s.declare_subscriber(f"{sec.prefix}/*/state", lambda sample: states.append(str(sample.key_expr)))
    wait_for(lambda: f"{sec.prefix}/arm1/state" in states, 15, what=f"{intruder} receiving arm1's state")
    # ... but its command-path e-stop, its motion command and its safety-key e-stop are denied.
    s.put(sec.keys.cmd("arm1"), command(intruder, {"action": "execute", "instruction": "home"}), **DATA)
    s.put(sec.keys.cmd("arm1"), command(intruder, {"action": "emergency_stop", "reason": "pwned"}), **DATA)
    s.put(sec.keys.estop, EStop(peer_id=intruder, t=time.time(), seq=time.time_ns(), reason="pwned").to_json(), **RT)
    router_barrier(s, sec)
    # Anything the router had let through to arm1's command key is ahead of this status query.
    st = status(op)
    assert not st["locked_out"] and st["task"]["instruction"] is None, st
    # And on arm1's safety session, ahead of this (unsigned, refused) resume, whose answer we await.
    acks: list = []
    op.subscribe(sec.keys.resume_ack("op", "arm1"), lambda k, v: acks.append(v))
    probe_seq = time.time_ns()
    probe = Resume(peer_id="op", t=time.time(), seq=probe_seq, operator="barrier", targets=["arm1"], mac="0" * 64)

    def answered() -> bool:
        op.put_resume(probe.model_copy(update={"seq": probe_seq + len(acks) + 1}).to_json())
        return any(a.get("detail") == "bad resume signature" for a in acks)

    wait_for(answered, 15, interval=0.2, what="arm1's answer to the probe resume")
    assert not status(op)["locked_out"]
    events = [e["event"] for e in audit_events(_audit_dir, "arm1")]
    assert "estop_received" not in events and "estop_command" not in events, events


@pytest.mark.parametrize("intruder", ["eve", "arm2"])
def test_a_non_operator_cannot_eavesdrop_on_commands(sec, intruder):
    s = sec.session(intruder)
    heard: list = []
    s.declare_subscriber(sec.keys.cmd("arm1"), lambda sample: heard.append(("cmd", sample.payload.to_bytes())))
    s.declare_subscriber(sec.keys.presence("op"), lambda sample: heard.append(("marker", sample.payload.to_bytes())))
    sec.operator()  # puts the liveliness token the barrier needs
    router_barrier(s, sec)  # both subscriptions handled by the router
    op = sec.session("op")
    op.put(sec.keys.cmd("arm1"), command("op", {"action": "status"}), **DATA)
    op.put(sec.keys.presence("op"), b"marker", **DATA)  # same link, same priority: queued behind
    wait_for(lambda: ("marker", b"marker") in heard, 15, what="the marker")
    assert not [h for h in heard if h[0] == "cmd"], heard


@pytest.mark.parametrize("intruder", ["eve", "mallory-ca", "no-cert"])
def test_a_certificate_from_another_ca_or_none_cannot_connect(sec, intruder):
    conf = zenoh.Config.from_file(sec.conf("mallory" if intruder == "mallory-ca" else "eve"))
    if intruder == "no-cert":
        conf.insert_json5("transport/link/tls/connect_certificate", "null")
        conf.insert_json5("transport/link/tls/connect_private_key", "null")
    if intruder == "eve":  # the control: same settings, a fleet certificate, connects
        sec.sessions.append(zenoh.open(conf))
        return
    with pytest.raises(zenoh.ZError, match="Unable to connect"):
        zenoh.open(conf)


def test_a_robot_cannot_answer_or_ack_or_publish_as_another_robot(sec):
    op = sec.session("op")
    heard: list = []
    op.declare_subscriber(f"{sec.prefix}/**", lambda sample: heard.append(str(sample.key_expr)))
    sec.operator()
    router_barrier(op, sec)
    arm2 = sec.session("arm2")
    turn = new_turn_id()
    forged = {
        f"{sec.prefix}/op/response/arm1/{turn}": f"{sec.prefix}/op/response/arm2/{turn}",
        sec.keys.estop_ack("op", "arm1"): sec.keys.estop_ack("op", "arm2"),
        sec.keys.state("arm1"): sec.keys.state("arm2"),
        sec.keys.presence("arm1"): sec.keys.presence("arm2"),
    }
    for spoof, own in forged.items():
        arm2.put(spoof, b"{}", **DATA)
        arm2.put(own, b"{}", **DATA)
    wait_for(lambda: set(forged.values()) <= set(heard), 15, what="arm2's own keys at the operator")
    assert not set(forged) & set(heard), sorted(set(forged) & set(heard))


def test_a_replayed_resume_envelope_is_refused(sec):
    sec.robot("arm1")
    op = sec.operator()
    op.wait_for_peer("arm1", 15)
    tap = sec.session("op")
    captured: list = []
    tap.declare_subscriber(sec.keys.resume, lambda sample: captured.append(bytes(sample.payload.to_bytes())))
    router_barrier(tap, sec)
    assert op.emergency_stop("one", timeout=5).all_stopped
    assert op.resume(["arm1"], timeout=5)["arm1"]["accepted"]
    wait_for(lambda: captured, 10, what="the captured resume envelope")
    assert op.emergency_stop("two", timeout=5).all_stopped
    acks: list = []
    op.subscribe(sec.keys.resume_ack("op", "arm1"), lambda k, v: acks.append(v))

    def refused() -> bool:  # replay until arm1's answer arrives (the ack subscription propagates)
        tap.put(sec.keys.resume, captured[0], **RT)
        return any("replayed" in a.get("detail", "") for a in acks)

    wait_for(refused, 15, interval=0.2, what="arm1 refusing the replayed resume")
    assert not any(a["accepted"] for a in acks), acks
    st = status(op)
    assert st["locked_out"] and st["lockout"]["reason"] == "two", st


def test_a_replayed_estop_envelope_halts_but_does_not_undo_a_resume(sec, _audit_dir):
    sec.robot("arm1")
    op = sec.operator()
    op.wait_for_peer("arm1", 15)
    tap = sec.session("op")
    captured: list = []
    tap.declare_subscriber(sec.keys.estop, lambda sample: captured.append(bytes(sample.payload.to_bytes())))
    router_barrier(tap, sec)
    report = op.emergency_stop("captured", timeout=5)
    assert report.all_stopped
    assert op.resume(["arm1"], timeout=5)["arm1"]["accepted"]
    wait_for(lambda: captured, 10, what="the captured e-stop envelope")
    acks: list = []
    op.subscribe(sec.keys.estop_ack("op", "arm1"), lambda k, v: acks.append(v))

    def answered() -> bool:  # replay until arm1's ack to the replay arrives
        tap.put(sec.keys.estop, captured[0], **RT)
        return any(a.get("detail", "").startswith("replayed e-stop") for a in acks)

    wait_for(answered, 15, interval=0.2, what="arm1's ack of the replayed e-stop")
    assert all(a["seq"] == report.seq and a["halted"] for a in acks), acks
    st = status(op)
    assert not st["locked_out"], st
    assert op.tell("arm1", "home", timeout=15).ok, "the robot takes commands again: the resume stands"
    replays = [e for e in audit_events(_audit_dir, "arm1") if e["event"] == "estop_replay"]
    assert replays and not replays[0]["latched"] and replays[0]["seq"] == report.seq, replays


def test_a_secured_backbone_of_two_routers_carries_commands_and_keeps_the_acl(pki, tmp_path):
    """arm1 on router A; op and eve on router B; the routers linked by mTLS ("routers" trunk)."""
    sec = Secure(pki, tmp_path, backbone=True)
    try:
        sec.robot("arm1")
        op = sec.operator()
        op.wait_for_peer("arm1", 15)
        assert op.tell("arm1", "home", timeout=15).ok
        eve = sec.session("eve")
        eve.put(sec.keys.estop, EStop(peer_id="eve", t=time.time(), seq=time.time_ns(), reason="pwned").to_json(), **RT)
        eve.put(sec.keys.cmd("arm1"), command("eve", {"action": "emergency_stop", "reason": "pwned"}), **DATA)
        router_barrier(eve, sec)  # router B handled them: denied at B's ingress, never on the trunk
        assert not status(op)["locked_out"]
        report = op.emergency_stop("across the backbone", timeout=5)
        assert "arm1" in report.stopped and report.all_stopped, report.to_dict()
        assert status(op)["lockout"]["reason"] == "across the backbone"
    finally:
        sec.close()
