"""Deterministic evaluation of a policy on a task: one episode per env, metrics as a flat dict.

Metrics (``play_metrics.json``):
- ``lin_vel_x_rms``, ``lin_vel_y_rms``, ``yaw_rate_rms``: RMS of command minus base-frame velocity
  over every step of every episode, except the first ``settle_s`` after a reset or a command change
  (the robot needs time to reach a new command).
- ``mean_episode_return`` (sum of the scaled rewards), ``mean_episode_length_s``.
- ``fall_rate``: fraction of episodes that ended by termination rather than time-out.
- ``cost_of_transport``: mechanical energy sum(|tau * qdot|) dt over m g times distance travelled.
- a task's own episode summary: a task naming ``episode_end_metrics`` (metric keys read at each
  episode's last step) gets them passed to its ``summarize_episodes`` (climb: success per obstacle
  height, obstacles cleared).
"""

import io
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import torch

from legged_rl.torch_vec_env import TorchVecEnv

G = 9.81


def evaluate(
    env: TorchVecEnv,
    policy: Callable[[torch.Tensor], torch.Tensor],
    mass: float,
    settle_s: float = 1.0,
    record_env: int | None = None,
) -> tuple[dict, list[np.ndarray], object]:
    """Runs ``env.num_envs`` episodes (one per env) with ``policy`` (obs -> actions).

    Args:
        env: a freshly built env whose infos carry ``metrics`` (see ``TorchVecEnv.step``).
        policy: deterministic policy ``(N, num_obs) -> (N, num_actions)``.
        mass: robot mass (kg) for the cost of transport.
        settle_s: seconds after a reset or command change excluded from the tracking errors.
        record_env: index of an env whose ``qpos`` is recorded every step of its episode (for video).

    Returns:
        ``(metrics, frames, render_model)``: ``frames`` is the list of recorded ``qpos`` arrays (empty if not
        recording), ``render_model`` the MuJoCo model of the recorded env's episode (its own terrain).
    """
    n, dt = env.num_envs, float(env.env.dt)
    settle_steps = int(round(settle_s / dt))
    obs, _ = env.reset()
    task = env.env
    render_model = task.mj_model_of(env.state, record_env) if record_env is not None else None
    end_keys = tuple(getattr(task, "episode_end_metrics", ()))
    at_end = {k: torch.zeros(n) for k in end_keys}
    finished = torch.zeros(n, dtype=torch.bool)
    fell = torch.zeros(n, dtype=torch.bool)
    returns, lengths = torch.zeros(n), torch.zeros(n)
    since_change = torch.zeros(n, dtype=torch.long)
    sq_err, err_count = torch.zeros(3), 0
    energy, distance = torch.zeros(n), torch.zeros(n)
    last_cmd, frames = None, []
    for _ in range(env.max_episode_length + 1):
        if record_env is not None and not finished[record_env]:
            frames.append(np.asarray(env.env_state_qpos(record_env)))
        obs, _, rewards, dones, infos = env.step(policy(obs))
        m = {k: v.cpu() for k, v in infos["metrics"].items()}
        dones, time_outs, rewards = dones.cpu(), infos["time_outs"].cpu(), rewards.cpu()
        active = ~finished
        cmd = m["commands"]
        if last_cmd is not None:
            since_change[(cmd != last_cmd).any(dim=1)] = 0
        vel = torch.stack([m["lin_vel"][:, 0], m["lin_vel"][:, 1], m["ang_vel"][:, 2]], dim=1)
        valid = active & (since_change >= settle_steps)
        sq_err += ((cmd - vel) ** 2)[valid].sum(dim=0)
        err_count += int(valid.sum())
        energy += m["power"] * dt * active
        distance += torch.linalg.norm(m["lin_vel"][:, :2], dim=1) * dt * active
        returns += rewards * active
        lengths += active.float()
        ending = dones & active
        for k in end_keys:
            at_end[k][ending] = m[k][ending].float()
        fell |= dones & active & ~time_outs
        finished |= dones
        since_change += 1
        since_change[dones] = 0
        last_cmd = cmd
        if bool(finished.all()):
            break
    rms = torch.sqrt(sq_err / max(err_count, 1))
    metrics = {
        "num_episodes": n,
        "lin_vel_x_rms": float(rms[0]),
        "lin_vel_y_rms": float(rms[1]),
        "yaw_rate_rms": float(rms[2]),
        "mean_episode_return": float(returns.mean()),
        "mean_episode_length_s": float(lengths.mean() * dt),
        "fall_rate": float(fell.float().mean()),
        "cost_of_transport": float(energy.sum() / (mass * G * distance.sum().clamp_min(1e-6))),
        "tracking_samples": err_count,
    }
    if end_keys:
        metrics.update(task.summarize_episodes(at_end, fell))
    return metrics, frames, render_model


