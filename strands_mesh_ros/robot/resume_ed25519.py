"""Ed25519 resume assertions: the resume authority of strands-robots 0.5.3, verified and issued.

strands-robots 0.5.3 clears an e-stop lockout only with an operator-signed assertion
(docs/interop-notes.md (f); their ``resume_authority.py``)::

    {"v": 1, "epoch": "<estop_id, 32 lc hex>", "targets": ["arm1", ...], "t": <float UNIX s>,
     "nonce": "<32 lc hex>", "sig": "<base64url Ed25519 over the canonical JSON of the rest>"}

canonical JSON = ``json.dumps({v, epoch, targets, t, nonce}, sort_keys=True,
separators=(",", ":"))``. It travels either as the envelope ``{peer_id, t, lockout_elapsed_s,
assertion, source_zid?}`` on ``P/safety/resume`` or as the command ``{"action": "resume",
"assertion": {...}}``. Our own HMAC resume (:mod:`.safety`) stays for our fleets; a peer checks
this form only when it holds public keys.

Keys:

* verify: env ``STRANDS_MESH_RESUME_PUBLIC_KEY``, comma-separated base64url of raw 32-byte
  Ed25519 public keys (padding optional), as in 0.5.3. A malformed entry is skipped and logged,
  never "accept anything".
* sign (operator only): env ``STRANDS_MESH_RESUME_PRIVATE_KEY_FILE`` (0.5.3's
  ``STRANDS_MESH_RESUME_SIGNING_KEY_FILE`` is read too), a PEM private key (PKCS#8; encrypted
  ones need ``STRANDS_MESH_RESUME_PRIVATE_KEY_PASSPHRASE``) or the raw 32-byte seed as base64url.

Pure Python plus ``cryptography``; no zenoh import. Checking never raises on what a peer sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_crypto_loaded = False


def _crypto() -> None:
    """Import cryptography into this module on first use (as ``wire_identity._crypto``): a
    process with no Ed25519 key configured does not pay for it."""
    global _crypto_loaded, InvalidSignature, serialization, Ed25519PrivateKey, Ed25519PublicKey
    if _crypto_loaded:
        return
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    _crypto_loaded = True

log = logging.getLogger(__name__)

PUBLIC_KEY_ENV = "STRANDS_MESH_RESUME_PUBLIC_KEY"
PRIVATE_KEY_FILE_ENV = "STRANDS_MESH_RESUME_PRIVATE_KEY_FILE"
THEIR_PRIVATE_KEY_FILE_ENV = "STRANDS_MESH_RESUME_SIGNING_KEY_FILE"
PASSPHRASE_ENV = "STRANDS_MESH_RESUME_PRIVATE_KEY_PASSPHRASE"

VERSION = 1
MAX_AGE = 60.0
"""An assertion whose ``t`` is older than this (s) is refused (0.5.3's freshness window)."""
MAX_AHEAD = 5.0
"""An assertion whose ``t`` is further ahead than this (s) is refused (0.5.3's forward skew)."""
MAX_TARGETS = 256
NONCE_MEMORY = 4096
"""Most nonces remembered per peer, each for MAX_AGE + MAX_AHEAD s; when full of fresh ones,
further assertions are refused (fail closed) until some expire."""

FIELDS = ("v", "epoch", "targets", "t", "nonce")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_PEER = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_SIG = re.compile(r"[A-Za-z0-9_\-]{86}(==)?")
_KEY_FILE_MAX_BYTES = 16 * 1024


class ResumeSigningKeyError(ValueError):
    """The configured private key file cannot be used (one line: path and why)."""


def _b64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The text a peer's ``STRANDS_MESH_RESUME_PUBLIC_KEY`` holds for ``key`` (base64url, padded)."""
    _crypto()
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return base64.urlsafe_b64encode(key.public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw)).decode()


def load_public_keys(text: str | None = None) -> list[Ed25519PublicKey]:
    """The trusted keys from ``text`` (default env ``STRANDS_MESH_RESUME_PUBLIC_KEY``); empty
    when none. Malformed entries are skipped with a warning."""
    if text is None:
        text = os.environ.get(PUBLIC_KEY_ENV, "")
    keys = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        _crypto()
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(_b64url(item)))
        except (ValueError, TypeError, binascii.Error):
            log.warning("%s entry %r is not a base64url raw Ed25519 public key; ignored", PUBLIC_KEY_ENV, item[:60])
    return keys


