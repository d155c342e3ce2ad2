"""Link-loss watchdog: halt and latch a robot that no longer hears its supervising operator(s).

The industrial norm beside a network e-stop: VDA 5050 robots track their connection to master
control and stop on its loss; wireless e-stop receivers treat a lost radio link as a stop. Here a
robot configured with operator peer ids and a timeout ``T`` halts and latches (the e-stop's halt
and lockout, audited) once *none* of those operators has been heard for ``T`` s. One fresh
operator is enough: several operators are redundant supervisors.

What counts as a heartbeat: the operator's **presence** (CONTRACT.md: periodic, 2 Hz), not its
liveliness token. A frozen (SIGSTOP) operator keeps its token until the Zenoh link lease
expires (10 s by default, ENVIRONMENT.md), while its presence stops at once; a killed one stops
both. A mesh robot reads the age of each operator's last presence from its peer table; a ROS
robot reads it from the bridge's ``/mesh/peers`` (each entry's ``age``), so the bridge itself is
part of the link it supervises.

Arming: the watchdog is armed by the first heartbeat of any operator, and disarmed by a trip
until an operator is heard again. A robot whose operator was never heard is *waiting*, not
halted: fleets start in any order, and a robot halted from boot would need a signed resume on
every start; what the watchdog supervises is the loss of a link that existed. Resume after a
trip is the normal resume path (the lockout is an ordinary e-stop lockout).

This is a supplementary software function, NOT the hardwired emergency stop of IEC 60204-1 /
ISO 13850 (docs/safety.md). Pure Python: no zenoh, no rclpy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from ..contract.keys import InvalidPeerId, check_peer_id

HEARTBEAT_PERIOD = 0.5
"""s between two presence beats of a peer (CONTRACT.md: presence at 2 Hz)."""

MIN_TIMEOUT = 2 * HEARTBEAT_PERIOD
"""Shortest watchdog timeout accepted, s: two presence periods. Shorter, a live operator whose
beat is a little late (a busy host, a relay through the bridge's 2 Hz ``/mesh/peers``) would
trip it."""


@dataclass(frozen=True)
class WatchdogConfig:
    """A robot's link-loss watchdog settings.

    Attributes:
        operators: peer ids of the supervising operators (at least one; valid peer ids).
        timeout: s without a heartbeat from any of them before the robot halts, finite and
            >= :data:`MIN_TIMEOUT`.

    Raises:
        ValueError: no operator, a bad peer id, or a bad timeout (the message names it).
    """

    operators: tuple[str, ...]
    timeout: float

    def __post_init__(self) -> None:
        ops = tuple(self.operators)
        if not ops:
            raise ValueError("watchdog: no operator peer ids given; name the operator(s) whose heartbeat the "
                             "robot needs, or leave the watchdog off")
        for op in ops:
            try:
                check_peer_id(op, "watchdog operator")
            except InvalidPeerId as exc:
                raise ValueError(str(exc)) from None
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
            raise ValueError(f"watchdog timeout must be a number of seconds, not {self.timeout!r}")
        if not math.isfinite(self.timeout) or self.timeout < MIN_TIMEOUT:
            raise ValueError(f"watchdog timeout {self.timeout!r} s: must be finite and at least {MIN_TIMEOUT} s "
                             f"(two presence periods at 2 Hz), or a live operator would trip it")
        object.__setattr__(self, "operators", tuple(dict.fromkeys(ops)))
        object.__setattr__(self, "timeout", float(self.timeout))

    @classmethod
    def from_options(cls, operators: Iterable[str] | str | None, timeout: float | None) -> "WatchdogConfig | None":
        """The config for a pair of user options (fleet YAML, ROS parameters, CLI), or None when
        the watchdog is off (no operators and no timeout).

        Raises:
            ValueError: one of the two given without the other, or bad values.
        """
        if isinstance(operators, str):
            operators = [o.strip() for o in operators.split(",") if o.strip()]
        ops = tuple(operators or ())
        if not ops and timeout in (None, 0, 0.0):
            return None
        if not ops:
            raise ValueError(f"watchdog timeout {timeout!r} s given without watchdog operators: name the operator "
                             f"peer id(s) to supervise the robot")
        if timeout is None:
            raise ValueError(f"watchdog operators {list(ops)} given without a watchdog timeout (s)")
        return cls(ops, timeout)


class LinkWatchdog:
    """The watchdog's rule and timing (see the module docstring). Thread-safe.

    Transports feed it :meth:`heard` (monotonic s) and call :meth:`check` often (every 50 ms
    or so); ``check`` returns the halt reason once per loss.

    Args:
        config: the operators and timeout.
    """

    def __init__(self, config: WatchdogConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # operator -> monotonic s of its latest heartbeat
        self._armed = False

    @property
    def operators(self) -> tuple[str, ...]:
        return self.config.operators

    @property
    def armed(self) -> bool:
        """True once an operator was heard, until the next trip."""
        return self._armed

    def heard(self, operator: str, at: float) -> bool:
        """Note a heartbeat of ``operator`` at monotonic time ``at`` (s; may lie in the past:
        the heartbeat's receipt, not its reading). Others' heartbeats are ignored.
        Returns True when this heartbeat armed the watchdog."""
        if operator not in self.config.operators:
            return False
        with self._lock:
            if at <= self._last.get(operator, -math.inf):
                return False
            self._last[operator] = at
            if self._armed:
                return False
            self._armed = True
            return True

    def silent_for(self, now: float) -> float:
        """s since the latest heartbeat of any operator (infinite when none was heard)."""
        with self._lock:
            return now - max(self._last.values(), default=-math.inf)

    def check(self, now: float) -> str | None:
        """The halt reason when the armed watchdog has heard no operator for the timeout at
        monotonic time ``now``; the watchdog then disarms until an operator is heard again
        (so one loss halts once). None otherwise."""
        with self._lock:
            if not self._armed:
                return None
            silent = now - max(self._last.values())
            if silent <= self.config.timeout:
                return None
            self._armed = False  # kept _last: a stale reading of an old heartbeat never re-arms it
        return (f"link loss: no heartbeat from {', '.join(self.config.operators)} for "
                f"{round(self.config.timeout * 1000)} ms")
