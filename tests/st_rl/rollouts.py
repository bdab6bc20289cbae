"""Collecting one rollout with an algorithm on a torch test env, as the runner does (without its checks)."""

import torch

from st_rl.algorithms.ppo import PPO
from st_rl.env.vec_env import VecEnv


def collect_rollout(alg: PPO, env: VecEnv, steps: int) -> None:
    """``steps`` env steps from the env's current observations into ``alg.storage``, then the returns."""
    obs, critic_obs = env.get_observations(), env.get_privileged_observations()
    with torch.inference_mode():
        for _ in range(steps):
            actions = alg.act(obs, critic_obs)
            obs, critic_obs, rewards, dones, infos = env.step(actions)
            alg.process_env_step(rewards, dones, infos)
        alg.compute_returns(critic_obs)
