"""Env configs shared by the legged_env tests (and, through the persistent compilation cache, the script tests).

Every distinct (config, num_envs) costs one JAX compile of the batched step and one of the reset (20-60 s cold, a
few seconds from the persistent cache, in any process), and so does the same config stepped with uncommitted
arrays (see :func:`commit`), so the tests use only these few.
"""

import jax

from legged_env.tasks import get_task
from legged_rl import cli

NUM_ENVS = 16


def default_config(task: str, num_envs: int = NUM_ENVS) -> dict:
    """The ``task``'s default env config for ``num_envs`` envs."""
    cfg = get_task(task).default_config()
    cfg["num_envs"] = num_envs
    return cfg


def default_env(env_cache: dict, task: str):
    """The ``task`` env of its default config, :data:`NUM_ENVS` envs, seed 0, built once per session and kept in
    ``env_cache`` under the task's name (test_every_task_builds_resets_and_steps, the walk_env and walk_amp_env
    fixtures)."""
    if task not in env_cache:
        env_cache[task] = build(default_config(task), task=task)
    return env_cache[task]


def commit(tree):
    """``tree`` committed to the default device, as a step returns its state and the torch bridge hands actions
    over: the jitted step compiles once per input signature, and uncommitted arrays (``jnp.zeros``,
    ``jax.random.normal``) make it compile a second time (a second persistent-cache entry too)."""
    return jax.device_put(tree, jax.devices()[0])


def walk_config(num_envs: int = NUM_ENVS) -> dict:
    """The walk task's default env config for ``num_envs`` envs (configs/walk.yaml's env section is the same)."""
    return default_config("walk", num_envs)


def calm_config(num_envs: int = NUM_ENVS) -> dict:
    """Walk config with every random perturbation off: no DR, no observation noise, no pushes,
    spawn in the exact default pose at rest. Only the spawn yaw and the commands stay random."""
    cfg = walk_config(num_envs)
    cfg["domain_rand"].update(
        friction=[1.0, 1.0], added_mass=[0.0, 0.0], com_offset=[0.0, 0.0], motor_strength=[1.0, 1.0], push_vel_xy=0.0
    )
    cfg["noise"]["enabled"] = False
    cfg["init_state"].update(joint_pos_noise=0.0, base_vel_noise=0.0)
    return cfg


DEPTH_HW = (12, 16)
# The climb test config as ``--set`` items: no random perturbations, every env at its own level (spread), a small
# forward depth image in the critic observation. The climb script tests train with the same items, so a run finds
# the reset and step compiled in-process in the persistent cache. (env.terrain.walls_collide=false would not make
# the compile cheaper: measured 29-32 s for the step either way, the boxes already need the same collision kernels.)
CLIMB_SETS = (
    "env.noise.enabled=false",
    "env.domain_rand.friction=[1.0,1.0]",
    "env.domain_rand.added_mass=[0.0,0.0]",
    "env.domain_rand.com_offset=[0.0,0.0]",
    "env.domain_rand.motor_strength=[1.0,1.0]",
    "env.domain_rand.push_vel_xy=0.0",
    "env.init_state.joint_pos_noise=0.0",
    "env.init_state.base_vel_noise=0.0",
    "env.init_state.yaw=[0.0,0.0]",
    "env.terrain.init_level=spread",
    f"env.forward_depth.resolution=[{DEPTH_HW[0]},{DEPTH_HW[1]}]",
    "env.observations.critic.forward_depth={scale: 1.0}",
)
# On top of CLIMB_SETS: virtual obstacles, levels that never move, the depth image and the actor's proprioception
# 2 policy steps late.
SOFT_SETS = (
    "env.terrain.virtual_obstacles=true",
    "env.terrain.curriculum=false",
    "env.forward_depth.latency_steps=[2,2]",
    "env.proprio_latency_steps=[2,2]",
)


def climb_config(num_envs: int, *sets: str) -> dict:
    """The env config ``scripts/train.py --task=climb --num_envs <num_envs>`` trains on with each of
    :data:`CLIMB_SETS` and ``sets`` as a ``--set`` item (configs/climb.yaml, resolved by the same code)."""
    spec = get_task("climb")
    path = cli.CONFIG_DIR / spec.config_file
    items = [f"env.num_envs={num_envs}", *CLIMB_SETS, *sets]
    return cli.resolve_config(spec, cli.read_yaml(path), str(path), items)["env"]


def set_args(sets) -> list[str]:
    """``--set <item>`` for each item, for a script's command line."""
    return [arg for item in sets for arg in ("--set", item)]


def build(cfg: dict, seed: int = 0, task: str = "walk"):
    """The ``task`` env for ``cfg`` (``cfg["num_envs"]`` envs)."""
    spec = get_task(task)
    return spec.env_class(cfg, cfg["num_envs"], seed=seed)


def segment_slices(segments) -> dict[str, slice]:
    """``name -> slice`` of each segment in the flat observation."""
    out, start = {}, 0
    for name, shape in segments.items():
        size = 1
        for d in shape:
            size *= d
        out[name] = slice(start, start + size)
        start += size
    return out
