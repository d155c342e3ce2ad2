"""Choosing the package's rclpy executor, spinning it on a background thread, and stopping it
without races.

:func:`make_executor` picks the executor every node of the package runs on: rclpy's
``EventsExecutor`` (C++, in the Kilted rclpy 9.1 wheels as ``rclpy.experimental``) by default,
or ``SingleThreadedExecutor`` with ``STRANDS_MESH_EXECUTOR=single`` (the tested fallback).
Measured here (docs/benchmarks.md): the events executor spends several times less CPU per
message, which is what brings 100 robots' joint_states at 50 Hz through one bridge, and it
takes bridged ROS robots' e-stops through the bridge faster under a flood. rclpy calls it
experimental. Its one failure seen here, an abort at exit when a thread was still inside it
while the interpreter finalised, cannot happen in the node executables or ``strands-mesh up``,
which end without finalising (:func:`~strands_mesh_ros.robot.process.end_process`); a program
that embeds the package's nodes stops their spinning (:meth:`BackgroundSpin.stop`) before it
exits.
rclpy's ``MultiThreadedExecutor`` is not offered: in rclpy 9.1.2 it busy-loops a whole core
while a ready message waits for a pool thread.

``executor.shutdown()`` while another thread is inside ``executor.spin()`` races with the
callbacks that spin is about to run (they can meet destroyed entities or a closed thread
pool). :class:`BackgroundSpin` instead ends the spin loop first (a ``SingleThreadedExecutor``
spins until an rclpy ``Future`` completes, woken at once when it does; an ``EventsExecutor``
spins in bounded ``spin_once`` calls and is woken by ``wake()``), joins the thread, and only
then shuts the executor down, so nodes can be destroyed afterwards with nothing in flight.
"""

from __future__ import annotations

import faulthandler
import inspect
import os
import signal
import sys
import threading
from typing import Any, Callable

from ..mesh.config import one_line
from ..robot.process import run_to_exit

EXECUTOR_ENV = "STRANDS_MESH_EXECUTOR"
"""Environment variable choosing the executor of every node this package spins (see
:func:`make_executor`): ``events`` (default) or ``single``."""

EXECUTORS = ("events", "single")
"""The values :data:`EXECUTOR_ENV` takes."""

EVENTS_SPIN_SLICE = 0.1
"""Longest single ``spin_once`` (s) of an ``EventsExecutor`` on a background thread. Its
``spin()`` and untimed ``spin_until_future_complete()`` dispatched nothing at all when called
off the main thread (rclpy 9.1.2, seen here), and a ``Future.set_result`` from another thread
then blocked for good: the slice bounds every call, and :meth:`BackgroundSpin.stop` wakes the
current one at once."""


def executor_kind(kind: str | None = None) -> str:
    """The executor kind to use: ``kind``, else ``$STRANDS_MESH_EXECUTOR``, else ``events``.

    Raises:
        ValueError: not one of :data:`EXECUTORS` (the message names the variable).
    """
    kind = kind or os.environ.get(EXECUTOR_ENV) or "events"
    if kind not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected one of {', '.join(EXECUTORS)}")
    return kind


def make_executor(context: Any = None, kind: str | None = None) -> Any:
    """A new executor of the kind :func:`executor_kind` says, on ``context`` (None: rclpy's
    default context). Falls back to ``SingleThreadedExecutor``, with one warning, on an rclpy
    without ``rclpy.experimental.EventsExecutor`` (before Jazzy).

    Raises:
        ValueError: a bad :data:`EXECUTOR_ENV` value.
    """
    from rclpy.executors import SingleThreadedExecutor

    if executor_kind(kind) == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            import logging

            logging.getLogger(__name__).warning(
                "rclpy.experimental.EventsExecutor is not in this rclpy: using SingleThreadedExecutor")
        else:
            return EventsExecutor(context=context)
    return SingleThreadedExecutor(context=context)


def is_events_executor(executor: Any) -> bool:
    """Is ``executor`` rclpy's C++ ``EventsExecutor``?"""
    return type(executor).__name__ == "EventsExecutor"


def read_backlog(subscription: Any, limit: int | None = None) -> int:
    """Run ``subscription``'s callback now on each message it has received and not yet handed
    to its executor, oldest first; at most ``limit`` (default: its QoS history depth, so a
    flood cannot hold the caller). Call it from the thread that spins the node (a callback).

    Why: a timer that judges silence can otherwise run before messages that arrived well
    before it was due. Both of the package's executors run a due timer ahead of waiting
    messages (measured: a 4 Hz timer ran with up to 40 messages, ~0.4 s, unread behind a
    slow subscription, on the SingleThreadedExecutor and the EventsExecutor alike). The
    executor later finds nothing to take for the messages read here and skips them (rclpy
    ``Executor._take_subscription``; the EventsExecutor likewise, checked: none lost, none twice).

    Only for subscriptions whose callback takes the message alone.

    Returns:
        The number of messages handled.
    """
    n, limit = 0, subscription.qos_profile.depth if limit is None else limit
    handle = subscription.handle
    with handle:  # keeps the subscription alive while taking (as the executor does)
        while n < max(limit, 1):
            taken = handle.take_message(subscription.msg_type, subscription.raw)
            if taken is None:
                break
            subscription.callback(taken[0])
            n += 1
    return n


