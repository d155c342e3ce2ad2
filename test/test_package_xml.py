"""package.xml is a valid format-3 manifest declaring the package's ROS dependencies, and the
interfaces listed in CMakeLists.txt match the files in msg/ and srv/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

catkin_pkg_package = pytest.importorskip(
    "catkin_pkg.package", reason="catkin_pkg not installed (it comes with bootstrap.sh's venv)")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def package():
    pkg = catkin_pkg_package.parse_package(str(REPO / "package.xml"))
    pkg.validate()  # raises InvalidPackage (e.g. on an e-mail catkin_pkg rejects)
    return pkg


def names(deps) -> set[str]:
    return {d.name for d in deps}


def test_identity(package):
    assert package.package_format == 3
    assert package.name == "strands_mesh_ros"
    assert package.version == "0.1.0"
    assert package.licenses == ["Apache-2.0"]
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in {g.name for g in package.member_of_groups}


def test_version_matches_python_distribution(package):
    metadata = pytest.importorskip("importlib.metadata")
    try:
        version = metadata.version("strands_mesh_ros")
    except metadata.PackageNotFoundError:
        pytest.skip("strands_mesh_ros is not pip-installed")
    assert version == package.version


def test_build_dependencies(package):
    assert {"ament_cmake", "ament_cmake_python", "rosidl_default_generators"} <= names(
        package.buildtool_depends)
    interfaces = {"builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs",
                  "trajectory_msgs"}
    assert interfaces <= names(package.build_depends)
    assert interfaces <= names(package.exec_depends)


def test_exec_and_test_dependencies(package):
    assert {"rclpy", "rosidl_default_runtime", "robot_state_publisher", "launch", "launch_ros",
            "rviz2", "python3-numpy", "python3-yaml", "python3-pydantic",
            "python3-jsonschema"} <= names(package.exec_depends)
    assert "rviz2" not in names(package.build_depends)
    assert {"launch_pytest", "python3-pytest"} <= names(package.test_depends)


def test_every_interface_package_the_code_imports_is_declared(package):
    """``from <pkg>.msg import ...`` anywhere in the package needs ``<pkg>`` in package.xml
    (rosdep installs what is declared, not what is imported)."""
    import ast

    imported: dict[str, str] = {}
    for path in sorted((REPO / "strands_mesh_ros").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                    else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for mod in mods:
                top, _, rest = mod.partition(".")
                if rest.split(".")[0] in ("msg", "srv", "action") and top != "strands_mesh_ros":
                    imported.setdefault(top, str(path.relative_to(REPO)))
    assert {"rosgraph_msgs", "sensor_msgs", "std_msgs"} <= set(imported)  # the scan finds them
    declared = names(package.exec_depends) | names(package.build_export_depends)
    missing = {pkg: where for pkg, where in imported.items() if pkg not in declared}
    assert not missing, f"imported but not an exec_depend in package.xml: {missing}"


def test_cmake_interfaces_match_files():
    cmake = (REPO / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"((?:msg|srv)/[A-Za-z0-9]+\.(?:msg|srv))"', cmake))
    on_disk = {p.relative_to(REPO).as_posix()
               for p in [*REPO.glob("msg/*.msg"), *REPO.glob("srv/*.srv")]}
    assert listed == on_disk
