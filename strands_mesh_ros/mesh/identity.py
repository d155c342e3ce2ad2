"""Where a mesh peer's signed wire identity comes from, and the receiving policy it runs
(the rule itself is :mod:`strands_mesh_ros.robot.wire_identity`; docs/security.md).

Signing identity (the mTLS pair), first found wins:

1. ``STRANDS_MESH_TLS_CERT`` + ``STRANDS_MESH_TLS_KEY`` (the names strands-robots 0.5.3 reads);
2. the session's own json5: ``transport/link/tls/connect_certificate`` +
   ``connect_private_key`` (what :func:`strands_mesh_ros.security.tls_config` writes).

Trust roots: ``STRANDS_MESH_TLS_CA``, else the json5's ``transport/link/tls/root_ca_certificate``.
The session "runs mTLS" when the json5 says ``transport/link/tls/enable_mtls: true`` or
``STRANDS_MESH_AUTH_MODE`` is ``mtls`` with the three ``STRANDS_MESH_TLS_*`` files set.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from ..robot.wire_identity import REQUIRE_ENV, WireIdentity, WireTrust, cn_speaks_for, load_roots, signing_required
from .config import MeshConfig

log = logging.getLogger(__name__)


def _tls_setting(config: MeshConfig, name: str) -> Any:
    if not config.config_file:
        return None
    import zenoh

    try:
        return json.loads(config.zenoh_config(listen=False).get_json(f"transport/link/tls/{name}"))
    except (zenoh.ZError, ValueError):  # the field is unset
        return None


@dataclass(frozen=True)
class WireSetup:
    """This peer's signing identity (None: publishes unsigned) and receiving policy."""

    identity: WireIdentity | None
    trust: WireTrust


def wire_setup(config: MeshConfig) -> WireSetup:
    """Resolve the identity and the policy for a peer on ``config`` (module docstring).

    Raises:
        ValueError: a certificate, key or trust root is configured but cannot be used (a
            secured peer must not quietly publish unsigned), or signatures are required and
            no trust root is configured.
    """
    cert = os.environ.get("STRANDS_MESH_TLS_CERT") or _tls_setting(config, "connect_certificate")
    key = os.environ.get("STRANDS_MESH_TLS_KEY") or _tls_setting(config, "connect_private_key")
    ca = os.environ.get("STRANDS_MESH_TLS_CA") or _tls_setting(config, "root_ca_certificate")
    identity = WireIdentity.from_files(cert, key) if cert and key else None
    roots = load_roots(ca) if ca else None
    mtls = _tls_setting(config, "enable_mtls") is True or (
        os.environ.get("STRANDS_MESH_AUTH_MODE", "").strip().lower() == "mtls" and bool(cert and key and ca))
    setting = os.environ.get(REQUIRE_ENV)
    # Our peers' "auto" checks every signature that is present and requires none: ROS robots
    # behind a bridge cannot sign for themselves (a ROS name cannot be "<CN>__<robot>"), so
    # requiring signatures by default would cut them off a secured fleet, whose router ACL
    # already ties every key to a CN. "1" requires them, as 0.5.3's "auto" does under mTLS.
    auto = (setting or "auto").strip().lower() == "auto"
    required = False if auto else signing_required(setting, mtls=mtls, have_roots=roots is not None)
    if required and roots is None:
        raise ValueError(f"{REQUIRE_ENV} requires signed identity but no trust root is configured: set "
                         f"STRANDS_MESH_TLS_CA or the json5's transport/link/tls/root_ca_certificate")
    return WireSetup(identity, WireTrust(roots, required))


def signer_for(setup: WireSetup, peer_id: str) -> WireIdentity | None:
    """The identity ``peer_id`` signs with: None when it has none, or when its certificate's
    CN cannot speak for ``peer_id`` (a bridge's ROS robots): every receiver with a trust root
    refuses such a signature, so the message goes unsigned and is judged as unsigned."""

    if setup.identity is None or not cn_speaks_for(setup.identity.cn, peer_id):
        return None
    return setup.identity


def warn_if_cannot_speak(setup: WireSetup, peer_id: str) -> None:
    """Log once at start when this peer's signatures will be refused by a receiver that
    requires them (no identity, or a CN that does not speak for ``peer_id``)."""

    if setup.identity is None:
        if setup.trust.required:
            log.warning("%s: signed identity is required on this fleet but no certificate is configured to "
                        "sign with (STRANDS_MESH_TLS_CERT/KEY or the json5's connect_certificate): peers that "
                        "require it will refuse this peer's presence, answers and commands", peer_id)
    elif not cn_speaks_for(setup.identity.cn, peer_id):
        log.warning("%s: the signing certificate's CN %r does not speak for this peer id (it must equal it, or "
                    "the id must be '<CN>__<robot>'): it publishes unsigned, and peers that require signed "
                    "identity will refuse it", peer_id, setup.identity.cn)
