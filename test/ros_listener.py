"""A plain rclpy process that waits for one JointState on each topic named on the command line.

Prints ``READY`` once its subscriptions exist, ``SEEN <topic> <joint names, comma-separated>``
for the first message of each topic, and exits 0 when every topic was seen (1 after 30 s).
The ROS domain comes from ``ROS_DOMAIN_ID``.
"""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState


def main(topics: list[str]) -> int:
    rclpy.init()
    node = rclpy.create_node("ros_listener")
    seen: dict[str, list[str]] = {}
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)

    def on_msg(topic: str):
        def cb(msg: JointState) -> None:
            if topic not in seen:
                seen[topic] = list(msg.name)
                print(f"SEEN {topic} {','.join(msg.name)}", flush=True)
        return cb

    for t in topics:
        node.create_subscription(JointState, t, on_msg(t), qos)
    print("READY", flush=True)
    deadline = time.monotonic() + 30.0
    try:
        while len(seen) < len(topics) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0 if len(seen) == len(topics) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
