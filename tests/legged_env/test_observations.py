"""ObsGroup: named segments in config order, per-segment scale and noise, clear config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from legged_env.core.observations import ObsGroup
from legged_env.errors import ConfigError

pytestmark = pytest.mark.timeout(60)

SHAPES = {"a": (3,), "b": (2,), "s": ()}
Q = {"a": jnp.array([1.0, 2.0, 3.0]), "b": jnp.array([-1.0, 0.5]), "s": jnp.array(4.0)}


def test_segments_in_config_order_with_scales():
    group = ObsGroup({"b": {"scale": 2.0}, "a": {}, "s": None}, SHAPES, "here")
    assert list(group.segments.items()) == [("b", (2,)), ("a", (3,)), ("s", (1,))]
    assert group.size == 6
    np.testing.assert_array_equal(np.asarray(group(Q)), [-2.0, 1.0, 1.0, 2.0, 3.0, 4.0])


def test_noise_is_bounded_by_noise_times_scale_times_level():
    group = ObsGroup({"a": {"scale": 2.0, "noise": 0.1}, "b": {"scale": 3.0}}, SHAPES, "here")
    clean = np.asarray(group(Q))
    np.testing.assert_array_equal(np.asarray(group(Q, jax.random.PRNGKey(0), 0.0)), clean)
    diffs = np.stack([np.asarray(group(Q, jax.random.PRNGKey(k), 1.5)) - clean for k in range(20)])
    assert np.all(np.abs(diffs[:, :3]) <= 0.1 * 2.0 * 1.5 + 1e-6)
    assert np.abs(diffs[:, :3]).max() > 0.1  # the noise is really applied (the bound is 0.3)
    assert np.all(diffs[:, 3:] == 0.0)  # a segment without noise stays clean


def test_unknown_segment_names_it_and_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"unknown observation segment 'bogus' in env\.observations\.actor.*valid: a, b, s"
    ):
        ObsGroup({"a": {}, "bogus": {}}, SHAPES, "env.observations.actor")


def test_bad_segment_keys_and_empty_group_are_errors():
    with pytest.raises(ConfigError, match="segment 'a'"):
        ObsGroup({"a": {"scal": 1.0}}, SHAPES, "here")
    with pytest.raises(ConfigError, match="no observation segments"):
        ObsGroup({}, SHAPES, "here")
