"""Mirror symmetry for PPO: data augmentation and a mirror loss (as rsl_rl 5 offers both), as pure functions.

The env declares its mirror (:meth:`st_rl.env.VecEnv.get_symmetry`): per flat vector a signed permutation
``(perm, sign)``, ``mirror(x) = x[..., perm] * sign``. ``algorithm.symmetry`` (a dict, or None for off):

- ``data_augmentation`` (bool): every mini-batch ``B`` becomes ``2B``: the samples and their mirror images
  (observations, critic observations, actions mirrored; old log-probs, values, returns and advantages repeated,
  which treats the rollout policy as symmetric).
- ``mirror_loss_coef`` (float >= 0): weight of ``Loss/mirror = mean((mu(mirror(o)) - mirror(mu(o)).detach())^2)``,
  ``mu`` the policy mean.

Feed-forward policies only (a recurrent policy's trajectories would need mirrored hidden states).
"""

from __future__ import annotations

from typing import Any

import torch

from st_rl.storage.rollout_storage import Batch
from st_rl.utils.config import ConfigError

Mirror = tuple[torch.Tensor, torch.Tensor]  # (perm (D,) long, sign (D,) float)
SYMMETRY_DEFAULTS: dict[str, Any] = {"data_augmentation": False, "mirror_loss_coef": 0.0}


def resolve_symmetry_cfg(cfg: dict | None, source: str = "the algorithm config") -> dict[str, Any] | None:
    """``cfg`` with its defaults filled in (None stays None); ConfigError (one line) on an unknown key or bad value."""
    if cfg is None:
        return None
    key = "algorithm.symmetry"
    if not isinstance(cfg, dict):
        raise ConfigError(f"{key} in {source} must be a mapping of {', '.join(SYMMETRY_DEFAULTS)}, got {cfg!r}")
    unknown = sorted(set(cfg) - set(SYMMETRY_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown key '{key}.{unknown[0]}' in {source} (valid: {', '.join(SYMMETRY_DEFAULTS)})")
    out = {**SYMMETRY_DEFAULTS, **cfg}
    if not isinstance(out["data_augmentation"], bool):
        raise ConfigError(
            f"{key}.data_augmentation in {source} must be true or false, got {out['data_augmentation']!r}"
        )
    coef = out["mirror_loss_coef"]
    if isinstance(coef, bool) or not isinstance(coef, (int, float)) or not coef >= 0:
        raise ConfigError(f"{key}.mirror_loss_coef in {source} must be a number >= 0, got {coef!r}")
    out["mirror_loss_coef"] = float(coef)
    return out


def symmetry_enabled(cfg: dict[str, Any] | None) -> bool:
    """Whether a resolved ``algorithm.symmetry`` asks for augmentation or a mirror loss."""
    return cfg is not None and (cfg["data_augmentation"] or cfg["mirror_loss_coef"] > 0)


def mirror(x: torch.Tensor, m: Mirror) -> torch.Tensor:
    """Mirror image ``x[..., perm] * sign`` of ``x`` ``(..., D)``."""
    perm, sign = m
    return x[..., perm] * sign


def check_mirror(m: Mirror, size: int, what: str) -> None:
    """ValueError unless ``m`` is a signed permutation of ``size`` values that undoes itself."""
    perm, sign = m
    if perm.shape != (size,) or sign.shape != (size,):
        raise ValueError(f"the env's {what} mirror has {tuple(perm.shape)} values, the {what} {size}")
    if not torch.equal(torch.sort(perm).values, torch.arange(size, device=perm.device)):
        raise ValueError(f"the env's {what} mirror perm is not a permutation")
    if not (torch.equal(perm[perm], torch.arange(size, device=perm.device)) and torch.all(sign * sign[perm] == 1)):
        raise ValueError(f"the env's {what} mirror is not its own inverse (mirroring twice must be the identity)")


def augment_batch(batch: Batch, actor: Mirror, critic: Mirror, actions: Mirror) -> Batch:
    """The ``2B`` mini-batch: ``batch`` (first half) and its mirror image (second half); feed-forward batches.

    Mirrored: observations ``(B, O)``, critic observations ``(B, C)``, actions and old means ``(B, A)``; old stds
    permuted (no sign); values, returns, advantages, old log-probs and substitution masks repeated.
    """

    def both(x: torch.Tensor, m: Mirror | None = None) -> torch.Tensor:
        return torch.cat([x, x if m is None else mirror(x, m)])

    return Batch(
        observations=both(batch.observations, actor),
        critic_observations=both(batch.critic_observations, critic),
        actions=both(batch.actions, actions),
        values=both(batch.values),
        advantages=both(batch.advantages),
        returns=both(batch.returns),
        old_actions_log_prob=both(batch.old_actions_log_prob),
        old_mu=both(batch.old_mu, actions),
        old_sigma=torch.cat([batch.old_sigma, batch.old_sigma[..., actions[0]]]),
        substitution_masks={k: both(v) for k, v in (batch.substitution_masks or {}).items()},
    )


def mirror_loss(
    mean_of_mirrored: torch.Tensor, mean: torch.Tensor, actions: Mirror
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mean((mean_of_mirrored - mirror(mean).detach())^2)``: how far the policy is from commuting with the mirror.

    Args:
        mean_of_mirrored: ``(B, A)`` policy mean on the mirrored observations (gradients flow here).
        mean: ``(B, A)`` policy mean on the original observations (the target, detached).
    """
    return (mean_of_mirrored - mirror(mean.detach(), actions)).pow(2).mean(), {}
