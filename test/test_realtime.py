"""Opt-in real-time scheduling of robot processes (robot/realtime.py, docs/safety.md).

A mesh-native robot (``python -m strands_mesh_ros.peer``) and a ROS robot node
(``robot_node``), each started with ``STRANDS_MESH_RT_PRIORITY`` and a cgroup with a bounded
real-time budget made by the test: every thread of the process runs ``SCHED_FIFO`` at that
priority inside the group, and an e-stop still halts and latches it. Bad settings and a group
without a budget are refused with one line naming the cause. The cgroup cases need root and
cgroup v1's ``cpu`` controller with real-time group scheduling (as on these machines); they are
skipped, with that reason, elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

import ros_helpers
from helpers import python_proc, wait_for
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.mesh.mesh import Mesh
from strands_mesh_ros.robot.realtime import RT_CGROUP_ENV, RT_PRIORITY_ENV, RealtimeConfig
from strands_mesh_ros.testing import remove_cgroup, set_rt_budget

CPU_ROOT = "/sys/fs/cgroup/cpu"
CAN_RT = os.geteuid() == 0 and os.path.exists(f"{CPU_ROOT}/cpu.rt_runtime_us")
needs_rt = pytest.mark.skipif(not CAN_RT, reason="needs root and cgroup v1's cpu controller with real-time "
                                                 "group scheduling (cpu.rt_runtime_us)")


@pytest.mark.parametrize("env, error", [
    ({RT_PRIORITY_ENV: "high"}, "must be an integer 1-99"),
    ({RT_PRIORITY_ENV: "0"}, "integer 1-99"),
    ({RT_PRIORITY_ENV: "100"}, "integer 1-99"),
    ({RT_CGROUP_ENV: "/sys/fs/cgroup/cpu"}, f"{RT_PRIORITY_ENV} is not"),
    ({RT_PRIORITY_ENV: "5", RT_CGROUP_ENV: "/nonexistent/group"}, "is not a directory"),
])
def test_bad_settings_are_refused_by_name(env, error):
    with pytest.raises(ValueError, match=error):
        RealtimeConfig.from_env(env)


def test_unset_means_unchanged():
    assert RealtimeConfig.from_env({}) is None
    assert RealtimeConfig.from_env({RT_PRIORITY_ENV: " "}) is None


@pytest.fixture
def rt_group():
    """A cgroup-v1 cpu group with a real-time budget of 20 ms per 100 ms per CPU (so that nothing
    in it can take more), removed afterwards; ``budget(us)`` changes it."""
    path = f"{CPU_ROOT}/strands_test_{uuid.uuid4().hex[:8]}"
    os.mkdir(path)

    def budget(runtime_us: int) -> None:
        set_rt_budget(path, runtime_us, 100_000)

    budget(20_000)
    yield path, budget
    remove_cgroup(path)


def _threads_policy(pid: int) -> set[tuple[int, int]]:
    """{(policy, priority)} over every thread of ``pid``."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out.add((os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority))
        except ProcessLookupError:
            pass
    return out


def _in_group(pid: int, group: str) -> bool:
    with open(f"/proc/{pid}/cgroup") as f:
        return any(line.split(":")[1] == "cpu" and line.strip().endswith("/" + os.path.basename(group))
                   for line in f)


def _mesh_robot(net, env):
    return python_proc("-m", "strands_mesh_ros.peer", "rt_arm", *net.peer_args, env=env)


def _ros_robot(net, env, tmp_path, domain: int):
    return python_proc("-m", "strands_mesh_ros.ros.robot_node", "--ros-args", "-r", "__ns:=/rt_arm",
                       env={**env, "ROS_DOMAIN_ID": str(domain),
                            "STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")})


@needs_rt
def test_a_mesh_robot_runs_real_time_and_still_halts(net, rt_group):
    group, _ = rt_group
    with Mesh("op", config=net.hub()) as op:
        robot = _mesh_robot(net, {RT_PRIORITY_ENV: "7", RT_CGROUP_ENV: group}).ready()
        try:
            op.wait_for_peer("rt_arm", 10)
            assert _in_group(robot.p.pid, group)
            assert _threads_policy(robot.p.pid) == {(os.SCHED_FIFO, 7)}
            assert any("SCHED_FIFO priority 7" in line for line in robot.lines), robot.lines
            report = op.emergency_stop("drill")
            assert "rt_arm" in report.stopped
            assert op.send("rt_arm", {"action": "status"}).result["locked_out"]
        finally:
            robot.close()


