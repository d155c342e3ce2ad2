"""Node executables shut down cleanly (issue 10, deliverable 4).

``robot_node``, ``fleet_host`` and ``bridge_node`` run as real subprocesses (the test's own ROS domain and
key prefix inherited, free ports). Each is waited for until it is up (its start-up
log line), then sent SIGINT, SIGINT twice (``ros2 launch`` signals the whole process group, and
users press Ctrl-C twice; the second one arrives back to back, or once shutdown has begun) or
SIGTERM: it must exit 0 within 5 s with no traceback, on the default EventsExecutor and on the
SingleThreadedExecutor fallback. A node that cannot join its Zenoh mesh, or is told to use an
unknown executor, exits 2 with one line naming the cause.
"""

from __future__ import annotations

import signal
import socket
import time

import pytest

import ros_helpers
from helpers import free_port, python_proc

pytestmark = pytest.mark.skipif(not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS), reason=ros_helpers.NO_ROS_REASON)

EXIT_WITHIN = 5.0
"""s from the last signal to the exit (issue 10)."""


def _robot_node() -> tuple[list[str], str, int]:
    return (["-m", "strands_mesh_ros.ros.robot_node", "--ros-args", "-r", "__ns:=/sd_arm", "-p", "driver:=mujoco"],
            "up in /sd_arm", 1)


def _fleet_host() -> tuple[list[str], str, int]:
    return ["-m", "strands_mesh_ros.ros.fleet_host"], "up in /arm", 2  # the default fleet's two ROS arms


def _bridge_node() -> tuple[list[str], str, int]:
    return (["-m", "strands_mesh_ros.ros.bridge_node", "--ros-args", "-p",
             f'listen:=["tcp/127.0.0.1:{free_port()}"]'], "on the mesh", 1)


NODES = {"robot_node": _robot_node, "fleet_host": _fleet_host, "bridge_node": _bridge_node}


def _start(kind: str, tmp_path, executor: str | None = None):
    args, needle, count = NODES[kind]()
    env = {"STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")}
    if executor is not None:
        env["STRANDS_MESH_EXECUTOR"] = executor
    proc = python_proc(*args, env=env)
    deadline = time.monotonic() + 60
    with proc._cond:  # wait for `count` start-up lines (robot nodes log one each)
        while sum(needle in line for line in proc.lines) < count:
            left = deadline - time.monotonic()
            if left <= 0 or (proc.p.poll() is not None and not proc._reader.is_alive()):
                proc.close()
                raise AssertionError(f"{kind} not up; output:\n" + "\n".join(proc.lines[-30:]))
            proc._cond.wait(left)
    return proc


def _exit_code(proc, kind: str) -> int:
    try:
        proc.p.wait(EXIT_WITHIN)
    except Exception:  # noqa: BLE001 - reported with the output below
        proc.close()
        raise AssertionError(f"{kind} still running {EXIT_WITHIN} s after the signal; output:\n" + "\n".join(proc.lines[-30:]))
    proc.close()  # joins the output reader
    output = "\n".join(proc.lines)
    assert "Traceback" not in output, output
    return proc.p.returncode


@pytest.mark.parametrize("kind", list(NODES))
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGINT twice", "SIGINT during shutdown"])
def test_node_exits_cleanly_on_signals(kind, how, tmp_path):
    proc = _start(kind, tmp_path)
    try:
        proc.signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        if how == "SIGINT twice":
            proc.signal(signal.SIGINT)  # back to back, as a launch's group SIGINT then a user's Ctrl-C
        elif how == "SIGINT during shutdown":
            proc.wait_line("SIGINT: shutting down", EXIT_WITHIN)
            proc.signal(signal.SIGINT)
        rc = _exit_code(proc, kind)
        assert rc == 0, "\n".join(proc.lines[-30:])
    finally:
        proc.close()


@pytest.mark.parametrize("kind", list(NODES))
def test_node_on_the_fallback_executor_exits_cleanly(kind, tmp_path):
    """STRANDS_MESH_EXECUTOR=single (SingleThreadedExecutor) shuts down as the default does."""
    proc = _start(kind, tmp_path, executor="single")
    try:
        proc.signal(signal.SIGINT)
        assert _exit_code(proc, kind) == 0, "\n".join(proc.lines[-30:])
    finally:
        proc.close()


def test_a_bad_executor_choice_exits_2_with_one_line(tmp_path):
    args, _, _ = NODES["robot_node"]()
    proc = python_proc(*args, env={"STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit"),
                                   "STRANDS_MESH_EXECUTOR": "multi"})
    try:
        proc.p.wait(60)
    finally:
        proc.close()
    assert proc.p.returncode == 2
    assert any("STRANDS_MESH_EXECUTOR='multi'" in line and "events, single" in line for line in proc.lines), proc.lines


def _refused(args: list[str], tmp_path) -> tuple[int, list[str]]:
    proc = python_proc(*args, env={"STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")})
    try:
        proc.p.wait(60)
    finally:
        proc.close()
    return proc.p.returncode, proc.lines


