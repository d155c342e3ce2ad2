"""QoS profiles of strands_mesh_ros's ROS topics (names in :mod:`.topics`), with the reasons.

A reliable subscriber does not match a best-effort publisher, and a transient-local
subscriber does not match a volatile publisher; publishers here are therefore reliable, so
that both reliable and best-effort subscribers (rviz, robot_state_publisher, ``ros2 topic
echo``) receive them. History is always KEEP_LAST with the depth given.

* :data:`JOINT_STATES` -- reliable, volatile, depth 10. robot_state_publisher and rviz
  subscribe reliable (the ROS default); a best-effort publisher would not match them. Volatile
  because an old joint state is useless to a late joiner: the next one comes within
  1/state_rate s. Depth 10 covers half a second at 20 Hz for a slow reader.
* :data:`JOINT_STATES_RELAY` -- as JOINT_STATES, depth 50: the bridge relays every ROS robot's
  joint_states onto the mesh, where each state is counted by its ``seq``; one second at 50 Hz
  lets a stall of the bridge's executor (a busy host; 100 robots are 5,000 messages/s) pass
  without evicting a sample (bench/bench_bridge.py fanin).
* :data:`ROBOT_DESCRIPTION` -- reliable, TRANSIENT_LOCAL, depth 1: the URDF is published once;
  late joiners (rviz, robot_state_publisher started later) must still get it, exactly as
  robot_state_publisher latches it. Only the newest description matters.
* :data:`PRESENCE` -- reliable, volatile, depth 50: every robot of the fleet publishes on the
  one topic at 2 Hz, so a burst from a large fleet must not evict presences before the bridge
  reads them. Volatile: a stale presence is worse than none (the contract drops presence
  older than 60 s anyway, and the next one comes within 0.5 s).
* :data:`COMMAND` and :data:`RESPONSE` -- reliable, volatile, depth 100: commands and their
  responses are never dropped (every command gets exactly one response); depth 100 lets a
  burst of commands queue while the node is busy. Volatile: a command must not be replayed to
  a node that starts later.
* :data:`ESTOP` -- reliable, volatile, depth 10: an e-stop must arrive (reliable), and e-stops
  are rare. Deliberately volatile: a latched e-stop would re-halt every robot that starts
  afterwards, even after an authorised resume.
* :data:`ESTOP_ACK`, :data:`RESUME_ACK` -- reliable, volatile, depth 100: every robot of the
  fleet acks at the same moment; none of those acks may be evicted, because a missing ack
  reports that robot as NOT stopped.
* :data:`RESUME` -- reliable, volatile, depth 10: like the e-stop; a latched resume would be
  replayed to late joiners (the ResumeGuard would refuse it as a replay or as stale anyway).
* :data:`COMMAND_OUT` -- reliable, volatile, depth 10: what :class:`~strands_mesh_ros.drivers.
  ros_topics.RosTopicsDriver` publishes to a robot's controllers (ros2_control's
  joint_trajectory_controller and forward_command_controller subscribe with the system default
  QoS, reliable depth 10); a reliable publisher matches best-effort subscribers too.
* :data:`DIAGNOSTICS` -- reliable, volatile, depth 10: ``/diagnostics``, as
  ``diagnostic_updater`` publishes it, so ``rqt_robot_monitor`` and ``diagnostic_aggregator``
  match; each array is a full snapshot of its publisher's devices, sent every 0.5 s.
* :data:`SENSOR_IN` -- best effort, volatile, depth 5 (ROS "sensor data" QoS): how
  RosTopicsDriver reads a robot's ``joint_states``; a best-effort subscriber matches both
  reliable publishers (joint_state_broadcaster) and best-effort ones (many drivers, Gazebo
  bridges), and only the newest state matters.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def _qos(depth: int, *, reliable: bool = True, latched: bool = False) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


JOINT_STATES = _qos(10)
JOINT_STATES_RELAY = _qos(50)
ODOM = _qos(10)
ROBOT_DESCRIPTION = _qos(1, latched=True)
PRESENCE = _qos(50)
COMMAND = _qos(100)
RESPONSE = _qos(100)
ESTOP = _qos(10)
ESTOP_ACK = _qos(100)
RESUME = _qos(10)
RESUME_ACK = _qos(100)
COMMAND_OUT = _qos(10)
SENSOR_IN = _qos(5, reliable=False)
DIAGNOSTICS = _qos(10)

__all__ = [
    "JOINT_STATES", "JOINT_STATES_RELAY", "ODOM", "ROBOT_DESCRIPTION", "PRESENCE", "COMMAND", "RESPONSE", "ESTOP", "ESTOP_ACK",
    "RESUME", "RESUME_ACK", "COMMAND_OUT", "SENSOR_IN", "DIAGNOSTICS",
]
