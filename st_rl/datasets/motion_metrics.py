"""How much a motion looks like reference motion: joint-angle distribution distance and discriminator score."""

from __future__ import annotations

import torch


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor, num_quantiles: int = 1000) -> torch.Tensor:
    """Wasserstein-1 distance between the empirical distributions of ``a`` ``(n, K)`` and ``b`` ``(m, K)``, per
    column ``(K,)``: the mean absolute difference of their quantile functions on ``num_quantiles`` levels."""
    levels = (torch.arange(num_quantiles, dtype=torch.float64) + 0.5) / num_quantiles
    qa = torch.quantile(a.double(), levels, dim=0)
    qb = torch.quantile(b.double(), levels, dim=0)
    return (qa - qb).abs().mean(dim=0)


def joint_angle_distance(frames: torch.Tensor, reference: torch.Tensor, dof_slice: slice) -> float:
    """Mean over joints of :func:`wasserstein_1d` between the joint angles (``frames[:, dof_slice]``) of a
    motion ``(n, D)`` and of reference frames ``(m, D)``, in radians."""
    return float(wasserstein_1d(frames[:, dof_slice], reference[:, dof_slice]).mean())


@torch.no_grad()
def discriminator_scores(policy: torch.nn.Module, frames: torch.Tensor) -> dict[str, float]:
    """Mean discriminator output ``D(s, s')`` and mean style reward over consecutive frame pairs of one clip
    ``(F, D)``, with an AMP policy's own normaliser and discriminator (reference ~ +1, policy-like ~ -1)."""
    s, s_next = frames[:-1], frames[1:]
    normalize = policy.amp_normalizer.normalize
    d = policy.discriminator(torch.cat([normalize(s), normalize(s_next)], dim=-1))
    _, style = policy.discriminator.predict_style_reward(normalize(s), normalize(s_next), torch.zeros(len(s)))
    return {"mean_d": float(d.mean()), "mean_style_reward": float(style.mean())}
