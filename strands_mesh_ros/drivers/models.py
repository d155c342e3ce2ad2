"""Finding, loading and preparing robot models for the MuJoCo driver.

A model reference (the ``model`` argument of
:class:`~strands_mesh_ros.drivers.mujoco_sim.MujocoDriver`) is one of:

* a built-in name: ``arm6``, ``diffbot`` (MJCF files in ``strands_mesh_ros/models/``);
* a path to an MJCF (``<mujoco>``) or URDF (``<robot>``) file;
* the XML text itself: a URDF string (a ROS ``robot_description``) or an MJCF string;
* ``menagerie:<robot>[/<entry>]``: a MuJoCo Menagerie model, from ``$MENAGERIE_ROOT`` (a
  checkout of github.com/google-deepmind/mujoco_menagerie) or else the ``mujoco-menagerie``
  package; ``<entry>`` defaults to ``scene``;
* ``robot_descriptions:<module>``: a ``robot_descriptions`` module (e.g.
  ``panda_mj_description``); its MJCF_PATH is used, else its URDF_PATH.

``package://<pkg>/<path>`` URIs in a URDF resolve, first hit wins, through (1) the
driver's ``search_path`` then ``$STRANDS_MODEL_PATH`` (colon-separated directories, each
holding ``<pkg>/``), (2) ``ament_index_python``'s share directory of ``<pkg>`` when that is
importable, (3) next to the URDF: an ancestor directory named ``<pkg>``, or
``<urdf dir>/<pkg>/``. Relative mesh paths resolve against the URDF's directory (the
working directory for URDF strings).

Models without any actuator get a position servo on every hinge and slide joint
(:func:`add_position_actuators`). MJCF ``<custom>`` entries annotate a model for the driver:
numeric ``max_velocity/<joint>`` (rad/s or m/s), and for differential-drive bases text
``diff_drive/left`` / ``diff_drive/right`` (wheel joints) with numeric
``diff_drive/wheel_radius`` and ``diff_drive/track`` (m).

Imports mujoco; nothing here keeps state between calls.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping, Sequence

import mujoco
import numpy as np

from ..robot.driver import DriverError
from .diffdrive import DiffDrive

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

BUILTIN_MODELS: Mapping[str, Path] = MappingProxyType(
    {"arm6": MODELS_DIR / "arm6.xml", "diffbot": MODELS_DIR / "diffbot.xml"}
)
"""Built-in MJCF models by name (read-only)."""

AUTO_BANDWIDTH_HZ = 5.0
"""Natural frequency f_n (Hz) of the automatically added position servos; see
:func:`add_position_actuators`."""

AUTO_MAX_OMEGA_DT = 0.1
"""Upper bound on ω_n·timestep for the added servos (keeps the integration stable)."""

AUTO_FRICTION_ERROR = 0.002
"""Largest steady-state error (rad or m) the added servos may leave against joint friction."""

MESH_FORMATS = (".stl", ".obj", ".msh")
"""Mesh file types MuJoCo reads."""

# Plain ints: numpy scalars from MjModel arrays do not compare with pybind enums in `in` tests.
_HINGE, _SLIDE, _FREE = (int(t) for t in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_FREE))
_JOINT_TRN = (int(mujoco.mjtTrn.mjTRN_JOINT), int(mujoco.mjtTrn.mjTRN_JOINTINPARENT))
_AFFINE, _FIXED = int(mujoco.mjtBias.mjBIAS_AFFINE), int(mujoco.mjtGain.mjGAIN_FIXED)


@dataclass
class LoadedModel:
    """A compiled model and what the driver needs to know about where it came from.

    Attributes:
        model: the compiled ``mujoco.MjModel`` (owned by one driver; never shared).
        name: the model's name (MJCF ``model`` / URDF ``robot name``).
        source: human-readable origin (file path, ``builtin:arm6``, ``URDF string`` ...).
        urdf: the URDF text as given (``package://`` URIs intact) if the model is a URDF.
        auto_actuated: joints that got an automatically added position servo.
        max_velocity: joint speed limits (rad/s or m/s) known from the URDF / MJCF custom.
        diff_drive: the base's wheels, when the model declares them.
    """

    model: mujoco.MjModel
    name: str
    source: str
    urdf: str | None = None
    auto_actuated: tuple[str, ...] = ()
    max_velocity: dict[str, float] = field(default_factory=dict)
    diff_drive: DiffDrive | None = None


# --- search path and package:// ------------------------------------------------------------


def model_search_path(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Directories searched for ``package://<pkg>/...``: ``extra`` then ``$STRANDS_MODEL_PATH``.

    Raises:
        TypeError: ``extra`` is a single string (pass a list of directories).
    """
    if isinstance(extra, (str, bytes)):
        raise TypeError(f"search_path must be a sequence of directories, not the string {extra!r}")
    dirs = [Path(p) for p in extra]
    dirs += [Path(p) for p in os.environ.get("STRANDS_MODEL_PATH", "").split(os.pathsep) if p]
    return dirs


def _ament_share(pkg: str) -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(pkg))
    except (PackageNotFoundError, OSError, ValueError, LookupError):
        return None  # OSError: AMENT_PREFIX_PATH unset (no sourced ROS workspace)


