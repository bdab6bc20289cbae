"""Export a trained policy for deployment as a standalone TorchScript file.

The exported module maps the flat actor observation ``(B, num_obs)`` (segments in env order) to the
deterministic action ``(B, num_actions)`` (the Gaussian mean), with the observation normaliser's
statistics baked in. Loading it needs only ``torch`` (``torch.jit.load``), not st_rl.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from st_rl.utils.io import atomic_write


def _export_module(policy: nn.Module) -> nn.Module:
    if not hasattr(policy, "export_module"):
        raise TypeError(f"{type(policy).__name__} has no export_module(); cannot export it as TorchScript")
    return policy.export_module().to("cpu").eval()


def export_policy_as_jit(policy: nn.Module, path: str, example_obs_dim: int) -> nn.Module:
    """Script ``policy.export_module()`` on CPU, check it against ``policy.act_inference``, write it atomically.

    Args:
        policy: an st_rl policy (e.g. ``ActorCritic``); not modified.
        path: output file, e.g. ``<run>/exported/policy.pt``.
        example_obs_dim: ``num_obs``, used to check the scripted module on a random ``(4, num_obs)`` batch.

    Returns:
        The scripted module.
    """
    with warnings.catch_warnings():
        # TorchScript is deprecated in recent torch, but it is what robot runtimes (libtorch) load.
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(_export_module(policy))
    example = torch.randn(4, example_obs_dim)
    device = next(policy.parameters()).device
    was_training = policy.training
    policy.eval()
    with torch.inference_mode():
        expected = policy.act_inference(example.to(device)).cpu()
        actual = scripted(example)
    policy.train(was_training)
    if not torch.allclose(expected, actual, atol=1e-5, rtol=1e-5):
        raise RuntimeError("exported TorchScript policy disagrees with act_inference; refusing to write it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        atomic_write(path, lambda tmp_path: torch.jit.save(scripted, tmp_path))
    return scripted
