"""Observation groups: named segments, each with its own scale and noise, concatenated in config order."""

from collections import OrderedDict

import jax
import jax.numpy as jnp

from legged_env.core import symmetry
from legged_env.errors import ConfigError

_SEGMENT_KEYS = {"scale", "noise"}


class ObsGroup:
    """Builds a flat observation from named quantities.

    Args:
        spec: ordered mapping segment name -> ``{"scale": float, "noise": float}`` (noise in the
            quantity's own units, before scaling; omitted keys mean scale 1 and no noise).
        shapes: shape of every quantity the task can observe, by name.
        where: config path for error messages, e.g. ``env.observations.actor in configs/walk.yaml``.
    """

    def __init__(self, spec: dict, shapes: dict, where: str):
        self.where = where
        self.segments: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        scales, noises = [], []
        for name, seg in spec.items():
            if name not in shapes:
                raise ConfigError(f"unknown observation segment '{name}' in {where} (valid: {', '.join(shapes)})")
            seg = seg or {}
            if not isinstance(seg, dict) or set(seg) - _SEGMENT_KEYS:
                raise ConfigError(f"segment '{name}' in {where} takes only {sorted(_SEGMENT_KEYS)}, got {seg!r}")
            shape = tuple(shapes[name])
            size = int(jnp.prod(jnp.array(shape))) if shape else 1
            self.segments[name] = shape if shape else (1,)
            scales.append(jnp.full((size,), float(seg.get("scale", 1.0))))
            noises.append(jnp.full((size,), float(seg.get("noise", 0.0))))
        if not self.segments:
            raise ConfigError(f"{where} lists no observation segments")
        self.scale = jnp.concatenate(scales)
        self.noise = jnp.concatenate(noises) * self.scale
        self.size = int(self.scale.shape[0])

    def mirror(self, mirrors: dict) -> symmetry.Mirror:
        """The left-right mirror ``(perm, sign)`` of this group's flat observation (see :mod:`legged_env.core.symmetry`)
        from the task's ``quantity_mirrors``; ConfigError naming a segment that has none.

        It commutes with the scales (one per segment, and a mirror moves values only within a segment) and with the
        noise (uniform, symmetric about 0, one level per segment): ``mirror(obs(q)) = obs(mirror(q))``.
        """
        perm, sign = symmetry.group_mirror(self.segments, mirrors, self.where)
        if not (bool(jnp.all(self.scale[perm] == self.scale)) and bool(jnp.all(self.noise[perm] == self.noise))):
            raise ConfigError(f"{self.where}: a segment's scale or noise varies within it, so it breaks the mirror")
        return perm, sign

    def __call__(self, quantities: dict, rng: jax.Array | None = None, noise_level: float = 0.0) -> jax.Array:
        """Returns the flat observation ``(size,)``; uniform noise in ``[-1, 1] * noise * scale * level``."""
        flat = jnp.concatenate([jnp.ravel(quantities[name]) for name in self.segments]) * self.scale
        if rng is not None and noise_level > 0.0:
            flat = flat + jax.random.uniform(rng, flat.shape, minval=-1.0, maxval=1.0) * self.noise * noise_level
        return flat
