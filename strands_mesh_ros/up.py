"""``strands-mesh up``: run a fleet until Ctrl-C, with a live view of the mesh.

With rclpy and this package's generated messages importable (the project's venv), the robots
run as ROS nodes in their namespaces together with the bridge node, so ROS and non-ROS peers
share one fleet; ``use_ros=False`` (``--no-ros``) runs the pure-mesh fleet.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .mesh.config import MeshConfig

log = logging.getLogger(__name__)
console = Console()


def ros_available() -> str | None:
    """None if the ROS path can run here, else why not."""
    try:
        import rclpy  # noqa: F401
        from strands_mesh_ros.msg import Presence  # noqa: F401
    except ImportError as exc:
        return f"ROS 2 not importable ({exc}); run bash scripts/bootstrap.sh, or source a ROS 2 install"
    return None


def _view(fleet, started: float) -> Table:
    t = Table(title=f"strands mesh — up {time.monotonic() - started:.0f} s (Ctrl-C to stop)")
    for col in ("peer", "type", "kind", "task", "ros", "via", "age s"):
        t.add_column(col)
    for pid, p in sorted(fleet.peers.items()):
        if p.robot_type in ("cli", "fleet"):
            continue
        ros = p.presence.ros.namespace if p.presence.ros else ""
        t.add_row(pid, p.peer_type, p.robot_type, p.presence.task_status or "", ros, p.via or "", f"{p.age:.1f}")
    return t


def run_up(fleet_path: str | None, config: MeshConfig, *, use_ros: bool = True, headless: bool = False,
           duration: float = 0.0) -> int:
    """Run the fleet; returns the process exit code (0 on a clean stop)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    # Ctrl-C and SIGTERM end the fleet in order. Installed explicitly: a process started in the
    # background inherits SIGINT ignored, and KeyboardInterrupt would then never come.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if use_ros:
        why = ros_available()
        if why is None:
            from .ros.up_ros import run_ros_fleet

            return run_ros_fleet(fleet_path, config, stop=stop, headless=headless, duration=duration)
        console.print(f"[yellow]ROS path unavailable: {why}; running the pure-mesh fleet[/]")
    from .fleet import Fleet

    try:
        fleet = Fleet(fleet_path, config=config).start()
    except (ValueError, RuntimeError, OSError) as exc:
        console.print(f"[red]error:[/] could not start the fleet: {exc}")
        return 2
    return hold(fleet, stop, headless=headless, duration=duration)


def hold(fleet, stop: threading.Event, *, headless: bool, duration: float) -> int:
    """Show the fleet until ``stop`` is set, Ctrl-C, or ``duration`` s; then stop it."""
    started = time.monotonic()
    try:
        fleet.wait_ready(30)
        print(f"READY fleet up: {', '.join(fleet.robot_ids)}", flush=True)
        deadline = started + duration if duration > 0 else None

        def done() -> bool:
            return stop.wait(0.5) or (deadline is not None and time.monotonic() >= deadline)

        if headless:
            while not done():
                pass
        else:
            with Live(_view(fleet, started), console=console, refresh_per_second=2) as live:
                while not done():
                    live.update(_view(fleet, started))
    except KeyboardInterrupt:
        pass
    except TimeoutError as exc:
        console.print(f"[red]error:[/] {exc}")
        fleet.stop()
        return 1
    fleet.stop()
    print("fleet stopped", flush=True)
    return 0
