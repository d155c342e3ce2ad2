"""Every test's ROS domain is its own across processes (``ros_helpers.new_domain``).

Each test here points the allocator at a lock folder and a range of ids of its own, so it
neither takes nor waits for the domains of the suite it runs in, nor of another run on the
machine. The other holder is a real second process.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import ros_helpers
from helpers import python_proc

HERE = Path(__file__).resolve().parent
IDS = range(300, 304)  # no real ROS domain: the suite's own allocations never land here

_HOLDER = """
import sys
sys.path.insert(0, {here!r})
from pathlib import Path
import ros_helpers as r
r.DOMAIN_LOCK_DIR, r.DOMAINS = Path({folder!r}), range({start}, {stop})
got = []
while True:
    try:
        got.append(r.new_domain())
    except RuntimeError as e:
        print("FULL", " ".join(map(str, sorted(got))), "|", e, flush=True)
        break
sys.stdin.read()  # hold them until the test closes stdin or kills this process
"""


@pytest.fixture
def private(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "domains"
    monkeypatch.setattr(ros_helpers, "DOMAIN_LOCK_DIR", folder)
    monkeypatch.setattr(ros_helpers, "DOMAINS", IDS)
    return folder


def _holder(folder: Path):
    return python_proc("-c", _HOLDER.format(here=str(HERE), folder=str(folder), start=IDS.start, stop=IDS.stop))


def test_a_domain_held_by_one_process_is_never_handed_to_another_until_that_process_dies(private):
    mine = {ros_helpers.new_domain(), ros_helpers.new_domain()}
    other = _holder(private)
    try:
        line = other.wait_line("FULL", 60)
        theirs = set(map(int, line.split("|")[0].split()[1:]))
        assert theirs == set(IDS) - mine, line  # all the others, none of mine
        assert f"every ROS domain in {IDS.start}..{IDS.stop - 1} is held" in line and str(private) in line, line
        with pytest.raises(RuntimeError, match="every ROS domain in 300..303 is held"):
            ros_helpers.new_domain()
        other.signal(signal.SIGKILL)  # the kernel drops a dead process's locks: no stale holder
        other.p.wait(30)
        assert ros_helpers.new_domain() in theirs
    finally:
        other.close()
        for d in [d for d in ros_helpers._held if d in IDS]:
            ros_helpers.release_domain(d)


def test_a_domain_released_moments_ago_is_handed_out_again_only_when_no_other_is_free(private, monkeypatch):
    """A test's processes may still be exiting on the domain it just gave back."""
    import time

    private.mkdir()
    (private / f"{IDS[0]}.lock").write_text(f"{time.time():.3f}")  # given back just now, by someone
    (private / f"{IDS[1]}.lock").write_text(f"{time.time() - 2 * ros_helpers.DOMAIN_COOLDOWN:.3f}")  # long ago
    monkeypatch.setattr(ros_helpers, "_next", 0)  # the search starts at IDS[0]
    got = [ros_helpers.new_domain() for _ in range(len(IDS))]
    try:
        assert got == [*IDS[1:], IDS[0]]  # the cooling one last, not refused
    finally:
        for d in got:
            ros_helpers.release_domain(d)
    assert float((private / f"{IDS[0]}.lock").read_text()) > time.time() - 5  # release notes when


def test_releasing_a_domain_this_process_does_not_hold_names_it(private):
    with pytest.raises(KeyError, match="303"):
        ros_helpers.release_domain(303)


def test_every_test_runs_in_a_ros_domain_of_its_own(ros_domain):
    import os

    assert os.environ["ROS_DOMAIN_ID"] == str(ros_domain)
    assert ros_domain in ros_helpers.DOMAINS and ros_domain in ros_helpers._held
