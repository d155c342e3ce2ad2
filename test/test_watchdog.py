"""The link-loss watchdog (issue 12, item 4), for both kinds of robot.

* ``mesh``: a mesh-native robot (``python -m strands_mesh_ros.peer`` with a mock arm and
  ``--watchdog-*``) in a process of its own;
* ``ros``: a ROS 2 ``RobotNode`` with the ``watchdog_*`` parameters behind a ``BridgeNode``
  (real rclpy); its heartbeats come through the bridge's ``/mesh/peers``.

The supervising operator is a mesh agent in its own process, killed (SIGKILL) or frozen
(SIGSTOP) by the test. Observed from outside: the robot's ``status`` (lockout and reason) via an
observer on the mesh, and its audit log (``watchdog_armed``, ``link_loss``). Plus the pure rule
(:class:`LinkWatchdog`) and the configuration errors.

Real Zenoh and rclpy, no sleeps (condition waits; bounded windows only where absence is asserted).
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

pytest.importorskip("zenoh")

from helpers import python_proc, wait_for  # noqa: E402
from ros_helpers import HAVE_MSGS, HAVE_RCLPY, NO_MSGS_REASON, NO_ROS_REASON  # noqa: E402

from strands_mesh_ros.drivers.fleet_config import RobotSpec  # noqa: E402
from strands_mesh_ros.mesh.mesh import Mesh  # noqa: E402
from strands_mesh_ros.robot.watchdog import LinkWatchdog, WatchdogConfig  # noqa: E402

KEY = "watchdog-resume-key-0123456789abcdef"
T = 2.0
"""s: the watchdog timeout under test."""
T_LIVE = 4.0
"""s: the timeout of the live-operator test (see there)."""
STALL = T + 1.0
"""s: how long the busy-executor test holds the robot's executor."""
MARGIN = 6.0
"""s beyond T the halt may take on a loaded 2-core machine (measured: ~T + 0.05, bench_watchdog.py)."""

NEEDS_ROS = [pytest.mark.skipif(not HAVE_RCLPY, reason=NO_ROS_REASON),
             pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON)]
KINDS = ["mesh", pytest.param("ros", marks=NEEDS_ROS)]
NEEDS_ROS_KIND = [pytest.param("ros", marks=NEEDS_ROS)]  # about a ROS executor: mesh robots have none


def uid() -> str:
    return uuid.uuid4().hex[:6]


# -- the pure rule ------------------------------------------------------------------------------

def test_rule_arms_at_first_heartbeat_trips_once_and_ignores_stale_readings():
    wd = LinkWatchdog(WatchdogConfig(("a", "b"), 1.0))
    assert wd.check(100.0) is None and not wd.armed  # never heard: waiting, not halted
    assert not wd.heard("stranger", 1.0) and not wd.armed
    assert wd.heard("a", 10.0) and wd.armed
    wd.heard("b", 10.6)
    assert wd.check(11.5) is None  # b heard 0.9 s ago: one fresh operator is enough
    reason = wd.check(11.7)
    assert reason == "link loss: no heartbeat from a, b for 1000 ms"
    assert wd.check(20.0) is None and not wd.armed  # one loss halts once
    assert not wd.heard("b", 10.6)  # the peer table's stale reading of the old beat: no re-arm
    assert wd.heard("b", 21.0) and wd.check(21.5) is None and wd.check(22.1) is not None


@pytest.mark.parametrize("ops, timeout, needle", [
    ([], 2.0, "without watchdog operators"),
    (["op"], None, "without a watchdog timeout"),
    (["op/1"], 2.0, "invalid watchdog operator 'op/1'"),
    (["op"], math.nan, "must be finite"),
    (["op"], math.inf, "must be finite"),
    (["op"], 0.3, "at least 1.0 s"),
    (["op"], -1.0, "at least 1.0 s"),
])
def test_bad_watchdog_settings_refused_naming_the_problem(ops, timeout, needle):
    with pytest.raises(ValueError, match="watchdog") as exc:
        WatchdogConfig.from_options(ops, timeout)
    assert needle in str(exc.value)
    with pytest.raises(ValueError) as exc:
        RobotSpec(id="arm1", watchdog_operators=ops, watchdog_timeout=timeout)
    assert needle in str(exc.value)


