"""Run one mesh peer in this process until SIGTERM / Ctrl-C: a mock robot or an agent.

    python -m strands_mesh_ros.peer arm1 --connect tcp/127.0.0.1:7447
    python -m strands_mesh_ros.peer watcher --agent

Prints ``READY <id>`` once on the mesh. Used by the multi-process tests and benchmarks, and
handy to add a dry-run robot to a real fleet.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .drivers.mock import MockDriver
from .mesh.config import MeshConfig
from .mesh.mesh import Mesh
from .robot.realtime import RealtimeError, enter_realtime_from_env, freeze_heap, thaw_heap
from .robot.watchdog import WatchdogConfig


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m strands_mesh_ros.peer", description=__doc__.split("\n\n")[0])
    ap.add_argument("peer_id")
    ap.add_argument("--prefix")
    ap.add_argument("--connect", action="append", default=None)
    ap.add_argument("--listen", action="append", default=None)
    ap.add_argument("--namespace")
    ap.add_argument("--mode", choices=("peer", "client", "router"),
                    help="Zenoh mode (default: ZENOH_MODE, else the ZENOH_CONFIG file's, else peer)")
    ap.add_argument("--no-multicast", action="store_true", help="disable multicast scouting")
    ap.add_argument("--agent", action="store_true", help="an agent peer (no robot)")
    ap.add_argument("--resume-key")
    ap.add_argument("--state-hz", type=float)
    ap.add_argument("--subscribe", action="append", default=[], metavar="KEYEXPR",
                    help="also receive this key expression (as a dashboard would), counting samples")
    ap.add_argument("--watchdog-operator", action="append", default=[], metavar="PEER_ID",
                    help="link-loss watchdog: an operator whose presence the robot needs (repeatable)")
    ap.add_argument("--watchdog-timeout", type=float, metavar="S",
                    help="link-loss watchdog: halt and latch after this many s without that presence")
    args = ap.parse_args(argv)
    try:
        watchdog = WatchdogConfig.from_options(args.watchdog_operator, args.watchdog_timeout)
    except ValueError as exc:
        ap.error(str(exc))
    cfg = MeshConfig.from_env(prefix=args.prefix, connect=args.connect, listen=args.listen,
                              namespace=args.namespace, state_hz=args.state_hz, mode=args.mode,
                              multicast_scouting=False if args.no_multicast else None)
    try:
        rt = enter_realtime_from_env()
    except ValueError as exc:
        ap.error(str(exc))
    except RealtimeError as exc:
        print(f"{args.peer_id}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    if rt:
        print(f"{args.peer_id}: {rt}", flush=True)
    robot = None if args.agent else MockDriver(args.peer_id)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Mesh(args.peer_id, robot=robot, config=cfg, resume_key=args.resume_key, watchdog=watchdog) as mesh:
        received = [0]
        for key in args.subscribe:
            mesh.subscribe(key, lambda k, v: received.__setitem__(0, received[0] + 1), raw=True)
        freeze_heap()  # no full garbage collection walks the start-up objects during an e-stop
        print("READY", args.peer_id, flush=True)
        try:
            while not done.wait(0.2):  # in ticks: see ros/spin.py run_main
                pass
        except KeyboardInterrupt:
            pass
        thaw_heap()
        if args.subscribe:
            print("RECEIVED", received[0], flush=True)


if __name__ == "__main__":
    main()
