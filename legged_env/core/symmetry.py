"""Left-right mirror symmetry (y -> -y about the robot's sagittal x-z plane) of flat observation and action vectors.

A mirror of a quantity with ``D`` flattened values is a pair ``(perm, sign)`` of ``(D,)`` arrays (int, float +-1):
``mirrored = x[perm] * sign``. The robot declares its joints' and legs' mirrors
(``legged_env/robots/<robot>/symmetry.py``), a task declares one per observable quantity
(:meth:`legged_env.core.legged_env.LeggedEnv.quantity_mirrors`), and an observation group concatenates those of
its segments (:meth:`legged_env.core.observations.ObsGroup.mirror`). A quantity whose mirror does not exist for
the config (e.g. a height scan on a lopsided grid) is declared by a string saying why, so asking for the mirror of
a group that observes it is a ConfigError naming both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from legged_env.errors import ConfigError

Mirror = tuple[np.ndarray, np.ndarray]  # (perm (D,) int64, sign (D,) float32)

# Sign patterns of 3-vectors under y -> -y.
POLAR = (1.0, -1.0, 1.0)  # positions, linear velocities, gravity, forces: (x, -y, z)
AXIAL = (-1.0, 1.0, -1.0)  # angular velocities, rotation axes: (-x, y, -z)


def make(perm: Sequence[int], sign: Sequence[float]) -> Mirror:
    """A mirror from a permutation and signs of the same length."""
    p, s = np.asarray(perm, dtype=np.int64), np.asarray(sign, dtype=np.float32)
    if p.shape != s.shape or p.ndim != 1:
        raise ValueError(f"mirror perm {p.shape} and sign {s.shape} must be 1-D of one length")
    return p, s


def identity(size: int) -> Mirror:
    """Values the mirror leaves alone (scalars like friction or mass, x-only track facts)."""
    return make(range(size), [1.0] * size)


def signs(pattern: Sequence[float]) -> Mirror:
    """Values kept in place with a sign each, e.g. :data:`POLAR` or :data:`AXIAL`."""
    return make(range(len(pattern)), pattern)


def swap(size: int = 2) -> Mirror:
    """Reverses the order of the values, e.g. (left, right) distances -> (right, left)."""
    return make(range(size - 1, -1, -1), [1.0] * size)


def flip_axis(shape: Sequence[int], axis: int) -> Mirror:
    """Reverses one axis of an array of ``shape`` flattened in C order (an image's width, a scan's lateral axis)."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    return make(np.flip(index, axis=axis).ravel(), [1.0] * index.size)


def blocks(block_perm: Sequence[int], block: Mirror) -> Mirror:
    """``len(block_perm)`` consecutive blocks (e.g. legs) swapped by ``block_perm``, each mirrored by ``block``."""
    size = len(block[0])
    perm = [block_perm[b] * size + int(i) for b in range(len(block_perm)) for i in block[0]]
    return make(perm, np.tile(block[1], len(block_perm)))


def concat(mirrors: Sequence[Mirror]) -> Mirror:
    """The mirror of the concatenation of vectors, given each one's mirror."""
    perms, offset = [], 0
    for p, _ in mirrors:
        perms.append(p + offset)
        offset += len(p)
    return make(np.concatenate(perms), np.concatenate([s for _, s in mirrors]))


def apply(mirror: Mirror, x: np.ndarray) -> np.ndarray:
    """``x[..., perm] * sign`` for ``x`` ``(..., D)`` (numpy or jax arrays)."""
    perm, sign = mirror
    return x[..., perm] * sign


def check(mirror: Mirror, size: int, what: str) -> None:
    """ValueError unless ``mirror`` is a signed permutation of ``size`` values that is its own inverse."""
    perm, sign = mirror
    if len(perm) != size or sorted(perm.tolist()) != list(range(size)):
        raise ValueError(f"mirror of {what}: perm is not a permutation of {size} values")
    if not np.all(np.abs(sign) == 1.0):
        raise ValueError(f"mirror of {what}: signs must be +-1")
    if not (np.array_equal(perm[perm], np.arange(size)) and np.all(sign[perm] * sign == 1.0)):
        raise ValueError(f"mirror of {what}: mirroring twice is not the identity")


def group_mirror(segments: Mapping[str, tuple[int, ...]], mirrors: Mapping[str, Mirror | str], where: str) -> Mirror:
    """The mirror of a flat observation made of ``segments`` (name -> shape, in order).

    Args:
        mirrors: the task's mirror of every quantity by name, or a string saying why a quantity has none.
        where: the group's config path, for messages.

    Raises:
        ConfigError: a segment with no declared mirror, or none for this config, naming it and ``where``.
    """
    parts = []
    for name, shape in segments.items():
        m = mirrors.get(name)
        if m is None:
            raise ConfigError(f"observation segment '{name}' in {where} has no declared left-right mirror")
        if isinstance(m, str):
            raise ConfigError(f"observation segment '{name}' in {where} has no left-right mirror: {m}")
        check(m, int(np.prod(shape)), f"segment '{name}'")
        parts.append(m)
    return concat(parts)