@needs_rt
@pytest.mark.skipif(not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS), reason=ros_helpers.NO_ROS_REASON)
def test_a_ros_robot_node_runs_real_time(net, rt_group, tmp_path, ros_domain):
    group, _ = rt_group
    proc = _ros_robot(net, {RT_PRIORITY_ENV: "6", RT_CGROUP_ENV: group}, tmp_path, ros_domain)
    try:
        wait_for(lambda: any("up in /rt_arm" in line for line in proc.lines), 60, what="robot_node up")
        assert _in_group(proc.p.pid, group)
        assert _threads_policy(proc.p.pid) == {(os.SCHED_FIFO, 6)}
    finally:
        assert proc.close() == 0, proc.lines[-20:]


@needs_rt
@pytest.mark.skipif(not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS), reason=ros_helpers.NO_ROS_REASON)
def test_up_runs_its_ros_fleet_real_time(net, rt_group, tmp_path, ros_domain):
    """``strands-mesh up`` runs its ROS robot nodes and the bridge in its own process: the
    setting applies there too, not only to the pure-mesh fleet."""
    group, _ = rt_group
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("robots:\n  - {id: rt_ros, driver: mock, ros: true}\n")
    proc = python_proc("-m", "strands_mesh_ros.cli", "up", "--headless", str(fleet), "--prefix", net.prefix,
                       "--listen", net.endpoint,
                       env={RT_PRIORITY_ENV: "4", RT_CGROUP_ENV: group,
                            "ROS_DOMAIN_ID": str(ros_domain),
                            "STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")})
    try:
        proc.ready(60)
        assert _in_group(proc.p.pid, group)
        assert _threads_policy(proc.p.pid) == {(os.SCHED_FIFO, 4)}
    finally:
        proc.close()


@needs_rt
def test_a_group_without_a_real_time_budget_is_refused_by_name(net, rt_group, tmp_path, ros_domain):
    """A new cgroup has ``cpu.rt_runtime_us`` 0: SCHED_FIFO is not permitted there. The robot
    exits 2 with one line saying so, for both kinds of robot."""
    group, budget = rt_group
    budget(0)
    env = {RT_PRIORITY_ENV: "7", RT_CGROUP_ENV: group}
    kinds = [_mesh_robot(net, env)]
    if ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS:
        kinds.append(_ros_robot(net, env, tmp_path, ros_domain))
    try:
        for proc in kinds:
            try:
                rc = proc.p.wait(60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"still running without real-time: {proc.lines[-10:]}") from None
            assert rc == 2, proc.lines
            wait_for(lambda proc=proc: any("no real-time budget" in line for line in proc.lines), 5, what="the reason")
            assert not any("Traceback" in line for line in proc.lines), proc.lines
    finally:
        for proc in kinds:
            proc.close()


def _cli_estop(net, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "estop", "--reason", "rt drill", "--json",
                           "--prefix", net.prefix, "--connect", net.endpoint],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})


@needs_rt
def test_the_cli_issues_e_stops_real_time(net, rt_group):
    """The issuer's side: ``strands-mesh estop`` with the same settings runs real-time (it says
    so on stderr) and the robot is halted and latched."""
    group, _ = rt_group
    with Mesh("arm_rt_cli", config=net.hub(), robot=MockDriver("arm_rt_cli")) as robot:
        r = _cli_estop(net, {RT_PRIORITY_ENV: "5", RT_CGROUP_ENV: group})
        assert r.returncode == 0, r.stderr
        assert "real-time: SCHED_FIFO priority 5" in r.stderr, r.stderr
        assert "arm_rt_cli" in json.loads(r.stdout)["stopped"]
        assert robot.robot.locked_out


