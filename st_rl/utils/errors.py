"""Training-time errors and the finiteness check that raises them."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from st_rl.utils.obs_segments import locate_index


class NonFiniteError(RuntimeError):
    """A NaN or Inf appeared in observations, actions, rewards or losses during training."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the current environment/policy."""


def check_finite(tensor: torch.Tensor, name: str, segments: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """Raise :class:`NonFiniteError` if ``tensor`` ``(N, D)`` (or ``(N,)``) has a NaN/Inf.

    The message names the segment (from ``segments``, else ``name``), the first offending env index
    and the number of affected envs.
    """
    bad = ~torch.isfinite(tensor)
    if not bad.any():
        return
    if tensor.dim() == 1:
        bad = bad.unsqueeze(-1)
        tensor = tensor.unsqueeze(-1)
    bad = bad.flatten(1)
    env_idx, column = (int(i) for i in bad.nonzero()[0])
    where = f"segment '{locate_index(segments, column)}'" if segments is not None else f"'{name}'"
    num_envs = int(bad.any(dim=1).sum())
    raise NonFiniteError(
        f"non-finite {name}: {where}, env {env_idx} (value {tensor.flatten(1)[env_idx, column].item()}); "
        f"{num_envs} env(s) affected"
    )
