"""Soak: N robots in separate processes under steady state, command and broadcast traffic,
every message counted. A soak tool, not a CI timing test: it prints figures and exits 0 only
when nothing was lost, duplicated or left unanswered.

    python bench/soak.py                          # 10 mock robots x 600 s, 2 robot processes
    python bench/soak.py --duration 120 --driver mujoco --robots 6 --procs 3
    python bench/soak.py --json                   # the summary as one JSON object too

What is counted:
* state: every robot's ``P/<id>/state`` carries ``seq``; from the first seq heard to the last,
  every number must arrive once (seqs taken by ``state`` command answers, which share the
  counter, are excused: they are seen in those answers);
* commands: every command must get exactly one response from its target (counted on a raw
  subscription to our response keys, besides the Mesh's own correlation);
* executions: each robot runs a counting skill ``soak_bump(tag)``; every tag sent must run
  exactly once on its robot (broadcast tags once on every robot), nothing else may run;
* broadcasts: every robot must answer every broadcast;
* memory: RSS of the robot processes sampled through the run; slope by least squares over
  the samples after the first 20 % of the run (start-up warm-up), in MB/min.

The robot processes are this same file run as ``--host`` (several robots per process, each
its own mesh peer with its own driver, as ``strands_mesh_ros.fleet.Fleet`` builds them, plus
the counting skill). The load generator runs in this process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Net, machine, pct, python_proc, wait_for

BUMP = "soak_bump"


# -- robot host (subprocess) ----------------------------------------------------------------

def _counting(driver: Any, counts: Counter, lock: threading.Lock) -> None:
    """Add the ``soak_bump(tag)`` skill to ``driver``: counts its executions per tag."""
    from strands_mesh_ros.robot.driver import Skill

    def bump(ctx: Any, tag: str) -> dict[str, Any]:
        with lock:
            counts[tag] += 1
            n = counts[tag]
        return {"tag": tag, "n": n}

    skill = Skill(BUMP, bump, lane=None, description="soak: count one execution of tag",
                  params={"type": "object", "properties": {"tag": {"type": "string", "maxLength": 64}},
                          "required": ["tag"], "additionalProperties": False})
    original = driver.skills
    driver.skills = lambda: [*original(), skill]


def host_main(args: argparse.Namespace) -> int:
    """Run ``args.ids`` as robots until SIGTERM, then write the execution counts to ``args.report``."""
    from strands_mesh_ros.drivers.fleet_config import RobotSpec, make_driver
    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.mesh import Mesh

    if args.dedup_window:  # diagnosis: a small window fills (and must then stay flat) within a short soak
        from strands_mesh_ros.mesh import commands

        commands.DEDUP_WINDOW = args.dedup_window
    cfg = MeshConfig(prefix=args.prefix, connect=tuple(args.connect), multicast_scouting=False, state_hz=args.state_hz)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    lock = threading.Lock()
    counts: dict[str, Counter] = {}
    meshes: list[Mesh] = []
    try:
        for rid in args.ids:
            driver = make_driver(RobotSpec(id=rid, driver=args.driver, model=args.model, state_rate=args.state_hz))
            counts[rid] = Counter()
            _counting(driver, counts[rid], lock)
            driver.start()
            meshes.append(Mesh(rid, robot=driver, config=cfg).start())
        print("READY", " ".join(args.ids), flush=True)
        done.wait()
    finally:
        stats = {}
        for m in meshes:
            stats[m.peer_id] = dict(m.stats)
            t0 = time.monotonic()
            m.stop()
            if m.robot is not None:
                m.robot.close()
            print(f"stopped {m.peer_id} in {time.monotonic() - t0:.2f} s", flush=True)
        with lock:
            report = {rid: {"executions": dict(c), "stats": stats.get(rid, {})} for rid, c in counts.items()}
        if args.report:
            tmp = args.report + ".tmp"
            with open(tmp, "w") as f:
                json.dump(report, f)
            os.replace(tmp, args.report)
        print("DONE", flush=True)
    return 0


# -- load generator (this process) ----------------------------------------------------------

def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (VmRSS), NaN if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``[(t_s, mb)]`` in MB/min (0 with fewer than 2 samples)."""
    pts = [(t, v) for t, v in samples if not math.isnan(v)]
    if len(pts) < 2:
        return 0.0
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    return 0.0 if den == 0 else 60.0 * sum((t - mt) * (v - mv) for t, v in pts) / den


