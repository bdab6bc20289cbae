"""Build a task from Python: ``legged_env.make("walk", num_envs=64, commands={"lin_vel_x": [0.3, 1.0]})``.

The same validation as the command line (``legged_rl``'s train/play): unknown keys (with the closest valid
name), wrong types and values a task's constructor rejects raise :class:`legged_env.errors.ConfigError` with
one line naming the key and where it came from.

Which config: the task's defaults (``legged_env/tasks/<task>/config.py``), then the ``env`` section of
``config`` (a recipe YAML such as ``configs/climb.yaml``, or a dict), then the keyword overrides (nested
dicts merge into the config; a reward scale or observation list is updated entry by entry, as ``--set``
does). The recipes train.py uses are the application's (``legged_rl/configs``):
``legged_rl.make_vec_env(task)`` starts from them; here they are opt-in, e.g.
``make("climb", config=legged_rl.recipe_path("climb"))``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from legged_env.config import load_yaml, merge_strict
from legged_env.errors import ConfigError
from legged_env.tasks import TaskSpec, get_task

# Sections of a recipe file besides ``env`` belong to the learner; they are not read here.
RECIPE_SECTIONS = ("env", "policy", "algorithm", "runner")


def open_keys(spec: TaskSpec) -> frozenset:
    """Dotted ``env.*`` keys holding open name -> value maps (reward scales, observation lists, ...)."""
    return frozenset(f"env.{k}" for k in spec.open_keys)


def read_recipe(path: str | os.PathLike) -> dict:
    """A recipe YAML as a mapping of its sections (each of :data:`RECIPE_SECTIONS`); a missing file, bad YAML or an
    unknown section is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections ({', '.join(RECIPE_SECTIONS)})")
    unknown = sorted(set(raw) - set(RECIPE_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section '{unknown[0]}' in {path} (valid: {', '.join(RECIPE_SECTIONS)})")
    return raw


def read_recipe_env(path: str | os.PathLike) -> dict:
    """The ``env`` section of a recipe YAML (``{}`` if it has none), read by :func:`read_recipe`."""
    return read_recipe(path).get("env") or {}


def check_env_cfg(env: dict, source: str) -> None:
    """ConfigError naming the key for the env values a task looks up by count or by name: checked before the env
    is built, so the message names ``env.<key>`` and nothing slow has run yet."""
    if env["num_envs"] < 1:
        raise ConfigError(f"env.num_envs in {source} must be >= 1, got {env['num_envs']}")
    from legged_env.robots import ROBOTS

    if "robot" in env and env["robot"] not in ROBOTS:
        raise ConfigError(f"env.robot in {source} must be one of {', '.join(sorted(ROBOTS))}, got {env['robot']!r}")
    for key, value in (env.get("solver") or {}).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"env.solver.{key} in {source} must be an integer >= 1, got {value!r}")
    dr = env.get("domain_rand") or {}
    for key in ("friction", "joint_damping", "joint_frictionloss", "joint_armature"):
        if key not in dr:
            continue
        value, low = dr[key], 0.02 if key == "friction" else 0.0
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"env.domain_rand.{key} in {source} must be [low, high], got {value!r}")
        if not low <= value[0] <= value[1]:
            # friction: the robot's geoms have 0.01 and a contact takes the larger value (go1.xml)
            raise ConfigError(f"env.domain_rand.{key} in {source} must have {low} <= low <= high, got {value!r}")


def env_config(
    task: str | TaskSpec,
    num_envs: int | None = None,
    *,
    config: str | os.PathLike | Mapping | None = None,
    **overrides: Any,
) -> dict:
    """The resolved env config :func:`make` builds (defaults, then ``config``'s env section, then overrides)."""
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    keys = open_keys(spec)
    env = spec.default_config()
    source = "the task's defaults"
    if config is not None:
        section, source = (
            (config, "the config dict") if isinstance(config, Mapping) else (read_recipe_env(config), str(config))
        )
        env = merge_strict(env, section, source, "env", keys)
    if num_envs is not None:
        overrides["num_envs"] = num_envs
    for key, value in overrides.items():
        where = f"make({spec.name!r}, {key}=...)"
        env = merge_strict(env, {key: value}, where, "env", keys, replace_open=False)
        source = f"{source} with {key}=..."
    check_env_cfg(env, source)
    return env


@contextmanager
def constructor_errors(what: str) -> Iterator[None]:
    """A ValueError/TypeError a task's constructor raises becomes a ConfigError naming ``what``; a ConfigError
    passes unchanged; anything else is a bug and keeps its traceback."""
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{what}: {e}") from e


def build_task(spec: TaskSpec, env_cfg: dict, seed: int, source: str = "<config>"):
    """The JAX task of a resolved ``env_cfg`` (compiled on its first reset/step)."""
    with constructor_errors(f"env of task {spec.name} in {source}"):
        return spec.env_class(env_cfg, env_cfg["num_envs"], seed=seed, source=source)


def make(
    task: str,
    num_envs: int | None = None,
    *,
    config: str | os.PathLike | Mapping | None = None,
    seed: int = 0,
    **overrides: Any,
):
    """The JAX task ``task`` (a batched :class:`legged_env.core.legged_env.LeggedEnv`), built from its defaults,
    ``config``'s env section and ``overrides``; ``seed`` seeds its resets and domain randomisation.

    Example::

        env = legged_env.make("walk", num_envs=64, domain_rand={"friction": [0.5, 1.0]})
        state = env.init()                                         # State pytree, leading axis num_envs
        state = jax.jit(env.step_batched)(state, jnp.zeros((64, env.num_actions)))
        state.obs, state.reward, state.done                        # (64, num_obs), (64,), (64,)
    """
    spec = get_task(task)
    cfg = env_config(spec, num_envs, config=config, **overrides)
    source = str(config) if config is not None and not isinstance(config, Mapping) else f"make({task!r})"
    return build_task(spec, cfg, seed, source)
