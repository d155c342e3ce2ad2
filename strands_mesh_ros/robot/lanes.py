"""Skill lanes: per-robot serialisation of skill calls.

Calls on the same lane of one robot run one at a time, in arrival order (one worker thread
per lane, FIFO). Calls on different lanes, and lane-less calls, run concurrently. A preempt
(stop or e-stop) cancels the running call of every lane and makes every queued call return
``refused`` without running.

Each :class:`LaneScheduler` belongs to one robot instance; nothing here is global, and no
lock is bound to an event loop (threads only), so several robots share a process safely.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .driver import Clock, Preempted, Skill, SkillContext

log = logging.getLogger(__name__)

Status = Literal["done", "error", "refused"]


@dataclass
class CallOutcome:
    """How one skill call ended.

    Attributes:
        status: ``done``, ``error`` (the skill raised) or ``refused`` (preempted / never ran).
        result: the skill's JSON-able return value when ``done``.
        error: what went wrong, for ``error`` / ``refused``.
        started, ended: ``time.monotonic()`` stamps (s); ``started`` is None if it never ran.
    """

    skill: str
    lane: str | None
    status: Status
    result: Any = None
    error: str | None = None
    started: float | None = None
    ended: float = field(default_factory=time.monotonic)


LANELESS_WORKERS = 8
"""Threads for lane-less skills per robot (they are short reads such as get_state)."""


class LaneScheduler:
    """Runs skill calls on lanes. Thread-safe.

    Args:
        owner: a label for thread names and logs (the robot id).
        clock: the robot's clock, handed to every call's :class:`SkillContext` (default: the
            wall clock).
    """

    def __init__(self, owner: str = "", clock: Clock | None = None) -> None:
        self._owner = owner
        self._clock = clock
        self._lock = threading.Lock()
        self._lanes: dict[str, ThreadPoolExecutor] = {}
        self._laneless = ThreadPoolExecutor(LANELESS_WORKERS, thread_name_prefix=f"{owner}-skill")
        self._live: set[SkillContext] = set()
        self._running: dict[str, str] = {}
        self._after: list[tuple[set[SkillContext], Callable[[], None]]] = []  # (calls left, then)
        self._closed = False

    def submit(self, skill: Skill, args: dict[str, Any]) -> Future[CallOutcome]:
        """Queue ``skill(**args)`` on its lane; the future resolves to a :class:`CallOutcome`.

        Raises:
            RuntimeError: the scheduler was closed.
        """
        ctx = SkillContext(clock=self._clock)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"robot {self._owner!r} is shut down")
            self._live.add(ctx)
            if skill.lane is None:
                executor = self._laneless
            else:
                executor = self._lanes.get(skill.lane)
                if executor is None:
                    executor = ThreadPoolExecutor(1, thread_name_prefix=f"{self._owner}-{skill.lane}")
                    self._lanes[skill.lane] = executor
        return executor.submit(self._run, skill, args, ctx)

    def _run(self, skill: Skill, args: dict[str, Any], ctx: SkillContext) -> CallOutcome:
        try:
            if ctx.cancelled:
                return CallOutcome(skill.name, skill.lane, "refused", error=f"not run: {ctx.reason}")
            started = time.monotonic()
            if skill.lane:
                with self._lock:
                    self._running[skill.lane] = skill.name
            try:
                result = skill.fn(ctx, **args)
            except Preempted as exc:
                return CallOutcome(skill.name, skill.lane, "refused", error=f"preempted: {exc}", started=started)
            except Exception as exc:  # a skill's failure is the caller's answer, never ours
                log.info("%s: skill %s failed: %s", self._owner, skill.name, exc)
                return CallOutcome(
                    skill.name, skill.lane, "error", error=f"{type(exc).__name__}: {exc}", started=started
                )
            finally:
                if skill.lane:
                    with self._lock:
                        self._running.pop(skill.lane, None)
            return CallOutcome(skill.name, skill.lane, "done", result=result, started=started)
        finally:
            with self._lock:
                self._live.discard(ctx)
                for left, _ in self._after:
                    left.discard(ctx)
                due = [then for left, then in self._after if not left]
                self._after = [w for w in self._after if w[0]]
            for then in due:
                try:
                    then()
                except Exception:  # a failing follow-up must not take the worker thread with it
                    log.exception("%s: follow-up of a preempt failed", self._owner)

    def preempt_all(self, reason: str, then: Callable[[], None] | None = None) -> int:
        """Cancel every running and queued call; returns how many were cancelled.

        ``then`` runs once every call cancelled here has ended (on the worker thread of the
        last one; at once, here, when none was running or queued). Why: a cancelled skill
        notices at its next ``ctx.check()``, and one that had just passed it still writes one
        more target; what must follow a preempt (releasing a driver halt) waits for that.
        """
        with self._lock:
            live = set(self._live)
            if then is not None and live:
                self._after.append((set(live), then))
        for ctx in live:
            ctx.cancel(reason)
        if then is not None and not live:
            then()
        return len(live)

    def running(self) -> dict[str, str]:
        """``{lane: skill name}`` of the calls running now."""
        with self._lock:
            return dict(self._running)

    def close(self, reason: str = "robot shut down") -> None:
        """Preempt everything and stop the worker threads."""
        with self._lock:
            self._closed = True
            lanes = list(self._lanes.values())
        self.preempt_all(reason)
        for ex in [*lanes, self._laneless]:
            ex.shutdown(wait=True, cancel_futures=False)
