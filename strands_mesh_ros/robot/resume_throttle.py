"""The resume brute-force throttle: bad resume attempts earn a cool-down.

strands-robots 0.5.3 (``core.py`` ``_note_resume_failure``) counts consecutive failed resume
attempts from anyone; at ``STRANDS_MESH_RESUME_MAX_FAILS`` (default 5) it refuses every resume
for ``STRANDS_MESH_RESUME_BACKOFF_S`` (default 30 s); a success resets the count. Ours is at
least as strict: the same consecutive rule over all senders, and also per sender (its id as
it names itself): ``MAX_FAILS`` failures from one sender within ``WINDOW`` s cool that sender
down even when good resumes from others come in between. While cooling down every resume is
refused with a reason that says so and when to retry. The lockout stays latched: refusing a
resume is the safe side.

Pure Python; thread-safe.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque

log = logging.getLogger(__name__)

MAX_FAILS_ENV = "STRANDS_MESH_RESUME_MAX_FAILS"
BACKOFF_ENV = "STRANDS_MESH_RESUME_BACKOFF_S"
MAX_FAILS = 5
"""Bad attempts before the cool-down (0.5.3's default)."""
BACKOFF = 30.0
"""Cool-down, s (0.5.3's default)."""
WINDOW = 60.0
"""s: failures of one sender older than this no longer count (0.5.3's resume freshness window)."""


def _env(name: str, default: float, integer: bool) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = -1
    if not (math.isfinite(value) and value > 0):
        log.warning("%s=%r is not a positive number; using %s", name, raw, default)
        return default
    return value


class ResumeThrottle:
    """Counts bad resume attempts and says when resumes are refused.

    Args:
        max_fails, backoff: default from ``STRANDS_MESH_RESUME_MAX_FAILS`` /
            ``STRANDS_MESH_RESUME_BACKOFF_S``, else :data:`MAX_FAILS` / :data:`BACKOFF`.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, max_fails: int | None = None, backoff: float | None = None, clock=time.monotonic) -> None:
        self.max_fails = int(max_fails or _env(MAX_FAILS_ENV, MAX_FAILS, True))
        self.backoff = float(backoff or _env(BACKOFF_ENV, BACKOFF, False))
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._all_until = 0.0
        self._fails: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}

    def refusal(self, sender: str) -> str | None:
        """Why a resume from ``sender`` is refused now without being checked, or None."""
        now = self._clock()
        with self._lock:
            until = max(self._all_until, self._until.get(sender, 0.0))
        if now < until:
            return (f"resume throttled: too many bad resume attempts ({self.max_fails}); refused for "
                    f"{self.backoff:.0f} s, retry in {until - now:.0f} s")
        return None

    def note(self, sender: str, ok: bool) -> bool:
        """Record an attempt's outcome; True when this failure started a cool-down."""
        now = self._clock()
        with self._lock:
            if ok:
                self._consecutive = 0
                self._fails.pop(sender, None)
                return False
            self._consecutive += 1
            fails = self._fails.setdefault(sender, deque())
            fails.append(now)
            while fails and fails[0] < now - WINDOW:
                fails.popleft()
            started = False
            if self._consecutive >= self.max_fails:
                self._all_until, self._consecutive, started = now + self.backoff, 0, True
            if len(fails) >= self.max_fails:
                self._until[sender], started = now + self.backoff, True
                fails.clear()
            if len(self._fails) > 4096:  # bound the memory a stream of made-up sender ids takes
                for stale in [s for s, d in self._fails.items() if not d or d[-1] < now - WINDOW]:
                    del self._fails[stale]
                for stale in [s for s, u in self._until.items() if u < now]:
                    del self._until[stale]
            return started
