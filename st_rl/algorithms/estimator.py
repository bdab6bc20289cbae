"""PPO plus the supervised losses of a policy's state estimator and/or privileged adaptor.

The estimate is the raw one the policy recorded during PPO's own forward pass on the mini-batch
(``policy.state_estimate`` / ``policy.privilege_estimate`` after ``update_distribution``, like ``action_mean``),
so nothing runs twice. The target is the same-named segment of the batch's raw critic (privileged) observation;
in recurrent batch mode the critic observation is padded ``(T, num_traj, C)`` and is unpadded to ``(T, N, .)``,
the layout of the estimates.

Losses (weighted by ``loss_coefs``): ``"estimator"`` and/or ``"adaptor"``, each ``mean((estimate - target)^2)``;
metrics ``estimator_error`` / ``adaptor_error``: ``mean(|estimate - target|)`` in raw units.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from st_rl.algorithms.ppo import PPO
from st_rl.modules.state_adaptor import PrivilegeEstimatorMixin
from st_rl.modules.state_estimator import EstimatorMixin
from st_rl.storage.rollout_storage import Batch
from st_rl.utils.obs_segments import Segments, get_subobs_by_components
from st_rl.utils.trajectories import unpad_trajectories


def segment_target(
    critic_obs: torch.Tensor, segments: Segments, names: Sequence[str], masks: torch.Tensor | None = None
) -> torch.Tensor:
    """The segments ``names`` of the raw critic observation: ``(B, C) -> (B, size)``, or with ``masks``
    ``(T, num_traj)`` padded ``(T, num_traj, C)`` -> unpadded ``(T, N, size)``."""
    target = get_subobs_by_components(critic_obs, names, segments)
    return target if masks is None else unpad_trajectories(target, masks)


def estimation_loss(estimate: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Supervised regression of a raw estimate on its target, both ``(B, K)`` (or ``(T, N, K)``).

    Returns:
        ``mean((estimate - target)^2)`` and metrics ``error``: ``mean(|estimate - target|)``.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate shape {tuple(estimate.shape)} does not match target shape {tuple(target.shape)}")
    error = estimate - target
    with torch.no_grad():
        metrics = {"error": error.abs().mean()}
    return error.pow(2).mean(), metrics


class EstimatorPPO(PPO):
    """:class:`PPO` whose policy has a state estimator (:class:`EstimatorMixin`), a privileged adaptor
    (:class:`PrivilegeEstimatorMixin`) or both; adds their losses ``"estimator"`` / ``"adaptor"``.

    Args:
        policy: the policy; a ValueError if it has neither stage.
        estimator_loss_coef: weight of the estimator loss (ignored without an estimator).
        adaptor_loss_coef: weight of the adaptor loss (ignored without an adaptor).
        **kwargs: :class:`PPO` arguments.
    """

    def __init__(
        self, policy: nn.Module, *, estimator_loss_coef: float = 1.0, adaptor_loss_coef: float = 1.0, **kwargs
    ) -> None:
        self.has_estimator = isinstance(policy, EstimatorMixin)
        self.has_adaptor = isinstance(policy, PrivilegeEstimatorMixin)
        if not (self.has_estimator or self.has_adaptor):
            raise ValueError(
                f"EstimatorPPO needs a policy with a state estimator (EstimatorMixin, e.g. StateAc) or a privileged "
                f"adaptor (PrivilegeEstimatorMixin, e.g. PrivilegeStateAcRecurrent); {type(policy).__name__} has "
                "neither: use PPO"
            )
        super().__init__(policy, **kwargs)
        if self.has_estimator:
            self.loss_coefs["estimator"] = estimator_loss_coef
        if self.has_adaptor:
            self.loss_coefs["adaptor"] = adaptor_loss_coef

    def compute_losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """PPO's losses and metrics plus ``estimator`` / ``adaptor`` losses and ``*_error`` metrics."""
        losses, metrics = super().compute_losses(batch)  # its actor pass records the policy's estimates
        policy = self.policy
        stages = []
        if self.has_estimator:
            stages.append(("estimator", policy.state_estimate, policy.estimator_target_components))
        if self.has_adaptor:
            stages.append(("adaptor", policy.privilege_estimate, policy.adaptor_target_components))
        for name, estimate, targets in stages:
            target = segment_target(batch.critic_observations, policy.critic_obs_segments, targets, batch.masks)
            losses[name], stage_metrics = estimation_loss(estimate, target)
            metrics[f"{name}_error"] = stage_metrics["error"]
        return losses, metrics