def read_backlogs(subscriptions: Any, logger: Any) -> None:
    """:func:`read_backlog` of each subscription, for a caller about to judge silence (a bridge
    dropping a robot, a robot's link-loss watchdog). Never raises: a subscription whose backlog
    cannot be read is logged (throttled to one line per 5 s) and skipped, so the judgement is
    made without it rather than not at all."""
    for sub in subscriptions:
        try:
            read_backlog(sub)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            logger.error(f"reading {sub.topic_name}'s backlog failed: {type(exc).__name__}: {exc}",
                         throttle_duration_sec=5.0)


def contained(logger: Any, what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as an rclpy callback that never ends its executor.

    An exception escaping a callback ends ``spin()`` (and with it every node on that executor,
    a fleet host's robots included). The wrapper logs it (throttled to one line a second per
    callback) and returns None; callers that are owed an answer get one from the code inside
    (:class:`~strands_mesh_ros.robot.peer_core.PeerCore` answers every command it can).
    """
    def failed(exc: Exception) -> None:
        logger.error(f"{what} callback failed: {type(exc).__name__}: {str(exc)[:300]}", throttle_duration_sec=1.0)

    # The wrapper takes arguments only when ``fn`` does: rclpy's EventsExecutor hands a timer
    # callback that accepts any argument a TimerInfo, which a zero-argument ``fn`` refuses.
    try:
        takes_args = bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # no signature to read (a builtin): pass what comes
        takes_args = True
    if takes_args:
        def callback(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - the executor must outlive any one message
                failed(exc)
                return None
    else:
        def callback() -> Any:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - the executor must outlive any one message
                failed(exc)
                return None

    callback.__name__ = getattr(fn, "__name__", what)
    return callback


class BackgroundSpin:
    """Spins ``executor`` on a daemon thread until :meth:`stop`.

    Args:
        executor: an rclpy executor with its nodes added (more can be added while spinning).
        name: the thread's name.
        on_exit: called (on the spinning thread) when spinning ends, for whatever reason: a
            :meth:`stop`, the context shut down, or an exception escaping the executor.
    """

    def __init__(self, executor: Any, name: str = "ros-spin", on_exit: Callable[[], Any] | None = None) -> None:
        from rclpy.task import Future

        self.executor = executor
        self._events = is_events_executor(executor)
        self._stop: Future = Future()
        self._stopping = threading.Event()
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            if self._events:
                while not self._stopping.is_set() and self.executor.context.ok():
                    self.executor.spin_once(timeout_sec=EVENTS_SPIN_SLICE)
            else:
                self.executor.spin_until_future_complete(self._stop)
        except ExternalShutdownException:
            pass
        finally:
            if self._on_exit is not None:
                self._on_exit()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        """Wait until spinning ends (:meth:`stop`, or the context shut down by Ctrl-C)."""
        self._thread.join()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop, join the thread, then shut the executor down. Idempotent."""
        if self._events:
            self._stopping.set()
            self.executor.wake()
        elif not self._stop.done():
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


SHUTDOWN_GRACE = 4.0
"""Longest a node executable may take to shut down (s) once asked to: past it, it exits with
status 1 and says so, whatever is stuck. ``ros2 launch`` escalates to SIGTERM after 5 s."""

_SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)



def _overdue(name: str) -> None:
    try:
        print(f"{name}: shutdown did not finish in {SHUTDOWN_GRACE:g} s; exiting anyway", file=sys.stderr, flush=True)
    finally:
        os._exit(1)


def run_main(name: str, build: Any, args: list[str] | None, errors: tuple[type[BaseException], ...]) -> int:
    """The ``main()`` of a node executable: spin until SIGINT / SIGTERM, then shut down cleanly.

    Called as the program (``args`` None) it does not return: once shut down, the process ends
    with the status and without interpreter finalisation
    (:func:`~strands_mesh_ros.robot.process.run_to_exit`: a thread left inside rclpy's C++
    ``EventsExecutor`` would otherwise abort it); an exception that escapes is printed and ends
    it with status 1.
    Called with ``args`` (tests, embedding) it returns the status.

    See :func:`_serve` for the steps.
    """
    if args is not None:
        return _serve(name, build, args, errors)
    run_to_exit(lambda: _serve(name, build, None, errors))


