"""A kinematic URDF from a compiled MuJoCo model (``robot_description`` of MJCF robots).

ROS tools (robot_state_publisher, rviz) need a URDF; MJCF models have none, so
:func:`generated_urdf` writes one from the compiled ``MjModel``'s body tree.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np


def _rpy(quat: np.ndarray) -> tuple[float, float, float]:
    """URDF roll-pitch-yaw (fixed axes X, Y, Z: R = Rz·Ry·Rx) of a MuJoCo quaternion (w x y z)."""
    r = np.zeros(9)
    mujoco.mju_quat2Mat(r, np.asarray(quat, dtype=float))
    r = r.reshape(3, 3)
    return (
        math.atan2(r[2, 1], r[2, 2]),
        math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2])),
        math.atan2(r[1, 0], r[0, 0]),
    )


def _origin(pos: np.ndarray, quat: np.ndarray) -> str:
    xyz = " ".join(f"{v + 0.0:.6g}" for v in pos)
    rpy = " ".join(f"{v + 0.0:.6g}" for v in _rpy(quat))
    return f'<origin xyz="{xyz}" rpy="{rpy}"/>'


def generated_urdf(model: mujoco.MjModel, name: str) -> str:
    """A kinematic URDF of a compiled MuJoCo model, for ``robot_description`` / rviz.

    One link per body (``world`` for the world body), one joint per body: ``fixed`` for
    welded bodies, ``floating`` for a free joint, ``revolute``/``continuous``/``prismatic``
    for hinge/slide joints (a body with several joints gets a chain of helper links named
    ``<body>__<joint>``; ball joints become ``fixed``). The link frame is put at the joint's
    anchor (MuJoCo ``jnt_pos``) so hinge axes are exact. Visuals are the primitive geoms
    (box, sphere, cylinder; capsules and ellipsoids approximated by cylinders and spheres);
    meshes and planes are left out. No inertials: this describes kinematics only.
    """
    def nm(obj: int, i: int, prefix: str) -> str:
        n = mujoco.mj_id2name(model, obj, i)
        return n if n else f"{prefix}{i}"

    link_of = {0: "world"}
    offset = {0: np.zeros(3)}  # each body's link frame origin, in body coordinates
    links = ['<link name="world"/>']
    joints = []
    for b in range(1, model.nbody):
        body = nm(mujoco.mjtObj.mjOBJ_BODY, b, "body")
        parent = int(model.body_parentid[b])
        jadr, jnum = int(model.body_jntadr[b]), int(model.body_jntnum[b])
        anchor = model.jnt_pos[jadr].copy() if jnum else np.zeros(3)
        offset[b] = anchor
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.body_quat[b])
        pos = model.body_pos[b] - offset[parent] + rot.reshape(3, 3) @ anchor
        prev, origin = link_of[parent], _origin(pos, model.body_quat[b])
        specs = [(jadr + k) for k in range(jnum)] or [None]
        for k, j in enumerate(specs):
            last = k == len(specs) - 1
            child = body if last else f"{body}__{nm(mujoco.mjtObj.mjOBJ_JOINT, j, 'joint')}"
            jname = f"{body}_fixed" if j is None else nm(mujoco.mjtObj.mjOBJ_JOINT, j, "joint")
            jtype, extra = "fixed", ""
            if j is not None:
                t = int(model.jnt_type[j])
                axis = " ".join(f"{v:.6g}" for v in model.jnt_axis[j])
                if t == int(mujoco.mjtJoint.mjJNT_FREE):
                    jtype = "floating"
                elif t in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
                    lo, hi = model.jnt_range[j]
                    limited = bool(model.jnt_limited[j])
                    if t == int(mujoco.mjtJoint.mjJNT_SLIDE):
                        jtype = "prismatic"
                    else:
                        jtype = "revolute" if limited else "continuous"
                    extra = f'<axis xyz="{axis}"/>'
                    if jtype != "continuous":
                        if not limited:
                            lo, hi = -1e3, 1e3  # URDF needs limits on prismatic joints
                        extra += f'<limit lower="{lo:.6g}" upper="{hi:.6g}" effort="0" velocity="0"/>'
            joints.append(
                f'<joint name="{jname}" type="{jtype}"><parent link="{prev}"/><child link="{child}"/>'
                f"{origin}{extra}</joint>"
            )
            if not last:
                links.append(f'<link name="{child}"/>')
            prev, origin = child, '<origin xyz="0 0 0" rpy="0 0 0"/>'
        visuals = []
        for g in range(int(model.body_geomadr[b]), int(model.body_geomadr[b] + model.body_geomnum[b])):
            shape = _urdf_geometry(int(model.geom_type[g]), model.geom_size[g])
            if shape:
                visuals.append(
                    f"<visual>{_origin(model.geom_pos[g] - anchor, model.geom_quat[g])}"
                    f"<geometry>{shape}</geometry></visual>"
                )
        links.append(f'<link name="{body}">{"".join(visuals)}</link>')
        link_of[b] = body
    return f'<?xml version="1.0"?>\n<robot name="{name}">{"".join(links)}{"".join(joints)}</robot>\n'


def _urdf_geometry(gtype: int, size: np.ndarray) -> str | None:
    g = mujoco.mjtGeom
    gtype = int(gtype)
    if gtype == g.mjGEOM_BOX:
        return f'<box size="{2 * size[0]:.6g} {2 * size[1]:.6g} {2 * size[2]:.6g}"/>'
    if gtype == g.mjGEOM_SPHERE or gtype == g.mjGEOM_ELLIPSOID:
        return f'<sphere radius="{size[0]:.6g}"/>'
    if gtype == g.mjGEOM_CYLINDER:
        return f'<cylinder radius="{size[0]:.6g}" length="{2 * size[1]:.6g}"/>'
    if gtype == g.mjGEOM_CAPSULE:
        return f'<cylinder radius="{size[0]:.6g}" length="{2 * (size[1] + size[0]):.6g}"/>'
    return None
