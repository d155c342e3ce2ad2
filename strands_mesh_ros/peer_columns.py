"""The peer table of ``strands-mesh peers`` and of ``up``'s live view, at any width.

Columns are kept whole in priority order — peer, e-stop, model, task, kind, ROS namespace, via,
age, host, token — and skills come last, cut with an ellipsis: at a narrow width (80 columns,
or piped, where rich uses ``$COLUMNS``) the lowest-priority columns are left out rather than
every column squashed to a blank header (docs/cli.md).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from rich.markup import escape
from rich.table import Table

COLUMNS: list[tuple[str, Callable[[Any], str], int]] = [
    ("peer", lambda p: p.peer_id, 0),
    ("kind", lambda p: p.peer_type, 4),  # the peer kind: sim, robot, bridge, agent
    ("model", lambda p: p.robot_type, 2),  # the robot model (arm6, diffbot), or the agent's role
    ("e-stop", lambda p: p.estop_state, 1),
    ("task", lambda p: p.presence.task_status or "", 3),
    ("ros", lambda p: p.presence.ros.namespace if p.presence.ros else "", 5),
    ("via", lambda p: p.via or "", 6),
    ("host", lambda p: p.hostname, 8),
    ("age s", lambda p: f"{p.age:.1f}", 7),
    ("token", lambda p: "✓" if p.live_token else "–", 9),
    ("skills", lambda p: ", ".join(s.name for s in p.presence.skills), 10),
]
"""(header, cell of a :class:`~strands_mesh_ros.mesh.peers.PeerInfo`, priority: 0 first)."""

SKILLS_MIN = 12
"""The skills column is shown only with room for this many characters."""

_ESTOP_STYLE = {"LOCKED OUT": "[bold white on red]LOCKED OUT[/]", "ok": "[green]ok[/]"}


def peers_table(peers: dict, width: int, *, title: str, hide_kinds: Iterable[str] = ()) -> Table:
    """A rich Table of ``peers`` (id -> PeerInfo) that fits ``width`` terminal columns.

    Args:
        peers: the peers to show, by id (shown sorted by id).
        width: terminal columns available (>= 20 sensible).
        title: the table's title.
        hide_kinds: ``robot_type`` values (the model column) left out, e.g. the CLI's own peers.
    """
    hidden = set(hide_kinds)
    rows = [peers[pid] for pid in sorted(peers) if peers[pid].robot_type not in hidden]
    cells = [[fn(p) for _, fn, _ in COLUMNS] for p in rows]
    need = [max([len(h)] + [len(r[i]) for r in cells]) for i, (h, _, _) in enumerate(COLUMNS)]
    used = 1  # the table's left border
    shown: set[int] = set()
    for i in sorted(range(len(COLUMNS)), key=lambda i: COLUMNS[i][2]):
        header = COLUMNS[i][0]
        cost = (min(need[i], SKILLS_MIN) if header == "skills" else need[i]) + 3  # padding and border
        if used + cost <= width:
            shown.add(i)
            used += cost
    t = Table(title=title, expand=False)
    for i, (header, _, _) in enumerate(COLUMNS):
        if i in shown:
            room = max(SKILLS_MIN, width - used + min(need[i], SKILLS_MIN)) if header == "skills" else None
            t.add_column(header, no_wrap=True, overflow="ellipsis", max_width=room)
    for r in cells:
        t.add_row(*[_ESTOP_STYLE.get(c, c) if COLUMNS[i][0] == "e-stop" else escape(c)
                    for i, c in enumerate(r) if i in shown])
    return t
