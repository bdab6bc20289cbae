"""Default ``env`` section of the walk task. ``configs/walk.yaml`` overrides it key by key."""

import math

from legged_env.robots.go1 import constants as go1

ACTOR_SEGMENTS = {
    "base_lin_vel": {"scale": 2.0, "noise": 0.1},
    "base_ang_vel": {"scale": 0.25, "noise": 0.2},
    "projected_gravity": {"scale": 1.0, "noise": 0.05},
    "commands": {"scale": 1.0, "noise": 0.0},
    "dof_pos": {"scale": 1.0, "noise": 0.01},
    "dof_vel": {"scale": 0.05, "noise": 1.5},
    "last_actions": {"scale": 1.0, "noise": 0.0},
}
PRIVILEGED_SEGMENTS = {
    "friction": {"scale": 1.0},
    "added_mass": {"scale": 1.0},
    "com_offset": {"scale": 10.0},
    "motor_strength": {"scale": 1.0},
    "foot_contacts": {"scale": 1.0},
}


def default_config() -> dict:
    """A fresh dict of every key of the walk task's ``env`` section (one source of defaults)."""
    return {
        "robot": "go1",
        "num_envs": 1024,
        "episode_length_s": 20.0,
        "sim_dt": 0.005,
        "decimation": 4,
        # MJX solver (Newton): 2 iterations stay within 0.2 cm of MuJoCo's default solver landing from 0.05-0.45 m
        # (1 iteration: up to 7 cm off), python scripts/solver_check.py
        # max_contact_points: MJX keeps the deepest contacts per contact dimension (feet / body), for speed
        "solver": {"iterations": 2, "ls_iterations": 5, "max_contact_points": 8},
        # kd 1.0: with 0.5 a robot dropped from 0.5 m bounces and tips over (plain MuJoCo does the same).
        "control": {"kp": 35.0, "kd": 1.0, "action_scale": 0.25, "clip_actions": 10.0},
        # yaw: initial heading range (rad), uniform
        "init_state": {
            "base_height": go1.SPAWN_HEIGHT,
            "joint_pos_noise": 0.1,
            "base_vel_noise": 0.2,
            "yaw": [-math.pi, math.pi],
        },
        "commands": {
            "resampling_time_s": 10.0,
            "lin_vel_x": [-1.0, 1.0],
            "lin_vel_y": [-0.5, 0.5],
            "ang_vel_yaw": [-1.0, 1.0],
            "zero_below": 0.2,
            # fraction of sampled commands that turn in place (vx = vy = 0); 0: only those below zero_below
            "turn_in_place_fraction": 0.0,
        },
        "observations": {
            "actor": {k: dict(v) for k, v in ACTOR_SEGMENTS.items()},
            # The critic sees the clean actor quantities plus the randomised parameters and contacts.
            "critic": {**{k: {"scale": v["scale"]} for k, v in ACTOR_SEGMENTS.items()}, **PRIVILEGED_SEGMENTS},
            # AMP observation for adversarial motion priors (APPO); empty = none (walk_amp sets it).
            "amp": {},
        },
        "noise": {"enabled": True, "level": 1.0},
        # [lo, hi] policy steps (dt 0.02 s) by which the actor's IMU and joint readings (DELAYED_QUANTITIES of the
        # task) lag, drawn per env at every reset; the critic reads them on time (legged_env/core/sensors.py)
        "proprio_latency_steps": [0, 0],
        "rewards": {
            "scales": {
                "tracking_lin_vel": 1.0,
                "tracking_ang_vel": 0.5,
                "lin_vel_z": -2.0,
                "ang_vel_xy": -0.05,
                "orientation": -1.0,
                "torques": -2e-4,
                "dof_acc": -2.5e-7,
                "action_rate": -0.01,
                "feet_air_time": 1.0,
                "collision": -1.0,
                "dof_pos_limits": -10.0,
                "termination": -0.0,
                "stand_still": -0.0,
            },
            "tracking_sigma": 0.25,
            "soft_dof_pos_limit": 0.9,
            "feet_air_time_target": 0.5,
            "only_positive_rewards": True,
        },
        # Knees of a sagging robot touch the floor under DR, so thigh contact is penalised (collision), not
        # terminal, by default; add "thigh" or "calf" here to end episodes on them.
        "terminations": {"max_tilt": 1.0, "contact_geoms": ["trunk"]},
        "domain_rand": {
            "friction": [0.5, 1.25],
            "added_mass": [-1.0, 2.0],
            "com_offset": [-0.03, 0.03],
            "motor_strength": [0.9, 1.1],
            # scales of the MJCF's joint damping, frictionloss and armature (go1.xml cites the values), per joint
            "joint_damping": [0.5, 2.0],
            "joint_frictionloss": [0.5, 1.5],
            "joint_armature": [0.8, 1.2],
            "push_interval_s": 8.0,
            "push_vel_xy": 0.5,
        },
    }


# Keys whose values are name -> value maps replaced whole by an override (names checked by the task).
OPEN_KEYS = frozenset({"rewards.scales", "observations.actor", "observations.critic", "observations.amp"})


def amp_default_config() -> dict:
    """The walk_amp task: walk plus the AMP observation group (raw units, no noise) that APPO's discriminator
    compares with reference motion (layout: :data:`legged_env.robots.go1.amp.AMP_OBS_SEGMENTS`)."""
    from legged_env.robots.go1.amp import AMP_OBS_SEGMENTS

    cfg = default_config()
    cfg["observations"]["amp"] = {name: {"scale": 1.0} for name in AMP_OBS_SEGMENTS}
    return cfg
