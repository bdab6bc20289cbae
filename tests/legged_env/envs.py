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


DEPTH_HW = (12, 16)


def climb_config(num_envs: int) -> dict:
    """The default climb config without random perturbations, every env at its own level (spread), and a small
    forward depth image in the critic observation."""
    cfg = get_task("climb").default_config()
    cfg["num_envs"] = num_envs
    cfg["noise"]["enabled"] = False
    cfg["domain_rand"].update(
        friction=[1.0, 1.0], added_mass=[0.0, 0.0], com_offset=[0.0, 0.0], motor_strength=[1.0, 1.0], push_vel_xy=0.0
    )
    cfg["init_state"].update(joint_pos_noise=0.0, base_vel_noise=0.0, yaw=[0.0, 0.0])
    cfg["terrain"]["init_level"] = "spread"
    cfg["forward_depth"]["resolution"] = list(DEPTH_HW)
    cfg["observations"]["critic"]["forward_depth"] = {"scale": 1.0}
    return cfg


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
