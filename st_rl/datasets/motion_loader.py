"""Reference motion clips for adversarial motion priors: the file format, loading and transition sampling.

FILE FORMAT (one clip per ``.npz`` file, written by :func:`save_motion`, readable with
``np.load(path, allow_pickle=False)``):

- ``fps``: 0-d float, frames per second of ``frames`` (> 0).
- ``joint_names``: ``(J,)`` str, the robot's joint order the ``dof_*`` segments follow.
- ``segments``: 0-d str, JSON list of ``[name, shape]`` pairs in frame order, e.g.
  ``[["dof_pos", [12]], ["dof_vel", [12]], ...]``: the layout of one frame (the env's ``amp_obs_segments``).
- ``frames``: ``(F, D)`` float32, frame ``i`` is the AMP observation at time ``i / fps``;
  ``D`` is the sum of the segment sizes. The clip lasts ``duration = (F - 1) / fps`` seconds.
- ``weight`` (optional): 0-d float > 0, relative probability of sampling from this clip (default 1.0).
- ``description`` (optional): 0-d str, free text (how the clip was made).

:class:`MotionLoader` loads clips, checks them against the robot (joint names and order) and the env's AMP
layout, and samples transitions ``(s, s')`` one control step ``dt`` apart by linear interpolation between
frames, so the clip's frame rate need not match the control rate.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from st_rl.utils.io import atomic_write
from st_rl.utils.obs_segments import normalize_segments, segment_size, segments_num_obs

Segments = Mapping[str, Sequence[int]]
REQUIRED_KEYS = ("fps", "joint_names", "segments", "frames")


@dataclass
class MotionClip:
    """One clip as stored on disk (see the module docstring).

    Attributes:
        path: the file it was read from (or will be written to).
        fps: frames per second.
        joint_names: joint order of the ``dof_*`` segments.
        segments: ordered ``name -> shape`` layout of one frame.
        frames: ``(F, D)`` float32.
        weight: sampling weight (> 0).
        description: free text.
    """

    path: str
    fps: float
    joint_names: tuple[str, ...]
    segments: OrderedDict[str, tuple[int, ...]]
    frames: np.ndarray
    weight: float = 1.0
    description: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        """``(F - 1) / fps`` seconds."""
        return (self.num_frames - 1) / self.fps


def _layout_str(segments: Segments) -> str:
    return "[" + ", ".join(f"{name}{tuple(shape)}" for name, shape in segments.items()) + "]"


def _check_clip_fields(
    where: str, fps: float, frames: np.ndarray, segments: Segments, weight: float, joint_names: Sequence[str]
) -> None:
    """File-level consistency (independent of any robot); ValueError naming ``where``."""
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"motion clip {where}: fps must be a positive number, got {fps}")
    if not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"motion clip {where}: weight must be a positive number, got {weight}")
    if len(segments) == 0:
        raise ValueError(f"motion clip {where}: the frame layout (segments) is empty")
    if len(set(joint_names)) != len(joint_names):
        raise ValueError(f"motion clip {where}: joint_names has duplicates: {list(joint_names)}")
    if frames.ndim != 2:
        raise ValueError(f"motion clip {where}: frames must be 2-D (F, D), got shape {tuple(frames.shape)}")
    width = segments_num_obs(segments)
    if frames.shape[1] != width:
        raise ValueError(
            f"motion clip {where}: frames are {frames.shape[1]} wide but the segments {_layout_str(segments)} "
            f"sum to {width}"
        )
    if not np.all(np.isfinite(frames)):
        bad = np.argwhere(~np.isfinite(frames))[0]
        raise ValueError(f"motion clip {where}: frames hold a non-finite value (frame {bad[0]}, column {bad[1]})")


def save_motion(
    path: str,
    frames: np.ndarray | torch.Tensor,
    fps: float,
    joint_names: Sequence[str],
    segments: Segments,
    weight: float = 1.0,
    description: str = "",
) -> None:
    """Write one clip in the format of the module docstring, atomically (temp file + rename).

    Args:
        path: output ``.npz`` path (parent directories are created).
        frames: ``(F, D)`` AMP observations at ``fps``; stored as float32.
        fps: frames per second.
        joint_names: the robot's joint order.
        segments: ordered ``name -> shape`` frame layout; ``D`` must equal the sum of the sizes.
        weight: sampling weight of the clip (> 0).
        description: free text stored with the clip.

    Raises:
        ValueError: inconsistent arguments (frame width vs segments, non-finite values, bad fps/weight).
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames, dtype=np.float32)
    segments = normalize_segments(segments)
    joint_names = [str(n) for n in joint_names]
    _check_clip_fields(path, float(fps), frames, segments, float(weight), joint_names)
    layout = json.dumps([[name, list(shape)] for name, shape in segments.items()])

    def write(tmp_path: str) -> None:
        # An open file: np.savez would append ".npz" to a temporary name that lacks it.
        with open(tmp_path, "wb") as f:
            np.savez_compressed(
                f,
                fps=np.float64(fps),
                joint_names=np.array(joint_names, dtype=np.str_),
                segments=np.array(layout, dtype=np.str_),
                frames=frames,
                weight=np.float64(weight),
                description=np.array(str(description), dtype=np.str_),
            )

    atomic_write(path, write)


