"""The signed wire identity rule (strands_mesh_ros.robot.wire_identity): what is signed, how it
is checked, and who may speak for whom. Pure: real certificates made by ``cryptography``, no
Zenoh. The same rule against the real strands-robots 0.5.3 is in test_interop_signed.py."""

from __future__ import annotations

import base64
import json
import time

import pytest

from helpers import make_pki
from strands_mesh_ros.robot import wire_identity as wi


@pytest.fixture(scope="module", params=["rsa", "ec"])
def pki(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"pki_{request.param}")
    make_pki(d, ["op", "arm1", "host1"], rsa=request.param == "rsa", other_ca=("mallory",))
    return d


def ident(pki, cn):
    return wi.WireIdentity.from_files(pki / f"{cn}.pem", pki / f"{cn}.key")


def test_sign_then_verify_names_the_certificate(pki):
    op = ident(pki, "op")
    assert op.alg in (wi.ALG_RSA, wi.ALG_EC) and op.cn == "op"
    msg = op.sign({"sender_id": "op", "turn_id": "a" * 32, "command": {"action": "status"}, "timestamp": 1.0})
    block = msg["sig"]
    assert set(block) == {"v", "alg", "cert", "t", "nonce", "sig"} and block["v"] == 1
    assert base64.b64decode(block["cert"]) == op.cert_der and len(block["nonce"]) == 32
    # over the wire: JSON bytes and back
    got = wi.verify(wi.load_roots(pki / "ca.pem"), json.loads(json.dumps(msg)))
    assert isinstance(got, wi.Verified) and got.cn == "op" and got.cert_sha256 == op.cert_sha256


@pytest.mark.parametrize("tamper, reason", [
    (lambda m: m.update(turn_id="b" * 32), "does not verify"),
    (lambda m: m["sig"].update(t=m["sig"]["t"] + 1), "does not verify"),
    (lambda m: m["sig"].update(nonce="f" * 32), "does not verify"),
    (lambda m: m["sig"].update(t=time.time() - 120), "stale"),
    (lambda m: m["sig"].update(t=time.time() + 60), "future"),
    (lambda m: m["sig"].update(v=2), "version"),
    (lambda m: m["sig"].update(alg="hmac"), "not supported"),
    (lambda m: m["sig"].update(nonce="XYZ"), "nonce"),
    (lambda m: m["sig"].update(extra=1), "exactly the fields"),
    (lambda m: m["sig"].update(cert="!!"), "not base64"),
    (lambda m: m["sig"].update(cert=base64.b64encode(b"junk").decode()), "does not parse"),
    (lambda m: m.pop("sig"), "no signature"),
    (lambda m: m.update(sig="text"), "no signature"),
])
def test_a_tampered_or_malformed_signature_is_refused_by_name(pki, tamper, reason):
    msg = ident(pki, "op").sign({"sender_id": "op", "turn_id": "a" * 32})
    tamper(msg)
    got = wi.verify(wi.load_roots(pki / "ca.pem"), msg)
    assert isinstance(got, str) and reason in got, got


def test_a_certificate_from_another_ca_or_no_roots_is_refused(pki):
    msg = ident(pki, "mallory").sign({"sender_id": "mallory"})
    assert "not issued by a configured trust root" in wi.verify(wi.load_roots(pki / "ca.pem"), msg)
    assert "no trust roots" in wi.verify(None, ident(pki, "op").sign({"a": 1}))


def test_a_certificate_swapped_under_a_signature_is_refused(pki):
    msg = ident(pki, "op").sign({"sender_id": "op"})
    msg["sig"]["cert"] = base64.b64encode(ident(pki, "arm1").cert_der).decode()
    assert "does not verify" in wi.verify(wi.load_roots(pki / "ca.pem"), msg)


def test_cn_speaks_for_itself_and_its_children_only():
    assert wi.cn_speaks_for("lab", "lab") and wi.cn_speaks_for("lab", "lab__arm1")
    for other in ("lab2", "arm1", "la", "lab_arm", "", "xlab"):
        assert not wi.cn_speaks_for("lab", other), other
    assert not wi.cn_speaks_for("", "lab")


