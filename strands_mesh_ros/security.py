"""The secured profile: Zenoh's own TLS, mutual TLS and access control for the strands mesh.

Nothing here is a home-made scheme: the router authenticates every client by its X.509
certificate (mTLS, ``transport/link/tls``) and Zenoh's access-control interceptor
(``access_control``) decides, per certificate common name, which keys each client may
publish and subscribe to. This module only *generates* those Zenoh configuration sections,
because the ACL is per key and robot ids vary. See docs/security.md for the profile, the
rules table and what it does and does not protect against.

Topology: one Zenoh router (or a backbone of routers) per site; robots, operators, bridges
and dashboards are Zenoh *clients* of it. A client only ever talks to its router, so every
message crosses the router's ingress (from its sender) and egress (to each receiver), which
is where the ACL is enforced. Peers in ``peer`` mode could link to each other directly and
bypass it: the profile turns them into clients and turns multicast scouting off.

Identities: a robot's certificate common name (CN) is its robot id; an operator's CN is its
operator id and must be listed in ``operators``; a process that hosts several robots (a fleet
host, a bridge) has its own CN and is listed in ``hosts`` with the robot ids it speaks for.

    from strands_mesh_ros.security import acl_config, tls_config, write_json5
    router = tls_config("router", "ca.pem", "router.pem", "router.key", listen=["tls/0.0.0.0:7447"])
    router["access_control"] = acl_config(["arm1", "arm2"], ["op"])
    write_json5("router.json5", router)

Pure Python: imports neither zenoh nor cryptography.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from .contract.keys import DEFAULT_PREFIX, check_peer_id, check_prefix

Role = Literal["router", "robot", "operator", "client"]

OPERATORS = "operators"
"""Id of the ACL subject that groups the operators' certificate common names."""

ROUTERS = "routers"
"""Id of the ACL subject that groups the other routers of a backbone (their certificates' CNs)."""

ALL_MESSAGES = ("put", "delete", "declare_subscriber", "query", "declare_queryable", "reply",
                "liveliness_token", "declare_liveliness_subscriber", "liveliness_query")
"""Every message kind Zenoh's ACL filters (Zenoh 1.x ``AclMessage``)."""

FLEET = "fleet"
"""Id of the ACL subject every authenticated client matches (the router's mTLS admits only
certificates of the fleet CA, so "every client" means "every holder of a fleet certificate")."""

EGRESS_MESSAGES = ("put", "delete", "declare_subscriber", "liveliness_token",
                   "declare_liveliness_subscriber", "liveliness_query", "reply")
"""What the router may forward to a client: anything on the mesh's keys. Each message has
already passed the ingress rules of its sender, and a client only receives what it may
subscribe to, so egress adds no restriction of its own."""