def _serve(name: str, build: Any, args: list[str] | None, errors: tuple[type[BaseException], ...]) -> int:
    """:func:`run_main`'s work, returning the status.

    ``rclpy.init``; ``node = build(argv)`` (a Node, or an object with ``start(on_exit=...)`` /
    ``close()`` such as the fleet host); spin it (on the :func:`make_executor` executor) on a background thread while the main thread
    waits for a signal (or the context to shut down, or spinning to end); then stop spinning,
    destroy, ``try_shutdown``.

    Signals are this function's, not rclpy's (``SignalHandlerOptions.NO``): the first SIGINT or
    SIGTERM only sets an event, and from then on both are ignored, so a second Ctrl-C (``ros2
    launch`` sends SIGINT to the whole process group, users press it twice) can neither raise
    ``KeyboardInterrupt`` in the middle of the shutdown nor kill the process half-way through
    (Python restores the default SIGINT action while it finalises; an ignored signal stays
    ignored). A shutdown that takes longer than :data:`SHUTDOWN_GRACE` ends the process with
    status 1 and one line saying so. Called as the program (``args`` None) the signals stay
    ignored and the grace timer armed until the process ends; called with ``args`` (tests,
    embedding) both are undone on return.

    With ``STRANDS_MESH_RT_PRIORITY`` set, the process runs real-time
    (:mod:`strands_mesh_ros.robot.realtime`) from before ``build``. Called as the program, it
    freezes the start-up objects once ``build`` has returned
    (:func:`~strands_mesh_ros.robot.realtime.freeze_heap`).

    Returns:
        0 on a normal shutdown; 2 when ``build`` raised one of ``errors`` (a refused
        configuration, a mesh that cannot be joined), the ROS arguments are malformed, or
        :data:`EXECUTOR_ENV` or the real-time settings are bad or cannot be applied, printed
        to stderr as ``name: message``.
    """
    import rclpy
    from rclpy.node import Node
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.logging import get_logger
    from rclpy.signals import SignalHandlerOptions

    from ..robot.realtime import RealtimeError, enter_realtime_from_env, freeze_heap, thaw_heap

    program = args is None
    argv = sys.argv if args is None else args
    stop = threading.Event()
    installed: dict[int, Any] = {}
    received: list[int] = []

    def ignore_signals() -> None:
        for sig in _SHUTDOWN_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def on_signal(signum: int, frame: Any) -> None:
        ignore_signals()  # first thing: a second signal must find nothing to interrupt
        received.append(signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in _SHUTDOWN_SIGNALS:
            installed[sig] = signal.signal(sig, on_signal)
    try:
        try:
            rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
        except RCLError as exc:  # malformed --ros-args
            print(f"{name}: {one_line(exc)}", file=sys.stderr)
            return 2
        rclpy.get_default_context().on_shutdown(stop.set)
        built = spinner = None
        watchdog: threading.Timer | None = None
        try:
            try:
                executor_kind()  # a bad STRANDS_MESH_EXECUTOR is a refused configuration
                # real-time when asked (docs/safety.md), before the node starts its threads:
                # they inherit it
                if rt := enter_realtime_from_env():
                    get_logger(name).info(rt)
            except (ValueError, RealtimeError) as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 2
            try:
                built = build(argv)
            except errors as exc:
                print(f"{name}: {one_line(exc)}", file=sys.stderr)
                return 2
            if program:  # a process of its own; never the heap of a caller that embeds this
                freeze_heap()  # no full garbage collection walks the start-up objects during an e-stop
            if stop.is_set():
                pass  # asked to stop while starting
            elif isinstance(built, Node):
                executor = make_executor()
                executor.add_node(built)
                spinner = BackgroundSpin(executor, f"{name}-spin", on_exit=stop.set)
            else:
                built.start(on_exit=stop.set)  # the fleet host spins its robots itself
            # In ticks: a signal the kernel delivers to one of rclpy's or Zenoh's threads runs its
            # Python handler only once the main thread executes bytecode, which a bare wait()
            # never does (seen as a ~1-in-10 hang after SIGTERM in a process with Zenoh threads).
            while not stop.wait(0.2):
                pass
        finally:
            if received:
                get_logger(name).info(f"{signal.Signals(received[0]).name}: shutting down")
            if installed:
                ignore_signals()
            watchdog = threading.Timer(SHUTDOWN_GRACE, _overdue, (name,))
            watchdog.daemon = True
            watchdog.start()
            if program:
                thaw_heap()
                # The timer needs the GIL; a thread stuck in C code holding it (a DDS or rcl
                # destructor) would keep it from ever running. faulthandler's watchdog is a C
                # thread: a second later it prints every thread's stack, naming what hung, and
                # exits 1 without the GIL.
                faulthandler.dump_traceback_later(SHUTDOWN_GRACE + 1.0, exit=True)
            try:
                if spinner is not None:
                    spinner.stop()
                if built is not None:
                    release = getattr(built, "destroy_node", None) or built.close  # a Node, or the fleet host
                    release()
            finally:
                rclpy.try_shutdown()
                if not program:
                    watchdog.cancel()
        return 0
    finally:
        if not program:
            for sig, previous in installed.items():
                signal.signal(sig, previous)
