"""A Zenoh router with the secured profile's configuration, in its own process.

    python test/secure_router_proc.py router.json5

Runs the package's router (:class:`strands_mesh_ros.mesh.router.Router`, what ``strands-mesh
router --config`` runs) from the json5 file (made by
:func:`strands_mesh_ros.security.tls_config` and :func:`~strands_mesh_ros.security.acl_config`:
TLS listen, mutual TLS, access control), prints ``READY <zid>`` once it listens, and runs
until SIGTERM / SIGINT. A configuration Zenoh rejects exits with status 2 and the reason.
"""

from __future__ import annotations

import signal
import sys
import threading

import zenoh

from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.router import Router


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: secure_router_proc.py ROUTER_JSON5", file=sys.stderr)
        return 2
    zenoh.init_log_from_env_or("error")
    try:
        router = Router(MeshConfig(config_file=argv[0])).start()
    except (RuntimeError, ValueError) as exc:
        print(f"FAILED {exc}", flush=True)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with router:
        print("READY", router.zid, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
