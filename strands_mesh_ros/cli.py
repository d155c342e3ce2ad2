"""``strands-mesh``: the fleet from a terminal (``strands-mesh --help``; docs/cli.md).

Every command takes ``--json`` and the connection options ``--connect/--listen/--config/--prefix/
--namespace``. Exit codes: 0 ok; 1 the mesh answered with an error, a refusal, a timeout, or an
e-stop not acked by every peer; 2 bad usage or input; 3 the mesh could not be joined. Under
``--json`` results go to stdout and an error is one JSON line on stderr,
``{"error": "<message>", "exit": <code>}`` (usage errors included).

No command waits a fixed discovery time: who is on the mesh is asked of it (a liveliness
query and a presence query, answered in milliseconds; :meth:`~strands_mesh_ros.mesh.session.SharedPeers.query`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .robot.process import run_to_exit

HELP = (
    "The strands mesh fleet from a terminal.\n\n"
    "Examples:\n\n"
    "  strands-mesh up  (the simulated default fleet, with a live view)\n\n"
    "  strands-mesh peers\n\n"
    "  strands-mesh tell arm1 \"move joints to 0 0.5 -0.5 0 0 0\"\n\n"
    "  strands-mesh send arm1 '{\"action\": \"status\"}'\n\n"
    "  strands-mesh estop --reason drill\n\n"
    "  strands-mesh view  (the live fleet in a browser)\n\n"
    "  strands-mesh record incident --duration 30  (a rosbag2/MCAP bag)\n\n"
    "  strands-mesh router  (a Zenoh router for fleets beyond one LAN)\n\n"
    "Exit codes: 0 ok; 1 an error, refusal or timeout from the mesh, or an e-stop not acked by "
    "every peer; 2 bad usage; 3 the mesh could not be joined. With --json, results go to stdout "
    "and errors to stderr as one JSON line {\"error\": ..., \"exit\": ...}."
)
app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP, rich_markup_mode=None)
out = Console()
err = Console(stderr=True)

Connect = Annotated[Optional[list[str]], typer.Option("--connect", "-e", help="Zenoh endpoint to connect to (repeatable), e.g. tcp/10.0.0.2:7447.")]
Listen = Annotated[Optional[list[str]], typer.Option("--listen", "-l", help="Zenoh endpoint to listen on (repeatable).")]
ConfigFile = Annotated[Optional[str], typer.Option("--config", "-c", help="Zenoh json5 config file.")]
Prefix = Annotated[Optional[str], typer.Option("--prefix", help="Contract key prefix (default: strands).")]
Namespace = Annotated[Optional[str], typer.Option("--namespace", help="Zenoh session namespace ('strands' for strands-robots).")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
Timeout = Annotated[float, typer.Option("--timeout", "-t", help="Seconds to wait for answers.")]
Discover = Annotated[float, typer.Option(
    "--discover", help="Most seconds to wait for the target peer to be heard (returns as soon as it is).")]
ExtraListen = Annotated[float, typer.Option(
    "--discover", help="Extra seconds to listen for peers that answer no query (strands-robots peers are "
                       "heard only by their 2 Hz presence: 0.6 hears them); default 0.")]

OPERATOR_AUDIT = "operator"
"""Audit file name part of every CLI call's peer (``audit-operator.jsonl``): one file for the
operator's calls, not one per CLI process (each line names its peer)."""

_json_errors = False  # set by main() when --json is on the command line
_exit_at_end = False  # set by main(): the process ends with os._exit when the command is done

RESUME_TARGET_WAIT = 2.0
"""Most seconds ``resume`` waits for each named target to be heard before it resumes (returns
as soon as it is): four presence periods of a strands-robots peer (2 Hz)."""


class Exit:
    OK, FAILED, USAGE, NO_MESH = 0, 1, 2, 3


def _error(message: str, code: int) -> typer.Exit:
    """Report ``message`` on stderr (one JSON line under --json, else ``error: ...``) and return
    the typer.Exit with ``code`` for the caller to raise."""
    if _json_errors:
        sys.stderr.write(json.dumps({"error": message, "exit": code}) + "\n")
        sys.stderr.flush()
    else:
        err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _cli_peer_id(cn: str | None = None) -> str:
    """``cli-<host>-<pid>``; with a signing certificate of common name ``cn``,
    ``<cn>__cli-<host>-<pid>``: an id that certificate speaks for on a fleet that requires signed
    wire identity (docs/security.md), still unique per process. At most 64 characters."""
    pid = str(os.getpid())
    if cn and re.fullmatch(r"[A-Za-z0-9_-]+", cn):
        room = 64 - len(cn) - len("__cli--") - len(pid)
        if room >= 1:
            return f"{cn}__cli-{re.sub(r'[^A-Za-z0-9_-]', '_', socket.gethostname())[:min(40, room)]}-{pid}"
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return f"cli-{host}-{pid}"


