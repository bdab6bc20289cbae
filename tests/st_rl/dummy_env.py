"""A tiny pure-torch VecEnv for learner tests: a 2-D point mass that must move to a target.

Dynamics: ``pos += dt * max_speed * clip(action, -1, 1)``. Reward ``rew_reach = exp(-|pos - target|^2 / 0.1)``.
Episodes time out after ``max_episode_length`` steps and terminate when the point leaves the box ``|pos| > 2``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from st_rl.env.vec_env import VecEnv


class PointMassEnv(VecEnv):
    """Obs segments ``pos (2,)``, ``target (2,)``; with ``privileged=True`` the critic also sees ``dist (1,)``."""

    def __init__(
        self, num_envs: int = 16, max_episode_length: int = 40, privileged: bool = False, seed: int = 0
    ) -> None:
        self.num_envs = num_envs
        self.num_actions = 2
        self.max_episode_length = max_episode_length
        self.device = torch.device("cpu")
        self.cfg = {"num_envs": num_envs, "max_episode_length": max_episode_length, "privileged": privileged}
        self.obs_segments = OrderedDict([("pos", (2,)), ("target", (2,))])
        self.num_obs = 4
        if privileged:
            self.privileged_obs_segments = OrderedDict([("pos", (2,)), ("target", (2,)), ("dist", (1,))])
            self.num_privileged_obs = 5
        else:
            self.privileged_obs_segments = None
            self.num_privileged_obs = None
        self.dt = 0.1
        self.max_speed = 1.0
        self.generator = torch.Generator().manual_seed(seed)
        self.pos = torch.zeros(num_envs, 2)
        self.target = torch.zeros(num_envs, 2)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.episode_sums = torch.zeros(num_envs)
        self._reset_envs(torch.arange(num_envs))

    def _reset_envs(self, env_ids: torch.Tensor) -> None:
        n = len(env_ids)
        self.pos[env_ids] = torch.rand(n, 2, generator=self.generator) * 2 - 1
        self.target[env_ids] = torch.rand(n, 2, generator=self.generator) * 2 - 1
        self.episode_length_buf[env_ids] = 0
        self.episode_sums[env_ids] = 0

    def get_observations(self) -> torch.Tensor:
        return torch.cat([self.pos, self.target], dim=-1)

    def get_privileged_observations(self) -> torch.Tensor | None:
        if self.num_privileged_obs is None:
            return None
        dist = (self.pos - self.target).norm(dim=-1, keepdim=True)
        return torch.cat([self.pos, self.target, dist], dim=-1)

    def _critic_obs(self) -> torch.Tensor:
        privileged = self.get_privileged_observations()
        return privileged if privileged is not None else self.get_observations()

    def reset(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._reset_envs(torch.arange(self.num_envs))
        return self.get_observations(), self.get_privileged_observations()

    def step(self, actions: torch.Tensor):
        self.pos = self.pos + self.dt * self.max_speed * actions.clamp(-1.0, 1.0)
        self.episode_length_buf += 1
        rewards = torch.exp(-(self.pos - self.target).pow(2).sum(dim=-1) / 0.1)
        self.episode_sums += rewards
        terminated = (self.pos.abs() > 2.0).any(dim=-1)
        time_outs = (self.episode_length_buf >= self.max_episode_length) & ~terminated
        dones = terminated | time_outs
        final_critic_obs = self._critic_obs().clone()
        episode = {}
        env_ids = dones.nonzero().flatten()
        if len(env_ids) > 0:
            episode["rew_reach"] = self.episode_sums[env_ids].mean()
            self._reset_envs(env_ids)
        infos = {"time_outs": time_outs, "episode": episode, "final_critic_obs": final_critic_obs}
        return self.get_observations(), self.get_privileged_observations(), rewards, dones, infos
