"""Depth images by ray casting: the analytic floor + boxes caster and the mjx.ray one against mujoco.mj_ray."""

import math

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from legged_env.core.math import quat_rotate, yaw_quat
from legged_env.terrain import raycast

pytestmark = pytest.mark.timeout(300)

MAX_RANGE = 6.0
HFOV, VFOV = 1.2, 0.9
TERRAIN_GROUPS = (1, 0, 0, 0, 0, 0)  # the "robot" sphere is in group 1
OFFSET = np.array([0.3, 0.0, 0.1])  # camera on the trunk


def vec(v: np.ndarray) -> str:
    return " ".join(f"{x:.4f}" for x in v)


def scene(seed: int = 0, num_boxes: int = 4) -> tuple[mujoco.MjModel, np.ndarray]:
    """Floor plane, random boxes (some floating, some sunk below z = 0) and a free "robot" sphere in group 1.

    Returns the model and its boxes (B, 6) read back from the model (the exact geometry mj_ray sees). No
    material, on purpose: mjx.ray fails to trace on such a model unless mjx_depth_image works around it.
    """
    rng = np.random.default_rng(seed)
    half = rng.uniform([0.1, 0.1, 0.15], 0.5, size=(num_boxes, 3))
    zmin = rng.uniform(-0.2, 0.3, num_boxes)  # top above z = 0.1
    centre = np.column_stack([rng.uniform(0.8, 3.5, num_boxes), rng.uniform(-1.5, 1.5, num_boxes), zmin + half[:, 2]])
    geoms = "".join(f'<geom type="box" pos="{vec(c)}" size="{vec(h)}"/>' for c, h in zip(centre, half))
    xml = f"""<mujoco><worldbody>
        <geom name="floor" type="plane" size="0 0 0.05"/>{geoms}
        <body name="robot"><freejoint/><geom type="sphere" size="0.1" group="1"/></body>
    </worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    ids = np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_BOX)
    pos, size = model.geom_pos[ids], model.geom_size[ids]
    return model, np.concatenate([pos - size, pos + size], axis=1)


def inside_any(boxes: np.ndarray, point: np.ndarray, margin: float = 0.05) -> bool:
    return bool(np.any(np.all((boxes[:, :3] - margin <= point) & (point <= boxes[:, 3:] + margin), axis=1)))


def poses(boxes: np.ndarray, seed: int = 1, num_random: int = 4) -> list[tuple[np.ndarray, float, float]]:
    """(camera position, yaw, pitch down): at a box side, above a box top, over bare floor, looking up, random ones."""
    side = boxes[0]
    top = boxes[1]
    out = [
        (np.array([side[0] - 0.3, (side[1] + side[4]) / 2, max(side[2], 0.0) / 2 + side[5] / 2]), 0.0, 0.0),
        (np.array([(top[0] + top[3]) / 2, (top[1] + top[4]) / 2, top[5] + 0.8]), 0.3, math.pi / 2),
        (np.array([0.0, 0.0, 0.5]), math.pi, 0.6),  # away from the boxes (all at x > 0.3): floor only
        (np.array([-0.5, 0.0, 0.4]), math.pi, -1.0),  # up and away: every ray misses
    ]
    rng = np.random.default_rng(seed)
    while len(out) < 4 + num_random:
        pos = rng.uniform([-0.5, -2.0, 0.2], [4.0, 2.0, 1.5])
        target = boxes[rng.integers(len(boxes))].reshape(2, 3).mean(axis=0)  # roughly towards a box
        yaw = math.atan2(target[1] - pos[1], target[0] - pos[0]) + rng.uniform(-0.5, 0.5)
        if not inside_any(boxes, pos):
            out.append((pos, yaw, rng.uniform(-0.3, 1.2)))
    assert not any(inside_any(boxes, p) for p, _, _ in out)
    return out


def camera(pos: np.ndarray, yaw: float, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """World camera position and camera->world rotation (float32 values, as the JAX code sees them)."""
    cam_pos, cam_rot = raycast.camera_pose(jnp.asarray(pos - OFFSET), yaw_quat(yaw), jnp.asarray(OFFSET), pitch)
    return np.asarray(cam_pos), np.asarray(cam_rot)


def mj_depth(model, data, cam_pos, cam_rot, dirs_cam, geomgroup=TERRAIN_GROUPS) -> tuple[np.ndarray, np.ndarray]:
    """Reference z-depth (H, W) and hit geom ids (-1: none within MAX_RANGE) from mujoco.mj_ray, pixel by pixel."""
    depth = np.full(dirs_cam.shape[:2], MAX_RANGE)
    ids = np.full(dirs_cam.shape[:2], -1)
    geomid = np.zeros(1, np.int32)
    group = None if geomgroup is None else np.array(geomgroup, np.uint8)
    pnt = cam_pos.astype(np.float64)
    for idx in np.ndindex(*dirs_cam.shape[:2]):
        dist = mujoco.mj_ray(model, data, pnt, cam_rot.astype(np.float64) @ dirs_cam[idx], group, 1, -1, geomid)
        if 0 <= dist < MAX_RANGE:
            depth[idx], ids[idx] = dist * dirs_cam[idx][0], geomid[0]
    return depth, ids


def place_robot(model, data, cam_pos, cam_rot):
    """Puts the robot sphere 0.3 m in front of the camera, where it would cover the centre pixels."""
    data.qpos[:3] = cam_pos + 0.3 * cam_rot[:, 0]
    mujoco.mj_forward(model, data)


def test_depth_image_matches_mj_ray():
    model, boxes = scene()
    data = mujoco.MjData(model)
    dirs_cam = raycast.camera_ray_dirs(24, 32, HFOV, VFOV)
    cams = [camera(*p) for p in poses(boxes)]
    render = jax.jit(jax.vmap(lambda p, r: raycast.depth_image(jnp.asarray(boxes), p, r, dirs_cam, MAX_RANGE)))
    positions, rotations = (np.stack(x) for x in zip(*cams))
    images = np.asarray(render(jnp.asarray(positions), jnp.asarray(rotations)))
    hits = []
    for image, (cam_pos, cam_rot) in zip(images, cams):
        place_robot(model, data, cam_pos, cam_rot)
        expected, ids = mj_depth(model, data, cam_pos, cam_rot, dirs_cam)
        np.testing.assert_allclose(image, expected, atol=1e-4, rtol=0)
        hits.append(ids)
    floor, box0, box1 = 0, 1, 2
    assert hits[0][12, 16] == box0 and hits[1][12, 16] == box1  # the side and top poses look at their boxes
    assert np.all(hits[2] == floor) and np.all(hits[3] == -1) and np.all(images[3] == MAX_RANGE)
    hits = np.stack(hits)
    assert np.mean(hits > floor) > 0.2 and np.mean(hits == floor) > 0.2 and np.mean(hits == -1) > 0.1
    assert len(np.unique(hits[hits > floor])) == 4  # every box is seen somewhere


def test_mjx_depth_image_matches_mj_ray_without_the_robot():
    model, boxes = scene()
    data = mujoco.MjData(model)
    mjx_model = mjx.put_model(model, impl="jax")
    mjx_data = mjx.make_data(mjx_model, impl="jax")
    dirs_cam = raycast.camera_ray_dirs(12, 16, HFOV, VFOV)

    @jax.jit
    def render(qpos, cam_pos, cam_rot):
        d = mjx.kinematics(mjx_model, mjx_data.replace(qpos=qpos))
        return raycast.mjx_depth_image(mjx_model, d, cam_pos, cam_rot, dirs_cam, MAX_RANGE, TERRAIN_GROUPS)

    for cam_pos, cam_rot in [camera(*p) for p in poses(boxes, num_random=2)]:
        place_robot(model, data, cam_pos, cam_rot)
        expected, _ = mj_depth(model, data, cam_pos, cam_rot, dirs_cam)
        image = render(jnp.asarray(data.qpos), jnp.asarray(cam_pos), jnp.asarray(cam_rot))
        np.testing.assert_allclose(np.asarray(image), expected, atol=1e-4, rtol=0)
        with_robot, _ = mj_depth(model, data, cam_pos, cam_rot, dirs_cam, geomgroup=None)
        assert with_robot[5:7, 7:9].max() < 0.3  # the sphere is really in view: excluding it matters


RAY_BOX = jnp.array([[1.0, -0.5, 0.0, 2.0, 0.5, 1.0]])
AXES = jnp.concatenate([jnp.eye(3), -jnp.eye(3)])  # +x, +y, +z, -x, -y, -z


def test_ray_from_inside_a_box_is_zero():
    dist = raycast.ray_aabb_distance(RAY_BOX, jnp.array([1.5, 0.0, 0.5]), AXES, MAX_RANGE)
    np.testing.assert_array_equal(np.asarray(dist), np.zeros(6))


def test_axis_parallel_rays_are_exact_and_finite():
    dist = raycast.ray_aabb_distance(RAY_BOX, jnp.array([0.0, 0.0, 0.5]), AXES, MAX_RANGE)
    np.testing.assert_allclose(np.asarray(dist), [1.0, MAX_RANGE, MAX_RANGE, MAX_RANGE, MAX_RANGE, 0.5], atol=1e-6)
    dist = raycast.ray_aabb_distance(RAY_BOX, jnp.array([1.5, 2.0, 0.25]), AXES, MAX_RANGE)
    np.testing.assert_allclose(np.asarray(dist), [MAX_RANGE, MAX_RANGE, MAX_RANGE, MAX_RANGE, 1.5, 0.25], atol=1e-6)
    # origins exactly on the box's face planes (0 * huge reciprocal): grazing either way, but never NaN
    on_faces = jnp.array([[0.0, -0.5, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0], [1.0, 0.0, 1.5]])
    dist = raycast.ray_aabb_distance(RAY_BOX, on_faces[:, None], AXES[None], MAX_RANGE)
    assert dist.shape == (4, 6) and bool(jnp.all(jnp.isfinite(dist)))


def test_floor_is_hit_from_above_only():
    down, up = jnp.array([0.0, 0.0, -1.0]), jnp.array([0.0, 0.0, 1.0])
    slanted = jnp.array([0.6, 0.0, -0.8])
    no_boxes = jnp.zeros((0, 6))
    dist = raycast.ray_aabb_distance(no_boxes, jnp.array([0.0, 0.0, 0.4]), jnp.stack([down, up, slanted]), MAX_RANGE)
    np.testing.assert_allclose(np.asarray(dist), [0.4, MAX_RANGE, 0.5], atol=1e-6)
    below = raycast.ray_aabb_distance(no_boxes, jnp.array([0.0, 0.0, -0.1]), jnp.stack([down, up]), MAX_RANGE)
    np.testing.assert_array_equal(np.asarray(below), [MAX_RANGE, MAX_RANGE])
    far = raycast.ray_aabb_distance(no_boxes, jnp.array([0.0, 0.0, 10.0]), down[None], MAX_RANGE)
    np.testing.assert_array_equal(np.asarray(far), [MAX_RANGE])  # clipped


@pytest.mark.parametrize(("height", "width"), [(5, 7), (4, 6), (1, 1)])
def test_camera_ray_dirs_geometry(height, width):
    dirs = raycast.camera_ray_dirs(height, width, HFOV, VFOV)
    assert dirs.shape == (height, width, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(dirs[..., 1], -dirs[:, ::-1, 1], atol=1e-7)  # left/right mirror
    np.testing.assert_allclose(dirs[..., 2], -dirs[::-1, :, 2], atol=1e-7)  # top/bottom mirror
    centre = dirs[(height - 1) // 2 : height // 2 + 1, (width - 1) // 2 : width // 2 + 1].sum(axis=(0, 1))
    np.testing.assert_allclose(centre / np.linalg.norm(centre), [1.0, 0.0, 0.0], atol=1e-7)
    if height * width > 1:
        top_left = dirs[0, 0]  # row 0 is the top (+z), column 0 the left (+y); centres half a pixel inside the fov
        np.testing.assert_allclose(top_left[1] / top_left[0], math.tan(HFOV / 2) * (1 - 1 / width), atol=1e-6)
        np.testing.assert_allclose(top_left[2] / top_left[0], math.tan(VFOV / 2) * (1 - 1 / height), atol=1e-6)
        assert np.all(np.diff(dirs[..., 1] / dirs[..., 0], axis=1) < 0)  # y falls to the right
        assert np.all(np.diff(dirs[..., 2] / dirs[..., 0], axis=0) < 0)  # z falls downwards


def test_camera_pose_pitches_down_and_follows_the_base():
    base = jnp.array([1.0, 2.0, 0.3])
    pos, rot = raycast.camera_pose(base, jnp.array([1.0, 0.0, 0.0, 0.0]), jnp.asarray(OFFSET), 0.4)
    np.testing.assert_allclose(np.asarray(pos), [1.3, 2.0, 0.4], atol=1e-6)
    np.testing.assert_allclose(np.asarray(rot[:, 0]), [math.cos(0.4), 0.0, -math.sin(0.4)], atol=1e-6)
    np.testing.assert_allclose(np.asarray(rot[:, 1]), [0.0, 1.0, 0.0], atol=1e-6)  # y (left) stays level
    pos, rot = raycast.camera_pose(base, yaw_quat(jnp.pi / 2), jnp.asarray(OFFSET), 0.4)
    np.testing.assert_allclose(np.asarray(pos), [1.0, 2.3, 0.4], atol=1e-6)
    np.testing.assert_allclose(np.asarray(rot[:, 0]), [0.0, math.cos(0.4), -math.sin(0.4)], atol=1e-6)
    np.testing.assert_allclose(np.asarray(rot.T @ rot), np.eye(3), atol=1e-6)
    assert float(jnp.linalg.det(rot)) == pytest.approx(1.0, abs=1e-6)


def test_quat_to_mat_matches_quat_rotate():
    rng = np.random.default_rng(0)
    for quat in rng.normal(size=(5, 4)):
        quat = jnp.asarray(quat / np.linalg.norm(quat))
        vec = jnp.asarray(rng.normal(size=3))
        expected = np.asarray(quat_rotate(quat, vec))
        np.testing.assert_allclose(np.asarray(raycast.quat_to_mat(quat) @ vec), expected, atol=1e-5)