def _package_candidates(pkg: str, rel: str, search_path: Sequence[Path], base_dir: Path | None) -> Iterator[Path]:
    for d in search_path:
        yield d / pkg / rel
    share = _ament_share(pkg)
    if share is not None:
        yield share / rel
    if base_dir is not None:
        base = base_dir.resolve()
        for a in (base, *base.parents):
            if a.name == pkg:
                yield a / rel
        yield base / pkg / rel


def resolve_package_uri(uri: str, search_path: Sequence[Path], base_dir: Path | None = None) -> Path:
    """Resolve ``package://<pkg>/<rest>`` to an existing file (order in the module docstring).

    Raises:
        DriverError: no candidate exists; the message lists where it looked.
    """
    pkg, _, rel = uri[len("package://"):].partition("/")
    tried = []
    for cand in _package_candidates(pkg, rel, search_path, base_dir):
        if cand.is_file():
            return cand
        tried.append(str(cand))
    raise DriverError(
        f"cannot resolve {uri!r}: tried {', '.join(tried) or 'nothing (empty search path)'}; add the "
        f"directory holding {pkg!r}/ to search_path or STRANDS_MODEL_PATH"
    )


def prepare_urdf(text: str, search_path: Sequence[Path], base_dir: Path) -> str:
    """URDF text with every mesh filename made absolute, ready for ``MjSpec.from_string``.

    ``package://`` and ``file://`` URIs are resolved, relative paths joined to ``base_dir``,
    and ``<mujoco><compiler strippath="false"/>`` set so MuJoCo keeps those paths (it strips
    directories from URDF mesh names by default, which merges e.g. visual/link1.obj and
    collision/link1.obj). Visual meshes in formats MuJoCo cannot read (e.g. .dae) are dropped
    (MuJoCo discards URDF visuals anyway).

    Raises:
        DriverError: malformed XML, an unresolvable URI, or a collision mesh MuJoCo cannot read.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DriverError(f"malformed URDF: {exc}") from exc
    if root.tag != "robot":
        raise DriverError(f"not a URDF: root element is <{root.tag}>, expected <robot>")
    for link in root.iter("link"):
        for kind in ("visual", "collision"):
            for elem in list(link.findall(kind)):
                for mesh in elem.iter("mesh"):
                    fn = mesh.get("filename", "")
                    if fn.startswith("package://"):
                        path = resolve_package_uri(fn, search_path, base_dir)
                    elif fn.startswith("file://"):
                        path = Path(fn[len("file://"):])
                    else:
                        path = base_dir / fn
                    if path.suffix.lower() not in MESH_FORMATS:
                        if kind == "visual":
                            link.remove(elem)
                            break
                        raise DriverError(
                            f"collision mesh {fn!r} of link {link.get('name')!r}: MuJoCo reads "
                            f"{'/'.join(MESH_FORMATS)} only; convert it"
                        )
                    mesh.set("filename", str(path.resolve()))
    ext = root.find("mujoco")
    if ext is None:
        ext = ET.SubElement(root, "mujoco")
    comp = ext.find("compiler")
    if comp is None:
        comp = ET.SubElement(ext, "compiler")
    comp.set("strippath", "false")
    return ET.tostring(root, encoding="unicode")


def _urdf_limits(text: str) -> dict[str, float]:
    """Joint speed limits (``<limit velocity>``) of a URDF, by joint name."""
    out = {}
    for j in ET.fromstring(text).iter("joint"):
        lim = j.find("limit")
        if lim is not None and lim.get("velocity") and j.get("name"):
            out[j.get("name", "")] = float(lim.get("velocity", "0"))
    return out


# --- sources -------------------------------------------------------------------------------


def _is_xml(text: str) -> bool:
    return text.lstrip().startswith("<")


_PROLOGUE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>|\s)*<([A-Za-z_][\w.-]*)", re.S)


def root_tag(text: str) -> str | None:
    """The root element's name of XML ``text`` (``robot`` for URDF, ``mujoco`` for MJCF)."""
    m = _PROLOGUE.match(text)
    return m.group(1) if m else None