def load_signing_key(path: str | os.PathLike | None = None, passphrase: str | None = None) -> Ed25519PrivateKey | None:
    """The operator's Ed25519 signing key from ``path`` (default env
    ``STRANDS_MESH_RESUME_PRIVATE_KEY_FILE``, else ``STRANDS_MESH_RESUME_SIGNING_KEY_FILE``), or
    None when none is configured. The file holds a PEM private key (PKCS#8 or OpenSSH; encrypted
    PEM needs ``passphrase`` or env ``STRANDS_MESH_RESUME_PRIVATE_KEY_PASSPHRASE``) or the raw
    32-byte private seed as base64url.

    Raises:
        ResumeSigningKeyError: the file cannot be read or holds no Ed25519 private key.
    """
    if path is None:
        path = os.environ.get(PRIVATE_KEY_FILE_ENV) or os.environ.get(THEIR_PRIVATE_KEY_FILE_ENV)
        if not path:
            return None
    path = Path(path)
    try:
        raw = path.read_bytes()[:_KEY_FILE_MAX_BYTES + 1]
    except OSError as exc:
        raise ResumeSigningKeyError(f"resume signing key {path}: cannot read it ({exc.strerror})") from None
    if len(raw) > _KEY_FILE_MAX_BYTES:
        raise ResumeSigningKeyError(f"resume signing key {path}: larger than {_KEY_FILE_MAX_BYTES} bytes, not a key")
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV)
    pw = passphrase.encode() if passphrase else None
    key: Any = None
    _crypto()
    try:
        if b"-----BEGIN OPENSSH" in raw:
            key = serialization.load_ssh_private_key(raw, password=pw)
        elif b"-----BEGIN" in raw:
            key = serialization.load_pem_private_key(raw, password=pw)
        else:
            key = Ed25519PrivateKey.from_private_bytes(_b64url(raw.decode("ascii")))
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error) as exc:
        raise ResumeSigningKeyError(f"resume signing key {path}: not a usable Ed25519 private key "
                                    f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}; "
                                    f"an encrypted PEM needs {PASSPHRASE_ENV})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ResumeSigningKeyError(f"resume signing key {path}: a {type(key).__name__}, not an Ed25519 key")
    return key


def canonical(fields: dict[str, Any]) -> bytes:
    """The signed bytes: ``{v, epoch, targets, t, nonce}`` as canonical JSON (0.5.3's form)."""
    return json.dumps({k: fields[k] for k in FIELDS}, sort_keys=True, separators=(",", ":")).encode()


def sign_assertion(key: Ed25519PrivateKey, epoch: str, targets: list[str], t: float | None = None,
                   nonce: str | None = None) -> dict[str, Any]:
    """An assertion clearing lockout ``epoch`` on each of ``targets`` (sorted, deduplicated).

    Raises:
        ValueError: ``epoch`` is not 32 lowercase hex, or ``targets`` is empty, too long or
            holds an id 0.5.3 would refuse.
    """
    if not isinstance(epoch, str) or not _HEX32.fullmatch(epoch):
        raise ValueError(f"epoch must be an estop_id (32 lowercase hex), got {epoch!r}")
    names = sorted(set(targets))
    if not names or len(names) > MAX_TARGETS or not all(isinstance(n, str) and _PEER.fullmatch(n) for n in names):
        raise ValueError(f"targets must be 1-{MAX_TARGETS} peer ids, got {targets!r}")
    fields: dict[str, Any] = {"v": VERSION, "epoch": epoch, "targets": names,
                              "t": float(time.time() if t is None else t), "nonce": nonce or uuid.uuid4().hex}
    return {**fields, "sig": base64.urlsafe_b64encode(key.sign(canonical(fields))).decode()}


def is_assertion_form(data: Any) -> bool:
    """Whether a parsed resume payload is 0.5.3's envelope (it carries ``assertion``)."""
    return isinstance(data, dict) and "assertion" in data


@dataclass(frozen=True)
class AssertionEnvelope:
    """0.5.3's resume envelope, as read (see the module docstring). ``seq`` is ``int(t * 1e9)``:
    what our resume ack names, so our issuer can match acks to the envelope it sent."""

    peer_id: str
    t: float
    seq: int
    assertion: Any
    operator: str = ""


def parse_envelope(data: dict[str, Any]) -> AssertionEnvelope | str:
    """The envelope in ``data``, or why it cannot be read (never raises)."""
    peer, t = data.get("peer_id"), data.get("t")
    if not isinstance(peer, str) or not _PEER.fullmatch(peer):
        return "malformed resume envelope: peer_id is not a peer id"
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or abs(t) > 1e11:
        return "malformed resume envelope: t is not a finite time"
    return AssertionEnvelope(peer_id=peer, t=float(t), seq=int(t * 1e9), assertion=data.get("assertion"))


