"""MotionLoader: format round trip, exact interpolated transitions, clip weights, one clear error per bad clip."""

import os
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

from st_rl.datasets import MotionLoader, frames_until_done, load_motion, save_motion

SEGMENTS = OrderedDict([("pos", (2,)), ("vel", (1,)), ("quad", (1,))])
JOINTS = ("j0", "j1")
DT = 0.02
# Column c of a "linear" clip is OFFSET[c] + SLOPE[c] * t (the last column is overwritten by t^2 in some tests).
SLOPE = np.array([1.0, -2.0, 0.5, 3.0])


def linear_frames(fps: float, num_frames: int, offset: float) -> np.ndarray:
    t = np.arange(num_frames) / fps
    return (offset + SLOPE[None, :] * t[:, None]).astype(np.float32)


def write_clip(path, frames, fps=30.0, joints=JOINTS, segments=SEGMENTS, **kwargs) -> str:
    save_motion(str(path), frames, fps, joints, segments, **kwargs)
    return str(path)


def write_raw(path, **arrays) -> str:
    """An .npz written directly, bypassing save_motion's checks (to build bad clips)."""
    base = {
        "fps": np.float64(30.0),
        "joint_names": np.array(JOINTS),
        "segments": np.array('[["pos", [2]], ["vel", [1]], ["quad", [1]]]'),
        "frames": np.zeros((10, 4), dtype=np.float32),
    }
    base.update(arrays)
    with open(path, "wb") as f:
        np.savez(f, **base)
    return str(path)


def test_save_load_round_trip_and_atomic_write(tmp_path):
    frames = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    path = write_clip(tmp_path / "sub" / "clip.npz", frames, fps=25.0, weight=2.5, description="a test clip")
    assert os.listdir(tmp_path / "sub") == ["clip.npz"]  # no temporary file left behind
    clip = load_motion(path)
    np.testing.assert_array_equal(clip.frames, frames)
    assert clip.fps == 25.0 and clip.weight == 2.5 and clip.description == "a test clip"
    assert clip.joint_names == JOINTS and clip.segments == SEGMENTS
    assert clip.num_frames == 7 and clip.duration == pytest.approx(6 / 25)
    with np.load(path, allow_pickle=False) as raw:  # plain arrays, no pickled objects
        assert set(raw.files) == {"fps", "joint_names", "segments", "frames", "weight", "description"}
        assert raw["frames"].dtype == np.float32
    # Optional keys default.
    minimal = load_motion(write_raw(tmp_path / "minimal.npz"))
    assert minimal.weight == 1.0 and minimal.description == ""


def test_transitions_are_exact_interpolations_one_dt_apart(tmp_path):
    # Two clips at frame rates unlike 1/dt: a linear function must come back exactly, s' - s = slope * dt,
    # and a quadratic column must equal the straight line between its two neighbouring frames.
    a = linear_frames(30.0, 31, offset=0.0)  # 1 s
    b = linear_frames(45.0, 46, offset=100.0)  # 1 s, values far from clip a
    for frames, fps in ((a, 30.0), (b, 45.0)):
        frames[:, 3] = (np.arange(len(frames)) / fps) ** 2
    write_clip(tmp_path / "a.npz", a, fps=30.0)
    write_clip(tmp_path / "b.npz", b, fps=45.0)
    loader = MotionLoader([str(tmp_path)], SEGMENTS, JOINTS, DT)
    assert loader.num_clips == 2 and loader.total_duration == pytest.approx(2.0)

    s, s_next = loader.sample_pairs(2000, generator=torch.Generator().manual_seed(0))
    assert s.shape == s_next.shape == (2000, 4) and s.dtype == torch.float32
    s, s_next = s.double().numpy(), s_next.double().numpy()
    from_b = s[:, 0] > 50.0
    assert 0.4 < from_b.mean() < 0.6
    offset = np.where(from_b, 100.0, 0.0)
    t = s[:, 0] - offset  # column 0 is offset + 1 * t
    assert t.min() >= -1e-5 and t.max() <= 1.0 - DT + 1e-5
    assert t.min() < 0.01 and t.max() > 1.0 - DT - 0.01  # the whole admissible range is used
    for c in range(3):
        np.testing.assert_allclose(s[:, c], offset + SLOPE[c] * t, atol=2e-5)
        np.testing.assert_allclose(s_next[:, c], offset + SLOPE[c] * (t + DT), atol=2e-5)
        np.testing.assert_allclose(s_next[:, c] - s[:, c], SLOPE[c] * DT, atol=2e-5)
    for states, times in ((s, t), (s_next, t + DT)):
        fps = np.where(from_b, 45.0, 30.0)
        left = np.floor(times * fps + 1e-9) / fps
        right = left + 1.0 / fps
        alpha = (times - left) * fps
        expected = (1 - alpha) * left**2 + alpha * right**2  # linear interpolation of t^2
        np.testing.assert_allclose(states[:, 3], expected, atol=5e-5)
        assert np.abs(states[:, 3] - times**2).max() > 1e-5  # ... which is not t^2 itself


