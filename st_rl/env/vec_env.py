"""The contract between the learner (st_rl) and a simulator (e.g. legged_env).

Shapes: ``N = num_envs``, ``O = num_obs``, ``P = num_privileged_obs``, ``A = num_actions``.
The critic observation is the privileged observation when the env has one, else the actor
observation; ``C`` is its size (``P`` or ``O``).

Optional: :meth:`VecEnv.get_symmetry`, the env's left-right mirror of observations and actions (signed
permutations), for PPO's ``algorithm.symmetry`` (data augmentation, mirror loss); None by default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any

import torch


class VecEnv(ABC):
    """Abstract batched environment with auto-reset.

    Attributes:
        num_envs: number of parallel environments ``N``.
        num_obs: flat actor observation size ``O``.
        num_privileged_obs: flat privileged (critic) observation size ``P``, or None if the critic
            sees the actor observation.
        num_actions: action size ``A``.
        max_episode_length: episode length in env steps after which an episode times out.
        episode_length_buf: ``(N,)`` long, steps taken in the current episode of each env; a learner
            may overwrite it (e.g. random initial lengths to de-synchronise time-outs).
        obs_segments: ordered ``name -> shape``; the actor observation is their flattened concatenation.
        privileged_obs_segments: same for the privileged observation, or None.
        amp_obs_segments: layout of the AMP observation (``infos["amp_obs"]``) for adversarial motion priors,
            or None (the default) if the env has none.
        device: torch device of every returned tensor.
        cfg: the env's resolved configuration (a dict), recorded with a run.
    """

    num_envs: int
    num_obs: int
    num_privileged_obs: int | None
    num_actions: int
    max_episode_length: int
    episode_length_buf: torch.Tensor
    obs_segments: OrderedDict[str, tuple[int, ...]]
    privileged_obs_segments: OrderedDict[str, tuple[int, ...]] | None
    amp_obs_segments: OrderedDict[str, tuple[int, ...]] | None = None
    device: torch.device
    cfg: dict

    @abstractmethod
    def get_observations(self) -> torch.Tensor:
        """Current actor observation, ``(N, O)`` float."""

    @abstractmethod
    def get_privileged_observations(self) -> torch.Tensor | None:
        """Current privileged observation ``(N, P)`` float, or None if the env has none."""

    @abstractmethod
    def reset(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reset all envs.

        Returns:
            ``(obs (N, O), privileged_obs (N, P) | None)``.
        """

    @abstractmethod
    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance every env by one policy step; envs that finish are reset automatically.

        Args:
            actions: ``(N, A)`` float.

        Returns:
            ``(obs, privileged_obs, rewards, dones, infos)``:

            - ``obs`` ``(N, O)``, ``privileged_obs`` ``(N, P) | None``: for envs that finished this
              step these are already the observations after the reset.
            - ``rewards`` ``(N,)`` float.
            - ``dones`` ``(N,)`` bool: episode ended (termination or time-out).
            - ``infos`` dict with

              - ``"time_outs"`` ``(N,)`` bool: ended by the time limit only (a subset of ``dones``);
                the learner bootstraps these.
              - ``"episode"`` dict ``name -> float | 0-d tensor``: per-term means over the episodes
                that finished this step (reward terms named ``rew_<term>``); may be empty, and a value may be
                NaN when no episode finished (so an env on an accelerator need not ask the host whether any
                did); the learner averages each key over the steps that have a value.
              - ``"final_critic_obs"`` ``(N, C)``: critic observation of the final state before the
                auto-reset; only rows where ``dones`` is True are meaningful, and those of time-outs must be
                finite (they are bootstrapped). Required at every step.
        """

    def get_env_state(self) -> dict[str, torch.Tensor]:
        """Everything the envs need to continue exactly where they are (physics, random keys, episode counters,
        curriculum levels, ...), for a checkpoint: ``name -> (N, ...)`` tensors, the env on the leading axis.

        The default ``{}`` says the env keeps nothing worth restoring: a resumed run then starts from its fresh
        envs. A checkpoint's env state is restored with :meth:`set_env_state` on an env of the same config.
        """
        return {}

    def set_env_state(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`get_env_state`'s ``state`` (same env config and ``num_envs``); ValueError naming
        what does not fit. The default accepts only ``{}``."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no env state, but was given {', '.join(sorted(state))}")

    def get_symmetry(self) -> dict[str, tuple[torch.Tensor, torch.Tensor] | None] | None:
        """The env's left-right mirror, for symmetry augmentation and the mirror loss (``algorithm.symmetry``).

        Returns None (the default) when the env declares none; else ``{"actor": (perm, sign), "critic": (perm,
        sign) | None, "actions": (perm, sign)}``: ``perm`` ``(D,)`` long and ``sign`` ``(D,)`` float of +-1 with
        ``D`` = ``O``, ``C``, ``A``, such that ``x[..., perm] * sign`` is the mirror image of ``x`` ``(..., D)``
        (mirroring twice is the identity). ``"critic"`` is None when the critic sees the actor observation. An env
        whose config observes a quantity without a mirror raises an error naming it.
        """
        return None

    @property
    def num_critic_obs(self) -> int:
        """Size ``C`` of the critic observation: ``num_privileged_obs`` if set, else ``num_obs``."""
        return self.num_privileged_obs if self.num_privileged_obs is not None else self.num_obs

    @property
    def critic_obs_segments(self) -> OrderedDict[str, tuple[int, ...]]:
        """Segments of the critic observation (privileged segments if the env has them)."""
        if self.privileged_obs_segments is not None:
            return self.privileged_obs_segments
        return self.obs_segments
