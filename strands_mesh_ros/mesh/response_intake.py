"""Reading one mesh peer's responses: the caller that waits for an answer reads them itself.

Responses to a peer arrive on ``P/{me}/response/**``. With a Python callback per sample, each
answer ran on one of Zenoh's threads, which took the GIL, decoded the answer, set the caller's
future and woke the caller: two thread hand-offs per round trip, measured as the largest part of
``Mesh.send``'s cost over a raw Zenoh query (bench/bench_mesh.py rtt; docs/benchmarks.md, issue
12). Here the answers go into Zenoh's FIFO channel instead, and whoever waits for one reads the
channel ("leader/follower": one reader at a time, any thread; the others wait to be handed their
answer or the reader's role). A blocking ``send`` then wakes straight from the channel on its
own answer, as a raw ``session.get`` does.

Who reads, in order of preference:

* a thread waiting in :meth:`ResponseIntake.wait` (a blocking ``send`` or ``broadcast``);
* the intake's own reader thread, started on the first call nobody waits for (``send_async``,
  the e-stop's ``stop`` broadcast), while such calls are open; a waiting thread makes it give
  up the role with a wake sample put on :attr:`ResponseIntake.wake_key` (delivered to this
  session only);
* the process's drain thread, every :data:`DRAIN_INTERVAL` s, for an idle channel: stray or
  hostile samples are read (and refused, counted and logged by the dispatch) rather than left
  to fill the channel, whose back-pressure would stall the session's link.

Samples are dispatched one at a time, in arrival order, as Zenoh's callback did.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable

log = logging.getLogger(__name__)

DRAIN_INTERVAL = 0.25
"""How often (s) the drain thread reads channels nobody else reads. Python dispatches a few
tens of thousands of samples a second, which any flood beyond that back-pressures in either
design; this bounds how long a stray sample waits to be refused and logged."""

WAKE_CHUNK = "~wake"
"""Start of the last chunk of a wake key, ``P/{me}/response/~wake-<random>``: ``~`` is in no turn
id or peer id, so no answer can use it, and the random part keeps another session from putting
on it (anything else on ``~...`` is refused as a bad response)."""

class ResponseIntake:
    """One peer's response channel and the rule of who reads it.

    Args:
        channel: the Zenoh FIFO channel handler of the ``P/{me}/response/**`` subscriber.
        dispatch: handles one sample (the peer's ``_on_response``); must not raise (an
            exception is logged and the reading goes on).
        poke: puts one sample on :attr:`wake_key` for this session only.
        wake_key: the key ``poke`` puts on; its samples are never dispatched.
        name: for the reader thread's name and log lines.
    """

    def __init__(self, channel: Any, dispatch: Callable[[Any], None], poke: Callable[[], None], wake_key: str,
                 name: str) -> None:
        self._channel = channel
        self._dispatch_fn = dispatch
        self._poke = poke
        self.wake_key = wake_key
        self._name = name
        self._cv = threading.Condition()
        self._reader: int | None = None  # the ident of the thread reading now
        self._thread_ident: int | None = None  # the intake's own reader thread's
        self._waiting = 0  # threads in wait() for which someone else reads
        self._open_async = 0  # calls nobody waits for, not yet answered
        self._closed = False
        self._thread: threading.Thread | None = None
        _DRAINER.add(self)

    # -- for the command path -------------------------------------------------------------

    def wait(self, done: Callable[[], bool]) -> None:
        """Return once ``done()`` is true, reading the channel meanwhile when no one else does.

        Once the channel is closed (the mesh stopping, whose ``stop`` ends every open call), it
        just waits for ``done()``.
        """
        me = threading.get_ident()
        while not done():
            with self._cv:
                if self._closed:
                    role = "wait"
                elif self._reader is None:
                    self._reader, role = me, "read"
                elif self._reader == me:  # a dispatch on this very thread sends and waits
                    role = "nested"
                else:
                    role = "wait"
                if role == "wait":
                    self._waiting += 1
                    poke = not self._closed and self._reader == self._thread_ident
            if role == "read":
                self._read(done)
                continue
            if role == "nested":
                self._read(done, nested=True)
                continue
            if poke:  # the reader thread gives the role up on its next sample
                self._poke_safely()
            with self._cv:
                try:  # timed: a lost notification costs a slice, never a hang
                    self._cv.wait_for(lambda: done() or (self._reader is None and not self._closed), 0.5)
                finally:
                    self._waiting -= 1
                    if not self._waiting:  # the reader thread may take the role back
                        self._cv.notify_all()

    def async_opened(self) -> None:
        """A call nobody waits for was sent: read its answer (starts the reader thread once)."""
        with self._cv:
            self._open_async += 1
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"{self._name}-responses", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def resolved(self, was_async: bool) -> None:
        """A call ended (answered, timed out, its peer lost, the mesh stopping). Called after its
        future is set. Wakes threads waiting for it, and a waiting reader that may be blocked
        on the channel for an answer that will not come now."""
        me = threading.get_ident()
        if not was_async and self._reader == me and not self._waiting:
            return  # the common case, a waiting reader's own answer: nobody to tell
        with self._cv:
            if was_async:
                self._open_async -= 1
            reader = self._reader
            if self._waiting:
                self._cv.notify_all()
        if reader is not None and reader != me:
            self._poke_safely()

    def close(self) -> None:
        """Stop reading: waiting threads return, the reader thread ends. Idempotent."""
        with self._cv:
            self._closed = True
            reader, thread = self._reader, self._thread
            self._cv.notify_all()
        _DRAINER.discard(self)
        if reader is not None:
            self._poke_safely()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    # -- reading ----------------------------------------------------------------------------

    def _read(self, stop: Callable[[], bool], nested: bool = False) -> bool:
        """Read and dispatch until ``stop()``; the caller holds the role (and keeps it if
        ``nested``). False if the channel closed."""
        ok = True
        try:
            while not stop():
                try:
                    sample = self._channel.recv()
                except Exception:  # zenoh.ZError: the subscriber was undeclared (mesh stopping)
                    with self._cv:
                        self._closed = True
                        self._cv.notify_all()
                    ok = False
                    break
                self._dispatch(sample)
                if self._waiting:
                    with self._cv:
                        self._cv.notify_all()
        finally:
            if not nested:
                with self._cv:
                    self._reader = None
                    self._cv.notify_all()
        return ok

    def _dispatch(self, sample: Any) -> None:
        if str(sample.key_expr) == self.wake_key:
            return
        try:
            self._dispatch_fn(sample)
        except Exception:  # one bad sample must not end the reading, nor reach a caller
            log.exception("%s: response handling failed", self._name)

    def _run(self) -> None:
        """The reader thread: reads while calls nobody waits for are open and no waiting
        thread wants the role."""
        while True:
            with self._cv:
                if not self._cv.wait_for(lambda: self._closed or (
                        self._open_async > 0 and self._reader is None and not self._waiting), 0.5):
                    continue  # timed, as in wait()
                if self._closed:
                    return
                self._reader = self._thread_ident = threading.get_ident()
            if not self._read(lambda: self._closed or self._open_async <= 0 or self._waiting > 0):
                return

    def drain(self) -> None:
        """Read whatever the channel holds now, if no one else reads it (the drain thread)."""
        with self._cv:
            if self._closed or self._reader is not None or self._waiting:
                return
            self._reader = threading.get_ident()
        try:
            while True:
                try:
                    sample = self._channel.try_recv()
                except Exception:  # closed
                    return
                if sample is None:
                    return
                self._dispatch(sample)
        finally:
            with self._cv:
                self._reader = None
                self._cv.notify_all()

    def _poke_safely(self) -> None:
        try:
            self._poke()
        except Exception as exc:  # the session closed under us: the channel closes with it
            log.debug("%s: wake sample not put: %s", self._name, exc)


class _Drainer:
    """The process's one drain thread (see the module docstring), started with the first intake."""

    def __init__(self) -> None:
        self._intakes: "weakref.WeakSet[ResponseIntake]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, intake: ResponseIntake) -> None:
        with self._lock:
            self._intakes.add(intake)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mesh-response-drain", daemon=True)
                self._thread.start()

    def discard(self, intake: ResponseIntake) -> None:
        with self._lock:
            self._intakes.discard(intake)

    def _run(self) -> None:
        tick = threading.Event()
        while not tick.wait(DRAIN_INTERVAL):
            with self._lock:
                intakes = list(self._intakes)
            for intake in intakes:
                intake.drain()


_DRAINER = _Drainer()
