"""What a robot's sensors do to a clean quantity: a depth camera's latency, frame rate, noise, missing pixels and
range limits, and the latency of proprioception. Pure per-env JAX functions (vmapped with the env).

Ranges are ``[lo, hi]`` and sampled per env at every reset (integers inclusive, floats uniform), so one batch
trains against many cameras; a single number means a fixed value.

Depth camera, per policy step ``s`` (``s = 1, 2, ...`` after each step's physics; ``s = 0`` is the reset
observation), with the env's clean z-depth image ``D_s`` rendered at the pose after the step:

1. the last ``Lmax + 1`` clean images are kept (``Lmax``: the latency range's hi); the captured image is
   ``C = D_{s - L}`` (images from before the episode's first step read ``max_range`` everywhere);
2. if ``(s + phase) % P == 0`` the held frame ``F`` becomes ``corrupt(C)``, else it is unchanged (``F`` is
   ``max_range`` everywhere at reset: no frame has arrived yet);
3. ``corrupt(C)``: on pixels that hit something (``C < max_range``) ``X = C + N(0, 1) * sigma * C**2`` (a stereo
   camera's error grows with depth squared; ``sigma`` is the std at 1 m); ``X < near`` -> 0 (too close: no data);
   ``X > far`` -> ``max_range`` (no return); each pixel with probability ``p`` -> 0 (no data, as a RealSense
   reports it); clipped to ``[0, max_range]``.

The observation is ``F``. ``legged_rl/sim2sim.py`` implements the same camera in numpy for plain MuJoCo.
"""

import jax
import jax.numpy as jnp

from legged_env.errors import ConfigError

# env.forward_depth keys of the camera model -> (default, integer?, lower bound)
CAMERA_KEYS = {
    "latency_steps": (0, True, 0),
    "frame_period_steps": (1, True, 1),
    "noise_std": (0.0, False, 0.0),
    "missing_prob": (0.0, False, 0.0),
    "near_clip": (0.0, False, 0.0),
    "far_clip": (None, False, 0.0),  # None: max_range
}


def value_range(value, where: str, integer: bool, low: float) -> tuple:
    """``(lo, hi)`` of a config value ``[lo, hi]`` (or one number); ConfigError naming ``where`` (key and file)."""
    pair = list(value) if isinstance(value, list | tuple) else [value, value]
    ok = len(pair) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
    ok = ok and (not integer or all(float(v).is_integer() for v in pair))
    if not ok or not low <= pair[0] <= pair[1]:
        kind = "integers" if integer else "numbers"
        raise ConfigError(f"{where} must be [lo, hi] of {kind} with {low} <= lo <= hi, got {value!r}")
    return (int(pair[0]), int(pair[1])) if integer else (float(pair[0]), float(pair[1]))


def camera_ranges(fd: dict, source: str) -> dict:
    """Validated ``(lo, hi)`` of every camera-model key of ``fd`` (the ``env.forward_depth`` section of ``source``)."""
    max_range = float(fd["max_range"])
    out = {}
    for key, (default, integer, low) in CAMERA_KEYS.items():
        value = fd.get(key, default)
        where = f"env.forward_depth.{key} in {source}"
        out[key] = value_range(max_range if value is None else value, where, integer, low)
    if out["missing_prob"][1] > 1.0:
        raise ConfigError(f"env.forward_depth.missing_prob in {source} must lie in [0, 1], got {fd['missing_prob']}")
    if out["far_clip"][1] > max_range:
        where = f"env.forward_depth.far_clip in {source}"
        raise ConfigError(f"{where} must be <= max_range {max_range}, got {fd['far_clip']}")
    return out


def camera_is_ideal(ranges: dict, max_range: float) -> bool:
    """True when the camera model changes nothing: the clean image of the current pose every step."""
    ideal = {"latency_steps": (0, 0), "frame_period_steps": (1, 1), "noise_std": (0.0, 0.0)}
    ideal |= {"missing_prob": (0.0, 0.0), "near_clip": (0.0, 0.0), "far_clip": (max_range, max_range)}
    return all(tuple(ranges[k]) == v for k, v in ideal.items())


