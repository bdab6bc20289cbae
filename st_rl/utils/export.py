"""Export a trained policy for deployment as a standalone TorchScript file.

The exported module maps the flat actor observation ``(B, num_obs)`` (segments in env order) to the
deterministic action ``(B, num_actions)`` (the Gaussian mean), with the observation normaliser's
statistics baked in. A recurrent policy keeps its state in buffers: call ``module.reset()`` when an
episode starts (``module.reset(dones)`` for a batch). Loading it needs only ``torch``
(``torch.jit.load``), not st_rl.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from st_rl.utils.io import atomic_write


def _export_module(policy: nn.Module) -> nn.Module:
    if not hasattr(policy, "export_module"):
        raise TypeError(f"{type(policy).__name__} has no export_module(); cannot export it as TorchScript")
    return policy.export_module().to("cpu").eval()


def sequence_max_abs_diff(
    policy: nn.Module,
    run: Callable[[torch.Tensor], Any],
    reset: Callable[[torch.Tensor], None],
    num_obs: int,
    steps: int = 16,
    batch: int = 4,
    seed: int = 0,
) -> float:
    """Largest ``|run(obs) - policy.act_inference(obs)|`` over a random sequence of ``steps`` batches of ``batch``
    observations (CPU tensors), resetting a random subset of envs after each step on both (``reset(dones)`` on the
    exported side, so a recurrent policy's state handling is compared too). The eager side runs on a copy; ``run``
    may return a tensor or an array.
    """
    generator = torch.Generator().manual_seed(seed)
    device = next(policy.parameters()).device
    eager = copy.deepcopy(policy).eval()
    eager.reset()
    worst = 0.0
    with torch.inference_mode():
        for _ in range(steps):
            obs = torch.randn(batch, num_obs, generator=generator) * 2.0
            expected = eager.act_inference(obs.to(device)).cpu()
            worst = max(worst, float((torch.as_tensor(run(obs)) - expected).abs().max()))
            dones = torch.rand(batch, generator=generator) < 0.25
            eager.reset(dones.to(device))
            reset(dones)
    return worst


def export_max_abs_diff(
    policy: nn.Module, exported: nn.Module, num_obs: int, steps: int = 16, batch: int = 4, seed: int = 0
) -> float:
    """:func:`sequence_max_abs_diff` of a TorchScript export. Runs on copies; ``policy`` and ``exported`` keep their
    state."""
    scripted = copy.deepcopy(exported)
    scripted.reset()
    return sequence_max_abs_diff(policy, scripted, scripted.reset, num_obs, steps, batch, seed)


def export_policy_as_jit(policy: nn.Module, path: str, example_obs_dim: int, atol: float = 1e-5) -> float:
    """Script ``policy.export_module()`` on CPU, check it against ``policy.act_inference``, write it atomically.

    Args:
        policy: an st_rl policy (e.g. ``ActorCritic``); not modified.
        path: output file, e.g. ``<run>/exported/policy.pt``.
        example_obs_dim: ``num_obs``, used to compare the scripted module with eager ``act_inference`` over a
            random observation sequence with resets (:func:`export_max_abs_diff`).
        atol: largest accepted difference; beyond it nothing is written.

    Returns:
        The measured max abs difference between the exported module and eager ``act_inference``.
    """
    with warnings.catch_warnings():
        # TorchScript is deprecated in recent torch, but it is what robot runtimes (libtorch) load.
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(_export_module(policy))
    diff = export_max_abs_diff(policy, scripted, example_obs_dim)
    if not diff <= atol:
        raise RuntimeError(
            f"exported TorchScript policy disagrees with act_inference (max abs diff {diff:.3g} > {atol:g}); "
            "refusing to write it"
        )
    scripted.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        atomic_write(path, lambda tmp_path: torch.jit.save(scripted, tmp_path))
    return diff
