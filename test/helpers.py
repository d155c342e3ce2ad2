"""Test helpers: see :mod:`strands_mesh_ros.testing`."""

from strands_mesh_ros.testing import Proc, free_port, python_proc, wait_for  # noqa: F401