def sample_camera(rng: jax.Array, ranges: dict) -> dict:
    """One env's camera: ``latency``, ``period``, ``phase`` (int32) and ``noise_std``, ``missing_prob``,
    ``near_clip``, ``far_clip`` (float32), each drawn from its range."""
    keys = dict(zip(CAMERA_KEYS, jax.random.split(rng, len(CAMERA_KEYS)), strict=True))

    def draw(name):
        lo, hi = ranges[name]
        if CAMERA_KEYS[name][1]:
            return jax.random.randint(keys[name], (), lo, hi + 1, dtype=jnp.int32)
        return jax.random.uniform(keys[name], (), jnp.float32, lo, hi)

    period = draw("frame_period_steps")
    phase = jax.random.randint(jax.random.fold_in(rng, 1), (), 0, period, dtype=jnp.int32)
    return {
        "latency": draw("latency_steps"),
        "period": period,
        "phase": phase,
        "noise_std": draw("noise_std"),
        "missing_prob": draw("missing_prob"),
        "near_clip": draw("near_clip"),
        "far_clip": draw("far_clip"),
    }


def blank_images(count: int, hw: tuple[int, int], max_range: float) -> jax.Array:
    """``(count, H, W)`` float32 images reading ``max_range`` (nothing seen yet). float32, not weak: the step
    returns float32 buffers, and a weak one from reset would make the step compile twice."""
    return jnp.full((count, *hw), max_range, dtype=jnp.float32)


def corrupt(image: jax.Array, cam: dict, rng: jax.Array, max_range: float) -> jax.Array:
    """The camera's reading of a clean z-depth ``image`` (H, W): noise, near/far clipping, missing pixels."""
    k_noise, k_missing = jax.random.split(rng)
    hit = image < max_range
    noisy = image + jax.random.normal(k_noise, image.shape) * cam["noise_std"] * jnp.square(image)
    out = jnp.where(hit, noisy, max_range)
    out = jnp.where(out < cam["near_clip"], 0.0, out)
    out = jnp.where(out > cam["far_clip"], max_range, out)
    out = jnp.where(jax.random.uniform(k_missing, image.shape) < cam["missing_prob"], 0.0, out)
    return jnp.clip(out, 0.0, max_range)


def camera_step(
    buffer: jax.Array, frame: jax.Array, cam: dict, rendered: jax.Array, step: jax.Array, rng: jax.Array, max_range
) -> tuple[jax.Array, jax.Array]:
    """``(buffer, frame)`` after policy step ``step`` (>= 1) whose clean image is ``rendered`` (H, W).

    ``buffer`` (Lmax + 1, H, W): clean images, oldest first; ``frame`` (H, W): what the policy sees."""
    buffer = jnp.concatenate([buffer[1:], rendered[None]])
    captured = buffer[buffer.shape[0] - 1 - cam["latency"]]
    refresh = (step + cam["phase"]) % cam["period"] == 0
    return buffer, jnp.where(refresh, corrupt(captured, cam, rng, max_range), frame)


# ---------------------------------------------------------------------------------------------- proprioception
def delayed(buffer: jax.Array, latency: jax.Array, step: jax.Array, current: jax.Array) -> jax.Array:
    """The value ``latency`` policy steps ago from ``buffer`` (Lmax + 1, D) of the last values, oldest first (the
    newest is this step's). At the reset observation (``step`` 0) the current value; for the first steps after it
    the oldest value of the episode (the step-1 one): nothing older was recorded. A latency of 0 is ``current``."""
    newest = buffer.shape[0] - 1
    index = newest - jnp.minimum(latency, jnp.maximum(step - 1, 0))
    return jnp.where((step >= 1) & (latency > 0), buffer[index], current)
