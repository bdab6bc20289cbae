"""A robot's sensors in plain MuJoCo for sim2sim (numpy + mujoco, no JAX): the forward depth camera rendered by
``mujoco.Renderer``, the camera model (latency, frame period, noise, missing pixels, range clipping) and the latency
of proprioception, with the semantics of the training env's ``legged_env/core/sensors.py``.

Depth camera, per policy step ``s`` (``s = 1, 2, ...`` after each step's physics; ``s = 0`` is the reset
observation), with the clean z-depth image ``D_s`` rendered at the pose after the step: the last ``L + 1`` images
are kept, the captured image is ``C = D_{s - L}`` (images from before the episode's first step read ``max_range``);
if ``(s + phase) % P == 0`` the held frame ``F`` becomes ``corrupt(C)``, else it is unchanged (``F`` reads
``max_range`` at reset). The observation is ``F``. An ideal camera (every key at its default) is simply the clean
image of the current pose at every step, the reset observation included.

What the camera sees: the terrain only (floor, obstacle boxes, side walls: geom group :data:`TERRAIN_GROUP`), as
the env's ray caster (``legged_env/terrain/raycast.py``) does; the robot's own legs are not drawn.
"""

import importlib
import math
import os
import sys
import weakref
from collections import deque

import mujoco
import numpy as np

TERRAIN_GROUP = 2  # the track geoms' group (sim2sim_track.Track.mjcf_geoms); the floor joins it in a depth deployment
CAMERA_NAME = "forward_depth"
# env.forward_depth keys of the camera model -> (default, integer?); far_clip None: max_range
CAMERA_KEYS = {
    "latency_steps": (0, True),
    "frame_period_steps": (1, True),
    "noise_std": (0.0, False),
    "missing_prob": (0.0, False),
    "near_clip": (0.0, False),
    "far_clip": (None, False),
}
# the IMU and joint-encoder readings that env.proprio_latency_steps delays in the actor's observation
DELAYED_SEGMENTS = ("base_lin_vel", "base_ang_vel", "projected_gravity", "dof_pos", "dof_vel", "base_rpy")
NEAR_M, FAR_FACTOR = 0.002, 4.0  # the renderer's clip planes: near (m), far (x max_range; beyond reads max_range)


# ---------------------------------------------------------------------------------------------------- ranges
def value_range(value, integer: bool) -> tuple:
    """``(lo, hi)`` of a config value ``[lo, hi]`` or one number (ints for ``integer``)."""
    lo, hi = (value, value) if not isinstance(value, list | tuple) else value
    if not (lo <= hi):
        raise ValueError(f"expected [lo, hi] with lo <= hi, got {value!r}")
    return (int(lo), int(hi)) if integer else (float(lo), float(hi))


def half_up(x: float) -> int:
    """``x`` rounded to the nearest integer, halves up (``round`` would take 0.5 to 0 and 2.5 to 2)."""
    return int(math.floor(x + 0.5))


def camera_ranges(fd: dict) -> dict:
    """``(lo, hi)`` of every camera-model key of an ``env.forward_depth`` section (``.get`` with the defaults, so
    exports from before the camera model run as an ideal camera)."""
    max_range = float(fd["max_range"])
    out = {}
    for key, (default, integer) in CAMERA_KEYS.items():
        value = fd.get(key, default)
        try:
            out[key] = value_range(max_range if value is None else value, integer)
        except ValueError as e:
            raise ValueError(f"env.forward_depth.{key}: {e}") from None
    return out


def camera_is_ideal(ranges: dict, max_range: float) -> bool:
    """True when the camera model changes nothing (every key at its default)."""
    ideal = {"latency_steps": (0, 0), "frame_period_steps": (1, 1), "noise_std": (0.0, 0.0)}
    ideal |= {"missing_prob": (0.0, 0.0), "near_clip": (0.0, 0.0), "far_clip": (max_range, max_range)}
    return all(tuple(ranges[k]) == v for k, v in ideal.items())


