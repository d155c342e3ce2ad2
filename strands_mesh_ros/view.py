"""``strands-mesh view``: the live fleet in a browser, self-hosted and offline.

A dashboard peer on the mesh (:class:`~strands_mesh_ros.mesh.mesh.Mesh`) watches presence and
every robot's state, asks each robot once for its ``robot_description`` (the **(ext)** field of
its ``features`` answer), and serves, over the standard library's HTTP server:

=====================  ================================================================
``GET /``              the page (``view_static/index.html``): three.js + urdf-loader, vendored
``GET /static/<f>``    the page's files (``view_static/``; nothing outside it)
``GET /api/fleet``     the fleet now, JSON (:meth:`FleetView.snapshot`)
``GET /api/events``    the same snapshot pushed as Server-Sent Events, ``PUSH_HZ`` per second
``GET /api/description/<id>``  the robot's URDF (404: unknown robot or none published)
=====================  ================================================================

Read-only: there are no command endpoints; any method but GET/HEAD answers 405. An unknown
path answers 404, a malformed robot id 400, each with a one-line JSON error naming the problem.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from .contract.keys import InvalidPeerId, check_peer_id
from .contract.payloads import EStopAck, validation_summary
from .mesh.config import MeshConfig
from .mesh.mesh import Mesh
from .mesh.peers import PeerInfo

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "view_static"
"""The page and its vendored libraries (three.js 0.187, urdf-loader 0.13; LICENSE files beside)."""

PUSH_HZ = 10.0
"""Snapshots per second pushed to each page: enough for smooth joints at the robots' 20 Hz
state, and cheap (a fleet of ten robots is ~10 KiB per snapshot)."""

DESCRIBE_TIMEOUT = 5.0
"""s a robot gets to answer the ``features`` call that carries its robot_description."""

DESCRIBE_RETRY = 5.0
"""s before a robot whose ``features`` call failed is asked again."""

DEFAULT_PORT = 8470
"""TCP port of ``strands-mesh view`` and ``up --view`` unless told otherwise (unassigned by IANA)."""

ACK_MARGIN = 0.2
"""s: a robot's e-stop ack shows it locked out until a presence heard this long after the ack
says otherwise. Presence and acks travel on different sessions, so a presence sent just before
the latch can arrive just after the ack; it must not clear the lockout on the page."""

SR_LOCKOUT_ON = frozenset({"remote_estop_engaged", "emergency_stop"})
SR_LOCKOUT_OFF = frozenset({"remote_resume_applied", "resume_ok"})
"""strands-robots 0.5.3 announces its four lockout transitions on ``P/{id}/safety/event``
(``core.py`` ~4230; docs/interop-notes.md (b)); its presence carries no lockout."""

ROBOT_TYPES = frozenset({"robot", "sim"})
"""Peer types shown as robots; agents, dashboards and bridges are listed but not drawn."""


def lives(info: PeerInfo) -> str:
    """Where a peer lives: ``strands-robots``, ``ros via <bridge>``, ``ros`` or ``mesh``."""
    if info.strands_robots:
        return "strands-robots"
    if info.via:
        return f"ros via {info.via}"
    if info.presence.ros is not None:
        return "ros"
    return "mesh"


class FleetView:
    """Watch the fleet on the mesh and serve the page.

    Args:
        config: the mesh to watch (default :meth:`MeshConfig.from_env`).
        host: address to listen on; the default keeps the page on this machine.
        port: TCP port; 0 picks a free one (see :attr:`url`).
        peer_id: this dashboard's peer id (default ``view-<random>``).

    Raises:
        OSError: the port cannot be bound (from :meth:`start`).
    """

    def __init__(self, config: MeshConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 peer_id: str | None = None) -> None:
        self.config = config or MeshConfig.from_env()
        self.host, self.port = host, port
        self.peer_id = check_peer_id(peer_id or f"view-{uuid.uuid4().hex[:8]}")
        self.mesh: Mesh | None = None
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._states: dict[str, tuple[dict[str, Any], float]] = {}  # id -> (state, monotonic heard)
        self._descriptions: dict[str, str | None] = {}  # id -> URDF, or None: asked, has none
        self._asked: dict[str, float] = {}  # id -> monotonic time of the last features call
        self._acked: dict[str, tuple[float, dict[str, Any]]] = {}  # id -> (monotonic, lockout) from its e-stop ack
        self._sr_lockout: dict[str, dict[str, Any]] = {}  # strands-robots peer -> lockout from its safety events
        self._changed = threading.Condition()  # wakes the event streams at once (an e-stop ack)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port/`` of the page (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the view is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "FleetView":
        """Join the mesh as a dashboard peer and start serving. Idempotent."""
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        try:
            self.mesh = Mesh(self.peer_id, config=self.config, peer_type="dashboard").start()
            self.mesh.subscribe(self.mesh.keys.all_state, self._on_state)
            # every peer's e-stop acks, from any issuer (KeySpace builds them for one issuer only)
            self.mesh.subscribe(f"{self.mesh.keys.prefix}/safety/estop/ack/*/*", self._on_estop_ack)
            self.mesh.subscribe(f"{self.mesh.keys.prefix}/*/safety/event", self._on_safety_event)
        except Exception:
            self._server.server_close()
            self._server = None
            raise
        for fn, name in ((self._server.serve_forever, "http"), (self._describe_loop, "describe")):
            t = threading.Thread(target=fn, name=f"{self.peer_id}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop serving (open event streams end) and leave the mesh. Idempotent."""
        if self._server is None:
            return
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._server = None
        if self.mesh is not None:
            self.mesh.stop()
            self.mesh = None

    def __enter__(self) -> "FleetView":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- mesh side -----------------------------------------------------------------------

    def _on_state(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            log.warning("view: state on %s is not a JSON object; ignored", key)
            return
        try:
            peer = self.mesh.keys.parse(key).peer_id
        except ValueError:
            return
        with self._lock:
            self._states[peer] = (value, time.monotonic())

    def _on_estop_ack(self, key: str, value: Any) -> None:
        """An ack that says its robot halted and latched shows the lockout at once, ahead of the
        robot's next presence (up to 0.5 s later). Only acks: an e-stop alone proves no halt."""
        try:
            ack = EStopAck.model_validate(value)
        except ValidationError as exc:
            log.warning("view: unreadable e-stop ack on %s: %s", key, validation_summary(exc))
            return
        if not ack.halted or ack.detail:  # no actuators, or a replay halted without a latch
            return
        with self._lock:
            self._acked[ack.responder_id] = (time.monotonic(), {"issuer": ack.issuer_id, "t": ack.t})
        with self._changed:
            self._changed.notify_all()

    def _on_safety_event(self, key: str, value: Any) -> None:
        """A strands-robots peer's lockout transitions (:data:`SR_LOCKOUT_ON` / ``_OFF``)."""
        try:
            pid = check_peer_id(key[len(self.mesh.keys.prefix) + 1:].split("/", 1)[0])
        except InvalidPeerId:
            return
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in SR_LOCKOUT_ON | SR_LOCKOUT_OFF:
            return
        payload = value.get("payload") if isinstance(value.get("payload"), dict) else {}
        with self._lock:
            if kind in SR_LOCKOUT_ON:
                issuer = payload.get("issuer") or payload.get("sender_id") or pid
                self._sr_lockout[pid] = {"issuer": str(issuer), "reason": kind, "t": _number(value.get("t"))}
            else:
                self._sr_lockout.pop(pid, None)
        with self._changed:
            self._changed.notify_all()

    def _describe_loop(self) -> None:
        """Ask each robot peer once for its robot_description (again after a failure)."""
        while not self._stop.wait(0.2):
            mesh = self.mesh
            if mesh is None:
                continue
            now = time.monotonic()
            peers = mesh.peers
            with self._lock:  # a peer that left may come back as another robot: forget it
                # (a strands-robots lockout is kept: such a peer has no liveliness token, so a
                # presence gap under load must not make a locked-out robot look free)
                for table in (self._descriptions, self._asked, self._states, self._acked):
                    for pid in set(table) - set(peers):
                        del table[pid]
            for pid, info in peers.items():
                if info.peer_type not in ROBOT_TYPES or pid in self._descriptions:
                    continue
                if now - self._asked.get(pid, -DESCRIBE_RETRY) < DESCRIBE_RETRY:
                    continue
                self._asked[pid] = now
                try:
                    fut = mesh.send_async(pid, {"action": "features"}, timeout=DESCRIBE_TIMEOUT)
                except Exception as exc:  # the mesh stopping under us: asked again if it still runs
                    log.debug("view: features of %s not sent: %s", pid, exc)
                    continue
                fut.add_done_callback(lambda f, pid=pid: self._described(pid, f))

    def _described(self, pid: str, fut: Any) -> None:
        try:
            response = fut.result()
        except Exception as exc:
            log.info("view: no features from %s (%s); asking again in %.0f s", pid, exc, DESCRIBE_RETRY)
            return
        if not response.ok:
            log.info("view: no features from %s (%s); asking again in %.0f s", pid, response.error, DESCRIBE_RETRY)
            return
        result = response.result if isinstance(response.result, dict) else {}
        urdf = result.get("robot_description")
        with self._lock:
            self._descriptions[pid] = urdf if isinstance(urdf, str) and urdf.strip() else None

    # -- what the page reads -------------------------------------------------------------

    def description(self, robot_id: str) -> str | None:
        """The URDF ``robot_id`` published, or None (not asked yet, or it has none)."""
        with self._lock:
            return self._descriptions.get(robot_id)

    def snapshot(self) -> dict[str, Any]:
        """The fleet now: ``{t, view, peers: [...]}``, peers sorted by id.

        Each peer: ``id``, ``peer_type``, ``kind`` (its model / robot type), ``lives``
        (:func:`lives`), ``hostname``, ``age`` (s since its presence), ``robot`` (drawn as a
        robot), ``task`` (``{status, instruction}``), ``lockout`` (``{issuer, reason, t}`` while
        e-stopped, else None), ``model`` (True: a URDF is at ``/api/description/<id>``;
        False: none published; None: not known yet), ``joints`` (``{name: position}``, rad or
        m), ``base_pose`` (``{x, y, z, yaw}`` m/rad, or None), ``state_age`` (s, or None).
        """
        mesh = self.mesh
        peers = mesh.peers if mesh is not None else {}
        now = time.monotonic()
        out = []
        with self._lock:
            for pid in sorted(peers):
                info = peers[pid]
                state, heard = self._states.get(pid, ({}, None))
                joints = state.get("joints") if isinstance(state.get("joints"), dict) else {}
                task = state.get("task") if isinstance(state.get("task"), dict) else {}
                if not task and info.presence.task_status:
                    task = {"status": info.presence.task_status}
                lockout = info.presence.lockout
                if info.strands_robots and pid in self._sr_lockout:
                    lockout = self._sr_lockout[pid]
                if pid in self._acked:
                    acked_at, hint = self._acked[pid]
                    if now - info.age < acked_at + ACK_MARGIN:  # no presence since the ack yet
                        lockout = lockout or hint
                    else:
                        del self._acked[pid]  # presence is the word from here on
                out.append({
                    "id": pid, "peer_type": info.peer_type, "kind": info.robot_type, "lives": lives(info),
                    "hostname": info.hostname, "age": round(info.age, 3),
                    "robot": info.peer_type in ROBOT_TYPES,
                    "task": task, "lockout": lockout,
                    "model": (self._descriptions[pid] is not None) if pid in self._descriptions else None,
                    "joints": {n: _number(j.get("position")) for n, j in joints.items() if isinstance(j, dict)},
                    "base_pose": _pose(state.get("base_pose")),
                    "state_age": round(now - heard, 3) if heard is not None else None,
                })
        return {"t": time.time(), "view": self.peer_id, "peers": out}


def _number(v: Any) -> float | None:
    """A finite number, else None: one robot's NaN must not make the page's JSON unreadable."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _pose(v: Any) -> dict[str, float] | None:
    if not isinstance(v, dict):
        return None
    pose = {k: _number(v.get(k)) for k in ("x", "y", "z", "yaw")}
    return pose if all(x is not None for x in pose.values()) else None


# -- HTTP ------------------------------------------------------------------------------------

def _handler(view: FleetView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "strands-mesh-view"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # requests go to logging, not stderr
            log.debug("view %s: " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: bytes, ctype: str, head_only: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _error(self, status: HTTPStatus, message: str) -> None:
            body = json.dumps({"error": message, "status": int(status)}).encode()
            self._send(status, body, "application/json", self.command == "HEAD")

        def do_GET(self) -> None:
            head = self.command == "HEAD"
            path = unquote(urlsplit(self.path).path)
            if path in ("/", "/index.html"):
                return self._file(STATIC / "index.html", head)
            if path.startswith("/static/"):
                return self._static(path[len("/static/"):], head)
            if path == "/api/fleet":
                return self._send(200, json.dumps(view.snapshot()).encode(), "application/json", head)
            if path == "/api/events":
                return self._events(head)
            if path.startswith("/api/description/"):
                rid = path[len("/api/description/"):]
                try:
                    check_peer_id(rid, "robot id")
                except InvalidPeerId as exc:
                    return self._error(HTTPStatus.BAD_REQUEST, str(exc))
                urdf = view.description(rid)
                if urdf is None:
                    return self._error(HTTPStatus.NOT_FOUND, f"no robot_description known for {rid!r}")
                return self._send(200, urdf.encode(), "application/xml; charset=utf-8", head)
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path!r}")

        do_HEAD = do_GET

        def _refuse(self) -> None:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} not allowed: the view is read-only")

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

        def _static(self, rel: str, head: bool) -> None:
            root = STATIC.resolve()
            target = (root / rel).resolve()
            if root not in target.parents or not target.is_file():
                return self._error(HTTPStatus.NOT_FOUND, f"no such file: {rel!r}")
            self._file(target, head)

        def _file(self, target: Path, head: bool) -> None:
            ctype = "text/javascript" if target.suffix == ".js" else (
                mimetypes.guess_type(target.name)[0] or "application/octet-stream")
            self._send(200, target.read_bytes(), ctype, head)

        def _events(self, head: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if head:
                return
            period = 1.0 / PUSH_HZ
            try:
                while not view._stop.is_set():
                    self.wfile.write(b"data: " + json.dumps(view.snapshot()).encode() + b"\n\n")
                    self.wfile.flush()
                    with view._changed:
                        view._changed.wait(period)
                    if view._stop.is_set():
                        return
            except (BrokenPipeError, ConnectionResetError):
                return  # the page went away

    return Handler


def start_view(config: MeshConfig | None, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> FleetView:
    """Start a :class:`FleetView` and print its URL on stdout (the caller stops it).

    Raises:
        OSError: the address cannot be served; the message names it and the way out.
    """
    try:
        view = FleetView(config, host=host, port=port).start()
    except OSError as exc:
        raise OSError(f"cannot serve the fleet view on {host}:{port}: {exc.strerror or exc} "
                      f"(another view running? pick another with --port, or 0 for a free one)") from None
    print(f"fleet view: {view.url}", flush=True)
    return view


def run_view(config: MeshConfig | None, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
             duration: float = 0.0) -> int:
    """``strands-mesh view``: serve until Ctrl-C, SIGTERM or ``duration`` s (0: no limit).

    Returns:
        0 after a clean stop; 2 the address cannot be served; 3 the mesh cannot be joined
        (each reported as one ``error:`` line on stderr).
    """
    import signal
    import sys

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        view = start_view(config, host, port)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (RuntimeError, ValueError) as exc:
        print(f"error: could not join the mesh: {exc}", file=sys.stderr, flush=True)
        return 3
    try:
        stop.wait(duration or None)
    finally:
        view.stop()
    return 0