@pytest.mark.parametrize("setting, mtls, roots, required", [
    ("1", False, False, True), ("0", True, True, False), ("auto", True, True, True), (None, True, True, True),
    ("auto", True, False, False), ("auto", False, True, False), ("yes", False, False, True), ("", False, True, False),
])
def test_signing_required_follows_the_setting(setting, mtls, roots, required):
    assert wi.signing_required(setting, mtls=mtls, have_roots=roots) is required


def test_trust_checks_speaker_and_replay(pki):
    trust = wi.WireTrust(wi.load_roots(pki / "ca.pem"), required=True)
    msg = ident(pki, "host1").sign({"responder_id": "host1__arm1"})
    assert isinstance(trust.check(msg, "host1__arm1"), wi.Verified)
    assert "replayed" in trust.check(msg, "host1__arm1")
    assert isinstance(trust.check(msg, "host1__arm1", replay=False), wi.Verified)  # presence: beats repeat
    assert "does not speak for 'arm1'" in trust.check(ident(pki, "host1").sign({}), "arm1")
    assert "no signature" in trust.check({"responder_id": "arm1"}, "arm1")
    # not required: an unsigned message passes unremarked, a bad signature is still refused
    lax = wi.WireTrust(wi.load_roots(pki / "ca.pem"), required=False)
    assert lax.check({"responder_id": "arm1"}, "arm1") is None
    bad = ident(pki, "arm1").sign({"responder_id": "arm1"})
    bad["responder_id"] = "arm2"
    assert "does not verify" in lax.check(bad, "arm2")
    assert wi.WireTrust(None, required=False).check(bad, "arm2") is None  # no roots: nothing to check against


def test_loading_refuses_mismatched_or_missing_files(pki, tmp_path):
    with pytest.raises(ValueError, match="does not belong|is not the"):
        wi.WireIdentity.from_files(pki / "op.pem", pki / "arm1.key")
    with pytest.raises(ValueError, match="cannot load"):
        wi.WireIdentity.from_files(tmp_path / "none.pem", pki / "op.key")
    with pytest.raises(ValueError, match="already carries"):
        ident(pki, "op").sign({"sig": 1})
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(ValueError, match="trust roots"):
        wi.load_roots(tmp_path / "empty.pem")


def test_our_auto_signs_and_checks_but_requires_nothing(pki, monkeypatch):
    """Our peers' default on an mTLS session: sign what we can speak for, check signatures that
    are present, require none (a bridge's ROS robots cannot sign for themselves); ``1`` requires."""
    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.identity import signer_for, wire_setup

    monkeypatch.setenv("STRANDS_MESH_AUTH_MODE", "mtls")
    monkeypatch.setenv("STRANDS_MESH_TLS_CERT", str(pki / "arm1.pem"))
    monkeypatch.setenv("STRANDS_MESH_TLS_KEY", str(pki / "arm1.key"))
    monkeypatch.setenv("STRANDS_MESH_TLS_CA", str(pki / "ca.pem"))
    monkeypatch.delenv("STRANDS_MESH_REQUIRE_SIGNED_IDENTITY", raising=False)
    setup = wire_setup(MeshConfig())
    assert setup.identity is not None and setup.identity.cn == "arm1" and setup.trust.roots
    assert not setup.trust.required
    assert setup.trust.check({"peer_id": "x"}, "x") is None  # unsigned: taken (the ACL decides)
    bad = ident(pki, "op").sign({"peer_id": "arm1"})
    assert "does not speak for" in setup.trust.check(bad, "arm1")  # a present signature is checked
    # a CN speaks for itself and <CN>__<robot>; for anything else the peer publishes unsigned
    assert signer_for(setup, "arm1") is setup.identity and signer_for(setup, "arm1__r1") is setup.identity
    assert signer_for(setup, "ur5") is None
    monkeypatch.setenv("STRANDS_MESH_REQUIRE_SIGNED_IDENTITY", "1")
    assert wire_setup(MeshConfig()).trust.required
