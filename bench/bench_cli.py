"""How long `strands-mesh` takes against a running robot, minus the interpreter and imports.

    python bench/bench_cli.py [--runs N] [--up-runs M]

Starts one robot peer (``python -m strands_mesh_ros.peer``, a mock arm) on a private mesh, then
times whole CLI processes, ``--runs`` times each, and prints the median wall time of each
command, the baseline ``strands-mesh --help`` (interpreter start-up + typer/rich imports,
measured in the same run), the difference, and the ratio to the baseline; and, as a row of its
own, the bare imports of a command that joins as a peer (the Mesh with its robot core), so the
part of each figure that is import time shows. For ``tell`` the
skill's own duration (a 0.2 s move) is subtracted too. The machine's load is printed at the
start and the end. Then it times how long `up` (pure mesh, and the default fleet with ROS)
takes from Ctrl-C to exit with its output in a pipe whose reader has gone. Prints figures;
asserts nothing (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import Net, load, machine, python_proc

RESUME_KEY = "bench-cli-resume-key-0001"
MOVE_S = 0.2
"""Duration (s) of the move `tell` asks for; subtracted from its figure."""


IMPORTS = ["-c", "import zenoh, strands_mesh_ros.cli, strands_mesh_ros.mesh.mesh"]
"""Not a command: the imports a command that joins as a peer pays (the Mesh and the robot core it
carries), to split each figure into import time and the rest."""


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    cmd = [sys.executable, *args] if args[:1] == ["-c"] else [sys.executable, "-m", "strands_mesh_ros.cli", *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, env=env)
    return time.perf_counter() - t0, r.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--up-runs", type=int, default=3, help="times `up` is stopped with Ctrl-C (0: skip)")
    a = ap.parse_args()
    net = Net()
    env = {**os.environ, "STRANDS_MESH_RESUME_KEY": RESUME_KEY, "COLUMNS": "100"}
    conn = ["--prefix", net.prefix, "--connect", net.endpoint]
    robot = python_proc("-m", "strands_mesh_ros.peer", "arm1", "--prefix", net.prefix, "--listen", net.endpoint,
                        "--no-multicast", "--resume-key", RESUME_KEY).ready()
    # As scripts/bootstrap.sh leaves the package: compiled (else, under PYTHONDONTWRITEBYTECODE,
    # every call would compile it from source and that would be measured instead).
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "strands_mesh_ros")], check=True)
    print(machine())
    print("start:", load())
    commands = {
        "--help (baseline)": ["--help"],
        "imports of a Mesh peer": IMPORTS,
        "peers": ["peers", *conn],
        "send status": ["send", "arm1", '{"action": "status"}', *conn],
        f"tell (a {MOVE_S} s move)": ["tell", "arm1", f"move joints to 0.1 0 0 0 0 0 in {MOVE_S} s", *conn],
        "estop": ["estop", *conn],
        "resume": ["resume", *conn],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    failures: dict[str, int] = {k: 0 for k in commands}
    try:
        for _ in range(a.runs):  # interleaved, so a load spike hits every command alike
            for name, args in commands.items():
                dt, rc = timed(args, env)
                times[name].append(dt)
                failures[name] += rc != 0
                if name.startswith("tell"):
                    timed(["tell", "arm1", f"move joints to 0 0 0 0 0 0 in {MOVE_S} s", *conn], env)
    finally:
        robot.close()
    base = statistics.median(times["--help (baseline)"])
    print(f"\nmedian of {a.runs} runs; 'added' = command - baseline (tell: minus its {MOVE_S} s move too)\n")
    print(f"{'command':<24}{'wall s':>9}{'added s':>9}{'× baseline':>12}{'failed':>8}")
    for name, ts in times.items():
        med = statistics.median(ts)
        added = med - base - (MOVE_S if name.startswith("tell") else 0.0)
        print(f"{name:<24}{med:>9.3f}{added:>9.3f}{med / base:>12.2f}{failures[name]:>8}")
    if a.up_runs:
        up_stop(a.up_runs, env)
    print("end:  ", load())


def up_stop(runs: int, env: dict[str, str]) -> None:
    """Seconds from SIGINT to the exit of `up` (the default fleet: ROS nodes and the bridge when
    rclpy is importable), its live view writing into a pipe whose reader has gone."""
    import signal

    for ros in (False, True):
        stops = []
        for _ in range(runs):
            net = Net()
            cmd = [sys.executable, "-m", "strands_mesh_ros.cli", "up", *([] if ros else ["--no-ros"]),
                   "--prefix", net.prefix, "--listen", net.endpoint]
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            for line in iter(p.stdout.readline, b""):
                if b"READY" in line:
                    break
            p.stdout.close()
            t0 = time.perf_counter()
            p.send_signal(signal.SIGINT)
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "hung"
            stops.append((time.perf_counter() - t0, rc))
        print(f"up {'with ROS' if ros else '--no-ros'}: SIGINT to exit, pipe closed: "
              + ", ".join(f"{dt:.2f} s (exit {rc})" for dt, rc in stops))


if __name__ == "__main__":
    main()
