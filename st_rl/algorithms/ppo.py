"""Proximal Policy Optimisation (Schulman et al. 2017) with GAE and an adaptive-KL learning rate.

Reads in the order the algorithm runs: ``act`` -> ``process_env_step`` (per env step, under
``torch.inference_mode``) -> ``compute_returns`` -> ``update``. Losses are small pure functions
returning ``(loss, metrics)``; :meth:`PPO.compute_losses` collects them in a dict and the total loss
is ``sum(loss_coefs[name] * losses[name])``, so a subclass adds a loss with one entry and one coef.

Shapes: ``N = num_envs``, ``B`` = mini-batch size, ``A = num_actions``.

Multi-process (``dist`` set, see :mod:`st_rl.utils.distributed`): each rank holds ``N`` of its own envs and
the update equals the single-process one on all ranks' samples: gradients and the KL of the adaptive
schedule are averaged over ranks (one all-reduce per mini-batch), advantages normalised with global
statistics, normaliser statistics merged.

Symmetry (``symmetry={"data_augmentation": bool, "mirror_loss_coef": float}``, see
:mod:`st_rl.algorithms.symmetry`): the runner hands the env's mirrors over with :meth:`PPO.set_symmetry`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from st_rl.algorithms import symmetry as symmetry_fns
from st_rl.algorithms.symmetry import resolve_symmetry_cfg, symmetry_enabled
from st_rl.modules.normalizer import EmpiricalNormalization
from st_rl.storage.rollout_storage import Batch, RolloutStorage, Transition
from st_rl.utils.distributed import DistributedContext


def surrogate_loss(
    actions_log_prob: torch.Tensor, old_actions_log_prob: torch.Tensor, advantages: torch.Tensor, clip_param: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate objective, as a loss to minimise.

    Args:
        actions_log_prob, old_actions_log_prob, advantages: ``(B,)`` (or any common shape).

    Returns:
        ``pg_loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))`` with
        ``ratio = exp(logp - logp_old)``, and metrics ``ratio`` (mean), ``clipfrac`` (fraction of samples
        with ``|ratio - 1| > eps``) and ``approx_kl`` (``mean((ratio - 1) - log ratio)``, CleanRL).
    """
    log_ratio = actions_log_prob - old_actions_log_prob
    ratio = torch.exp(log_ratio)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - clip_param, 1.0 + clip_param)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    with torch.no_grad():
        metrics = {
            "ratio": ratio.mean(),
            "clipfrac": ((ratio - 1.0).abs() > clip_param).float().mean(),
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
        }
    return pg_loss, metrics


