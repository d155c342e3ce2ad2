"""A mesh peer in its own process, for multi-process tests.

    python test/peer_proc.py PEER_ID --prefix P --connect tcp/127.0.0.1:N [--agent]

Runs a mock-hardware robot (or an agent) until SIGTERM; prints ``READY`` once started.
"""

import argparse
import signal
import threading

from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer_id")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--connect", action="append", default=[])
    ap.add_argument("--listen", action="append", default=[])
    ap.add_argument("--namespace")
    ap.add_argument("--agent", action="store_true")
    ap.add_argument("--resume-key")
    args = ap.parse_args()
    cfg = MeshConfig(prefix=args.prefix, connect=tuple(args.connect), listen=tuple(args.listen),
                     multicast_scouting=False, namespace=args.namespace)
    robot = None if args.agent else MockDriver(args.peer_id)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Mesh(args.peer_id, robot=robot, config=cfg, resume_key=args.resume_key):
        print("READY", args.peer_id, flush=True)
        done.wait()


if __name__ == "__main__":
    main()
