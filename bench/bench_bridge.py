"""Bridge benchmarks: ROS robots seen through the BridgeNode. Prints figures; asserts nothing.

How to read: every figure comes from one run on one (possibly shared) machine, so read the
ratios, not the absolute numbers, and check the load averages printed at start and end.
``rtt`` sends ``{"action": "status"}`` from a Mesh agent in this process, interleaved, to a
mock robot that is a direct mesh peer (a ``strands_mesh_ros.peer`` subprocess, the baseline)
and to a ROS RobotNode (MockDriver) reached through a BridgeNode (robot + bridge in one
``bench/_ros_side.py`` subprocess); it prints p50/p90/p99 of each and the ratio
bridged/direct (goal <= 3x). The bridged path adds two ROS hops (bridge -> /<id>/mesh/command
-> robot node -> /<id>/mesh/response -> bridge); it is measured with the rclpy
SingleThreadedExecutors the package ships (one per robot node, one for the bridge) and, as the
earlier baseline, with MultiThreadedExecutors, so the executor's own share of the cost is visible. ``fanin`` runs, for each N, a stand-in
publisher of N robots' ``/<id>/joint_states`` at 50 Hz (sequence number in joint1's position)
plus their Presence on /mesh/presence at 2 Hz (``_ros_side.py --stub N``), and a bridge in its
own process; a Mesh subscriber here counts the relayed mesh states per robot over the window.
"published" is what the stand-in actually sent (seq span; < 50 Hz means the stand-in itself
was short of CPU), "gaps" are sequence numbers published but never seen on the mesh (= loss,
the goal is 0), "rx/nominal" is received / (N x 50 Hz x window), "silent" robots sent nothing
in the window, "lag" is joint_states stamp -> arrival here, "bridge CPU" is that process's
utime+stime over the window in % of ONE core (200 % = both cores of a 2-core box). Lines under
a row report proxies the bridge dropped from its start to the window's end (a robot whose /mesh/presence it did not process for
1.5 s "left ROS") and a bridge spin thread that died. The answer is the largest N with 0 gaps,
no robot silent or dropped; a step that cannot even bring every robot onto the mesh ends the run.
``flood`` offers ``--flood-rate`` status commands per second for ``--flood-duration`` s at one robot, from
``--senders`` Mesh agents in processes of their own (``bench/_flood_sender.py``, each paced to a
schedule), while this process sends ``--legit`` status commands spread evenly over the window;
every command may wait ``--timeout`` s, so queueing behind back-pressure is not loss. Once for a
mesh-native robot (``bench/_mesh_robot.py``, the baseline) and once for a ROS robot node (its
own process, a SingleThreadedExecutor of its own as the fleet host and ``robot_node`` run it)
behind a bridge (its own process, SingleThreadedExecutor as ``bridge_node`` ships), so the bridge's CPU is its own. Prints the
offered rate (what the senders put), the answer rate (answers / time to the last answer), flood
and legitimate commands answered (the goal: 0 unanswered), the legitimate commands' latency,
and each process's CPU over the run in % of one core; lines under a row report the bridge
dropping the robot's proxy and calls that failed while warming up (50 one at a time, before the
flood). ``--robot-executor multi`` (the robot node on the MultiThreadedExecutor the fleet host
used before 543b08b: the baseline) and ``--bridge-executor multi`` are diagnostics;
``--profile PATH`` cProfiles both ROS processes (every Python thread) into PATH.robot / .bridge.
For ``fanin``, ``FANIN_PROFILE=PATH`` cProfiles the bridge into PATH.<N>.<executor>.

    python bench/bench_bridge.py rtt [--n 1000] [--executors single,events]
    python bench/bench_bridge.py fanin [--ns 10,25,50,75,100] [--duration 10] [--rate 50] [--executor single,events]
    python bench/bench_bridge.py flood [--flood-rate 1000] [--flood-duration 10] [--senders 2] [--legit 50]
                                       [--kinds mesh,bridged] [--robot-executor events|single|multi] [--profile PATH]
    python bench/bench_bridge.py all
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import shutil
import signal
import tempfile

from _common import Net, StateTap, cpu_seconds, load, machine, pct, python_proc, stream_counts, threads, wait_for

from strands_mesh_ros.mesh.mesh import Mesh

ROS_SIDE = str(BENCH / "_ros_side.py")
MESH_ROBOT = str(BENCH / "_mesh_robot.py")
FLOOD_SENDER = str(BENCH / "_flood_sender.py")



def default_domain() -> int:
    # test/ros_helpers.py uses 10..210; stay above it (Fast DDS allows up to 232)
    return 211 + os.getpid() % 20  # rtt uses domain and domain + 1




# -- rtt -------------------------------------------------------------------------------------

def bench_rtt(n: int, domain: int, executors: list[str]) -> None:
    """Alternate status calls among the direct peer and one bridged ROS robot per executor kind
    (each its own _ros_side process, ROS domain and bridge id)."""
    net = Net()
    direct_id = "arm_direct"
    ros_ids = {ex: f"arm_ros_{ex}" for ex in executors}
    with Mesh("op", config=net.hub()) as op:
        procs = [python_proc("-m", "strands_mesh_ros.peer", direct_id, *net.peer_args()).ready()]
        try:
            for k, ex in enumerate(executors):
                procs.append(python_proc(ROS_SIDE, "--domain", str(domain + k), "--nodes", ros_ids[ex], "--bridge",
                                         "--bridge-id", f"bridge_bench_{ex}", "--executor", ex,
                                         "--prefix", net.prefix, "--connect", net.endpoint).ready(60))
            op.wait_for_peer(direct_id, 10)
            for rid in ros_ids.values():
                op.wait_for_peer(rid, 30)  # the bridge settles for one peer timeout, then proxies

            def once(peer: str) -> float:
                t0 = time.perf_counter()
                r = op.send(peer, {"action": "status"}, timeout=5.0)
                dt = time.perf_counter() - t0
                if not r.ok:
                    raise RuntimeError(f"{peer}: {r.status} {r.error}")
                return dt

            targets = [direct_id, *ros_ids.values()]
            for _ in range(100):  # warm up every path
                for peer in targets:
                    once(peer)
            lat: dict[str, list[float]] = {peer: [] for peer in targets}
            c0 = time.monotonic()
            for i in range(n):  # rotate the order, so load changes on a shared box hit every path alike
                k = i % len(targets)
                for peer in targets[k:] + targets[:k]:
                    lat[peer].append(once(peer))
            wall = time.monotonic() - c0
            d = pct(lat[direct_id], 50, 90, 99)
            print(f"\n## status round trip, direct mesh peer vs ROS robot via bridge, n={n} each, interleaved "
                  f"({wall:.1f} s)")
            rows = [("direct mesh peer", d)]
            for ex, rid in ros_ids.items():
                label = "ROS robot via bridge" + {"multi": " (MultiThreadedExecutors, the earlier executors)",
                                                  "single": " (SingleThreadedExecutor, the fallback)",
                                                  "events": " (EventsExecutor, the default)"}.get(ex, f" ({ex})")
                rows.append((label, pct(lat[rid], 50, 90, 99)))
            for name, (p50, p90, p99) in rows:
                print(f"{name:58s} p50 {p50 * 1e3:7.3f} ms  p90 {p90 * 1e3:7.3f} ms  p99 {p99 * 1e3:7.3f} ms")
            for name, b in rows[1:]:
                print(f"ratio {name} / direct: p50 {b[0] / d[0]:.2f}x  p90 {b[1] / d[1]:.2f}x  p99 {b[2] / d[2]:.2f}x  "
                      f"(goal <= 3x)")
        finally:
            for p in reversed(procs):
                p.close()


# -- fanin -----------------------------------------------------------------------------------

def spin_crash(lines: list[str]) -> str | None:
    """The exception that ended a spin thread of _ros_side.py, if one did: the process stays up
    (its Mesh peers keep their presence) but relays nothing."""
    for i, ln in enumerate(lines):
        if ln.startswith("Exception in thread"):
            tail = [x for x in lines[i + 1:i + 60]
                    if x and not x.startswith((" ", "Traceback", "PROXY_CLOSED", "[", "READY", "PUBLISHED"))]
            return f"{ln} {tail[0] if tail else ''}"
    return None


def fanin_step(n: int, duration: float, rate: float, domain: int, warmup: float, executor: str) -> dict:
    net = Net()
    tag = f"n{n}_{net.prefix[-4:]}_"
    ids = [f"{tag}{i}" for i in range(n)]
    with Mesh("counter", config=net.hub()) as sub:
        tap = StateTap(sub, net.prefix)
        prof = os.environ.get("FANIN_PROFILE")  # cProfile the bridge (every thread) into this file
        bridge = python_proc(ROS_SIDE, "--domain", str(domain), "--bridge", "--executor", executor,
                             "--prefix", net.prefix, "--connect", net.endpoint,
                             *(["--profile", f"{prof}.{n}.{executor}"] if prof else [])).ready(60)
        pub = python_proc(ROS_SIDE, "--domain", str(domain), "--stub", str(n), "--stub-prefix", tag,
                          "--rate", str(rate)).ready(60)
        try:
            t_up = time.monotonic()
            keys = {f"{net.prefix}/{i}/state" for i in ids}
            try:
                wait_for(lambda: all(i in sub.peers for i in ids), 45, interval=0.1, what=f"{n} bridged robots on the mesh")
                wait_for(lambda: keys <= tap.seen, 30, interval=0.1, what="state from every bridged robot")
            except AssertionError as exc:
                crash = spin_crash(bridge.lines)
                got = sum(1 for i in ids if i in sub.peers)
                dropped = sum(1 for ln in bridge.lines if ln.startswith("PROXY_CLOSED"))  # before shutdown
                raise AssertionError(f"{str(exc).splitlines()[0]} ({got}/{n} on the mesh, {dropped} proxies dropped)"
                                     + (f"; BRIDGE SPIN THREAD DIED: {crash}" if crash else "")) from None
            up = time.monotonic() - t_up
            threading.Event().wait(warmup)
            bpid, ppid = bridge.p.pid, pub.p.pid
            start = len(tap.samples)
            t0, cb0, cp0, cs0 = time.monotonic(), cpu_seconds(bpid), cpu_seconds(ppid), time.process_time()
            threading.Event().wait(duration)
            t1, cb1, cp1, cs1 = time.monotonic(), cpu_seconds(bpid), cpu_seconds(ppid), time.process_time()
            nthreads = threads(bpid)
            window = tap.window(start, t0, t1)
            # drops from the start to the window's end: once the stand-in stops below, every
            # robot rightly leaves ROS, and those drops are not the bridge's
            drops = [ln.split(" ", 2)[2] for ln in list(bridge.lines) if ln.startswith("PROXY_CLOSED")]
        finally:
            pub.close()
            bridge.close()  # joins its output reader: every line it printed is in bridge.lines now
    crash = spin_crash(bridge.lines)
    dropped, why = len(drops), (drops[0] if drops else "")
    # the stand-in numbers each robot's states in joint1's position
    c = stream_counts(window, ids, lambda st: st["joints"]["joint1"]["position"])
    dur = t1 - t0
    return {"n": n, "dur": dur, "up": up, **{k: c[k] for k in ("received", "published", "gaps", "dups", "silent", "bad")},
            "nominal": n * rate * dur, "crash": crash, "threads": nthreads, "dropped": dropped, "why": why,
            "bridge_cpu": 100 * (cb1 - cb0) / dur, "pub_cpu": 100 * (cp1 - cp0) / dur, "sub_cpu": 100 * (cs1 - cs0) / dur,
            "lag": pct(c["lags"], 50, 99)}


EXECUTOR_NAMES = {"events": "EventsExecutor, the default", "single": "SingleThreadedExecutor, the fallback",
                  "multi": "MultiThreadedExecutor(4), the earlier bridge"}


def bench_fanin(ns: list[int], duration: float, rate: float, domain: int, warmup: float, executors: list[str]) -> None:
    """Each N with the bridge on each executor kind in turn (the first kind is the baseline of
    the same run); a kind whose step cannot bring every robot up is not run at larger N."""
    print(f"\n## bridge fan-in: N robots' /<id>/joint_states at {rate:g} Hz -> mesh state, "
          f"{duration:g} s window per N (+{warmup:g} s warm-up); bridge executors: "
          + "; ".join(f"{k} = {EXECUTOR_NAMES[k]}" for k in executors))
    print("    N  executor  published Hz/robot  received   nominal  rx/nominal   gaps  loss %  silent  lag p50/p99 ms  "
          "bridge CPU %  threads  stub CPU %  sub CPU %  join s  load")
    best: dict[str, int | None] = {k: None for k in executors}
    failed: set[str] = set()
    for n in ns:
        for executor in executors:
            if executor in failed:
                continue
            t_step = time.monotonic()
            try:
                r = fanin_step(n, duration, rate, domain, warmup, executor)
            except AssertionError as exc:  # the bridge never proxied every robot, or states never flowed
                print(f"{n:5d}  {executor:8s}  did not come up after {time.monotonic() - t_step:.0f} s: "
                      f"{str(exc).splitlines()[0][:400]}; larger N skipped  ({load()})", flush=True)
                failed.add(executor)
                continue
            loss = 100 * r["gaps"] / max(1, r["gaps"] + r["received"])
            pub_hz = r["published"] / r["dur"] / n
            print(f"{n:5d}  {executor:8s}  {pub_hz:18.1f}  {r['received']:8d}  {r['nominal']:8.0f}  "
                  f"{r['received'] / r['nominal']:10.3f}  {r['gaps']:5d}  {loss:6.2f}  {r['silent']:6d}  "
                  f"{r['lag'][0] * 1e3:6.1f}/{r['lag'][1] * 1e3:<7.1f}  {r['bridge_cpu']:12.0f}  {r['threads']:7d}  "
                  f"{r['pub_cpu']:10.0f}  {r['sub_cpu']:9.0f}  {r['up']:6.1f}  {os.getloadavg()[0]:.2f}"
                  + (f"  dups {r['dups']}" if r["dups"] else "") + (f"  unparsable {r['bad']}" if r["bad"] else "")
                  + (f"\n       {r['dropped']} proxies dropped by the bridge ({r['why']})" if r["dropped"] else "")
                  + (f"\n       BRIDGE SPIN THREAD DIED: {r['crash']}" if r["crash"] else "")
                  + ("\n       the stand-in publisher itself ran below rate (its CPU share was short): "
                     "read gaps, not rx/nominal" if pub_hz < 0.95 * rate and r["received"] and not (r["gaps"] or r["crash"]) else ""),
                  flush=True)
            if r["gaps"] == 0 and r["silent"] == 0 and not r["dropped"] and not r["crash"]:
                best[executor] = n if best[executor] is None or n > best[executor] else best[executor]
    for executor in executors:
        print(f"{executor}: largest N with 0 loss (no gaps, no robot silent or dropped, bridge alive): "
              f"{best[executor] if best[executor] is not None else 'none'}  (goal: 100, joined within 10 s, bridge <= 100 % CPU)")


# -- flood -----------------------------------------------------------------------------------

def flood_run(kind: str, rate: float, duration: float, senders: int, legit: int, domain: int,
              timeout: float, profile: str | None, robot_executor: str = "events",
              bridge_executor: str = "events") -> dict:
    """One flood at one robot of ``kind`` (mesh | bridged); returns the figures."""
    net = Net()
    rid = "arm_flood"
    audit = tempfile.mkdtemp(prefix="bench_flood_audit_")
    env = {"STRANDS_MESH_AUDIT_DIR": audit}
    procs: dict[str, object] = {}
    flooders = []
    with Mesh("op", config=net.hub(), audit_dir=audit) as op:
        try:
            if kind == "mesh":
                procs["robot"] = python_proc(MESH_ROBOT, rid, "--prefix", net.prefix, "--connect", net.endpoint,
                                             env=env).ready(60)
            else:
                prof = (lambda who: ["--profile", f"{profile}.{who}"]) if profile else (lambda who: [])
                procs["robot"] = python_proc(ROS_SIDE, "--domain", str(domain), "--nodes", rid, "--executor", robot_executor,
                                             "--prefix", net.prefix, *prof("robot"), env=env).ready(60)
                procs["bridge"] = python_proc(ROS_SIDE, "--domain", str(domain), "--bridge", "--bridge-id", "bridge_flood",
                                              "--bridge-executor", bridge_executor, "--prefix", net.prefix,
                                              "--connect", net.endpoint, *prof("bridge"), env=env).ready(60)
            op.wait_for_peer(rid, 30)  # the bridge settles for one peer timeout, then proxies
            warm_bad = []
            for _ in range(50):  # one at a time: no load yet
                r = op.send(rid, {"action": "status"}, timeout=10)
                if not r.ok:
                    warm_bad.append(f"{r.status}: {r.error}")
                    op.wait_for_peer(rid, 30)
            per = rate / senders
            flooders = [python_proc(FLOOD_SENDER, f"flood{i}", rid, "--prefix", net.prefix, "--connect", net.endpoint,
                                    "--rate", str(per), "--duration", str(duration), "--timeout", str(timeout))
                        for i in range(senders)]
            for f in flooders:
                f.ready(90)
            pids = {name: p.p.pid for name, p in procs.items()}
            pids.update({f"sender{i}": f.p.pid for i, f in enumerate(flooders)})
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            c_self0 = time.process_time()
            t0 = time.monotonic()
            for f in flooders:
                f.signal(signal.SIGUSR1)
            legit_lat: list[float] = []
            legit_bad: list[str] = []
            legit_lock = threading.Lock()

            def legit_done(t_sent: float, fut) -> None:
                r = fut.result()
                with legit_lock:
                    if r.ok:
                        legit_lat.append(time.monotonic() - t_sent)
                    else:
                        legit_bad.append(f"{r.status}: {r.error}")

            legit_futs = []
            for i in range(legit):
                due = t0 + (i + 0.5) * duration / legit
                threading.Event().wait(max(0.0, due - time.monotonic()))
                t_sent = time.monotonic()
                fut = op.send_async(rid, {"action": "status"}, timeout=timeout)
                fut.add_done_callback(lambda f, t_sent=t_sent: legit_done(t_sent, f))
                legit_futs.append(fut)
            results = []
            for f in flooders:
                line = f.wait_line("RESULT ", timeout=timeout + duration + 60)
                results.append(json.loads(line.split(" ", 1)[1]))
            for fut in legit_futs:
                fut.result()
            t_end = time.monotonic()
            wall = t_end - t0
            cpu = {name: 100 * (cpu_seconds(pid) - cpu0[name]) / wall
                   for name, pid in pids.items() if not name.startswith("sender")}
            cpu["senders"] = sum(100 * r["cpu_s"] / wall for r in results)  # they exit once done: self-reported
            cpu["this"] = 100 * (time.process_time() - c_self0) / wall
        finally:
            for f in flooders:
                f.close()
            for p in reversed(list(procs.values())):
                p.close()
    shutil.rmtree(audit, ignore_errors=True)
    drops = [ln.split(" ", 2)[2] for ln in procs["bridge"].lines
             if ln.startswith("PROXY_CLOSED") and not ln.endswith("bridge shut down")] if "bridge" in procs else []
    sent = sum(r["sent"] for r in results)
    ok = sum(r["answered_ok"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    put_s = max(r["put_s"] for r in results)
    drain = max(r["drain_s"] for r in results)
    return {"kind": kind, "sent": sent, "offered": sent / put_s, "put_s": put_s, "ok": ok, "statuses": statuses,
            "answer_rate": ok / drain if drain > 0 else float("nan"), "drain": drain,
            "flood_lat": (*pct([x for r in results for x in r["lat"]], 50, 99), max(r["lat_max"] for r in results)),
            "legit_sent": legit, "legit_ok": len(legit_lat), "legit_bad": legit_bad,
            "legit_lat": (*pct(legit_lat, 50, 99), max(legit_lat) if legit_lat else float("nan")),
            "cpu": cpu, "errors": sorted({e for r in results for e in r["errors"]})[:3], "drops": drops,
            "warm_bad": warm_bad}


def bench_flood(rate: float, duration: float, senders: int, legit: int, domain: int, timeout: float,
                kinds: list[str], profile: str | None, robot_executor: str = "events",
                bridge_executor: str = "events") -> None:
    print(f"\n## flood: {rate:g} status cmd/s offered for {duration:g} s at one robot from {senders} sender "
          f"process(es), + {legit} legitimate status commands from another peer spread over the window; "
          f"every command may wait {timeout:g} s")
    rows = {}
    for kind in kinds:
        r = rows[kind] = flood_run(kind, rate, duration, senders, legit, domain, timeout,
                                   profile if kind == "bridged" else None, robot_executor, bridge_executor)
        label = "mesh-native robot" if kind == "mesh" else (
            "ROS robot node via bridge" + (" (EventsExecutors, the default)" if (robot_executor, bridge_executor) == ("events", "events") else
                                           f" (diagnostic: robot node on {robot_executor}, bridge on "
                                           f"{bridge_executor} executor)"))
        fl = r["flood_lat"]
        ll = r["legit_lat"]
        cpu = "  ".join(f"{k} {v:.0f} %" for k, v in r["cpu"].items())
        print(f"{label}:\n"
              f"  offered {r['offered']:7.0f} cmd/s ({r['sent']} commands put in {r['put_s']:.1f} s)  "
              f"answered {r['answer_rate']:7.0f} cmd/s (last answer {r['drain']:.1f} s after the start)\n"
              f"  flood answered {r['ok']}/{r['sent']} ok"
              f"{'; NOT OK: ' + str(r['statuses']) + ' ' + str(r['errors']) if r['ok'] < r['sent'] else ''}; "
              f"latency p50/p99/max {fl[0] * 1e3:.0f}/{fl[1] * 1e3:.0f}/{fl[2] * 1e3:.0f} ms\n"
              f"  legitimate answered {r['legit_ok']}/{r['legit_sent']} ok"
              f"{' NOT OK: ' + str(r['legit_bad'][:3]) if r['legit_bad'] else ''}; "
              f"latency p50/p99/max {ll[0] * 1e3:.1f}/{ll[1] * 1e3:.1f}/{ll[2] * 1e3:.1f} ms\n"
              f"  CPU over the run (% of one core): {cpu}"
              + (f"\n  WARM-UP (50 status calls one at a time, before the flood): {len(r['warm_bad'])} failed: "
                 f"{r['warm_bad'][0]}" if r["warm_bad"] else "")
              + (f"\n  THE BRIDGE DROPPED THE ROBOT'S PROXY {len(r['drops'])} time(s): {r['drops'][0]} "
                 f"(its callers were told 'peer lost')" if r["drops"] else ""), flush=True)
    if "mesh" in rows and "bridged" in rows:
        m, b = rows["mesh"], rows["bridged"]
        print(f"ratio bridged / mesh-native: answer rate {b['answer_rate'] / m['answer_rate']:.2f}x, legitimate "
              f"latency p50 {b['legit_lat'][0] / m['legit_lat'][0]:.1f}x p99 {b['legit_lat'][1] / m['legit_lat'][1]:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", default="all", choices=("rtt", "fanin", "flood", "all"))
    ap.add_argument("--n", type=int, default=1000, help="rtt: round trips per path")
    ap.add_argument("--executors", default="single,events",
                    help="rtt: executor kinds of the ROS side to compare (events = as robot nodes and bridge ship, "
                         "single = their fallback, multi = earlier)")
    ap.add_argument("--ns", default="10,25,50,75,100", help="fanin: robot counts")
    ap.add_argument("--duration", type=float, default=10.0, help="fanin: window per N, s")
    ap.add_argument("--warmup", type=float, default=2.0, help="fanin: s after every robot is flowing")
    ap.add_argument("--rate", type=float, default=50.0, help="fanin: joint_states Hz per robot")
    ap.add_argument("--executor", default="single,events",
                    help="fanin: the bridge's executor kinds, each run at every N (events = the default, single = the "
                         "fallback and baseline; multi = the earlier bridge)")
    ap.add_argument("--flood-rate", type=float, default=1000.0, help="flood: status commands per second offered")
    ap.add_argument("--flood-duration", type=float, default=10.0, help="flood: s")
    ap.add_argument("--senders", type=int, default=2, help="flood: sender processes")
    ap.add_argument("--legit", type=int, default=50, help="flood: legitimate commands spread over the window")
    ap.add_argument("--timeout", type=float, default=300.0, help="flood: per-command timeout, s")
    ap.add_argument("--kinds", default="mesh,bridged", help="flood: robot kinds (mesh = the baseline)")
    ap.add_argument("--profile", metavar="PATH",
                    help="flood: cProfile the bridged robot's and the bridge's processes into PATH.robot / PATH.bridge "
                         "(a diagnostic: it slows them)")
    ap.add_argument("--robot-executor", choices=("events", "single", "multi"), default="events",
                    help="flood: the ROS robot node's executor (single = as the fleet host and robot_node run it; "
                         "multi = the earlier shared MultiThreadedExecutor: baseline / diagnostic)")
    ap.add_argument("--bridge-executor", choices=("events", "single", "multi"), default="events",
                    help="flood: the bridge's executor (events = as bridge_node runs it; others: diagnostic)")
    ap.add_argument("--domain", type=int, default=default_domain(), help="ROS domain id of the ROS side")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"start: {load()}; ROS domain {args.domain}", flush=True)
    if args.what in ("rtt", "all"):
        bench_rtt(args.n, args.domain, args.executors.split(","))
    if args.what in ("fanin", "all"):
        bench_fanin([int(x) for x in args.ns.split(",")], args.duration, args.rate, args.domain, args.warmup,
                    args.executor.split(","))
    if args.what in ("flood", "all"):
        bench_flood(args.flood_rate, args.flood_duration, args.senders, args.legit, args.domain, args.timeout,
                    args.kinds.split(","), args.profile, args.robot_executor, args.bridge_executor)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    main()
