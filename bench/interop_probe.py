"""Interop probe: one REAL strands-robots 0.5.3 process and our peers on one private mesh.

Not a test: it prints what crosses the wire so the wire forms in docs/interop-notes.md can be
checked against the real package. Loopback only, bounded in time (about 25 s; hard cap
``--deadline``), everything it starts is stopped at the end.

    .venv/bin/python bench/interop_probe.py [--hub ours|theirs] [--deadline 120]

What runs:
  * their process (.venv-interop, made by scripts/interop_venv.sh): strands_robots.mesh.Mesh
    peers ``srarm`` (a duck-typed robot that answers execute/start/stop/status) and ``srop``
    (robot-less), on ``STRANDS_MESH_NAMESPACE=<private>``, ``STRANDS_MESH_PORT=<free port>``,
    ``STRANDS_MESH_LOCAL_DEV=1`` (no TLS, loopback); driven over stdin, one JSON line per step.
  * ours (this venv): ``Mesh("op")`` (agent) and ``Mesh("ourarm", robot=MockDriver)``, with
    ``MeshConfig(prefix="strands", namespace=<private>)``.
  * a wire tap: a raw Zenoh session that prints every sample on the safety, command, response
    keys (payload bytes and the Zenoh SourceInfo zid it carried), and, in the "shim" steps,
    publishes what the notes say our side must publish (SourceInfo, 0.5.3 e-stop envelope,
    Ed25519 resume assertion) to show they are accepted.

--hub ours: our main session listens on the port; their process finds the port taken and joins
as a Zenoh client of ours (their STRANDS_MESH_PORT fallback). --hub theirs: their process
listens; our sessions connect as clients.

Exit status: 0 when every phase ran (whatever the peers answered), 3 when the interop venv is
missing (the one-line reason is printed), 1 on a failure of the probe itself.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from strands_mesh_ros.testing import free_port, wait_for

T0 = time.monotonic()


def out(tag: str, msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.3f}] {tag:<6} {msg}", flush=True)


def poll(predicate, timeout: float) -> bool:
    """True as soon as ``predicate()`` is, False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def phase(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


# ---------------------------------------------------------------------------------------------
# their peer process (runs under .venv-interop's Python >= 3.12)

THEIR_PEER = r'''
import json, logging, os, sys, threading, time
logging.basicConfig(level=logging.WARNING, stream=sys.stdout,
                    format="SR-LOG %(levelname)s %(name)s: %(message)s")
from strands_robots.mesh import init_mesh
from strands_robots.mesh.session import current_session


class MockArm:
    """Duck-typed robot: the attributes strands_robots.mesh.core.Mesh._dispatch reaches on a
    hardware peer (stop_task, get_task_status, _execute_task_sync, start_task)."""

    tool_name_str = "srarm"

    def __init__(self):
        self._stop = threading.Event()
        self.running = None
        self.history = []

    def _run(self, instruction, duration):
        self._stop.clear()
        self.running = instruction
        stopped = self._stop.wait(duration)
        self.history.append({"instruction": instruction, "stopped": stopped})
        self.running = None
        return stopped

    def get_task_status(self):
        return {"status": "success", "running": self.running,
                "content": [{"text": "Robot Status: " + ("RUNNING" if self.running else "IDLE")}]}

    def _execute_task_sync(self, instruction, policy_port=None, policy_host=None, policy_provider=None,
                           duration=30.0, **kw):
        stopped = self._run(instruction, duration)
        return {"status": "success", "content": [{"text": ("stopped: " if stopped else "completed: ") + instruction}]}

    def start_task(self, instruction, policy_port=None, policy_host=None, policy_provider=None,
                   duration=30.0, **kw):
        self.running = instruction
        threading.Thread(target=self._run, args=(instruction, duration), daemon=True).start()
        return {"status": "success", "content": [{"text": "started: " + instruction}]}

    def stop_task(self):
        was = self.running
        self._stop.set()
        return {"status": "success",
                "content": [{"text": ("Task stopped: " + was) if was else "No task running to stop"}]}


arm = MockArm()
srarm = init_mesh(arm, peer_id="srarm", peer_type="robot")
srop = init_mesh(None, peer_id="srop", peer_type="agent")
meshes = {"srarm": srarm, "srop": srop}
if not (srarm and srarm.alive and srop and srop.alive):
    print("FAILED their meshes did not start", flush=True)
    sys.exit(1)


def lockouts():
    return {n: {"locked": m._estop_lockout.is_set(), "epoch": m.lockout_epoch,
                "bound_zids": {p: z for p, (z, _) in m._peer_wire_zids.items()}}
            for n, m in meshes.items()}


def trim(peers):
    keep = ("peer_id", "type", "robot_type", "peer_type", "reachable", "age", "task_status", "schema")
    return [{k: p.get(k) for k in keep if k in p} for p in peers]


print("READY " + json.dumps({"zid": str(current_session().info.zid())}), flush=True)
for line in sys.stdin:
    try:
        req = json.loads(line)
    except ValueError:
        continue
    do, res = req.get("do"), {}
    t0 = time.monotonic()
    try:
        if do == "peers":
            res = {n: trim(m.peers) for n, m in meshes.items()}
        elif do == "send":
            res = meshes[req["from"]].send(req["to"], req["cmd"], timeout=req.get("timeout", 3.0))
        elif do == "lockouts":
            res = lockouts()
        elif do == "arm":
            res = {"running": arm.running, "history": arm.history}
        elif do == "estop":
            res = {"responses": meshes[req["from"]].emergency_stop(), "lockouts": lockouts()}
        elif do == "quit":
            break
        else:
            res = {"error": "unknown op " + str(do)}
    except Exception as exc:
        res = {"exception": repr(exc)}
    print("RES " + json.dumps({"id": req.get("id"), "do": do, "s": round(time.monotonic() - t0, 3), "res": res},
                              default=repr), flush=True)
for m in meshes.values():
    m.stop()
print("BYE", flush=True)
'''


class TheirPeer:
    """The strands-robots process, driven one JSON line at a time."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.p = subprocess.Popen([python, "-c", THEIR_PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        self.results: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.info: dict = {}
        self._n = 0
        _CHILDREN.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            line = line.rstrip("\n")
            if line.startswith("READY "):
                self.info = json.loads(line[6:])
                self.ready.set()
                out("THEIRS", line)
            elif line.startswith("RES "):
                self.results.put(json.loads(line[4:]))
            else:
                out("THEIRS", line[:400])
        self.results.put(None)

    def call(self, do: str, wait: float = 15.0, **kw) -> dict:
        self._n += 1
        req = {"id": self._n, "do": do, **kw}
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        deadline = time.monotonic() + wait
        while True:
            try:
                r = self.results.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"their peer did not answer {do!r} in {wait} s") from None
            if r is None:
                raise RuntimeError("their peer exited")
            if r.get("id") == self._n:
                out("THEIRS", f"{do} ({r['s']} s) -> {json.dumps(r['res'], default=repr)[:1500]}")
                return r["res"]

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                assert self.p.stdin is not None
                self.p.stdin.write(json.dumps({"do": "quit"}) + "\n")
                self.p.stdin.flush()
                self.p.wait(5)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        if self.p.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.p.pid, sig)
                    self.p.wait(5)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue


# ---------------------------------------------------------------------------------------------
# the wire tap and the shim (raw zenoh-python in our venv)


class Tap:
    """Raw Zenoh session on the same mesh: prints samples with their SourceInfo zid, and
    publishes hand-made payloads (optionally with a SourceInfo) for the shim steps."""

    KEYS = ("strands/safety/**", "strands/*/safety/event", "strands/broadcast", "strands/*/cmd",
            "strands/*/response/**")

    def __init__(self, namespace: str, endpoint: str) -> None:
        import zenoh

        self.z = zenoh
        conf = zenoh.Config()
        conf.insert_json5("mode", '"client"')
        conf.insert_json5("connect/endpoints", json.dumps([endpoint]))
        conf.insert_json5("scouting/multicast/enabled", "false")
        conf.insert_json5("namespace", json.dumps(namespace))
        self.s = zenoh.open(conf)
        self.zid = str(self.s.info.zid())
        self.label = self.s.declare_publisher("strands/op/presence")  # its id = our SourceInfo label
        self.estop_pub = self.s.declare_publisher("strands/safety/estop")
        self._sn = 0
        self.samples: list[tuple[float, str, str | None, bytes]] = []
        self.relay_for: set[str] = set()  # peer ids whose presence/answers we re-put with SourceInfo
        self._subs = [self.s.declare_subscriber(k, self._on) for k in self.KEYS]
        self._subs.append(self.s.declare_subscriber("strands/*/presence", self._on_presence))
        self._seen_presence: set[tuple[str, bool]] = set()

    def sn(self) -> int:
        self._sn += 1
        return self._sn

    @staticmethod
    def zid_of(sample) -> str | None:
        si = getattr(sample, "source_info", None)
        return str(si.source_id.zid) if si is not None and si.source_id is not None else None

    def _on(self, sample) -> None:
        key, zid, data = str(sample.key_expr), self.zid_of(sample), bytes(sample.payload.to_bytes())
        self.samples.append((time.monotonic(), key, zid, data))
        out("WIRE", f"{key} sourceinfo={zid} bytes={data.decode(errors='replace')[:900]}")
        parts = key.split("/")
        if (zid is None and len(parts) == 5 and parts[2] == "response" and parts[3] in self.relay_for):
            self.s.put(key, data, source_info=self.z.SourceInfo(self.label.id, self.sn()))
            out("SHIM", f"re-put answer {key} with SourceInfo {self.label.id}")

    def _on_presence(self, sample) -> None:
        key, zid, data = str(sample.key_expr), self.zid_of(sample), bytes(sample.payload.to_bytes())
        peer = key.split("/")[1]
        if (peer, zid is None) not in self._seen_presence:
            self._seen_presence.add((peer, zid is None))
            out("WIRE", f"{key} sourceinfo={zid} bytes={data.decode(errors='replace')[:900]}")
        if zid is None and peer in self.relay_for:
            self.s.put(key, data, source_info=self.z.SourceInfo(self.label.id, self.sn()))

    def put(self, key: str, payload: dict, source_info: bool) -> bytes:
        data = json.dumps(payload).encode()
        kw = {"source_info": self.z.SourceInfo(self.label.id, self.sn())} if source_info else {}
        self.s.put(key, data, **kw)
        out("TAP", f"put {key} sourceinfo={self.label.id.zid if source_info else None} {data.decode()}")
        return data

    def close(self) -> None:
        self.s.close()


# ---------------------------------------------------------------------------------------------
# Ed25519 resume assertion, as strands_robots.mesh.resume_authority signs it (our own code)


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign_assertion(key, epoch: str, targets: list[str]) -> dict:
    fields = {"v": 1, "epoch": epoch, "targets": sorted(set(targets)), "t": time.time(), "nonce": uuid.uuid4().hex}
    return {**fields, "sig": base64.urlsafe_b64encode(key.sign(canonical(fields))).decode()}


# ---------------------------------------------------------------------------------------------


_CHILDREN: list[TheirPeer] = []


def _deadline_hit() -> None:
    print("DEADLINE: the probe ran out of time; killing its child and exiting 1", flush=True)
    for child in _CHILDREN:
        try:
            os.killpg(child.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(1)


def interop_python() -> str:
    r = subprocess.run(["bash", str(REPO / "scripts" / "interop_venv.sh"), "--check"], capture_output=True,
                       text=True, check=False)
    line = (r.stdout.strip().splitlines() or [""])[-1]
    if r.returncode != 0:
        print(f"SKIP: {line or 'scripts/interop_venv.sh --check failed'}; run bash scripts/interop_venv.sh")
        raise SystemExit(3)
    return line


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hub", choices=("ours", "theirs"), default="ours")
    ap.add_argument("--deadline", type=float, default=120.0, help="hard cap on the whole run, s")
    args = ap.parse_args()
    watchdog = threading.Timer(args.deadline, _deadline_hit)
    watchdog.daemon = True
    watchdog.start()

    python = interop_python()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from strands_mesh_ros.drivers.mock import MockDriver
    from strands_mesh_ros.mesh.config import MeshConfig
    from strands_mesh_ros.mesh.mesh import Mesh

    ns = "interop" + uuid.uuid4().hex[:8]
    port = free_port()
    endpoint = f"tcp/127.0.0.1:{port}"
    resume_key = Ed25519PrivateKey.generate()
    pub_text = base64.urlsafe_b64encode(resume_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    tmp = tempfile.mkdtemp(prefix="interop-probe-")
    their_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "PYTHONUNBUFFERED": "1",
        "STRANDS_MESH_LOCAL_DEV": "1", "STRANDS_MESH_PORT": str(port), "STRANDS_MESH_NAMESPACE": ns,
        "STRANDS_MESH_MULTICAST": "false", "STRANDS_MESH_AUDIT_DIR": tmp,
        "STRANDS_MESH_RESUME_PUBLIC_KEY": pub_text,
        # the motion gate on their hardware peer: execute/start pre-approved for our operator "op"
        # (attribution, i.e. SourceInfo matching op's presence, is checked before this)
        "STRANDS_ROBOT_COMMAND_ALLOW": "execute@op,start@op",
    }
    if args.hub == "ours":
        cfg = MeshConfig(prefix="strands", namespace=ns, listen=(endpoint,), multicast_scouting=False)
    else:
        cfg = MeshConfig(prefix="strands", namespace=ns, connect=(endpoint,), mode="client",
                         multicast_scouting=False)
    out("PROBE", f"hub={args.hub} namespace={ns} endpoint={endpoint} interop python={python}")

    theirs = tap = None
    ours: list = []
    try:
        t_start = time.monotonic()
        if args.hub == "ours":
            ours.append(Mesh("op", config=cfg, audit_dir=tmp, check_unique=False).start())
            ours.append(Mesh("ourarm", robot=MockDriver("ourarm"), config=cfg, audit_dir=tmp,
                             check_unique=False).start())
            theirs = TheirPeer(python, their_env)
            if not theirs.ready.wait(60):
                raise RuntimeError("their peer did not start within 60 s")
        else:
            theirs = TheirPeer(python, their_env)
            if not theirs.ready.wait(60):
                raise RuntimeError("their peer did not start within 60 s")
            ours.append(Mesh("op", config=cfg, audit_dir=tmp, check_unique=False).start())
            ours.append(Mesh("ourarm", robot=MockDriver("ourarm"), config=cfg, audit_dir=tmp,
                             check_unique=False).start())
        op, ourarm = ours
        tap = Tap(ns, endpoint)
        out("PROBE", f"their process ready {time.monotonic() - t_start:.2f} s after start; "
                     f"their session zid={theirs.info.get('zid')} tap zid={tap.zid}")

        phase("1. presence: what each side sees of the other")
        wait_for(lambda: {"srarm", "srop"} <= set(op.peers), 15, what="their peers in our table")
        for pid, info in sorted(op.peers.items()):
            out("OURS", f"op sees {pid}: {json.dumps(info.to_dict())}")
        wait_for(lambda: {"op", "ourarm"} <= {p.get("peer_id") for p in theirs.call("peers")["srop"]}, 15,
                 interval=0.5, what="our peers in their table")
        theirs.call("lockouts")  # bound_zids: which of our ids they bound to a SourceInfo zid

        phase("2. commands, plain: our op -> srarm status; their srop -> ourarm status (answer needs SourceInfo)")
        r = op.send("srarm", {"action": "status"}, timeout=5)
        out("OURS", f"op.send(srarm, status) -> status={r.status} result={json.dumps(r.result)[:300]} error={r.error}")
        theirs.call("send", **{"from": "srop", "to": "ourarm", "cmd": {"action": "status"}, "timeout": 3.0})

        phase("3. shim: our presence and answers re-put with a SourceInfo (same label) -> accepted")
        tap.relay_for |= {"op", "ourarm"}
        time.sleep(1.2)  # two presence beats carry the label, so they bind it
        theirs.call("lockouts")
        theirs.call("send", **{"from": "srop", "to": "ourarm", "cmd": {"action": "status"}, "timeout": 3.0})

        phase("4. execute on srarm: without policy_provider; then from op with SourceInfo + policy_provider")
        r = op.send("srarm", {"action": "execute", "instruction": "wave", "duration": 1.0}, timeout=5)
        out("OURS", f"op.send(srarm, execute without policy_provider) -> {r.status} {r.error} "
                    f"{json.dumps(r.result)[:300]}")
        time.sleep(0.1)
        r = op.send("srarm", {"action": "start", "instruction": "wave", "policy_provider": "mock",
                              "duration": 1.0}, timeout=5)
        out("OURS", f"op.send(srarm, start + policy_provider, no SourceInfo on the command) -> {r.status} "
                    f"{r.error} {json.dumps(r.result)[:400]}")
        time.sleep(0.1)
        turn = uuid.uuid4().hex
        tap.put("strands/srarm/cmd", {"sender_id": "op", "target_id": "srarm", "turn_id": turn,
                                      "command": {"action": "start", "instruction": "long task",
                                                  "policy_provider": "mock", "duration": 20.0},
                                      "timestamp": time.time()}, source_info=True)
        wait_for(lambda: any(k.endswith(turn) for _, k, _, _ in tap.samples), 5, what="srarm's answer")
        theirs.call("arm")

        phase("5. OUR e-stop (current product form) -> their peers; their task should stop")
        time.sleep(0.7)
        rep = op.emergency_stop(timeout=2.0)
        out("OURS", f"op.emergency_stop() -> {json.dumps(rep.to_dict())}")
        time.sleep(0.3)
        lo = theirs.call("lockouts")
        theirs.call("arm")

        phase("6. resume their lockouts with our own Ed25519 assertion (cmd path and safety/resume path)")
        a = sign_assertion(resume_key, lo["srarm"]["epoch"], ["srarm"]) if lo["srarm"]["epoch"] else None
        if a:
            tap.put("strands/srarm/cmd", {"sender_id": "op", "target_id": "srarm", "turn_id": uuid.uuid4().hex,
                                          "command": {"action": "resume", "assertion": a}, "timestamp": time.time()},
                    source_info=True)
        time.sleep(0.7)
        if lo["srop"]["epoch"]:
            a = sign_assertion(resume_key, lo["srop"]["epoch"], ["srop"])
            tap.put("strands/safety/resume", {"peer_id": "op", "t": time.time(), "lockout_elapsed_s": 1.0,
                                              "assertion": a}, source_info=False)
        time.sleep(0.5)
        theirs.call("lockouts")

        phase("7. 0.5.3-form e-stop from the tap: estop_id + source_zid + SourceInfo -> shared epoch")
        time.sleep(0.7)
        estop_id = uuid.uuid4().hex
        env = {"peer_id": "op", "t": time.time(), "reason": "probe", "estop_id": estop_id, "responses_received": 0,
               "peers_not_stopped": [], "peers_silent": [], "lockout_engaged": True,
               "source_zid": str(tap.label.id.zid)}
        tap.estop_pub.put(json.dumps(env).encode(), source_info=tap.z.SourceInfo(tap.estop_pub.id, tap.sn()))
        out("TAP", f"publisher.put strands/safety/estop with SourceInfo {tap.estop_pub.id}: {json.dumps(env)}")
        time.sleep(0.4)
        lo = theirs.call("lockouts")
        out("PROBE", f"epochs == estop_id {estop_id}: {[v['epoch'] == estop_id for v in lo.values()]}")
        time.sleep(0.7)
        a = sign_assertion(resume_key, estop_id, ["srarm", "srop"])
        tap.put("strands/safety/resume", {"peer_id": "op", "t": time.time(), "lockout_elapsed_s": 1.0,
                                          "assertion": a}, source_info=False)
        time.sleep(0.4)
        theirs.call("lockouts")

        phase("8. negative: body source_zid without SourceInfo -> refused (see their log)")
        time.sleep(0.7)
        tap.put("strands/safety/estop", {**env, "t": time.time(), "estop_id": uuid.uuid4().hex}, source_info=False)
        time.sleep(0.4)
        theirs.call("lockouts")

        phase("9. THEIR e-stop (srop.emergency_stop) -> our peers (ourarm resumed locally first)")
        ourarm.core.resume_local()
        tap.relay_for.clear()  # our answers to their stop go out as the product sends them
        out("OURS", f"ourarm locked_out={ourarm.robot.locked_out}")
        time.sleep(0.7)
        latched: dict[str, float] = {}

        def watch() -> None:
            end = time.monotonic() + 8
            while time.monotonic() < end and "ourarm" not in latched:
                if ourarm.robot.locked_out:
                    latched["ourarm"] = time.monotonic()
                time.sleep(0.002)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        mark = time.monotonic()
        theirs.call("estop", **{"from": "srop"}, wait=20)
        watcher.join(10)
        arrivals = {key: t for t, key, _, data in tap.samples if t >= mark and
                    key in ("strands/broadcast", "strands/safety/estop") and b'"srop"' in data}
        for key, t in arrivals.items():
            out("PROBE", f"their {key} seen by the tap at +{t - mark:.3f} s")
        if "ourarm" in latched:
            out("PROBE", f"ourarm latched at +{latched['ourarm'] - mark:.3f} s (envelope at "
                         f"+{arrivals.get('strands/safety/estop', float('nan')) - mark:.3f} s)")
        out("OURS", f"ourarm locked_out={ourarm.robot.locked_out} driver.halted={ourarm.robot.driver.halted}")

        phase("10. per-link rate limits at their ingress (20 Hz on **/cmd, 2 Hz on **/safety/**)")
        time.sleep(0.2)
        f1 = op.send_async("srarm", {"action": "status"}, timeout=1.5)
        f2 = op.send_async("srarm", {"action": "status"}, timeout=1.5)
        out("OURS", f"two status to srarm back to back: {f1.result().status}, {f2.result().status}")
        time.sleep(0.2)
        f1 = op.send_async("srarm", {"action": "status"}, timeout=1.5)
        f2 = op.send_async("srop", {"action": "status"}, timeout=1.5)
        out("OURS", f"status to srarm then srop back to back: {f1.result().status}, {f2.result().status}")
        time.sleep(0.2)
        f1 = op.send_async("srarm", {"action": "status"}, timeout=1.5)
        time.sleep(0.06)
        f2 = op.send_async("srarm", {"action": "status"}, timeout=1.5)
        out("OURS", f"two status to srarm 60 ms apart: {f1.result().status}, {f2.result().status}")
        time.sleep(0.2)
        f1 = op.send_async("srarm", {"action": "status"}, timeout=1.5)
        turn = uuid.uuid4().hex
        tap.put("strands/srarm/cmd", {"sender_id": "op", "target_id": "srarm", "turn_id": turn,
                                      "command": {"action": "status"}, "timestamp": time.time()}, source_info=True)
        got = poll(lambda: any(k.endswith(turn) for _, k, _, _ in tap.samples), 1.5)
        out("OURS", f"status to srarm from op's session, then from the tap's session at once: "
                    f"{f1.result().status}, tap answered={bool(got)}")
        time.sleep(1.0)
        n0 = sum(1 for _, k, _, d in tap.samples if k.endswith("/safety/event") and b"remote_estop_redundant" in d)
        for i in range(2):
            tap.estop_pub.put(json.dumps({**env, "t": time.time(), "estop_id": uuid.uuid4().hex}).encode(),
                              source_info=tap.z.SourceInfo(tap.estop_pub.id, tap.sn()))
            time.sleep(0.1)
        time.sleep(0.5)
        n1 = sum(1 for _, k, _, d in tap.samples if k.endswith("/safety/event") and b"remote_estop_redundant" in d)
        out("PROBE", f"two e-stops 100 ms apart from one session: their 2 locked peers logged {n1 - n0} "
                     "'remote_estop_redundant' events (2 = one envelope got through, 4 = both)")

        phase("summary of raw e-stop envelopes on strands/safety/estop")
        for _, key, zid, data in tap.samples:
            if key == "strands/safety/estop":
                out("ESTOP", f"sourceinfo={zid} {data.decode(errors='replace')}")
        return 0
    finally:
        if theirs is not None:
            theirs.close()
        if tap is not None:
            tap.close()
        for m in reversed(ours):
            m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        out("PROBE", f"done in {time.monotonic() - T0:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
