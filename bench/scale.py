"""Fleet scale through Zenoh routers: discovery time, state loss and e-stop for N robots.

    python bench/scale.py                  # N = 10, 50, 100; 10 robots per process; 10 s window
    python bench/scale.py --sizes 20 --per-process 5 --window 5
    python bench/scale.py --sizes 100 --routers 2   # robots on router A, observer on router B

One router process (the package's router, :class:`strands_mesh_ros.mesh.router.Router`, as
``strands-mesh router`` runs it), or with ``--routers 2`` two, router B connected to router A
(a backbone of two sites); N mock robots packed ``--per-process`` per process (each process a
``Fleet`` on one Zenoh client session of router A; state at 10 Hz), and this process as an
observer client of the last router (B), so every sample it counts crossed both routers.
Measured per N:

* discovery: from spawning the robot processes until the observer's peer table holds all N
  robots (and from the last process printing READY, i.e. Zenoh + Python start-up excluded);
* state loss over the window: gaps in each robot's ``State.seq``, and the rate received;
* one e-stop: time until all N acked (and how many did not, within 5 s).

Prints figures with load averages; asserts nothing. Children: ``--child-router`` and
``--child-robots`` (internal).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Net, machine, python_proc  # noqa: E402

STATE_HZ = 10.0
HERE = str(Path(__file__).resolve())


def _wait_term() -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def child_router(endpoint: str, connect: list[str]) -> None:
    import zenoh

    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.router import Router

    zenoh.init_log_from_env_or("warn")  # the bench reports the router's warnings
    with Router(MeshConfig(listen=(endpoint,), connect=tuple(connect), multicast_scouting=False)) as router:
        print("READY", router.zid, flush=True)
        _wait_term()


def child_robots(endpoint: str, prefix: str, ids: list[str]) -> None:
    from strands_mesh_ros.fleet import Fleet
    from strands_mesh_ros.mesh.config import MeshConfig

    cfg = MeshConfig(prefix=prefix, mode="client", connect=(endpoint,), multicast_scouting=False)
    with Fleet(robots=[{"id": i, "driver": "mock", "state_rate": STATE_HZ} for i in ids], config=cfg):
        print("READY", len(ids), flush=True)
        _wait_term()



def run(n: int, per_process: int, window: float, routers: int = 1) -> dict:
    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.mesh import Mesh
    from strands_mesh_ros.testing import free_port

    net = Net()
    ids = [f"r{i:03d}" for i in range(n)]
    load_before = os.getloadavg()
    endpoints = [net.endpoint] + [f"tcp/127.0.0.1:{free_port()}" for _ in range(routers - 1)]
    router_procs = [python_proc(HERE, "--child-router", endpoints[0]).ready()]
    for ep in endpoints[1:]:  # each further router links to router A (a backbone)
        router_procs.append(python_proc(HERE, "--child-router", ep, "--router-connect", endpoints[0]).ready())
    procs = []
    out: dict = {"n": n, "processes": math.ceil(n / per_process), "routers": routers}
    try:
        cfg = MeshConfig(prefix=net.prefix, mode="client", connect=(endpoints[-1],), multicast_scouting=False)
        with Mesh("bench", config=cfg) as obs:
            lock = threading.Lock()
            last: dict[str, int] = {}
            stats = {"received": 0, "gaps": 0, "reordered": 0, "counting": False}

            def on_state(_key: str, payload: bytes) -> None:
                try:
                    st = json.loads(payload)
                    pid, seq = st["peer_id"], int(st["seq"])
                except (ValueError, KeyError, TypeError):
                    return
                with lock:
                    prev = last.get(pid)
                    last[pid] = seq if prev is None else max(prev, seq)
                    if not stats["counting"] or prev is None:
                        return
                    stats["received"] += 1
                    if seq > prev + 1:
                        stats["gaps"] += seq - prev - 1
                    elif seq <= prev:
                        stats["reordered"] += 1

            obs.subscribe(f"{net.prefix}/*/state", on_state, raw=True)
            t0 = time.monotonic()
            for k in range(0, n, per_process):
                procs.append(python_proc(HERE, "--child-robots", net.endpoint, net.prefix, ",".join(ids[k:k + per_process])))
            for p in procs:
                p.ready(timeout=300)
            t_ready = time.monotonic()
            tick = threading.Event()
            want = set(ids)
            deadline = t0 + 300
            while not want <= set(obs.peers) and time.monotonic() < deadline:
                tick.wait(0.01)
            t_disc = time.monotonic()
            out["discovered"] = len(want & set(obs.peers))
            out["discovery_s"] = t_disc - t0
            out["after_ready_s"] = max(0.0, t_disc - t_ready)
            # State over the window: counting starts now; each robot's first sample is its baseline.
            with lock:
                last.clear()
                stats["counting"] = True
            pids = {"robots": [p.p.pid for p in procs], "router": [r.p.pid for r in router_procs],
                    "observer": [os.getpid()]}
            cpu0 = {k: sum(_proc_cpu(pid) for pid in v) for k, v in pids.items()}
            busy0 = _machine_busy()
            w0 = time.monotonic()
            tick.wait(window)
            with lock:
                stats["counting"] = False
                got, gaps, reord, heard = stats["received"], stats["gaps"], stats["reordered"], len(last)
            elapsed = time.monotonic() - w0
            cores = {k: (sum(_proc_cpu(pid) for pid in v) - cpu0[k]) / elapsed for k, v in pids.items()}
            cores["other"] = max(0.0, (_machine_busy() - busy0) / elapsed - sum(cores.values()))
            out["cores"] = cores
            out.update(state_rate=got / elapsed, expected_rate=n * STATE_HZ, gaps=gaps, reordered=reord,
                       loss=gaps / (got + gaps) if got + gaps else float("nan"), heard=heard)
            # One e-stop, on the issuer's safety path; it returns when all known peers acked
            # (or after 60 s). Acks later than 5 s (the CLI's default is 0.5 s) are counted.
            report = obs.emergency_stop("scale bench", timeout=60.0)
            got_acks = [lat for p, lat in report.stopped.items() if p in want]
            out["estop_acked_60s"] = len(got_acks)
            out["estop_not_acked"] = sum(1 for lat in got_acks if lat > 5.0) + n - len(got_acks)
            out["estop_all_acked_ms"] = max(got_acks) * 1000 if len(got_acks) == n else float("nan")
            out["load_during"] = os.getloadavg()
    finally:
        for p in procs:
            p.close()
        for r in router_procs:
            r.close()
    warnings = [line for r in router_procs for line in r.lines if " WARN " in line or " ERROR " in line]
    out["router_warnings"] = len(warnings)
    out["router_warning_sample"] = warnings[0][-200:] if warnings else ""
    out["load_before"] = load_before
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--per-process", type=int, default=10)
    ap.add_argument("--window", type=float, default=10.0, help="state-loss window, s")
    ap.add_argument("--routers", type=int, choices=(1, 2), default=1,
                    help="1: one router; 2: router B connected to router A, robots on A, observer on B")
    ap.add_argument("--child-router", metavar="ENDPOINT")
    ap.add_argument("--router-connect", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--child-robots", nargs=3, metavar=("ENDPOINT", "PREFIX", "IDS"))
    args = ap.parse_args(argv)
    if args.child_router:
        return child_router(args.child_router, args.router_connect)
    if args.child_robots:
        ep, prefix, ids = args.child_robots
        return child_robots(ep, prefix, ids.split(","))
    print(machine())
    where = "one router" if args.routers == 1 else "two connected routers (robots on A, observer on B)"
    print(f"mock robots at {STATE_HZ:g} Hz state, {args.per_process} per process, through {where}; "
          f"state window {args.window:g} s")
    print("cores = CPU used during the state window (robots / router(s) / observer / everything else on the machine)")
    hdr = (f"{'N':>4} {'procs':>5} {'disc s':>7} {'after READY s':>13} {'state/s':>8} {'of':>6} {'gaps':>5} "
           f"{'loss %':>7} {'e-stop all acked ms':>19} {'>5 s':>6}  {'cores rob/rtr/obs/other':>23}  "
           f"load before -> during")
    print(hdr)
    for n in args.sizes:
        r = run(n, args.per_process, args.window, args.routers)
        lb, ld = r["load_before"], r["load_during"]
        cores = "/".join(f"{r['cores'][k]:.2f}" for k in ("robots", "router", "observer", "other"))
        print(f"{r['n']:>4} {r['processes']:>5} {r['discovery_s']:>7.2f} {r['after_ready_s']:>13.2f} "
              f"{r['state_rate']:>8.1f} {r['expected_rate']:>6.0f} {r['gaps']:>5} {100 * r['loss']:>7.3f} "
              f"{r['estop_all_acked_ms']:>19.1f} {r['estop_not_acked']:>6}  "
              f"{cores:>23}  "
              f"{lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} -> {ld[0]:.2f} {ld[1]:.2f} {ld[2]:.2f}"
              + ("" if r["discovered"] == r["n"] else f"  (only {r['discovered']} discovered)")
              + ("" if r["estop_acked_60s"] == r["n"] else f"  ({r['estop_acked_60s']} acked within 60 s)"),
              flush=True)
        if r["router_warnings"]:
            print(f"      router: {r['router_warnings']} warnings, e.g. {r['router_warning_sample']}")


if __name__ == "__main__":
    main()
