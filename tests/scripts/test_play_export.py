"""scripts/play.py and scripts/export.py on a trained run."""

import io
import json
import math
import os
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from st_rl.modules import load_policy_from_run
from tests.scripts.conftest import run_dirs, run_script

pytestmark = pytest.mark.timeout(300)

PLAY_KEYS = {
    "num_episodes", "lin_vel_x_rms", "lin_vel_y_rms", "yaw_rate_rms", "mean_episode_return", "mean_episode_length_s",
    "fall_rate", "cost_of_transport", "tracking_samples", "checkpoint", "seed", "env_overrides",
}  # fmt: skip


def test_play_writes_metrics(logs):
    proc = run_script(
        "play", "--task=walk", "--load_run", "-1", "--num_episodes", "4", "--set", "env.episode_length_s=2.0",
        log_root=logs,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(logs)
    metrics = json.loads((run / "play_metrics.json").read_text())
    assert set(metrics) == PLAY_KEYS
    assert metrics["num_episodes"] == 4 and metrics["checkpoint"] == str(run / "model_2.pt")
    # Nominal conditions by default (legged_gym's play): no observation noise, no pushes; user overrides last.
    assert metrics["env_overrides"] == [
        "env.noise.enabled=false", "env.domain_rand.push_vel_xy=0.0", "env.episode_length_s=2.0"
    ]  # fmt: skip
    for key in PLAY_KEYS - {"checkpoint", "env_overrides"}:
        assert isinstance(metrics[key], (int, float)) and math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["fall_rate"] <= 1.0
    assert 0.0 < metrics["mean_episode_length_s"] <= 2.0 + 1e-6
    assert metrics["lin_vel_x_rms"] >= 0.0 and metrics["cost_of_transport"] >= 0.0


RENDERS = """
import mujoco
model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom type='sphere' size='0.1'/></worldbody></mujoco>")
with mujoco.Renderer(model, 16, 16) as renderer:
    renderer.update_scene(mujoco.MjData(model))
    renderer.render()
"""


def offscreen_gl() -> str | None:
    """``MUJOCO_GL`` for offscreen rendering here (the environment's, else egl), or None when it cannot render."""
    backend = os.environ.get("MUJOCO_GL", "egl")
    env = {**os.environ, "MUJOCO_GL": backend}
    proc = subprocess.run([sys.executable, "-c", RENDERS], env=env, capture_output=True, timeout=120)
    return backend if proc.returncode == 0 else None


def test_play_video_has_every_frame_and_does_not_fork(logs, monkeypatch):
    """``--video``: env 0's whole episode as ``videos/play_model_<it>.mp4`` and as the run's TensorBoard image
    ``Play/video``, the encoder started without forking
    the (JAX-multithreaded) process: no fork warning on stderr, neither JAX's at-fork hook's RuntimeWarning nor
    Python 3.12+'s DeprecationWarning, both shown every time (not once, and not hidden by the default filters)."""
    backend = offscreen_gl()
    if backend is None:
        pytest.skip("no offscreen GL for MuJoCo here (MUJOCO_GL=egl or osmesa)")
    monkeypatch.setenv("MUJOCO_GL", backend)
    monkeypatch.setenv("PYTHONWARNINGS", "always::RuntimeWarning,always::DeprecationWarning")
    proc = run_script(
        "play", "--task=walk", "--load_run", "-1", "--num_episodes", "1", "--set", "env.episode_length_s=1.0",
        "--video", log_root=logs,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # JAX's hook: "os.fork() was called ..."; Python 3.12+: "... use of fork() may lead to deadlocks".
    assert "fork()" not in proc.stderr, proc.stderr[-3000:]
    (run,) = run_dirs(logs)
    video = run / "videos" / "play_model_2.mp4"
    assert f"video: {video}" in proc.stdout
    metrics = json.loads((run / "play_metrics.json").read_text())
    env_cfg = json.loads((run / "config.json").read_text())["env"]
    dt = env_cfg["sim_dt"] * env_cfg["decimation"]
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))  # decodes the file: every frame readable
    # One frame per policy step of the (one) episode, from its first state, at the control rate.
    assert frames == round(metrics["mean_episode_length_s"] / dt) > 0
    assert seconds == pytest.approx(frames * dt, abs=dt)
    # The same video in the run's TensorBoard (an event file of its own): an animated GIF at half size, every
    # stride-th frame (at most 25 per second), at the checkpoint's iteration.
    assert "tensorboard: Play/video at step 2 in" in proc.stdout
    events = EventAccumulator(str(run))
    events.Reload()
    assert events.Tags()["images"] == ["Play/video"]
    (image,) = events.Images("Play/video")
    assert (image.step, image.width, image.height) == (2, 320, 240)
    gif = Image.open(io.BytesIO(image.encoded_image_string))
    stride = math.ceil(1.0 / dt / 25.0 - 1e-9)
    assert gif.format == "GIF" and gif.n_frames == len(range(0, frames, stride))
    assert gif.info["duration"] == pytest.approx(1000 * dt * stride, abs=10)  # GIF delays are in 10 ms units


