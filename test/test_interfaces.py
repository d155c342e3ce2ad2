"""The generated strands_mesh_ros interfaces, exercised with real rclpy (no mocks).

Two nodes in one process exchange a ``Presence`` (with a nested ``Skill``) over a topic and a
``SendCommand`` request over a service. Waiting is spin-until-condition with a deadline.

Also checks the build arrangement: ``import strands_mesh_ros`` is the source tree, while
``strands_mesh_ros.msg`` / ``.srv`` are the generated packages installed by the interface build.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

try:
    import rclpy
    import rclpy.executors
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    import strands_mesh_ros
    from strands_mesh_ros.msg import Command, EStop, PeerArray, Presence, Response, Skill
    from strands_mesh_ros.srv import SendCommand
except ImportError as exc:  # pip install without ROS, or interfaces not built
    pytest.skip(
        f"generated ROS interfaces not importable ({exc}); run `bash scripts/bootstrap.sh test` "
        "(builds msg/ and srv/ into .venv) or build the package with colcon and source it",
        allow_module_level=True,
    )

REPO = Path(__file__).resolve().parents[1]
DEADLINE_S = 10.0


@pytest.fixture
def context():
    """A private rclpy context, shut down after the test."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.fixture
def executor_with_nodes(context):
    """A single-threaded executor holding a 'talker' and a 'listener' node."""
    suffix = uuid.uuid4().hex[:8]
    talker = rclpy.create_node(f"talker_{suffix}", context=context)
    listener = rclpy.create_node(f"listener_{suffix}", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(talker)
    executor.add_node(listener)
    try:
        yield executor, talker, listener, suffix
    finally:
        executor.shutdown()
        talker.destroy_node()
        listener.destroy_node()


def spin_until(executor, condition, timeout: float = DEADLINE_S) -> bool:
    """Spin ``executor`` until ``condition()`` is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        executor.spin_once(timeout_sec=min(0.05, remaining))
    return True


def test_import_layout():
    """The source package is imported; msg/srv come from the generated install."""
    assert Path(strands_mesh_ros.__file__).resolve() == REPO / "strands_mesh_ros" / "__init__.py"
    for sub in (strands_mesh_ros.msg, strands_mesh_ros.srv):
        generated = Path(sub.__file__).resolve()
        assert REPO / "strands_mesh_ros" not in generated.parents, generated
    assert Presence.__module__.startswith("strands_mesh_ros.msg")


def test_message_fields_and_defaults():
    cmd = Command(sender_id="a", target_id="", turn_id="t1", action="status",
                  command_json='{"action": "status"}', timestamp=1.5, reply_to="")
    assert cmd.target_id == ""  # empty = broadcast
    resp = Response(type="response", status="done", responder_id="b", sender_id="a",
                    turn_id="t1", result_json="{}", error="", timestamp=2.0)
    assert resp.type == "response"
    stop = EStop(issuer_id="a", seq=2**63, t=3.0, reason="test")
    assert stop.seq == 2**63
    peers = PeerArray(peers=[Presence(peer_id="p1"), Presence(peer_id="p2")])
    assert [p.peer_id for p in peers.peers] == ["p1", "p2"]
    assert peers.stamp.sec == 0 and peers.stamp.nanosec == 0


def test_presence_pub_sub_with_nested_skill(executor_with_nodes):
    executor, talker, listener, suffix = executor_with_nodes
    topic = f"/strands_test_{suffix}/presence"
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
    received: list[Presence] = []
    listener.create_subscription(Presence, topic, received.append, qos)
    pub = talker.create_publisher(Presence, topic, qos)

    assert spin_until(executor, lambda: pub.get_subscription_count() >= 1), "no discovery"

    sent = Presence(
        peer_id="arm1", robot_type="so101", peer_type="robot", hostname="host-a",
        timestamp=1_700_000_000.25, ros_namespace="/arm1", ros_node="robot_node", via="",
        task_status="idle", age=0.5,
        skills=[Skill(name="move_joints", lane="arm", description="Move to joint positions",
                      params_json='{"type": "object", "properties": {"q": {"type": "array"}}}')],
    )
    pub.publish(sent)
    assert spin_until(executor, lambda: bool(received)), "presence not received"

    got = received[0]
    assert got == sent
    assert got.skills[0].lane == "arm"
    assert got.timestamp == pytest.approx(1_700_000_000.25)


def test_send_command_service(executor_with_nodes):
    executor, server_node, client_node, suffix = executor_with_nodes
    name = f"/strands_test_{suffix}/send_command"

    def handle(request, response):
        response.status = "done"
        response.responder_id = request.peer_id
        response.result_json = request.command_json
        response.error = ""
        return response

    server_node.create_service(SendCommand, name, handle)
    client = client_node.create_client(SendCommand, name)
    assert spin_until(executor, client.service_is_ready), "service not discovered"

    future = client.call_async(
        SendCommand.Request(peer_id="arm1", command_json='{"action": "status"}', timeout=1.0))
    assert spin_until(executor, future.done), "no service response"
    result = future.result()
    assert (result.status, result.responder_id) == ("done", "arm1")
    assert result.result_json == '{"action": "status"}'
