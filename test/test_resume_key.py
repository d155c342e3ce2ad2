"""The per-user resume key file (issue 8): made by `up`, read by `resume`, refused when unsafe;
and ResumeGuard.check never raises on hostile envelope content."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import Proc
from strands_mesh_ros.contract.payloads import Resume
from strands_mesh_ros.robot.safety import (
    ResumeGuard,
    ResumeKeyFileError,
    default_resume_key_path,
    ensure_resume_key_file,
    load_resume_key,
    read_resume_key_file,
    sign_resume,
)

KEY = b"guard-test-resume-key-0123456789"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private HOME and XDG_CONFIG_HOME, and no resume key in the environment."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY", raising=False)
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY_FILE", raising=False)
    return tmp_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the key file ---------------------------------------------------------------------------


def test_key_file_is_created_0600_in_a_0700_dir_and_reused(home):
    path = default_resume_key_path()
    assert path == home / "config" / "strands_mesh_ros" / "resume.key"
    assert load_resume_key(user_file=True) is None  # nothing yet, and reading creates nothing
    assert not path.exists()
    made, key, created = ensure_resume_key_file()
    assert made == path and created and len(key) == 64
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left behind
    again, key2, created2 = ensure_resume_key_file()
    assert (again, key2, created2) == (path, key, False)  # a second run reuses it
    assert load_resume_key(user_file=True) == key
    assert load_resume_key() is None  # only operator tools opt in to the per-user file


def test_environment_wins_over_the_key_file(home, monkeypatch):
    ensure_resume_key_file()
    monkeypatch.setenv("STRANDS_MESH_RESUME_KEY", "from-the-environment-0001")
    assert load_resume_key(user_file=True) == b"from-the-environment-0001"
    monkeypatch.delenv("STRANDS_MESH_RESUME_KEY")
    other = home / "fleet.key"
    other.write_text("from-a-named-file-000002\n")
    monkeypatch.setenv("STRANDS_MESH_RESUME_KEY_FILE", str(other))
    assert load_resume_key(user_file=True) == b"from-a-named-file-000002"
    monkeypatch.setenv("STRANDS_MESH_RESUME_KEY_FILE", str(home / "missing.key"))
    with pytest.raises(ResumeKeyFileError, match="STRANDS_MESH_RESUME_KEY_FILE=.*missing.key"):
        load_resume_key()


def test_relative_xdg_config_home_is_ignored(home, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert default_resume_key_path() == home / "home" / ".config" / "strands_mesh_ros" / "resume.key"


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o620, 0o660])
def test_key_file_open_to_others_is_refused_naming_path_and_fix(home, bits):
    path, _, _ = ensure_resume_key_file()
    os.chmod(path, bits)
    for read in (lambda: read_resume_key_file(path), lambda: load_resume_key(user_file=True),
                 lambda: ensure_resume_key_file()):
        with pytest.raises(ResumeKeyFileError) as exc:
            read()
        msg = str(exc.value)
        assert str(path) in msg and f"chmod 600 {path}" in msg and f"{bits:04o}" in msg and "\n" not in msg


def test_key_file_not_owned_or_not_a_key_is_refused(home):
    path, _, _ = ensure_resume_key_file()
    if os.geteuid() == 0:  # root can give the file away; others cannot make one they do not own
        os.chown(path, 4242, -1)
        with pytest.raises(ResumeKeyFileError, match=rf"{path} is owned by uid 4242, not by you"):
            read_resume_key_file(path)
        os.chown(path, 0, -1)
    path.write_text("short\n")
    with pytest.raises(ResumeKeyFileError, match=rf"{path} holds no usable key"):
        read_resume_key_file(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(ResumeKeyFileError, match=rf"{path} is not a regular file"):
        read_resume_key_file(path)


def test_racing_creators_agree_on_one_key(home):
    keys: list[bytes] = []
    created: list[bool] = []
    go = threading.Barrier(8)

    def make():
        go.wait()
        _, key, made = ensure_resume_key_file()
        keys.append(key)
        created.append(made)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(set(keys)) == 1 and len(keys) == 8 and created.count(True) == 1


# -- ResumeGuard.check never raises ---------------------------------------------------------


def signed(**fields) -> Resume:
    env = Resume(peer_id=fields.pop("peer_id", "op"), t=fields.pop("t", time.time()),
                 seq=fields.pop("seq", time.time_ns()), **fields)
    return sign_resume(env, KEY)


def test_resume_guard_refuses_hostile_envelopes_without_raising():
    guard = ResumeGuard(KEY)
    now = time.time()
    ok = signed()
    assert guard.check(ok, "arm1", now) is None
    cases = {
        "non-ASCII mac": Resume(peer_id="op", t=now, seq=time.time_ns(), mac="é" * 64),  # TypeError in compare_digest
        "surrogate mac": Resume.model_construct(peer_id="op", t=now, seq=time.time_ns(), operator="", targets=None,
                                                mac="\udcff" * 64),
        "non-string mac": Resume.model_construct(peer_id="op", t=now, seq=time.time_ns(), operator="", targets=None,
                                                 mac=12345),
        "NaN t, valid mac": signed(t=math.nan),
        "inf t, valid mac": signed(t=math.inf),
        "targets a string": Resume.model_construct(peer_id="op", t=now, seq=time.time_ns(), operator="",
                                                   targets="arm1", mac=""),
        "unhashable issuer": Resume.model_construct(peer_id=["op"], t=now, seq=time.time_ns(), operator="",
                                                    targets=None, mac=""),
        "not a Resume at all": object(),
        "None": None,
    }
    for what, env in cases.items():
        why = guard.check(env, "arm1", now)  # type: ignore[arg-type]
        assert isinstance(why, str) and why, what
    assert "bad resume signature" in guard.check(cases["non-ASCII mac"], "arm1", now)
    assert "finite" in guard.check(cases["NaN t, valid mac"], "arm1", now)


@settings(max_examples=200, deadline=None)
@given(mac=st.text(), t=st.floats(allow_nan=True, allow_infinity=True), seq=st.integers(),
       operator=st.text(max_size=20))
def test_resume_guard_check_never_raises(mac, t, seq, operator):
    guard = ResumeGuard(KEY)
    env = Resume.model_construct(peer_id="op", t=t, seq=seq, operator=operator, targets=None, mac=mac)
    assert isinstance(guard.check(env, "arm1", time.time()), str)
    # a correctly signed envelope with the same hostile fields is accepted only when fresh and finite
    good = sign_resume(env, KEY)
    why = guard.check(good, "arm1", time.time())
    assert why is None or isinstance(why, str)
    if why is None:
        assert math.isfinite(t)


# -- `strands-mesh up` then estop then resume, on the README path ----------------------------


def cli(net, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", *args, "--prefix", net.prefix,
                           "--connect", net.endpoint], capture_output=True, text=True, timeout=timeout)


def run_up(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`strands-mesh up` that is expected to fail before starting anything."""
    return subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "up", "--headless", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("ros", [False, True], ids=["no-ros", "ros"])
