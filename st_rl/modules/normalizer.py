"""Observation normalisers.

``EmpiricalNormalization`` keeps running statistics as buffers so they travel with the policy's
``state_dict`` and exported module. ``Normalize`` is its frozen form (fixed mean/std) used for export.
``RunningMeanStd`` / ``Normalizer`` are numpy running statistics for AMP observations (policy and expert
transitions), owned by the algorithm rather than the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn


class EmpiricalNormalization(nn.Module):
    """Normalise ``(B, *shape)`` inputs by the running mean and variance of everything seen so far.

    ``forward`` updates the statistics only in training mode and while ``count < until``
    (rsl_rl semantics). Policies in st_rl call :meth:`normalize` (never updates) when computing
    actions and values, and :meth:`update` explicitly once per collected observation.

    In multi-process training the algorithm sets ``dist`` (a
    :class:`~st_rl.utils.distributed.DistributedContext`): each update then merges the batch moments of
    every rank first, so all ranks keep identical statistics, those of the union of their batches.
    """

    dist = None  # DistributedContext | None; a plain attribute, not part of the state_dict

    def __init__(self, shape: int | Sequence[int], eps: float = 1e-2, until: int | None = None) -> None:
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.eps = eps
        self.until = until
        self.register_buffer("_mean", torch.zeros(shape).unsqueeze(0))
        self.register_buffer("_var", torch.ones(shape).unsqueeze(0))
        self.register_buffer("_std", torch.ones(shape).unsqueeze(0))
        self.register_buffer("count", torch.tensor(0, dtype=torch.long))

    @property
    def mean(self) -> torch.Tensor:
        """Running mean, ``shape``."""
        return self._mean.squeeze(0).clone()

    @property
    def std(self) -> torch.Tensor:
        """Running (biased) standard deviation, ``shape``."""
        return self._std.squeeze(0).clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Update the statistics if training (and below ``until``), then normalise ``x`` ``(B, *shape)``."""
        if self.training:
            self.update(x)
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / (std + eps)`` without touching the statistics."""
        return (x - self._mean) / (self._std + self.eps)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`normalize`: ``y * (std + eps) + mean``."""
        return y * (self._std + self.eps) + self._mean

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the batch ``x`` ``(B, *shape)`` into the running statistics (parallel mean/var formula)."""
        if self.until is not None and self.count >= self.until:
            return
        count_x = x.shape[0]
        var_x, mean_x = torch.var_mean(x, dim=0, unbiased=False, keepdim=True)
        if self.dist is not None:
            count_x, mean_x, var_x = self.dist.merge_moments(count_x, mean_x, var_x)
        self.count += count_x
        rate = count_x / self.count.item()
        delta = mean_x - self._mean
        # mean_new = mean + rate * delta;  var_new = var + rate * (var_x - var + delta * (mean_x - mean_new))
        self._mean.add_(rate * delta)
        self._var.add_(rate * (var_x - self._var + delta * (mean_x - self._mean)))
        self._std.copy_(torch.sqrt(self._var))


class Normalize(nn.Module):
    """Fixed affine normalisation ``(x - mean) / (std + eps)``; the exported form of a normaliser."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` ``(B, *shape)``."""
        return (x - self.mean) / (self.std + self.eps)

    @classmethod
    def frozen(cls, normalizer: EmpiricalNormalization) -> Normalize:
        """Snapshot of an :class:`EmpiricalNormalization`'s current statistics."""
        return cls(normalizer.mean, normalizer.std, normalizer.eps)


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 numpy copy/view of ``x`` (a torch tensor is detached and moved to the CPU first)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


class RunningMeanStd:
    """Running mean and (biased) variance over ``shape``, in float64 numpy, merged batch by batch.

    Attributes:
        mean: ``shape`` running mean (starts at 0).
        var: ``shape`` running variance (starts at 1).
        count: number of samples merged so far, plus ``epsilon``: the count starts at ``epsilon`` (a pseudo-count
            of the initial ``mean=0, var=1``, so the first merge never divides by zero). Its weight in the result is
            ``epsilon / count``, i.e. negligible after a few samples.
    """

    def __init__(self, shape: int | Sequence[int] = (), epsilon: float = 1e-4) -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, x: np.ndarray | torch.Tensor) -> None:
        """Merge the batch ``x`` ``(B, *shape)`` into the statistics (parallel moments merge, Chan et al.).

        With ``n = count``, ``m = B``, ``delta = mean_x - mean``: ``mean += delta * m / (n + m)`` and
        ``var = (n * var + m * var_x + delta^2 * n * m / (n + m)) / (n + m)``. An empty batch is a no-op.
        """
        x = _as_numpy(x)
        if x.shape[1:] != self.shape:
            raise ValueError(f"batch of shape {x.shape} does not match the statistics shape (B, *{self.shape})")
        batch_count = x.shape[0]
        if batch_count == 0:
            return
        batch_mean, batch_var = x.mean(axis=0), x.var(axis=0)
        total = self.count + batch_count
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.mean = self.mean + delta * batch_count / total
        self.var = m2 / total
        self.count = total


class Normalizer(RunningMeanStd):
    """Running normaliser (numpy statistics) of the AMP observations, shared by policy and expert transitions.

    ``normalize(x) = clip((x - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``; ``epsilon`` is also the
    initial pseudo-count of :class:`RunningMeanStd`. Not an ``nn.Module``: whoever owns it saves its ``mean``,
    ``var`` and ``count``.
    """

    def __init__(self, shape: int | Sequence[int], epsilon: float = 1e-4, clip_obs: float = 10.0) -> None:
        super().__init__(shape, epsilon)
        self.epsilon = epsilon
        self.clip_obs = clip_obs

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Normalised and clipped copy of ``x`` ``(B, *shape)`` (float64)."""
        return np.clip((_as_numpy(x) - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip_obs, self.clip_obs)

    def normalize_torch(self, x: torch.Tensor, device: str | torch.device) -> torch.Tensor:
        """:meth:`normalize` in torch: ``x`` ``(B, *shape)`` -> float32 ``(B, *shape)`` on ``device``."""
        mean = torch.as_tensor(self.mean, dtype=torch.float32, device=device)
        std = torch.as_tensor(np.sqrt(self.var + self.epsilon), dtype=torch.float32, device=device)
        x = torch.as_tensor(x, device=device).to(torch.float32)
        return torch.clamp((x - mean) / std, -self.clip_obs, self.clip_obs)

    def update_normalizer(self, rollouts: Iterable, expert_loader: Iterable) -> None:
        """Merge one pass over the policy's AMP observations and one over the expert's into the statistics.

        Args:
            rollouts: an iterable of the policy's AMP observation batches, e.g. a generator over the stored
                rollout; each item is a ``(B, *shape)`` array/tensor, or a tuple/list of such batches (e.g.
                ``(state, next_state)``), every one of which is merged.
            expert_loader: an iterable of expert (motion-data) batches, items as for ``rollouts``.

        Each batch is merged as it comes (equal, up to the ``epsilon`` pseudo-count, to the statistics of the
        concatenation of everything seen). Tensors are detached and copied to the CPU.
        """
        for source in (rollouts, expert_loader):
            for item in source:
                for batch in item if isinstance(item, (tuple, list)) else (item,):
                    self.update(batch)
