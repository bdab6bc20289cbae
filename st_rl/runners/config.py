"""The training config sections and their validation (``policy``, ``algorithm``, ``runner``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from st_rl.algorithms import ALGORITHM_CLASSES
from st_rl.algorithms.symmetry import resolve_symmetry_cfg
from st_rl.modules import POLICY_CLASSES, resolve_policy_cfg
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
        logger: ``"tensorboard"`` (scalars in the run directory's event file) or ``"wandb"``: the same scalars,
            with the same keys and steps, also go to a Weights & Biases run (rsl_rl's ``logger`` key); see
            :class:`~st_rl.runners.logger.WandbWriter`.
        wandb_project: the W&B project of ``logger="wandb"``; ``""``: the experiment name.
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
    logger: str = "tensorboard"
    wandb_project: str = ""


# Value checks by section and key, run when the config is resolved: a bad value then fails in a second, naming
# its key, instead of inside a constructor after the env has been built and compiled (or, like
# num_mini_batches=0, as a ZeroDivisionError in the first update, after the run directory was written).
# A key is checked only where the resolved section has it (PPO's keys are shared by every algorithm class).
ValueCheck = tuple[Callable[[Any], bool], str]


def _at_least(low: float) -> ValueCheck:
    return (lambda v: v >= low), f">= {low}"


def _above(low: float) -> ValueCheck:
    return (lambda v: v > low), f"> {low}"


def _one_of(*choices: str) -> ValueCheck:
    return (lambda v: v in choices), f"one of {', '.join(choices)}"


_UNIT: ValueCheck = (lambda v: 0.0 <= v <= 1.0), "in [0, 1]"
_LAYER_SIZES: ValueCheck = (
    lambda v: all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in v),
    "a list of layer sizes >= 1",
)

VALUE_CHECKS: dict[str, dict[str, ValueCheck]] = {
    "policy": {
        "actor_hidden_dims": _LAYER_SIZES,
        "critic_hidden_dims": _LAYER_SIZES,
        "init_noise_std": _above(0),
        "rnn_type": _one_of("gru", "lstm"),
        "rnn_hidden_size": _at_least(1),
        "rnn_num_layers": _at_least(1),
        "visual_latent_size": _at_least(1),
    },
    "algorithm": {
        "num_learning_epochs": _at_least(1),
        "num_mini_batches": _at_least(1),
        "clip_param": _above(0),
        "gamma": _UNIT,
        "lam": _UNIT,
        "learning_rate": _above(0),
        "max_grad_norm": _above(0),
        "schedule": _one_of("adaptive", "fixed"),
        "desired_kl": _above(0),
        "clip_min_std": _at_least(0),
        # TPPO (st_rl.algorithms.tppo)
        "teacher_checkpoint": _at_least(-1),
        "distill_loss": _one_of("mse", "l1", "nll"),
        "distill_coef": _at_least(0),
        "teacher_act_prob": _UNIT,
        "teacher_act_prob_schedule": _one_of("constant", "linear", "exp"),
        "teacher_act_prob_final": _UNIT,
        "teacher_act_prob_decay_iterations": _at_least(1),
        "latent_distill_coef": _at_least(0),
    },
    "runner": {
        "num_steps_per_env": _at_least(1),
        "max_iterations": _at_least(0),
        "save_interval": _at_least(1),
        "logger": _one_of("tensorboard", "wandb"),
    },
}


def check_values(section: str, values: dict[str, Any], source: str) -> None:
    """ConfigError ``"<section>.<key> in <source> must be <rule>, got <value>"`` for the first value of a resolved
    section that breaks its :data:`VALUE_CHECKS` rule (types were checked by ``resolve_kwargs`` already)."""
    for key, (ok, rule) in VALUE_CHECKS.get(section, {}).items():
        if key in values and values[key] is not None and not ok(values[key]):
            raise ConfigError(f"{section}.{key} in {source} must be {rule}, got {values[key]!r}")


def check_mini_batches(
    train_cfg: dict[str, dict[str, Any]], num_envs: int, source: str, num_envs_name: str = "env.num_envs"
) -> None:
    """ConfigError when ``algorithm.num_mini_batches`` of the resolved ``train_cfg`` cannot split one rollout of
    ``num_envs`` envs (this process's share): a feed-forward policy's mini-batches split the
    ``num_steps_per_env * num_envs`` samples, a recurrent policy's split the envs (whole trajectories).
    Without it, the first update fails after the env was built and the run directory written. ``num_envs_name``
    is what the message calls ``num_envs`` (the flag or key that set it)."""
    recurrent = bool(getattr(POLICY_CLASSES[train_cfg["policy"]["class_name"]], "is_recurrent", False))
    n = train_cfg["algorithm"]["num_mini_batches"]
    steps = train_cfg["runner"]["num_steps_per_env"]
    if recurrent and n > num_envs:
        raise ConfigError(
            f"algorithm.num_mini_batches {n} in {source} exceeds the {num_envs} envs of a rollout "
            "(a recurrent policy's mini-batches hold whole envs)"
        )
    if n > num_envs * steps:
        raise ConfigError(
            f"algorithm.num_mini_batches {n} in {source} exceeds the {num_envs * steps} samples of a rollout "
            f"({num_envs_name} {num_envs} x runner.num_steps_per_env {steps})"
        )


def resolve_train_cfg(train_cfg: dict[str, Any], source: str = "train_cfg") -> dict[str, dict[str, Any]]:
    """Validated copy of ``train_cfg`` with every section and default filled in (what ``config.json`` records).

    Raises:
        ConfigError: unknown section, class or key, a wrong value type, or a value out of its range
            (:data:`VALUE_CHECKS`).
    """
    unknown = sorted(set(train_cfg) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown} in {source} (valid: {', '.join(SECTIONS)})")
    alg_cfg = dict(train_cfg.get("algorithm", {}))
    alg_name = alg_cfg.pop("class_name", DEFAULT_ALGORITHM_CLASS)
    if alg_name not in ALGORITHM_CLASSES:
        raise ConfigError(f"unknown algorithm class '{alg_name}' in {source} (valid: {', '.join(ALGORITHM_CLASSES)})")
    alg_kwargs = resolve_kwargs(
        ALGORITHM_CLASSES[alg_name], alg_cfg, "algorithm", source, exclude={"policy", "device", "dist", "env_cfg"}
    )
    if "symmetry" in alg_kwargs:  # a nested section: its keys are checked here, where the file is known
        alg_kwargs["symmetry"] = resolve_symmetry_cfg(alg_kwargs["symmetry"], source)
    resolved = {
        "policy": resolve_policy_cfg(train_cfg.get("policy", {}), source),
        "algorithm": {"class_name": alg_name, **alg_kwargs},
        "runner": resolve_kwargs(RunnerCfg, train_cfg.get("runner", {}), "runner", source),
    }
    for section, values in resolved.items():
        check_values(section, values, source)
    return resolved
