"""sim2sim's depth camera (legged_rl/sim2sim_sensors.py): the image MuJoCo's renderer draws equals the env's ray
caster's (legged_env/terrain/raycast.py) for the same state; the numpy camera model delays, holds, clips, drops and
blurs as the training env's does; proprioception is late by its latency; a depth student exported from a run
directory runs a climb episode end to end in plain MuJoCo.

Tests that render skip (with the reason) only when no OpenGL context can be created.
"""

import json
import os

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
import torch

from legged_env.terrain import raycast
from legged_rl import sim2sim_sensors as sensors
from legged_rl.deploy import policy_metadata
from legged_rl.sim2sim import MujocoDeployment
from legged_rl.sim2sim_climb import run_climb
from st_rl.modules import build_policy, load_policy_from_run
from st_rl.modules.registry import resolve_policy_cfg
from st_rl.utils.export import export_policy_as_jit
from st_rl.utils.io import atomic_write_json
from st_rl.utils.onnx_export import export_policy_as_onnx
from tests.legged_env import envs

pytestmark = pytest.mark.timeout(600)

# the default camera (48 x 64, 87 x 58 deg) in the actor; a camera model off its defaults (pipeline mode)
DEPTH_SETS = ("env.observations.actor.forward_depth={scale: 0.5}", "env.forward_depth.resolution=[48,64]")
CAMERA_SETS = (
    "env.forward_depth.latency_steps=[1,3]",
    "env.forward_depth.frame_period_steps=[2,4]",
    "env.forward_depth.noise_std=[0.0,0.02]",
    "env.forward_depth.missing_prob=[0.0,0.02]",
    "env.forward_depth.near_clip=[0.05,0.15]",
    "env.forward_depth.far_clip=[1.5,2.0]",
    "env.proprio_latency_steps=[0,2]",
)
STUDENT = {
    "class_name": "VisualDeterministicRecurrent",
    "visual_component_name": "forward_depth",
    "visual_kwargs": {"channels": [4, 8], "kernel_sizes": [5, 3], "strides": [4, 2], "hidden_sizes": [16]},
    "visual_latent_size": 8,
    "rnn_type": "gru",
    "rnn_hidden_size": 16,
    "actor_hidden_dims": [32],
    "critic_hidden_dims": [32],
    "obs_normalization": True,
}
TRACK = {"box_x0": np.array([1.0, 4.0]), "box_h": np.array([0.25, 0.35]), "gap": np.array([1.8, 2.0])}


@pytest.fixture(scope="module")
def gl():
    """Skips the test when mujoco.Renderer cannot get an OpenGL context (MUJOCO_GL=egl when unset)."""
    backend = sensors._use_egl_when_unset()
    try:
        mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 4, 4).close()
    except Exception as e:
        pytest.skip(f"no OpenGL context for mujoco.Renderer with MUJOCO_GL={backend}: {type(e).__name__}: {e}")


@pytest.fixture(scope="module")
def student_run(tmp_path_factory):
    """A run directory (config.json + model_0.pt, as OnPolicyRunner writes them) of an untrained depth student on
    the climb task with the camera model of CAMERA_SETS, exported as export.py does (policy.pt, policy.onnx,
    policy.json). One env built (no step compiled)."""
    cfg = envs.climb_config(1, *DEPTH_SETS, *CAMERA_SETS)
    env = envs.build(cfg, task="climb")
    run_dir = tmp_path_factory.mktemp("climb_student") / "2026-01-01_00-00-00_student"
    os.makedirs(run_dir)
    torch.manual_seed(0)
    actor, critic = env.actor_obs, env.critic_obs
    policy = build_policy(STUDENT, actor.size, critic.size, env.num_actions, actor.segments, critic.segments)
    config = {
        "policy": resolve_policy_cfg(STUDENT),
        "algorithm": {"class_name": "TPPO"},
        "runner": {},
        "env": json.loads(json.dumps(env.cfg)),
        "num_obs": actor.size,
        "num_critic_obs": critic.size,
        "num_actions": env.num_actions,
        "obs_segments": {k: list(v) for k, v in actor.segments.items()},
        "privileged_obs_segments": {k: list(v) for k, v in critic.segments.items()},
    }
    atomic_write_json(str(run_dir / "config.json"), config)
    checkpoint = {"model_state_dict": policy.state_dict(), "optimizer_state_dict": {}, "iter": 0}
    checkpoint.update(num_obs=actor.size, num_critic_obs=critic.size, num_actions=env.num_actions)
    torch.save(checkpoint, run_dir / "model_0.pt")
    # scripts/export.py's steps, from the run directory alone
    policy = load_policy_from_run(str(run_dir))
    out = run_dir / "exported"
    meta = policy_metadata(env, "climb")
    assert export_policy_as_jit(policy, str(out / "policy.pt"), actor.size) < 1e-5
    assert export_policy_as_onnx(policy, str(out / "policy.onnx"), actor.size, metadata=meta) < 1e-5
    atomic_write_json(str(out / "policy.json"), meta)
    return run_dir


