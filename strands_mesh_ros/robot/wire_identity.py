"""Signed wire identity: the ``sig`` block of strands-robots 0.5.3, issued and checked.

On a secured (mutual TLS) fleet the sender of a presence, an answer or a command is whoever
*signed* it with the private key of its mTLS certificate, not whatever ``peer_id`` or Zenoh
SourceInfo it wrote (docs/interop-notes.md; 0.5.3's ``mesh/wire_identity.py``). The block::

    {...body..., "sig": {"v": 1, "alg": "rsa-pss-sha256" | "ecdsa-sha256" | "ed25519",
                         "cert": "<standard base64 of the DER leaf>", "t": <UNIX s, float>,
                         "nonce": "<32 lowercase hex>", "sig": "<base64url signature>"}}

The signature covers the canonical JSON (``sort_keys``, separators ``,`` ``:``, ASCII) of
``{"body": <the message without "sig">, "sig": {"v", "alg", "t", "nonce", "cert_sha256"}}``,
``cert_sha256`` being the lowercase hex SHA-256 of the DER leaf. RSA uses PSS with MGF1-SHA256
and a 32-byte salt. The receiver chains the leaf to a trust root (same issuer name, the root's
key verifies it), checks its validity window, ``|now - t|`` within 60 s back / 5 s ahead, and the
signature; the certificate's single common name (CN) says who signed, and a CN may speak for
the peer id equal to it or for ``<cn>__<robot>`` (:func:`cn_speaks_for`).

Whether signatures are *required* is ``STRANDS_MESH_REQUIRE_SIGNED_IDENTITY``: ``1`` always,
``0`` never, ``auto`` (default) when the session runs mutual TLS and a trust root is loaded;
any other value counts as ``1`` (a typo must not turn a safety check off), as in 0.5.3.

Pure Python plus ``cryptography``; no zenoh import. Checking never raises on what a peer sent:
it returns a one-line reason.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509

_crypto_loaded = False


def _crypto() -> None:
    """Import cryptography into this module on first use: ~35 ms that a process which neither
    signs nor checks signatures (a CLI call on an unsecured fleet) does not pay
    (bench/bench_cli.py)."""
    global _crypto_loaded, x509, InvalidSignature, hashes, serialization, ec, ed25519, padding, rsa, NameOID
    if _crypto_loaded:
        return
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.x509.oid import NameOID
    _crypto_loaded = True

REQUIRE_ENV = "STRANDS_MESH_REQUIRE_SIGNED_IDENTITY"
SIG_FIELD = "sig"
BROADCAST_TARGET = "<broadcast>\x00"
"""``target_id`` of a signed broadcast command (0.5.3's ``BROADCAST_RESPONDER``)."""
VERSION = 1
ALG_RSA, ALG_EC, ALG_ED25519 = "rsa-pss-sha256", "ecdsa-sha256", "ed25519"
MAX_CERT_DER_BYTES = 4096
"""Largest DER leaf taken off the wire (0.5.3's cap; an RSA-4096 leaf is ~1.4 KB)."""
MAX_AGE = 60.0
"""s: a signature whose ``t`` is older is stale (0.5.3's presence/resume freshness window)."""
MAX_AHEAD = 5.0
"""s: a signature whose ``t`` lies further in the future is refused (0.5.3's forward skew)."""
PSS_SALT = 32
"""RSA-PSS salt length, the SHA-256 digest size (0.5.3)."""
NEVER_REFUSED = frozenset({"stop", "emergency_stop", "status", "ping"})
"""Actions run even when unsigned on a fleet that requires signatures: a stop is never refused
(docs/safety.md), and ``status``/``ping`` move nothing (0.5.3 gates only motion)."""

_KEYS = frozenset({"v", "alg", "cert", "t", "nonce", "sig"})
_NONCE = re.compile(r"[0-9a-f]{32}")
_B64URL = re.compile(r"[A-Za-z0-9_\-]+={0,2}")
_B64 = re.compile(r"[A-Za-z0-9+/_\-]+={0,2}")
_CN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


def _alg(key: Any) -> str | None:
    _crypto()
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return ALG_RSA
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return ALG_EC
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return ALG_ED25519
    return None


def common_name(cert: x509.Certificate) -> str | None:
    """The certificate's single CN if it is shaped like a peer id (0.5.3's rule), else None."""
    _crypto()
    try:
        attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    if len(attrs) != 1 or not isinstance(attrs[0].value, str) or not _CN.fullmatch(attrs[0].value):
        return None
    return attrs[0].value


def cn_speaks_for(cn: str, peer_id: str) -> bool:
    """Whether a certificate with common name ``cn`` may speak as ``peer_id``: ``peer_id == cn``
    or ``peer_id`` starts with ``cn + "__"`` (a ``<cn>__<robot>`` child), nothing else."""
    return bool(cn) and bool(peer_id) and (peer_id == cn or peer_id.startswith(cn + "__"))


def canonical(obj: Any) -> bytes:
    """The canonical JSON both sides sign: sorted keys, no spaces, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def signed_bytes(body: dict[str, Any], v: Any, alg: Any, t: Any, nonce: Any, cert_sha256: str) -> bytes:
    """What the signature covers (module docstring)."""
    return canonical({"body": body, "sig": {"v": v, "alg": alg, "t": t, "nonce": nonce, "cert_sha256": cert_sha256}})


@dataclass(frozen=True)
class WireIdentity:
    """This peer's signing certificate (DER) and private key.

    Attributes:
        cn: the certificate's common name (the peer id it speaks for).
        cert_der: the DER leaf; cert_sha256: its SHA-256, lowercase hex; alg: see module doc.
    """

    cn: str
    cert_der: bytes
    cert_sha256: str
    alg: str
    key: Any

    @classmethod
    def from_files(cls, cert_path: str | Path, key_path: str | Path) -> "WireIdentity":
        """Load a PEM certificate and its unencrypted PEM private key (the mTLS pair).

        Raises:
            ValueError: unreadable or mismatched files, a key type other than RSA/EC/Ed25519,
                no single CN shaped like a peer id, or a DER leaf over 4096 bytes.
        """
        _crypto()
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        except (OSError, TypeError, ValueError) as exc:
            raise ValueError(f"wire identity: cannot load {cert_path} / {key_path}: {exc}") from None
        alg = _alg(key)
        if alg is None or _alg(cert.public_key()) != alg:
            raise ValueError(f"wire identity: {key_path} is not the RSA/EC/Ed25519 key of {cert_path}")
        if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                                          ) != key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise ValueError(f"wire identity: {key_path} does not belong to {cert_path}")
        cn = common_name(cert)
        if cn is None:
            raise ValueError(f"wire identity: {cert_path} has no single common name usable as a peer id")
        der = cert.public_bytes(serialization.Encoding.DER)
        if len(der) > MAX_CERT_DER_BYTES:
            raise ValueError(f"wire identity: {cert_path} is {len(der)} bytes DER (limit {MAX_CERT_DER_BYTES})")
        return cls(cn, der, hashlib.sha256(der).hexdigest(), alg, key)

    def sign(self, body: dict[str, Any], *, t: float | None = None, nonce: str | None = None) -> dict[str, Any]:
        """``body`` plus its ``sig`` block.

        Raises:
            ValueError: ``body`` already carries a ``sig`` field.
        """
        if SIG_FIELD in body:
            raise ValueError("message already carries a 'sig' block")
        block: dict[str, Any] = {"v": VERSION, "alg": self.alg, "cert": base64.b64encode(self.cert_der).decode(),
                                 "t": time.time() if t is None else float(t), "nonce": nonce or uuid.uuid4().hex}
        msg = signed_bytes(body, block["v"], block["alg"], block["t"], block["nonce"], self.cert_sha256)
        if self.alg == ALG_RSA:
            raw = self.key.sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT),
                                hashes.SHA256())
        elif self.alg == ALG_EC:
            raw = self.key.sign(msg, ec.ECDSA(hashes.SHA256()))
        else:
            raw = self.key.sign(msg)
        block["sig"] = base64.urlsafe_b64encode(raw).decode()
        return {**body, SIG_FIELD: block}

    def sign_json(self, data: bytes) -> bytes:
        """Sign a JSON object given as bytes; returns the signed message as compact JSON bytes.

        Raises:
            ValueError: ``data`` is not a JSON object, or already signed.
        """
        body = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError("only a JSON object can be signed")
        return json.dumps(self.sign(body), separators=(",", ":")).encode()


@dataclass(frozen=True)
class Verified:
    """Who signed a message: ``cn`` (the certificate's CN), ``cert_sha256``, ``nonce``, ``t``."""

    cn: str
    cert_sha256: str
    nonce: str
    t: float


def load_roots(ca_path: str | Path) -> tuple[x509.Certificate, ...]:
    """The CA certificates of a PEM bundle.

    Raises:
        ValueError: unreadable file or no certificate in it.
    """
    _crypto()
    try:
        certs = tuple(x509.load_pem_x509_certificates(Path(ca_path).read_bytes()))
    except (OSError, ValueError) as exc:
        raise ValueError(f"trust roots {ca_path}: {exc}") from None
    if not certs:
        raise ValueError(f"trust roots {ca_path}: no certificate in the file")
    return certs


def _b64(text: str, urlsafe: bool) -> bytes | None:
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return None


def _shape_problem(block: Any) -> str | None:
    if not isinstance(block, dict):
        return "message carries no signature ('sig' block)"
    if set(block) != _KEYS:
        return f"'sig' block must have exactly the fields {sorted(_KEYS)}"
    if block["v"] != VERSION or isinstance(block["v"], bool):
        return f"'sig' block version {block['v']!r} is not supported (only {VERSION})"
    if block["alg"] not in (ALG_RSA, ALG_EC, ALG_ED25519):
        return f"signature algorithm {str(block['alg'])[:40]!r} is not supported"
    t = block["t"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        return "signature time 't' is not a finite number"
    if not isinstance(block["nonce"], str) or not _NONCE.fullmatch(block["nonce"]):
        return "signature nonce is not 32 lowercase hex"
    cert = block["cert"]
    if not isinstance(cert, str) or len(cert) > MAX_CERT_DER_BYTES * 4 // 3 + 4 or not _B64.fullmatch(cert):
        return "signature certificate is oversized or not base64"
    if not isinstance(block["sig"], str) or len(block["sig"]) > 2048 or not _B64URL.fullmatch(block["sig"]):
        return "signature value is not base64url"
    return None


def verify(roots: tuple[x509.Certificate, ...] | None, message: Any, *, now: float | None = None) -> Verified | str:
    """Who signed ``message`` (a decoded JSON object), or a one-line reason it is not trusted.

    Never raises on wire input. ``roots`` None or empty refuses every message.
    """
    _crypto()
    block = message.get(SIG_FIELD) if isinstance(message, dict) else None
    if (problem := _shape_problem(block)) is not None:
        return problem
    if not roots:
        return "no trust roots configured to check the signing certificate against"
    der, raw = _b64(block["cert"], False), _b64(block["sig"], True)
    if not der or len(der) > MAX_CERT_DER_BYTES:
        return "signature certificate is oversized or not base64"
    if not raw:
        return "signature value is not base64url"
    try:
        leaf = x509.load_der_x509_certificate(der)
    except ValueError:
        return "signature certificate does not parse as X.509 DER"
    cn = common_name(leaf)
    if cn is None:
        return "signing certificate has no single common name shaped like a peer id"
    if not any(_issued_by(leaf, root) for root in roots):
        return "signing certificate is not issued by a configured trust root"
    moment = time.time() if now is None else now
    when = _dt.datetime.fromtimestamp(moment, tz=_dt.timezone.utc)
    if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
        return "signing certificate is outside its validity window"
    age = moment - float(block["t"])
    if age > MAX_AGE:
        return f"signature is stale ({age:.0f} s old, limit {MAX_AGE:.0f} s)"
    if age < -MAX_AHEAD:
        return f"signature time is {-age:.0f} s in the future (limit {MAX_AHEAD:.0f} s)"
    key = leaf.public_key()
    if _alg(key) != block["alg"]:
        return "signature algorithm does not match the certificate's key"
    sha = hashlib.sha256(der).hexdigest()
    body = {k: v for k, v in message.items() if k != SIG_FIELD}
    msg = signed_bytes(body, block["v"], block["alg"], block["t"], block["nonce"], sha)
    try:
        if block["alg"] == ALG_RSA:
            key.verify(raw, msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT),
                       hashes.SHA256())
        elif block["alg"] == ALG_EC:
            key.verify(raw, msg, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(raw, msg)
    except InvalidSignature:
        return "signature does not verify over the message"
    return Verified(cn, sha, block["nonce"], float(block["t"]))


def _issued_by(leaf: x509.Certificate, root: x509.Certificate) -> bool:
    if leaf.issuer != root.subject:
        return False
    try:
        leaf.verify_directly_issued_by(root)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signing_required(setting: str | None, *, mtls: bool, have_roots: bool) -> bool:
    """The ``STRANDS_MESH_REQUIRE_SIGNED_IDENTITY`` rule (module docstring).

    Args:
        setting: the variable's value (None or empty = ``auto``).
        mtls: the session runs mutual TLS.
        have_roots: a trust root is loaded.
    """
    raw = (setting or "auto").strip().lower()
    if raw == "0":
        return False
    if raw == "auto":
        return mtls and have_roots
    return True  # "1", and anything unrecognised (fail closed)


class WireTrust:
    """A receiver's policy: the trust roots, whether signatures are required, and a replay
    guard (one use of each ``(certificate, nonce)`` within ``MAX_AGE + MAX_AHEAD``)."""

    def __init__(self, roots: tuple[x509.Certificate, ...] | None, required: bool, guard_size: int = 8192) -> None:
        self.roots = roots
        self.required = required
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        self._size = guard_size

    def concerns(self, payload: bytes) -> bool:
        """Whether the raw message ``payload`` is to be checked at all: signatures are required,
        or it carries a ``sig`` block and trust roots are loaded. A byte test, so that the
        receivers' hot paths parse JSON only when the answer is yes."""
        return self.required or (bool(self.roots) and b'"sig"' in payload)

    def check(self, message: Any, claimed: str | None, *, replay: bool = True,
              now: float | None = None) -> Verified | str | None:
        """Check that ``message`` is signed by a certificate that speaks for ``claimed``.

        Returns None when signatures are not required and the message carries none (nothing
        to say), a :class:`Verified` when it checks out, else a one-line refusal. A message
        that carries a ``sig`` block is checked even when not required if roots are loaded:
        a bad signature is never silently taken as good.
        """
        signed = isinstance(message, dict) and SIG_FIELD in message
        if not self.required and not (signed and self.roots):
            return None  # nothing to check against (0.5.3 does the same)
        got = verify(self.roots, message, now=now)
        if isinstance(got, str):
            return got
        if not isinstance(claimed, str) or not cn_speaks_for(got.cn, claimed):
            return f"signing certificate's common name {got.cn!r} does not speak for {str(claimed)[:64]!r}"
        if replay and self._replayed(got):
            return "signed message replayed (this certificate already used its nonce)"
        return got

    def _replayed(self, got: Verified) -> bool:
        now = time.monotonic()
        key = (got.cert_sha256, got.nonce)
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - (MAX_AGE + MAX_AHEAD):
                self._seen.popitem(last=False)
            if key in self._seen:
                return True
            self._seen[key] = now
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
        return False