def sample_camera(ranges: dict, rng: np.random.Generator | None) -> dict:
    """One episode's camera: ``latency``, ``period``, ``phase`` (ints) and ``noise_std``, ``missing_prob``,
    ``near_clip``, ``far_clip``. ``rng`` None: the nominal camera (the middle of each range, ints rounded half up,
    phase 0); else each drawn uniformly from its range (ints inclusive), the phase uniform in ``[0, period - 1]``."""
    out = {}
    for key, (_, integer) in CAMERA_KEYS.items():
        lo, hi = ranges[key]
        if rng is None:
            out[key] = half_up((lo + hi) / 2) if integer else (lo + hi) / 2
        else:
            out[key] = int(rng.integers(lo, hi + 1)) if integer else float(rng.uniform(lo, hi))
    cam = {"latency": out.pop("latency_steps"), "period": out.pop("frame_period_steps"), **out}
    cam["phase"] = 0 if rng is None else int(rng.integers(0, cam["period"]))
    return cam


# ---------------------------------------------------------------------------------------------------- camera model
def corrupt(image: np.ndarray, cam: dict, rng: np.random.Generator, max_range: float) -> np.ndarray:
    """The camera's reading of a clean z-depth ``image`` (H, W) [m]: on pixels that hit (``< max_range``) noise
    ``N(0, 1) * noise_std * depth**2``; below ``near_clip`` -> 0 (no data); beyond ``far_clip`` -> ``max_range``
    (no return); each pixel with probability ``missing_prob`` -> 0; clipped to ``[0, max_range]``."""
    noise = rng.standard_normal(image.shape)
    missing = rng.random(image.shape) < cam["missing_prob"]
    out = np.where(image < max_range, image + noise * cam["noise_std"] * np.square(image), max_range)
    out = np.where(out < cam["near_clip"], 0.0, out)
    out = np.where(out > cam["far_clip"], max_range, out)
    return np.clip(np.where(missing, 0.0, out), 0.0, max_range)


class CameraModel:
    """One episode of a depth camera ``cam`` (:func:`sample_camera`): feed it each policy step's clean image with
    :meth:`step`; :attr:`frame` (H, W) is what the policy sees."""

    def __init__(self, cam: dict, hw: tuple[int, int], max_range: float, rng: np.random.Generator):
        self.cam, self.max_range, self.rng = cam, float(max_range), rng
        blank = np.full(hw, self.max_range)
        self.images = deque([blank] * (cam["latency"] + 1), maxlen=cam["latency"] + 1)  # D_{s-L} .. D_s
        self.frame, self.steps = blank, 0

    def step(self, clean: np.ndarray) -> np.ndarray:
        """Policy step ``s = steps + 1`` with clean image ``clean`` (H, W) = ``D_s``; returns the held frame."""
        self.steps += 1
        self.images.append(np.asarray(clean, dtype=np.float64))
        if (self.steps + self.cam["phase"]) % self.cam["period"] == 0:
            self.frame = corrupt(self.images[0], self.cam, self.rng, self.max_range)
        return self.frame


class Delayed:
    """Readings ``latency`` policy steps old: :meth:`push` each step's (``s >= 1``) values, :meth:`read` them; for
    the first steps the episode's oldest (the step-1 values), at the reset observation (nothing pushed) None."""

    def __init__(self, latency: int):
        self.latency = int(latency)
        self.history = deque(maxlen=self.latency + 1)

    def push(self, values: dict) -> None:
        self.history.append(values)

    def read(self) -> dict | None:
        return self.history[0] if self.history and self.latency > 0 else None


# ---------------------------------------------------------------------------------------------------- rendering
def ray_cos(height: int, width: int, horizontal_fov: float, vertical_fov: float) -> np.ndarray:
    """``(H, W)`` cosine between each pixel's ray and the optical axis (z-depth = distance * cos), for pinhole rays
    through the pixel centres with the image edges at ``+-tan(fov / 2)`` (``raycast.camera_ray_dirs``'s rays)."""

    def spread(n: int, fov: float) -> np.ndarray:
        return np.tan(fov / 2) * (1.0 - (2.0 * np.arange(n) + 1.0) / n)

    y, z = np.meshgrid(spread(width, horizontal_fov), spread(height, vertical_fov))
    return 1.0 / np.sqrt(1.0 + y * y + z * z)