def test_sampling_is_reproducible_and_iterate_pairs(tmp_path):
    loader = MotionLoader(write_clip(tmp_path / "a.npz", linear_frames(30.0, 31, 0.0)), SEGMENTS, JOINTS, DT)
    first = loader.sample_pairs(16, generator=torch.Generator().manual_seed(3))
    again = loader.sample_pairs(16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)
    batches = list(loader.iterate_pairs(8, 5, generator=torch.Generator().manual_seed(1)))
    assert len(batches) == 5 and all(s.shape == (8, 4) and n.shape == (8, 4) for s, n in batches)
    assert not torch.equal(batches[0][0], batches[1][0])


def test_clip_weights_set_sampling_frequency(tmp_path):
    one = np.zeros((11, 4), dtype=np.float32)
    write_clip(tmp_path / "light.npz", one, weight=1.0)
    write_clip(tmp_path / "heavy.npz", one + 1.0, weight=3.0)
    loader = MotionLoader([str(tmp_path / "light.npz"), str(tmp_path / "heavy.npz")], SEGMENTS, JOINTS, DT)
    torch.testing.assert_close(loader.clip_probs, torch.tensor([0.25, 0.75], dtype=torch.float64))
    s, _ = loader.sample_pairs(4000, generator=torch.Generator().manual_seed(0))
    heavy = (s[:, 0] > 0.5).float().mean().item()
    assert abs(heavy - 0.75) < 0.025  # 4000 draws: standard deviation ~0.007


def test_wrong_joint_names(tmp_path):
    frames = linear_frames(30.0, 31, 0.0)
    swapped = write_clip(tmp_path / "swapped.npz", frames, joints=("j1", "j0"))
    with pytest.raises(ValueError, match=r"swapped\.npz: joint names differ.*another order.*index 0: j1 \(clip\)"):
        MotionLoader(swapped, SEGMENTS, JOINTS, DT)
    other = write_clip(tmp_path / "other.npz", frames, joints=("j0", "k1"))
    with pytest.raises(ValueError, match=r"other\.npz: joint names differ.*missing \['j1'\]; unknown \['k1'\]"):
        MotionLoader(other, SEGMENTS, JOINTS, DT)


