"""``/diagnostics`` (REP-107): every robot of the fleet, mesh-native or ROS, reads the same.

The rule (robot/diagnostics.py) on its own, then with real rclpy and Zenoh: a ROS robot node
reports itself; the bridge reports the mesh peers that are not in ROS; an e-stop from the mesh
turns both robots' status to ERROR naming who stopped them.
"""

from __future__ import annotations

import math
import time
import uuid

import pytest

from helpers import python_proc, wait_for
from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON, RosEnv

from strands_mesh_ros.contract.payloads import Presence
from strands_mesh_ros.robot.diagnostics import ERROR, MESSAGE_MAX, OK, STALE, peer_diagnostic


def presence(**kw) -> Presence:
    return Presence(peer_id="arm1", robot_type="arm6", peer_type="sim", hostname="h", timestamp=time.time(), **kw)


def test_a_robot_that_is_not_locked_out_is_ok_and_says_its_task():
    d = peer_diagnostic(presence(locked_out=False, task_status="running pick"), name="n: robot", stale_after=1.5)
    assert (d.level, d.message, d.hardware_id, d.name) == (OK, "running pick", "arm1", "n: robot")
    assert ("e-stop", "ok") in d.values and ("model", "arm6") in d.values
    assert peer_diagnostic(presence(locked_out=False), name="n", stale_after=1.5).message == "idle"


def test_a_latched_lockout_is_an_error_naming_who_and_why():
    d = peer_diagnostic(presence(locked_out=True, lockout={"issuer": "console", "reason": "drill", "t": 5.0,
                                                            "epoch": "e1"}), name="n", stale_after=1.5)
    assert d.level == ERROR and d.message == "e-stop latched by console: drill"
    assert {("e-stop", "LOCKED OUT"), ("lockout issuer", "console"), ("lockout reason", "drill"),
            ("lockout epoch", "e1")} <= set(d.values)
    # a lockout without details (an older peer) is still an error
    assert peer_diagnostic(presence(locked_out=True), name="n", stale_after=1.5).message == "e-stop latched by unknown"


def test_a_peer_not_heard_for_the_peer_timeout_is_stale_whatever_it_said_last():
    d = peer_diagnostic(presence(locked_out=True), name="n", age=2.0, stale_after=1.5)
    assert d.level == STALE and d.message == "no presence for 2.0 s"


def test_a_robot_that_does_not_report_its_lockout_is_ok_with_the_state_unknown():
    d = peer_diagnostic(presence(), name="n", stale_after=1.5)  # a strands-robots peer: locked_out None
    assert d.level == OK and ("e-stop", "?") in d.values


def test_a_long_or_multi_line_reason_stays_one_bounded_line():
    d = peer_diagnostic(presence(locked_out=True, lockout={"issuer": "x", "reason": "a\nb " + "z" * 500}),
                        name="n", stale_after=1.5)
    assert "\n" not in d.message and len(d.message) == MESSAGE_MAX and d.message.endswith("…")
    assert d.message.startswith("e-stop latched by x: a b zzz")


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_a_bad_age_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="age must be a finite number of s >= 0"):
        peer_diagnostic(presence(), name="n", age=bad, stale_after=1.5)


# -- real rclpy and Zenoh ---------------------------------------------------------------------

ros_only = pytest.mark.skipif(not (HAVE_RCLPY and HAVE_MSGS), reason=NO_ROS_REASON if not HAVE_RCLPY else NO_MSGS_REASON)


def _status(arrays, hardware_id: str, pred=lambda s: True, timeout: float = 10.0, what: str = ""):
    """A DiagnosticStatus for ``hardware_id`` satisfying ``pred`` (the first array with one), waited for."""
    def match(s) -> bool:
        return s.hardware_id == hardware_id and pred(s)
    arr = arrays.wait(lambda a: any(match(s) for s in a.status), timeout,
                      what=what or f"a /diagnostics status of {hardware_id}")
    return next(s for s in arr.status if match(s))


@pytest.fixture
def ros():
    env = RosEnv()
    yield env
    env.close()