def test_off_by_default_and_a_watchdog_needs_a_robot():
    assert RobotSpec(id="arm1").watchdog() is None
    assert WatchdogConfig.from_options(None, None) is None
    assert RobotSpec(id="arm1", watchdog_operators=["op"], watchdog_timeout=2).watchdog() == WatchdogConfig(("op",), 2.0)
    with pytest.raises(ValueError, match="needs a robot"):
        Mesh("agent1", watchdog=WatchdogConfig(("op",), 2.0))


def test_peer_command_refuses_a_bad_timeout_with_exit_2(net):
    proc = python_proc("-m", "strands_mesh_ros.peer", "arm1", *net.peer_args, "--watchdog-operator", "op",
                       "--watchdog-timeout", "nan")
    assert proc.p.wait(60) == 2
    proc.close()
    assert any("must be finite" in line for line in proc.lines), proc.lines


# -- both kinds of robot ------------------------------------------------------------------------

class Rig:
    """A robot of one kind with (or without) a watchdog on operator ``op_id``, an operator
    process, and an observer on the mesh."""

    def __init__(self, kind: str, net, audit_dir: Path, stack: ExitStack, watchdog: bool = True,
                 timeout: float = T, own_executor: str | None = None) -> None:
        """``timeout``: the watchdog's (s). ``own_executor`` (ros): the robot node spun by an
        executor of its own of that kind (``events`` / ``single``), as the fleet host and
        ``robot_node`` spin it, not the bridge's; its executor then runs :attr:`stall` (an Event):
        set, the executor's next callback blocks it for :data:`STALL` s, then sets :attr:`stalled`."""
        self.kind, self.op_id = kind, f"wop_{uid()}"
        self.stall, self.stalled = threading.Event(), threading.Event()
        wd = ["--watchdog-operator", self.op_id, "--watchdog-timeout", str(timeout)] if watchdog else []
        if kind == "mesh":
            self.rid = f"mbot_{uid()}"
            robot = python_proc("-m", "strands_mesh_ros.peer", self.rid, "--prefix", net.prefix, "--listen",
                                net.endpoint, "--no-multicast", "--resume-key", KEY, *wd)
            stack.callback(robot.close)
            robot.ready(60)
        else:
            from rclpy.parameter import Parameter
            from ros_helpers import RosEnv

            from strands_mesh_ros.drivers.mock import MockDriver
            from strands_mesh_ros.ros.bridge_node import BridgeNode
            from strands_mesh_ros.ros.robot_node import RobotNode

            self.rid = f"rbot_{uid()}"
            ros = RosEnv()
            stack.callback(ros.close)
            params = [Parameter("watchdog_operators", value=[self.op_id]),
                      Parameter("watchdog_timeout", value=timeout)] if watchdog else []
            node = RobotNode(self.rid, driver=MockDriver(self.rid), context=ros.context, close_driver=True,
                             resume_key=KEY, prefix=net.prefix, audit_dir=str(audit_dir), parameter_overrides=params)
            if own_executor:
                from strands_mesh_ros.ros.spin import BackgroundSpin, make_executor

                def stall() -> None:  # the stimulus: a callback that holds its executor (a busy robot)
                    if self.stall.is_set():
                        self.stall.clear()
                        threading.Event().wait(STALL)
                        self.stalled.set()

                node.create_timer(0.05, stall)
                executor = make_executor(ros.context, own_executor)
                executor.add_node(node)
                ros.nodes.append(node)  # destroyed at close, after its spin stopped (deferred)
                ros.defer(BackgroundSpin(executor, "robot-spin").stop)
            else:
                ros.add(node)
            # a robot held on purpose stays bridged: the bridge's silence rule waits past the stall
            hub = net.hub(peer_timeout=STALL + 5.0) if own_executor else net.hub()
            ros.add(BridgeNode(mesh_config=hub, bridge_id=f"br_{uid()}", context=ros.context,
                               node_name=f"bridge_{uid()}", mirror=False))
        self.audit = audit_dir / f"audit-{self.rid}.jsonl"
        self.operator = python_proc("-m", "strands_mesh_ros.peer", self.op_id, "--agent", *net.peer_args)
        stack.callback(self.operator.close)
        self.operator.ready(60)
        self.obs = Mesh(f"obs_{uid()}", config=net.member(), resume_key=KEY).start()
        stack.callback(self.obs.stop)
        self.obs.wait_for_peer(self.rid, 60)

    def events(self, name: str) -> list[dict]:
        if not self.audit.exists():
            return []
        lines = [json.loads(x) for x in self.audit.read_text(encoding="utf-8").splitlines() if x.strip()]
        return [x for x in lines if x.get("event") == name]

    def lockout(self) -> dict | None:
        r = self.obs.send(self.rid, {"action": "status"}, timeout=15)
        if r.status == "refused" and "unresponsive" in (r.error or ""):
            # The robot's process was starved past the peer timeout (a busy machine) and refuses
            # what was sent meanwhile (the frozen-peer rule): not an answer about its lockout.
            # Asked again now, it answers.
            r = self.obs.send(self.rid, {"action": "status"}, timeout=15)
        assert r.ok, f"{self.rid} did not answer status: {r.status} {r.error}"
        return r.result["lockout"]

    def armed(self) -> None:
        wait_for(lambda: self.events("watchdog_armed"), 30, interval=0.05, what=f"{self.rid}'s watchdog armed")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