def test_wrong_frame_width(tmp_path):
    bad = write_raw(tmp_path / "wide.npz", frames=np.zeros((10, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"wide\.npz: frames are 5 wide but the segments .* sum to 4"):
        MotionLoader(bad, SEGMENTS, JOINTS, DT)
    with pytest.raises(ValueError, match=r"frames are 3 wide"):
        save_motion(str(tmp_path / "never.npz"), np.zeros((4, 3)), 30.0, JOINTS, SEGMENTS)
    assert not (tmp_path / "never.npz").exists()


def test_wrong_segment_layout(tmp_path):
    frames = linear_frames(30.0, 31, 0.0)
    renamed = write_clip(
        tmp_path / "renamed.npz", frames, segments=OrderedDict([("pos", (2,)), ("v", (1,)), ("quad", (1,))])
    )
    with pytest.raises(ValueError) as err:
        MotionLoader(renamed, SEGMENTS, JOINTS, DT)
    msg = str(err.value)
    assert "renamed.npz" in msg and "at segment 1 (v(1,) in the clip, vel(1,) expected)" in msg
    assert "clip [pos(2,), v(1,), quad(1,)] vs env [pos(2,), vel(1,), quad(1,)]" in msg and "\n" not in msg
    resized = write_clip(tmp_path / "resized.npz", frames, segments=OrderedDict([("pos", (3,)), ("quad", (1,))]))
    with pytest.raises(ValueError, match=r"resized\.npz: .*at segment 0 \(pos\(3,\) in the clip, pos\(2,\) expected\)"):
        MotionLoader(resized, SEGMENTS, JOINTS, DT)
    longer = OrderedDict([*SEGMENTS.items(), ("extra", (1,))])
    with pytest.raises(ValueError, match=r"at segment 3 \(nothing in the clip, extra\(1,\) expected\)"):
        MotionLoader(write_clip(tmp_path / "a.npz", frames), longer, JOINTS, DT)


def test_too_short_clip(tmp_path):
    single = write_clip(tmp_path / "single.npz", np.zeros((1, 4)), fps=30.0)
    with pytest.raises(ValueError, match=r"single\.npz is too short: 1 frame\(s\), duration 0\.0000 s"):
        MotionLoader(single, SEGMENTS, JOINTS, DT)
    brief = write_clip(tmp_path / "brief.npz", np.zeros((2, 4)), fps=100.0)  # 0.01 s < dt
    with pytest.raises(ValueError, match=r"brief\.npz is too short: 2 frame\(s\), duration 0\.0100 s .*dt = 0\.02 s"):
        MotionLoader(brief, SEGMENTS, JOINTS, DT)
    exact = write_clip(tmp_path / "exact.npz", np.arange(8, dtype=np.float32).reshape(2, 4), fps=50.0)
    s, s_next = MotionLoader(exact, SEGMENTS, JOINTS, DT).sample_pairs(4)  # duration == dt: first and last frame
    torch.testing.assert_close(s, torch.arange(4.0).expand(4, 4))
    torch.testing.assert_close(s_next, torch.arange(4.0, 8.0).expand(4, 4))


def test_bad_files_and_paths(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz: cannot read it as an \.npz file"):
        load_motion(str(tmp_path / "junk.npz"))
    with pytest.raises(ValueError, match=r"nofps\.npz: missing key\(s\) fps"):
        load_motion(_without(tmp_path / "nofps.npz", "fps"))
    nan = np.zeros((10, 4), dtype=np.float32)
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"nan\.npz: frames hold a non-finite value \(frame 3, column 2\)"):
        load_motion(write_raw(tmp_path / "nan.npz", frames=nan))
    with pytest.raises(ValueError, match=r"zero\.npz: weight must be a positive number, got 0\.0"):
        load_motion(write_raw(tmp_path / "zero.npz", weight=np.float64(0.0)))
    with pytest.raises(ValueError, match=r"motion path .*missing\.npz does not exist"):
        MotionLoader(str(tmp_path / "missing.npz"), SEGMENTS, JOINTS, DT)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"motion directory .*empty holds no \.npz clips"):
        MotionLoader(str(tmp_path / "empty"), SEGMENTS, JOINTS, DT)
    with pytest.raises(ValueError, match=r"dt must be a positive number"):
        MotionLoader(str(tmp_path / "zero.npz"), SEGMENTS, JOINTS, 0.0)


def _without(path, key: str) -> str:
    write_raw(path)
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files if k != key}
    with open(path, "wb") as f:
        np.savez(f, **kept)
    return str(path)


def test_frames_until_done():
    # Two envs, 5 steps; env 0 ends at step 3 (its amp_obs there is already the next episode's first state).
    amp = [np.array([[k, 0.0], [10 + k, 1.0]]) for k in range(5)]
    amp[3][0] = [-99.0, -99.0]
    final = [np.full((2, 2), -1.0) for _ in range(5)]
    final[3][0] = [3.5, 0.0]
    dones = [np.array([k == 3, False]) for k in range(5)]
    out = frames_until_done(amp, dones, final, env_index=0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0], [1, 0], [2, 0], [3.5, 0]])
    np.testing.assert_array_equal(frames_until_done(amp, dones, None, env_index=0), [[0, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(frames_until_done(amp, dones, final, env_index=1), [[10 + k, 1] for k in range(5)])
    torch_out = frames_until_done([torch.from_numpy(a) for a in amp], [torch.from_numpy(d) for d in dones], None)
    np.testing.assert_array_equal(torch_out, out[:3])
    with pytest.raises(ValueError, match=re.escape("5 amp_obs, 4 dones")):
        frames_until_done(amp, dones[:4])