def _menagerie(ref: str) -> tuple[mujoco.MjSpec, str]:
    robot, _, entry = ref.partition("/")
    if not robot:
        raise ValueError(f"menagerie model needs a name: 'menagerie:<robot>[/<entry>]', got {ref!r}")
    root = os.environ.get("MENAGERIE_ROOT")
    if root:
        d = Path(root) / robot
        path = d / f"{entry or 'scene'}.xml"
        if not path.is_file():
            raise DriverError(f"menagerie model {ref!r}: {path} not found (MENAGERIE_ROOT={root})")
        return _spec_from_file(path), str(path)
    try:
        import mujoco_menagerie as mm  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DriverError(
            f"menagerie model {ref!r} needs MENAGERIE_ROOT (a mujoco_menagerie checkout) or "
            f"the package: pip install mujoco-menagerie"
        ) from exc
    try:
        r = mm.get(robot)
        name = entry or getattr(r, "default_scene", None) or "scene"
        return r.spec(name), f"menagerie:{robot}/{name}"
    except Exception as exc:  # third-party download / lookup: report whatever went wrong
        raise DriverError(f"menagerie model {ref!r} failed to load: {exc}") from exc


def _robot_descriptions(name: str) -> Path:
    try:
        importlib.import_module("robot_descriptions")
    except ImportError as exc:
        raise DriverError(
            f"model 'robot_descriptions:{name}' needs the package: pip install robot_descriptions"
        ) from exc
    try:
        mod = importlib.import_module(f"robot_descriptions.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"robot_descriptions.{name}":
            raise DriverError(f"robot_descriptions:{name} needs a missing module: {exc}") from exc
        raise DriverError(f"robot_descriptions has no description {name!r}") from exc
    except Exception as exc:  # the import clones a git repository; report why it failed
        raise DriverError(f"robot_descriptions:{name} failed to download or import: {exc}") from exc
    path = getattr(mod, "MJCF_PATH", None) or getattr(mod, "URDF_PATH", None)
    if not path:
        raise DriverError(f"robot_descriptions:{name} has neither MJCF_PATH nor URDF_PATH")
    return Path(path)


def _spec_from_file(path: Path) -> mujoco.MjSpec:
    try:
        return mujoco.MjSpec.from_file(str(path))
    except ValueError as exc:
        raise DriverError(f"cannot load model {path}: {exc}") from exc


def _spec_from_string(xml: str, source: str) -> mujoco.MjSpec:
    try:
        return mujoco.MjSpec.from_string(xml)
    except ValueError as exc:
        raise DriverError(f"cannot load model {source}: {exc}") from exc


def _file_source(path: Path, search_path: Sequence[Path]) -> tuple[mujoco.MjSpec, str | None]:
    if not path.is_file():
        raise DriverError(f"model file not found: {path}")
    if path.suffix == ".xacro":
        raise DriverError(f"{path} is a xacro file: expand it first (xacro {path.name} > robot.urdf)")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.suffix == ".urdf" or root_tag(text) == "robot":
        return _spec_from_string(prepare_urdf(text, search_path, path.parent), str(path)), text
    return _spec_from_file(path), None


def load_spec(
    model: str | os.PathLike[str], search_path: Sequence[Path] = ()
) -> tuple[mujoco.MjSpec, str, str | None]:
    """Resolve a model reference to ``(spec, source, urdf_text_or_None)``.

    Raises:
        TypeError: ``model`` is not a string or path.
        ValueError: an unknown name (lists the built-ins and the accepted forms).
        DriverError: a file that is missing or fails to parse (names the file and the error).
    """
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise TypeError(f"model must be a name, a path or XML text, got {type(model).__name__}")
    if _is_xml(model):
        if root_tag(model) == "robot":
            return _spec_from_string(prepare_urdf(model, search_path, Path.cwd()), "URDF string"), "URDF string", model
        return _spec_from_string(model, "MJCF string"), "MJCF string", None
    if model in BUILTIN_MODELS:
        return _spec_from_file(BUILTIN_MODELS[model]), f"builtin:{model}", None
    if model.startswith("menagerie:"):
        spec, source = _menagerie(model[len("menagerie:"):])
        return spec, source, None
    if model.startswith("robot_descriptions:"):
        path = _robot_descriptions(model[len("robot_descriptions:"):])
        spec, urdf = _file_source(path, search_path)
        return spec, str(path), urdf
    path = Path(model).expanduser()
    if path.suffix in (".xml", ".urdf", ".mjcf", ".xacro") or os.sep in model or path.exists():
        spec, urdf = _file_source(path, search_path)
        return spec, str(path), urdf
    raise ValueError(
        f"unknown model {model!r}: use a built-in ({', '.join(BUILTIN_MODELS)}), an MJCF/URDF "
        f"path, URDF/MJCF text, 'menagerie:<robot>' or 'robot_descriptions:<module>'"
    )


# --- actuators -----------------------------------------------------------------------------


def _compile(spec: mujoco.MjSpec, source: str) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as exc:
        raise DriverError(f"cannot compile model {source}: {exc}") from exc


def add_position_actuators(spec: mujoco.MjSpec, source: str, gravcomp: bool | None = None) -> list[str]:
    """Add a position servo to every hinge and slide joint of an actuator-less ``spec``.

    Gain heuristic: treat each joint as a mass-spring-damper about the model's reference pose
    qpos0 and place its poles at a fixed natural frequency ω_n with critical damping
    (ζ = 1), the textbook second-order tuning (e.g. Franklin, Powell & Emami-Naeini,
    *Feedback Control of Dynamic Systems*, ch. 3):

        kp = I · ω_n²,   kv = 2 ζ I ω_n  (MuJoCo ``dampratio=1`` computes this kv)

    where I is the joint's diagonal of the joint-space inertia matrix M(qpos0) (kg·m² or kg,
    armature included), and ω_n = min(2π · :data:`AUTO_BANDWIDTH_HZ`,
    :data:`AUTO_MAX_OMEGA_DT` / timestep). 5 Hz is a modest position-loop bandwidth for
    an industrial arm; it settles a step in about 0.2 s without overshoot and keeps
    ω_n·dt ≤ 0.1 at MuJoCo's default 2 ms step. Scaling by I gives every joint the same
    response whatever its size, where one fixed kp would make wrists ring and shoulders sag.
    Two floors keep light joints from being swamped by the model's passive terms: with joint
    damping b the servo is at worst a first-order lag of time constant b/kp, so kp ≥ b·ω_n
    keeps it within 1/ω_n; with dry friction f the servo stalls f/kp short of its target, so
    kp ≥ f / :data:`AUTO_FRICTION_ERROR`.
    ``ctrlrange`` is the joint's range (unlimited joints get an unlimited ctrl); a URDF
    ``effort`` limit already limits the joint force (MuJoCo ``actfrcrange``).

    With ``gravcomp`` (default: when the model has no free joint, i.e. a fixed-base robot),
    every body gets MuJoCo gravity compensation routed through the actuators, standing in for
    the gravity feed-forward of a real arm's controller (a 5 Hz PD alone sags under gravity).
    The integrator is switched from Euler to ``implicitfast``, which integrates the servos'
    damping implicitly (MuJoCo's recommendation for stiff position actuators).

    Free and ball joints are left unactuated. Unnamed hinge/slide joints are named
    ``joint<k>`` (needed for ``joint_states``).

    Returns:
        Names of the joints that got a servo.

    Raises:
        DriverError: the model fails to compile.
    """
    model = _compile(spec, source)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    inertia = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, inertia)
    dt = model.opt.timestep
    omega = min(2.0 * math.pi * AUTO_BANDWIDTH_HZ, AUTO_MAX_OMEGA_DT / dt)
    free = any(int(t) == _FREE for t in model.jnt_type)
    if gravcomp is None:
        gravcomp = not free
    added = []
    sjoints = list(spec.joints)
    for j in range(model.njnt):
        if int(model.jnt_type[j]) not in (_HINGE, _SLIDE):
            continue
        sj = sjoints[j]
        if not sj.name:
            sj.name = f"joint{j}"
        dof = model.jnt_dofadr[j]
        act = spec.add_actuator()
        act.name = sj.name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.target = sj.name
        kp = max(
            inertia[dof, dof] * omega * omega,
            model.dof_damping[dof] * omega,
            model.dof_frictionloss[dof] / AUTO_FRICTION_ERROR,
        )
        act.set_to_position(kp=float(kp), dampratio=1.0)
        if model.jnt_limited[j]:
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.ctrlrange = model.jnt_range[j].copy()
        else:
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        if gravcomp:
            sj.actgravcomp = True
        added.append(sj.name)
    if gravcomp:
        for b in spec.bodies:
            if b.name != "world":
                b.gravcomp = 1.0
    if spec.option.integrator == mujoco.mjtIntegrator.mjINT_EULER:
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    return added


