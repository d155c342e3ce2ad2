"""``strands-mesh up``: run a fleet until Ctrl-C, with a live view of the mesh.

With rclpy and this package's generated messages importable (the project's venv), the robots
run as ROS nodes in their namespaces together with the bridge node, so ROS and non-ROS peers
share one fleet; ``use_ros=False`` (``--no-ros``) runs the pure-mesh fleet.

Before anything starts, ``up`` checks the whole fleet file (robots, driver options, the
``mesh:`` section) and makes sure the fleet has a resume key: ``STRANDS_MESH_RESUME_KEY`` or
``STRANDS_MESH_RESUME_KEY_FILE`` when set, else the per-user key file
(:func:`~strands_mesh_ros.robot.safety.default_resume_key_path`), created on first use. Every
problem is reported as one ``error:`` line on stderr and exit status 2.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Mapping

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from .drivers.fleet_config import FleetSpec, load_fleet
from .mesh.config import MeshConfig
from .robot.realtime import freeze_heap, thaw_heap

log = logging.getLogger(__name__)


class _PipeSafeConsole(Console):
    """A rich Console whose write to a closed pipe raises BrokenPipeError. rich's own handling
    raises SystemExit(1) from inside the write, which unwinds past the fleet's stop."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(32, "the reader of this output is gone")


console = _PipeSafeConsole()
err_console = _PipeSafeConsole(stderr=True)

def error(message: str) -> None:
    """Print ``error: <message>`` on stderr as a single line (never wrapped, no markup)."""
    try:
        err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    except (BrokenPipeError, ConnectionResetError):
        pass  # nobody reads stderr any more; the exit status still says it


def resolve_mesh_config(fleet_mesh: Mapping[str, Any] | None = None,
                        cli: Mapping[str, Any] | None = None) -> MeshConfig:
    """The mesh configuration ``up`` runs with.

    Precedence, lowest to highest: built-in defaults < the environment (``ZENOH_CONFIG``,
    ``ZENOH_MODE``, ``ZENOH_CONNECT``, ``ZENOH_LISTEN``, ``STRANDS_MESH_PREFIX``,
    ``STRANDS_MESH_NAMESPACE``) < the fleet file's ``mesh:`` section < command-line options.
    Each setting is taken whole from the highest source that sets it (``--connect`` replaces
    the file's ``connect`` list, it does not extend it).

    Args:
        fleet_mesh: the validated ``mesh:`` section (:attr:`FleetSpec.mesh`).
        cli: settings from the command line by MeshConfig field name; None or ``[]`` values
            mean not given.

    Raises:
        ValueError: an invalid value (e.g. a bad prefix, a missing Zenoh config file).
    """
    merged: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (fleet_mesh or {}).items()}
    for k, v in (cli or {}).items():
        if v is not None and v != [] and v != ():
            merged[k] = tuple(v) if isinstance(v, list) else v
    return MeshConfig.from_env(**merged)


def prepare_resume_key() -> str:
    """Give this process (its robots, bridge and operator peers) the fleet's resume key.

    ``STRANDS_MESH_RESUME_KEY``, else the file named by ``STRANDS_MESH_RESUME_KEY_FILE``, is
    used when set (checked for length and readability). Otherwise the per-user key file is
    read, or created (mode 0600 in a 0700 directory), and ``STRANDS_MESH_RESUME_KEY_FILE`` is
    set to it in this process's environment, so every peer the process starts loads it.

    Returns:
        A one-line note saying where the key comes from (never the key itself).

    Raises:
        ValueError: a key that is too short, an unreadable ``STRANDS_MESH_RESUME_KEY_FILE``,
            or a per-user file that must not be used (``ResumeKeyFileError``: group/world
            readable, not yours, ...; the message names the path and the fix).
        OSError: the key file could not be created.
    """
    from .robot.safety import RESUME_KEY_ENV, RESUME_KEY_FILE_ENV, ensure_resume_key_file, load_resume_key

    if os.environ.get(RESUME_KEY_ENV) is not None:
        load_resume_key()
        return f"resume key: from ${RESUME_KEY_ENV}"
    if os.environ.get(RESUME_KEY_FILE_ENV):
        load_resume_key()
        return f"resume key: {os.environ[RESUME_KEY_FILE_ENV]} (from ${RESUME_KEY_FILE_ENV})"
    path, _, created = ensure_resume_key_file()
    os.environ[RESUME_KEY_FILE_ENV] = str(path)
    return (f"resume key: {path} ({'created, ' if created else ''}mode 0600); `strands-mesh resume` on this "
            f"machine uses it, copy it to other operator machines (docs/safety.md)")


