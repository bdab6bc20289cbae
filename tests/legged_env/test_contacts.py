"""Geometric ground clearance of boxes, capsules and spheres on hand-worked poses."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from legged_env.core import contacts

pytestmark = pytest.mark.timeout(60)


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float32)


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float32)


def slope(xy: jnp.ndarray) -> jnp.ndarray:
    """Ground rising 0.5 m per metre along +x."""
    return 0.5 * xy[..., 0]


def test_flat_ground_is_zero_with_the_batch_shape():
    assert contacts.flat_ground(jnp.ones((5, 2))).shape == (5,)
    assert float(jnp.max(jnp.abs(contacts.flat_ground(jnp.ones((3, 4, 2)))))) == 0.0


HALF = jnp.array([0.2, 0.1, 0.05])


@pytest.mark.parametrize(
    ("mat", "expected"),
    [
        (np.eye(3, dtype=np.float32), 0.1 - 0.05),  # lowest face at z - half_z
        (rot_x(math.pi / 2), 0.1 - 0.1),  # local y now points along world z
        (rot_y(math.pi / 4), 0.1 - (0.2 + 0.05) / math.sqrt(2)),  # corner: hx sin45 + hz cos45 below the centre
    ],
)
def test_box_clearance_on_flat_ground(mat, expected):
    got = contacts.box_clearance(jnp.array([0.3, -0.2, 0.1]), jnp.asarray(mat), HALF, contacts.flat_ground)
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_box_clearance_uses_the_ground_under_each_corner():
    # Bottom corners at z = 0.25; the ground is highest (0.1) under the corners at x = +0.2.
    got = contacts.box_clearance(jnp.array([0.0, 0.0, 0.3]), jnp.eye(3), HALF, slope)
    assert float(got) == pytest.approx(0.25 - 0.1, abs=1e-6)


def test_capsule_clearance_vertical_horizontal_tilted():
    mats = jnp.asarray(np.stack([np.eye(3, dtype=np.float32), rot_x(math.pi / 2), rot_y(math.pi / 3)]))
    pos = jnp.array([[0.0, 0.0, 0.3], [1.0, 2.0, 0.3], [0.0, 0.0, 0.3]])
    radius = jnp.full((3,), 0.02)
    half_len = jnp.full((3,), 0.1)
    got = contacts.capsule_clearance(pos, mats, radius, half_len, contacts.flat_ground)
    expected = [0.3 - 0.1 - 0.02, 0.3 - 0.02, 0.3 - 0.1 * math.cos(math.pi / 3) - 0.02]
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)


def test_capsule_below_ground_is_negative_and_follows_terrain():
    pos = jnp.array([[0.0, 0.0, 0.05], [0.4, 0.0, 0.5]])
    mats = jnp.broadcast_to(jnp.eye(3), (2, 3, 3))
    got = contacts.capsule_clearance(pos, mats, jnp.full((2,), 0.02), jnp.full((2,), 0.1), slope)
    # Second capsule: lower end at z = 0.4 over ground 0.2.
    np.testing.assert_allclose(np.asarray(got), [0.05 - 0.1 - 0.02, 0.4 - 0.2 - 0.02], atol=1e-6)


def test_sphere_clearance():
    pos = jnp.array([[0.0, 0.0, 0.05], [0.0, 0.0, 0.01], [0.2, 0.0, 0.3]])
    flat = contacts.sphere_clearance(pos, jnp.full((3,), 0.02), contacts.flat_ground)
    np.testing.assert_allclose(np.asarray(flat), [0.03, -0.01, 0.28], atol=1e-6)
    on_slope = contacts.sphere_clearance(pos, jnp.full((3,), 0.02), slope)
    np.testing.assert_allclose(np.asarray(on_slope), [0.03, -0.01, 0.3 - 0.02 - 0.1], atol=1e-6)
