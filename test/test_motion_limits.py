"""Finite, limited motion: non-finite skill arguments are refused by name and move nothing;
durations too short for a joint's max_velocity are stretched, and the answer says so.

Robots: the real MuJoCo driver with the built-in ``arm6`` model, and the mock driver. No mocks
of MuJoCo and no sleeps: calls are awaited on their futures, "nothing moved" waits for
simulated time to pass (helpers.wait_for), and joint speeds are sampled inside the physics
thread through the driver's ``state_lock`` hook (:class:`QvelRecorder`).

Bounds used below (and why):
* NO_MOTION = 1e-3 rad (or m): arm6 at rest in its home pose holds it to ~1e-6 rad with
  gravity compensation; the bug this guards against drove joints by up to 1.2 rad (to 0).
* Joint speed is measured in the physics thread, every physics step (2 ms), on simulated time.
  VEL_TOL = 0.10 bounds the peak joint speed averaged over SPEED_WINDOW = 40 ms: at most
  max_velocity * 1.10. The planned profile peaks exactly at max_velocity (1.875 · d / T,
  Flash & Hogan 1985), and 40 ms of averaging lowers a >= 0.5 s min-jerk peak by < 0.5 %;
  measured 0.93-1.07 x (real time; 2 cores, also with 4 busy processes). Before the fix,
  ``duration: 0`` gave 12-14 x.
* RIPPLE_TOL = 0.25 bounds the raw |qdot| peak: arm6's 6-10 Hz position servos follow the
  100 Hz staircase of streamed targets with a ripple that measured 1.02-1.08 x unloaded and
  up to 1.1 x with 4 busy processes on 2 cores.
* STRETCH_REACHED = 0.75: the limiting joint's measured speed reaches at least 75 % of its
  limit (of the requested pace for a feasible move), so the stretch is not grossly
  over-conservative (measured 0.87-1.07 x).
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from helpers import wait_for  # noqa: E402

from strands_mesh_ros.drivers.skills import STREAM_RATE_HZ  # noqa: E402
from strands_mesh_ros.robot.driver import SkillContext  # noqa: E402
from strands_mesh_ros.drivers.mock import MockDriver  # noqa: E402
from strands_mesh_ros.drivers.mujoco_sim import MujocoDriver  # noqa: E402
from strands_mesh_ros.drivers.skills import MIN_JERK_PEAK_SPEED, limit_duration  # noqa: E402
from strands_mesh_ros.robot.runtime import Robot, SkillError  # noqa: E402

NO_MOTION = 1e-3  # rad or m
VEL_TOL = 0.10
SPEED_WINDOW = 0.04  # s of simulated time
RIPPLE_TOL = 0.25
STRETCH_REACHED = 0.75
ARM = [f"joint{i}" for i in range(1, 7)]
FINGERS = ["finger_left_joint", "finger_right_joint"]
FAR = [1.5, -0.6, -0.5, 1.5, -1.0, 2.0]  # rad: a long move of arm6 from home (joint1 moves 1.5 rad)


class QvelRecorder:
    """A ``state_lock`` for :class:`MujocoDriver` (its documented hook for recorders) that,
    while :attr:`on`, samples the named joints' positions and velocities from ``MjData`` on
    every release after the physics has advanced.

    The physics thread releases the lock after every tick (one 2 ms step of arm6 in real time),
    so the joints are sampled at the physics rate.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.driver: MujocoDriver | None = None
        self.names: list[str] = []
        self._qadr = self._dofs = np.zeros(0, dtype=int)
        self.on = False
        self.t: list[float] = []
        self.q: list[np.ndarray] = []
        self.qvel: list[np.ndarray] = []

    def attach(self, driver: MujocoDriver, names: list[str]) -> None:
        m = driver.model
        ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in names]
        self._qadr = np.array([m.jnt_qposadr[i] for i in ids], dtype=int)
        self._dofs = np.array([m.jnt_dofadr[i] for i in ids], dtype=int)
        self.names, self.driver = list(names), driver

    def acquire(self, *args: Any, **kw: Any) -> bool:
        return self._lock.acquire(*args, **kw)

    def release(self) -> None:
        d = self.driver
        if self.on and d is not None and (not self.t or d.data.time > self.t[-1]):
            self.t.append(float(d.data.time))
            self.q.append(d.data.qpos[self._qadr].copy())
            self.qvel.append(d.data.qvel[self._dofs].copy())
        self._lock.release()

    def __enter__(self) -> "QvelRecorder":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def peak_qvel(self) -> dict[str, float]:
        """Largest |qdot| sampled per joint (rad/s or m/s)."""
        return dict(zip(self.names, np.max(np.abs(np.array(self.qvel)), axis=0).tolist()))

    def peak_speed(self, window: float) -> dict[str, float]:
        """Largest mean |speed| per joint over ``window`` s of simulated time (rad/s or m/s)."""
        t, q = np.array(self.t), np.array(self.q)
        j = np.searchsorted(t, t + window)
        ok = j < len(t)
        speed = np.abs(q[j[ok]] - q[ok]) / (t[j[ok]] - t[ok])[:, None]
        return dict(zip(self.names, np.max(speed, axis=0).tolist()))


