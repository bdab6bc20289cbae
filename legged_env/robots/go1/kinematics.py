"""Go1 leg kinematics in the base (trunk) frame, with the geometry read from ``go1.xml``.

Each leg is a chain trunk -> hip body (hip joint, abduction about the body's x axis) -> thigh body
(thigh joint, pitch about y) -> calf body (calf joint, pitch about y) -> foot sphere. The offsets
between them (hip position on the trunk, the lateral hip-to-thigh offset, the thigh and calf lengths),
the joint axes and ranges and the foot radius are all taken from the compiled MJCF, and their structure
(identity body orientations, offsets along a single axis) is checked, so the closed-form inverse
kinematics below is exact for the model MuJoCo simulates.

Angles follow :data:`~legged_env.robots.go1.constants.JOINT_NAMES` (FL, FR, RL, RR x hip, thigh, calf);
positions are foot (sphere) centres in the base frame, legs in the same order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from legged_env.robots.go1 import constants as go1

TWO_PI = 2.0 * np.pi


def _rot_x(v: np.ndarray, a: np.ndarray, xp=np) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) about x by angles ``a`` (...); ``xp`` is the array module (numpy or jax.numpy)."""
    c, s = xp.cos(a), xp.sin(a)
    return xp.stack([v[..., 0], c * v[..., 1] - s * v[..., 2], s * v[..., 1] + c * v[..., 2]], axis=-1)


