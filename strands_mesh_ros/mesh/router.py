"""A Zenoh router from this package: a zenoh-python session in ``router`` mode.

``strands-mesh router`` runs one (docs/scale.md), and so do the routed tests and
bench/scale.py. It routes the fleet's traffic between clients and to other routers (a
backbone: give it the other routers in ``connect``), with the same configuration sources as
every peer here (:class:`~strands_mesh_ros.mesh.config.MeshConfig`: a json5 file, ``ZENOH_*``
environment variables, explicit endpoints), so the secured profile's router json5 (TLS,
mutual TLS, access control; :mod:`strands_mesh_ros.security`, docs/security.md) applies
unchanged. It implements none of the contract: it is Zenoh's own router, without the plugins
(REST, storage) of the Rust ``zenohd``.

Why not ``zenohd``: it is not installable from PyPI, Debian or npm here (ENVIRONMENT.md), while a
Python session in router mode routes as one (Zenoh 1.10.2, checked by test/test_routed.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .config import MeshConfig, one_line

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "tcp/[::]:7447"
"""Where a router listens when nothing says otherwise: Zenoh's router default (as ``zenohd``)."""


class Router:
    """One Zenoh router (see the module docstring). A context manager.

    Args:
        config: endpoints, json5 file, multicast scouting, lease; its ``mode`` is forced to
            ``router``; no ``listen`` anywhere (here or in the file) means :data:`DEFAULT_LISTEN`.
            ``prefix`` and ``namespace`` do not apply (a router forwards every key).

    Raises:
        ValueError: a json5 file whose ``mode`` is ``client``, or a configuration Zenoh rejects
            (a bad endpoint, a malformed file); the message is one line naming it.
    """

    def __init__(self, config: MeshConfig) -> None:
        import zenoh

        self._zenoh = zenoh
        if config.config_file:
            try:
                mode = json.loads(zenoh.Config.from_file(config.config_file).get_json("mode"))
            except zenoh.ZError as exc:
                raise ValueError(f"Zenoh rejected {config.config_file}: {one_line(exc)}") from None
            if mode == "client":
                raise ValueError(f"{config.config_file} sets mode 'client': a router needs mode 'router' (or none)")
        self.config = config.with_(mode="router", namespace=None)
        try:
            conf = self.config.zenoh_config()
        except ValueError as exc:
            raise ValueError(one_line(exc)) from None
        try:
            # Read-only admin space, as zenohd has by default: it tells which locators we bound.
            if not json.loads(conf.get_json("adminspace/enabled") or "false"):
                conf.insert_json5("adminspace", json.dumps({"enabled": True, "permissions": {"read": True, "write": False}}))
        except zenoh.ZError as exc:
            raise ValueError(f"Zenoh rejected the router configuration: {one_line(exc)}") from None
        self._conf = conf
        self.session: Any = None

    def start(self) -> "Router":
        """Open the router session (idempotent).

        Raises:
            RuntimeError: Zenoh could not open it (a listen port in use, unreadable TLS files).
        """
        if self.session is None:
            try:
                self.session = self._zenoh.open(self._conf)
            except self._zenoh.ZError as exc:
                raise RuntimeError(f"could not start the Zenoh router: {one_line(exc)}") from None
        return self

    @property
    def zid(self) -> str:
        """The router's Zenoh id (hex)."""
        return str(self.session.zid())

    def locators(self, timeout: float = 2.0) -> list[str]:
        """The locators the router listens on (ports resolved), from its own admin space;
        the configured endpoints when that does not answer."""
        try:
            for reply in self.session.get(f"@/{self.zid}/router", timeout=timeout):
                if reply.ok is not None:
                    return list(json.loads(reply.ok.payload.to_string()).get("locators") or [])
        except (self._zenoh.ZError, ValueError) as exc:
            log.debug("admin space query: %s", exc)
        configured = json.loads(self._conf.get_json("listen/endpoints") or "[]")
        return configured.get("router", [DEFAULT_LISTEN]) if isinstance(configured, dict) else configured

    def close(self) -> None:
        """Close the session (idempotent)."""
        if self.session is not None:
            self.session.close()
            self.session = None

    def __enter__(self) -> "Router":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