class RecordingMock(MockDriver):
    """The mock driver, keeping every position target it is sent with its time (monotonic s)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.sent: list[tuple[float, dict[str, float]]] = []

    def command_positions(self, names, positions) -> None:  # type: ignore[override]
        t = time.monotonic()
        super().command_positions(names, positions)
        self.sent.append((t, dict(zip(names, map(float, positions)))))


@pytest.fixture
def make():
    """Build robots (drivers started); closes them all at teardown."""
    robots: list[Robot] = []

    def _make(kind: str, robot_id: str, **kw: Any) -> tuple[Any, Robot]:
        driver = MujocoDriver(robot_id, "arm6", **kw) if kind == "mujoco" else RecordingMock(robot_id, **kw)
        driver.start()
        robot = Robot(driver)
        robots.append(robot)
        return driver, robot

    yield _make
    for r in robots:
        r.close()


def joint_positions(driver: Any) -> dict[str, float]:
    obs = driver.observe()
    return dict(zip(obs.names, obs.position.tolist()))


def limits(driver: Any) -> dict[str, float]:
    return {j.name: j.max_velocity for j in driver.joints()}


def expected_stretch(driver: Any, goal: dict[str, float]) -> tuple[float, str]:
    """Shortest min-jerk duration (s) within every limit, and the joint that sets it."""
    q, v = joint_positions(driver), limits(driver)
    need = {n: MIN_JERK_PEAK_SPEED * abs(g - q[n]) / v[n] for n, g in goal.items()}
    worst = max(need, key=need.get)
    return need[worst], worst


def command_speed_peaks(sent: list[tuple[float, dict[str, float]]], window: float) -> dict[str, float]:
    """Peak mean speed (rad/s or m/s) of each commanded joint over windows of >= ``window`` s."""
    peaks: dict[str, float] = {}
    for name in {n for _, c in sent for n in c}:
        t = np.array([s for s, c in sent if name in c])
        q = np.array([c[name] for _, c in sent if name in c])
        j = np.searchsorted(t, t + window)
        ok = j < len(t)
        if ok.any():
            peaks[name] = float(np.max(np.abs(q[j[ok]] - q[ok]) / (t[j[ok]] - t[ok])))
    return peaks


# --- non-finite arguments --------------------------------------------------------------------

# (skill, args as they arrive over the wire: Python's json reads NaN / Infinity literals, path, spelling)
NON_FINITE = [
    ("move_joints", '{"positions": [0.1, 0.2, NaN, 0, 0, 0]}', "positions/2", "NaN"),
    ("move_joints", '{"positions": [Infinity, 0, 0, 0, 0, 0]}', "positions/0", "Infinity"),
    ("move_joints", '{"positions": [0, 0, 0, 0, 0, -Infinity]}', "positions/5", "-Infinity"),
    ("move_joints", '{"positions": [0.5, 0, 0, 0, 0, 0], "duration": NaN}', "duration", "NaN"),
    ("move_joints", '{"positions": [0.5, 0, 0, 0, 0, 0], "duration": Infinity}', "duration", "Infinity"),
    ("move_joints", '{"targets": {"joint1": 0.5, "joint3": NaN}}', "targets/joint3", "NaN"),
    ("move_joints", '{"positions": [0.5, 0, 0, 0, 0, 0], "tolerance": NaN}', "tolerance", "NaN"),
    ("home", '{"duration": NaN}', "duration", "NaN"),
    ("move_gripper", '{"opening": NaN}', "opening", "NaN"),
    ("move_gripper", '{"opening": 0.0, "duration": -Infinity}', "duration", "-Infinity"),
]


@pytest.mark.parametrize("kind", ["mujoco", "mock"])
@pytest.mark.parametrize("skill,wire,path,spelling", NON_FINITE, ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in NON_FINITE])
def test_non_finite_argument_refused_by_name_and_nothing_moves(make, kind, skill, wire, path, spelling):
    driver, robot = make(kind, f"nf_{kind}", **({"realtime": False} if kind == "mujoco" else {}))
    if kind == "mock":  # away from zero and from home, where a NaN -> 0 would not show
        driver.command_positions(ARM, [0.3, -0.2, 0.4, 0.1, -0.5, 0.6])
    before = joint_positions(driver)
    sent_before = driver.commands_received if kind == "mock" else None
    if kind == "mujoco":
        with driver.locked() as d:
            ctrl_before = d.ctrl.copy()
    args = json.loads(wire)
    with pytest.raises(SkillError) as exc:
        robot.call_skill(skill, args)
    assert str(exc.value) == f"bad args for skill {skill!r} at {path}: {spelling} is not a finite number"
    assert robot.lanes.running() == {}
    if kind == "mujoco":
        s = driver.sim_time
        wait_for(lambda: driver.sim_time > s + 0.3, 5.0, what="0.3 s of simulated time")
        with driver.locked() as d:
            np.testing.assert_array_equal(d.ctrl, ctrl_before)  # no target was touched
    else:
        assert driver.commands_received == sent_before  # nothing was commanded
    after = joint_positions(driver)
    moved = {n: abs(after[n] - before[n]) for n in before}
    assert max(moved.values()) < NO_MOTION, moved


@pytest.mark.parametrize("wire,path,spelling", [
    ('{"linear": NaN, "duration": 1.0}', "linear", "NaN"),  # NaN passes the schema's bounds
    ('{"linear": 0.2, "duration": NaN}', "duration", "NaN"),
    ('{"angular": -Infinity}', "angular", "-Infinity"),
])
def test_drive_non_finite_refused_and_the_base_stays(wire, path, spelling):
    driver = MujocoDriver("nf_base", "diffbot", realtime=False)
    driver.start()
    robot = Robot(driver)
    try:
        wait_for(lambda: driver.sim_time > 0.5, 5.0, what="the base to settle")
        before = driver.base_pose()
        with pytest.raises(SkillError) as exc:
            robot.call_skill("drive", json.loads(wire))
        assert str(exc.value) == f"bad args for skill 'drive' at {path}: {spelling} is not a finite number"
        s = driver.sim_time
        wait_for(lambda: driver.sim_time > s + 0.5, 5.0, what="0.5 s of simulated time")
        after = driver.base_pose()
        assert math.hypot(after[0] - before[0], after[1] - before[1]) < NO_MOTION, (before, after)
    finally:
        robot.close()


def test_non_finite_is_found_anywhere_before_the_schema_and_at_any_depth(make):
    driver, robot = make("mock", "nf_deep")
    ok = [0.1, 0, 0, 0, 0, 0]
    # Before the JSON Schema: 'extra' is not a parameter, yet the non-finite number is what is named.
    with pytest.raises(SkillError, match=r"at extra/1/x/0: NaN is not a finite number$"):
        robot.call_skill("move_joints", {"positions": ok, "extra": [1, {"x": [float("nan")]}]})
    # Deeper than the recursion limit: no RecursionError, the path is complete.
    deep: Any = [float("-inf")]
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SkillError) as exc:
        robot.call_skill("move_joints", {"positions": ok, "extra": deep})
    assert str(exc.value).endswith(f"at extra/{'0/' * 5000}0: -Infinity is not a finite number")
    # Python callers pass numpy scalars and floats directly.
    for bad, spelling in ((np.float32("inf"), "Infinity"), (np.float64("nan"), "NaN"), (float("-inf"), "-Infinity")):
        with pytest.raises(SkillError, match=rf"at positions/3: {spelling} is not a finite number$"):
            robot.call_skill("move_joints", {"positions": [0, 0, 0, bad, 0, 0]})
    # The instruction grammar reads 1e999 as infinity: refused the same way.
    with pytest.raises(SkillError, match=r"at positions/0: Infinity is not a finite number$"):
        robot.execute("move joints to 1e999 0 0 0 0 0")
    assert driver.commands_received == 0
    # Finite numbers, ints and bools are untouched by the check (the schema still applies).
    with pytest.raises(SkillError, match="is not of type 'number'"):
        robot.call_skill("move_joints", {"positions": [True, 0, 0, 0, 0, 0]})
    out = robot.call_skill("move_joints", {"positions": [0, 0, 0, 0, 0, 0], "duration": 0}).result(timeout=10)
    assert out.status == "done", out.error


def test_driver_refuses_non_finite_goals_without_commanding(make):
    """Callers that bypass Robot (a driver's skill called directly) get ValueError, no motion."""
    driver, _ = make("mock", "nf_direct")
    fns = {s.name: s.fn for s in driver.skills()}
    for call in (
        lambda: fns["move_joints"](SkillContext(), positions=[0, 0, math.nan, 0, 0, 0]),
        lambda: fns["move_joints"](SkillContext(), targets={"joint2": math.inf}),
        lambda: fns["move_joints"](SkillContext(), positions=[0.1, 0, 0, 0, 0, 0], duration=math.nan),
        lambda: fns["move_joints"](SkillContext(), positions=[0.1, 0, 0, 0, 0, 0], tolerance=math.nan),
        lambda: fns["home"](SkillContext(), duration=math.inf),
        lambda: fns["move_gripper"](SkillContext(), opening=math.nan),
    ):
        with pytest.raises(ValueError, match="finite"):
            call()
    assert driver.commands_received == 0


# --- speed limits ----------------------------------------------------------------------------


def test_limit_duration_rule():
    v = {"a": 2.0, "b": 0.5, "c": None, "d": 0.0, "e": math.inf}
    # shortest feasible: 1.875 * 0.8 / 2 = 0.75 s for 'a'
    t = limit_duration(["a"], [0.0], [0.8], 0.0, v)
    assert (t.duration, t.requested, t.stretched, t.limited_by) == (pytest.approx(0.75), 0.0, True, "a")
    assert limit_duration(["a"], [0.0], [0.8], 0.75, v).stretched is False  # exactly feasible
    assert limit_duration(["a"], [0.0], [0.8], 0.74, v).duration == pytest.approx(0.75)
    # the slowest joint sets the duration; unknown, zero and infinite limits constrain nothing
    t = limit_duration(list("abcde"), [0] * 5, [0.8, 0.3, 9, 9, 9], 0.1, v)
    assert t.limited_by == "b" and t.duration == pytest.approx(1.875 * 0.3 / 0.5)
    assert t.to_result() == {"duration": t.duration, "requested_duration": 0.1, "stretched": True, "limited_by": "b"}
    # linear segments (a joint_trajectory_controller's positions-only point) peak at d / T
    assert limit_duration(["a"], [0.0], [0.8], 0.0, v, peak_factor=1.0).duration == pytest.approx(0.4)
    for bad in (dict(duration=math.nan), dict(duration=-1.0), dict(end=[math.nan]), dict(start=[math.inf])):
        kw = dict(names=["a"], start=[0.0], end=[0.8], duration=1.0, max_velocity=v) | bad
        with pytest.raises(ValueError):
            limit_duration(**kw)


def check_speeds(rec: QvelRecorder, limit: dict[str, float]) -> dict[str, float]:
    """Assert the recorded joints stayed within ``limit`` (rad/s or m/s); return speed / limit."""
    assert len(rec.t) > 100, len(rec.t)  # sampled at the physics rate, not now and then
    speed, qvel = rec.peak_speed(SPEED_WINDOW), rec.peak_qvel()
    ratios = {n: speed[n] / limit[n] for n in rec.names if n in limit}
    ripple = {n: qvel[n] / limit[n] for n in rec.names if n in limit}
    assert max(ratios.values()) <= 1 + VEL_TOL, ratios
    assert max(ripple.values()) <= 1 + RIPPLE_TOL, ripple
    return ratios


def recorded(rec: QvelRecorder, call) -> Any:
    """Run ``call()`` (a future's result) with ``rec`` sampling; a fresh record each time."""
    rec.t, rec.q, rec.qvel = [], [], []
    rec.on = True
    try:
        return call()
    finally:
        rec.on = False


def test_mujoco_zero_duration_is_stretched_and_measured_speed_stays_within_limits(make):
    rec = QvelRecorder()
    driver, robot = make("mujoco", "lim_arm", state_lock=rec)  # real time: sim time follows the clock
    v = limits(driver)
    rec.attach(driver, ARM + FINGERS)
    goal = dict(zip(ARM, FAR))
    want, limiting = expected_stretch(driver, goal)
    assert limiting == "joint1" and want == pytest.approx(1.875 * 1.5 / 2.0, rel=1e-3)
    t0 = driver.sim_time
    arm = recorded(rec, lambda: robot.call_skill("move_joints", {"positions": FAR, "duration": 0}).result(timeout=20))
    assert arm.status == "done", arm.error
    r = arm.result
    assert (r["requested_duration"], r["stretched"], r["limited_by"]) == (0.0, True, limiting)
    assert r["duration"] == pytest.approx(want, rel=1e-3) and r["reached"]
    assert driver.sim_time - t0 >= want  # the move took (at least) its stretched time
    ratios = check_speeds(rec, v)
    assert ratios[limiting] >= STRETCH_REACHED, ratios
    # The gripper (0.1 m/s per finger): closing 0.04 m needs 1.875 * 0.04 / 0.1 = 0.75 s.
    # Both fingers travel the same 0.04 m at the same limit: which one "limits" is a tie that the
    # measured positions' last digits break, so either may be named.
    want_g, limiting_g = expected_stretch(driver, dict.fromkeys(FINGERS, 0.0))
    assert limiting_g in FINGERS and want_g == pytest.approx(0.75, rel=1e-2)
    grip = recorded(rec, lambda: robot.call_skill("move_gripper", {"opening": 0.0, "duration": 0}).result(timeout=20))
    assert grip.status == "done", grip.error
    g = grip.result
    assert (g["requested_duration"], g["stretched"]) == (0.0, True) and g["limited_by"] in FINGERS
    assert g["duration"] == pytest.approx(want_g, rel=1e-2)
    ratios = check_speeds(rec, v)
    assert max(ratios[f] for f in FINGERS) >= STRETCH_REACHED, ratios


def test_mujoco_feasible_duration_is_used_as_asked(make):
    rec = QvelRecorder()
    driver, robot = make("mujoco", "lim_ok", state_lock=rec)
    rec.attach(driver, ARM)
    home = joint_positions(driver)
    goal = [home["joint1"] + 0.2, *[home[n] for n in ARM[1:]]]
    out = recorded(rec, lambda: robot.call_skill("move_joints", {"positions": goal, "duration": 0.5}).result(timeout=10))
    assert out.status == "done", out.error  # 0.2 rad needs 1.875 * 0.2 / 2 = 0.19 s: 0.5 s is feasible
    assert {k: out.result[k] for k in ("duration", "requested_duration", "stretched", "limited_by")} == {
        "duration": 0.5, "requested_duration": 0.5, "stretched": False, "limited_by": None}
    # Moved at the requested pace: the profile's own peak, 1.875 * 0.2 / 0.5 = 0.75 rad/s (< 2 rad/s).
    ratios = check_speeds(rec, {"joint1": MIN_JERK_PEAK_SPEED * 0.2 / 0.5})
    assert ratios["joint1"] >= STRETCH_REACHED, ratios


def test_mock_stretches_move_home_and_gripper_and_commands_stay_within_limits(make):
    driver, robot = make("mock", "lim_mock")
    v = limits(driver)
    goal = dict(zip(ARM, [1.0, -0.5, 0.2, 0.0, 0.0, 0.0]))
    want, limiting = expected_stretch(driver, goal)  # 1.875 * 1.0 / 2 = 0.94 s, joint1
    out = robot.call_skill("move_joints", {"targets": goal, "duration": 0}).result(timeout=10)
    assert out.status == "done", out.error
    assert (out.result["stretched"], out.result["limited_by"]) == (True, limiting)
    assert out.result["duration"] == pytest.approx(want)
    moves = [driver.sent]
    driver.sent = []
    want_home, limiting_home = expected_stretch(driver, dict.fromkeys(ARM, 0.0))
    want_grip, _ = expected_stretch(driver, {"gripper_finger": 0.04})  # 1.875 * 0.04 / 0.1 = 0.75 s
    home_call = robot.call_skill("home", {"duration": 0.1})
    grip_call = robot.call_skill("move_gripper", {"opening": 1.0})  # default 1 s: feasible
    home, grip = home_call.result(timeout=10), grip_call.result(timeout=10)
    assert (home.status, grip.status) == ("done", "done"), (home.error, grip.error)
    assert (home.result["requested_duration"], home.result["stretched"], home.result["limited_by"]) == (
        0.1, True, limiting_home)
    assert home.result["duration"] == pytest.approx(want_home)
    assert (grip.result["duration"], grip.result["stretched"]) == (1.0, False) and want_grip < 1.0
    moves.append(driver.sent)
    # Measured on the commands the mock received: mean speed over windows of a tenth of the move.
    for sent, duration in zip(moves, (want, max(want_home, 1.0))):
        peaks = command_speed_peaks(sent, duration / 10)
        assert peaks, "no commands recorded"
        assert all(peaks[n] <= v[n] * (1 + VEL_TOL) for n in peaks), {n: peaks[n] / v[n] for n in peaks}
    # The stretch is tight: at the profile's peak one stream period of trajectory time moves the
    # limiting joint ~max_velocity / STREAM_RATE_HZ. Measured per command step, not per wall-clock
    # window: a loaded machine delays the stream (the trajectory then runs late, by design), which
    # lowers wall-clock speeds but never a step's size.
    step = max(abs(b[1][limiting] - a[1][limiting]) for a, b in zip(moves[0], moves[0][1:])
               if limiting in a[1] and limiting in b[1])
    assert step * STREAM_RATE_HZ >= STRETCH_REACHED * v[limiting], step