def exclude_adjacent_links(spec: mujoco.MjSpec) -> None:
    """Exclude contacts between each URDF link and its parent link.

    URDF tools take adjacent links as non-colliding (MoveIt's SRDF disables them), and
    URDF collision meshes often overlap at the joints. MuJoCo filters parent-child contacts
    itself except when the parent is welded to the world (a fixed base), where such an
    overlap would grind the first joint; explicit excludes cover that case too.
    """
    for body in spec.bodies:
        parent = body.parent
        if parent is not None and body.name and parent.name:
            pair = spec.add_exclude()
            pair.bodyname1, pair.bodyname2 = parent.name, body.name


def _custom(spec: mujoco.MjSpec) -> tuple[dict[str, float], dict[str, str]]:
    nums = {n.name: float(n.data[0]) for n in spec.numerics if len(n.data)}
    texts = {t.name: t.data for t in spec.texts}
    return nums, texts


def load_model(
    model: str | os.PathLike[str],
    *,
    search_path: Iterable[str | os.PathLike[str]] = (),
    timestep: float | None = None,
    auto_actuators: bool = True,
    gravcomp: bool | None = None,
) -> LoadedModel:
    """Load, actuate (if needed) and compile a model reference (see the module docstring).

    Args:
        model: the reference.
        search_path: extra directories for ``package://`` lookup (before ``STRANDS_MODEL_PATH``).
        timestep: physics step in s, overriding the model's.
        auto_actuators: add position servos when the model has no actuators.
        gravcomp: gravity compensation for added servos (None: fixed-base models only).

    Raises:
        TypeError, ValueError: a bad argument, named in the message.
        DriverError: the model fails to load or compile (names the source and mujoco's error).
    """
    if timestep is not None:
        if isinstance(timestep, bool) or not isinstance(timestep, (int, float)):
            raise TypeError(f"timestep must be a number of seconds, got {timestep!r}")
        if not 0.0 < timestep <= 0.05:
            raise ValueError(f"timestep {timestep!r} s out of range (0, 0.05]")
    dirs = model_search_path(search_path)
    spec, source, urdf = load_spec(model, dirs)
    if timestep is not None:
        spec.option.timestep = float(timestep)
    if urdf is not None:
        exclude_adjacent_links(spec)
    auto: list[str] = []
    if auto_actuators and not list(spec.actuators):
        auto = add_position_actuators(spec, source, gravcomp)
    nums, texts = _custom(spec)
    compiled = _compile(spec, source)
    maxvel = {k.split("/", 1)[1]: v for k, v in nums.items() if k.startswith("max_velocity/")}
    if urdf is not None:
        maxvel.update(_urdf_limits(urdf))
    dd = None
    if "diff_drive/left" in texts:
        try:
            dd = DiffDrive(
                texts["diff_drive/left"], texts["diff_drive/right"],
                nums["diff_drive/wheel_radius"], nums["diff_drive/track"],
            )
        except KeyError as exc:
            raise DriverError(f"{source}: incomplete diff_drive custom data, missing {exc}") from exc
    name = spec.modelname
    if not name or name == "MuJoCo Model":  # MuJoCo's default for an unnamed model
        name = Path(source).stem if os.sep in source else "robot"
    return LoadedModel(compiled, name, source, urdf, tuple(auto), maxvel, dd)


