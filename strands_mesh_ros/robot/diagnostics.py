"""A peer's health for ROS diagnostics (``diagnostic_msgs/DiagnosticStatus``), from its presence.

ROS tools read a robot's health on ``/diagnostics`` (REP-107; ``rqt_robot_monitor``,
``diagnostic_aggregator``): one status per device, with a level, a one-line message and
key/value pairs. A robot node reports its own, from the presence it beats; the bridge reports
every other mesh peer it hears (mesh-native robots, strands-robots peers, agents), so the whole
fleet shows in one monitor. One rule for both (:func:`peer_diagnostic`), so a mesh robot and a
ROS robot with the same state read the same. Pure logic: the ROS message is made in
``ros/convert.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..contract.payloads import Presence

OK, WARN, ERROR, STALE = 0, 1, 2, 3
"""``diagnostic_msgs/DiagnosticStatus`` levels (its constants OK, WARN, ERROR, STALE)."""

MESSAGE_MAX = 200
"""Characters of a status message; longer ones (a long e-stop reason) end in an ellipsis."""


@dataclass(frozen=True)
class Diagnostic:
    """One device's status.

    Attributes:
        level: :data:`OK`, :data:`WARN`, :data:`ERROR` or :data:`STALE`.
        name: the status's name (``"<node>: <what>"``, as ``diagnostic_updater`` names them).
        message: one line, at most :data:`MESSAGE_MAX` characters.
        hardware_id: the peer (robot) id.
        values: ``(key, value)`` pairs, both strings.
    """

    level: int
    name: str
    message: str
    hardware_id: str
    values: tuple[tuple[str, str], ...]


def _cut(text: str) -> str:
    text = " ".join(text.split())  # one line
    return text if len(text) <= MESSAGE_MAX else text[:MESSAGE_MAX - 1] + "…"


def peer_diagnostic(presence: Presence, *, name: str, age: float = 0.0, stale_after: float) -> Diagnostic:
    """The status of the peer whose last presence is ``presence``, heard ``age`` s ago.

    Levels: :data:`STALE` when ``age`` > ``stale_after`` s (the peer timeout: it may be gone);
    else :data:`ERROR` while an e-stop lockout is latched (the message names who and why); else
    :data:`OK`, the message being the peer's task, or ``idle``. A robot that does not report its
    lockout (a strands-robots peer) is OK, with ``e-stop: ?`` among the values.

    Raises:
        ValueError: ``age`` or ``stale_after`` is negative or not finite.
    """
    for what, v in (("age", age), ("stale_after", stale_after)):
        if not (math.isfinite(v) and v >= 0.0):
            raise ValueError(f"peer_diagnostic: {what} must be a finite number of s >= 0, got {v!r}")
    lockout: dict[str, Any] = presence.lockout or {}
    values = [("peer kind", presence.peer_type), ("model", presence.robot_type),
              ("e-stop", presence.estop_state), ("task", presence.task_status or ""),
              ("age s", f"{age:.1f}"), ("host", presence.hostname),
              ("skills", ", ".join(s.name for s in presence.skills))]
    if presence.ros is not None:
        values.append(("ros namespace", presence.ros.namespace))
    if presence.via:
        values.append(("via", presence.via))
    if presence.locked_out:
        values += [(f"lockout {k}", str(lockout[k])) for k in ("issuer", "reason", "t", "epoch") if lockout.get(k)]
    if age > stale_after:
        level, message = STALE, f"no presence for {age:.1f} s"
    elif presence.locked_out:
        who = lockout.get("issuer") or "unknown"
        why = lockout.get("reason") or ""
        level, message = ERROR, f"e-stop latched by {who}" + (f": {why}" if why else "")
    else:
        level, message = OK, presence.task_status or "idle"
    return Diagnostic(level, name, _cut(message), presence.id, tuple((k, str(v)) for k, v in values))
