"""Observation normalisers.

``EmpiricalNormalization`` keeps running statistics as buffers so they travel with the policy's
``state_dict`` and exported module. ``Normalize`` is its frozen form (fixed mean/std) used for export.
"""

from __future__ import annotations

from collections.abc import Sequence

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
