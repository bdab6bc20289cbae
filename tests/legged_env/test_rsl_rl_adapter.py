"""RslRlVecEnv: rsl-rl-lib's own OnPolicyRunner trains on our walk env unchanged."""

import pytest
import torch

# No importorskip: `.[dev]` (what the README and CI install) has every extra, so a missing one fails here.
from rsl_rl.env import VecEnv as RslRlVecEnvBase
from rsl_rl.runners import OnPolicyRunner

from legged_rl.adapters.rsl_rl_env import RslRlVecEnv
from legged_rl.torch_vec_env import TorchVecEnv

pytestmark = pytest.mark.timeout(180)

STEPS_PER_ENV = 8
TIMED = [2, 7]  # envs that reach their time limit 3 steps into the first iteration


def train_cfg() -> dict:
    """rsl-rl-lib 5.5's train config (tiny MLPs, one epoch of two mini-batches)."""
    return {
        "num_steps_per_env": STEPS_PER_ENV,
        "save_interval": 100,
        "run_name": "adapter-test",
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "algorithm": {
            "class_name": "rsl_rl.algorithms:PPO",
            "num_learning_epochs": 1,
            "num_mini_batches": 2,
            "learning_rate": 1e-3,
        },
        "actor": {
            "class_name": "rsl_rl.models:MLPModel",
            "hidden_dims": [32, 32],
            "distribution_cfg": {"class_name": "rsl_rl.modules.distribution:GaussianDistribution", "init_std": 1.0},
        },
        "critic": {"class_name": "rsl_rl.models:MLPModel", "hidden_dims": [32, 32]},
    }


def _time_out_soon(env, envs: list[int], steps_left: int) -> None:
    lengths = env.episode_length_buf.clone()
    lengths[envs] = env.max_episode_length - steps_left
    env.episode_length_buf = lengths


def test_rsl_rl_runner_trains_two_iterations(walk_env, tmp_path, capsys):
    env = RslRlVecEnv(TorchVecEnv(walk_env))
    assert isinstance(env, RslRlVecEnvBase)
    _time_out_soon(env, TIMED, 3)
    runner = OnPolicyRunner(env, train_cfg(), str(tmp_path / "run"), device="cpu")
    runner.logger.git_status_repos = []  # rsl_rl would snapshot the git state of the repo holding it (ours)
    before = {k: v.clone() for k, v in runner.alg.get_policy().state_dict().items()}
    runner.learn(2)
    out = capsys.readouterr().out

    after = runner.alg.get_policy().state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert "Learning iteration 1/2" in out
    # The time-outs (and any fall) ended episodes: rsl_rl's logger saw their returns and our episode logs.
    assert "Mean reward:" in out and "Mean episode length:" in out
    assert "Episode_Reward/tracking_lin_vel:" in out
    assert (tmp_path / "run" / "model_1.pt").is_file()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    print(out)  # shown with -s: what rsl_rl printed


def test_step_serves_our_tensors_as_groups_and_time_outs(walk_env):
    venv = TorchVecEnv(walk_env)
    env = RslRlVecEnv(venv)
    obs = env.get_observations()
    assert obs.batch_size == torch.Size([env.num_envs]) and set(obs.keys()) == {"policy", "critic"}
    assert torch.equal(obs["policy"], venv.get_observations())
    assert torch.equal(obs["critic"], venv.get_privileged_observations())
    assert env.observation_groups.segments("critic") == venv.privileged_obs_segments
    assert (env.num_envs, env.num_actions, env.max_episode_length) == (16, 12, venv.max_episode_length)

    _time_out_soon(env, TIMED, 1)
    obs, rewards, dones, extras = env.step(torch.zeros(env.num_envs, env.num_actions))
    assert torch.equal(obs["policy"], venv.get_observations())
    assert torch.equal(obs["critic"], venv.get_privileged_observations())
    assert rewards.shape == (env.num_envs,) and dones.dtype == torch.long
    timed = torch.zeros(env.num_envs, dtype=torch.bool)
    timed[TIMED] = True
    assert torch.equal(extras["time_outs"], timed)
    assert torch.all(dones[TIMED] == 1)
    assert torch.all(env.episode_length_buf[TIMED] == 0)
    num_done = int(dones.sum())
    log = extras["log"]
    assert {f"Episode_Reward/{name}" for name in venv.reward_names} <= set(log)
    assert all(v.shape == (num_done,) for v in log.values())


def test_episode_log_weighs_episodes_and_drops_nan():
    dones = torch.tensor([True, False, True])
    episode = {"rew_a": torch.tensor(2.0), "rew_b": torch.tensor(float("nan")), "level": torch.tensor(3.0)}
    log = RslRlVecEnv._episode_log(episode, dones)
    assert set(log) == {"Episode_Reward/a", "Episode/level"}
    assert torch.equal(log["Episode_Reward/a"], torch.tensor([2.0, 2.0]))
    assert torch.equal(log["Episode/level"], torch.tensor([3.0, 3.0]))
    assert RslRlVecEnv._episode_log(episode, torch.zeros(3, dtype=torch.bool)) == {}