def render_video(
    mj_model,
    frames: list[np.ndarray],
    path: str,
    fps: float,
    width: int = 640,
    height: int = 480,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> int:
    """Renders recorded ``qpos`` frames with MuJoCo's offscreen renderer into an H.264 mp4 at ``path``.

    Needs an offscreen GL backend: ``MUJOCO_GL=egl`` (or ``osmesa``) on machines without a display.
    Returns the number of frames written; on an error (or Ctrl-C) no partial file is left at ``path``.
    ``on_frame`` gets each rendered ``(height, width, 3)`` uint8 frame (e.g. :meth:`TensorBoardClip.add`).

    The encoder is imageio-ffmpeg's ffmpeg binary reading raw RGB frames on its stdin, started by
    :func:`_start_encoder` without a ``preexec_fn``: imageio's own writer passes ``preexec_fn=os.setpgrp``,
    which makes CPython ``fork()`` this process (multithreaded once JAX has started) and run Python in the
    child before ``exec``; that can deadlock, and JAX's at-fork hook warns about it on every video.
    """
    import mujoco

    if width % 2 or height % 2:  # yuv420p (what players expect) halves the chroma resolution
        raise ValueError(f"video size {width}x{height} must be even")
    data = mujoco.MjData(mj_model)
    with mujoco.Renderer(mj_model, height, width) as renderer, tempfile.TemporaryFile() as log:
        encoder = _start_encoder(path, fps, width, height, log)
        try:
            try:
                for qpos in frames:
                    data.qpos[:] = qpos
                    mujoco.mj_forward(mj_model, data)
                    renderer.update_scene(data, camera="track")
                    rgb = np.ascontiguousarray(renderer.render(), dtype=np.uint8)
                    encoder.stdin.write(rgb.tobytes())
                    if on_frame is not None:
                        on_frame(rgb)
            except BrokenPipeError:
                pass  # ffmpeg stopped early: its exit status and message are reported below
            encoder.communicate()  # closes stdin (the end of the stream) and waits for the finished file
        except BaseException:
            encoder.kill()
            encoder.wait()
            _remove(path)
            raise
        if encoder.returncode != 0:
            _remove(path)
            log.seek(0)
            message = log.read().decode(errors="replace").strip()
            raise RuntimeError(f"ffmpeg could not write {path} (exit {encoder.returncode}): {message}")
    return len(frames)


class TensorBoardClip:
    """A video for TensorBoard from rendered frames (:meth:`add`, e.g. as :func:`render_video`'s ``on_frame``).

    :meth:`write` adds it to a run's TensorBoard as an animated GIF image summary, the encoding
    ``SummaryWriter.add_video`` produces, but made with Pillow (imageio's dependency) instead of moviepy, which
    ``add_video`` needs and this project does not install. TensorBoard shows it under Images. Kept small for the
    event file: every ``stride``-th frame (at most ``max_fps`` frames per second) at ``1/shrink`` of the size.
    """

    def __init__(self, fps: float, max_fps: float = 25.0, shrink: int = 2) -> None:
        self.stride = max(1, math.ceil(fps / max_fps - 1e-9))
        self.fps = fps / self.stride
        self.shrink = shrink
        self.frames: list[np.ndarray] = []
        self._seen = 0

    def add(self, rgb: np.ndarray) -> None:
        if self._seen % self.stride == 0:
            self.frames.append(np.ascontiguousarray(rgb[:: self.shrink, :: self.shrink]))
        self._seen += 1

    def gif(self) -> bytes:
        """The frames as an endlessly looping GIF at :attr:`fps`."""
        from PIL import Image

        images = [Image.fromarray(f) for f in self.frames]
        out = io.BytesIO()
        duration_ms = round(1000.0 / self.fps)
        images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
        return out.getvalue()

    def write(self, log_dir: str, tag: str, step: int) -> None:
        """Adds the clip as image summary ``tag`` at ``step`` to a new event file in ``log_dir``
        (``events.out.tfevents.*.play``, beside training's, so TensorBoard shows it in the same run).
        ValueError without frames."""
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard.writer import FileWriter

        if not self.frames:
            raise ValueError("no frames to write")
        height, width = self.frames[0].shape[:2]
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=self.gif())
        writer = FileWriter(log_dir, filename_suffix=".play")
        try:
            writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        finally:
            writer.close()


def _start_encoder(path: str, fps: float, width: int, height: int, log) -> subprocess.Popen:
    """An ffmpeg process encoding ``width x height`` RGB24 frames from its stdin into ``path``; its messages go to
    the file ``log`` (a file, not a pipe: a full pipe would block ffmpeg while this process blocks writing).

    ``subprocess`` starts it entirely in C (vfork or fork, then exec; no Python code and no at-fork hooks in the
    child) because no ``preexec_fn`` is given; ``start_new_session`` (``setsid``, also done in C) keeps a Ctrl-C
    in the terminal from reaching the encoder, which is what imageio's ``preexec_fn=os.setpgrp`` was for.
    """
    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-loglevel", "error",
        "-f", "rawvideo",
        "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}",
        "-r", str(Fraction(fps).limit_denominator(1000)),
        "-i", "-",
        "-an",
        "-vcodec", "libx264",  # in imageio-ffmpeg's static build; what imageio's writer picks there too
        "-pix_fmt", "yuv420p",
        path,
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