# --- servos --------------------------------------------------------------------------------

def servo_kind(m: mujoco.MjModel, a: int) -> str:
    """``position``, ``velocity`` or ``other``: actuator ``a`` classified by its force law
    f = g·ctrl + b0 + b1·length + b2·velocity (fixed gain g > 0, affine bias). Position
    servos have b1 < 0 (MJCF ``position``: g = kp, b1 = -kp), velocity servos b1 = 0 and
    b2 < 0 (``velocity``: g = kv, b2 = -kv); anything else (motors, muscles) is ``other``."""
    if int(m.actuator_biastype[a]) != _AFFINE or int(m.actuator_gaintype[a]) != _FIXED:
        return "other"
    g, b = m.actuator_gainprm[a, 0], m.actuator_biasprm[a]
    if g <= 0:
        return "other"
    if b[1] < 0:
        return "position"
    if b[1] == 0 and b[2] < 0:
        return "velocity"
    return "other"


def ctrl_scale(m: mujoco.MjModel, a: int) -> float:
    """ctrl per unit of transmission length (position servo) or velocity (velocity servo):
    the ctrl at which the servo's force is zero is -b1/g · length, resp. -b2/g · velocity
    (1 for MJCF ``position`` / ``velocity`` actuators)."""
    b = m.actuator_biasprm[a]
    return float(-(b[1] if b[1] < 0 else b[2]) / m.actuator_gainprm[a, 0])


def joint_servos(m: mujoco.MjModel) -> tuple[dict[str, tuple[int, float]], dict[str, tuple[int, float]]]:
    """Position and velocity servos on named hinge/slide joints: ``{joint: (actuator id, scale)}``
    each, where ctrl = scale · (joint position or velocity) (gear included; the first servo
    of a joint wins)."""
    pos: dict[str, tuple[int, float]] = {}
    vel: dict[str, tuple[int, float]] = {}
    for a in range(m.nu):
        j = int(m.actuator_trnid[a, 0])
        if int(m.actuator_trntype[a]) not in _JOINT_TRN or int(m.jnt_type[j]) not in (_HINGE, _SLIDE):
            continue
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j)
        table = {"position": pos, "velocity": vel}.get(servo_kind(m, a))
        if name and table is not None:
            table.setdefault(name, (a, float(m.actuator_gear[a, 0]) * ctrl_scale(m, a)))
    return pos, vel
