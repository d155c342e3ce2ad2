"""The frozen-peer rule inside the peer core (strands_mesh_ros.robot.peer_core), with a test
clock: a robot counts its silence as its peers hear it, so a beat it built but did not send in
time never counts (``PeerCore.beat``). The same rule with real processes, SIGSTOP and real Zenoh,
on a mesh robot and a ROS robot behind the bridge: test_faults.py."""

from __future__ import annotations

import time

import pytest

from strands_mesh_ros.contract.keys import KeySpace
from strands_mesh_ros.contract.payloads import CommandEnvelope, new_turn_id
from strands_mesh_ros.drivers.mock import MockDriver
from strands_mesh_ros.robot.peer_core import BEAT_HANDOFF, PeerCore
from strands_mesh_ros.robot.runtime import Robot
from strands_mesh_ros.robot.safety import AuditLog

TIMEOUT = 1.5  # the mesh's peer timeout


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.stall_next_build = 0.0  # s the next presence build takes (a freeze inside it)

    def __call__(self) -> float:
        return self.now

    def building(self) -> dict:  # the core's presence_extra: runs while a beat is built
        self.now, self.stall_next_build = self.now + self.stall_next_build, 0.0
        return {}


@pytest.fixture
def core(tmp_path):
    clock = Clock()
    c = PeerCore("arm1", Robot(MockDriver("arm1")), KeySpace("strands"), audit=AuditLog("arm1", tmp_path),
                 peer_timeout=TIMEOUT, clock=clock, presence_extra=clock.building)
    c.clock = clock
    sent = []
    c.beat(sent.append)  # the peers heard this beat: the silence counts from here
    assert len(sent) == 1
    return c


def status(core: PeerCore, stamped: float):
    """The answer to a ``status`` command its caller stamped at wall time ``stamped``."""
    answers = []
    env = CommandEnvelope(sender_id="op", turn_id=new_turn_id(), command={"action": "status"}, timestamp=stamped)
    core.handle_command(env.to_json(), answers.append)
    assert len(answers) == 1
    return answers[0].response


def advance(core: PeerCore, dt: float):
    def send(_pr) -> None:
        core.clock.now += dt
    return send


def test_a_beat_sent_at_once_counts(core):
    core.clock.now += 0.5
    core.beat(advance(core, 0.0))
    core.clock.now += TIMEOUT - 0.1  # 1.9 s after the first beat, 1.4 s after this one
    assert status(core, time.time() - 1.0).status == "done"
    assert core.thawed_at == 0.0


def test_frozen_while_building_a_beat_the_silence_is_noted_before_it_goes_out(core):
    """Frozen 1.2 s while building a beat: its peers heard nothing for 1.7 s and told callers
    ``peer lost``. The robot counts 1.7 s too, refuses what they sent meanwhile, and notes it
    before the beat goes out, so a command sent by a caller who heard that beat runs."""
    core.clock.now += 0.5
    core.clock.stall_next_build = 1.2  # SIGSTOP inside the build, SIGCONT 1.2 s later
    noted_before_send = []
    core.beat(lambda _pr: noted_before_send.append(core.thawed_at > 0.0))
    assert noted_before_send == [True], "the beat went out before the silence was noted"
    refused = status(core, time.time() - 1.0)  # sent while the robot was frozen
    assert refused.status == "refused" and "unresponsive" in refused.error and "not run" in refused.error
    assert status(core, time.time()).status == "done"  # sent by a caller who heard the beat


def test_frozen_while_sending_a_beat_it_does_not_count(core):
    core.clock.now += 0.5
    core.beat(advance(core, 1.2))  # SIGSTOP before the bytes left, SIGCONT 1.2 s later
    assert core.thawed_at > 0.0, "a silence of 1.7 s by its peers' count was not noted"
    assert status(core, time.time() - 1.0).status == "refused"


def test_frozen_after_the_beat_went_out_counts_from_that_beat(core):
    core.clock.now += 0.5
    core.beat(advance(core, 0.0))
    core.clock.now += 1.2  # frozen after sending: its peers heard the beat
    assert status(core, time.time() - 1.0).status == "done"
    assert core.thawed_at == 0.0


def test_a_late_beat_after_a_short_stall_refuses_nothing(core):
    """A beat sent 0.1 s late does not count, but the silence from the beat before is 0.6 s:
    nothing is refused (the rule costs something only past the peer timeout)."""
    core.clock.now += 0.5
    core.beat(advance(core, BEAT_HANDOFF * 2))
    assert core.thawed_at == 0.0
    assert status(core, time.time() - 1.0).status == "done"
    core.clock.now += TIMEOUT - 0.5  # 1.6 s after the last beat that counted, 1.1 s after the late one
    core.tick()
    assert core.thawed_at > 0.0


def test_a_beat_whose_send_failed_does_not_count(core):
    core.clock.now += 0.5

    def fail(_pr) -> None:
        raise OSError("session closed")

    with pytest.raises(OSError):
        core.beat(fail)
    core.clock.now += 1.2  # 1.7 s after the last beat sent
    assert status(core, time.time() - 1.0).status == "refused"
