"""Building blocks of exported (TorchScript) policies.

An exported policy is a chain of stages, each ``forward(x: Tensor) -> Tensor`` on a batch ``(B, in)``
and ``reset(dones: Optional[Tensor])`` that clears the state of the envs where ``dones`` ``(B,)`` is
True (all if None). Stateless stages ignore ``reset``; recurrent ones keep their state in buffers.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


class Stage(nn.Module):
    """A stateless stage wrapping any ``(B, in) -> (B, out)`` module."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    @torch.jit.export
    def reset(self, dones: Optional[torch.Tensor] = None) -> None:  # noqa: UP045 (TorchScript needs Optional)
        pass


class ExportedPolicy(nn.Module):
    """``forward(obs (B, num_obs)) -> actions (B, num_actions)`` through ``stages`` in order; ``reset(dones)``
    resets every stage (call it when an episode starts; with no argument, all envs)."""

    def __init__(self, stages: list[nn.Module]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs
        for stage in self.stages:
            x = stage(x)
        return x

    @torch.jit.export
    def reset(self, dones: Optional[torch.Tensor] = None) -> None:  # noqa: UP045
        for stage in self.stages:
            stage.reset(dones)