def load_motion(path: str) -> MotionClip:
    """Read and check one clip file (format of the module docstring).

    Raises:
        ValueError: unreadable file, missing key or inconsistent contents; one line naming ``path``.
    """
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"holds a single {type(data).__name__}, not named arrays")
        with data:
            raw = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"motion clip {path}: cannot read it as an .npz file ({first})") from None
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise ValueError(
            f"motion clip {path}: missing key(s) {', '.join(missing)} (has {', '.join(sorted(raw)) or 'none'})"
        )
    try:
        pairs = json.loads(str(raw["segments"]))
        segments = OrderedDict((str(name), tuple(int(d) for d in shape)) for name, shape in pairs)
    except (json.JSONDecodeError, TypeError, ValueError):
        raise ValueError(
            f"motion clip {path}: 'segments' must be a JSON list of [name, shape] pairs, got {str(raw['segments'])!r}"
        ) from None
    try:
        fps = float(raw["fps"])
        weight = float(raw["weight"]) if "weight" in raw else 1.0
    except (TypeError, ValueError):
        raise ValueError(f"motion clip {path}: fps and weight must be scalar numbers") from None
    joint_names = tuple(str(n) for n in np.atleast_1d(raw["joint_names"]))
    frames = np.asarray(raw["frames"])
    if not np.issubdtype(frames.dtype, np.number):
        raise ValueError(f"motion clip {path}: frames must be numeric, got dtype {frames.dtype}")
    frames = frames.astype(np.float32)
    _check_clip_fields(path, fps, frames, segments, weight, joint_names)
    description = str(raw["description"]) if "description" in raw else ""
    return MotionClip(path, fps, joint_names, segments, frames, weight, description)