@pytest.mark.parametrize("env, cause", [
    ({RT_PRIORITY_ENV: "high"}, "must be an integer 1-99"),
    ({RT_PRIORITY_ENV: "5", RT_CGROUP_ENV: "/nonexistent/group"}, "is not a directory"),
])
def test_a_bad_real_time_setting_never_holds_back_the_cli_e_stop(net, env, cause):
    """A tuning setting must not cost the e-stop: a warning names the cause, and the e-stop
    goes out at ordinary priority (exit 0: the robot acked)."""
    with Mesh("arm_rt_bad", config=net.hub(), robot=MockDriver("arm_rt_bad")) as robot:
        r = _cli_estop(net, env)
        assert r.returncode == 0, r.stderr
        assert "not real-time" in r.stderr and cause in r.stderr, r.stderr
        assert "arm_rt_bad" in json.loads(r.stdout)["stopped"]
        assert robot.robot.locked_out


CHILD_POLICY = """
import os, sys
from strands_mesh_ros.robot.realtime import RealtimeConfig, enter_realtime
from strands_mesh_ros.testing import python_proc
enter_realtime(RealtimeConfig(3, sys.argv[1]))
child = python_proc("-c", "import os; print('READY', os.sched_getscheduler(0), flush=True)").ready(30)
print(os.sched_getscheduler(0), child.lines[0].split()[1], flush=True)
child.close()
"""


@needs_rt
def test_a_real_time_process_starts_its_helpers_as_ordinary_processes(rt_group):
    """Linux children inherit the scheduling policy: a real-time bench issuer would start its
    flooder real-time too, and a busy real-time process starves the machine. The test
    helpers (``testing.Proc``) start them ordinary."""
    group, _ = rt_group
    r = subprocess.run([sys.executable, "-c", CHILD_POLICY, group], capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.stdout.split() == [str(os.SCHED_FIFO), str(os.SCHED_OTHER)], (r.stdout, r.stderr[-2000:])


# A robot process that reports how many objects its garbage collector holds frozen: once some
# are (while it serves), and again as it exits (robot/realtime.py freeze_heap, thaw_heap).
_GC_REPORT = """
import atexit, gc, os, sys, threading, time
def watch():
    while not gc.get_freeze_count():
        time.sleep(0.02)
    print("FROZEN", gc.get_freeze_count(), flush=True)
threading.Thread(target=watch, daemon=True).start()
said = []
def at_exit():
    if not said:
        said.append(True)
        print("AT EXIT", gc.get_freeze_count(), flush=True)
atexit.register(at_exit)
_os_exit = os._exit
def os_exit(code):  # node executables end with os._exit, skipping atexit (robot/process.py)
    at_exit()
    _os_exit(code)
os._exit = os_exit
sys.argv = [sys.argv[0], *sys.argv[1:]]
{main}
"""


@pytest.mark.parametrize("kind", ["mesh", "ros"])
def test_robot_processes_freeze_their_start_up_objects_while_they_serve(net, kind, tmp_path, ros_domain):
    """A robot process moves its start-up objects out of the garbage collector's reach once
    started, so a full collection (17 ms in a started mock robot here: no Python runs
    meanwhile, an e-stop included) no longer walks them; it gives them back when it shuts
    down, so its teardown is the usual one. Checked on a mesh robot and a ROS robot node."""
    if kind == "mesh":
        proc = python_proc("-c", _GC_REPORT.format(main="from strands_mesh_ros.peer import main; main()"),
                           "gc_arm", *net.peer_args)
    else:
        if not (ros_helpers.HAVE_RCLPY and ros_helpers.HAVE_MSGS):
            pytest.skip(ros_helpers.NO_ROS_REASON)
        proc = python_proc("-c", _GC_REPORT.format(main="from strands_mesh_ros.ros.robot_node import main; sys.exit(main())"),
                           "--ros-args", "-r", "__ns:=/gc_arm",
                           env={"ROS_DOMAIN_ID": str(ros_domain),
                                "STRANDS_MESH_AUDIT_DIR": str(tmp_path / "audit")})
    try:
        frozen = int(proc.wait_line("FROZEN", 60).split()[1])
    finally:
        proc.close()
    assert frozen > 10_000, f"only {frozen} objects frozen"
    at_exit = [line for line in proc.lines if line.startswith("AT EXIT")]
    assert at_exit == ["AT EXIT 0"], proc.lines[-20:]
    print(f"{kind} robot: {frozen} objects frozen while serving")
