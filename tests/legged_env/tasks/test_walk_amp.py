"""walk_amp: the AMP observation the env publishes matches its definition (legged_env/robots/go1/amp.py) and the
shipped reference clips; the transition contract across auto-resets."""

import mujoco
import numpy as np
import pytest
import torch

from legged_env.robots.go1 import constants as go1
from legged_env.robots.go1.amp import AMP_OBS_SEGMENTS
from legged_rl.torch_vec_env import TorchVecEnv
from st_rl.datasets.motion_loader import MotionLoader
from tests.legged_env.envs import segment_slices

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def amp_env(walk_amp_env):
    """The torch bridge over the shared default walk_amp env (16 envs; tests/legged_env/conftest.py)."""
    return TorchVecEnv(walk_amp_env)


def _quat_to_mat(quat) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def test_amp_obs_matches_its_definition_against_mujoco_poses(amp_env):
    assert amp_env.amp_obs_segments == AMP_OBS_SEGMENTS
    sl = segment_slices(AMP_OBS_SEGMENTS)
    n = amp_env.num_envs
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        _, _, _, dones, infos = amp_env.step(torch.rand(n, 12, generator=gen) * 2 - 1)
    assert not dones.any()
    amp = infos["amp_obs"].numpy()
    data = amp_env.state.data
    qpos, qvel = np.asarray(data.qpos), np.asarray(data.qvel)
    feet = np.asarray(data.geom_xpos)[:, amp_env.env.foot_geoms]  # (N, 4, 3) world, from MJX kinematics
    for i in range(n):
        rot = _quat_to_mat(qpos[i, 3:7])
        foot_base = (feet[i] - qpos[i, :3]) @ rot  # R^T (p - base) for each foot
        np.testing.assert_allclose(amp[i, sl["foot_pos"]], foot_base.reshape(12), atol=2e-5)
        np.testing.assert_allclose(amp[i, sl["dof_pos"]], qpos[i, 7:] - np.array(go1.DEFAULT_JOINT_POS), atol=1e-5)
        np.testing.assert_allclose(amp[i, sl["dof_vel"]], qvel[i, 6:], atol=1e-4)
        np.testing.assert_allclose(amp[i, sl["base_height"]], qpos[i, 2:3], atol=1e-6)
        np.testing.assert_allclose(amp[i, sl["base_lin_vel"]], rot.T @ qvel[i, :3], atol=1e-4)
        np.testing.assert_allclose(amp[i, sl["base_ang_vel"]], qvel[i, 3:6], atol=1e-5)


def test_final_amp_obs_is_the_state_before_the_auto_reset(amp_env):
    amp_env.reset()
    n = amp_env.num_envs
    amp_env.episode_length_buf = torch.full((n,), amp_env.max_episode_length - 20)  # time-outs after 20 steps
    previous = None
    for _ in range(25):
        _, _, _, dones, infos = amp_env.step(torch.zeros(n, 12))
        if dones.any():
            break
        previous = infos["amp_obs"].clone()
    assert dones.all()  # every env times out at step 20
    # the final state continues the trajectory; the published one is the fresh reset (near the spawn pose)
    final, current = infos["final_amp_obs"], infos["amp_obs"]
    sl = segment_slices(AMP_OBS_SEGMENTS)
    assert (final[:, sl["base_height"]] - previous[:, sl["base_height"]]).abs().max() < 0.02
    init_height = amp_env.cfg["init_state"]["base_height"]
    torch.testing.assert_close(current[:, sl["base_height"]], torch.full((n, 1), init_height))
    assert not torch.allclose(final, current)


def test_shipped_reference_clips_fit_the_env_layout(amp_env):
    from legged_rl.cli import PACKAGE_ROOT

    motions = PACKAGE_ROOT / "legged_env" / "robots" / "go1" / "motions"
    loader = MotionLoader([str(motions)], amp_env.amp_obs_segments, go1.JOINT_NAMES, float(amp_env.env.dt))
    s, s_next = loader.sample_pairs(64)
    assert s.shape == s_next.shape == (64, 43)
    # the reference's standing height is the env's nominal height within a few mm (same kinematics)
    sl = segment_slices(AMP_OBS_SEGMENTS)
    assert (s[:, sl["base_height"]] - 0.331).abs().max() < 0.005
