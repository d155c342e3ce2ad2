"""The node executables' entry points (``robot_node``, ``bridge_node``, ``fleet_host``).

They import nothing heavy themselves: the node modules pull in rclpy, Zenoh and MuJoCo, which
takes a second or two, and a Ctrl-C (or a launch's SIGINT / SIGTERM to its process group) in that
window would otherwise end the process with a ``KeyboardInterrupt`` traceback. Here such a signal
ends it quietly: one line, exit status 0, as a signal after start-up does
(:func:`strands_mesh_ros.ros.spin.run_main` takes over signal handling from there).
"""

from __future__ import annotations

import importlib
import signal
import sys


class _Interrupted(Exception):
    pass


def _interrupt(signum: int, _frame: object) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _run(name: str, module: str) -> int:
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        main = importlib.import_module(module).main
    except (_Interrupted, KeyboardInterrupt) as exc:
        print(f"{name}: {exc or 'SIGINT'} while starting; exiting", file=sys.stderr, flush=True)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return main()


def robot_node() -> int:
    """``robot_node``: :func:`strands_mesh_ros.ros.robot_node.main`."""
    return _run("robot_node", "strands_mesh_ros.ros.robot_node")


def bridge_node() -> int:
    """``bridge_node``: :func:`strands_mesh_ros.ros.bridge_node.main`."""
    return _run("bridge_node", "strands_mesh_ros.ros.bridge_node")


def fleet_host() -> int:
    """``fleet_host``: :func:`strands_mesh_ros.ros.fleet_host.main`."""
    return _run("fleet_host", "strands_mesh_ros.ros.fleet_host")
