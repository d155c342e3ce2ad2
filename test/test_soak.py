"""The short soak (bench/soak.py with small numbers): 10 robots in 2 processes for ~20 s of state,
command and broadcast traffic; nothing lost, nothing run twice, nothing unanswered, memory flat."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import soak

RSS_GROWTH_BOUND_MB = 120.0
"""Generous: a robot process starts at ~70 MB and its allocator and Zenoh buffer pools settle in
steps of ~25 MB in the first seconds; a leak of one message per state (~200/s) would pass this
over 20 s only if each leaked under ~30 KB, so the long soak (bench/soak.py) is the real check."""


@pytest.mark.timeout(180)
def test_short_soak_loses_nothing_runs_nothing_twice_answers_everything():
    t0 = time.monotonic()
    res = soak.run_soak(robots=10, duration=20.0, procs=2, rate=20.0, bcast_period=1.0, state_hz=20.0,
                        timeout=20.0, rss_samples=10, seed=1,
                        log=lambda s: print(f"{time.monotonic() - t0:6.1f} s  {s}"))
    print(res.summary())
    assert not res.crashed, res.crashed
    # state: every seq from first to last heard, per robot
    assert res.states_received >= 10 * 20 * 20 * 0.5, res.summary()  # the stream really flowed
    assert res.states_lost == 0 and res.states_duplicated == 0, res.summary()
    # commands: each answered exactly once by its robot
    assert res.commands_sent >= 200, res.summary()
    assert res.unanswered == 0 and res.duplicate_responses == 0, res.summary()
    assert res.commands_ok == res.commands_sent, res.summary()
    # executions: every counted skill call ran exactly once on its robot, nothing else ran
    assert res.executions_expected > 0
    assert res.duplicated_executions == 0 and res.phantom_executions == 0 and res.missing_executions == 0, res.summary()
    # broadcasts: answered by every robot
    assert res.broadcasts_sent >= 10 and res.broadcast_missing == 0, res.summary()
    assert res.ok
    for name in res.rss:
        if name.startswith("host"):
            start, _, end = res.rss_points(name)
            assert end - start < RSS_GROWTH_BOUND_MB, f"{name}: RSS {start:.0f} -> {end:.0f} MB\n{res.summary()}"