def ros_available() -> str | None:
    """None if the ROS path can run here, else why not."""
    try:
        import rclpy  # noqa: F401
        from strands_mesh_ros.msg import Presence  # noqa: F401
    except ImportError as exc:
        return f"ROS 2 not importable ({exc}); run bash scripts/bootstrap.sh, or source a ROS 2 install"
    return None


def _view(fleet, started: float) -> Table:
    from .peer_columns import peers_table

    return peers_table(fleet.peers, console.size.width, hide_kinds=("cli", "fleet"),
                       title=f"strands mesh — up {time.monotonic() - started:.0f} s (Ctrl-C to stop)")


def run_up(fleet_path: str | None = None, cli_mesh: Mapping[str, Any] | None = None, *, use_ros: bool = True,
           headless: bool = False, duration: float = 0.0, view_port: int | None = None) -> int:
    """Run the fleet until Ctrl-C, SIGTERM or ``duration``.

    Args:
        fleet_path: a fleet YAML (:func:`~strands_mesh_ros.drivers.fleet_config.load_fleet`), or None
            for the built-in fleet.
        cli_mesh: mesh settings given on the command line (``prefix``, ``namespace``,
            ``connect``, ``listen``, ``config_file``; None = not given); they win over the fleet file's ``mesh:`` section, which wins
            over the environment and the defaults (:func:`resolve_mesh_config`).
        use_ros: run ROS robots as ROS nodes with the bridge when rclpy is importable.
        headless: no live view.
        duration: stop after this many seconds (0: run until stopped).
        view_port: also serve the fleet view (:mod:`strands_mesh_ros.view`) on this port of
            127.0.0.1 (0: a free one); None: no view.

    Returns:
        The exit status: 0 after a clean stop; 1 the robots did not all come up in time; 2
        an invalid fleet file, mesh setting, driver option or resume key file, or a fleet
        that could not start (each reported as one ``error:`` line on stderr).
    """
    from .drivers.fleet_config import check_driver_options, load_fleet
    from .robot.realtime import RealtimeConfig
    from .robot.safety import RESUME_KEY_FILE_ENV

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        spec = load_fleet(fleet_path)
        for robot in spec.robots:  # every robot, before any of them starts
            check_driver_options(robot)
        config = resolve_mesh_config(spec.mesh, cli_mesh)
        RealtimeConfig.from_env()  # a bad STRANDS_MESH_RT_* refuses the fleet before it starts
    except (ValueError, OSError) as exc:  # FileNotFoundError is an OSError
        error(str(exc))
        return 2
    saved_key_file = os.environ.get(RESUME_KEY_FILE_ENV)
    try:
        try:
            note = prepare_resume_key()
        except (ValueError, OSError) as exc:
            error(str(exc))
            return 2
        print(note, flush=True)
        if view_port is None:
            return _run(spec, config, use_ros=use_ros, headless=headless, duration=duration)
        from .view import start_view

        try:
            viewer = start_view(config, port=view_port)
        except OSError as exc:
            error(str(exc))
            return 2
        try:
            return _run(spec, config, use_ros=use_ros, headless=headless, duration=duration)
        finally:
            viewer.stop()
    finally:
        if saved_key_file is None:
            os.environ.pop(RESUME_KEY_FILE_ENV, None)
        else:
            os.environ[RESUME_KEY_FILE_ENV] = saved_key_file


def _run(spec, config: MeshConfig, *, use_ros: bool, headless: bool, duration: float) -> int:
    from .mesh.mesh import live_peer_ids
    from .mesh.session import POOL

    # One robot, one id: refuse the whole fleet if any of its ids is already live on this mesh
    # (another `up`, a robot elsewhere), before anything starts. The session stays held until
    # the fleet has its own reference, so its listen port is never released in between.
    try:
        held = POOL.acquire(config, "main")
    except (ValueError, RuntimeError) as exc:
        error(f"could not join the mesh: {exc}")
        return 2
    try:
        taken = sorted(live_peer_ids(held, config.keys) & {r.id for r in spec.robots})
        if taken:
            error(f"robot id{'s' if len(taken) > 1 else ''} {', '.join(taken)} already live on the mesh "
                  f"(prefix {config.prefix!r}): one robot, one id; stop the other fleet or rename these robots")
            return 2
        return _run_fleet(spec, config, use_ros=use_ros, headless=headless, duration=duration)
    finally:
        POOL.release(held)


