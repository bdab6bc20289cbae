"""A tiny pure-torch VecEnv for estimator / adaptor tests: a 2-D point mass with inertia and per-env friction.

Dynamics (``a = clip(action, -1, 1)``, ``f`` the env's friction, drawn in ``[0.2, 1.0]`` at reset)::

    vel <- vel * (1 - damping * f) + dt * accel * a
    pos <- pos + dt * vel

Reward ``rew_reach = exp(-|pos - target|^2 / 0.1)``. Episodes time out after ``max_episode_length`` steps and
terminate when the point leaves the box ``|pos| > 2``.

Observation segments (actor and critic share names and order):
``pos (2,)``, ``last_pos (2,)``, ``target (2,)``, ``last_action (2,)``, ``base_lin_vel (2,)``, ``friction (1,)``.
The actor's ``base_lin_vel`` is a noisy measurement (``vel + lin_vel_noise * N(0, 1)``); the critic's is the
true ``vel``, which is learnable from ``(pos - last_pos) / dt``. ``friction`` is the true value in both (as an
env puts a privileged parameter in the actor observation during training); it shows in how the velocity
responds to actions over time, so a recurrent adaptor can learn it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from st_rl.env.vec_env import VecEnv

SEGMENTS = OrderedDict(
    [
        ("pos", (2,)),
        ("last_pos", (2,)),
        ("target", (2,)),
        ("last_action", (2,)),
        ("base_lin_vel", (2,)),
        ("friction", (1,)),
    ]
)


class VelocityEnv(VecEnv):
    """See the module docstring; ``lin_vel_noise`` is the std of the actor's velocity measurement noise."""

    def __init__(
        self, num_envs: int = 8, max_episode_length: int = 20, lin_vel_noise: float = 1.0, seed: int = 0
    ) -> None:
        self.num_envs = num_envs
        self.num_actions = 2
        self.max_episode_length = max_episode_length
        self.device = torch.device("cpu")
        self.cfg = {"num_envs": num_envs, "max_episode_length": max_episode_length, "lin_vel_noise": lin_vel_noise}
        self.obs_segments = OrderedDict(SEGMENTS)
        self.privileged_obs_segments = OrderedDict(SEGMENTS)
        self.num_obs = self.num_privileged_obs = 11
        self.dt, self.accel, self.damping, self.lin_vel_noise = 0.1, 2.0, 0.5, lin_vel_noise
        self.generator = torch.Generator().manual_seed(seed)
        self.pos = torch.zeros(num_envs, 2)
        self.last_pos = torch.zeros(num_envs, 2)
        self.vel = torch.zeros(num_envs, 2)
        self.target = torch.zeros(num_envs, 2)
        self.last_action = torch.zeros(num_envs, 2)
        self.friction = torch.zeros(num_envs, 1)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.episode_sums = torch.zeros(num_envs)
        self._reset_envs(torch.arange(num_envs))

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def _reset_envs(self, env_ids: torch.Tensor) -> None:
        n = len(env_ids)
        self.pos[env_ids] = self._rand(n, 2) * 2 - 1
        self.last_pos[env_ids] = self.pos[env_ids]
        self.vel[env_ids] = 0.0
        self.target[env_ids] = self._rand(n, 2) * 2 - 1
        self.last_action[env_ids] = 0.0
        self.friction[env_ids] = 0.2 + 0.8 * self._rand(n, 1)
        self.episode_length_buf[env_ids] = 0
        self.episode_sums[env_ids] = 0

    def _obs(self, vel: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pos, self.last_pos, self.target, self.last_action, vel, self.friction], dim=-1)

    def get_observations(self) -> torch.Tensor:
        noise = self.lin_vel_noise * torch.randn(self.num_envs, 2, generator=self.generator)
        return self._obs(self.vel + noise)

    def get_privileged_observations(self) -> torch.Tensor:
        return self._obs(self.vel)

    def reset(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._reset_envs(torch.arange(self.num_envs))
        return self.get_observations(), self.get_privileged_observations()

    def step(self, actions: torch.Tensor):
        action = actions.clamp(-1.0, 1.0)
        self.last_pos = self.pos
        self.vel = self.vel * (1.0 - self.damping * self.friction) + self.dt * self.accel * action
        self.pos = self.pos + self.dt * self.vel
        self.last_action = action
        self.episode_length_buf += 1
        rewards = torch.exp(-(self.pos - self.target).pow(2).sum(dim=-1) / 0.1)
        self.episode_sums += rewards
        terminated = (self.pos.abs() > 2.0).any(dim=-1)
        time_outs = (self.episode_length_buf >= self.max_episode_length) & ~terminated
        dones = terminated | time_outs
        final_critic_obs = self.get_privileged_observations()
        episode = {}
        env_ids = dones.nonzero().flatten()
        if len(env_ids) > 0:
            episode["rew_reach"] = self.episode_sums[env_ids].mean()
            self._reset_envs(env_ids)
        infos = {"time_outs": time_outs, "episode": episode, "final_critic_obs": final_critic_obs}
        return self.get_observations(), self.get_privileged_observations(), rewards, dones, infos
