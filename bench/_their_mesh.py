"""strands-robots 0.5.3's own Mesh.send round trip, for bench/bench_mesh.py rtt. Not a test.

Runs under the interop Python (>= 3.12 with ``strands-robots[mesh]==0.5.3``; scripts/interop_venv.sh):

    python _their_mesh.py robot   # their robot peer "srarm" (a duck-typed arm): prints READY, runs until stdin closes
    python _their_mesh.py op N    # their agent "srop": N status sends to srarm, prints RTT <json seconds list>

Both on ``STRANDS_MESH_NAMESPACE`` / ``STRANDS_MESH_PORT`` from the environment (loopback,
``STRANDS_MESH_LOCAL_DEV=1``), so two processes reach each other as two of their peers do.
Sends are paced 75 ms apart: their sessions drop a second command within 50 ms per link
(docs/interop-notes.md (g)), so a faster loop would measure their limiter, not their path.
"""

import json
import sys
import threading
import time

from strands_robots.mesh import init_mesh


class Arm:
    """The attributes their Mesh reaches on a robot for ``status``."""

    tool_name_str = "srarm"

    def get_task_status(self):
        return {"status": "success", "content": [{"text": "Robot Status: IDLE"}]}

    def stop_task(self):
        return {"status": "success", "content": [{"text": "No task running to stop"}]}


if sys.argv[1] == "robot":
    mesh = init_mesh(Arm(), peer_id="srarm", peer_type="robot")
    print("READY", flush=True)
    sys.stdin.read()
    mesh.stop()
else:
    n = int(sys.argv[2])
    mesh = init_mesh(None, peer_id="srop", peer_type="agent")
    deadline = time.monotonic() + 30
    while not any(p.get("peer_id") == "srarm" for p in mesh.peers):
        if time.monotonic() > deadline:
            print("FAILED srarm not seen in 30 s", flush=True)
            sys.exit(1)
        threading.Event().wait(0.05)
    lat = []
    for i in range(20 + n):
        t0 = time.perf_counter()
        r = mesh.send("srarm", {"action": "status"}, timeout=5.0)
        dt = time.perf_counter() - t0
        if r.get("type") == "error" or r.get("status") == "error":
            print("FAILED " + json.dumps(r, default=repr)[:300], flush=True)
            sys.exit(1)
        if i >= 20:  # warm-up done
            lat.append(dt)
        threading.Event().wait(0.075)
    print("RTT " + json.dumps(lat), flush=True)
    mesh.stop()
