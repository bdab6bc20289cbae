"""Build the torch-side env from Python: ``legged_rl.make_vec_env("walk", num_envs=64)``.

It is the env ``train.py --task=<task>`` trains on: the shipped recipe's ``env`` section (``configs/<task>.yaml``)
over the task's defaults, then the keyword overrides (as :func:`legged_env.make` takes them), behind the
learner's :class:`st_rl.env.VecEnv` contract (:class:`legged_rl.torch_vec_env.TorchVecEnv`). Bad values raise a
ConfigError with one line naming the key, as the command line reports them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from legged_env.api import build_task, env_config
from legged_env.tasks import get_task
from legged_rl.cli import CONFIG_DIR, check_device

RECIPE = "recipe"


def recipe_path(task: str) -> Path:
    """The shipped recipe of ``task`` (``legged_rl/configs/<task>.yaml``; ``configs/`` in the repository)."""
    return CONFIG_DIR / get_task(task).config_file


def make_vec_env(
    task: str,
    num_envs: int | None = None,
    *,
    config: str | os.PathLike | Mapping | None = RECIPE,
    seed: int = 0,
    device: str = "cpu",
    **overrides: Any,
):
    """A :class:`~legged_rl.torch_vec_env.TorchVecEnv` over ``legged_env.make(task, ...)``.

    Args:
        task: a registered task (``walk``, ``walk_amp``, ``climb``).
        num_envs: envs in this process (default: the recipe's).
        config: ``"recipe"`` (default) the shipped recipe, None the task's defaults only, or a recipe YAML path /
            an env-section dict.
        seed: seeds resets and domain randomisation.
        device: torch device of the tensors it returns.
        overrides: env keys, nested dicts merged into the config (``commands={"lin_vel_x": [0.3, 1.0]}``).
    """
    from legged_rl.torch_vec_env import TorchVecEnv  # imports jax

    spec = get_task(task)
    if isinstance(config, str) and config == RECIPE:
        config = recipe_path(task)
    check_device(device)
    cfg = env_config(spec, num_envs, config=config, **overrides)
    source = str(config) if config is not None and not isinstance(config, Mapping) else f"make_vec_env({task!r})"
    return TorchVecEnv(build_task(spec, cfg, seed, source), device=device)
