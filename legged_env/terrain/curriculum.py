"""Terrain curriculum: per-env difficulty levels moved by each episode's outcome (legged_gym's rule).

An env moves up a level when it finished its track without terminating, down when it did not; an
env that finishes the top level goes to a random level, so the top keeps being revisited without
the whole population piling up there.
"""

import jax
import jax.numpy as jnp


def next_level(level: jax.Array, success: jax.Array, rng: jax.Array, num_levels: int) -> jax.Array:
    """``()`` int level of the next episode after one at ``level`` with outcome ``success``."""
    top = level >= num_levels - 1
    up = jnp.where(top, jax.random.randint(rng, (), 0, num_levels), level + 1)
    return jnp.where(success, up, jnp.maximum(level - 1, 0)).astype(jnp.int32)


def initial_levels(rng: jax.Array, num_envs: int, num_levels: int, mode: str, max_level: int) -> jax.Array:
    """``(num_envs,)`` starting levels: ``"low"`` uniform in ``[0, max_level]``; ``"spread"`` env i at level
    ``i % num_levels`` (every level equally often: evaluation)."""
    if mode == "spread":
        return (jnp.arange(num_envs) % num_levels).astype(jnp.int32)
    return jax.random.randint(rng, (num_envs,), 0, min(max_level, num_levels - 1) + 1).astype(jnp.int32)