def _config(connect, listen, config, prefix, namespace):
    from .mesh.config import MeshConfig

    try:
        return MeshConfig.from_env(connect=connect or None, listen=listen or None, config_file=config,
                                   prefix=prefix, namespace=namespace)
    except ValueError as exc:
        raise _error(str(exc), Exit.USAGE) from None


def _open(connect, listen, config, prefix, namespace, resume_key: bytes | None = None, resume_signing_key=None,
          safety: bool = True, realtime: bool = False):
    """Join the mesh as this CLI call's agent peer. ``safety`` False: a command that neither
    issues nor watches e-stops and resumes (the safety session is then never opened).
    ``realtime``: :func:`_realtime` once the imports are done, before Zenoh starts its threads."""
    from .mesh.mesh import Mesh

    from .mesh.identity import wire_setup

    cfg = _config(connect, listen, config, prefix, namespace)
    try:
        identity = wire_setup(cfg).identity
        if realtime:
            _realtime()
        # check_unique=False: the id carries this process's pid, so no other peer has it, and
        # an e-stop goes out one network round trip sooner.
        return Mesh(_cli_peer_id(identity.cn if identity else None), config=cfg, peer_type="agent", robot_type="cli",
                    resume_key=resume_key, resume_signing_key=resume_signing_key, audit_name=OPERATOR_AUDIT,
                    check_unique=False, safety=safety).start()
    except (RuntimeError, ValueError) as exc:
        raise _error(f"could not join the mesh: {exc}", Exit.NO_MESH) from None


def _realtime() -> None:
    """Run this call real-time when ``STRANDS_MESH_RT_PRIORITY`` is set (robot/realtime.py,
    docs/safety.md "Real-time priority"): on a busy machine an ordinary process issuing an
    e-stop waited up to ~150 ms for a CPU to put it and to take the acks (bench/bench_mesh.py
    estop). Called before the mesh is joined, so that Zenoh's threads inherit it, and after the
    imports, so that ~0.5 s of start-up is no real-time work. One dim line on stderr says what
    was set. Bad settings, or real-time not permitted here, give one warning line
    naming the cause, and the e-stop goes out at ordinary priority: a tuning setting never
    holds an e-stop back.
    """
    from .robot.realtime import RealtimeError, enter_realtime_from_env

    try:
        done = enter_realtime_from_env()
    except (ValueError, RealtimeError) as exc:
        err.print(f"[yellow]warning:[/] not real-time: {escape(str(exc))}", soft_wrap=True, highlight=False)
        return
    if done:
        err.print(f"[dim]real-time: {escape(done)}[/]", soft_wrap=True, highlight=False)


def _leave(mesh: Any) -> None:
    """Stop ``mesh``; from the ``strands-mesh`` entry point, which ends the process with
    ``os._exit`` at once (:func:`main`), without closing its Zenoh sessions."""
    mesh.stop(close_sessions=not _exit_at_end)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def _parse_json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(f"{what} is not valid JSON: {exc}", Exit.USAGE) from None
    if not isinstance(value, dict) or not isinstance(value.get("action"), str):
        raise _error(f'{what} must be a JSON object with an "action", e.g. {{"action": "status"}}', Exit.USAGE)
    return value


def _check_peer(peer: str) -> str:
    from .contract.keys import InvalidPeerId, check_peer_id

    try:
        return check_peer_id(peer)
    except InvalidPeerId as exc:
        raise _error(str(exc), Exit.USAGE) from None


def _peers_table(peers: dict, width: int | None = None) -> Table:
    """The peer table for ``width`` columns (default the console's): :func:`~strands_mesh_ros.peer_columns.peers_table`."""
    from .peer_columns import peers_table

    return peers_table(peers, width or out.size.width, title="strands mesh peers")


