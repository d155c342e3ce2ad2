"""A plain Zenoh router in its own process, for tests and benchmarks (no zenohd here).

    python test/router_proc.py tcp/127.0.0.1:7447 [more listen endpoints...]

Runs the package's router (:class:`strands_mesh_ros.mesh.router.Router`, what ``strands-mesh
router`` runs) listening on the given endpoints, multicast scouting off, prints ``READY <zid>``
and runs until SIGTERM / SIGINT.

Also importable by the routed tests for :data:`CLIENT_MODE`.
"""

from __future__ import annotations

import signal
import sys
import threading

CLIENT_MODE = """
import runpy, sys
from strands_mesh_ros.mesh.config import MeshConfig
_from_env = MeshConfig.from_env.__func__
MeshConfig.from_env = classmethod(lambda cls, **kw: _from_env(cls, **{**kw, "mode": "client"}))
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""
"""``python -c CLIENT_MODE module args...`` runs ``python -m module args...`` as a Zenoh *client*.

Needed because ``MeshConfig`` always writes its ``mode`` (default ``peer``) over the json5's
``mode``, and ``peer.py`` / the CLI have no ``--mode``; and a router does not route between
two peer-mode sessions that are not linked to each other. Once they take ``--mode client``
(docs/security.md, "Integration"), start them with that instead."""


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: router_proc.py LISTEN_ENDPOINT [...]", file=sys.stderr)
        return 2
    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.router import Router

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with Router(MeshConfig(listen=tuple(argv), multicast_scouting=False)) as router:
        print("READY", router.zid, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