def _rot_y(v: np.ndarray, a: np.ndarray, xp=np) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) about y by angles ``a`` (...); ``xp`` is the array module."""
    c, s = xp.cos(a), xp.sin(a)
    return xp.stack([c * v[..., 0] + s * v[..., 2], v[..., 1], -s * v[..., 0] + c * v[..., 2]], axis=-1)


@dataclass(frozen=True, eq=False)
class Go1Kinematics:
    """Leg geometry of the Go1 (all arrays indexed by leg FL, FR, RL, RR).

    Attributes:
        hip_pos: ``(4, 3)`` hip joint origin in the base frame (m).
        thigh_offset: ``(4,)`` signed lateral (y) offset of the thigh joint from the hip joint (m).
        thigh_length: ``(4,)`` thigh joint to calf joint, along -z of the thigh frame (m).
        calf_length: ``(4,)`` calf joint to foot centre, along -z of the calf frame (m).
        foot_radius: radius of the foot spheres (m).
        joint_range: ``(12, 2)`` lower/upper joint limits (rad), joint order ``JOINT_NAMES``.
    """

    hip_pos: np.ndarray
    thigh_offset: np.ndarray
    thigh_length: np.ndarray
    calf_length: np.ndarray
    foot_radius: float
    joint_range: np.ndarray

    @classmethod
    def from_xml(cls, path: str | Path = go1.XML_PATH) -> Go1Kinematics:
        """Read the geometry from an MJCF with Go1's body, joint and foot-geom names.

        Raises:
            ValueError: a body/joint/geom is missing, or the chain does not have the structure the
                closed-form kinematics assumes (the message names the element and its value).
        """
        import mujoco

        m = mujoco.MjModel.from_xml_path(str(path))

        def ident(kind: mujoco.mjtObj, name: str) -> int:
            i = mujoco.mj_name2id(m, kind, name)
            if i < 0:
                raise ValueError(f"{path}: no {kind.name[6:].lower()} named '{name}'")
            return i

        def expect(cond: bool, what: str, value: np.ndarray, want: str) -> None:
            if not cond:
                raise ValueError(f"{path}: {what} is {np.round(value, 6).tolist()}, expected {want}")

        tol = 1e-9
        hip_pos, l1, l2, l3, radii, ranges = [], [], [], [], [], []
        for leg_i, leg in enumerate(go1.LEGS):
            bodies = [ident(mujoco.mjtObj.mjOBJ_BODY, f"{leg}_{part}") for part in ("hip", "thigh", "calf")]
            for b in bodies:
                q = m.body_quat[b]
                expect(np.allclose(q, [1, 0, 0, 0], atol=tol), f"body {m.body(b).name} quat", q, "identity")
            for part_i, (part, axis) in enumerate(zip(("hip", "thigh", "calf"), ((1, 0, 0), (0, 1, 0), (0, 1, 0)))):
                j = ident(mujoco.mjtObj.mjOBJ_JOINT, go1.JOINT_NAMES[3 * leg_i + part_i])
                expect(int(m.jnt_bodyid[j]) == bodies[part_i], f"joint {m.joint(j).name} body", m.jnt_bodyid[j], part)
                expect(np.allclose(m.jnt_axis[j], axis, atol=tol), f"joint {m.joint(j).name} axis", m.jnt_axis[j], axis)
                expect(np.allclose(m.jnt_pos[j], 0, atol=tol), f"joint {m.joint(j).name} pos", m.jnt_pos[j], "0 0 0")
                ranges.append(m.jnt_range[j].copy())
            hip, thigh, calf = (m.body_pos[b] for b in bodies)
            trunk = ident(mujoco.mjtObj.mjOBJ_BODY, go1.TRUNK_BODY)
            parent = m.body_parentid[bodies[0]]
            expect(parent == trunk, f"parent body id of {leg}_hip", parent, f"{trunk} ({go1.TRUNK_BODY})")
            expect(abs(thigh[0]) < tol and abs(thigh[2]) < tol, f"body {leg}_thigh pos", thigh, "(0, y, 0)")
            along_z = abs(calf[0]) < tol and abs(calf[1]) < tol and calf[2] < 0
            expect(along_z, f"body {leg}_calf pos", calf, "(0, 0, -l)")
            g = ident(mujoco.mjtObj.mjOBJ_GEOM, go1.FOOT_GEOMS[leg_i])
            foot = m.geom_pos[g]
            expect(int(m.geom_bodyid[g]) == bodies[2], f"geom {go1.FOOT_GEOMS[leg_i]} body", m.geom_bodyid[g], "calf")
            along_z = abs(foot[0]) < tol and abs(foot[1]) < tol and foot[2] < 0
            expect(along_z, f"geom {go1.FOOT_GEOMS[leg_i]} pos", foot, "(0, 0, -l)")
            hip_pos.append(hip.copy())
            l1.append(thigh[1])
            l2.append(-calf[2])
            l3.append(-foot[2])
            radii.append(m.geom_size[g, 0])
        return cls(
            hip_pos=np.array(hip_pos),
            thigh_offset=np.array(l1),
            thigh_length=np.array(l2),
            calf_length=np.array(l3),
            foot_radius=float(np.mean(radii)),
            joint_range=np.array(ranges),
        )

    # ------------------------------------------------------------------ forward kinematics
    def leg_fk(self, leg: int, q: np.ndarray, xp=np) -> np.ndarray:
        """Foot centre of leg ``leg`` (0..3) in the base frame for its angles ``q`` ``(..., 3)`` -> ``(..., 3)``.

        ``xp``: the array module, numpy (float64) or jax.numpy (traceable, e.g. inside the env's jit)."""
        if xp is np:
            q = np.asarray(q, dtype=np.float64)
        zero = xp.zeros(q.shape[:-1])
        foot = xp.stack([zero, zero, zero - self.calf_length[leg]], axis=-1)
        calf = _rot_y(foot, q[..., 2], xp) + xp.array([0.0, 0.0, -self.thigh_length[leg]])
        thigh = _rot_y(calf, q[..., 1], xp) + xp.array([0.0, self.thigh_offset[leg], 0.0])
        return _rot_x(thigh, q[..., 0], xp) + xp.asarray(self.hip_pos[leg])

    def fk(self, q: np.ndarray, xp=np) -> np.ndarray:
        """Foot centres of all legs: joint angles ``(..., 12)`` -> positions ``(..., 4, 3)`` in the base frame."""
        if xp is np:
            q = np.asarray(q, dtype=np.float64)
        return xp.stack([self.leg_fk(i, q[..., 3 * i : 3 * i + 3], xp) for i in range(4)], axis=-2)

    # ------------------------------------------------------------------ inverse kinematics
    def leg_ik(self, leg: int, p: np.ndarray) -> np.ndarray:
        """Joint angles ``(..., 3)`` placing the foot of leg ``leg`` at ``p`` ``(..., 3)`` (base frame).

        The solution has the knee bent backwards (calf angle in ``[-pi, 0]``, as the calf range of the
        model allows only that) and the foot below the thigh joint in the abducted leg plane; every
        angle is returned in ``[lower, lower + 2 pi)`` of its joint range (the thigh range is wider
        than ``pi``). Angles outside the joint range are returned as they are: check with
        :meth:`within_limits`.

        Raises:
            ValueError: ``p`` is out of reach (closer to the hip's x axis than the lateral offset, or
                farther from the thigh joint than thigh + calf); names the leg and the distance.
        """
        p = np.asarray(p, dtype=np.float64) - self.hip_pos[leg]
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        l1, l2, l3 = self.thigh_offset[leg], self.thigh_length[leg], self.calf_length[leg]
        name = go1.LEGS[leg]
        r2 = y * y + z * z
        if np.any(r2 < l1 * l1 - 1e-12):
            raise ValueError(
                f"foot target out of reach for leg {name}: {np.sqrt(r2.min()):.4f} m from the hip axis "
                f"< lateral offset {abs(l1):.4f} m"
            )
        zp = -np.sqrt(np.maximum(r2 - l1 * l1, 0.0))  # foot height in the abducted leg plane (thigh frame)
        q_hip = np.arctan2(z, y) - np.arctan2(zp, l1)
        d2 = x * x + zp * zp
        c3 = (d2 - l2 * l2 - l3 * l3) / (2.0 * l2 * l3)
        if np.any(np.abs(c3) > 1.0 + 1e-9):
            raise ValueError(
                f"foot target out of reach for leg {name}: {np.sqrt(d2.max()):.4f} m from the thigh joint "
                f"(reach {abs(l2 - l3):.4f}..{l2 + l3:.4f} m)"
            )
        q_calf = -np.arccos(np.clip(c3, -1.0, 1.0))
        q_thigh = np.arctan2(-x, -zp) - np.arctan2(l3 * np.sin(q_calf), l2 + l3 * np.cos(q_calf))
        q = np.stack([q_hip, q_thigh, q_calf], axis=-1)
        lower = self.joint_range[3 * leg : 3 * leg + 3, 0]
        return lower + np.mod(q - lower, TWO_PI)

    def ik(self, p: np.ndarray) -> np.ndarray:
        """Joint angles ``(..., 12)`` for foot centres ``(..., 4, 3)`` in the base frame (see :meth:`leg_ik`)."""
        p = np.asarray(p, dtype=np.float64)
        return np.concatenate([self.leg_ik(i, p[..., i, :]) for i in range(4)], axis=-1)

    # ------------------------------------------------------------------ helpers
    def within_limits(self, q: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """``(...,)`` bool: all 12 angles of ``q`` ``(..., 12)`` lie inside their ranges shrunk by ``margin``."""
        q = np.asarray(q)
        lo, hi = self.joint_range[:, 0] + margin, self.joint_range[:, 1] - margin
        return np.all((q >= lo) & (q <= hi), axis=-1)

    def standing_height(self, q: np.ndarray | None = None) -> float:
        """Base height (m) at which the feet of pose ``q`` (default ``DEFAULT_JOINT_POS``) rest on flat ground.

        The trunk is level and the lowest foot sphere touches the ground: ``-min(foot z) + foot_radius``.
        """
        q = np.asarray(go1.DEFAULT_JOINT_POS if q is None else q, dtype=np.float64)
        return float(-self.fk(q)[..., 2].min() + self.foot_radius)


@functools.lru_cache(maxsize=4)
def load_kinematics(path: str | Path = go1.XML_PATH) -> Go1Kinematics:
    """:meth:`Go1Kinematics.from_xml`, cached per path (parsing compiles the MJCF)."""
    return Go1Kinematics.from_xml(path)
