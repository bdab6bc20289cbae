"""Exact resume: what a checkpoint keeps of a run besides weights and optimisers, and how it is split over ranks.

A run's *resume state* (one per rank, :func:`rank_resume_state`) holds the torch RNG, the recent-episode
buffers and its *per-env* tensors: the env state (:meth:`st_rl.env.VecEnv.get_env_state`), the policy's memory
states, the algorithm's rollout state and the runner's running-episode counters, each with its env axis. The
checkpoint keeps every rank's, in rank order (:func:`checkpoint_entry`). A run resumed with the same number of
processes takes its own rank's; with another number (same total envs) the per-env tensors of all ranks are
concatenated along their env axis and split anew (:func:`per_env_of_rank`).
"""

from __future__ import annotations

from typing import Any

import torch

from st_rl.utils.errors import CheckpointError


def rank_resume_state(
    per_env: dict[str, tuple[torch.Tensor, int]], reward_buffer: list[float], length_buffer: list[float]
) -> dict[str, Any]:
    """One rank's resume state: ``per_env`` ``name -> (tensor, env axis)``, the recent-episode buffers and the
    torch RNG (read now)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "reward_buffer": list(reward_buffer),
        "length_buffer": list(length_buffer),
        "per_env": {name: tensor.detach().cpu() for name, (tensor, _) in per_env.items()},
        "env_axis": {name: axis for name, (_, axis) in per_env.items()},
    }


def checkpoint_entry(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """The checkpoint's ``"resume"`` entry: every rank's :func:`rank_resume_state`, in rank order."""
    return {"world_size": len(ranks), "ranks": ranks}


def per_env_of_rank(
    entry: dict[str, Any], rank: int, world_size: int, num_envs: int, path: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """``(per-env tensors, saved rank state or None)`` for ``rank`` of ``world_size`` processes with ``num_envs``
    envs each: the saved rank's own with the same number of processes, else all ranks' re-split (with the rank
    state of the same index, if there is one). CheckpointError when the total number of envs differs."""
    ranks = entry["ranks"]
    if len(ranks) == world_size:
        return ranks[rank]["per_env"], ranks[rank]
    per_env = {}
    for name, axis in ranks[0]["env_axis"].items():
        full = torch.cat([r["per_env"][name] for r in ranks], dim=axis)
        if full.shape[axis] != num_envs * world_size:
            raise CheckpointError(
                f"checkpoint {path} holds {full.shape[axis]} envs ({len(ranks)} processes), this run has "
                f"{num_envs * world_size}: the env state cannot be continued (start a new run with --init_from)"
            )
        per_env[name] = full.narrow(axis, rank * num_envs, num_envs)
    return per_env, ranks[rank] if rank < len(ranks) else None


def per_env_group(per_env: dict[str, torch.Tensor], prefix: str, device: torch.device) -> dict[str, torch.Tensor]:
    """The entries of ``per_env`` named ``<prefix>/<name>``, as ``name -> tensor`` on ``device``."""
    start = len(prefix) + 1
    return {name[start:]: t.to(device) for name, t in per_env.items() if name.startswith(prefix + "/")}