@ros_only
def test_mesh_robot_and_ros_robot_report_the_same_on_diagnostics_and_an_estop_turns_both_to_error(ros, net):
    from diagnostic_msgs.msg import DiagnosticArray

    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.mesh.mesh import Mesh
    from strands_mesh_ros.ros import qos, topics
    from strands_mesh_ros.ros.bridge_node import BridgeNode
    from strands_mesh_ros.ros.robot_node import RobotNode

    tag = uuid.uuid4().hex[:6]
    arm, bot, bridge_id = f"rosarm_{tag}", f"meshbot_{tag}", f"bridge_{tag}"
    arrays = ros.sub(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    ros.add(RobotNode(arm, driver=MockDriver(arm), context=ros.context, close_driver=True))
    br = ros.add(BridgeNode(mesh_config=net.hub(), bridge_id=bridge_id, context=ros.context,
                            node_name=f"bridge_{tag}"))
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        with Mesh("op", config=net.member()) as op:
            op.wait_for_peer(bot, 10)
            wait_for(lambda: arm in op.peers, 10, what="the ROS robot on the mesh")
            ros_ok = _status(arrays, arm, lambda s: s.level == b"\x00")
            mesh_ok = _status(arrays, bot, lambda s: s.level == b"\x00")
            assert ros_ok.name == f"/{arm}/robot_node: robot"
            assert mesh_ok.name == f"/bridge_{tag}: mesh peer {bot}"
            assert ros_ok.message == mesh_ok.message == "idle"
            # the same keys, the ROS robot's namespace besides
            assert {v.key for v in ros_ok.values} == {v.key for v in mesh_ok.values} | {"ros namespace"}
            own = _status(arrays, bridge_id, lambda s: "1 ROS robots on the mesh" in s.message)
            assert own.level == b"\x00" and own.message.startswith("active")
            # the ROS robot is reported once, by its own node: never by the bridge as well
            assert not [s for a in arrays.msgs for s in a.status if s.hardware_id == arm and "mesh peer" in s.name]

            report = op.emergency_stop("diagnostics drill", timeout=2.0)
            assert {arm, bot} <= set(report.stopped)
            for rid in (arm, bot):
                s = _status(arrays, rid, lambda s: s.level == bytes([ERROR]), what=f"{rid} in ERROR after the e-stop")
                assert s.message == "e-stop latched by op: diagnostics drill", s.message
                assert ("lockout issuer", "op") in {(v.key, v.value) for v in s.values}
            assert br.active
    finally:
        p.close()


@ros_only
def test_a_standby_bridge_reports_itself_only_so_no_peer_is_reported_twice(ros, net):
    from diagnostic_msgs.msg import DiagnosticArray

    from strands_mesh_ros.ros import qos, topics
    from strands_mesh_ros.ros.bridge_node import BridgeNode

    tag = uuid.uuid4().hex[:6]
    bot = f"meshbot_{tag}"
    arrays = ros.sub(DiagnosticArray, topics.DIAGNOSTICS, qos.DIAGNOSTICS)
    first = ros.add(BridgeNode(mesh_config=net.hub(), bridge_id="bridge_a", context=ros.context, node_name=f"ba_{tag}"))
    second = ros.add(BridgeNode(mesh_config=net.member(), bridge_id="bridge_b", context=ros.context,
                                node_name=f"bb_{tag}"))
    p = python_proc("-m", "strands_mesh_ros.peer", bot, *net.peer_args).ready()
    try:
        wait_for(lambda: first.active and not second.active and bot in second.mesh.peers, 15,
                 what="bridge_a active, bridge_b standing by, both hearing the robot")
        _status(arrays, bot, what="the robot reported by the active bridge")

        arr = arrays.wait(lambda a: any(s.name == f"/bb_{tag}: mesh bridge" and s.message.startswith("standing by")
                                        for s in a.status), 10, what="bridge_b's /diagnostics, standing by")
        assert len(arr.status) == 1, arr.status  # itself only, though it hears the robot
        assert arr.status[0].hardware_id == "bridge_b" and arr.status[0].level == b"\x00"
    finally:
        p.close()