def make_envelope(peer_id: str, assertion: dict[str, Any], lockout_elapsed_s: float = 0.0,
                  source_zid: str | None = None, t: float | None = None) -> bytes:
    """0.5.3's resume envelope bytes. Plain ``json.dumps``: floats keep their repr, so a
    receiver re-serialises the assertion exactly as it was signed."""
    env: dict[str, Any] = {"peer_id": peer_id, "t": float(time.time() if t is None else t),
                           "lockout_elapsed_s": float(lockout_elapsed_s), "assertion": assertion}
    if source_zid is not None:
        env["source_zid"] = source_zid
    return json.dumps(env, separators=(",", ":")).encode()


class AssertionGuard:
    """Checks assertions for one peer: signature, target, epoch, freshness, single use.

    Args:
        keys: trusted public keys (none: every assertion is refused).
    """

    def __init__(self, keys: list[Ed25519PublicKey]) -> None:
        self.keys = list(keys)
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce -> monotonic time first used
        self._lock = threading.Lock()

    def check(self, assertion: Any, me: str, epoch: str | None, now: float, *, use: bool = True) -> str | None:
        """Why ``assertion`` may not clear lockout ``epoch`` of peer ``me`` at ``now`` (UNIX s),
        or None. ``epoch`` None skips the epoch test (a peer with nothing to clear). With
        ``use``, an admitted nonce is recorded: it is refused ever after. Never raises."""
        try:
            return self._check(assertion, me, epoch, now, use)
        except Exception as exc:  # noqa: BLE001 - hostile input must never end the caller's thread
            return f"malformed resume assertion: {type(exc).__name__}"

    def _check(self, a: Any, me: str, epoch: str | None, now: float, use: bool) -> str | None:
        if not self.keys:
            return f"no Ed25519 resume key configured on this peer (set {PUBLIC_KEY_ENV})"
        if not isinstance(a, dict):
            return "malformed resume assertion: not a JSON object"
        if set(a) != {*FIELDS, "sig"}:
            extra, missing = sorted(set(a) - {*FIELDS, "sig"}), sorted({*FIELDS, "sig"} - set(a))
            return ("malformed resume assertion: " + "; ".join(
                ([f"unexpected field(s) {', '.join(repr(str(k)[:40]) for k in extra[:5])}"] if extra else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])))
        v, ep, targets, t, nonce, sig = (a[k] for k in (*FIELDS, "sig"))
        if isinstance(v, bool) or v != VERSION:
            return f"unsupported resume assertion version {str(v)[:20]!r}"
        if not isinstance(ep, str) or not _HEX32.fullmatch(ep):
            return "malformed resume assertion: epoch is not 32 lowercase hex"
        if not isinstance(nonce, str) or not _HEX32.fullmatch(nonce):
            return "malformed resume assertion: nonce is not 32 lowercase hex"
        if (not isinstance(targets, list) or not 0 < len(targets) <= MAX_TARGETS
                or not all(isinstance(n, str) and _PEER.fullmatch(n) for n in targets)):
            return "malformed resume assertion: targets is not a list of peer ids"
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            return "malformed resume assertion: t is not a finite time"
        if not isinstance(sig, str) or not _SIG.fullmatch(sig):
            return "malformed resume assertion: sig is not a base64url Ed25519 signature"
        raw_sig, message = _b64url(sig), canonical(a)
        _crypto()
        for key in self.keys:
            try:
                key.verify(raw_sig, message)
                break
            except InvalidSignature:
                continue
        else:
            return "bad resume signature (Ed25519 assertion does not verify with any configured key)"
        if me not in targets:
            return "not a target"
        if epoch is not None and ep != epoch:
            return f"resume assertion is for another lockout (epoch {ep[:8]}..., this peer's is {epoch[:8]}...)"
        age = now - t
        if age > MAX_AGE or -age > MAX_AHEAD:
            return f"stale resume assertion ({age:+.1f} s old; window {MAX_AGE:.0f} s back, {MAX_AHEAD:.0f} s ahead)"
        if not use:
            return None
        with self._lock:
            mono = time.monotonic()
            while self._nonces and mono - next(iter(self._nonces.values())) > MAX_AGE + MAX_AHEAD:
                self._nonces.popitem(last=False)
            if nonce in self._nonces:
                return f"replayed resume assertion (nonce {nonce[:8]}... already used)"
            if len(self._nonces) >= NONCE_MEMORY:  # fail closed: never forget a nonce still fresh
                return f"too many resume assertions ({NONCE_MEMORY} within {MAX_AGE + MAX_AHEAD:.0f} s); retry later"
            self._nonces[nonce] = mono
        return None
