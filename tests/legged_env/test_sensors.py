"""The sensor models of legged_env/core/sensors.py: a depth camera's latency, frame period, noise, near/far clipping
and missing pixels, per-env sampling of each, and proprioception latency. Pure functions on small arrays (no env)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from legged_env.core import sensors
from legged_env.errors import ConfigError

pytestmark = pytest.mark.timeout(120)

MAX_RANGE = 2.0
IDEAL = {"noise_std": 0.0, "missing_prob": 0.0, "near_clip": 0.0, "far_clip": MAX_RANGE}


def _camera(latency=0, period=1, phase=0, **kw):
    cam = {"latency": latency, "period": period, "phase": phase, **IDEAL, **kw}
    ints = ("latency", "period", "phase")
    return {k: jnp.asarray(v, jnp.int32 if k in ints else jnp.float32) for k, v in cam.items()}


def _run(cam: dict, history: int, steps: int) -> list[float]:
    """The frame the policy sees after each step 1..steps when step s renders an image of constant value s / 10."""
    step = jax.jit(sensors.camera_step, static_argnums=6)
    buffer = sensors.blank_images(history, (2, 3), MAX_RANGE)
    frame = sensors.blank_images(1, (2, 3), MAX_RANGE)[0]
    seen = []
    for s in range(1, steps + 1):
        rendered = jnp.full((2, 3), s / 10.0)
        buffer, frame = step(buffer, frame, cam, rendered, jnp.int32(s), jax.random.PRNGKey(s), MAX_RANGE)
        assert np.all(np.asarray(frame) == np.asarray(frame)[0, 0])  # no noise: one value per frame
        seen.append(round(float(frame[0, 0]), 6))
    return seen


def test_latency_delays_the_image_by_exactly_that_many_steps():
    # history 4 (a range up to 3), this camera's latency 2: step s shows step s - 2's image, blank before
    assert _run(_camera(latency=2), history=4, steps=6) == [2.0, 2.0, 0.1, 0.2, 0.3, 0.4]
    assert _run(_camera(latency=0), history=4, steps=3) == [0.1, 0.2, 0.3]
    assert _run(_camera(latency=3), history=4, steps=5) == [2.0, 2.0, 2.0, 0.1, 0.2]


def test_frame_period_holds_each_frame_for_that_many_steps():
    # period 3, phase 1: new frames at s = 2, 5, 8 ((s + 1) % 3 == 0), the blank frame before the first
    assert _run(_camera(period=3, phase=1), history=1, steps=8) == [2.0, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.8]
    # with latency 1 the frame taken at s = 5 is step 4's image
    assert _run(_camera(latency=1, period=3, phase=1), history=2, steps=6) == [2.0, 0.1, 0.1, 0.1, 0.4, 0.4]


def test_near_and_far_clipping_and_nothing_hit():
    image = jnp.array([[0.05, 0.3, 1.0, 1.7, 2.0]])
    out = sensors.corrupt(image, _camera(near_clip=0.1, far_clip=1.5), jax.random.PRNGKey(0), MAX_RANGE)
    np.testing.assert_allclose(np.asarray(out), [[0.0, 0.3, 1.0, 2.0, 2.0]])  # too close: 0; too far: max_range


def test_missing_pixels_read_zero_at_their_probability():
    image = jnp.full((100, 100), 1.0)
    out = np.asarray(sensors.corrupt(image, _camera(missing_prob=0.2), jax.random.PRNGKey(1), MAX_RANGE))
    assert set(np.unique(out)) == {0.0, 1.0}
    assert np.mean(out == 0.0) == pytest.approx(0.2, abs=0.015)


def test_noise_grows_with_depth_squared_and_spares_pixels_that_hit_nothing():
    image = jnp.concatenate([jnp.full((100, 100), 0.5), jnp.full((100, 100), 1.5), jnp.full((100, 100), 2.0)])
    out = np.asarray(sensors.corrupt(image, _camera(noise_std=0.02), jax.random.PRNGKey(2), MAX_RANGE))
    near, far, sky = out[:100] - 0.5, out[100:200] - 1.5, out[200:]
    assert np.std(near) == pytest.approx(0.02 * 0.25, rel=0.05)
    assert np.std(far) == pytest.approx(0.02 * 2.25, rel=0.05)
    assert abs(np.mean(near)) < 2e-4 and abs(np.mean(far)) < 2e-3  # unbiased
    np.testing.assert_array_equal(sky, MAX_RANGE)


def test_each_env_draws_its_own_camera_within_the_ranges():
    ranges = {
        "latency_steps": (8, 12),
        "frame_period_steps": (4, 6),
        "noise_std": (0.0, 0.01),
        "missing_prob": (0.0, 0.05),
        "near_clip": (0.1, 0.2),
        "far_clip": (1.6, 2.0),
    }
    cams = jax.vmap(lambda k: sensors.sample_camera(k, ranges))(jax.random.split(jax.random.PRNGKey(3), 2000))
    cams = {k: np.asarray(v) for k, v in cams.items()}
    assert set(np.unique(cams["latency"])) == set(range(8, 13))  # integers, both ends included
    assert set(np.unique(cams["period"])) == {4, 5, 6}
    assert np.all((cams["phase"] >= 0) & (cams["phase"] < cams["period"])) and len(np.unique(cams["phase"])) == 6
    for name, key in (("noise_std", "noise_std"), ("missing_prob", "missing_prob"), ("near_clip", "near_clip")):
        lo, hi = ranges[key]
        assert cams[name].min() >= lo and cams[name].max() <= hi and np.std(cams[name]) > (hi - lo) / 4
    assert cams["far_clip"].min() >= 1.6 and cams["far_clip"].max() <= 2.0


def test_the_defaults_are_an_ideal_camera():
    ranges = sensors.camera_ranges({"max_range": 2.0}, "x.yaml")
    assert sensors.camera_is_ideal(ranges, 2.0)
    assert not sensors.camera_is_ideal(sensors.camera_ranges({"max_range": 2.0, "latency_steps": [0, 1]}, "x"), 2.0)
    assert not sensors.camera_is_ideal(sensors.camera_ranges({"max_range": 2.0, "far_clip": [1.9, 2.0]}, "x"), 2.0)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("latency_steps", [3, 1], r"env\.forward_depth\.latency_steps in x\.yaml must be \[lo, hi\] of integers"),
        ("latency_steps", [0.5, 1], r"latency_steps in x\.yaml must be \[lo, hi\] of integers"),
        ("frame_period_steps", [0, 2], r"frame_period_steps in x\.yaml must be \[lo, hi\] of integers with 1 <= lo"),
        ("noise_std", [-0.1, 0.0], r"noise_std in x\.yaml must be \[lo, hi\] of numbers with 0.0 <= lo"),
        ("missing_prob", [0.0, 1.5], r"missing_prob in x\.yaml must lie in \[0, 1\], got \[0.0, 1.5\]"),
        ("far_clip", [1.0, 3.0], r"far_clip in x\.yaml must be <= max_range 2.0, got \[1.0, 3.0\]"),
        ("near_clip", "far", r"near_clip in x\.yaml must be \[lo, hi\] of numbers"),
    ],
)
def test_bad_camera_ranges_are_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        sensors.camera_ranges({"max_range": 2.0, key: value}, "x.yaml")


def test_delayed_reading_is_that_many_steps_old_and_clamped_to_the_episode():
    # buffer of the last 4 readings, oldest first, after step 5: steps 2, 3, 4, 5
    buffer = jnp.array([[2.0], [3.0], [4.0], [5.0]])
    current = jnp.array([5.5])  # e.g. after a push: the on-time reading

    def read(latency, step, buf=buffer):
        return float(sensors.delayed(buf, jnp.int32(latency), jnp.int32(step), current)[0])

    assert read(2, 5) == 3.0 and read(3, 5) == 2.0
    assert read(0, 5) == 5.5  # no latency: the current reading itself
    assert read(2, 0) == 5.5  # the reset observation: nothing recorded yet
    # after step 2 the buffer holds steps 1 and 2 (older rows unwritten): latency 3 gives step 1's
    early = jnp.array([[0.0], [0.0], [1.0], [2.0]])
    assert read(3, 2, early) == 1.0 and read(1, 2, early) == 1.0
    assert read(2, 1, jnp.array([[0.0], [0.0], [0.0], [1.0]])) == 1.0  # after step 1: step 1's
