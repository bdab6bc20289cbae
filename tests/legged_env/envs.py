"""Env configs shared by the legged_env tests. Every distinct (config, num_envs) costs one JAX compile
(~20 s cold, a few seconds from the persistent cache), so the tests use only these few."""

from legged_env.tasks import get_task

NUM_ENVS = 16


def walk_config(num_envs: int = NUM_ENVS) -> dict:
    """The walk task's default env config for ``num_envs`` envs."""
    cfg = get_task("walk").default_config()
    cfg["num_envs"] = num_envs
    return cfg


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


def build(cfg: dict, seed: int = 0):
    """The walk task for ``cfg`` (``cfg["num_envs"]`` envs)."""
    spec = get_task("walk")
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