def find_motion_files(paths: str | Sequence[str]) -> list[str]:
    """``.npz`` files named in ``paths``: files as given, directories searched recursively (sorted).

    Raises:
        ValueError: a path does not exist, a directory holds no ``.npz`` file, or nothing was named.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(os.path.join(root, f) for root, _, names in os.walk(p) for f in names if f.endswith(".npz"))
            if not found:
                raise ValueError(f"motion directory {p} holds no .npz clips")
            files.extend(found)
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise ValueError(f"motion path {p} does not exist")
    if not files:
        raise ValueError("no motion clips given (motion paths list is empty)")
    return files


def _joint_difference(clip: Sequence[str], robot: Sequence[str]) -> str:
    missing = [n for n in robot if n not in clip]
    extra = [n for n in clip if n not in robot]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unknown {extra}")
    if not parts:
        moved = [f"{i}: {c} (clip) vs {r} (robot)" for i, (c, r) in enumerate(zip(clip, robot)) if c != r]
        parts.append(f"same names in another order, first at index {moved[0]}")
    return "; ".join(parts)


def check_clip(clip: MotionClip, amp_obs_segments: Segments, joint_names: Sequence[str], dt: float) -> None:
    """Check a clip against the robot and the env: joint order, frame layout and length.

    Raises:
        ValueError: one line naming the clip file and what differs.
    """
    robot = [str(n) for n in joint_names]
    if list(clip.joint_names) != robot:
        diff = _joint_difference(clip.joint_names, robot)
        raise ValueError(f"motion clip {clip.path}: joint names differ from the robot's ({diff})")
    want = normalize_segments(amp_obs_segments)
    have = clip.segments
    for i, (h, w) in enumerate(itertools.zip_longest(have.items(), want.items())):
        if h is not None and w is not None and h[0] == w[0] and segment_size(h[1]) == segment_size(w[1]):
            continue
        h_str = f"{h[0]}{tuple(h[1])}" if h else "nothing"
        w_str = f"{w[0]}{tuple(w[1])}" if w else "nothing"
        raise ValueError(
            f"motion clip {clip.path}: frame layout differs from the env's AMP observation at segment {i} "
            f"({h_str} in the clip, {w_str} expected): clip {_layout_str(have)} vs env {_layout_str(want)}"
        )
    if clip.num_frames < 2 or clip.duration < dt:
        raise ValueError(
            f"motion clip {clip.path} is too short: {clip.num_frames} frame(s), duration {clip.duration:.4f} s "
            f"(need >= 2 frames and >= dt = {dt:g} s)"
        )


def frames_until_done(
    amp_obs: Sequence[np.ndarray | torch.Tensor],
    dones: Sequence[np.ndarray | torch.Tensor],
    final_amp_obs: Sequence[np.ndarray | torch.Tensor] | None = None,
    env_index: int = 0,
) -> np.ndarray:
    """One env's clip frames from a recorded rollout: its states up to its first episode end.

    Step ``k`` of a rollout gives ``amp_obs[k]`` (the state after the step, already the new episode's first
    state where the env auto-reset), ``dones[k]`` and ``final_amp_obs[k]`` (the state before the reset).

    Args:
        amp_obs: per step ``(N, D)`` AMP observations.
        dones: per step ``(N,)`` episode-ended flags.
        final_amp_obs: per step ``(N, D)`` final states; when given, the state in which the episode ended is
            the clip's last frame, else the clip stops at the step before.
        env_index: which env to take.

    Returns:
        ``(F, D)`` float32: steps ``0 .. first done of env_index`` (all steps if it never ended).
    """
    if len(amp_obs) != len(dones) or (final_amp_obs is not None and len(final_amp_obs) != len(amp_obs)):
        raise ValueError(
            f"frames_until_done: {len(amp_obs)} amp_obs, {len(dones)} dones"
            + ("" if final_amp_obs is None else f", {len(final_amp_obs)} final_amp_obs")
            + " (need one of each per step)"
        )

    def row(x: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=np.float32)[env_index]

    frames = []
    for k in range(len(amp_obs)):
        done = bool(np.asarray(dones[k].cpu() if isinstance(dones[k], torch.Tensor) else dones[k])[env_index])
        if done:
            if final_amp_obs is not None:
                frames.append(row(final_amp_obs[k]))
            break
        frames.append(row(amp_obs[k]))
    if not frames:
        return np.zeros((0, row(amp_obs[0]).shape[-1] if amp_obs else 0), dtype=np.float32)
    return np.stack(frames)


class MotionLoader:
    """Reference clips as one frame tensor, sampled as AMP transitions ``(s, s')`` one control step apart.

    Args:
        paths: ``.npz`` clip files and/or directories searched recursively for them.
        amp_obs_segments: the env's AMP observation layout; every clip's frame layout must equal it
            (same names in the same order, same sizes).
        joint_names: the robot's joint order; every clip must list the same names in the same order.
        dt: policy control step (s): ``s'`` is ``dt`` after ``s``. Every clip must last ``>= dt``.
        device: torch device of the sampled tensors.

    Raises:
        ValueError: a bad path or clip; one line naming the file.
    """

    def __init__(
        self,
        paths: str | Sequence[str],
        amp_obs_segments: Segments,
        joint_names: Sequence[str],
        dt: float,
        device: str | torch.device = "cpu",
    ) -> None:
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"MotionLoader: dt must be a positive number of seconds, got {dt}")
        if amp_obs_segments is None or len(amp_obs_segments) == 0:
            raise ValueError("MotionLoader: amp_obs_segments is empty; the env must provide an AMP observation layout")
        self.dt = float(dt)
        self.device = torch.device(device)
        self.amp_obs_segments = normalize_segments(amp_obs_segments)
        self.num_amp_obs = segments_num_obs(self.amp_obs_segments)
        self.clips: list[MotionClip] = []
        for path in find_motion_files(paths):
            clip = load_motion(path)
            check_clip(clip, self.amp_obs_segments, joint_names, self.dt)
            self.clips.append(clip)
        counts = [c.num_frames for c in self.clips]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # Flat frame table; per-clip rows index into it. Times are float64 so long clips keep exact phase.
        self.frames = torch.from_numpy(np.concatenate([c.frames for c in self.clips])).to(self.device)
        self._start = torch.tensor(starts, dtype=torch.long, device=self.device)
        self._last = torch.tensor(counts, dtype=torch.long, device=self.device) - 2  # last valid left index
        self._fps = torch.tensor([c.fps for c in self.clips], dtype=torch.float64, device=self.device)
        self._duration = torch.tensor([c.duration for c in self.clips], dtype=torch.float64, device=self.device)
        weights = torch.tensor([c.weight for c in self.clips], dtype=torch.float64)
        self.clip_probs = (weights / weights.sum()).to(self.device)

    @property
    def num_clips(self) -> int:
        return len(self.clips)

    @property
    def total_duration(self) -> float:
        """Sum of the clip durations (s)."""
        return float(sum(c.duration for c in self.clips))

    def _frame_at(self, clip: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Linearly interpolated frames ``(B, D)`` of clips ``clip`` ``(B,)`` at times ``t`` ``(B,)`` (s)."""
        x = t * self._fps[clip]
        left = torch.minimum(x.floor().long().clamp_min(0), self._last[clip])
        alpha = (x - left.double()).clamp(0.0, 1.0).float().unsqueeze(-1)
        idx = self._start[clip] + left
        return torch.lerp(self.frames[idx], self.frames[idx + 1], alpha)

    def sample_pairs(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random reference transitions.

        A clip is drawn with probability proportional to its weight, a time ``t`` uniformly in
        ``[0, duration - dt]``; ``s`` is the clip at ``t`` and ``s'`` at ``t + dt``, each linearly
        interpolated between the two neighbouring frames.

        Args:
            batch_size: ``B``.
            generator: optional torch generator on ``device`` (reproducible sampling).

        Returns:
            ``(s, s_next)``, each ``(B, D)`` float32 on ``device``.
        """
        clip = torch.multinomial(self.clip_probs, batch_size, replacement=True, generator=generator)
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=self.device)
        t = u * (self._duration[clip] - self.dt)
        return self._frame_at(clip, t), self._frame_at(clip, t + self.dt)

    def iterate_pairs(
        self, batch_size: int, num_batches: int, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``num_batches`` batches of :meth:`sample_pairs` (e.g. to fit an AMP observation normaliser)."""
        for _ in range(num_batches):
            yield self.sample_pairs(batch_size, generator)

    def __repr__(self) -> str:
        return (
            f"MotionLoader({self.num_clips} clips, {self.total_duration:.2f} s, {self.num_amp_obs} floats/frame, "
            f"dt={self.dt:g})"
        )