STOP_BOUND = 10.0
"""Most seconds the fleet's orderly stop may take before ``up`` exits anyway (the robots run in
this process, so exiting ends them and their liveliness tokens drop). Measured: the default
fleet stops in well under 2 s (test/test_fleet_up.py)."""


def _install_stop_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set ``stop`` (the fleet then stops in order); a second one while
    stopping exits at once. Installed explicitly: a process started in the background inherits
    SIGINT ignored, and KeyboardInterrupt would then never come."""

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            _say_raw(f"second {signal.Signals(signum).name}: exiting without waiting for the fleet\n")
            os._exit(128 + signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)


def _say_raw(text: str) -> None:
    try:
        os.write(2, text.encode())
    except OSError:
        pass  # stderr gone too


def _mute_output() -> None:
    """Point stdout at /dev/null: its reader is gone (a closed pipe, e.g. ``up | tee log``
    after Ctrl-C killed tee), and a write there must never again raise or skip the fleet's
    stop. stderr is left alone: its writes here are guarded, and logging swallows its own
    write errors."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
    finally:
        os.close(null)


def _say(text: str) -> bool:
    """Print one line; False (and output muted) when stdout's reader is gone."""
    try:
        print(text, flush=True)
        return True
    except (BrokenPipeError, ConnectionResetError):
        _mute_output()
        return False


def _run_fleet(spec, config: MeshConfig, *, use_ros: bool, headless: bool, duration: float) -> int:
    from .robot.realtime import RealtimeError, enter_realtime_from_env

    stop = threading.Event()
    _install_stop_signals(stop)
    try:
        # every robot, ROS nodes and the bridge included, runs in this process
        if rt := enter_realtime_from_env():
            console.print(escape(rt))
    except (ValueError, RealtimeError) as exc:
        error(str(exc))
        return 2
    if use_ros:
        why = ros_available()
        if why is None:
            return run_ros_fleet(spec, config, stop=stop, headless=headless, duration=duration)
        console.print(f"[yellow]ROS path unavailable: {escape(why)}; running the pure-mesh fleet[/]")
    from .fleet import Fleet

    try:
        fleet = Fleet(spec, config=config).start()
    except (ValueError, RuntimeError, OSError) as exc:
        error(f"could not start the fleet: {exc}")
        return 2
    return hold(fleet, stop, headless=headless, duration=duration)


def hold(fleet, stop: threading.Event, *, headless: bool, duration: float) -> int:
    """Show the fleet until ``stop`` is set, Ctrl-C, ``duration`` s, or the output's reader is
    gone (a closed pipe); then stop it. The fleet is always stopped, whatever ended the view:
    a write to a dead pipe mutes the output and stops the fleet, it never skips the stop. The
    stop runs on its own thread, so a second Ctrl-C or SIGTERM is handled at once (exit
    without waiting), and ``up`` exits after :data:`STOP_BOUND` s whatever happens.

    Returns:
        0 after a clean stop, 1 the robots did not all come up in time (30 s) or the fleet
        did not stop within :data:`STOP_BOUND` s.
    """
    started = time.monotonic()
    status = 0
    try:
        fleet.wait_ready(30)
        freeze_heap()  # no full garbage collection walks the start-up objects during an e-stop
        if _say(f"READY fleet up: {', '.join(fleet.robot_ids)}"):
            _show(fleet, stop, started, headless=headless, duration=duration)
    except KeyboardInterrupt:
        pass
    except TimeoutError as exc:
        error(str(exc))
        status = 1
    except (BrokenPipeError, ConnectionResetError):
        _mute_output()  # the reader went away mid-write: stop the fleet, silently
    finally:
        thaw_heap()
        status = _stop_fleet(fleet, stop) or status
    return status


def _show(fleet, stop: threading.Event, started: float, *, headless: bool, duration: float) -> None:
    deadline = started + duration if duration > 0 else None

    def done() -> bool:
        return stop.wait(0.5) or (deadline is not None and time.monotonic() >= deadline)

    if headless:
        while not done():
            pass
        return
    # Refreshed from this thread only (no auto-refresh thread): a write to a closed pipe then
    # raises here, where hold() catches it and still stops the fleet.
    with Live(_view(fleet, started), console=console, auto_refresh=False) as live:
        while not done():
            live.update(_view(fleet, started), refresh=True)