def _ids(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a list of ids, not the string {values!r}")
    out: list[str] = []
    for v in values:
        check_peer_id(v, f"{what} id")
        if v in out:
            raise ValueError(f"{what} id {v!r} listed twice")
        out.append(v)
    return out


def wire_prefix(prefix: str = DEFAULT_PREFIX, namespace: str | None = None) -> str:
    """The key prefix as the router sees it: ``namespace/prefix`` when clients set a Zenoh
    namespace (it is applied by each client's session, the router sees the full key)."""
    check_prefix(prefix)
    if namespace:
        check_prefix(namespace)
        return f"{namespace}/{prefix}"
    return prefix


def _rule(rule_id: str, messages: Sequence[str], keys: Sequence[str], flow: str = "ingress") -> dict[str, Any]:
    return {"id": rule_id, "permission": "allow", "flows": [flow], "messages": list(messages),
            "key_exprs": list(keys)}


def _peer_rules(p: str, cn: str, speaks_for: Sequence[str]) -> list[dict[str, Any]]:
    """Ingress rules for the client whose certificate CN is ``cn`` and that speaks for the
    peer ids ``speaks_for`` (its own id, or the robots a host runs)."""
    own = [f"{p}/{i}/**" for i in speaks_for]
    answers = [k for i in speaks_for for k in (
        f"{p}/*/response/{i}/*",             # responses naming itself as responder
        f"{p}/safety/estop/ack/*/{i}",       # e-stop acks as itself
        f"{p}/safety/resume/ack/*/{i}",      # resume answers as itself
    )]
    subs = [f"{p}/broadcast", f"{p}/safety/estop", f"{p}/safety/resume"] + [k for i in speaks_for for k in (
        f"{p}/{i}/cmd",                      # its own commands only
        f"{p}/{i}/response/**",              # answers to what it sent
        f"{p}/safety/estop/ack/{i}/*",       # acks of the e-stops it issued
        f"{p}/safety/resume/ack/{i}/*",
    )]
    return [
        _rule(f"peer-{cn}-put", ["put"], own + answers),
        _rule(f"peer-{cn}-token", ["liveliness_token"], [f"{p}/{i}/alive" for i in speaks_for]),
        _rule(f"peer-{cn}-sub", ["declare_subscriber"], subs),
    ]


def acl_config(robots: Sequence[str], operators: Sequence[str], prefix: str = DEFAULT_PREFIX, *,
               hosts: Mapping[str, Sequence[str]] | None = None, routers: Sequence[str] = (),
               namespace: str | None = None) -> dict[str, Any]:
    """The router's ``access_control`` section for a fleet (Zenoh 1.x schema).

    Default deny. Every client may subscribe to ``P/*/presence``, ``P/*/state`` and the
    liveliness tokens ``P/*/alive``. A robot (certificate CN = robot id) may publish under
    ``P/<id>/**`` and on the response, e-stop-ack and resume-ack keys that name it as the
    responder, declare its liveliness token, and subscribe to its own command and response
    keys, ``P/broadcast`` and the safety keys. An operator gets the same for its own id, and
    may in addition publish on ``P/*/cmd``, ``P/broadcast``, ``P/safety/estop`` and
    ``P/safety/resume`` and subscribe to everything under ``P``. Anything else is denied.

    Args:
        robots: robot ids, each the common name of that robot's certificate.
        operators: operator ids, each the common name of an operator certificate.
        prefix: the contract's key prefix ``P``.
        hosts: ``{certificate CN: [robot ids]}`` for a process that runs several robots on one
            session (a fleet host, a bridge): it may speak for each of them.
        routers: certificate CNs of the *other* routers of a backbone. Their links are trunks:
            everything under ``P`` is accepted from them, because each router checks its own
            clients at ingress (so every router of the backbone must run this ACL).
        namespace: the clients' Zenoh namespace, if any (the router sees ``namespace/P/...``).

    Returns:
        ``{"enabled", "default_permission", "rules", "subjects", "policies"}``.

    Raises:
        InvalidPeerId: an id that is not a valid peer id (so no wildcard can sneak into a rule).
        ValueError: a bad prefix or namespace, or an id listed twice in one list.
        TypeError: ``robots`` or ``operators`` given as a single string.
    """
    p = wire_prefix(prefix, namespace)
    robot_ids = _ids(robots, "robot")
    operator_ids = _ids(operators, "operator")
    host_map = {cn: _ids(ids, f"host {cn!r} robot") for cn, ids in (hosts or {}).items()}
    _ids(host_map, "host")
    if isinstance(routers, str):
        raise TypeError(f"routers must be a list of certificate CNs, not the string {routers!r}")
    router_cns = list(dict.fromkeys(routers))
    for cn in router_cns:  # CNs only (never in a key expression): host names are fine
        if not isinstance(cn, str) or not cn.strip() or not cn.isprintable():
            raise ValueError(f"bad router certificate CN {cn!r}")
    # Who speaks for which ids: robots and operators for themselves, hosts for their robots.
    speakers: dict[str, list[str]] = {}
    for cn in [*robot_ids, *operator_ids]:
        speakers.setdefault(cn, [cn])
    for cn, ids in host_map.items():
        speakers[cn] = list(dict.fromkeys([*speakers.get(cn, [cn]), *ids]))

    rules = [
        _rule("fleet-observe", ["declare_subscriber"], [f"{p}/*/presence", f"{p}/*/state"]),
        _rule("fleet-alive", ["declare_liveliness_subscriber", "liveliness_query"], [f"{p}/*/alive"]),
        _rule("fleet-egress", EGRESS_MESSAGES, [f"{p}/**"], flow="egress"),
    ]
    subjects: list[dict[str, Any]] = [{"id": FLEET}]
    policies: list[dict[str, Any]] = [
        {"id": "fleet", "rules": ["fleet-observe", "fleet-alive", "fleet-egress"], "subjects": [FLEET]}]
    if operator_ids:
        rules += [
            _rule("operators-command", ["put"],
                  [f"{p}/*/cmd", f"{p}/broadcast", f"{p}/safety/estop", f"{p}/safety/resume"]),
            _rule("operators-watch", ["declare_subscriber"], [f"{p}/**"]),
        ]
        subjects.append({"id": OPERATORS, "cert_common_names": operator_ids})
        policies.append({"id": "operators", "rules": ["operators-command", "operators-watch"],
                         "subjects": [OPERATORS]})
    if router_cns:
        rules.append(_rule("routers-trunk", ALL_MESSAGES, [f"{p}/**"]))
        subjects.append({"id": ROUTERS, "cert_common_names": router_cns})
        policies.append({"id": "routers", "rules": ["routers-trunk"], "subjects": [ROUTERS]})
    for cn, ids in speakers.items():
        peer_rules = _peer_rules(p, cn, ids)
        rules += peer_rules
        subjects.append({"id": f"peer-{cn}", "cert_common_names": [cn]})
        policies.append({"id": f"peer-{cn}", "rules": [r["id"] for r in peer_rules], "subjects": [f"peer-{cn}"]})
    return {"enabled": True, "default_permission": "deny", "rules": rules, "subjects": subjects,
            "policies": policies}


def tls_config(role: Role, ca: str | os.PathLike, cert: str | os.PathLike, key: str | os.PathLike, *,
               listen: Sequence[str] = (), connect: Sequence[str] = ()) -> dict[str, Any]:
    """A Zenoh configuration (as a dict) for one member of the secured profile.

    ``router``: mode router, listens on the ``tls/...`` endpoints with ``cert``/``key``,
    requires a client certificate signed by ``ca`` (mTLS), and uses the same certificate when
    it connects to other routers (a backbone) or when a second session of its own process
    connects to it (the mesh's safety session). ``robot``, ``operator`` and ``client``: mode
    client, connects to the router's ``tls/...`` endpoints presenting ``cert``/``key`` and
    verifying the router against ``ca`` (and its name against the endpoint's host).

    Only TLS links are enabled (``transport/link/protocols``) and multicast scouting is off;
    a client also gets an empty listen list, so even if its mode is overridden to ``peer`` it
    offers nothing another member could connect to and cannot bypass the router's ACL. Links are closed when the peer's
    certificate expires (``close_link_on_expiration``), so short-lived certificates bound how
    long a removed member stays connected.

    Args:
        role: ``router``, ``robot``, ``operator`` or ``client`` (the last three are the same).
        ca, cert, key: PEM files: the fleet CA certificate, this member's certificate chain
            and its private key. Paths are written as given (absolute paths are safest:
            Zenoh resolves relative ones against the process's working directory).
        listen, connect: Zenoh endpoints, each ``tls/<host>:<port>``.

    Raises:
        ValueError: an unknown role, an endpoint that is not ``tls/...``, a router with no
            listen endpoint or a client with no connect endpoint, a client given listen
            endpoints.
    """
    if role not in ("router", "robot", "operator", "client"):
        raise ValueError(f"unknown role {role!r}: use router, robot, operator or client")
    for ep in [*listen, *connect]:
        if not isinstance(ep, str) or not ep.startswith("tls/"):
            raise ValueError(f"endpoint {ep!r} is not a TLS endpoint (tls/<host>:<port>)")
    if isinstance(listen, str) or isinstance(connect, str):
        raise TypeError("listen and connect are lists of endpoints")
    tls: dict[str, Any] = {"root_ca_certificate": str(ca), "enable_mtls": True,
                           "connect_certificate": str(cert), "connect_private_key": str(key),
                           "close_link_on_expiration": True}
    conf: dict[str, Any] = {"mode": "router" if role == "router" else "client"}
    if role == "router":
        if not listen:
            raise ValueError("a router needs at least one tls/... listen endpoint")
        tls.update(listen_certificate=str(cert), listen_private_key=str(key))
        conf["listen"] = {"endpoints": list(listen)}
        if connect:
            conf["connect"] = {"endpoints": list(connect)}
    else:
        if listen:
            raise ValueError(f"a {role} is a client of the router and does not listen; got {list(listen)}")
        if not connect:
            raise ValueError(f"a {role} needs the router's tls/... endpoint to connect to")
        conf["connect"] = {"endpoints": list(connect)}
        # Never listen: even a session whose mode is overridden to peer then has nothing
        # another member could connect to, so it links to the router only (ACL not bypassed).
        conf["listen"] = {"endpoints": []}
    conf.setdefault("scouting", {})["multicast"] = {"enabled": False}
    conf["transport"] = {"link": {"protocols": ["tls"], "tls": tls}}
    return conf


def write_json5(path: str | os.PathLike, config: Mapping[str, Any], comment: str = "") -> Path:
    """Write ``config`` as a Zenoh json5 file (plain JSON is valid json5), with ``comment``
    as ``//`` lines on top. Returns the path."""
    out = Path(path)
    head = "".join(f"// {line}".rstrip() + "\n" for line in comment.splitlines())
    out.write_text(head + _dumps(config) + "\n", encoding="utf-8")
    return out


def _dumps(value: Any, indent: int = 0, width: int = 100) -> str:
    """JSON, indented, with short lists and objects kept on one line (readable ACLs)."""
    flat = json.dumps(value)
    nested = isinstance(value, dict) and any(isinstance(v, dict) and v for v in value.values())
    if not isinstance(value, (dict, list)) or (len(flat) + indent <= width and not nested):
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list):
        items = [inner + _dumps(v, indent + 2, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    items = [f"{inner}{json.dumps(k)}: {_dumps(v, indent + 2, width)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


# -- the documented examples in config/secure/ ---------------------------------------------

_EXAMPLE_PKI = "/etc/strands_mesh/pki"
_EXAMPLE_ROUTER = "tls/router.fleet.example:7447"


def example_configs() -> dict[str, dict[str, Any]]:
    """The example profile shipped in ``config/secure/`` (robots arm1, arm2 and base1,
    operator ``op``, certificates under /etc/strands_mesh/pki), by file name."""
    pki = _EXAMPLE_PKI
    router = tls_config("router", f"{pki}/ca.pem", f"{pki}/router.pem", f"{pki}/router.key",
                        listen=["tls/0.0.0.0:7447"])
    router["access_control"] = acl_config(["arm1", "arm2", "base1"], ["op"])
    robot = tls_config("robot", f"{pki}/ca.pem", f"{pki}/arm1.pem", f"{pki}/arm1.key", connect=[_EXAMPLE_ROUTER])
    operator = tls_config("operator", f"{pki}/ca.pem", f"{pki}/op.pem", f"{pki}/op.key", connect=[_EXAMPLE_ROUTER])
    return {"router.json5": router, "robot.json5": robot, "operator.json5": operator}


_HEADERS = {
    "router.json5": "strands mesh secured profile: the router (TLS listen, mTLS, access control).\n"
                    "Robots arm1, arm2, base1 (certificate CN = robot id); operator 'op'.",
    "robot.json5": "strands mesh secured profile: robot arm1, a client of the router (mTLS).\n"
                   "Its certificate's common name must be its robot id.",
    "operator.json5": "strands mesh secured profile: operator 'op', a client of the router (mTLS).\n"
                      "Its certificate's common name must be listed in the router's operators.",
}


def write_example_configs(directory: str | os.PathLike) -> list[Path]:
    """(Re)generate the documented examples (``config/secure/*.json5``) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    note = "\nGenerated by strands_mesh_ros.security.write_example_configs(); see docs/security.md."
    return [write_json5(d / name, conf, _HEADERS[name] + note) for name, conf in example_configs().items()]
