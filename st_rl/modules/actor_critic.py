"""Gaussian actor-critic with MLP actor and critic.

Observation normalisation (``obs_normalization=True``): the actor and critic normalisers live in
this module, so ``state_dict`` checkpoints and the exported policy carry their statistics.
Scheme: every forward path (``act``, ``act_inference``, ``evaluate``) only *applies* the
normalisers; the statistics change only through :meth:`update_normalization`, which the algorithm
calls exactly once per collected environment step. PPO update epochs therefore never move them.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Normal

from st_rl.modules.mlp import MlpModel
from st_rl.modules.normalizer import EmpiricalNormalization, Normalize


class ActorCritic(nn.Module):
    """Actor ``(N, num_actor_obs) -> action mean (N, num_actions)``, critic ``(N, num_critic_obs) -> (N, 1)``.

    The action distribution is a diagonal Normal with a learned, state-independent std.
    """

    is_recurrent = False

    def __init__(
        self,
        num_actor_obs: int,
        num_critic_obs: int,
        num_actions: int,
        actor_hidden_dims: Sequence[int] = (512, 256, 128),
        critic_hidden_dims: Sequence[int] = (512, 256, 128),
        activation: str = "elu",
        init_noise_std: float = 1.0,
        obs_normalization: bool = False,
        obs_segments: OrderedDict[str, tuple[int, ...]] | None = None,
        privileged_obs_segments: OrderedDict[str, tuple[int, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.num_actor_obs = num_actor_obs
        self.num_critic_obs = num_critic_obs
        self.num_actions = num_actions
        self.obs_segments = obs_segments
        self.privileged_obs_segments = privileged_obs_segments
        self.actor = MlpModel(num_actor_obs, list(actor_hidden_dims), num_actions, activation)
        self.critic = MlpModel(num_critic_obs, list(critic_hidden_dims), 1, activation)
        self.std = nn.Parameter(init_noise_std * torch.ones(num_actions))
        self.obs_normalization = obs_normalization
        if obs_normalization:
            self.actor_obs_normalizer: nn.Module = EmpiricalNormalization(num_actor_obs)
            self.critic_obs_normalizer: nn.Module = EmpiricalNormalization(num_critic_obs)
        else:
            self.actor_obs_normalizer = nn.Identity()
            self.critic_obs_normalizer = nn.Identity()
        self.distribution: Normal | None = None

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Reset per-env internal state of envs where ``dones`` ``(N,)``; nothing to do for a feed-forward policy."""

    # --- normalisation -------------------------------------------------------------------------------------------
    def _normalize_actor(self, obs: torch.Tensor) -> torch.Tensor:
        if self.obs_normalization:
            return self.actor_obs_normalizer.normalize(obs)
        return obs

    def _normalize_critic(self, critic_obs: torch.Tensor) -> torch.Tensor:
        if self.obs_normalization:
            return self.critic_obs_normalizer.normalize(critic_obs)
        return critic_obs

    @torch.no_grad()
    def update_normalization(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> None:
        """Merge one collected step into the normaliser statistics: ``obs (N, num_actor_obs)``,
        ``critic_obs (N, num_critic_obs)``. No-op without ``obs_normalization``."""
        if self.obs_normalization:
            self.actor_obs_normalizer.update(obs)
            self.critic_obs_normalizer.update(critic_obs)

    # --- actor -----------------------------------------------------------------------------------------------------
    def update_distribution(self, obs: torch.Tensor) -> None:
        """Set ``self.distribution`` from ``obs`` ``(N, num_actor_obs)``."""
        mean = self.actor(self._normalize_actor(obs))
        self.distribution = Normal(mean, self.std.expand_as(mean), validate_args=False)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Sample actions ``(N, num_actions)`` for ``obs`` ``(N, num_actor_obs)`` (also sets the distribution)."""
        self.update_distribution(obs)
        return self.distribution.sample()

    def act_inference(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic actions (the distribution mean) ``(N, num_actions)``."""
        return self.actor(self._normalize_actor(obs))

    def get_actions_log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability ``(N,)`` of ``actions`` ``(N, num_actions)`` under the current distribution."""
        return self.distribution.log_prob(actions).sum(dim=-1)

    @property
    def action_mean(self) -> torch.Tensor:
        """``(N, num_actions)`` mean of the current distribution."""
        return self.distribution.mean

    @property
    def action_std(self) -> torch.Tensor:
        """``(N, num_actions)`` std of the current distribution."""
        return self.distribution.stddev

    @property
    def entropy(self) -> torch.Tensor:
        """``(N,)`` entropy of the current distribution."""
        return self.distribution.entropy().sum(dim=-1)

    @torch.no_grad()
    def clip_std(self, min: float | None = None, max: float | None = None) -> None:
        """Clamp the learned std in place to ``[min, max]``."""
        self.std.clamp_(min=min, max=max)

    # --- critic ----------------------------------------------------------------------------------------------------
    def evaluate(self, critic_obs: torch.Tensor) -> torch.Tensor:
        """Value estimate ``(N, 1)`` for ``critic_obs`` ``(N, num_critic_obs)``."""
        return self.critic(self._normalize_critic(critic_obs))

    # --- export ----------------------------------------------------------------------------------------------------
    def export_module(self) -> nn.Module:
        """A standalone deterministic policy ``(B, num_actor_obs) -> (B, num_actions)`` with the current
        normaliser statistics frozen in; a copy, scriptable with ``torch.jit.script``."""
        layers: list[nn.Module] = []
        if self.obs_normalization:
            layers.append(Normalize.frozen(self.actor_obs_normalizer))
        layers.append(copy.deepcopy(self.actor))
        return nn.Sequential(*layers).eval()
