"""The training config sections and their validation (``policy``, ``algorithm``, ``runner``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from st_rl.algorithms import ALGORITHM_CLASSES
from st_rl.modules import resolve_policy_cfg
from st_rl.utils.config import ConfigError, resolve_kwargs

SECTIONS = ("policy", "algorithm", "runner")
DEFAULT_ALGORITHM_CLASS = "PPO"


@dataclass(frozen=True)
class RunnerCfg:
    """The ``runner`` section.

    Attributes:
        num_steps_per_env: rollout length ``T`` per iteration (batch = ``T * num_envs``).
        save_interval: save ``model_<iter>.pt`` every this many iterations (and always at the end).
        experiment_name, run_name: run directory naming, ``logs/<experiment_name>/<date>_<run_name>``.
        seed: seeds torch before the policy is built.
        max_iterations, init_at_random_ep_len: defaults of the same-named ``learn`` arguments.
        resume, load_run, checkpoint: used by scripts to pick a checkpoint to resume from
            (``load_run`` None or -1: latest run; ``checkpoint`` -1: latest iteration).
        print_progress: print the one-line progress display each iteration.
    """

    num_steps_per_env: int = 24
    max_iterations: int = 1500
    save_interval: int = 50
    experiment_name: str = "default"
    run_name: str = ""
    seed: int = 1
    init_at_random_ep_len: bool = False
    resume: bool = False
    load_run: str | None = None
    checkpoint: int = -1
    print_progress: bool = True


def resolve_train_cfg(train_cfg: dict[str, Any], source: str = "train_cfg") -> dict[str, dict[str, Any]]:
    """Validated copy of ``train_cfg`` with every section and default filled in (what ``config.json`` records)."""
    unknown = sorted(set(train_cfg) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown} in {source} (valid: {', '.join(SECTIONS)})")
    alg_cfg = dict(train_cfg.get("algorithm", {}))
    alg_name = alg_cfg.pop("class_name", DEFAULT_ALGORITHM_CLASS)
    if alg_name not in ALGORITHM_CLASSES:
        raise ConfigError(f"unknown algorithm class '{alg_name}' in {source} (valid: {', '.join(ALGORITHM_CLASSES)})")
    alg_kwargs = resolve_kwargs(
        ALGORITHM_CLASSES[alg_name], alg_cfg, "algorithm", source, exclude={"policy", "device", "dist"}
    )
    return {
        "policy": resolve_policy_cfg(train_cfg.get("policy", {}), source),
        "algorithm": {"class_name": alg_name, **alg_kwargs},
        "runner": resolve_kwargs(RunnerCfg, train_cfg.get("runner", {}), "runner", source),
    }
