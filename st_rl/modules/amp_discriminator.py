"""Adversarial Motion Priors (Peng et al. 2021): a least-squares discriminator of AMP transitions and the
policy mixin that carries it.

The discriminator ``D`` scores an AMP transition ``(s, s')`` (two consecutive AMP observations, concatenated):
trained towards ``+1`` on reference (motion-data) transitions and ``-1`` on the policy's, it rewards the policy
with the style reward ``r_style = coef * max(0, 1 - 0.25 * (D(s, s') - 1)^2)``.

:class:`AmpMixin` is a policy mixin (see :mod:`st_rl.modules.actor_critic`) that adds ``self.discriminator``
without touching the actor/critic pipeline: the discriminator is trained by the AMP algorithm, gets no gradient
from the PPO losses, travels with the ``state_dict`` and is left out of the exported policy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from st_rl.modules.actor_critic import ActorCritic, Segments
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.mlp import MlpModel
from st_rl.modules.normalizer import EmpiricalNormalization, Normalizer
from st_rl.utils.config import resolve_kwargs
from st_rl.utils.obs_segments import normalize_segments, segments_num_obs


class AMPDiscriminator(nn.Module):
    """Least-squares discriminator ``(B, input_dim) -> (B, 1)`` over AMP transitions ``x = [s, s']``.

    ``input_dim = 2 * amp_obs_dim``. An MLP trunk (``hidden_dims``, ``activation`` after each layer; none:
    ``D`` is linear) followed by a linear output ``linear``.

    Args:
        style_reward_coef: scale of the style reward (see :meth:`predict_style_reward`).
        task_reward_lerp: ``a`` in ``reward = (1 - a) * style + a * task``, in ``[0, 1]``.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (1024, 512),
        activation: str = "relu",
        style_reward_coef: float = 1.0,
        task_reward_lerp: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= task_reward_lerp <= 1.0:
            raise ValueError(f"task_reward_lerp={task_reward_lerp} is not in [0, 1]")
        self.input_dim = input_dim
        self.trunk = MlpModel(input_dim, list(hidden_dims), None, activation)
        self.linear = nn.Linear(self.trunk.output_size, 1)
        self.style_reward_coef = style_reward_coef
        self.task_reward_lerp = task_reward_lerp

    @property
    def input_weight_name(self) -> str:
        """Name (in this module) of the weight whose last dimension is the transition ``[s, s']``."""
        return "trunk.0.weight" if len(self.trunk) > 0 else "linear.weight"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator score ``(B, 1)`` of transitions ``x`` ``(B, input_dim)``."""
        return self.linear(self.trunk(x))

    def compute_grad_pen(
        self, expert_state: torch.Tensor, expert_next_state: torch.Tensor, lambda_: float = 10.0
    ) -> torch.Tensor:
        """Gradient penalty on expert transitions: ``lambda_ * mean_B(||dD/dx||^2)``, ``x = [s, s']``.

        Args:
            expert_state, expert_next_state: ``(B, amp_obs_dim)`` reference transitions.

        Returns:
            A scalar, differentiable w.r.t. the discriminator's parameters (the input gradient is built with
            ``create_graph=True``), to be added to the discriminator loss.
        """
        x = torch.cat([expert_state, expert_next_state], dim=-1).detach().requires_grad_(True)
        d = self(x)
        (grad,) = torch.autograd.grad(d.sum(), x, create_graph=True)
        return lambda_ * grad.pow(2).sum(dim=-1).mean()

    def predict_style_reward(
        self,
        state: torch.Tensor,
        next_state: torch.Tensor,
        task_reward: torch.Tensor,
        normalizer: Normalizer | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Style reward of the policy's transitions and its blend with the task reward (no gradient).

        With ``d = D([s, s'])`` (``s``, ``s'`` first normalised by ``normalizer`` if given):

        - ``style = style_reward_coef * clamp(1 - 0.25 * (d - 1)^2, min=0)`` (1 at ``d = 1``, "looks like the
          reference", 0 at ``d <= -1``, "looks like the policy");
        - ``reward = (1 - task_reward_lerp) * style + task_reward_lerp * task_reward``.

        Args:
            state, next_state: ``(B, amp_obs_dim)`` raw AMP observations before and after the step.
            task_reward: ``(B,)`` (or ``(B, 1)``) environment reward.
            normalizer: the AMP observation :class:`~st_rl.modules.normalizer.Normalizer`, or None.

        Returns:
            ``(reward (B,), style_reward (B,))``.
        """
        with torch.no_grad():
            device = self.linear.weight.device
            if normalizer is not None:
                state = normalizer.normalize_torch(state, device)
                next_state = normalizer.normalize_torch(next_state, device)
            d = self(torch.cat([state, next_state], dim=-1)).squeeze(-1)
            style_reward = self.style_reward_coef * torch.clamp(1.0 - 0.25 * (d - 1.0).pow(2), min=0.0)
            task_reward = task_reward.to(device).reshape(style_reward.shape)
            reward = (1.0 - self.task_reward_lerp) * style_reward + self.task_reward_lerp * task_reward
        return reward, style_reward


def least_squares_discriminator_loss(
    expert_d: torch.Tensor, policy_d: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Least-squares GAN loss of the discriminator: ``mean((D_expert - 1)^2) + mean((D_policy + 1)^2)``.

    Args:
        expert_d, policy_d: discriminator scores ``(B, 1)`` of reference and policy transitions.

    Returns:
        The loss (add :meth:`AMPDiscriminator.compute_grad_pen` to it) and metrics ``expert_d`` / ``policy_d``
        (mean scores) and ``accuracy`` (fraction of both sets on the right side of 0).
    """
    loss = (expert_d - 1.0).pow(2).mean() + (policy_d + 1.0).pow(2).mean()
    with torch.no_grad():
        correct = torch.cat([(expert_d > 0).flatten(), (policy_d < 0).flatten()]).float()
        metrics = {"expert_d": expert_d.mean(), "policy_d": policy_d.mean(), "accuracy": correct.mean()}
    return loss, metrics


class AmpMixin:
    """Adds an :class:`AMPDiscriminator` over ``(s, s')`` AMP transitions as ``self.discriminator``, and the
    running normaliser of its inputs as ``self.amp_normalizer`` (an
    :class:`~st_rl.modules.normalizer.EmpiricalNormalization` of one AMP observation, ``num_amp_obs`` wide).

    Not a feature stage: the actor/critic layouts, features and exported stages are passed through unchanged,
    so the exported policy has no discriminator parameters. The discriminator is a submodule (it moves with
    ``.to()``, is saved in the ``state_dict``), trained by the AMP algorithm; plain PPO gives it no gradient.

    Args:
        amp_discriminator_kwargs: keyword arguments of :class:`AMPDiscriminator` (``hidden_dims``,
            ``activation``, ``style_reward_coef``, ``task_reward_lerp``); None: its defaults.
        amp_obs_segments: set from the environment (its ``amp_obs`` segment group): the layout of one AMP
            observation ``s``; the discriminator's input is ``[s, s']``, ``2 * num_amp_obs`` wide.
    """

    def __init__(
        self,
        *args,
        amp_discriminator_kwargs: dict[str, Any] | None = None,
        amp_obs_segments: Segments | None = None,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
        **kwargs,
    ) -> None:
        if amp_obs_segments is None:
            raise ValueError(
                f"{type(self).__name__} needs amp_obs_segments: the env must provide an 'amp_obs' segment group "
                "(the layout of its AMP observation)"
            )
        amp_obs_segments = normalize_segments(amp_obs_segments)
        num_amp_obs = segments_num_obs(amp_obs_segments)
        if num_amp_obs <= 0:
            raise ValueError(f"amp_obs_segments {dict(amp_obs_segments)} are empty (need at least one entry)")
        discriminator_kwargs = resolve_kwargs(
            AMPDiscriminator,
            amp_discriminator_kwargs or {},
            "policy.amp_discriminator_kwargs",
            "policy config",
            exclude={"input_dim"},
        )
        super().__init__(
            *args,
            actor_feature_segments=actor_feature_segments,
            critic_feature_segments=critic_feature_segments,
            **kwargs,
        )
        self.amp_obs_segments = amp_obs_segments
        self.num_amp_obs = num_amp_obs
        self.amp_discriminator_kwargs = discriminator_kwargs
        self.discriminator = AMPDiscriminator(2 * num_amp_obs, **discriminator_kwargs)
        # Running statistics of the AMP observations (policy and reference), updated by the AMP algorithm; a
        # submodule so they are saved in checkpoints with the policy (never exported: not an actor stage).
        self.amp_normalizer = EmpiricalNormalization(num_amp_obs)

    def obs_layouts(self) -> dict[str, Segments]:
        """Adds the discriminator's input weight, laid out as ``state.<segment>`` then ``next_state.<segment>``,
        and the AMP normaliser's statistics, laid out as ``amp_obs_segments``."""
        layouts = super().obs_layouts()
        transition = OrderedDict(
            [
                (f"{prefix}.{name}", shape)
                for prefix in ("state", "next_state")
                for name, shape in self.amp_obs_segments.items()
            ]
        )
        layouts[f"discriminator.{self.discriminator.input_weight_name}"] = transition
        for buffer in ("_mean", "_var", "_std"):
            layouts[f"amp_normalizer.{buffer}"] = self.amp_obs_segments
        return layouts


class AmpActorCritic(AmpMixin, ActorCritic):
    """:class:`ActorCritic` with an AMP discriminator."""


class AmpActorCriticRecurrent(AmpMixin, ActorCriticRecurrent):
    """:class:`ActorCriticRecurrent` with an AMP discriminator."""
