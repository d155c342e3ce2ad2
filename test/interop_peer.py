"""A REAL strands-robots 0.5.3 process for test/test_interop.py (run with the interop venv's
Python, see scripts/interop_venv.sh; never imported by pytest).

Starts ``srarm`` (a duck-typed mock robot) and ``srop`` (robot-less; ids from env
``INTEROP_ARM_ID`` / ``INTEROP_OP_ID``) with their ``init_mesh``;
the environment (namespace, port, STRANDS_MESH_LOCAL_DEV ...) comes from the test. Prints
``READY {"zid": ...}``, then takes one JSON request a line on stdin and prints
``RES {"id", "res"}`` (or ``"exc"``) for it. Requests: ``{"do": "send", "from", "to", "cmd",
"timeout"}``, ``{"do": "tell", "from", "to", "instruction", "kw", "timeout"}``, ``{"do": "estop",
"from"}``, ``{"do": "start", "instruction", "duration"}`` (a task started locally on the arm),
``{"do": "broadcast", "from", "cmd", "timeout"}``, ``{"do": "state", "from", "peer", "n",
"timeout"}`` (their subscription to our state: the first n samples, timed),
``{"do": "resume", "from", "seed", "targets"}`` (their signed resume, with the raw
Ed25519 seed as base64url), ``{"do": "arm"}``, ``{"do": "lockouts"}``, ``{"do": "peers"}``, ``{"do": "quit"}``.
"""

import json
import logging
import os
import sys
import threading
import time

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="SR %(levelname)s %(name)s: %(message)s")

from strands_robots.mesh import init_mesh  # noqa: E402
from strands_robots.mesh.session import current_session  # noqa: E402


class MockArm:
    """What their Mesh._dispatch reaches on a hardware peer (as in bench/interop_probe.py)."""

    tool_name_str = "srarm"

    def __init__(self):
        self._stop = threading.Event()
        self.running = None
        self.history = []

    def _run(self, instruction, duration):
        self._stop.clear()
        self.running = instruction
        stopped = self._stop.wait(duration)
        self.history.append({"instruction": instruction, "stopped": stopped, "t_end": time.time()})
        self.running = None

    def get_task_status(self):
        return {"status": "success", "running": self.running,
                "content": [{"text": "Robot Status: " + ("RUNNING" if self.running else "IDLE")}]}

    def _execute_task_sync(self, instruction, duration=30.0, **kw):
        self._run(instruction, duration)
        return {"status": "success", "content": [{"text": "done: " + instruction}]}

    def start_task(self, instruction, duration=30.0, **kw):
        self._stop.clear()
        self.running = instruction
        threading.Thread(target=self._run, args=(instruction, duration), daemon=True).start()
        return {"status": "success", "content": [{"text": "started: " + instruction}]}

    def stop_task(self):
        was = self.running
        self._stop.set()
        return {"status": "success", "content": [{"text": ("Task stopped: " + was) if was else "No task running"}]}


arm = MockArm()
# INTEROP_ARM_ID / INTEROP_OP_ID rename the two peers (a signed-identity fleet needs ids the
# process's one certificate speaks for: its CN and <CN>__<robot>)
ARM_ID, OP_ID = os.environ.get("INTEROP_ARM_ID", "srarm"), os.environ.get("INTEROP_OP_ID", "srop")
meshes = {ARM_ID: init_mesh(arm, peer_id=ARM_ID, peer_type="robot"),
          OP_ID: init_mesh(None, peer_id=OP_ID, peer_type="agent")}
if not all(m is not None and m.alive for m in meshes.values()):
    print("FAILED their meshes did not start", flush=True)
    sys.exit(1)
print("READY " + json.dumps({"zid": str(current_session().info.zid())}), flush=True)

for line in sys.stdin:
    req = json.loads(line)
    do = req.get("do")
    out = {"id": req.get("id")}
    try:
        if do == "send":
            res = meshes[req["from"]].send(req["to"], req["cmd"], timeout=req.get("timeout", 5.0))
        elif do == "broadcast":
            res = meshes[req["from"]].broadcast(req["cmd"], timeout=req.get("timeout", 5.0))
        elif do == "state":  # their subscription to a peer's state: the first n samples, timed
            got, done = [], threading.Event()

            def on_state(key, data, got=got, done=done, n=req.get("n", 10)):
                got.append((time.time(), key, data))
                if len(got) >= n:
                    done.set()

            name = meshes[req["from"]].subscribe(f"strands/{req['peer']}/state", on_state,
                                                 name=f"state-{req['id']}")
            done.wait(req.get("timeout", 10.0))
            meshes[req["from"]].unsubscribe(name)
            res = {"n": len(got), "span": got[-1][0] - got[0][0] if len(got) > 1 else 0.0,
                   "key": got[0][1] if got else None, "first": got[0][2] if got else None,
                   "last": got[-1][2] if got else None}
        elif do == "tell":
            res = meshes[req["from"]].tell(req["to"], req["instruction"], **req.get("kw", {}))
        elif do == "estop":
            t0 = time.time()
            res = {"t_call": t0, "responses": meshes[req["from"]].emergency_stop(), "t_return": time.time()}
        elif do == "resume":  # their Ed25519 resume: sign for their lockout epoch, relay on safety/resume
            import base64

            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            seed = base64.urlsafe_b64decode(req["seed"] + "=" * (-len(req["seed"]) % 4))
            m = meshes[req["from"]]
            epoch = m.lockout_epoch
            res = {"epoch": epoch, "t_call": time.time(),
                   "result": m.resume(Ed25519PrivateKey.from_private_bytes(seed), targets=req.get("targets")),
                   "t_return": time.time()}
        elif do == "start":
            res = arm.start_task(req["instruction"], duration=req.get("duration", 30.0))
        elif do == "arm":
            res = {"running": arm.running, "history": arm.history}
        elif do == "lockouts":
            res = {n: {"locked": m._estop_lockout.is_set(), "epoch": m.lockout_epoch} for n, m in meshes.items()}
        elif do == "peers":
            res = {n: [p.get("peer_id") for p in m.peers] for n, m in meshes.items()}
        elif do == "quit":
            break
        else:
            raise ValueError(f"unknown request {do!r}")
        out["res"] = res
    except Exception as exc:  # reported to the test, which fails with it
        out["exc"] = repr(exc)
    print("RES " + json.dumps(out, default=repr), flush=True)

for m in meshes.values():
    m.stop()