def test_lost_operator_halts_and_latches_the_robot_then_a_signed_resume_clears_it(kind, sig, net, _audit_dir):
    with ExitStack() as stack:
        rig = Rig(kind, net, _audit_dir, stack)
        rig.armed()
        assert rig.lockout() is None
        t0 = time.monotonic()
        rig.operator.signal(sig)
        lock = wait_for(rig.lockout, T + MARGIN, interval=0.05, what=f"{kind} robot latched after the operator's {sig.name}")
        took = time.monotonic() - t0
        # not before the rule allows: the last presence went out at most one period (0.5 s) before the signal
        assert took > T - 1.0, f"halted {took:.2f} s after the link loss, before the {T} s timeout"
        assert lock["reason"] == f"link loss: no heartbeat from {rig.op_id} for {round(T * 1000)} ms", lock
        loss = wait_for(lambda: rig.events("link_loss"), 10, what="link_loss audited")
        assert loss[0]["operators"] == [rig.op_id] and loss[0]["timeout"] == T
        r = rig.obs.send(rig.rid, {"action": "skill", "name": "home", "args": {}}, timeout=15)
        assert r.status in ("error", "refused") and "locked out" in (r.error or ""), r
        answers = rig.obs.resume(targets=[rig.rid], operator="test", timeout=10.0)  # the normal resume path
        assert answers[rig.rid]["accepted"], answers
        assert rig.lockout() is None


@pytest.mark.parametrize("kind", KINDS)
def test_live_operator_keeps_the_robot_running(kind, net, _audit_dir):
    """A longer timeout than the other tests': an absence of heartbeats that long is a lost link
    by the rule, and on a busy 2-core machine a 2 s one once came from the test process starved
    (the ROS robot, its bridge and the observer share it)."""
    with ExitStack() as stack:
        rig = Rig(kind, net, _audit_dir, stack, timeout=T_LIVE)
        rig.armed()
        deadline = time.monotonic() + T_LIVE + 2.0  # bounded window, past one timeout: absence of a halt
        while time.monotonic() < deadline:
            assert rig.lockout() is None, f"{kind} robot halted while its operator was alive"
        assert not rig.events("link_loss")


