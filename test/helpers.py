"""Test helpers: see :mod:`strands_mesh_ros.testing`; plus :func:`route_replies` for raw Zenoh sessions."""

from strands_mesh_ros.testing import Proc, free_port, python_proc, wait_for  # noqa: F401


def route_replies(session, net, robot: str, replies: list, sender: str = "rogue") -> None:
    """Probe with valid 'status' commands until a reply reaches ``replies``: only then has the
    raw session's response subscription reached the robot's process. ``net`` needs ``prefix``."""
    from strands_mesh_ros.contract import CommandEnvelope, new_turn_id

    def probe():
        env = CommandEnvelope(sender_id=sender, turn_id="probe" + new_turn_id()[:8], command={"action": "status"})
        session.put(f"{net.prefix}/{robot}/cmd", env.to_json())
        return wait_for(lambda: replies, 0.2, what="probe reply") if not replies else True

    def attempt():
        try:
            return probe()
        except AssertionError:
            return False

    wait_for(attempt, 10, interval=0.0, what="raw session routed")
    replies.clear()