def _export(run_dir) -> str:
    return str(run_dir / "exported")


def _with_camera(dep_env: dict, **keys) -> dict:
    """``env`` with ``forward_depth`` keys replaced (an ideal camera where not given) and the proprio latency."""
    fd = {k: v for k, v in dep_env["forward_depth"].items() if k not in sensors.CAMERA_KEYS}
    latency = keys.pop("proprio_latency_steps", [0, 0])
    return {**dep_env, "forward_depth": {**fd, **keys}, "proprio_latency_steps": latency}


def _quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.array([roll, pitch, yaw]), "xyz")
    return quat


# states: base position, (roll, pitch, yaw), front-left (thigh, calf) offsets from the default pose
CAMERA_X = 0.28
STATES = {
    "standing on flat ground": ((0.0, 0.0, 0.31), (0.0, 0.0, 0.0), (0.0, 0.0)),
    "facing a climb box 0.4 m ahead": ((1.0 - CAMERA_X - 0.4, 0.0, 0.31), (0.0, 0.0, 0.0), (0.0, 0.0)),
    "facing a climb box 0.3 m ahead, turned": ((1.0 - CAMERA_X - 0.3, 0.15, 0.31), (0.0, 0.0, 0.35), (0.0, 0.0)),
    # the robot would cover 4% of this image: the camera sees the terrain only
    "a front leg lifted high before a box": ((1.0 - CAMERA_X - 0.5, 0.0, 0.31), (0.0, 0.0, 0.0), (-1.2, -0.6)),
    "pitched and rolled near a box": ((0.5, -0.2, 0.33), (0.2, -0.3, -0.25), (0.0, 0.0)),
    "on the box top, its far edge ahead": ((1.7, 0.1, 0.25 + 0.31), (0.0, 0.1, 0.1), (0.0, 0.0)),
    "turned to the wall": ((2.6, 0.4, 0.31), (0.0, 0.0, 1.0), (0.0, 0.0)),
}


def _set_state(dep: MujocoDeployment, pos, rpy, front_left=(0.0, 0.0)) -> None:
    dep.data.qpos[:3] = pos
    dep.data.qpos[3:7] = _quat(*rpy)
    dep.data.qpos[dep.qpos_idx] = dep.default + np.array([0.0, *front_left, *[0.0] * 9])
    dep._place_collider()


def _edges(image: np.ndarray, max_range: float) -> np.ndarray:
    """Pixels next to a depth edge: a 4-neighbour more than 5 cm away in depth, or hitting where it does not."""
    hit = image < max_range
    edge = np.zeros_like(hit)
    for axis in (0, 1):
        for shift in (1, -1):
            jump = (np.abs(np.roll(image, shift, axis) - image) > 0.05) | (np.roll(hit, shift, axis) != hit)
            edge |= jump
    return edge