@dataclass
class SoakResult:
    robots: int
    duration: float
    driver: str
    commands_sent: int = 0
    commands_answered: int = 0
    commands_ok: int = 0
    command_errors: Counter = field(default_factory=Counter)  # robot-side error texts (first 80 chars)
    unanswered: int = 0
    unanswered_why: Counter = field(default_factory=Counter)
    duplicate_responses: int = 0
    broadcasts_sent: int = 0
    broadcast_missing: int = 0  # (broadcast, robot) pairs without an answer
    executions_expected: int = 0
    executions_seen: int = 0
    duplicated_executions: int = 0
    missing_executions: int = 0
    phantom_executions: int = 0
    robot_duplicate_turns: int = 0  # turn ids the robots saw twice (their dedup stats)
    states_received: int = 0
    states_lost: int = 0
    states_duplicated: int = 0
    states_reordered: int = 0
    latency_ms: list[float] = field(default_factory=list)  # p50, p99, max of unicast commands
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # process -> [(t, MB)]
    rss_slope: dict[str, float] = field(default_factory=dict)  # process -> MB/min after warm-up
    elapsed: float = 0.0
    crashed: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.states_lost

    @property
    def duplicated(self) -> int:
        return self.duplicated_executions + self.duplicate_responses + self.phantom_executions + self.states_duplicated

    @property
    def unanswered_total(self) -> int:
        return self.unanswered + self.broadcast_missing + self.missing_executions

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unanswered_total == 0 and not self.crashed

    def rss_points(self, name: str) -> tuple[float, float, float]:
        s = [v for _, v in self.rss.get(name, [])]
        return (s[0], s[len(s) // 2], s[-1]) if s else (float("nan"),) * 3

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("rss",)}
        d.update(lost=self.lost, duplicated=self.duplicated, unanswered_total=self.unanswered_total, ok=self.ok,
                 command_errors=dict(self.command_errors), unanswered_why=dict(self.unanswered_why),
                 rss={k: [round(v, 2) for _, v in s] for k, s in self.rss.items()})
        return d

    def summary(self) -> str:
        el = max(self.elapsed, 1e-9)
        lines = [
            f"soak: {self.robots} {self.driver} robots x {self.duration:.0f} s (ran {self.elapsed:.1f} s)",
            (f"  state      received {self.states_received} ({self.states_received / el:.0f}/s)  "
             f"LOST {self.states_lost}  duplicated {self.states_duplicated}  reordered {self.states_reordered}"),
            (f"  commands   sent {self.commands_sent} ({self.commands_sent / el:.1f}/s)  "
             f"answered {self.commands_answered}  ok {self.commands_ok}  UNANSWERED {self.unanswered}  "
             f"duplicate responses {self.duplicate_responses}"),
            "             latency ms p50/p99/max " + "/".join(f"{x:.1f}" for x in self.latency_ms),
            f"  broadcasts sent {self.broadcasts_sent}  missing answers {self.broadcast_missing}",
            (f"  executions expected {self.executions_expected}  seen {self.executions_seen}  "
             f"DUPLICATED {self.duplicated_executions}  missing {self.missing_executions}  "
             f"phantom {self.phantom_executions}  (robot dedup hits {self.robot_duplicate_turns})"),
        ]
        if self.command_errors:
            lines.append(f"  robot-side errors: {dict(self.command_errors.most_common(5))}")
        if self.unanswered_why:
            lines.append(f"  unanswered because: {dict(self.unanswered_why.most_common(5))}")
        for name in sorted(self.rss):
            a, m, b = self.rss_points(name)
            lines.append(f"  RSS {name:<12} start {a:7.1f} MB  middle {m:7.1f} MB  end {b:7.1f} MB  "
                         f"slope {self.rss_slope.get(name, 0.0):+.3f} MB/min")
        if self.crashed:
            lines.append(f"  CRASHED: {self.crashed}")
        lines.append(f"  verdict: {'PASS' if self.ok else 'FAIL'} (lost {self.lost}, duplicated {self.duplicated}, "
                     f"unanswered {self.unanswered_total})")
        return "\n".join(lines)


class _StateCounter:
    """Per-robot state seq accounting (Zenoh callback thread) in O(gaps) memory: the highest seq
    heard, and the seqs skipped below it that have not (yet) arrived."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, int] = {}
        self.missing: dict[str, set[int]] = defaultdict(set)
        self.dup = 0
        self.reordered = 0
        self.count = 0

    def __call__(self, key: str, payload: bytes) -> None:
        try:
            d = json.loads(payload)
            rid, seq = d["peer_id"], int(d["seq"])
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.count += 1
            last = self.last.get(rid)
            if last is None or seq == last + 1:
                self.last[rid] = seq
            elif seq > last + 1:
                self.missing[rid].update(range(last + 1, seq))
                self.last[rid] = seq
            elif seq in self.missing[rid]:  # late, not lost
                self.missing[rid].discard(seq)
                self.reordered += 1
            else:
                self.dup += 1


def run_soak(robots: int = 10, duration: float = 600.0, *, driver: str = "mock", procs: int = 2,
             rate: float = 20.0, bcast_period: float = 1.0, state_hz: float = 20.0, timeout: float = 30.0,
             rss_samples: int = 20, max_in_flight: int = 500, seed: int | None = None, dedup_window: int = 0,
             log: Callable[[str], None] = print) -> SoakResult:
    """Run the soak and return its counts (see the module docstring).

    Args:
        robots, procs: robots in total, spread over ``procs`` processes.
        duration: seconds of traffic after every robot is up.
        driver: ``mock`` or ``mujoco`` (the built-in ``arm6`` model, real time).
        rate: unicast commands per second, over all robots.
        bcast_period: seconds between broadcasts (alternately a counted skill and ``status``).
        state_hz: each robot's state rate.
        timeout: per-command timeout (s); a command without an answer by then is unanswered.
        dedup_window: if > 0, the robots remember this many turn ids instead of
            ``commands.DEDUP_WINDOW`` (10,000): the window's memory is bounded but takes ~1 h to fill
            at the default rates; a small one shows the plateau within a short soak.
    """
    from strands_mesh_ros.mesh.mesh import Mesh

    rng = random.Random(seed)
    res = SoakResult(robots=robots, duration=duration, driver=driver)
    net = Net()
    ids = [f"soak{i:02d}" for i in range(robots)]
    groups = [ids[i::procs] for i in range(procs) if ids[i::procs]]
    workdir = tempfile.mkdtemp(prefix="soak-")
    env = {"STRANDS_MESH_AUDIT_DIR": os.path.join(workdir, "audit"), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    reports = [os.path.join(workdir, f"host{i}.json") for i in range(len(groups))]
    hosts = []
    op = Mesh("soakop", config=net.hub(), audit_dir=os.path.join(workdir, "audit"))
    op.start()
    states = _StateCounter()
    resp_count: Counter = Counter()  # (responder, turn) -> responses seen on the wire
    resp_lock = threading.Lock()

    def on_response(key: str, payload: bytes) -> None:
        parts = key.split("/")
        if len(parts) >= 2:
            with resp_lock:
                resp_count[(parts[-2], parts[-1])] += 1

    try:
        op.subscribe(f"{net.prefix}/*/state", states, raw=True)
        op.subscribe(f"{net.prefix}/soakop/response/**", on_response, raw=True)
        for g, rep in zip(groups, reports):
            hosts.append(python_proc(str(Path(__file__).resolve()), "--host", "--prefix", net.prefix,
                                     "--connect", net.endpoint, "--driver", driver, "--state-hz", str(state_hz),
                                     "--report", rep, "--dedup-window", str(dedup_window), *g, env=env))
        for h in hosts:
            h.ready(timeout=120)
        for rid in ids:
            op.wait_for_peer(rid, 30)
        # every robot answers (command path routed) before the clock starts
        for rid in ids:
            wait_for(lambda rid=rid: op.send(rid, {"action": "status"}, timeout=5).ok, 30, interval=0.1,
                     what=f"{rid} answers")
        log(f"soak: {robots} robots up in {len(hosts)} processes; running {duration:.0f} s "
            f"(~{rate:g} commands/s, a broadcast every {bcast_period:g} s, state {state_hz:g} Hz per robot)")

        # Only compact outcomes are kept (no futures, no full responses), so the load
        # generator's own RSS shows the Mesh's memory, not this bookkeeping.
        outcomes: list[tuple[str, str, str, bool, str, int | None]] = []  # (target, kind, turn, ok, error, seq)
        expected_exec: dict[str, Counter] = {rid: Counter() for rid in ids}
        bcasts: list[tuple[str, dict[str, str]]] = []  # (turn, {robot: error}) of each broadcast sent
        state_answer_seqs: dict[str, set[int]] = defaultdict(set)
        lat: list[float] = []
        in_flight = threading.BoundedSemaphore(max_in_flight)
        stop = threading.Event()
        rss_every = max(duration / max(rss_samples - 1, 1), 1.0)
        t_start = time.monotonic()
        pids = {f"host{i}": h.p.pid for i, h in enumerate(hosts)}
        pids["loadgen"] = os.getpid()

        def sample_rss() -> None:
            now = time.monotonic() - t_start
            for name, pid in pids.items():
                res.rss.setdefault(name, []).append((now, rss_mb(pid)))

        def rss_loop() -> None:
            sample_rss()
            while not stop.wait(rss_every):
                sample_rss()

        def broadcast_loop() -> None:
            n = 0
            nxt = time.monotonic()
            while not stop.wait(max(0.0, nxt - time.monotonic())):
                nxt += bcast_period
                n += 1
                if n % 2:
                    tag = f"b{n}"
                    cmd = {"action": "skill", "name": BUMP, "args": {"tag": tag}}
                    for rid in ids:
                        expected_exec[rid][tag] += 1
                else:
                    tag, cmd = "", {"action": "status"}
                try:
                    b = op.broadcast(cmd, timeout=timeout)
                except Exception as exc:  # noqa: BLE001 - recorded as missing answers
                    log(f"soak: broadcast failed: {exc}")
                    bcasts.append(("", {}))
                    continue
                bcasts.append((b.turn_id, {p: (r.error or r.status)[:80] for p, r in b.responses.items() if not r.ok}))

        rss_t = threading.Thread(target=rss_loop, daemon=True)
        bc_t = threading.Thread(target=broadcast_loop, daemon=True)
        rss_t.start()
        bc_t.start()
        n = n_sent = 0
        period = 1.0 / rate
        nxt = time.monotonic()
        end = t_start + duration
        tick = threading.Event()
        while time.monotonic() < end:
            tick.wait(max(0.0, nxt - time.monotonic()))
            nxt += period
            if time.monotonic() - nxt > 1.0:
                nxt = time.monotonic()  # fell behind (a loaded machine): do not burst
            n += 1
            rid = ids[n % robots]
            roll = rng.random()
            tag = None
            if roll < 0.70:
                tag = f"u{n}"
                cmd = {"action": "skill", "name": BUMP, "args": {"tag": tag}}
                expected_exec[rid][tag] += 1
                kind = "bump"
            elif roll < 0.80:
                cmd, kind = {"action": "status"}, "status"
            elif roll < 0.88:
                cmd, kind = {"action": "state"}, "state"
            elif roll < 0.96:
                pos = [round(rng.uniform(-1, 1), 3) for _ in range(6)]
                cmd, kind = {"action": "skill", "name": "move_joints", "args": {"positions": pos, "duration": 0}}, "move"
            else:
                cmd, kind = {"action": "features"}, "features"
            if not in_flight.acquire(timeout=timeout * 2):
                raise RuntimeError(f"{max_in_flight} commands in flight for {timeout * 2} s: the robots stopped answering")
            t0 = time.monotonic()
            fut = op.send_async(rid, cmd, timeout=timeout)

            def done(f: Future, t0: float = t0, rid: str = rid, kind: str = kind) -> None:
                lat.append((time.monotonic() - t0) * 1000.0)
                r = f.result()
                seq = None
                if kind == "state" and r.ok and isinstance(r.result, dict) and isinstance(r.result.get("seq"), int):
                    seq = r.result["seq"]
                outcomes.append((rid, kind, r.turn_id, r.ok, "" if r.ok else (r.error or r.status)[:80], seq))
                in_flight.release()

            fut.add_done_callback(done)
            n_sent += 1
            del fut
        stop.set()
        log(f"soak: traffic done ({n_sent} commands); draining answers")
        bc_t.join(timeout + 10)
        # drain: every future resolves (answer, or timeout after `timeout` s)
        wait_for(lambda: len(outcomes) >= n_sent, timeout + 10, interval=0.05, what="every command resolved")
        res.elapsed = time.monotonic() - t_start
        sample_rss()
        rss_t.join(5)

        # -- commands ----------------------------------------------------------------------
        res.commands_sent = n_sent
        with resp_lock:
            wire = dict(resp_count)
        for rid, kind, turn, ok, error, seq in outcomes:
            seen = wire.get((rid, turn), 0)
            if seen == 0:
                res.unanswered += 1
                res.unanswered_why[error[:60]] += 1
                continue
            res.commands_answered += 1
            if seen > 1:
                res.duplicate_responses += seen - 1
            if ok:
                res.commands_ok += 1
                if seq is not None:
                    state_answer_seqs[rid].add(seq)
            else:
                res.command_errors[f"{kind}: {error}"] += 1
        res.latency_ms = pct(lat, 50, 99, 100)
        # -- broadcasts --------------------------------------------------------------------
        res.broadcasts_sent = len(bcasts)
        for turn, errors in bcasts:
            for rid in ids:  # answered = its response seen on the wire (even after broadcast() returned)
                seen = wire.get((rid, turn), 0)
                if seen == 0:
                    res.broadcast_missing += 1
                elif seen > 1:
                    res.duplicate_responses += seen - 1
            for rid, error in errors.items():
                res.command_errors[f"broadcast: {error}"] += 1
        # -- state -------------------------------------------------------------------------
        with states.lock:
            res.states_received = states.count
            res.states_duplicated = states.dup
            res.states_reordered = states.reordered
            for rid in ids:
                if rid not in states.last:
                    res.states_lost += 1  # never heard at all
                    continue
                # seqs taken by `state` answers (the counter is shared) were never published
                res.states_lost += len(states.missing[rid] - state_answer_seqs[rid])
    finally:
        log("soak: stopping the robot processes")
        t_stop = time.monotonic()
        for g, h in zip(groups, hosts):
            if h.p.poll() is not None:  # died during the run
                res.crashed.append(f"host {g} exited early ({h.p.returncode}): " + " | ".join(h.lines[-5:]))
                h.close()
                continue
            h.signal(signal.SIGTERM)  # graceful: the host writes its execution report, then DONE
            try:
                h.wait_line("DONE", timeout=60)
                h.p.wait(timeout=30)  # let it exit by itself (close() would SIGTERM it mid-finalisation)
            except (AssertionError, subprocess.TimeoutExpired):
                res.crashed.append(f"host {g} did not stop cleanly: " + " | ".join(h.lines[-5:]))
            code = h.close()
            if code not in (0, None):
                res.crashed.append(f"host {g} exit {code}: " + " | ".join(h.lines[-5:]))
        op.stop()
        log(f"soak: robot processes stopped in {time.monotonic() - t_stop:.1f} s")

    # -- executions (robot side) -----------------------------------------------------------
    for rep in reports:
        try:
            with open(rep) as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            res.crashed.append(f"no execution report {rep}: {exc}")
            continue
        for rid, d in data.items():
            ran = Counter(d["executions"])
            exp = expected_exec[rid]
            res.robot_duplicate_turns += int(d["stats"].get("duplicates", 0))
            for tag, k in ran.items():
                res.executions_seen += k
                if tag not in exp:
                    res.phantom_executions += k
                elif k > exp[tag]:
                    res.duplicated_executions += k - exp[tag]
            for tag, k in exp.items():
                res.executions_expected += k
                if ran.get(tag, 0) < k:
                    res.missing_executions += k - ran.get(tag, 0)
    for name, samples in res.rss.items():
        warm = res.duration * 0.2
        res.rss_slope[name] = slope_mb_per_min([(t, v) for t, v in samples if t >= warm])
    if res.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"soak: audit logs and execution reports kept in {workdir}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--robots", type=int, default=10)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (default 600)")
    ap.add_argument("--driver", choices=("mock", "mujoco"), default="mock")
    ap.add_argument("--procs", type=int, default=2, help="robot processes (robots are spread over them)")
    ap.add_argument("--rate", type=float, default=20.0, help="unicast commands per second (all robots)")
    ap.add_argument("--bcast-period", type=float, default=1.0, help="seconds between broadcasts")
    ap.add_argument("--state-hz", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=30.0, help="per-command timeout (s)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--dedup-window", type=int, default=0,
                    help="robots remember this many turn ids (default: the library's 10,000); small = plateau sooner")
    ap.add_argument("--json", action="store_true", help="also print the result as JSON")
    # internal: the robot host
    ap.add_argument("--host", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--connect", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--model", default="arm6", help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    ap.add_argument("ids", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.host:
        return host_main(args)
    print(machine())
    res = run_soak(args.robots, args.duration, driver=args.driver, procs=args.procs, rate=args.rate,
                   bcast_period=args.bcast_period, state_hz=args.state_hz, timeout=args.timeout, seed=args.seed,
                   dedup_window=args.dedup_window)
    print(res.summary())
    if args.json:
        print(json.dumps(res.to_dict(), default=str))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