def test_up_makes_a_key_so_that_resume_undoes_estop(net, home, ros, ros_domain):
    """The README path: `up`, `estop`, `resume` on one machine, no key configured anywhere."""
    env = None
    args = ["--no-ros"]
    if ros:
        pytest.importorskip("rclpy", reason="the ROS path of up needs rclpy (bash scripts/bootstrap.sh setup)")
        pytest.importorskip("strands_mesh_ros.msg", reason="the ROS path needs the generated interfaces")
        env, args = {"ROS_DOMAIN_ID": str(ros_domain)}, []
    fleet = home / "fleet.yaml"  # k1: a ROS node behind the bridge on the ROS path; k2: a mesh robot
    fleet.write_text("robots:\n  - {id: k1, driver: mock}\n  - {id: k2, driver: mock, ros: false}\n")
    p = Proc([sys.executable, "-m", "strands_mesh_ros.cli", "up", "--headless", *args, str(fleet),
              "--prefix", net.prefix, "--listen", net.endpoint], env=env).ready(90)
    try:
        path = default_resume_key_path()
        assert mode(path) == 0o600 and mode(path.parent) == 0o700
        assert any(str(path) in line and "created" in line for line in p.lines)
        assert not any(path.read_text().strip() in line for line in p.lines)  # the key is never printed
        r = cli(net, "estop", "--reason", "readme drill", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["stopped"].keys() >= {"k1", "k2"}, r.stdout + r.stderr
        for robot in ("k1", "k2"):
            r = cli(net, "tell", robot, "home")
            assert r.returncode == 1 and "locked out" in r.stderr
        r = cli(net, "resume", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        answers = json.loads(r.stdout)
        assert {"k1", "k2"} <= answers.keys() and all(a["accepted"] for a in answers.values()), answers
        for robot in ("k1", "k2"):
            r = cli(net, "send", robot, '{"action": "skill", "name": "home", "args": {"duration": 0}}', "--json")
            assert r.returncode == 0 and json.loads(r.stdout)["status"] == "done", r.stdout + r.stderr
    finally:
        p.close()


def test_up_refuses_an_insecure_key_file_in_one_line(home):
    path, _, _ = ensure_resume_key_file()
    os.chmod(path, 0o644)
    r = run_up("--no-ros")
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and f"chmod 600 {path}" in lines[0], r.stderr
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "resume", "--prefix", "tnokey"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and str(path) in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_resume_without_any_key_says_how_to_get_one(home):
    r = subprocess.run([sys.executable, "-m", "strands_mesh_ros.cli", "resume", "--prefix", "tnokey"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no resume key" in r.stderr and str(default_resume_key_path()) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not default_resume_key_path().exists()  # resume never makes a key


def test_up_with_the_key_in_the_environment_makes_no_file(home, monkeypatch):
    from strands_mesh_ros.up import prepare_resume_key

    monkeypatch.setenv("STRANDS_MESH_RESUME_KEY", "env-resume-key-000000001")
    assert "STRANDS_MESH_RESUME_KEY" in prepare_resume_key()
    assert not default_resume_key_path().exists()
    monkeypatch.setenv("STRANDS_MESH_RESUME_KEY", "short")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        prepare_resume_key()
