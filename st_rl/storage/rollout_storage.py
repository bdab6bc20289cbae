"""Fixed-size on-policy rollout buffer with GAE.

Shapes: ``T = num_transitions_per_env`` (time), ``N = num_envs``; every stored tensor is ``[T, N, ...]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from st_rl.utils.distributed import DistributedContext
from st_rl.utils.trajectories import split_and_pad_trajectories, trajectory_start_states


@dataclass
class Transition:
    """One environment step of every env, filled in by the algorithm before ``add_transitions``.

    Attributes (``N = num_envs``): observations ``(N, O)``, critic_observations ``(N, C) | None``,
    actions ``(N, A)``, rewards ``(N,)``, dones ``(N,)``, values ``(N, 1)``, actions_log_prob ``(N,)``,
    action_mean ``(N, A)``, action_sigma ``(N, A)``, hidden_states ``name -> (S, N, H)`` (the policy's
    recurrent states *before* this step; empty for a feed-forward policy), labels ``name -> (N, ...)`` (per-step
    targets an algorithm keeps beside the rollout, e.g. TPPO's teacher actions; stored under the same name).
    """

    observations: torch.Tensor | None = None
    critic_observations: torch.Tensor | None = None
    actions: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    dones: torch.Tensor | None = None
    values: torch.Tensor | None = None
    actions_log_prob: torch.Tensor | None = None
    action_mean: torch.Tensor | None = None
    action_sigma: torch.Tensor | None = None
    hidden_states: dict[str, torch.Tensor] | None = None
    substitution_masks: dict[str, torch.Tensor] | None = None
    labels: dict[str, torch.Tensor] | None = None

    def clear(self) -> None:
        """Forget every field."""
        self.__init__()


class Batch(NamedTuple):
    """One mini-batch of ``B = T * N / num_mini_batches`` samples.

    Log-probs, values, returns and advantages are ``(B, 1)``.

    Recurrent (from :meth:`RolloutStorage.recurrent_mini_batch_generator`, ``n = N / num_mini_batches`` envs):
    observations and critic_observations are padded trajectories ``(T, num_traj, .)``, ``masks`` is
    ``(T, num_traj)``, ``hidden_states`` holds each state at the trajectory starts ``(S, num_traj, H)``,
    and every other field is ``(T, n, .)`` in rollout order (what the policy's unpadded outputs align with).

    ``substitution_masks`` ``name -> (B, 1)`` bool (recurrent: padded ``(T, num_traj, 1)``, like the observations):
    the stage choices recorded at rollout time, to be used again for this batch.

    ``labels`` ``name -> (B, ...)`` (recurrent: ``(T, n, ...)`` in rollout order, like ``actions``): the per-step
    targets stored with :attr:`Transition.labels`.
    """

    observations: torch.Tensor
    critic_observations: torch.Tensor
    actions: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    old_actions_log_prob: torch.Tensor
    old_mu: torch.Tensor
    old_sigma: torch.Tensor
    masks: torch.Tensor | None = None
    hidden_states: dict[str, torch.Tensor] | None = None
    substitution_masks: dict[str, torch.Tensor] | None = None
    labels: dict[str, torch.Tensor] | None = None


class RolloutStorage:
    """Holds ``T`` steps of ``N`` envs and computes returns/advantages with GAE.

    ``dist``: in multi-process training, advantages are normalised with the statistics of all ranks' rollouts.
    """

    def __init__(
        self,
        num_envs: int,
        num_transitions_per_env: int,
        obs_shape: Sequence[int],
        privileged_obs_shape: Sequence[int] | None,
        actions_shape: Sequence[int],
        device: str | torch.device = "cpu",
        dist: DistributedContext | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.dist = dist
        self.num_envs = num_envs
        self.num_transitions_per_env = num_transitions_per_env
        T, N = num_transitions_per_env, num_envs

        def zeros(*shape: int, dtype: torch.dtype = torch.float) -> torch.Tensor:
            return torch.zeros(T, N, *shape, dtype=dtype, device=self.device)

        self.observations = zeros(*obs_shape)
        self.privileged_observations = zeros(*privileged_obs_shape) if privileged_obs_shape is not None else None
        self.actions = zeros(*actions_shape)
        self.rewards = zeros(1)
        self.dones = zeros(1, dtype=torch.bool)
        self.values = zeros(1)
        self.actions_log_prob = zeros(1)
        self.mu = zeros(*actions_shape)
        self.sigma = zeros(*actions_shape)
        self.returns = zeros(1)
        self.advantages = zeros(1)
        # Recurrent states before each step, name -> [T, S, N, H]; allocated when a state first appears
        # (a memory that has not stepped yet is all zeros, which is what the zero-filled buffer holds).
        self.hidden_states: dict[str, torch.Tensor] = {}
        # The policy's per-env stage choices of each step, name -> [T, N, 1] bool; allocated on first use.
        self.substitution_masks: dict[str, torch.Tensor] = {}
        # Per-step targets of an algorithm (Transition.labels), name -> [T, N, ...]; allocated on first use.
        self.labels: dict[str, torch.Tensor] = {}
        self.step = 0

    def add_transitions(self, transition: Transition) -> None:
        """Store one step (all ``N`` envs) at the next time index."""
        if self.step >= self.num_transitions_per_env:
            raise OverflowError("rollout storage is full; call clear() before adding more transitions")
        t = self.step
        self.observations[t].copy_(transition.observations)
        if self.privileged_observations is not None:
            self.privileged_observations[t].copy_(transition.critic_observations)
        self.actions[t].copy_(transition.actions)
        self.rewards[t].copy_(transition.rewards.view(-1, 1))
        self.dones[t].copy_(transition.dones.view(-1, 1))
        self.values[t].copy_(transition.values.view(-1, 1))
        self.actions_log_prob[t].copy_(transition.actions_log_prob.view(-1, 1))
        self.mu[t].copy_(transition.action_mean)
        self.sigma[t].copy_(transition.action_sigma)
        states = transition.hidden_states or {}
        for name, state in states.items():
            if name not in self.hidden_states:
                with torch.inference_mode(False):  # a normal tensor even when the rollout runs in inference mode
                    self.hidden_states[name] = torch.zeros(
                        self.num_transitions_per_env, *state.shape, dtype=state.dtype, device=self.device
                    )
            self.hidden_states[name][t].copy_(state)
        for name, buffer in self.hidden_states.items():
            if name not in states:  # that memory was fully reset: its state is zeros
                buffer[t].zero_()
        for name, mask in (transition.substitution_masks or {}).items():
            if name not in self.substitution_masks:
                with torch.inference_mode(False):
                    self.substitution_masks[name] = torch.zeros(
                        self.num_transitions_per_env, self.num_envs, 1, dtype=torch.bool, device=self.device
                    )
            self.substitution_masks[name][t].copy_(mask.view(-1, 1))
        for name, label in (transition.labels or {}).items():
            if name not in self.labels:
                with torch.inference_mode(False):
                    self.labels[name] = torch.zeros(
                        self.num_transitions_per_env, *label.shape, dtype=label.dtype, device=self.device
                    )
            self.labels[name][t].copy_(label)
        self.step += 1

    def clear(self) -> None:
        """Start a new rollout (old data is overwritten)."""
        self.step = 0

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """Generalised advantage estimation over the stored rollout.

        Args:
            last_values: ``(N, 1)`` value of the observation after the last stored step (``V_T``).
            gamma: discount factor.
            lam: GAE lambda.

        Fills ``self.advantages`` and ``self.returns`` ``[T, N, 1]``. ``d_t`` marks that the episode
        ended at step ``t``, so nothing is bootstrapped across it (time-outs were already bootstrapped
        into ``r_t`` by the algorithm).
        """
        advantage = torch.zeros_like(last_values)
        for t in reversed(range(self.num_transitions_per_env)):
            next_values = last_values if t == self.num_transitions_per_env - 1 else self.values[t + 1]
            not_done = 1.0 - self.dones[t].float()
            # delta_t = r_t + gamma * V_{t+1} * (1 - d_t) - V_t
            delta = self.rewards[t] + gamma * next_values * not_done - self.values[t]
            # A_t = delta_t + gamma * lam * (1 - d_t) * A_{t+1}
            advantage = delta + gamma * lam * not_done * advantage
            self.advantages[t] = advantage
        # R_t = A_t + V_t  (the value-function target)
        torch.add(self.advantages, self.values, out=self.returns)

    def normalized_advantages(self) -> torch.Tensor:
        """Advantages ``[T, N, 1]`` with zero mean and unit std over the whole rollout (of every rank with ``dist``)."""
        if self.dist is not None:
            mean, std = self.dist.mean_std(self.advantages)
        else:
            mean, std = self.advantages.mean(), self.advantages.std()
        return (self.advantages - mean) / (std + 1e-8)

    def mini_batch_generator(self, num_mini_batches: int, num_epochs: int = 1) -> Iterator[Batch]:
        """Yield ``num_epochs * num_mini_batches`` shuffled mini-batches of flattened ``[T * N]`` samples.

        Advantages are normalised over the whole rollout before batching.
        """
        batch_size = self.num_envs * self.num_transitions_per_env
        mini_batch_size = batch_size // num_mini_batches
        if mini_batch_size == 0:
            raise ValueError(f"num_mini_batches={num_mini_batches} exceeds the {batch_size} samples in the rollout")
        observations = self.observations.flatten(0, 1)
        critic_observations = (
            self.privileged_observations.flatten(0, 1) if self.privileged_observations is not None else observations
        )
        flat = {
            "actions": self.actions.flatten(0, 1),
            "values": self.values.flatten(0, 1),
            "advantages": self.normalized_advantages().flatten(0, 1),
            "returns": self.returns.flatten(0, 1),
            "old_actions_log_prob": self.actions_log_prob.flatten(0, 1),
            "old_mu": self.mu.flatten(0, 1),
            "old_sigma": self.sigma.flatten(0, 1),
        }
        substitution_masks = {name: mask.flatten(0, 1) for name, mask in self.substitution_masks.items()}
        labels = {name: label.flatten(0, 1) for name, label in self.labels.items()}
        for _ in range(num_epochs):
            indices = torch.randperm(batch_size, device=self.device)
            for i in range(num_mini_batches):
                idx = indices[i * mini_batch_size : (i + 1) * mini_batch_size]
                yield Batch(
                    observations=observations[idx],
                    critic_observations=critic_observations[idx],
                    substitution_masks={name: mask[idx] for name, mask in substitution_masks.items()},
                    labels={name: label[idx] for name, label in labels.items()},
                    **{name: tensor[idx] for name, tensor in flat.items()},
                )

    def recurrent_mini_batch_generator(self, num_mini_batches: int, num_epochs: int = 1) -> Iterator[Batch]:
        """Yield ``num_epochs * num_mini_batches`` mini-batches of whole trajectories for a recurrent policy.

        Envs are shuffled each epoch and split into ``num_mini_batches`` groups; each group's rollout is cut
        into trajectories at dones and padded (see :class:`Batch`). Advantages are normalised over the whole
        rollout first.
        """
        envs_per_batch = self.num_envs // num_mini_batches
        if envs_per_batch == 0:
            raise ValueError(
                f"num_mini_batches={num_mini_batches} exceeds the {self.num_envs} envs (recurrent batches whole envs)"
            )
        critic_observations = (
            self.privileged_observations if self.privileged_observations is not None else self.observations
        )
        fields = {
            "actions": self.actions,
            "values": self.values,
            "advantages": self.normalized_advantages(),
            "returns": self.returns,
            "old_actions_log_prob": self.actions_log_prob,
            "old_mu": self.mu,
            "old_sigma": self.sigma,
        }
        for _ in range(num_epochs):
            env_order = torch.randperm(self.num_envs, device=self.device)
            for i in range(num_mini_batches):
                envs = env_order[i * envs_per_batch : (i + 1) * envs_per_batch]
                dones = self.dones[:, envs, 0]
                observations, masks = split_and_pad_trajectories(self.observations[:, envs], dones)
                critic_padded, _ = split_and_pad_trajectories(critic_observations[:, envs], dones)
                yield Batch(
                    observations=observations,
                    critic_observations=critic_padded,
                    masks=masks,
                    hidden_states={
                        name: trajectory_start_states(states[:, :, envs], dones)
                        for name, states in self.hidden_states.items()
                    },
                    substitution_masks={
                        name: split_and_pad_trajectories(mask[:, envs], dones)[0]
                        for name, mask in self.substitution_masks.items()
                    },
                    labels={name: label[:, envs] for name, label in self.labels.items()},
                    **{name: tensor[:, envs] for name, tensor in fields.items()},
                )
