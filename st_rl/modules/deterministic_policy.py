"""Deterministic acting: ``act()`` returns the action distribution's mean instead of a sample.

Meant for distillation (a student imitating a teacher, where sampling noise only blurs the targets) and for
evaluation / rollouts of a trained policy. The distribution is still set by ``act()``, so log-probs, entropy,
``action_mean`` / ``action_std`` and the KL of the adaptive learning-rate schedule all work as usual.

Under PPO this policy explores nothing: the stored actions are the means, so the surrogate's gradient with
respect to the mean is zero at the rollout parameters (``d log N(a; mu, s) / d mu = (a - mu) / s^2 = 0``);
only the std (entropy bonus) and the critic learn. Do not train it with PPO from scratch.
"""

from __future__ import annotations

import torch

from st_rl.modules.actor_critic import HiddenStates


class DeterministicPolicyMixin:
    """``act`` returns the mean ``(N, num_actions)``; everything else is the next class's. No constructor keywords.

    Compose before the base: ``class X(DeterministicPolicyMixin, ActorCritic)`` (anywhere before the base class;
    it is not a feature stage, so its place among the stage mixins does not matter).
    """

    def act(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """The distribution mean ``(N, num_actions)`` for ``obs`` ``(N, num_actor_obs)``; sets the distribution."""
        self.update_distribution(obs, masks, hidden_states)
        return self.distribution.mean
