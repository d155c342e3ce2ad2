"""A mesh-native robot for the benches, run as a subprocess. Not a test, not a bench itself.

One :class:`~strands_mesh_ros.mesh.mesh.Mesh` robot (``--driver mock`` or ``mujoco``), as
``strands_mesh_ros.peer`` runs one, plus: ``--halt-clock`` makes the driver print
``HALTED <id> <unix time>`` when its ``emergency_stop()`` has halted it and ``RESUMED ...``
after a resume (bench/bench_halt.py); ``--resume-key`` for signed resumes. Prints ``READY``
once on the mesh, runs until SIGTERM.

    python bench/_mesh_robot.py arm_m --prefix bXXXX --connect tcp/127.0.0.1:7447 --halt-clock --resume-key K
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from _common import make_driver

from strands_mesh_ros.mesh.config import MeshConfig
from strands_mesh_ros.mesh.mesh import Mesh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("robot_id")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--connect", required=True)
    ap.add_argument("--driver", choices=("mock", "mujoco"), default="mock")
    ap.add_argument("--halt-clock", action="store_true")
    ap.add_argument("--resume-key")
    args = ap.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    cfg = MeshConfig(prefix=args.prefix, connect=(args.connect,), multicast_scouting=False)
    driver = make_driver(args.driver, args.robot_id, args.halt_clock)
    driver.start()  # as strands_mesh_ros.fleet does (MuJoCo: the physics thread)
    with Mesh(args.robot_id, robot=driver, config=cfg, resume_key=args.resume_key):
        print("READY", args.robot_id, flush=True)
        done.wait()
    driver.close()


if __name__ == "__main__":
    main()
