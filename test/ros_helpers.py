"""Helpers for tests with real rclpy: a private context spun on a background thread.

Every test gets its own ``rclpy.Context`` on a ROS domain of its own (:func:`new_domain`: held
by one test process at a time on this machine, so neither the tests of one run nor concurrent
runs ever share one). Waits are condition polls with a timeout (:func:`helpers.wait_for`),
never sleeps.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

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


# Domains 10..101: the ROS 2 docs' portable range is 0..101 (above it, a DDS domain's ports,
# 7400 + 250 * id, fall into Linux's ephemeral range, where the tests' free ports come from);
# 0..9 are left to fleets people run by hand.
DOMAINS = range(10, 102)
# A domain released less than this long ago is taken only when no other is free: processes a
# test started may still be exiting on it.
DOMAIN_COOLDOWN = 30.0  # s
DOMAIN_LOCK_DIR = Path(tempfile.gettempdir()) / "strands_mesh_ros-ros-domains"

_domains_lock = threading.Lock()
_held: dict[int, int] = {}  # domain -> fd holding its lock file
_next = random.randrange(len(DOMAINS))  # where this process starts looking


def new_domain() -> int:
    """A ROS domain id (in :data:`DOMAINS`) that no other holder on this machine has.

    Held through an exclusive ``flock`` on ``DOMAIN_LOCK_DIR/<id>.lock`` until
    :func:`release_domain` or the end of this process (the kernel drops the lock with the
    process, so a killed test run leaves nothing held). The search goes on from where the last
    one stopped, and skips domains released less than :data:`DOMAIN_COOLDOWN` s ago while any
    other is free, so a released domain is not handed out again at once.

    Raises ``RuntimeError`` naming the lock folder when every domain is held.
    """
    global _next
    with _domains_lock:
        DOMAIN_LOCK_DIR.mkdir(exist_ok=True)
        cooling: list[tuple[float, int, int]] = []  # (released at, domain, fd), locked by us
        try:
            for i in range(len(DOMAINS)):
                domain = DOMAINS[(_next + i) % len(DOMAINS)]
                if domain in _held:
                    continue
                fd = os.open(DOMAIN_LOCK_DIR / f"{domain}.lock", os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                released = _released_at(fd)
                if time.time() - released < DOMAIN_COOLDOWN:
                    cooling.append((released, domain, fd))
                    continue
                _next = (_next + i + 1) % len(DOMAINS)
                _held[domain] = fd
                return domain
            if cooling:
                cooling.sort()
                _, domain, fd = cooling.pop(0)
                _held[domain] = fd
                return domain
        finally:
            for _, _, fd in cooling:
                os.close(fd)
    raise RuntimeError(f"every ROS domain in {DOMAINS.start}..{DOMAINS.stop - 1} is held by a test "
                       f"process on this machine (lock files in {DOMAIN_LOCK_DIR})")


def _released_at(fd: int) -> float:
    try:
        return float(os.pread(fd, 32, 0) or b"0")
    except ValueError:
        return 0.0


def release_domain(domain: int) -> None:
    """Give back a domain from :func:`new_domain`, noting when (for :data:`DOMAIN_COOLDOWN`).

    Raises ``KeyError`` for a domain this process does not hold."""
    with _domains_lock:
        fd = _held.pop(domain)
        stamp = f"{time.time():.3f}".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, stamp, 0)
        os.close(fd)


@contextlib.contextmanager
def own_domain() -> Iterator[int]:
    """A :func:`new_domain` for the length of a ``with`` block."""
    domain = new_domain()
    try:
        yield domain
    finally:
        release_domain(domain)


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

    ``domain``: default ``$ROS_DOMAIN_ID`` (the test's own: conftest.py ``ros_domain``).
    ``executor``: the kind (``events`` / ``single``, see ``ros/spin.py`` make_executor); default
    ``$STRANDS_MESH_EXECUTOR``, else ``events``, as the package's own nodes are spun. Never
    rclpy 9.1's MultiThreadedExecutor: it busy-loops while a subscription's message waits for a
    pool thread (its next wait returns at once), holding the GIL; with a 100 Hz joint_states
    subscription on the probe it took a whole core, the stand-in's timer ran at ~5 Hz instead
    of 100 and skills' 10 ms waits took ~135 ms.
    """

    def __init__(self, domain: int | None = None, executor: str | None = None) -> None:
        if domain is None:  # the test's own, set by conftest's autouse ros_domain fixture
            domain = int(os.environ["ROS_DOMAIN_ID"])
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
