"""A tiny pure-torch VecEnv with an image observation, for tests of visual / encoder policies.

A 2-D point mass must move to a target that the actor sees only in a small image: the target is drawn as a
bright Gaussian blob on a ``(1, H, W)`` picture of the box ``[-1, 1]^2`` (columns = x, rows = y). Dynamics
``pos += dt * clip(action, -1, 1)``, reward ``exp(-|pos - target|^2 / reward_scale)``; episodes time out after
``max_episode_length`` steps and terminate when the point leaves ``|pos| > 2``.

Actor segments: ``proprio (2,)`` (the position), ``image (1, H, W)``, ``height_map (1, rows, cols)`` (a fixed
smooth terrain sampled on a grid around the point; irrelevant to the reward). With ``privileged=True`` the
critic sees ``proprio``, ``target (2,)``, ``height_map`` and, with ``privileged_image=True``, also ``image``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from st_rl.algorithms.ppo import PPO
from st_rl.env.vec_env import VecEnv


class ImageTargetEnv(VecEnv):
    """See the module docstring. ``blob_sigma`` is the blob's std in world units.

    Reference returns (mean reward per step, default settings): moving straight to the target ~0.87; the best
    policy that ignores the image (move to the centre) ~0.35; standing still ~0.25.
    """

    def __init__(
        self,
        num_envs: int = 16,
        max_episode_length: int = 30,
        image_hw: tuple[int, int] = (12, 16),
        height_map_hw: tuple[int, int] = (3, 4),
        privileged: bool = False,
        privileged_image: bool = False,
        blob_sigma: float = 0.3,
        reward_scale: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.num_envs = num_envs
        self.num_actions = 2
        self.max_episode_length = max_episode_length
        self.device = torch.device("cpu")
        self.cfg = {"num_envs": num_envs, "max_episode_length": max_episode_length, "privileged": privileged}
        h, w = image_hw
        rows, cols = height_map_hw
        self.obs_segments = OrderedDict([("proprio", (2,)), ("image", (1, h, w)), ("height_map", (1, rows, cols))])
        self.num_obs = 2 + h * w + rows * cols
        if privileged:
            segments = [("proprio", (2,)), ("target", (2,)), ("height_map", (1, rows, cols))]
            if privileged_image:
                segments.append(("image", (1, h, w)))
            self.privileged_obs_segments = OrderedDict(segments)
            self.num_privileged_obs = 4 + rows * cols + (h * w if privileged_image else 0)
        else:
            self.privileged_obs_segments = None
            self.num_privileged_obs = None
        self.privileged_image = privileged_image
        self.dt = 0.1
        self.blob_sigma = blob_sigma
        self.reward_scale = reward_scale
        # pixel centres of the picture of [-1, 1]^2: (H, W) grids of x and y
        ys = -1.0 + (torch.arange(h) + 0.5) * 2.0 / h
        xs = -1.0 + (torch.arange(w) + 0.5) * 2.0 / w
        self.pixel_y, self.pixel_x = torch.meshgrid(ys, xs, indexing="ij")
        # height-map sample offsets around the point: (rows, cols) grid, 0.2 apart
        oy = (torch.arange(rows) - (rows - 1) / 2) * 0.2
        ox = (torch.arange(cols) - (cols - 1) / 2) * 0.2
        self.offset_y, self.offset_x = torch.meshgrid(oy, ox, indexing="ij")
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

    def render_image(self, target: torch.Tensor) -> torch.Tensor:
        """``(N, H*W)`` flat images of the blob at ``target`` ``(N, 2)``."""
        dx = self.pixel_x.unsqueeze(0) - target[:, 0].view(-1, 1, 1)
        dy = self.pixel_y.unsqueeze(0) - target[:, 1].view(-1, 1, 1)
        return torch.exp(-(dx.pow(2) + dy.pow(2)) / (2 * self.blob_sigma**2)).flatten(1)

    def height_map(self) -> torch.Tensor:
        """``(N, rows*cols)`` terrain heights ``0.3 sin(2x) cos(3y)`` around each point."""
        x = self.pos[:, 0].view(-1, 1, 1) + self.offset_x
        y = self.pos[:, 1].view(-1, 1, 1) + self.offset_y
        return (0.3 * torch.sin(2 * x) * torch.cos(3 * y)).flatten(1)

    def get_observations(self) -> torch.Tensor:
        return torch.cat([self.pos, self.render_image(self.target), self.height_map()], dim=-1)

    def get_privileged_observations(self) -> torch.Tensor | None:
        if self.num_privileged_obs is None:
            return None
        parts = [self.pos, self.target, self.height_map()]
        if self.privileged_image:
            parts.append(self.render_image(self.target))
        return torch.cat(parts, dim=-1)

    def _critic_obs(self) -> torch.Tensor:
        privileged = self.get_privileged_observations()
        return privileged if privileged is not None else self.get_observations()

    def reset(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._reset_envs(torch.arange(self.num_envs))
        return self.get_observations(), self.get_privileged_observations()

    def step(self, actions: torch.Tensor):
        self.pos = self.pos + self.dt * actions.clamp(-1.0, 1.0)
        self.episode_length_buf += 1
        rewards = torch.exp(-(self.pos - self.target).pow(2).sum(dim=-1) / self.reward_scale)
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


def train_ppo(ppo: PPO, env: VecEnv, num_iterations: int, num_steps: int = 16) -> list[float]:
    """Run ``num_iterations`` PPO iterations (rollout of ``num_steps`` steps, then ``update()``) on ``env``.

    Returns:
        The mean reward per env step of each iteration's rollout.
    """
    if ppo.storage is None:
        critic_shape = (env.num_privileged_obs,) if env.num_privileged_obs is not None else None
        ppo.init_storage(env.num_envs, num_steps, (env.num_obs,), critic_shape, (env.num_actions,))
    obs = env.get_observations()
    privileged = env.get_privileged_observations()
    critic_obs = privileged if privileged is not None else obs
    mean_rewards = []
    for _ in range(num_iterations):
        total = 0.0
        with torch.inference_mode():
            for _ in range(num_steps):
                actions = ppo.act(obs, critic_obs)
                obs, privileged, rewards, dones, infos = env.step(actions)
                critic_obs = privileged if privileged is not None else obs
                ppo.process_env_step(rewards, dones, infos)
                total += float(rewards.mean())
            ppo.compute_returns(critic_obs)
        ppo.update()
        mean_rewards.append(total / num_steps)
    return mean_rewards
