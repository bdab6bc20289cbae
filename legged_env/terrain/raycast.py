"""Forward depth images by ray casting against a floor plane (z = 0) plus axis-aligned boxes, in JAX.

Pure per-env functions (vmap over envs). Boxes are (B, 6) = [xmin, ymin, zmin, xmax, ymax, zmax] in
world metres. The camera frame is x forward (optical axis), y left, z up. ``mjx_depth_image`` is the
same image from ``mujoco.mjx.ray`` for checks and timing.
"""

import jax
import jax.numpy as jnp
import numpy as np

from legged_env.core import mjx

_TINY = 1e-12  # smallest |direction component| divided by; 1 / _TINY stays finite in float32


def _safe_inv(v: jnp.ndarray) -> jnp.ndarray:
    """1 / v with |v| floored at _TINY (zeros count as positive): finite, so 0 * inv is never NaN."""
    return 1.0 / jnp.where(v < 0, jnp.minimum(v, -_TINY), jnp.maximum(v, _TINY))


def _first_hit(boxes: jnp.ndarray, o: list, d: list, max_range: float) -> jnp.ndarray:
    """ray_aabb_distance on rays given by coordinates: ``o`` and ``d`` are [x, y, z] arrays of one shape (or
    broadcastable). Boxes are unrolled (a running min over one fused elementwise loop, no (rays, B) array)."""
    inv = [_safe_inv(dk) for dk in d]
    best = jnp.where((d[2] < 0) & (o[2] >= 0), -o[2] * inv[2], jnp.inf)  # the floor, from above
    for box in boxes:
        near, far = 0.0, jnp.inf  # the slabs' overlap, from the origin on (t >= 0: inside a box gives 0)
        for k in range(3):
            t1, t2 = (box[k] - o[k]) * inv[k], (box[k + 3] - o[k]) * inv[k]
            near, far = jnp.maximum(near, jnp.minimum(t1, t2)), jnp.minimum(far, jnp.maximum(t1, t2))
        best = jnp.where(near <= far, jnp.minimum(best, near), best)
    return jnp.minimum(best, max_range)


def ray_aabb_distance(boxes: jnp.ndarray, origins: jnp.ndarray, dirs: jnp.ndarray, max_range: float) -> jnp.ndarray:
    """Distance [m] (...,) along unit rays ``dirs`` (..., 3) from ``origins`` (broadcastable) to the first
    hit of the floor (from above only) or a box (B, 6); 0 from inside a box, ``max_range`` if nothing closer."""
    origins = jnp.asarray(origins)
    return _first_hit(boxes, [origins[..., k] for k in range(3)], [dirs[..., k] for k in range(3)], max_range)


def camera_ray_dirs(height: int, width: int, horizontal_fov: float, vertical_fov: float) -> np.ndarray:
    """Unit pinhole ray directions (height, width, 3) in the camera frame; row 0 top, column 0 left.

    As MuJoCo's and OpenCV's cameras: the image *edges* lie at +-tan(fov / 2) on the image plane x = 1 and
    the rays go through the pixel centres, half a pixel inside. ``dirs[..., 0]`` is the cos factor:
    z-depth = distance * dirs[..., 0].
    """

    def spread(n: int, fov: float) -> np.ndarray:
        return np.tan(fov / 2) * (1.0 - (2.0 * np.arange(n) + 1.0) / n)

    y, z = np.meshgrid(spread(width, horizontal_fov), spread(height, vertical_fov))
    dirs = np.stack([np.ones_like(y), y, z], axis=-1)
    return (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).astype(np.float32)


def _z_depth(dist: jnp.ndarray, dirs_cam: jnp.ndarray, max_range: float) -> jnp.ndarray:
    """Along-ray distances (H, W) [m] -> z-depth in [0, max_range]; no hit (< 0) or >= max_range -> max_range."""
    hit = (dist >= 0) & (dist < max_range)
    return jnp.clip(jnp.where(hit, dist * dirs_cam[..., 0], max_range), 0.0, max_range)


def depth_image(
    boxes: jnp.ndarray, cam_pos: jnp.ndarray, cam_rot: jnp.ndarray, dirs_cam: jnp.ndarray, max_range: float
) -> jnp.ndarray:
    """Z-depth image (H, W) [m] of the floor and boxes (B, 6) from a camera at ``cam_pos`` (3,) with
    ``cam_rot`` (3, 3) camera->world, rays ``dirs_cam`` (H, W, 3) from camera_ray_dirs."""
    cam = [dirs_cam[..., j] for j in range(3)]  # per coordinate: XLA fuses the whole image into one loop
    dirs = [sum(cam_rot[k, j] * cam[j] for j in range(3)) for k in range(3)]
    return _z_depth(_first_hit(boxes, [cam_pos[k] for k in range(3)], dirs, max_range), dirs_cam, max_range)


def mjx_depth_image(
    mjx_model: mjx.Model,
    mjx_data: mjx.Data,
    cam_pos: jnp.ndarray,
    cam_rot: jnp.ndarray,
    dirs_cam: jnp.ndarray,
    max_range: float,
    geomgroup: tuple[int, ...],
) -> jnp.ndarray:
    """depth_image's (H, W) [m] from ``mjx.ray`` against the model's geoms in ``geomgroup`` (6 ints 0/1,
    static: close over it when jitting); ``mjx_data`` needs geom poses (mjx.kinematics)."""
    if mjx_model.mat_rgba.shape[0] == 0:  # mjx.ray indexes mat_rgba even for geoms without a material
        mjx_model = mjx_model.replace(mat_rgba=jnp.ones((1, 4)))
    dirs = (dirs_cam @ cam_rot.T).reshape(-1, 3)
    dist, _ = jax.vmap(lambda vec: mjx.ray(mjx_model, mjx_data, cam_pos, vec, tuple(geomgroup)))(dirs)
    return _z_depth(dist.reshape(dirs_cam.shape[:-1]), dirs_cam, max_range)


def quat_to_mat(quat: jnp.ndarray) -> jnp.ndarray:
    """Rotation matrix (3, 3) of unit quaternion ``quat`` (4,) (w, x, y, z); columns are the body axes in world."""
    w, x, y, z = quat
    return jnp.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def camera_pose(
    base_pos: jnp.ndarray, base_quat_wxyz: jnp.ndarray, offset_pos: jnp.ndarray, pitch: float
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """World (cam_pos (3,), cam_rot (3, 3) camera->world) of a trunk camera at ``offset_pos`` (3,) [m] in the
    trunk frame, looking along trunk +x pitched down by ``pitch`` [rad]."""
    rot = quat_to_mat(base_quat_wxyz)
    c, s = jnp.cos(pitch), jnp.sin(pitch)
    pitch_down = jnp.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # about y: +x tilts towards -z
    return base_pos + rot @ offset_pos, rot @ pitch_down