def camera_quat(pitch: float) -> np.ndarray:
    """``(4,)`` wxyz orientation in the trunk frame of a MuJoCo camera looking along trunk +x pitched down by
    ``pitch`` (rad): ``raycast.camera_pose``'s camera (x forward, y left, z up) as MuJoCo's (looks along -z, +y up,
    +x right): its x is ours -y, its y ours z, its z ours -x."""
    c, s = math.cos(pitch), math.sin(pitch)
    pitch_down = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    axes = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # columns: MuJoCo's x, y, z in ours
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (pitch_down @ axes).ravel())
    return quat


def add_depth_camera(spec: mujoco.MjSpec, body: str, fd: dict) -> None:
    """Adds camera :data:`CAMERA_NAME` to ``body`` of ``spec`` at ``fd["position"]`` (body frame, m), pitched down
    by ``fd["pitch"]``, with intrinsics of ``fd``'s resolution and fields of view: focal length 1 and a sensor of
    ``2 tan(fov / 2)`` on each axis (MuJoCo then ignores fovy), so both fovs hold whatever the aspect ratio."""
    height, width = (int(v) for v in fd["resolution"])
    hfov, vfov = math.radians(fd["horizontal_fov_deg"]), math.radians(fd["vertical_fov_deg"])
    cam = spec.body(body).add_camera(name=CAMERA_NAME, pos=[float(v) for v in fd["position"]])
    cam.quat = camera_quat(float(fd["pitch"]))
    cam.sensor_size = [2.0 * math.tan(hfov / 2), 2.0 * math.tan(vfov / 2)]
    cam.focal_length = [1.0, 1.0]
    cam.resolution = [width, height]


def _use_egl_when_unset() -> str:
    """``MUJOCO_GL`` (egl when unset). MuJoCo reads it when ``import mujoco`` imports its GL module: if that
    happened while it was unset (the GLFW default, which needs a display), the module reads it again."""
    if os.environ.get("MUJOCO_GL", "").strip():
        return os.environ["MUJOCO_GL"]
    os.environ["MUJOCO_GL"] = "egl"
    gl = sys.modules.get("mujoco.rendering.classic.gl_context")
    if gl is not None and getattr(gl, "_MUJOCO_GL", None) == "":
        importlib.reload(gl)
    return "egl"


class DepthRenderer:
    """The clean z-depth image (H, W) [m] of camera :data:`CAMERA_NAME` in ``model`` (see :func:`add_depth_camera`),
    rendered with ``mujoco.Renderer`` (OpenGL; ``MUJOCO_GL=egl`` when unset): geom group :data:`TERRAIN_GROUP`
    only; pixels whose ray meets nothing within ``max_range`` (along the ray, as the ray caster measures) read
    ``max_range``; clipped to ``[0, max_range]``."""

    def __init__(self, model: mujoco.MjModel, fd: dict):
        self.max_range = float(fd["max_range"])
        height, width = (int(v) for v in fd["resolution"])
        hfov, vfov = math.radians(fd["horizontal_fov_deg"]), math.radians(fd["vertical_fov_deg"])
        self.cos = ray_cos(height, width, hfov, vfov)
        self.camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, CAMERA_NAME)
        # clip planes in metres whatever the model's extent (they are stored as fractions of it)
        extent = model.stat.extent
        model.vis.map.znear, model.vis.map.zfar = NEAR_M / extent, FAR_FACTOR * self.max_range / extent
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        backend = _use_egl_when_unset()
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except Exception as e:  # no display for GLFW, no EGL / OSMesa library, ...
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(
                f"segment forward_depth needs an OpenGL context for mujoco.Renderer and MUJOCO_GL={backend} gave "
                f"none ({reason}); set MUJOCO_GL to egl or osmesa (headless) or glfw (with a display)"
            ) from None
        # closed with its owner or before the interpreter tears down the GL modules (Renderer.__del__ then fails)
        self._close = weakref.finalize(self, self.renderer.close)
        self.renderer.enable_depth_rendering()
        self.option = mujoco.MjvOption()
        self.option.geomgroup[:] = [int(g == TERRAIN_GROUP) for g in range(len(self.option.geomgroup))]

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """``(H, W)`` float64 clean z-depth of the terrain at ``data``'s pose (needs its kinematics)."""
        self.renderer.update_scene(data, camera=self.camera, scene_option=self.option)
        depth = self.renderer.render().astype(np.float64)
        hit = depth / self.cos < self.max_range
        return np.clip(np.where(hit, depth, self.max_range), 0.0, self.max_range)

    def close(self) -> None:
        self._close()
