"""Geometric clearance of robot geoms above the ground, computed from geom poses.

Body contacts that end an episode or are penalised come from the physics' own contacts (the whole
robot collides, legged_env/robots/go1/go1.xml; see WalkTask.quantities). These functions give the
feet's contact flags (a foot sphere's clearance, as a foot sensor would report it) and the sample
points of the climb task's soft-obstacle penetration penalty: the lowest point of a box, capsule or
sphere against the ground height under it. For the flat floor the ground height is 0; a terrain
supplies its own height function ``ground_height(xy) -> z``.
"""

from collections.abc import Callable

import jax.numpy as jnp

_BOX_CORNERS = jnp.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=jnp.float32)


def flat_ground(xy: jnp.ndarray) -> jnp.ndarray:
    """Ground height of the flat floor: zeros of shape ``xy.shape[:-1]``."""
    return jnp.zeros(xy.shape[:-1])


def box_corners(pos: jnp.ndarray, mat: jnp.ndarray, half_size: jnp.ndarray) -> jnp.ndarray:
    """``(8, 3)`` corners of a box at ``pos`` (3,) with rotation ``mat`` (3, 3) and half sizes (3,)."""
    return pos + (_BOX_CORNERS * half_size) @ mat.T


def capsule_ends(pos: jnp.ndarray, mat: jnp.ndarray, half_len: jnp.ndarray) -> jnp.ndarray:
    """``(K, 2, 3)`` end points of the axes (local z) of capsules at ``pos`` (K, 3), ``mat`` (K, 3, 3)."""
    axis = mat[:, :, 2] * half_len[:, None]  # (K, 3)
    return jnp.stack([pos + axis, pos - axis], axis=1)


def box_clearance(pos: jnp.ndarray, mat: jnp.ndarray, half_size: jnp.ndarray, ground: Callable) -> jnp.ndarray:
    """Lowest corner height above the ground of a box at ``pos`` (3,) with rotation ``mat`` (3, 3)."""
    corners = box_corners(pos, mat, half_size)
    return jnp.min(corners[:, 2] - ground(corners[:, :2]))


def capsule_clearance(
    pos: jnp.ndarray, mat: jnp.ndarray, radius: jnp.ndarray, half_len: jnp.ndarray, ground: Callable
) -> jnp.ndarray:
    """Clearance of capsules: ``pos`` (K, 3), ``mat`` (K, 3, 3), ``radius``/``half_len`` (K,) -> (K,).

    A capsule's axis is its local z; its lowest point is an end point minus the radius.
    """
    ends = capsule_ends(pos, mat, half_len)
    return jnp.min(ends[..., 2] - ground(ends[..., :2]), axis=1) - radius


def sphere_clearance(pos: jnp.ndarray, radius: jnp.ndarray, ground: Callable) -> jnp.ndarray:
    """Clearance of spheres at ``pos`` (K, 3) with ``radius`` (K,) -> (K,)."""
    return pos[:, 2] - radius - ground(pos[:, :2])
