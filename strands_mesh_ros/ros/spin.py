"""Spinning an rclpy executor on a background thread, and stopping it without races.

``executor.shutdown()`` while another thread is inside ``executor.spin()`` races with the
callbacks that spin is about to run (they can meet destroyed entities or a closed thread
pool). :class:`BackgroundSpin` instead spins until an rclpy ``Future`` completes
(``spin_until_future_complete``, woken at once when it does: no polling), joins the thread, and
only then shuts the executor down, so nodes can be destroyed afterwards with nothing in flight.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


def contained(logger: Any, what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as an rclpy callback that never ends its executor.

    An exception escaping a callback ends ``spin()`` (and with it every node on that executor,
    a fleet host's robots included). The wrapper logs it (throttled to one line a second per
    callback) and returns None; callers that are owed an answer get one from the code inside
    (:class:`~strands_mesh_ros.robot.peer_core.PeerCore` answers every command it can).
    """
    def callback(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - the executor must outlive any one message
            logger.error(f"{what} callback failed: {type(exc).__name__}: {str(exc)[:300]}",
                         throttle_duration_sec=1.0)
            return None

    callback.__name__ = getattr(fn, "__name__", what)
    return callback


class BackgroundSpin:
    """Spins ``executor`` on a daemon thread until :meth:`stop`.

    Args:
        executor: an rclpy executor with its nodes added (more can be added while spinning).
        name: the thread's name.
    """

    def __init__(self, executor: Any, name: str = "ros-spin") -> None:
        from rclpy.task import Future

        self.executor = executor
        self._stop: Future = Future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin_until_future_complete(self._stop)
        except ExternalShutdownException:
            pass

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        """Wait until spinning ends (:meth:`stop`, or the context shut down by Ctrl-C)."""
        self._thread.join()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop, join the thread, then shut the executor down. Idempotent."""
        if not self._stop.done():
            self._stop.set_result(True)
        self._thread.join(timeout)
        # A MultiThreadedExecutor's pool may still run callbacks handed over by the last spin.
        # Executor.shutdown() destroys the executor's guard condition before it joins that pool
        # (in the Kilted rclpy it does not wait for in-flight work first), and such a callback then
        # fails in gc.trigger() with "cannot use Destroyable". So drain the pool first; shutting
        # it down twice is harmless.
        pool = getattr(self.executor, "_executor", None)
        if pool is not None and hasattr(pool, "shutdown"):
            pool.shutdown(wait=True)
        self.executor.shutdown(timeout_sec=timeout)


def run_main(name: str, build: Any, args: list[str] | None, errors: tuple[type[BaseException], ...],
             num_threads: int | None = None, single_threaded: bool = False) -> int:
    """The ``main()`` of a node executable, as ros2/demos write it.

    ``rclpy.init``; ``node = build(argv)`` (a Node, or an object with ``executor`` / ``close``
    such as the fleet host); spin a MultiThreadedExecutor until Ctrl-C or shutdown; always
    destroy and ``try_shutdown``.

    Returns:
        0 on a normal shutdown; 2 when ``build`` raised one of ``errors`` (a refused
        configuration), printed to stderr as ``name: message``.
    """
    import sys

    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    argv = sys.argv if args is None else args
    rclpy.init(args=argv)
    built = None
    try:
        built = build(argv)
        from rclpy.node import Node

        if not isinstance(built, Node):
            built.spin()  # the fleet host spins its robots itself
        else:
            executor = SingleThreadedExecutor() if single_threaded else MultiThreadedExecutor(num_threads=num_threads)
            executor.add_node(built)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except errors as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    finally:
        if built is not None:
            release = getattr(built, "destroy_node", None) or built.close  # a Node, or the fleet host
            release()
        rclpy.try_shutdown()
    return 0