@pytest.mark.parametrize("physics", ["referee", "training"])
def test_rendered_depth_equals_the_ray_casters(gl, student_run, physics):
    """MuJoCo's renderer (sim2sim's trunk camera, terrain group only) and raycast.depth_image (the track's boxes,
    raycast.camera_pose) agree to 1 cm where both hit, on every state; pixels where only one of them hits are
    few and lie on depth edges."""
    dep = MujocoDeployment(_export(student_run), physics=physics)
    fd = dep.env_cfg["forward_depth"]
    dep.reset(track=TRACK)
    rendered, qpos = [], []
    for state in STATES.values():
        _set_state(dep, *state)
        rendered.append(dep.render_depth())
        qpos.append(dep.data.qpos.copy())
    dirs = jnp.asarray(
        raycast.camera_ray_dirs(
            *fd["resolution"], np.radians(fd["horizontal_fov_deg"]), np.radians(fd["vertical_fov_deg"])
        )
    )
    boxes = jnp.asarray(dep.track_spec.boxes(dep.track), jnp.float32)

    def cast(q):
        cam_pos, cam_rot = raycast.camera_pose(q[:3], q[3:7], jnp.asarray(fd["position"]), fd["pitch"])
        return raycast.depth_image(boxes, cam_pos, cam_rot, dirs, fd["max_range"])

    cast_images = np.asarray(jax.jit(jax.vmap(cast))(jnp.asarray(np.stack(qpos), jnp.float32)), np.float64)
    max_range, diffs, report = fd["max_range"], [], []
    for name, image, expected in zip(STATES, rendered, cast_images, strict=True):
        both = (image < max_range) & (expected < max_range)
        one = (image < max_range) != (expected < max_range)
        assert both.mean() > 0.5, name  # most of the image is terrain within range
        diff = np.abs(image - expected)[both]
        diffs.append(diff)
        assert diff.max() < 0.01, f"{name}: max abs diff {diff.max():.4f} m where both hit"
        assert one.mean() < 0.01 and not (one & ~_edges(expected, max_range)).any(), f"{name}: {one.mean():.4f}"
        report.append(f"{name}: max {diff.max() * 1e3:.3f} mm, one hits {one.sum()} px")
    every = np.concatenate(diffs)
    print(f"\n[{physics}] max {every.max() * 1e3:.3f} mm, median {np.median(every) * 1e3:.4f} mm; " + "; ".join(report))
    # the states show what the camera distinguishes: a box face close by, a box top, the floor below the box
    facing = rendered[1][len(rendered[1]) // 2]
    assert facing.min() < 0.6 and np.ptp(rendered[5]) > 0.5


def test_a_camera_off_by_a_pixel_or_a_degree_is_caught(gl, student_run, monkeypatch):
    """Break-check of the comparison above: the camera pitched 1 degree more, or its fov from fovy alone (the
    aspect-ratio horizontal fov, 72.9 instead of 87 deg), or its image flipped left-right, disagree by more."""
    state = STATES["pitched and rolled near a box"]
    good = MujocoDeployment(_export(student_run))
    good.reset(track=TRACK)
    _set_state(good, *state)
    reference = good.render_depth()
    fd = good.env_cfg["forward_depth"]

    def broken(**changes):
        cfg = {**good.env_cfg, "forward_depth": {**fd, **changes}}
        dep = MujocoDeployment(_export(student_run), env_cfg=cfg)
        dep.reset(track=TRACK)
        _set_state(dep, *state)
        return dep.render_depth()

    both = reference < fd["max_range"]
    assert np.abs(broken(pitch=fd["pitch"] + np.radians(1.0)) - reference)[both].max() > 0.01
    assert np.abs(np.fliplr(reference) - reference)[both].max() > 0.01
    add = sensors.add_depth_camera

    def fovy_only(spec, body, cam_cfg):  # MuJoCo's fovy camera with the vertical fov: x from the aspect ratio
        add(spec, body, cam_cfg)
        cam = spec.camera(sensors.CAMERA_NAME)
        cam.sensor_size, cam.focal_length, cam.fovy = [0.0, 0.0], [0.0, 0.0], float(cam_cfg["vertical_fov_deg"])

    monkeypatch.setattr("legged_rl.sim2sim.add_depth_camera", fovy_only)
    image = broken()
    hit = both & (image < fd["max_range"])
    assert np.abs(image - reference)[hit].max() > 0.01


def test_no_gl_context_is_one_line_naming_mujoco_gl(gl, student_run, monkeypatch):
    from mujoco.rendering.classic import gl_context

    class NoContext:
        def __init__(self, *args):
            raise ImportError("libEGL.so.1: cannot open shared object file\nsecond line")

    monkeypatch.setattr(gl_context, "GLContext", NoContext)
    with pytest.raises(ValueError, match="MUJOCO_GL=") as info:
        MujocoDeployment(_export(student_run))
    assert "\n" not in str(info.value) and "libEGL" in str(info.value)


# ---------------------------------------------------------------------------------------------------- camera model
H, W, MAX = 6, 8, 2.0


def _cam(**keys) -> dict:
    cam = {"latency": 0, "period": 1, "phase": 0, "noise_std": 0.0, "missing_prob": 0.0}
    return {**cam, "near_clip": 0.0, "far_clip": MAX, **keys}


def _clean(s: int) -> np.ndarray:
    """Step s's clean image: a ramp shifted by s (each step's image differs), one pixel without a return."""
    image = 0.3 + 0.01 * s + np.linspace(0.0, 1.0, H * W).reshape(H, W)
    image[0, 0] = MAX
    return image


def test_latency_delays_the_image_by_exactly_l_steps():
    for latency in (0, 1, 3):
        model = sensors.CameraModel(_cam(latency=latency), (H, W), MAX, np.random.default_rng(0))
        assert np.all(model.frame == MAX)  # reset: no frame yet
        for s in range(1, 9):
            frame = model.step(_clean(s))
            expected = _clean(s - latency) if s - latency >= 1 else np.full((H, W), MAX)
            np.testing.assert_array_equal(frame, expected, err_msg=f"latency {latency}, step {s}")


def test_frame_period_holds_frames_between_updates():
    model = sensors.CameraModel(_cam(period=3, phase=1, latency=1), (H, W), MAX, np.random.default_rng(0))
    frames = [model.step(_clean(s)) for s in range(1, 12)]
    for s, frame in enumerate(frames, start=1):
        updates = [u for u in range(1, s + 1) if (u + 1) % 3 == 0]  # (s + phase) % P == 0: s = 2, 5, 8, 11
        expected = _clean(updates[-1] - 1) if updates and updates[-1] >= 2 else np.full((H, W), MAX)
        np.testing.assert_array_equal(frame, expected, err_msg=f"step {s}")


def test_near_far_and_missing_pixels():
    rng = np.random.default_rng(1)
    image = np.linspace(0.0, MAX, 101)[None].repeat(400, axis=0)  # (400, 101), the last column: no return
    out = sensors.corrupt(image, _cam(near_clip=0.3, far_clip=1.5), rng, MAX)
    np.testing.assert_array_equal(out[:, image[0] < 0.3], 0.0)  # too close: no data
    np.testing.assert_array_equal(out[:, image[0] > 1.5], MAX)  # too far: no return
    mid = (image[0] >= 0.3) & (image[0] <= 1.5)
    np.testing.assert_array_equal(out[:, mid], image[:, mid])
    dropped = sensors.corrupt(image, _cam(missing_prob=0.25), rng, MAX)
    zero = dropped == 0.0
    assert abs(zero[:, 1:].mean() - 0.25) < 0.01
    np.testing.assert_array_equal(dropped[~zero], image[~zero])
    no_return = sensors.corrupt(np.full((200, 200), MAX), _cam(missing_prob=0.25), rng, MAX)
    assert abs((no_return == 0.0).mean() - 0.25) < 0.01  # every pixel, those without a return too


def test_noise_grows_with_depth_squared():
    rng = np.random.default_rng(2)
    sigma = 0.01
    stds = {}
    for depth in (0.5, 1.0, 1.8):
        image = np.full((200, 200), depth)
        stds[depth] = float(np.std(sensors.corrupt(image, _cam(noise_std=sigma), rng, MAX) - depth))
        assert stds[depth] == pytest.approx(sigma * depth**2, rel=0.03), depth
    assert stds[1.8] / stds[0.5] == pytest.approx((1.8 / 0.5) ** 2, rel=0.05)
    blank = sensors.corrupt(np.full((50, 50), MAX), _cam(noise_std=0.1), rng, MAX)
    np.testing.assert_array_equal(blank, MAX)  # no return: no noise


def test_camera_ranges_nominal_and_perturbed_draws():
    old = {"max_range": 2.0, "latency_steps": 0}  # an export from before the camera model
    ranges = sensors.camera_ranges(old)
    assert sensors.camera_is_ideal(ranges, 2.0) and ranges["far_clip"] == (2.0, 2.0)
    fd = {"max_range": 2.0, "latency_steps": [1, 4], "frame_period_steps": [2, 5], "noise_std": [0.0, 0.02]}
    fd |= {"missing_prob": [0.0, 0.1], "near_clip": [0.1, 0.2], "far_clip": [1.0, 2.0]}
    ranges = sensors.camera_ranges(fd)
    assert not sensors.camera_is_ideal(ranges, 2.0)
    nominal = sensors.sample_camera(ranges, None)
    assert nominal == pytest.approx(
        {"latency": 3, "period": 4, "phase": 0, "noise_std": 0.01, "missing_prob": 0.05}
        | {"near_clip": 0.15, "far_clip": 1.5}
    )  # the middle of each range, ints rounded half up (2.5 -> 3, 3.5 -> 4)
    rng = np.random.default_rng(3)
    draws = [sensors.sample_camera(ranges, rng) for _ in range(300)]
    assert {d["latency"] for d in draws} == {1, 2, 3, 4} and {d["period"] for d in draws} == {2, 3, 4, 5}
    assert all(0 <= d["phase"] < d["period"] for d in draws) and {d["phase"] for d in draws} == set(range(5))
    for key in ("noise_std", "missing_prob", "near_clip", "far_clip"):
        values = [d[key] for d in draws]
        assert fd[key][0] <= min(values) < max(values) <= fd[key][1], key


def test_the_numpy_camera_model_is_the_training_envs():
    """The same clean images through legged_env/core/sensors.py (JAX, the training env's camera) and the numpy
    CameraModel give the same frames, step by step, for latencies, frame periods, phases and near/far clipping (no
    noise or missing pixels: their random draws differ); and the same delayed proprioception."""
    from legged_env.core import sensors as env_sensors

    fd = {"max_range": MAX, "latency_steps": [0, 3], "near_clip": [0.4, 0.4], "far_clip": [1.2, 1.2]}
    assert sensors.camera_ranges(fd) == env_sensors.camera_ranges(fd, "<test>")
    for cam in (_cam(latency=2, period=3, phase=1), _cam(latency=0, period=2, near_clip=0.4, far_clip=1.2)):
        model = sensors.CameraModel(cam, (H, W), MAX, np.random.default_rng(0))
        lmax = 3
        buffer, frame = env_sensors.blank_images(lmax + 1, (H, W), MAX), env_sensors.blank_images(1, (H, W), MAX)[0]
        jcam = {k: jnp.asarray(v) for k, v in cam.items()}
        for s in range(1, 10):
            buffer, frame = env_sensors.camera_step(
                buffer, frame, jcam, jnp.asarray(_clean(s), jnp.float32), jnp.asarray(s), jax.random.PRNGKey(s), MAX
            )
            np.testing.assert_allclose(model.step(_clean(s)), np.asarray(frame), atol=1e-6, err_msg=f"{cam} step {s}")
    for latency in (0, 1, 3):
        delayed, history = sensors.Delayed(latency), jnp.zeros((4, 1))
        for s in range(0, 8):
            if s >= 1:
                delayed.push({"x": np.array([float(s)])})
                history = jnp.concatenate([history[1:], jnp.array([[float(s)]])])
            late = delayed.read()
            ours = late["x"] if late is not None else np.array([float(s)])
            theirs = env_sensors.delayed(history, jnp.asarray(latency), jnp.asarray(s), jnp.array([float(s)]))
            np.testing.assert_array_equal(ours, np.asarray(theirs), err_msg=f"latency {latency} step {s}")


# ---------------------------------------------------------------------------------------------------- deployment
def _segment(dep: MujocoDeployment, obs: np.ndarray, name: str) -> np.ndarray:
    seg = next(s for s in dep.meta["obs_segments"] if s["name"] == name)
    size = int(np.prod(seg["shape"]))
    return obs[seg["start"] : seg["start"] + size] / np.asarray(seg["scale"])


def _run(dep: MujocoDeployment, steps: int):
    """Observations at s = 0 .. steps and, for s >= 1, the clean image and dof_pos after step s."""
    dep.reset(track=TRACK)
    dep.commands = np.array([0.8, 0.0, 0.0])
    obs, clean, dof_pos = [dep.observation()], [None], [None]
    for _ in range(steps):
        dep.step()
        clean.append(dep.render_depth())
        dof_pos.append(dep.quantity("dof_pos").copy())
        obs.append(dep.observation())
    return obs, clean, dof_pos


def test_the_deployments_camera_is_late_and_holds_frames(gl, student_run):
    base = MujocoDeployment(_export(student_run)).env_cfg
    cfg = _with_camera(base, latency_steps=[2, 2], frame_period_steps=[2, 2], proprio_latency_steps=[3, 3])
    dep = MujocoDeployment(_export(student_run), env_cfg=cfg)
    obs, clean, dof_pos = _run(dep, 9)
    max_range = base["forward_depth"]["max_range"]
    for s in range(10):
        depth = _segment(dep, obs[s], "forward_depth").reshape(clean[1].shape)
        update = s - s % 2  # refreshed at even steps (phase 0, period 2) with the image 2 steps old
        expected = clean[update - 2] if update - 2 >= 1 else np.full_like(depth, max_range)
        np.testing.assert_allclose(depth, expected, atol=1e-6, err_msg=f"step {s}")
        late = dof_pos[max(s - 3, 1)] if s >= 1 else np.zeros(12)  # reset: the current (default) pose
        np.testing.assert_allclose(_segment(dep, obs[s], "dof_pos"), late, atol=1e-6, err_msg=f"step {s}")
    assert np.ptp(np.stack(clean[1:]), axis=0).max() > 0.01  # the images changed as the robot moved


def test_an_ideal_camera_is_the_clean_image_of_the_current_pose(gl, student_run):
    dep = MujocoDeployment(_export(student_run), env_cfg=_with_camera(MujocoDeployment(_export(student_run)).env_cfg))
    assert not dep.depth_pipeline and dep.proprio.latency == 0
    obs, clean, dof_pos = _run(dep, 3)
    first = _segment(dep, obs[0], "forward_depth")
    assert (first < 2.0).mean() > 0.5  # the reset observation sees the terrain
    for s in range(1, 4):
        np.testing.assert_allclose(_segment(dep, obs[s], "forward_depth").reshape(clean[s].shape), clean[s])
        np.testing.assert_allclose(_segment(dep, obs[s], "dof_pos"), dof_pos[s])


@pytest.mark.parametrize("policy_file", ["policy.pt", "policy.onnx"])
def test_a_depth_student_runs_a_climb_episode(gl, student_run, policy_file):
    """The export's own camera model (CAMERA_SETS, nominal; perturbed: drawn per episode) and policy, 1-s
    episodes on the referee physics; the policy saw depth frames with hits, no-data zeros and no-return pixels."""
    perturbed = policy_file == "policy.onnx"
    dep = MujocoDeployment(_export(student_run), policy_file=policy_file, perturbed=perturbed)
    assert dep.depth_pipeline
    cams, latencies = [], []
    for _ in range(8):
        dep.reset(track=TRACK)
        cams.append(dep.camera.cam)
        latencies.append(dep.proprio.latency)
    if perturbed:  # drawn per episode within CAMERA_SETS' ranges
        assert len({c["latency"] for c in cams}) > 1 and len({c["noise_std"] for c in cams}) == 8
        assert all(1 <= c["latency"] <= 3 and 2 <= c["period"] <= 4 and 1.5 <= c["far_clip"] <= 2.0 for c in cams)
        assert len(set(latencies)) > 1 and set(latencies) <= {0, 1, 2}
    else:  # nominal: the middle of each range
        nominal = {"latency": 2, "period": 3, "phase": 0, "noise_std": 0.01, "missing_prob": 0.01}
        assert cams == [pytest.approx(nominal | {"near_clip": 0.1, "far_clip": 1.75})] * 8 and latencies == [1] * 8
    seen = []
    policy = dep.policy

    class Recorder:
        def __call__(self, obs):
            seen.append(_segment(dep, obs[0].astype(np.float64), "forward_depth"))
            return policy(obs)

        def reset(self, dones=None):
            policy.reset(dones)

    dep.policy = Recorder()
    dep.env_cfg = {**dep.env_cfg, "episode_length_s": 1.0}
    metrics = run_climb(dep, 2, seed=4)
    assert metrics["num_episodes"] == 2 and 0 < metrics["mean_episode_length_s"] <= 1.0
    assert len(seen) == round(metrics["mean_episode_length_s"] * 2 / dep.meta["control_dt"])
    images = np.stack(seen)
    hits = (images > 0) & (images < 2.0)
    assert hits.mean() > 0.3 and (images == 0).any() and (images == 2.0).any()
