"""Fixtures shared by the test suite: an isolated mesh per test (own prefix, own port)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import free_port  # noqa: E402


@pytest.fixture(autouse=True)
def _audit_dir(tmp_path, monkeypatch):
    """Audit logs go to the test's temp dir, never the user's home."""
    monkeypatch.setenv("STRANDS_MESH_AUDIT_DIR", str(tmp_path / "audit"))
    return tmp_path / "audit"


@pytest.fixture(autouse=True)
def key_prefix(monkeypatch) -> str:
    """Every test gets its own mesh key prefix (``$STRANDS_MESH_PREFIX``, inherited by its
    subprocesses and read by ROS robot nodes), so no two tests, nor a fleet running on the
    machine, ever share a fleet."""
    prefix = "t" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("STRANDS_MESH_PREFIX", prefix)
    return prefix


@pytest.fixture(autouse=True)
def ros_domain(monkeypatch) -> int:
    """Every test gets a ROS domain of its own (``ros_helpers.new_domain``: no other test, nor
    another test run on this machine, holds it meanwhile) as ``$ROS_DOMAIN_ID``, inherited by
    its subprocesses and the default of ``ros_helpers.RosEnv``; given back when the test ends."""
    from ros_helpers import own_domain

    with own_domain() as domain:
        monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
        yield domain


@pytest.fixture
def net(key_prefix):
    """A private mesh: a unique key prefix and a hub endpoint on a free loopback port.

    The first :class:`Mesh` made with ``net.hub()`` listens; others (``net.member()`` and
    subprocesses given ``net.peer_args``) connect to it; multicast scouting is off so tests
    never see each other.
    """
    from strands_mesh_ros.mesh.config import MeshConfig

    class Net:
        prefix = key_prefix
        port = free_port()
        endpoint = f"tcp/127.0.0.1:{port}"

        def hub(self, **kw) -> MeshConfig:
            return MeshConfig(prefix=self.prefix, listen=(self.endpoint,), multicast_scouting=False, **kw)

        def member(self, **kw) -> MeshConfig:
            return MeshConfig(prefix=self.prefix, connect=(self.endpoint,), multicast_scouting=False, **kw)

        @property
        def peer_args(self) -> list[str]:
            return ["--prefix", self.prefix, "--connect", self.endpoint, "--no-multicast"]

    return Net()
