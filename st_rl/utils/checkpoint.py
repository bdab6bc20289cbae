"""Checkpoint files: reading with clear errors, and finding/rebuilding a policy from a run directory.

A checkpoint (``model_<iter>.pt``, written by ``OnPolicyRunner.save``) is a dict with
``model_state_dict``, ``optimizer_state_dict``, ``iter``, ``learning_rate``, ``num_obs``,
``num_critic_obs``, ``num_actions`` and ``infos``; it is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch

from st_rl.utils.errors import CheckpointError


def check_weights_only_safe(value: Any, where: str) -> None:
    """Accept only plain containers, primitives and tensors, which ``weights_only`` loading can read."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_weights_only_safe(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_weights_only_safe(key, f"{where} key")
            check_weights_only_safe(item, f"{where}[{key!r}]")
    else:
        raise TypeError(f"checkpoint {where} holds a {type(value).__name__}; use plain types or tensors")


CHECKPOINT_KEYS = ("model_state_dict", "optimizer_state_dict", "iter", "num_obs", "num_critic_obs", "num_actions")


def read_checkpoint(path: str, device: torch.device) -> dict:
    """``torch.load`` with ``weights_only=True``; any failure becomes a one-line :class:`CheckpointError`."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        checkpoint = torch.load(path, weights_only=True, map_location=device)
    except Exception as e:  # torch raises many exception types for corrupt files
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(e).__name__}: {first_line}") from e
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not an st_rl checkpoint (missing {', '.join(missing)})")
    return checkpoint


def checkpoint_iteration(path: str) -> int:
    """``.../model_150.pt`` -> 150."""
    return int(os.path.basename(path)[len("model_") : -len(".pt")])


def get_load_path(root: str, load_run: str | int | None = -1, checkpoint: int = -1) -> str:
    """Path of a checkpoint under ``root`` (``logs/<experiment>``), legged_gym style.

    Args:
        root: experiment directory holding run directories.
        load_run: run directory name, or None/``-1``/``"-1"`` for the latest (names sort by their date prefix).
        checkpoint: iteration, or ``-1`` for the highest ``model_<iter>.pt`` in the run.
    """
    if load_run is None or str(load_run) == "-1":
        runs = (
            sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) if os.path.isdir(root) else []
        )
        if not runs:
            raise CheckpointError(f"no run directories in {root}")
        load_run = runs[-1]
    run_dir = load_run if os.path.isabs(str(load_run)) else os.path.join(root, str(load_run))
    if not os.path.isdir(run_dir):
        runs = (
            sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) if os.path.isdir(root) else []
        )
        raise CheckpointError(f"run '{load_run}' not found in {root} (runs: {', '.join(runs) or 'none'})")
    iters = sorted(int(m.group(1)) for f in os.listdir(run_dir) if (m := re.fullmatch(r"model_(\d+)\.pt", f)))
    if not iters:
        raise CheckpointError(f"no model_<iter>.pt checkpoints in {run_dir}")
    if checkpoint == -1:
        checkpoint = iters[-1]
    elif checkpoint not in iters:
        raise CheckpointError(
            f"checkpoint {checkpoint} not found in {run_dir} (checkpoints: {', '.join(map(str, iters))})"
        )
    return os.path.join(run_dir, f"model_{checkpoint}.pt")