@pytest.mark.parametrize("executor", ["events", "single"])
@pytest.mark.parametrize("kind", NEEDS_ROS_KIND)
def test_a_robot_whose_executor_was_busy_reads_the_waiting_heartbeats_before_it_trips(kind, executor, net, _audit_dir):
    """The ROS robot's executor is held for longer than the timeout (a slow callback) while the
    operator's heartbeats keep arriving through the bridge: when it runs again, its due watchdog
    timer may come before those waiting messages (the SingleThreadedExecutor's order: without
    reading them first it halted here every time; the EventsExecutor took them first), and must
    read them rather than halt."""
    with ExitStack() as stack:
        rig = Rig(kind, net, _audit_dir, stack, own_executor=executor)
        rig.armed()
        assert rig.lockout() is None
        rig.stall.set()
        assert rig.stalled.wait(STALL + 30), "the robot's executor never ran the stall"
        deadline = time.monotonic() + 1.0  # bounded window: the watchdog ticks at 20 Hz
        while time.monotonic() < deadline:
            assert rig.lockout() is None, "the robot halted on heartbeats it had received but not read"
        assert not rig.events("link_loss")


@pytest.mark.parametrize("kind", KINDS)
def test_watchdog_off_by_default_a_lost_operator_does_not_halt(kind, net, _audit_dir):
    with ExitStack() as stack:
        rig = Rig(kind, net, _audit_dir, stack, watchdog=False)
        rig.operator.signal(signal.SIGKILL)
        deadline = time.monotonic() + 2 * T + 1.0  # bounded window: absence of a halt
        while time.monotonic() < deadline:
            assert rig.lockout() is None, f"{kind} robot without a watchdog halted"
        assert not rig.events("link_loss") and not rig.events("watchdog_armed")


# -- configuration reaches the robot ----------------------------------------------------------

def test_fleet_yaml_watchdog_reaches_the_mesh_robot(net):
    from strands_mesh_ros.fleet import Fleet

    robots = [{"id": "wf1", "driver": "mock", "watchdog_operators": ["console"], "watchdog_timeout": 3},
              {"id": "wf2", "driver": "mock"}]
    with Fleet(robots=robots, config=net.hub()) as fleet:
        assert fleet.meshes["wf1"].core.watchdog.config == WatchdogConfig(("console",), 3.0)
        assert fleet.meshes["wf2"].core.watchdog is None


@pytest.mark.skipif(not HAVE_RCLPY, reason=NO_ROS_REASON)
@pytest.mark.skipif(not HAVE_MSGS, reason=NO_MSGS_REASON)
def test_ros_parameters_and_fleet_spec_reach_the_ros_robot_and_bad_ones_are_refused(net):
    from rclpy.parameter import Parameter
    from ros_helpers import RosEnv

    from strands_mesh_ros.ros.robot_node import RobotNode

    ros = RosEnv()
    try:
        spec = RobotSpec(id="wr1", driver="mock", watchdog_operators=["console", "backup"], watchdog_timeout=2.5)
        node = ros.add(RobotNode.from_spec(spec, context=ros.context, prefix=net.prefix))
        assert node.core.watchdog.config == WatchdogConfig(("console", "backup"), 2.5)
        assert node.get_parameter("watchdog_operators").value == ["console", "backup"]
        plain = ros.add(RobotNode.from_spec(RobotSpec(id="wr2", driver="mock"), context=ros.context, prefix=net.prefix))
        assert plain.core.watchdog is None
        for params, needle in [([Parameter("watchdog_timeout", value=2.0)], "without watchdog operators"),
                               ([Parameter("watchdog_operators", value=["console"])], "at least 1.0 s"),
                               ([Parameter("watchdog_operators", value=["a/b"]), Parameter("watchdog_timeout", value=2.0)],
                                "invalid watchdog operator 'a/b'")]:
            with pytest.raises(ValueError, match="watchdog_operators / watchdog_timeout") as exc:
                RobotNode("wr3", driver=__import__("strands_mesh_ros.drivers.mock", fromlist=["x"]).MockDriver("wr3"),
                          context=ros.context, prefix=net.prefix, parameter_overrides=params, close_driver=True)
            assert needle in str(exc.value)
    finally:
        ros.close()