def _show_response(resp, as_json: bool) -> None:
    failure = resp.failure()  # also a "done" answer whose result says ok: false / error
    if as_json:
        _print_json(resp.model_dump(exclude_none=True))
        if failure is not None:
            raise _error(f"{resp.status} from {resp.responder_id}: {failure}", Exit.FAILED)
    elif failure is None:
        out.print_json(data=resp.result) if resp.result is not None else out.print("[green]done[/]")
    elif resp.ok:
        err.print(f"[red]failed[/] at {resp.responder_id}: {escape(str(failure))}")
    else:
        err.print(f"[red]{resp.status}[/] from {resp.responder_id}: {escape(str(resp.error))}")
    if failure is not None:
        raise typer.Exit(Exit.FAILED)


def _wait_peer(mesh, peer: str, discover: float) -> None:
    """Return as soon as ``peer`` is known (its liveliness token, delivered within ms of
    joining, or its presence); fail after ``discover`` s."""
    if not mesh.table.wait_known(peer, discover):
        known = ", ".join(sorted(mesh.peers)) or "none"
        _leave(mesh)
        raise _error(f"peer {peer!r} not found on the mesh within {discover} s (known: {known})", Exit.FAILED)


@app.command(short_help="List the peers, with their e-stop state (--watch: live).", help="List the peers on the mesh: asked of the mesh, answered in milliseconds (--watch: a live table).")
def peers(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep a live table until Ctrl-C.")] = False,
    discover: ExtraListen = 0.0, as_json: Json = False, connect: Connect = None, listen: Listen = None,
    config: ConfigFile = None, prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """List the peers on the mesh (with --watch, live).

    Joins as a plain Zenoh session, not a peer (so it is not listed itself and writes no audit
    line), asks the liveliness tokens and every peer's presence at once (``SharedPeers.query``),
    and waits only for the presence of a peer whose token answered but whose presence did not.
    """
    from .mesh.session import POOL

    cfg = _config(connect, listen, config, prefix, namespace)
    try:
        session = POOL.acquire(cfg, "main")
    except (RuntimeError, ValueError) as exc:
        raise _error(f"could not join the mesh: {exc}", Exit.NO_MESH) from None
    shared = POOL.peers_for(session, cfg, _ignore_leave)
    table = shared.table
    try:
        if shared.trust is None:  # the fleet's signed-identity policy, as every Mesh applies it
            from .mesh.identity import wire_setup

            try:
                shared.trust = wire_setup(cfg).trust
            except ValueError as exc:
                raise _error(str(exc), Exit.USAGE) from None
        live = shared.query(timeout=2.0)
        # a live token whose presence did not answer the query: an older peer, heard at its 2 Hz beat
        table.wait_for(lambda s: live <= set(s), 0.6)
        if discover > 0:
            threading.Event().wait(discover)
        if not watch:
            found = table.snapshot()
            if as_json:
                _print_json([p.to_dict() for _, p in sorted(found.items())])
            else:
                out.print(_peers_table(found))
            return
        from rich.live import Live

        tick = threading.Event()
        with Live(_peers_table(table.snapshot()), console=out, refresh_per_second=4) as live_view:
            while True:
                if as_json:
                    _print_json([p.to_dict() for _, p in sorted(table.snapshot().items())])
                else:
                    live_view.update(_peers_table(table.snapshot()))
                tick.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        POOL.release_peers(shared, _ignore_leave)
        if not _exit_at_end:  # else the process ends at once (main)
            POOL.release(session)


def _ignore_leave(peer_id: str, why: str) -> None:
    """The peers command has no pending calls to fail when a peer leaves."""


@app.command(short_help="Run a plain-text instruction on PEER and wait for it.", help="Execute a plain-text instruction on PEER and wait for it to finish.")
def tell(
    peer: Annotated[str, typer.Argument(help="Target peer id.")],
    text: Annotated[str, typer.Argument(help='Instruction, e.g. "home" or "open gripper".')],
    policy_provider: Annotated[Optional[str], typer.Option(
        "--policy-provider", help="Policy a strands-robots peer runs it with (they require one, e.g. mock); "
                                  "default $STRANDS_MESH_POLICY_PROVIDER.")] = None,
    timeout: Timeout = 60.0, discover: Discover = 3.0, as_json: Json = False, connect: Connect = None,
    listen: Listen = None, config: ConfigFile = None, prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Execute a plain-text instruction on PEER and wait for it to finish."""
    _check_peer(peer)
    mesh = _open(connect, listen, config, prefix, namespace, safety=False)
    try:
        _wait_peer(mesh, peer, discover)
        try:
            resp = mesh.tell(peer, text, timeout=timeout, policy_provider=policy_provider)
        except ValueError as exc:
            raise _error(str(exc), Exit.USAGE) from None
        _show_response(resp, as_json)
    finally:
        _leave(mesh)


@app.command(help="Send a JSON command to PEER and print its response.")
def send(
    peer: Annotated[str, typer.Argument(help="Target peer id.")],
    command: Annotated[str, typer.Argument(help='Command JSON, e.g. \'{"action": "status"}\'.')],
    timeout: Timeout = 30.0, discover: Discover = 3.0, as_json: Json = False, connect: Connect = None,
    listen: Listen = None, config: ConfigFile = None, prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Send a JSON command to PEER and print its response."""
    _check_peer(peer)
    cmd = _parse_json(command, "COMMAND")
    mesh = _open(connect, listen, config, prefix, namespace, safety=False)
    try:
        _wait_peer(mesh, peer, discover)
        _show_response(mesh.send(peer, cmd, timeout=timeout), as_json)
    finally:
        _leave(mesh)


@app.command(short_help="Send a JSON command to every peer; print each answer.", help="Send a JSON command to every peer and print each answer (returns when all known peers answered).")
def broadcast(
    command: Annotated[str, typer.Argument(help="Command JSON for every peer.")],
    timeout: Timeout = 3.0, discover: ExtraListen = 0.0, as_json: Json = False, connect: Connect = None,
    listen: Listen = None, config: ConfigFile = None, prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Send a JSON command to every peer and print each answer."""
    cmd = _parse_json(command, "COMMAND")
    mesh = _open(connect, listen, config, prefix, namespace, safety=False)
    try:
        mesh.refresh_peers(timeout)
        if discover > 0:
            threading.Event().wait(discover)
        res = mesh.broadcast(cmd, timeout=timeout)
        if as_json:
            _print_json({"responses": {k: v.model_dump(exclude_none=True) for k, v in res.responses.items()},
                         "missing": res.missing})
        else:
            t = Table(title=f"broadcast {cmd['action']}")
            for col in ("peer", "status", "answer"):
                t.add_column(col)
            for pid, r in sorted(res.responses.items()):
                t.add_row(pid, r.status, json.dumps(r.result) if r.ok else str(r.error))
            for pid in res.missing:
                t.add_row(pid, "[red]no answer[/]", "")
            out.print(t)
        failed = sorted(p for p, r in res.responses.items() if r.failure() is not None)
        if res.missing or failed:
            raise _error(f"no answer from {', '.join(res.missing) or 'none'}; failed at {', '.join(failed) or 'none'}",
                         Exit.FAILED) if as_json else typer.Exit(Exit.FAILED)
    finally:
        _leave(mesh)


@app.command(short_help="Software e-stop of every peer (NOT a hardwired e-stop).", help="Software e-stop of every peer: supplementary, NOT a hardwired emergency stop. The e-stop goes "
                  "out the moment the mesh is joined; returns as soon as every peer known to the mesh acked. "
                  "Exit 0 when every peer heard of is known to have stopped.")
def estop(
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (audited by every peer).")] = "operator e-stop",
    timeout: Annotated[float, typer.Option("--timeout", "-t", help="Most seconds to gather acks and stop answers.")] = 1.5,
    discover: Annotated[float, typer.Option(
        "--discover", help="Least seconds to listen after the e-stop went out, so peers known only by their "
                           "2 Hz presence (strands-robots peers: 0.6) are heard and named; default 0: the peers "
                           "a liveliness and presence query finds.")] = 0.0,
    as_json: Json = False, connect: Connect = None, listen: Listen = None,
    config: ConfigFile = None, prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Software e-stop of every peer (supplementary; NOT a hardwired emergency stop).

    The e-stop goes out the moment the mesh is joined; acks and stop answers are gathered
    afterwards. Exit 0 when every peer heard of is known to have stopped. Runs real-time when
    STRANDS_MESH_RT_PRIORITY is set (docs/safety.md)."""
    mesh = _open(connect, listen, config, prefix, namespace, realtime=True)
    try:
        report = mesh.emergency_stop(reason, timeout=max(timeout, discover), settle=discover)
        if as_json:
            _print_json(report.to_dict())
        else:
            t = Table(title=f"e-stop (seq {report.seq}) in {report.elapsed * 1000:.1f} ms")
            t.add_column("peer")
            t.add_column("result")
            for pid, lat in sorted(report.stopped.items()):
                t.add_row(pid, f"[green]halted[/] (ack {lat * 1000:.1f} ms)")
            for pid in report.no_actuators:
                t.add_row(pid, "acked, no actuators")
            for pid in report.not_acked:
                t.add_row(pid, "[bold red]NO ACK: not known to be stopped[/]")
            out.print(t)
            if discover <= 0:
                err.print("[dim]peers without a liveliness token (strands-robots peers) are named only when heard: "
                          "--discover 0.6 listens for their presence[/]")
        if not report.all_stopped:
            raise _error(f"NOT known to be stopped: {', '.join(report.not_acked)}", Exit.FAILED) if as_json \
                else typer.Exit(Exit.FAILED)
    finally:
        _leave(mesh)


@app.command(short_help="Clear e-stop lockouts with a signed resume.", help="Clear e-stop lockouts with a signed resume: our HMAC resume (key from STRANDS_MESH_RESUME_KEY, "
                  "else the file in STRANDS_MESH_RESUME_KEY_FILE, else the per-user key file `strands-mesh up` "
                  "creates) and, when STRANDS_MESH_RESUME_PRIVATE_KEY_FILE names an Ed25519 key, the "
                  "strands-robots 0.5.3 signed assertion first (docs/safety.md).")
def resume(
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Peer to resume (repeatable); default all.")] = None,
    operator: Annotated[str, typer.Option("--operator", help="Who resumes (audited).")] = "",
    epoch: Annotated[Optional[str], typer.Option(
        "--epoch", help="Lockout epoch (the e-stop's estop_id) the Ed25519 assertion clears; default: "
                        "asked of the targets' status.")] = None,
    timeout: Timeout = 1.0, discover: ExtraListen = 0.0, as_json: Json = False, connect: Connect = None,
    listen: Listen = None, config: ConfigFile = None, prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Clear e-stop lockouts with a signed resume.

    Our HMAC resume, with the key from STRANDS_MESH_RESUME_KEY, else the file named by
    STRANDS_MESH_RESUME_KEY_FILE, else the per-user key file that `strands-mesh up` creates;
    and, when STRANDS_MESH_RESUME_PRIVATE_KEY_FILE names an Ed25519 key, strands-robots 0.5.3's
    signed assertion first, for the lockout epoch of --epoch or of the targets' status
    (docs/safety.md).
    """
    from .mesh.mesh import MeshError
    from .robot.resume_ed25519 import PRIVATE_KEY_FILE_ENV, load_signing_key
    from .robot.safety import default_resume_key_path, load_resume_key

    for t in target or []:
        _check_peer(t)
    try:
        key = load_resume_key(user_file=True)
        signing = load_signing_key()
    except ValueError as exc:
        raise _error(str(exc), Exit.USAGE) from None
    if key is None and signing is None:
        raise _error(f"no resume key: set STRANDS_MESH_RESUME_KEY (or STRANDS_MESH_RESUME_KEY_FILE) "
                     f"to the fleet's key, or run `strands-mesh up` on this machine once to create "
                     f"{default_resume_key_path()}; for strands-robots peers, set "
                     f"{PRIVATE_KEY_FILE_ENV} to the Ed25519 signing key", Exit.USAGE)
    if epoch is not None and signing is None:
        raise _error(f"--epoch needs an Ed25519 signing key ({PRIVATE_KEY_FILE_ENV})", Exit.USAGE)
    mesh = _open(connect, listen, config, prefix, namespace, resume_key=key, resume_signing_key=signing)
    try:
        mesh.refresh_peers(max(timeout, 0.5))
        # Named targets that answer no query (strands-robots peers: no liveliness token) are
        # waited for until heard (their presence comes every 0.5 s), not for a fixed time: a
        # resume put before their session routes our answers back would go unanswered.
        for pid in target or ():
            mesh.table.wait_known(pid, RESUME_TARGET_WAIT)
        if discover > 0:
            threading.Event().wait(discover)
        try:
            answers = _resume_all(mesh, target or None, operator or os.environ.get("USER", ""), timeout,
                                  epoch, signing is not None, key is not None)
        except MeshError as exc:
            raise _error(str(exc), Exit.USAGE) from None
        if as_json:
            _print_json(answers)
        else:
            t = Table(title="resume")
            t.add_column("peer")
            t.add_column("result")
            for pid, a in sorted(answers.items()):
                t.add_row(pid, "[green]resumed[/]" if a["accepted"] else f"[red]refused[/]: {a['detail']}")
            out.print(t)
        refused = sorted(p for p, a in answers.items() if not a["accepted"])
        if refused:
            raise _error(f"not resumed: {', '.join(refused)}", Exit.FAILED) if as_json else typer.Exit(Exit.FAILED)
    finally:
        _leave(mesh)


def _resume_all(mesh, targets, operator, timeout, epoch, ed25519: bool, hmac: bool) -> dict[str, dict[str, Any]]:
    """Resume ``targets``: one Ed25519 assertion per lockout epoch (``epoch``, else each
    target's status; a target whose status names none, such as a strands-robots peer, goes with
    every epoch found), then our HMAC resume for whatever did not accept."""
    from .mesh.mesh import MeshError

    if not ed25519:
        return mesh.resume(targets=targets, operator=operator, timeout=timeout, scheme="hmac")
    if epoch is not None:
        groups = {epoch: targets}
    else:
        epochs = mesh.lockout_epochs(targets, timeout=timeout)
        found = sorted({e for e in epochs.values() if e})
        if not found:
            if not hmac:
                raise MeshError("no target reports a lockout epoch: pass --epoch <estop_id>")
            return mesh.resume(targets=targets, operator=operator, timeout=timeout, scheme="hmac")
        unknown = [p for p, e in epochs.items() if not e]
        groups = {e: sorted([p for p, pe in epochs.items() if pe == e] + unknown) for e in found}
    answers: dict[str, dict[str, Any]] = {}
    for e, group in groups.items():
        for p, a in mesh.resume(targets=group, operator=operator, timeout=timeout, epoch=e,
                                scheme="ed25519").items():
            if a["accepted"] or p not in answers:
                answers[p] = a
    rest = [p for p, a in answers.items() if not a["accepted"]]
    if hmac and rest:
        for p, a in mesh.resume(targets=rest, operator=operator, timeout=timeout, scheme="hmac").items():
            if a["accepted"] or answers.get(p, {}).get("detail") == "no answer":
                answers[p] = a
    return answers


@app.command(help="Print every sample published on KEYEXPR.")
def echo(
    keyexpr: Annotated[str, typer.Argument(help="Zenoh key expression, e.g. 'strands/*/state'.")],
    count: Annotated[int, typer.Option("--count", "-n", help="Stop after N samples (0 = until Ctrl-C).")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", "-t", help="Give up after T s without the N samples (0 = never).")] = 0.0,
    as_json: Json = False, connect: Connect = None, listen: Listen = None, config: ConfigFile = None,
    prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Print every sample published on KEYEXPR."""
    mesh = _open(connect, listen, config, prefix, namespace, safety=False)
    got = threading.Semaphore(0)
    lock = threading.Lock()
    shown = [0]

    def show(key: str, value: Any) -> None:
        with lock:
            if count and shown[0] >= count:
                return  # samples arriving while the session closes
            shown[0] += 1
            if as_json:
                _print_json({"key": key, "value": value if not isinstance(value, bytes) else value.hex()})
            else:
                out.print(f"[bold]{key}[/] {value if isinstance(value, bytes) else json.dumps(value)}")
        got.release()

    try:
        try:
            mesh.subscribe(keyexpr, show)
        except ValueError as exc:
            raise _error(str(exc), Exit.USAGE) from None
        n = 0
        while count == 0 or n < count:
            if not got.acquire(timeout=timeout or None):
                raise _error(f"{n} of {count} samples on {keyexpr!r} within {timeout} s", Exit.FAILED)
            n += 1
    except KeyboardInterrupt:
        pass
    finally:
        _leave(mesh)


@app.command(short_help="Run a simulated fleet with a live view; Ctrl-C stops it.", help="Bring up a simulated fleet on the mesh (ROS nodes and the bridge when rclpy is importable), "
                  "with a live view; Ctrl-C stops it. Mesh options win over the fleet file's mesh: section, which "
                  "wins over the environment.")
def up(
    fleet: Annotated[Optional[str], typer.Argument(help="Fleet YAML (default: the built-in fleet of config/fleet.yaml).")] = None,
    no_ros: Annotated[bool, typer.Option("--no-ros", help="Pure-mesh fleet: no ROS nodes, no bridge.")] = False,
    headless: Annotated[bool, typer.Option("--headless", help="No live view; log lines only (for services).")] = False,
    duration: Annotated[float, typer.Option("--duration", help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    connect: Connect = None, listen: Listen = None, config: ConfigFile = None, prefix: Prefix = None,
    namespace: Namespace = None,
    view: Annotated[bool, typer.Option("--view", help="Also serve the fleet view in the browser (strands-mesh view).")] = False,
    view_port: Annotated[int, typer.Option("--view-port", help="Port of the fleet view (0 = a free one).")] = 8470,
) -> None:
    """Bring up a simulated fleet on the mesh (ROS nodes + bridge when rclpy is importable).

    Mesh settings: these options win over the fleet file's `mesh:` section, which wins over
    the environment and the defaults. The resume key comes from STRANDS_MESH_RESUME_KEY(_FILE),
    else the per-user key file, created on first use (docs/safety.md).
    """
    from .up import run_up

    cli_mesh = {"connect": connect or None, "listen": listen or None, "config_file": config, "prefix": prefix,
                "namespace": namespace}
    raise typer.Exit(run_up(fleet, cli_mesh, use_ros=not no_ros, headless=headless, duration=duration,
                            view_port=view_port if view else None))


@app.command()
def view(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port to serve on (0 = a free one).")] = 8470,
    host: Annotated[str, typer.Option("--host", help="Address to serve on; 0.0.0.0 shows the page to the network.")] = "127.0.0.1",
    duration: Annotated[float, typer.Option("--duration", help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    connect: Connect = None, listen: Listen = None, config: ConfigFile = None, prefix: Prefix = None,
    namespace: Namespace = None,
) -> None:
    """Serve the live fleet view (3D models, joints, tasks, e-stop state) in the browser; read-only."""
    from .view import run_view

    raise typer.Exit(run_view(_config(connect, listen, config, prefix, namespace), host, port, duration))


# -- strands-mesh router (issue 12): a self-contained block ------------------------------------

@app.command()
def router(
    connect: Connect = None, listen: Listen = None, config: ConfigFile = None,
    no_multicast: Annotated[bool, typer.Option("--no-multicast", help="Disable multicast scouting.")] = False,
) -> None:
    """Run a Zenoh router (the fleet's backbone beyond one LAN) until Ctrl-C / SIGTERM.

    Default listen: tcp/[::]:7447. --connect names other routers (a backbone); --config takes a
    Zenoh json5 (the secured profile's router file: TLS, mTLS, ACL). See docs/scale.md.
    """
    import signal

    from .mesh.config import MeshConfig
    from .mesh.router import Router

    try:  # one error line however long (soft_wrap): scripts and service logs read it
        cfg = MeshConfig.from_env(connect=connect or None, listen=listen or None, config_file=config,
                                  multicast_scouting=False if no_multicast else None)
        r = Router(cfg)
    except ValueError as exc:
        raise _error(f"{exc}", Exit.USAGE) from None
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        r.start()
    except RuntimeError as exc:
        raise _error(f"{exc}", Exit.NO_MESH) from None
    try:
        out.print(f"router {r.zid} listening on {' '.join(r.locators())}"
                  + (f", connecting to {' '.join(cfg.connect)}" if cfg.connect else ""), soft_wrap=True)
        sys.stdout.flush()
        # in ticks: a signal delivered to one of Zenoh's threads runs its handler only when the
        # main thread next runs Python code, which a plain wait() never does
        while not done.wait(0.2):
            pass
    finally:
        r.close()


# -- record / replay (strands_mesh_ros.recording; docs/recording.md) ---------------------------

@app.command()
def record(
    out_dir: Annotated[str, typer.Argument(help="Bag directory to create (rosbag2, MCAP storage).")],
    duration: Annotated[float, typer.Option("--duration", help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it is an existing bag.")] = False,
    as_json: Json = False, connect: Connect = None, listen: Listen = None, config: ConfigFile = None,
    prefix: Prefix = None, namespace: Namespace = None,
) -> None:
    """Record the mesh into a rosbag2/MCAP bag: joint_states, odometry and all contract traffic."""
    import signal
    import time

    from .recording import Recorder, RecordingError, prepare_output

    if duration < 0:
        raise _error(f"--duration must be >= 0, got {duration}", Exit.USAGE) from None
    cfg = _config(connect, listen, config, prefix, namespace)
    try:
        rec = Recorder(prepare_output(out_dir, force), cfg)
    except RecordingError as exc:
        raise _error(f"{exc}", Exit.USAGE) from None
    try:
        rec.start()
    except (RuntimeError, ValueError) as exc:
        raise _error(f"could not join the mesh: {exc}", Exit.NO_MESH) from None

    # Waits are short ticks: a signal delivered to one of Zenoh's threads does not wake the main
    # thread's blocking wait (it hung there), so the main thread looks at the flag every tick.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # as Ctrl-C: the bag is closed, not lost
    deadline = time.monotonic() + duration if duration else None
    err.print(f"recording {cfg.prefix}/** to {escape(out_dir)}" + (f" for {duration} s" if duration else " (Ctrl-C stops)"))
    announced = False
    try:
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if not announced and rec.first_sample.is_set():
                err.print("receiving samples")
                announced = True
            stop.wait(0.2 if left is None else min(0.2, left))
    except KeyboardInterrupt:
        pass
    try:
        stats = rec.stop()
    except RecordingError as exc:
        raise _error(f"{exc}", Exit.FAILED) from None
    if as_json:
        _print_json({"bag": out_dir, **stats.to_dict()})
    else:
        t = Table(title=f"recorded {out_dir}")
        t.add_column("topic")
        t.add_column("messages", justify="right")
        for topic, n in sorted(stats.topics.items()):
            t.add_row(topic, str(n))
        out.print(t)


@app.command()
def replay(
    bag: Annotated[str, typer.Argument(help="Bag directory written by `strands-mesh record`.")],
    replay_prefix: Annotated[Optional[str], typer.Option(
        "--prefix", help="Key prefix to republish under (default: <recorded prefix>_replay).")] = None,
    rate: Annotated[float, typer.Option("--rate", help="Playback speed factor (1 = as recorded).")] = 1.0,
    as_json: Json = False, connect: Connect = None, listen: Listen = None, config: ConfigFile = None,
    namespace: Namespace = None,
) -> None:
    """Republish a bag's recorded robot state (never commands or e-stops) under a replay prefix."""
    from .recording import RecordingError, replay as run_replay

    cfg = _config(connect, listen, config, None, namespace)
    stop = threading.Event()
    try:
        stats = run_replay(bag, cfg, replay_prefix=replay_prefix, rate=rate, stop=stop,
                           on_start=lambda p: err.print(f"replaying {escape(bag)} under {p}/"))
    except (RecordingError, ValueError) as exc:
        raise _error(f"{exc}", Exit.USAGE) from None
    except RuntimeError as exc:
        raise _error(f"could not join the mesh: {exc}", Exit.NO_MESH) from None
    except KeyboardInterrupt:
        return
    if as_json:
        _print_json(stats.to_dict())
    else:
        out.print(f"replayed {stats.states} states and {stats.presences} presences of "
                  f"{', '.join(sorted(stats.peers)) or 'no robot'}")


def main() -> None:
    """The ``strands-mesh`` entry point. Under ``--json``, usage errors too are reported as one
    JSON line on stderr (``{"error": ..., "exit": 2}``).

    The process ends with :func:`~strands_mesh_ros.robot.process.run_to_exit` once the command is
    done (output flushed, no interpreter teardown): the teardown and closing the Zenoh sessions
    took 0.1-0.25 s after the answer was printed (bench/bench_cli.py), and a thread left in
    rclpy's ``EventsExecutor`` (``up``) would abort it. Every command has left the mesh and
    closed its files by then.
    """
    global _exit_at_end
    _exit_at_end = True
    # pydantic's plugin lookup scans every installed distribution's entry points (~17 ms with
    # the ROS wheels installed) the first time a model is built; the CLI uses no plugin (typer
    # turns them off around its own pydantic use for the same reason).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    run_to_exit(_main)


def _main() -> None:
    global _json_errors
    _json_errors = "--json" in sys.argv[1:]
    if not _json_errors:
        app()
        return
    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # end of input while typer itself had control
        sys.exit(130)
    except Exception as exc:
        # A click usage error (unknown option, missing argument, bad value), told by click's
        # exception interface, since typer >= 0.22 vendors click under a private module.
        fmt, status = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if not callable(fmt) or not isinstance(status, int):
            raise
        _error(fmt(), status)
        sys.exit(status)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
