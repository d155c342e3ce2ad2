"""Run a launch file the way ``ros2 launch`` does, where ``ros2cli`` is not installed.

``ros2 launch`` (the ``ros2launch`` package) needs ``ros2cli``, which is not on PyPI; what it
runs, :class:`launch.LaunchService`, is (``scripts/bootstrap.sh`` installs ``launch`` and
``launch_ros`` into the venv from ``../shared/vendor/ros2_launch``, and makes the venv a ROS
prefix: ``lib/strands_mesh_ros/<node>``, ``share/strands_mesh_ros/launch``). So in the
bootstrap venv::

    python -m strands_mesh_ros.ros_launch strands_mesh_ros fleet.launch.py use_robot_state_publisher:=false
    python -m strands_mesh_ros.ros_launch launch/robot.launch.py robot_id:=m1 driver:=mock

take the same arguments as ``ros2 launch strands_mesh_ros fleet.launch.py ...``: a package and
a launch file in its share directory (or a path), then ``name:=value`` launch arguments.
``--show-args`` lists the launch arguments; ``--noninteractive`` (``-n``) makes launch forward
SIGINT to its processes itself (as ``ros2 launch -n``: for a launch that is not in a terminal's
process group); ``--report-processes`` prints one machine-readable line per process start and
exit (``LAUNCH_PROCESS started <name> <pid>`` / ``LAUNCH_PROCESS exited <name> <pid> <code>``).
The exit status is the launch's (0, or 1 when the launch failed, e.g. a launch argument was
refused before anything started).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

USAGE = "python -m strands_mesh_ros.ros_launch [options] (PACKAGE FILE | PATH) [name:=value ...]"
REPORT_PREFIX = "LAUNCH_PROCESS"


def _import_launch():
    try:
        import launch  # noqa: F401
        import launch.launch_description_sources  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            f"ROS 2 launch is not importable ({exc}): it is not on PyPI. In this project's venv run "
            "`bash scripts/bootstrap.sh setup` with ../shared/vendor/ros2_launch present, or source a ROS "
            "install (docs/ros.md).") from None
    if not hasattr(launch, "LaunchService"):  # the repository's launch/ folder as a namespace package
        raise SystemExit("`import launch` found a folder of launch files, not ROS 2 launch: run from another "
                         "directory, or install launch (bash scripts/bootstrap.sh setup)")
    return launch


def find_launch_file(package_or_path: str, file_name: str | None = None) -> Path:
    """The launch file: ``package_or_path`` itself if it is a file (``file_name`` None), else
    ``file_name`` in the package's share directory (found through the ament index, so
    ``AMENT_PREFIX_PATH`` must name the prefix: the bootstrap venv exports ``$VIRTUAL_ENV``).

    Raises:
        FileNotFoundError: no such file, package, or launch file in the package (names them).
    """
    if file_name is None:
        path = Path(package_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"launch file {package_or_path!r} not found")
        return path.resolve()
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        share = Path(get_package_share_directory(package_or_path))
    except PackageNotFoundError:
        raise FileNotFoundError(
            f"package {package_or_path!r} not found in the ament index (AMENT_PREFIX_PATH="
            f"{os.environ.get('AMENT_PREFIX_PATH', '')!r}); in the bootstrap venv: "
            "export AMENT_PREFIX_PATH=$VIRTUAL_ENV") from None
    direct = share / "launch" / file_name
    if direct.is_file():
        return direct
    found = sorted(p for p in share.rglob(file_name) if p.is_file())
    if not found:
        raise FileNotFoundError(f"no launch file {file_name!r} in {share}")
    return found[0]


def parse_launch_arguments(words: list[str]) -> list[tuple[str, str]]:
    """``name:=value`` words as (name, value) pairs.

    Raises:
        ValueError: a word without ``:=`` or with an empty name.
    """
    out = []
    for word in words:
        name, sep, value = word.partition(":=")
        if not sep or not name:
            raise ValueError(f"launch argument {word!r} is not name:=value")
        out.append((name, value))
    return out


def _report_handlers():
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnProcessExit, OnProcessStart

    def started(event, _context):
        print(f"{REPORT_PREFIX} started {event.action.name} {event.pid}", flush=True)

    def exited(event, _context):
        print(f"{REPORT_PREFIX} exited {event.action.name} {event.pid} {event.returncode}", flush=True)

    return [RegisterEventHandler(OnProcessStart(on_start=started)),
            RegisterEventHandler(OnProcessExit(on_exit=exited))]


def run(path: str | os.PathLike, arguments: list[tuple[str, str]] = (), *, noninteractive: bool = False,
        report_processes: bool = False, debug: bool = False, argv: list[str] | None = None) -> int:
    """Run the launch file with the launch arguments until it ends (or SIGINT); its exit status."""
    launch = _import_launch()
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    service = launch.LaunchService(argv=argv or [], noninteractive=noninteractive, debug=debug)
    entities = _report_handlers() if report_processes else []
    entities.append(IncludeLaunchDescription(AnyLaunchDescriptionSource(str(path)),
                                             launch_arguments=list(arguments)))
    service.include_launch_description(launch.LaunchDescription(entities))
    return service.run()


def show_arguments(path: str | os.PathLike) -> int:
    """Print the launch file's declared arguments (``ros2 launch --show-args``)."""
    _import_launch()
    from launch.launch_description_sources import get_launch_description_from_any_launch_file

    description = get_launch_description_from_any_launch_file(str(path))
    print("Arguments (pass arguments as '<name>:=<value>'):")
    for arg in description.get_launch_arguments():
        default = arg.default_value
        text = "".join(s.describe() if hasattr(s, "describe") else str(s) for s in default) if default else None
        print(f"\n    '{arg.name}':\n        {arg.description}")
        print(f"        (default: {text})" if text is not None else "        (required)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m strands_mesh_ros.ros_launch", usage=USAGE,
                                     description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("-n", "--noninteractive", action="store_true",
                        help="launch forwards SIGINT to its processes itself (not in a terminal's process group)")
    parser.add_argument("-d", "--debug", action="store_true", help="debug logging of launch")
    parser.add_argument("-s", "--show-args", "--show-arguments", action="store_true", dest="show_args",
                        help="list the launch file's arguments and exit")
    parser.add_argument("--report-processes", action="store_true",
                        help=f"print '{REPORT_PREFIX} started|exited ...' lines for each process")
    parser.add_argument("words", nargs="+", metavar="PACKAGE FILE | PATH, name:=value",
                        help="a package and its launch file, or a launch file path; then launch arguments")
    opts = parser.parse_args(argv)
    words = list(opts.words)
    if len(words) >= 2 and ":=" not in words[1] and not Path(words[0]).is_file():
        target, rest = find_launch_file(words[0], words[1]), words[2:]
    else:
        target, rest = find_launch_file(words[0]), words[1:]
    try:
        arguments = parse_launch_arguments(rest)
    except ValueError as exc:
        parser.error(str(exc))
    if opts.show_args:
        return show_arguments(target)
    return run(target, arguments, noninteractive=opts.noninteractive, report_processes=opts.report_processes,
               debug=opts.debug, argv=[w for w in rest])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
