"""A pure-torch VecEnv with every kind of observation segment a policy class may need (for tests and the
policy matrix): a damped 2-D point mass that must reach a target it only sees in an image.

Actor segments: ``pos (2,)``, ``base_lin_vel (2,)`` (noisy), ``friction (1,)`` (the damping; true value,
as a privileged adaptor's training input), ``last_action (2,)``, ``height_scan (1, 3, 3)`` (a terrain
height grid around the point), ``target_image (1, 6, 6)`` (the target drawn as a bright pixel: the only
place the actor learns where the target is). Critic (privileged) segments: ``pos``, clean
``base_lin_vel``, ``friction``, ``target (2,)``, ``height_scan``. AMP segments: ``pos``, ``base_lin_vel``, with
the AMP contract of :mod:`st_rl.algorithms.appo`: ``infos["amp_obs"]`` is the AMP observation after any auto-reset
(aligned with ``obs``), ``infos["final_amp_obs"]`` the one of the final state before it (equal to ``amp_obs``
where not done). Reward ``exp(-|pos - target|^2 / 0.1)``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from st_rl.env.vec_env import VecEnv

IMAGE = 6


class SegmentsEnv(VecEnv):
    def __init__(self, num_envs: int = 16, max_episode_length: int = 30, seed: int = 0) -> None:
        self.num_envs = num_envs
        self.num_actions = 2
        self.max_episode_length = max_episode_length
        self.device = torch.device("cpu")
        self.cfg = {"num_envs": num_envs, "max_episode_length": max_episode_length}
        self.obs_segments = OrderedDict(
            [
                ("pos", (2,)),
                ("base_lin_vel", (2,)),
                ("friction", (1,)),
                ("last_action", (2,)),
                ("height_scan", (1, 3, 3)),
                ("target_image", (1, IMAGE, IMAGE)),
            ]
        )
        self.privileged_obs_segments = OrderedDict(
            [("pos", (2,)), ("base_lin_vel", (2,)), ("friction", (1,)), ("target", (2,)), ("height_scan", (1, 3, 3))]
        )
        self.amp_obs_segments = OrderedDict([("pos", (2,)), ("base_lin_vel", (2,))])
        self.num_obs = 2 + 2 + 1 + 2 + 9 + IMAGE * IMAGE
        self.num_privileged_obs = 2 + 2 + 1 + 2 + 9
        self.dt = 0.1
        self.generator = torch.Generator().manual_seed(seed)
        self.pos = torch.zeros(num_envs, 2)
        self.vel = torch.zeros(num_envs, 2)
        self.target = torch.zeros(num_envs, 2)
        self.friction = torch.zeros(num_envs, 1)
        self.last_action = torch.zeros(num_envs, 2)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.episode_sums = torch.zeros(num_envs)
        self._reset_envs(torch.arange(num_envs))

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def _reset_envs(self, env_ids: torch.Tensor) -> None:
        n = len(env_ids)
        self.pos[env_ids] = self._rand(n, 2) * 2 - 1
        self.vel[env_ids] = 0.0
        self.target[env_ids] = self._rand(n, 2) * 2 - 1
        self.friction[env_ids] = 0.5 + 2.0 * self._rand(n, 1)
        self.last_action[env_ids] = 0.0
        self.episode_length_buf[env_ids] = 0
        self.episode_sums[env_ids] = 0.0

    def _height_scan(self) -> torch.Tensor:
        offsets = torch.linspace(-0.2, 0.2, 3)
        x = self.pos[:, 0, None, None] + offsets[None, :, None]
        y = self.pos[:, 1, None, None] + offsets[None, None, :]
        return (0.1 * torch.sin(3 * x) * torch.cos(2 * y)).reshape(-1, 9)

    def _target_image(self) -> torch.Tensor:
        cell = ((self.target + 1) / 2 * IMAGE).long().clamp(0, IMAGE - 1)
        image = torch.zeros(self.num_envs, IMAGE, IMAGE)
        image[torch.arange(self.num_envs), cell[:, 0], cell[:, 1]] = 1.0
        return image.reshape(-1, IMAGE * IMAGE)

    def get_observations(self) -> torch.Tensor:
        noisy_vel = self.vel + 0.1 * torch.randn(self.num_envs, 2, generator=self.generator)
        parts = [self.pos, noisy_vel, self.friction, self.last_action, self._height_scan(), self._target_image()]
        return torch.cat(parts, dim=-1)

    def get_privileged_observations(self) -> torch.Tensor:
        return torch.cat([self.pos, self.vel, self.friction, self.target, self._height_scan()], dim=-1)

    def amp_observations(self) -> torch.Tensor:
        return torch.cat([self.pos, self.vel], dim=-1)

    STATE = ("pos", "vel", "target", "friction", "last_action", "episode_length_buf", "episode_sums")

    def get_env_state(self) -> dict[str, torch.Tensor]:
        """Per-env state plus the generator's (on one row: only for a resume with the same number of processes)."""
        state = {name: getattr(self, name).clone() for name in self.STATE}
        state["generator"] = self.generator.get_state().unsqueeze(0)
        return state

    def set_env_state(self, state: dict[str, torch.Tensor]) -> None:
        for name in self.STATE:
            setattr(self, name, state[name].clone())
        self.generator.set_state(state["generator"][0].clone())

    def reset(self):
        self._reset_envs(torch.arange(self.num_envs))
        return self.get_observations(), self.get_privileged_observations()

    def step(self, actions: torch.Tensor):
        actions = actions.clamp(-1.0, 1.0)
        self.vel = self.vel * (1 - self.friction * self.dt) + self.dt * 4.0 * actions
        self.pos = self.pos + self.dt * self.vel
        self.last_action = actions
        self.episode_length_buf += 1
        rewards = torch.exp(-(self.pos - self.target).pow(2).sum(dim=-1) / 0.1)
        self.episode_sums += rewards
        terminated = (self.pos.abs() > 2.0).any(dim=-1)
        time_outs = (self.episode_length_buf >= self.max_episode_length) & ~terminated
        dones = terminated | time_outs
        final_critic_obs = self.get_privileged_observations()
        final_amp_obs = self.amp_observations()
        episode = {}
        env_ids = dones.nonzero().flatten()
        if len(env_ids) > 0:
            episode["rew_reach"] = self.episode_sums[env_ids].mean()
            self._reset_envs(env_ids)
        infos = {
            "time_outs": time_outs,
            "episode": episode,
            "final_critic_obs": final_critic_obs,
            "amp_obs": self.amp_observations(),
            "final_amp_obs": final_amp_obs,
        }
        return self.get_observations(), self.get_privileged_observations(), rewards, dones, infos
