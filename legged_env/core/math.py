"""Quaternion helpers (MuJoCo convention: w, x, y, z)."""

import jax.numpy as jnp


def quat_rotate_inverse(quat: jnp.ndarray, vec: jnp.ndarray) -> jnp.ndarray:
    """Rotates world-frame ``vec`` (3,) into the frame of unit quaternion ``quat`` (4,)."""
    w, xyz = quat[0], quat[1:]
    t = 2.0 * jnp.cross(xyz, vec)
    return vec - w * t + jnp.cross(xyz, t)


def quat_rotate(quat: jnp.ndarray, vec: jnp.ndarray) -> jnp.ndarray:
    """Rotates body-frame ``vec`` (3,) into the world frame by unit quaternion ``quat`` (4,)."""
    w, xyz = quat[0], quat[1:]
    t = 2.0 * jnp.cross(xyz, vec)
    return vec + w * t + jnp.cross(xyz, t)


def yaw_quat(yaw: jnp.ndarray) -> jnp.ndarray:
    """Unit quaternion (4,) of a rotation by ``yaw`` about world z."""
    return jnp.array([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])


def quat_to_rpy(quat: jnp.ndarray) -> jnp.ndarray:
    """(roll, pitch, yaw) (3,) in rad of unit quaternion ``quat`` (4,): ZYX Euler angles (yaw about world z,
    then pitch about the new y, then roll about the body x), pitch in [-pi/2, pi/2]."""
    w, x, y, z = quat
    roll = jnp.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = jnp.arcsin(jnp.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = jnp.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return jnp.stack([roll, pitch, yaw])