def _stop_fleet(fleet, stop: threading.Event) -> int:
    stop.set()  # from here on a second Ctrl-C / SIGTERM exits at once
    finished = threading.Event()

    def run() -> None:
        try:
            fleet.stop()
        finally:
            finished.set()

    threading.Thread(target=run, name="up-stop", daemon=True).start()
    if not finished.wait(STOP_BOUND):
        error(f"the fleet did not stop within {STOP_BOUND:.0f} s: exiting anyway")
        logging.shutdown()
        os._exit(1)
    _say("fleet stopped")
    return 0


# -- the ROS path: robots as ROS nodes, the bridge, and mesh-only robots -----------------------

class RosFleet:
    """The running ROS fleet, with the interface :func:`hold` needs.

    Args:
        fleet: fleet spec / file / None for the default fleet.
        config: mesh configuration for the bridge and the mesh-only robots.
        context: an initialised rclpy context (None: the default one).
    """

    def __init__(self, fleet: FleetSpec | str | None, config: MeshConfig, *, context: Any = None) -> None:
        from .fleet import Fleet
        from .ros.bridge_node import BridgeNode
        from .ros.fleet_host import FleetHost
        from .ros.spin import BackgroundSpin

        self.spec = load_fleet(fleet)
        self.robot_ids = [r.id for r in self.spec.robots]
        ros_robots = [r for r in self.spec.robots if r.ros]
        mesh_robots = [r for r in self.spec.robots if not r.ros]
        self.host = self.bridge = self.mesh_fleet = self._spin = None
        try:
            if ros_robots:
                self.host = FleetHost(FleetSpec(robots=ros_robots, mesh=self.spec.mesh), context=context,
                                      prefix=config.prefix)
            self.bridge = BridgeNode(mesh_config=config, context=context)
            # The bridge on an executor of its own (see bridge_node.main); the robots on the
            # fleet host's.
            from .ros.spin import make_executor

            self.executor = make_executor(context)
            self.executor.add_node(self.bridge)
            self._spin = BackgroundSpin(self.executor, "up-bridge")
            if self.host is not None:
                self.host.start()
            # The mesh-only robots, and an operator peer for the live view.
            if mesh_robots:
                self.mesh_fleet = Fleet(FleetSpec(robots=mesh_robots, mesh=self.spec.mesh), config=config).start()
                self.operator = self.mesh_fleet.operator
            else:
                from .mesh.mesh import Mesh

                self.operator = Mesh(f"up-{os.getpid()}", config=config, peer_type="agent", robot_type="fleet").start()
        except BaseException:
            self.stop()
            raise

    @property
    def peers(self) -> dict:
        return self.operator.peers

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every robot, ROS or mesh-only, is a mesh peer. Raises TimeoutError."""
        for rid in self.robot_ids:
            self.operator.wait_for_peer(rid, timeout)

    def stop(self) -> None:
        if self.mesh_fleet is not None:
            self.mesh_fleet.stop()
        elif getattr(self, "operator", None) is not None:
            self.operator.stop()
        if self._spin is not None:
            self._spin.stop()
        if self.bridge is not None:
            self.bridge.destroy_node()
        if self.host is not None:
            self.host.close()
        self.host = self.bridge = self.mesh_fleet = self._spin = None


def run_ros_fleet(fleet: FleetSpec | str | None, config: MeshConfig, *, stop: threading.Event, headless: bool,
                  duration: float) -> int:
    """Run :class:`RosFleet` until ``stop``/Ctrl-C/``duration``.

    Args:
        fleet: the fleet spec, a fleet YAML path, or None for the built-in fleet.
        config: the mesh configuration (see :func:`resolve_mesh_config`).
        stop: set to end the fleet.
        headless, duration: as for :func:`hold`.

    Returns:
        The exit status: 0 clean stop, 1 robots not up in time, 2 the fleet could not start
        (one ``error:`` line on stderr).
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    # Ctrl-C stays a KeyboardInterrupt in this thread: the fleet is stopped in order below.
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        try:
            running = RosFleet(fleet, config)
        except (ValueError, RuntimeError, OSError) as exc:
            error(f"could not start the ROS fleet: {exc}")
            return 2
        return hold(running, stop, headless=headless, duration=duration)
    finally:
        rclpy.try_shutdown()