def value_function_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_param: float, use_clipped: bool
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Value regression loss, optionally clipped around the rollout-time values.

    Args:
        values: ``(B, 1)`` current predictions; old_values: ``(B, 1)`` predictions at rollout time;
            returns: ``(B, 1)`` GAE targets.

    Returns:
        unclipped: ``mean((V - R)^2)``; clipped: ``mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2))``.
    """
    if not use_clipped:
        return (returns - values).pow(2).mean(), {}
    values_clipped = old_values + (values - old_values).clamp(-clip_param, clip_param)
    loss = torch.max((values - returns).pow(2), (values_clipped - returns).pow(2)).mean()
    return loss, {}


def entropy_term(entropy: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean policy entropy ``(B,) -> ()``; it enters the total loss with coefficient ``-entropy_coef`` (a bonus)."""
    return entropy.mean(), {}


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, old_mu: torch.Tensor, old_sigma: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``KL(old || new)`` between diagonal Gaussians, all inputs ``(B, A)``."""
    kl = torch.log(sigma / old_sigma) + (old_sigma.pow(2) + (old_mu - mu).pow(2)) / (2.0 * sigma.pow(2)) - 0.5
    return kl.sum(dim=-1).mean()


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """``1 - Var(R - V) / Var(R)`` over all samples; 1 is a perfect critic, <= 0 no better than a constant."""
    var_returns = returns.var()
    if var_returns == 0:
        return float("nan")
    return float(1.0 - (returns - values).var() / var_returns)


class PPO:
    """PPO learner owning the policy's optimiser and the rollout storage.

    ``dist`` is injected by the runner in multi-process training (not a config key); ``None`` is one process.
    """

    def __init__(
        self,
        policy: nn.Module,
        num_learning_epochs: int = 5,
        num_mini_batches: int = 4,
        clip_param: float = 0.2,
        gamma: float = 0.99,
        lam: float = 0.95,
        value_loss_coef: float = 1.0,
        entropy_coef: float = 0.01,
        learning_rate: float = 1e-3,
        max_grad_norm: float = 1.0,
        use_clipped_value_loss: bool = True,
        schedule: str = "adaptive",
        desired_kl: float = 0.01,
        clip_min_std: float = 1e-3,
        symmetry: dict | None = None,
        device: str | torch.device = "cpu",
        dist: DistributedContext | None = None,
    ) -> None:
        if schedule not in ("adaptive", "fixed"):
            raise ValueError(f"unknown schedule '{schedule}' (valid: adaptive, fixed)")
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.dist = dist
        if dist is not None:
            for module in self.policy.modules():
                if isinstance(module, EmpiricalNormalization):
                    module.dist = dist
        self.num_learning_epochs = num_learning_epochs
        self.num_mini_batches = num_mini_batches
        self.clip_param = clip_param
        self.gamma = gamma
        self.lam = lam
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.use_clipped_value_loss = use_clipped_value_loss
        self.schedule = schedule
        self.desired_kl = desired_kl
        self.clip_min_std = clip_min_std
        # total loss = sum(loss_coefs[name] * losses[name]); subclasses add entries.
        self.loss_coefs: dict[str, float] = {
            "surrogate": 1.0,
            "value_function": value_loss_coef,
            "entropy": -entropy_coef,
        }
        # Left-right symmetry (st_rl.algorithms.symmetry): the env's mirrors arrive with set_symmetry.
        self.symmetry_cfg = resolve_symmetry_cfg(symmetry)
        self.mirrors: dict[str, symmetry_fns.Mirror] | None = None
        if self.symmetry_cfg is not None and self.symmetry_cfg["mirror_loss_coef"] > 0:
            self.loss_coefs["mirror"] = self.symmetry_cfg["mirror_loss_coef"]
        self._ppo_params = self.ppo_parameters()  # once: the update clips these every mini-batch
        self.optimizer = torch.optim.Adam(self._ppo_params, lr=learning_rate)
        self.storage: RolloutStorage | None = None
        self.transition = Transition()

    def init_storage(
        self,
        num_envs: int,
        num_transitions_per_env: int,
        actor_obs_shape: tuple[int, ...],
        critic_obs_shape: tuple[int, ...] | None,
        action_shape: tuple[int, ...],
    ) -> None:
        """Allocate the rollout buffer; ``critic_obs_shape=None`` when the critic sees the actor observation."""
        self.storage = RolloutStorage(
            num_envs, num_transitions_per_env, actor_obs_shape, critic_obs_shape, action_shape, self.device, self.dist
        )

    def set_symmetry(self, spec: dict | None) -> None:
        """Take the env's mirrors (:meth:`st_rl.env.VecEnv.get_symmetry`; after :meth:`init_storage`, whose shapes
        they must fit) when ``algorithm.symmetry`` asks for augmentation or a mirror loss; otherwise a no-op.

        Raises:
            ConfigError: symmetry asked for with an env that declares no mirror, or with a recurrent policy.
            ValueError: a mirror that does not fit the observation or action size, or does not undo itself.
        """
        if not symmetry_enabled(self.symmetry_cfg):
            return
        if spec is None:
            raise symmetry_fns.ConfigError(
                "algorithm.symmetry needs an env that declares its left-right mirror (its get_symmetry() is None)"
            )
        if self.policy.is_recurrent:
            raise symmetry_fns.ConfigError(
                f"algorithm.symmetry supports feed-forward policies only, not {type(self.policy).__name__}"
            )
        storage = self.storage
        has_critic_obs = storage.privileged_observations is not None  # else the critic reads the actor observation
        critic = spec.get("critic") if has_critic_obs else None
        mirrors = {"actor": spec["actor"], "critic": critic or spec["actor"], "actions": spec["actions"]}
        mirrors = {k: (p.to(self.device).long(), s.to(self.device).float()) for k, (p, s) in mirrors.items()}
        sizes = {
            "actor": storage.observations.shape[-1],
            "critic": (storage.privileged_observations if has_critic_obs else storage.observations).shape[-1],
            "actions": storage.actions.shape[-1],
        }
        for name, m in mirrors.items():
            symmetry_fns.check_mirror(m, sizes[name], name)
        self.mirrors = mirrors

    # --- rollout -----------------------------------------------------------------------------------------------------
    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """Sample actions ``(N, A)`` for ``obs`` ``(N, O)``; record values/log-probs for the transition.

        The observation normalisers are applied, not updated: their statistics move once per rollout, at the end
        of :meth:`update` (so a rollout and the update on it see the same normalisation). A recurrent
        policy's states are recorded before it steps, so the update can replay each trajectory from its start; the
        policy's substitution masks are drawn here and stored, so every update pass sees the inputs acted on.
        """
        self.transition.hidden_states = self.policy.get_hidden_states()
        masks = self.policy.draw_substitution_masks(obs.shape[0], obs.device)
        self.transition.substitution_masks = masks
        with self.policy.using_substitution_masks(masks):
            self.transition.actions = self.policy.act(obs).detach()
        self.transition.values = self.policy.evaluate(critic_obs).detach()
        self.transition.actions_log_prob = self.policy.get_actions_log_prob(self.transition.actions).detach()
        self.transition.action_mean = self.policy.action_mean.detach()
        self.transition.action_sigma = self.policy.action_std.detach()
        self.transition.observations = obs
        self.transition.critic_observations = critic_obs
        return self.transition.actions

    @torch.no_grad()
    def process_env_step(self, rewards: torch.Tensor, dones: torch.Tensor, infos: dict) -> None:
        """Store the step's outcome: rewards ``(N,)``, dones ``(N,)`` bool, infos per :class:`st_rl.env.VecEnv`.

        Time-outs are not failures: their return is bootstrapped with the value of the *final* state,
        ``r_t += gamma * V(s_T) * time_out_t`` with ``s_T`` from ``infos["final_critic_obs"]``.
        """
        rewards = rewards.to(self.device).float().clone()
        time_outs = infos["time_outs"].to(self.device).bool()
        # Peek from the current recurrent state: evaluating must not advance it. On an accelerator evaluating every
        # row costs less than asking the host which envs timed out; on the CPU the question is free, and the critic
        # runs on the time-out rows only (about one env in a thousand per step for 20 s episodes at 50 Hz).
        if self.device.type == "cpu":
            rows = time_outs.nonzero().squeeze(-1)
            if rows.numel() > 0:
                states = {name: state[:, rows] for name, state in self.policy.get_hidden_states().items()}
                final_critic_obs = infos["final_critic_obs"].to(self.device)[rows]
                final_values = self.policy.evaluate(final_critic_obs, hidden_states=states).squeeze(-1)
                rewards.index_add_(0, rows, self.gamma * final_values.to(rewards.dtype))
        else:
            final_critic_obs = infos["final_critic_obs"].to(self.device)
            final_values = self.policy.evaluate(final_critic_obs, hidden_states=self.policy.get_hidden_states())
            final_values = final_values.squeeze(-1)
            rewards += torch.where(time_outs, self.gamma * final_values, torch.zeros_like(final_values))
        self.transition.rewards = rewards
        self.transition.dones = dones.to(self.device)
        self.storage.add_transitions(self.transition)
        self.transition.clear()
        self.policy.reset(dones)

    def rollout_state(self) -> dict[str, torch.Tensor]:
        """Per-env state the algorithm carries from one rollout to the next, ``name -> (N, ...)`` (for an exact
        resume; the storage itself is empty between iterations). PPO carries none; a subclass adds its own."""
        return {}

    def load_rollout_state(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`rollout_state`; ValueError on entries this algorithm does not carry."""
        if state:
            raise ValueError(f"{type(self).__name__} carries no rollout state, got {', '.join(sorted(state))}")

    @torch.no_grad()
    def compute_returns(self, last_critic_obs: torch.Tensor) -> None:
        """GAE over the stored rollout, bootstrapped with ``V(last_critic_obs)``, ``last_critic_obs`` ``(N, C)``."""
        last_values = self.policy.evaluate(last_critic_obs, hidden_states=self.policy.get_hidden_states()).detach()
        self.storage.compute_returns(last_values, self.gamma, self.lam)

    # --- learning ----------------------------------------------------------------------------------------------------
    def compute_losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Evaluate the policy on a mini-batch; returns ``(losses, metrics)``, losses keyed like ``loss_coefs``."""
        mirrored_mean = self._mean_of_mirrored(batch) if "mirror" in self.loss_coefs else None
        with self.policy.using_substitution_masks(batch.substitution_masks):  # the rollout's choices
            self.policy.update_distribution(batch.observations, batch.masks, batch.hidden_states)
        actions_log_prob = self.policy.get_actions_log_prob(batch.actions)
        values = self.policy.evaluate(batch.critic_observations, batch.masks, batch.hidden_states)
        advantages = batch.advantages.squeeze(-1)
        surrogate, metrics = surrogate_loss(
            actions_log_prob, batch.old_actions_log_prob.squeeze(-1), advantages, self.clip_param
        )
        value_loss, _ = value_function_loss(
            values, batch.values, batch.returns, self.clip_param, self.use_clipped_value_loss
        )
        entropy, _ = entropy_term(self.policy.entropy)
        with torch.no_grad():
            metrics["kl"] = gaussian_kl(self.policy.action_mean, self.policy.action_std, batch.old_mu, batch.old_sigma)
        losses = {"surrogate": surrogate, "value_function": value_loss, "entropy": entropy}
        if "mirror" in self.loss_coefs:
            mean = self.policy.action_mean
            if mirrored_mean is None:  # augmented batch: its second half is the mirror of the first
                mean, mirrored_mean = mean.chunk(2)
            losses["mirror"], _ = symmetry_fns.mirror_loss(mirrored_mean, mean, self.mirrors["actions"])
        return losses, metrics

    def _mean_of_mirrored(self, batch: Batch) -> torch.Tensor | None:
        """``(B, A)`` policy mean on the mirrored observations of a batch that does not hold them already (None
        for an augmented one). Run before the batch's own pass, so what that pass records (estimates) stays."""
        if self.symmetry_cfg["data_augmentation"]:
            return None
        mirrored = symmetry_fns.mirror(batch.observations, self.mirrors["actor"])
        with self.policy.using_substitution_masks(batch.substitution_masks):
            self.policy.update_distribution(mirrored, batch.masks, batch.hidden_states)
        return self.policy.action_mean

    @torch.no_grad()
    def update_normalization_from_rollout(self) -> None:
        """Merge every observation of the stored rollout ``(T * N, .)`` into the policy's normaliser statistics, in
        one step (with ``dist``: one merge of all ranks' moments per normaliser, not one per env step). The merged
        statistics equal those of merging the steps one by one; the next rollout acts with them."""
        storage = self.storage
        obs = storage.observations[: storage.step].flatten(0, 1)
        critic = storage.privileged_observations
        critic_obs = critic[: storage.step].flatten(0, 1) if critic is not None else obs
        self.policy.update_normalization(obs, critic_obs)

    def _adapt_learning_rate(self, kl: torch.Tensor) -> None:
        """Adaptive-KL schedule: shrink the step when the policy moved too far, grow it when too little."""
        if self.schedule != "adaptive" or self.desired_kl <= 0:
            return
        if kl > 2.0 * self.desired_kl:
            self.learning_rate = max(1e-5, self.learning_rate / 1.5)
        elif 0.0 < kl < self.desired_kl / 2.0:
            self.learning_rate = min(1e-2, self.learning_rate * 1.5)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    def ppo_parameters(self) -> list[nn.Parameter]:
        """The parameters PPO's optimiser, gradient clip (``max_grad_norm``) and adaptive learning rate own: all
        of ``policy.parameters()``. A hook: a subclass that trains some parameters with an optimiser of its own
        (see :meth:`extra_optimizers`) leaves them out."""
        return list(self.policy.parameters())

    def extra_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers besides ``self.optimizer``, by name, over policy parameters left out of
        :meth:`ppo_parameters`; a checkpoint keeps their state. PPO has none."""
        return {}

    def step_extra_optimizers(self) -> dict[str, torch.Tensor]:
        """Clip and step the :meth:`extra_optimizers` after PPO's step, once the mini-batch gradients are final
        (rank means with ``dist``); returns metrics (0-d tensors) for the update's means. PPO: nothing."""
        return {}

    def _mini_batches(self) -> Iterator[Batch]:
        """The ``num_learning_epochs x num_mini_batches`` mini-batches of one :meth:`update`, each passed to
        :meth:`compute_losses`. A hook: a subclass may wrap every batch with data of its own (its
        ``compute_losses`` then unpacks it). With ``symmetry.data_augmentation`` each batch is doubled with its
        mirror image (:func:`st_rl.algorithms.symmetry.augment_batch`)."""
        generator = (
            self.storage.recurrent_mini_batch_generator
            if self.policy.is_recurrent
            else self.storage.mini_batch_generator
        )
        batches = generator(self.num_mini_batches, self.num_learning_epochs)
        if symmetry_enabled(self.symmetry_cfg) and self.mirrors is None:
            raise RuntimeError("algorithm.symmetry is on, but set_symmetry(env.get_symmetry()) was never called")
        if self.symmetry_cfg is not None and self.symmetry_cfg["data_augmentation"]:
            m = self.mirrors
            return (symmetry_fns.augment_batch(b, m["actor"], m["critic"], m["actions"]) for b in batches)
        return batches

    def update(self) -> dict[str, float]:
        """Run ``num_learning_epochs x num_mini_batches`` gradient steps on the stored rollout, then clear it.

        Returns:
            Means over mini-batches of every loss (keys of ``loss_coefs``) and of ``approx_kl``, ``kl``,
            ``clipfrac``, ``ratio`` (and of the metrics of :meth:`step_extra_optimizers`); plus
            ``explained_variance`` of the rollout and the final ``learning_rate``.
        """
        sums: dict[str, float] = {}
        explained_var = explained_variance(self.storage.values, self.storage.returns)
        num_updates = 0
        for batch in self._mini_batches():
            losses, metrics = self.compute_losses(batch)
            total = sum(self.loss_coefs[name] * loss for name, loss in losses.items())
            self.policy.zero_grad()  # every policy gradient, also those an extra optimiser steps
            total.backward()
            if self.dist is not None:  # rank means: the gradient and KL of the union of the ranks' mini-batches
                (metrics["kl"],) = self.dist.all_reduce_grads(self.policy.parameters(), metrics["kl"])
            self._adapt_learning_rate(metrics["kl"])  # before the step: the learning rate is only used there
            nn.utils.clip_grad_norm_(self._ppo_params, self.max_grad_norm)
            self.optimizer.step()
            metrics.update(self.step_extra_optimizers())
            self.policy.clip_std(min=self.clip_min_std)
            for name, value in {**losses, **metrics}.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            num_updates += 1
        self.update_normalization_from_rollout()
        self.storage.clear()
        means = {name: total / num_updates for name, total in sums.items()}
        means["explained_variance"] = explained_var
        means["learning_rate"] = self.learning_rate
        return means
