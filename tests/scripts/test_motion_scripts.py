"""record_motion.py -> MotionLoader round trip on a real (tiny) walk run; compare_motion.py; walk_amp errors."""

import json

import numpy as np
import pytest

from legged_env.robots.go1 import constants as go1
from legged_env.robots.go1.amp import AMP_OBS_SEGMENTS
from st_rl.datasets.motion_loader import MotionLoader, load_motion
from tests.scripts.conftest import REPO, RUN_NAME, run_dirs, run_script

pytestmark = pytest.mark.timeout(600)


def test_record_then_load_and_compare(logs, tmp_path):
    out = tmp_path / "clip.npz"
    run = run_dirs(logs)[0].name
    proc = run_script(
        "record_motion", "--task=walk", "--load_run", run, "--seconds", "1.5", "--output", str(out), log_root=logs
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    clip = load_motion(str(out))
    assert clip.frames.shape[1] == 43 and clip.fps == 50.0 and 51 <= len(clip.frames) <= 75
    assert list(clip.joint_names) == list(go1.JOINT_NAMES) and clip.segments == AMP_OBS_SEGMENTS
    loader = MotionLoader([str(out)], AMP_OBS_SEGMENTS, go1.JOINT_NAMES, 0.02)
    s, s_next = loader.sample_pairs(16)
    assert s.shape == (16, 43) and np.isfinite(s_next.numpy()).all()
    assert RUN_NAME in run

    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compare_motion.py"), "--clips", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert [r["reference"] for r in rows] == [False, True, True, True]
    # a barely trained policy is far from the trot references; each reference is close to their pool
    assert rows[0]["joint_angle_w1_rad"] > max(r["joint_angle_w1_rad"] for r in rows[1:])


def test_walk_amp_with_a_missing_motion_file_is_a_one_line_error(tmp_path):
    proc = run_script(
        "train",
        "--task=walk_amp",
        "--num_envs",
        "16",
        "--max_iterations",
        "1",
        "--set",
        "algorithm.motion_files=[no/such/clip.npz]",
        log_root=tmp_path / "logs",
    )
    assert proc.returncode == 2
    assert "error: motion file 'no/such/clip.npz'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "logs").exists()  # nothing written