LOAD_OUTSIDE_ST_RL = """
import sys
sys.modules["st_rl"] = None  # the exported file must load with torch alone
sys.modules["legged_env"] = None
import torch
policy = torch.jit.load("exported/policy.pt")
torch.save(policy(torch.load("obs.pt")), "actions.pt")
"""


def test_export_writes_torchscript_and_deploy_metadata(logs, tmp_path):
    proc = run_script("export", "--task=walk", "--load_run", "-1", log_root=logs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(logs)
    meta = json.loads((run / "exported" / "policy.json").read_text())
    cfg = json.loads((run / "config.json").read_text())
    assert len(meta["joint_names"]) == 12 and meta["joint_names"][0] == "FL_hip_joint"
    assert meta["default_joint_pos"] == pytest.approx([0.0, 0.8, -1.5] * 4)
    control = cfg["env"]["control"]
    assert meta["kp"] == [control["kp"]] * 12 and meta["kd"] == [control["kd"]] * 12
    assert meta["control_dt"] == pytest.approx(0.02)
    assert meta["torque_limits"] == pytest.approx([23.7, 23.7, 35.55] * 4)
    assert meta["num_obs"] == cfg["num_obs"] and meta["num_actions"] == 12
    assert sum(math.prod(s["shape"]) for s in meta["obs_segments"]) == meta["num_obs"]
    assert [s["name"] for s in meta["obs_segments"]] == list(cfg["obs_segments"])
    assert meta["obs_segments"][1]["start"] == 3 and meta["obs_segments"][1]["scale"] == [0.25] * 3

    work = tmp_path / "fresh"
    (work / "exported").mkdir(parents=True)
    (work / "exported" / "policy.pt").write_bytes((run / "exported" / "policy.pt").read_bytes())
    obs = torch.randn(8, meta["num_obs"]) * 2.0
    torch.save(obs, work / "obs.pt")
    subprocess.run([sys.executable, "-I", "-c", LOAD_OUTSIDE_ST_RL], cwd=work, check=True, timeout=120)
    exported = torch.load(work / "actions.pt")
    with torch.inference_mode():
        eager = load_policy_from_run(str(run), 2).act_inference(obs)
    assert exported.shape == (8, 12)
    torch.testing.assert_close(exported, eager, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(eager, eager[:1].expand_as(eager))  # depends on the observation

    # policy.onnx: the same actions from onnxruntime and numpy alone (no torch), policy.json in its metadata
    (work / "exported" / "policy.onnx").write_bytes((run / "exported" / "policy.onnx").read_bytes())
    np.save(work / "obs.npy", obs.numpy())
    subprocess.run([sys.executable, "-c", RUN_ONNX_WITHOUT_TORCH], cwd=work, check=True, timeout=120)
    np.testing.assert_allclose(np.load(work / "actions.npy"), eager.numpy(), atol=1e-5)
    assert json.loads((work / "metadata.json").read_text()) == meta


RUN_ONNX_WITHOUT_TORCH = """
import json, sys
import numpy as np
sys.modules["torch"] = None  # a robot computer with onnxruntime and numpy only
from st_rl.utils.onnx_policy import OnnxPolicy
policy = OnnxPolicy("exported/policy.onnx")
np.save("actions.npy", policy(np.load("obs.npy")))
json.dump(policy.metadata, open("metadata.json", "w"))
"""


def test_sim2sim_runs_either_export(logs):
    assert run_script("export", "--task=walk", "--load_run", "-1", log_root=logs).returncode == 0
    results = {}
    for name in ("policy.pt", "policy.onnx"):
        args = ("--load_run", "-1", "--seconds", "1.5", "--command", "0.5,0,0", "--policy_file", name)
        proc = run_script("sim2sim", "--task=walk", *args, log_root=logs)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads(proc.stdout)
        (run_dirs(logs)[0] / "exported" / "policy.pt").unlink(missing_ok=True)  # the ONNX run must not need it
    assert results["policy.onnx"][0]["lin_vel_x"] == pytest.approx(results["policy.pt"][0]["lin_vel_x"], abs=1e-3)
