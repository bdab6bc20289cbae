"""Splitting a rollout into per-episode trajectories for recurrent training, and back.

A rollout is time-major ``[T, N, ...]``. Trajectories are cut after every ``done`` and at the rollout
end, ordered env by env (env 0's trajectories in time order, then env 1's, ...), and zero-padded to
length ``T``: ``padded [T, num_traj, ...]`` with ``masks [T, num_traj]`` (True on real steps).
:func:`unpad_trajectories` is the exact inverse on anything computed step-wise from ``padded``.
"""

from __future__ import annotations

import torch


def split_and_pad_trajectories(tensor: torch.Tensor, dones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut ``tensor`` ``[T, N, ...]`` at ``dones`` ``[T, N]`` (or ``[T, N, 1]``) into padded trajectories.

    Returns:
        ``(padded [T, num_traj, ...], masks [T, num_traj] bool)``.
    """
    T, N = tensor.shape[:2]
    ends = dones.reshape(T, N).bool().clone()
    ends[-1] = True  # every trajectory ends at the rollout end at the latest
    flat_ends = ends.transpose(0, 1).reshape(-1)  # env-major
    traj_id = torch.cumsum(flat_ends.long(), 0) - flat_ends.long()  # trajectory index of every step
    starts = torch.cat([torch.zeros(1, dtype=torch.long, device=tensor.device), flat_ends.nonzero().squeeze(-1) + 1])
    lengths = starts[1:] - starts[:-1]
    pos = torch.arange(N * T, device=tensor.device) - starts[traj_id]  # step index within its trajectory
    padded = tensor.new_zeros(T, lengths.numel(), *tensor.shape[2:])
    padded[pos, traj_id] = tensor.transpose(0, 1).reshape(N * T, *tensor.shape[2:])
    masks = torch.arange(T, device=tensor.device).unsqueeze(1) < lengths.unsqueeze(0)
    return padded, masks


def unpad_trajectories(padded: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_and_pad_trajectories`: ``[T, num_traj, ...]`` -> ``[T, N, ...]``."""
    T = masks.shape[0]
    valid = padded.transpose(0, 1)[masks.transpose(0, 1)]  # env-major real steps
    return valid.reshape(-1, T, *padded.shape[2:]).transpose(0, 1)


def trajectory_start_states(states: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """Recurrent state at the first step of every trajectory, in trajectory order.

    Args:
        states: ``[T, S, N, H]`` state *before* each step; dones: ``[T, N]`` (or ``[T, N, 1]``).

    Returns:
        ``(S, num_traj, H)``, ready as the initial state of a batched RNN call.
    """
    T, _, N, _ = states.shape
    starts = torch.zeros(T, N, dtype=torch.bool, device=states.device)
    starts[0] = True
    starts[1:] = dones.reshape(T, N)[:-1].bool()
    env_major = states.permute(2, 0, 1, 3)  # [N, T, S, H]
    return env_major[starts.transpose(0, 1)].transpose(0, 1).contiguous()  # (S, num_traj, H)
