"""Helpers for tests with real rclpy: a private context spun on a background thread.

Every test gets its own ``rclpy.Context`` on a ROS domain chosen per test module from the
pytest process id, so tests of one run never see each other's leftovers and concurrent runs
on one machine are unlikely to meet. Waits are condition polls with a timeout
(:func:`helpers.wait_for`), never sleeps.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from helpers import wait_for

try:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from strands_mesh_ros.ros.spin import BackgroundSpin, make_executor

    HAVE_RCLPY = True
except ImportError:  # pragma: no cover - machines without the ROS wheels
    HAVE_RCLPY = False

try:
    from strands_mesh_ros.msg import Command  # noqa: F401

    HAVE_MSGS = True
except ImportError:
    HAVE_MSGS = False

NO_ROS_REASON = "rclpy is not importable (install the ROS 2 wheels: bash scripts/bootstrap.sh setup)"
NO_MSGS_REASON = ("the generated strands_mesh_ros.msg interfaces are not importable "
                  "(build them: bash scripts/bootstrap.sh setup)")


def domain_id(offset: int) -> int:
    """A ROS domain id for one test module: 10..209, from the pytest pid and ``offset`` (0 or 1)."""
    return (os.getpid() % 100) * 2 + 10 + offset


class Collector:
    """Keeps every message a subscription receives; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._msgs: list[Any] = []

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self._msgs.append(msg)

    @property
    def msgs(self) -> list[Any]:
        with self._lock:
            return list(self._msgs)

    @property
    def last(self) -> Any:
        with self._lock:
            return self._msgs[-1] if self._msgs else None

    def wait(self, pred: Callable[[Any], bool] = lambda m: True, timeout: float = 10.0, what: str = "message") -> Any:
        """The first received message satisfying ``pred`` (waiting up to ``timeout`` s)."""
        def find() -> Any:
            for m in self.msgs:
                if pred(m):
                    return m
            return None
        return wait_for(find, timeout, what=what)


class RosEnv:
    """A fresh rclpy context, the package's executor spinning on a thread, and a probe node.

    ``executor``: the kind (``events`` / ``single``, see ``ros/spin.py`` make_executor); default
    ``$STRANDS_MESH_EXECUTOR``, else ``events``, as the package's own nodes are spun. Never
    rclpy 9.1's MultiThreadedExecutor: it busy-loops while a subscription's message waits for a
    pool thread (its next wait returns at once), holding the GIL; with a 100 Hz joint_states
    subscription on the probe it took a whole core, the stand-in's timer ran at ~5 Hz instead
    of 100 and skills' 10 ms waits took ~135 ms.
    """

    def __init__(self, domain: int, executor: str | None = None) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        self.executor = make_executor(self.context, executor)
        self.nodes: list[Any] = []
        self._deferred: list[Callable[[], Any]] = []
        self.probe = self.add(rclpy.create_node("test_probe", context=self.context))
        self._spin = BackgroundSpin(self.executor, "test-ros-env")

    def defer(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` at :meth:`close`, after spinning stopped and before nodes are destroyed
        (e.g. ``robot.close`` of a driver whose entities live on the probe node)."""
        self._deferred.append(fn)

    def add(self, node: Any) -> Any:
        """Spin ``node`` too (destroyed at :meth:`close`)."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def sub(self, msg_type: Any, topic: str, qos: Any) -> Collector:
        col = Collector()
        self.probe.create_subscription(msg_type, topic, col, qos)
        return col

    def pub(self, msg_type: Any, topic: str, qos: Any, subscribers: int = 1, timeout: float = 10.0) -> Any:
        """A publisher, returned once ``subscribers`` subscriptions have matched it."""
        p = self.probe.create_publisher(msg_type, topic, qos)
        wait_for(lambda: p.get_subscription_count() >= subscribers, timeout, what=f"a subscriber on {topic}")
        return p

    def close(self) -> None:
        self._spin.stop()
        for fn in reversed(self._deferred):
            fn()
        for node in reversed(self.nodes):
            node.destroy_node()
        rclpy.shutdown(context=self.context)
