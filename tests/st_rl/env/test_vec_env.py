import pytest
import torch

from st_rl.env import VecEnv
from st_rl.utils.obs_segments import segments_num_obs
from tests.st_rl.dummy_env import PointMassEnv


def test_vec_env_is_abstract():
    with pytest.raises(TypeError):
        VecEnv()


@pytest.mark.parametrize("privileged", [False, True])
def test_dummy_env_follows_contract(privileged):
    env = PointMassEnv(num_envs=3, max_episode_length=2, privileged=privileged)
    assert segments_num_obs(env.obs_segments) == env.num_obs
    obs, privileged_obs = env.reset()
    assert obs.shape == (3, env.num_obs)
    assert (privileged_obs is None) == (not privileged)
    for _ in range(2):
        obs, privileged_obs, rewards, dones, infos = env.step(torch.zeros(3, 2))
    assert rewards.shape == (3,) and dones.dtype == torch.bool and dones.all()
    assert infos["time_outs"].all()
    assert infos["final_critic_obs"].shape == (3, env.num_critic_obs)
    assert "rew_reach" in infos["episode"]
    assert (env.episode_length_buf == 0).all()
