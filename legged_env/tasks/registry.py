"""Registered tasks. Adding a task: a package under legged_env/tasks/, one entry here, one YAML in configs/."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from legged_env.errors import ConfigError
from legged_env.tasks.climb import config as climb_config
from legged_env.tasks.walk import config as walk_config


@dataclass(frozen=True)
class TaskSpec:
    """A task: its env class, default env config and keys holding open name -> value maps."""

    name: str
    # the env class, or "module:Class" imported on first use: looking a task up and resolving its config loads no
    # JAX / MJX (a config error is reported in a fraction of the time)
    env_class_ref: type | Callable | str
    default_config: Callable[[], dict]
    open_keys: frozenset
    config_file: str
    # play.py's evaluation conditions for this task (--set items applied before the user's)
    play_overrides: tuple = ()

    @property
    def env_class(self) -> type | Callable:
        """The env class (imported now if it was registered by name)."""
        ref = self.env_class_ref
        if isinstance(ref, str):
            module, _, name = ref.partition(":")
            return getattr(importlib.import_module(module), name)
        return ref


WALK = "legged_env.tasks.walk.task:WalkTask"
TASKS: dict[str, TaskSpec] = {
    "walk": TaskSpec("walk", WALK, walk_config.default_config, walk_config.OPEN_KEYS, "walk.yaml"),
    # walk with an AMP observation group, trained by APPO against shipped reference motion
    "walk_amp": TaskSpec("walk_amp", WALK, walk_config.amp_default_config, walk_config.OPEN_KEYS, "walk_amp.yaml"),
    # obstacle tracks with a height curriculum: climb up and jump down boxes
    "climb": TaskSpec(
        "climb",
        "legged_env.tasks.climb.task:ClimbTask",
        climb_config.default_config,
        climb_config.OPEN_KEYS,
        "climb.yaml",
        # every obstacle height equally often, levels fixed: one episode per env measures each bucket
        play_overrides=("env.terrain.init_level=spread", "env.terrain.curriculum=false"),
    ),
}


def get_task(name: str) -> TaskSpec:
    """Returns the registered task ``name``; unknown name -> ConfigError listing the known tasks."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}' (known tasks: {', '.join(sorted(TASKS))})")
    return TASKS[name]
