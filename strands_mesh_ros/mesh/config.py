"""Mesh configuration: the contract's prefix plus the Zenoh session settings.

Precedence, lowest to highest: Zenoh's defaults < a json5 file (``config_file`` or env
``ZENOH_CONFIG``) < environment (``ZENOH_CONNECT``, ``ZENOH_LISTEN``, ``STRANDS_MESH_PREFIX``,
``STRANDS_MESH_NAMESPACE``) < explicit arguments.

Defaults: prefix ``strands``, no Zenoh namespace, peer mode with multicast scouting (peers on
one LAN find each other with no configuration). Real strands-robots deployments set Zenoh
namespace ``strands``: use ``MeshConfig(namespace="strands")`` to talk to them.

Zenoh is imported only by :meth:`MeshConfig.zenoh_config`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..contract.keys import DEFAULT_PREFIX, KeySpace, check_prefix

_RUST_LOCATION = re.compile(r" at /\S+\.rs:\d+(:\d+)?\.?")
_JSON5_MESSAGE = re.compile(r'Json5Err\(Message \{ msg: "(.*?)", location')


def one_line(exc: BaseException) -> str:
    """An error as one line for a person: Zenoh's errors span several lines (a caret diagram
    under a json5 error) and end with the Rust source location, which are dropped. At most 400
    characters; the exception's type name when it says nothing."""
    text = str(exc)
    if m := _JSON5_MESSAGE.match(text):  # a config error: its message, not the Rust debug form
        text = m.group(1).replace("\\n", " ")
    return " ".join(_RUST_LOCATION.sub("", text).split())[:400] or type(exc).__name__

Mode = Literal["peer", "client", "router"]

PRESENCE_HZ = 2.0
"""Presence heartbeat rate (CONTRACT.md: 2 Hz)."""

PEER_TIMEOUT = 1.5
"""A peer whose presence has not been heard for this long (s) has left: three missed 2 Hz
beats, so a hung peer leaves within 2 s (issue 2) even while its liveliness token lingers
until the Zenoh link lease (10 s by default) expires."""

STATE_HZ = 20.0
"""Default robot state rate, Hz (CONTRACT.md allows 10-50)."""


def _env_list(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "")
    return tuple(e.strip() for e in raw.split(",") if e.strip())


@dataclass(frozen=True)
class MeshConfig:
    """Everything a :class:`~strands_mesh_ros.mesh.mesh.Mesh` needs besides its peer id.

    Attributes:
        prefix: the contract's key prefix ``P``.
        namespace: Zenoh session namespace (``None`` = none); ``"strands"`` for strands-robots.
        mode: Zenoh mode: ``peer``, ``client`` (behind a router) or ``router``; None (default)
            keeps the json5 file's mode, else ``peer``.
        connect, listen: Zenoh endpoints such as ``tcp/127.0.0.1:7447``.
        multicast_scouting: enable/disable UDP multicast discovery; None = Zenoh default (on).
        lease_ms: Zenoh ``transport/link/tx/lease`` in ms (how fast a hung link is dropped).
        config_file: a Zenoh json5 file applied before the fields above.
        presence_hz, peer_timeout, state_hz: see the module constants.
    """

    prefix: str = DEFAULT_PREFIX
    namespace: str | None = None
    mode: Mode | None = None
    connect: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()
    multicast_scouting: bool | None = None
    lease_ms: int | None = None
    config_file: str | None = None
    presence_hz: float = PRESENCE_HZ
    peer_timeout: float = PEER_TIMEOUT
    state_hz: float = STATE_HZ
    extra: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if self.mode is not None and self.mode not in ("peer", "client", "router"):
            raise ValueError(f"invalid Zenoh mode {self.mode!r}: use peer, client or router")
        if self.namespace is not None:
            check_prefix(self.namespace)
        for name in ("presence_hz", "peer_timeout", "state_hz"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.config_file is not None and not os.path.isfile(self.config_file):
            raise ValueError(f"Zenoh config file {self.config_file!r} does not exist")

    @classmethod
    def from_env(cls, **overrides: Any) -> "MeshConfig":
        """Build from environment variables, then apply ``overrides`` that are not None."""
        base: dict[str, Any] = {}
        if v := os.environ.get("ZENOH_CONFIG"):
            base["config_file"] = v
        if v := os.environ.get("ZENOH_MODE"):
            base["mode"] = v
        if v := _env_list("ZENOH_CONNECT"):
            base["connect"] = v
        if v := _env_list("ZENOH_LISTEN"):
            base["listen"] = v
        if v := os.environ.get("STRANDS_MESH_PREFIX"):
            base["prefix"] = v
        if v := os.environ.get("STRANDS_MESH_NAMESPACE"):
            base["namespace"] = v
        for k, v in overrides.items():
            if v is None:
                continue
            base[k] = tuple(v) if k in ("connect", "listen") else v
        return cls(**base)

    def with_(self, **changes: Any) -> "MeshConfig":
        return replace(self, **changes)

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.prefix)

    def session_key(self) -> tuple:
        """Identity of the Zenoh session this config opens (for the session pool)."""
        return (self.namespace, self.mode, self.connect, self.listen, self.multicast_scouting,
                self.lease_ms, self.config_file, self.extra)

    def zenoh_config(self, *, listen: bool = True):
        """A ``zenoh.Config`` for this mesh.

        Args:
            listen: include ``listen`` endpoints (the safety session of a process must not
                bind the same port as its main session).

        Raises:
            ValueError: the json5 file or an override is rejected by Zenoh.
        """
        import zenoh

        try:
            conf = zenoh.Config.from_file(self.config_file) if self.config_file else zenoh.Config()
            if self.mode is not None or not self.config_file:  # else the json5 file's mode stands
                conf.insert_json5("mode", json.dumps(self.mode or "peer"))
            if self.connect:
                conf.insert_json5("connect/endpoints", json.dumps(list(self.connect)))
            if self.listen and listen:
                conf.insert_json5("listen/endpoints", json.dumps(list(self.listen)))
            if self.multicast_scouting is not None:
                conf.insert_json5("scouting/multicast/enabled", json.dumps(self.multicast_scouting))
            if self.lease_ms is not None:
                conf.insert_json5("transport/link/tx/lease", json.dumps(int(self.lease_ms)))
            if self.namespace:
                conf.insert_json5("namespace", json.dumps(self.namespace))
            for path, value in self.extra:
                conf.insert_json5(path, json.dumps(value))
        except zenoh.ZError as exc:
            raise ValueError(f"Zenoh rejected the mesh configuration: {one_line(exc)}") from None
        return conf