def test_bridge_with_its_listen_endpoint_in_use_exits_2_with_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, lines = _refused(["-m", "strands_mesh_ros.ros.bridge_node", "--ros-args", "-p",
                              f'listen:=["tcp/127.0.0.1:{port}"]'], tmp_path)
    errors = [line for line in lines if line.startswith("bridge_node: ")]
    assert rc == 2, lines
    assert len(errors) == 1 and "could not open" in errors[0] and "Address already in use" in errors[0], lines
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.parametrize("config", ["{not json5", None])
def test_bridge_with_a_bad_zenoh_config_exits_2_with_one_line(config, tmp_path):
    path = tmp_path / "zenoh.json5"
    if config is not None:
        path.write_text(config)
    rc, lines = _refused(["-m", "strands_mesh_ros.ros.bridge_node", "--ros-args", "-p", f"zenoh_config:={path}"],
                         tmp_path)
    errors = [line for line in lines if line.startswith("bridge_node: ")]
    assert rc == 2, lines
    assert len(errors) == 1 and "Zenoh" in errors[0], lines
    assert not any("Traceback" in line for line in lines), lines


def test_malformed_ros_arguments_exit_2_with_one_line(tmp_path):
    rc, lines = _refused(["-m", "strands_mesh_ros.ros.robot_node", "--ros-args", "-p", "listen:=[unclosed"], tmp_path)
    assert rc == 2, lines
    assert len([line for line in lines if line.startswith("robot_node: ")]) == 1, lines
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.parametrize("kind", list(NODES))
def test_signal_while_importing_exits_quietly(kind, tmp_path):
    """The executables' entry points (``ros/entry.py``): a SIGINT that lands while the node module
    is still being imported (rclpy imported, numpy, the contract and the driver code still to come:
    ~0.8 s here) ends the process with one line and status 0, not a KeyboardInterrupt traceback."""
    import re

    from helpers import wait_for

    args, _needle, _count = NODES[kind]()
    ros_args = args[args.index("--ros-args"):] if "--ros-args" in args else []
    code = f"import sys; from strands_mesh_ros.ros.entry import {kind}; sys.exit({kind}())"
    proc = python_proc("-X", "importtime", "-c", code, *ros_args,
                       env={"STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")})
    try:
        # -X importtime prints a line as each import completes: rclpy's comes before the rest of the node's
        wait_for(lambda: any(re.search(r"\|\s+rclpy$", line) for line in proc.lines), 60, what="rclpy imported")
        proc.signal(signal.SIGINT)
        rc = _exit_code(proc, kind)
        assert rc == 0, "\n".join(proc.lines[-30:])
        assert any(f"{kind}: SIGINT while starting; exiting" in line or "SIGINT: shutting down" in line
                   for line in proc.lines), "\n".join(proc.lines[-30:])
    finally:
        proc.close()


# A node executable whose shutdown hangs in C code that holds the GIL (as a DDS or rcl
# destructor can): ctypes.PyDLL calls keep the GIL, so no Python thread can run meanwhile.
_HUNG_SHUTDOWN = """
import ctypes, sys
from strands_mesh_ros.ros.spin import run_main

class Stuck:
    def start(self, on_exit):
        print("STUCK up", flush=True)
    def close(self):
        ctypes.PyDLL(None).sleep(60)

sys.exit(run_main("stuck_node", lambda argv: Stuck(), None, ()))
"""


def test_a_shutdown_hung_with_the_gil_held_still_exits_1_naming_where(tmp_path):
    """A shutdown stuck in C code that holds the GIL cannot be ended by a Python timer. The
    node still exits 1 within a few seconds of the grace (ros/spin.py SHUTDOWN_GRACE), and
    prints where each thread was, the stuck call included."""
    from strands_mesh_ros.ros.spin import SHUTDOWN_GRACE

    proc = python_proc("-c", _HUNG_SHUTDOWN)
    try:
        proc.wait_line("STUCK up", 60)
        proc.signal(signal.SIGINT)
        t0 = time.monotonic()
        code = proc.p.wait(SHUTDOWN_GRACE + 10)
        took = time.monotonic() - t0
    finally:
        proc.close()
    assert code == 1, proc.lines[-30:]
    assert took < SHUTDOWN_GRACE + 5, f"exited {took:.1f} s after SIGINT"
    assert any("in close" in line for line in proc.lines), proc.lines[-30:]


# A node executable that ends while a thread of its process is still inside rclpy's C++
# EventsExecutor, here one spinning a second context that nothing stops (a driver's own ROS
# context, say). CPython's finalisation would end that thread in the middle of C++ code and the
# process would abort ("terminate called without an active exception", status 134).
_LEFT_SPINNING = """
import sys, threading
import rclpy
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from strands_mesh_ros.ros.spin import run_main

def build(argv):
    context = rclpy.Context()
    context.init()
    busy = Node("busy", context=context)
    busy.create_timer(0.001, lambda: None)
    executor = EventsExecutor(context=context)
    executor.add_node(busy)

    def spin():
        while True:
            executor.spin_once(timeout_sec=0.1)

    threading.Thread(target=spin, daemon=True).start()
    print("LEFT up", flush=True)
    return Node("left_spinning")

sys.exit(run_main("left_node", build, None, ()))
"""


def test_a_node_that_exits_with_a_thread_inside_the_events_executor_exits_0(tmp_path):
    """The process ends without interpreter finalisation once the node has shut down
    (robot/process.py end_process), so a thread left inside C++ cannot abort it."""
    proc = python_proc("-c", _LEFT_SPINNING)
    try:
        proc.wait_line("LEFT up", 60)
        proc.signal(signal.SIGINT)
        rc = _exit_code(proc, "left_node")
    finally:
        proc.close()
    assert rc == 0, proc.lines[-30:]
    assert not any("terminate called" in line or "FATAL" in line for line in proc.lines), proc.lines[-30:]
