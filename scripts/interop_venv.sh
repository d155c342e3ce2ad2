#!/usr/bin/env bash
# Separate venv with the REAL strands-robots package, for interop tests and bench/interop_probe.py.
#
#   bash scripts/interop_venv.sh          # create/update ./.venv-interop; prints its python on stdout
#   bash scripts/interop_venv.sh --check  # no changes: 0 if ready (prints its python), 1 if not set up
#
# strands-robots 0.5.3 needs Python >= 3.12, which Debian 12 does not ship; this script looks for
# one (STRANDS_INTEROP_PYTHON, python3.12/3.13/3.14 on PATH, pyenv's versions/ folders,
# /usr/local/bin, /usr/bin). It never touches ./.venv (the ROS wheels live there).
#
# Exit codes (stdout is one line in every case, logs go to stderr):
#   0  ready: stdout = path of .venv-interop/bin/python
#   3  no Python >= 3.12 here: stdout = one line saying why (tests skip with it)
#   1  anything else failed (pip, venv creation), or --check found it not set up: one line saying what
#
# Idempotent: a stamp (.venv-interop/.interop-stamp) holds a hash of the interpreter, its version
# and the requirements below; when it matches, nothing is installed (~0.2 s). From nothing: ~40 s
# (measured 35-38 s here, pip cache cold or warm). Concurrent runs are serialised with flock.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STRANDS_INTEROP_VENV:-$ROOT/.venv-interop}"
STAMP="$VENV/.interop-stamp"

# strands-robots[mesh] pulls strands-agents, opencv-python-headless, eclipse-zenoh, cryptography
# and json5; a robot-less / mock-robot mesh peer needs nothing more (see docs/interop-notes.md).
INTEROP_REQUIREMENTS=(
  "strands-robots[mesh]==0.5.3"
)

log() { printf '[interop-venv] %s\n' "$*" >&2; }
fail() {  # fail CODE MESSAGE: the one line goes to stdout (callers show it), nothing else
  printf '%s\n' "$2"
  exit "$1"
}

hash_of() {  # hash_of STRING... -> sha256 over the strings (same shape as bootstrap.sh's)
  local s
  for s in "$@"; do printf 'str %s\n' "$s"; done | sha256sum | cut -d' ' -f1
}

py_ok() {  # py_ok PATH -> usable interpreter with Python >= 3.12 and venv/ensurepip
  [[ -x "$1" ]] || return 1
  "$1" -c 'import sys, venv, ensurepip, ssl
sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

pick_python() {  # sets PY or returns 1; LOOKED lists what was tried
  local cands=() c root v
  [[ -n "${STRANDS_INTEROP_PYTHON:-}" ]] && cands+=("$STRANDS_INTEROP_PYTHON")
  for v in 3.12 3.13 3.14; do
    # `command -v` may find a pyenv shim that fails for a version not selected: py_ok runs it.
    c="$(command -v "python$v" 2>/dev/null || true)"
    [[ -n "$c" ]] && cands+=("$c")
  done
  for root in "${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv; do
    [[ -n "$root" && -d "$root/versions" ]] || continue
    for v in 3.12 3.13 3.14; do
      # newest patch release first; skip pyenv virtualenvs and free-threaded builds
      while IFS= read -r c; do
        [[ -n "$c" ]] && cands+=("$c")
      done < <(ls -d "$root/versions/$v".* 2>/dev/null | grep -E "/$v\.[0-9]+$" | sort -V -r \
        | sed "s#\$#/bin/python$v#")
    done
  done
  for v in 3.12 3.13 3.14; do
    cands+=("/usr/local/bin/python$v" "/usr/bin/python$v")
  done
  LOOKED=""
  for c in "${cands[@]}"; do
    if py_ok "$c"; then
      PY="$c"
      return 0
    fi
    LOOKED+="${LOOKED:+, }$c"
  done
  return 1
}

CHECK_ONLY=0
case "${1:-}" in
  --check) CHECK_ONLY=1 ;;
  "") ;;
  -h | --help)
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 0
    ;;
  *)
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

# Serialise concurrent runs (two test sessions, or bootstrap + a test) on this checkout.
if [[ "$CHECK_ONLY" -eq 0 ]] && command -v flock >/dev/null 2>&1; then
  LOCK="${TMPDIR:-/tmp}/strands_mesh_ros-interop-$(printf '%s' "$VENV" | sha256sum | cut -c1-12).lock"
  exec 9>"$LOCK"
  flock 9 || fail 1 "could not lock $LOCK"
fi

# An existing venv on a Python >= 3.12 is kept (its interpreter is what the stamp records).
if [[ -x "$VENV/bin/python" ]] && py_ok "$VENV/bin/python"; then
  PY="$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')"
else
  if ! pick_python; then
    fail 3 "no Python >= 3.12 on this machine (strands-robots 0.5.3 needs it; looked at: ${LOOKED:-nothing}; set STRANDS_INTEROP_PYTHON)"
  fi
fi
PYVER="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
H="$(hash_of "$PY" "$PYVER" "${INTEROP_REQUIREMENTS[@]}")"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$H" ]]; then
  printf '%s\n' "$VENV/bin/python"
  exit 0
fi
if [[ "$CHECK_ONLY" -eq 1 ]]; then
  printf '%s\n' "$VENV is not set up (run: bash scripts/interop_venv.sh)"
  exit 1
fi

START=$SECONDS
if ! [[ -x "$VENV/bin/python" ]] || ! py_ok "$VENV/bin/python"; then
  log "creating $VENV with $PY (Python $PYVER)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" >&2 || fail 1 "could not create $VENV with $PY -m venv"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2 \
    || log "note: could not upgrade pip; continuing with the bundled one"
fi
log "pip install ${INTEROP_REQUIREMENTS[*]}"
"$VENV/bin/python" -m pip install -q "${INTEROP_REQUIREMENTS[@]}" >&2 \
  || fail 1 "pip install ${INTEROP_REQUIREMENTS[*]} into $VENV failed"
# The mesh must import headless (no display, no robot hardware).
"$VENV/bin/python" -c 'import zenoh, cryptography, strands_robots.mesh' >&2 \
  || fail 1 "strands_robots.mesh does not import in $VENV"
printf '%s\n' "$H" >"$STAMP"
log "ready in $((SECONDS - START)) s: $VENV"
printf '%s\n' "$VENV/bin/python"
