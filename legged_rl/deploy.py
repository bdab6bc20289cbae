"""What a robot needs beside the exported policy: the observation layout and the control law.

``policy.json`` (written by scripts/export.py next to ``policy.pt``) describes how to build the
flat actor observation from sensor readings and how to turn the policy output into torques.

``env`` is the run's resolved ``env`` config section (JSON: lists, numbers, bools, strings), so a referee such as
``scripts/sim2sim.py`` can rebuild the task around the policy: the climb track, the height-scan grid, joint passive
dynamics, solver options, episode length, command ranges and terminations.
"""

import json

from legged_env.core.legged_env import LeggedEnv


def policy_metadata(env: LeggedEnv, task: str) -> dict:
    """A JSON-ready dict for deployment of a policy trained on ``env``."""
    segments = []
    start = 0
    for name, shape in env.actor_obs.segments.items():
        size = 1
        for d in shape:
            size *= d
        scale = env.actor_obs.scale[start : start + size]
        segments.append({"name": name, "shape": list(shape), "start": start, "scale": [float(x) for x in scale]})
        start += size
    return {
        "task": task,
        "robot": env.cfg["robot"],
        "num_obs": env.actor_obs.size,
        "num_actions": env.num_actions,
        "obs_segments": segments,
        "obs_notes": {
            "layout": "flat observation = concatenation of segments in this order, each value times its scale",
            "base_lin_vel": "base linear velocity in the base frame (m/s)",
            "base_ang_vel": "base angular velocity in the base frame (rad/s)",
            "projected_gravity": "unit gravity direction in the base frame",
            "commands": "(vx m/s, vy m/s, yaw rate rad/s)",
            "dof_pos": "joint position minus default_joint_pos (rad)",
            "dof_vel": "joint velocity (rad/s)",
            "last_actions": "the policy's previous output (after clipping)",
            "base_rpy": "roll, pitch, yaw of the base (rad; ZYX Euler angles) in the world frame (climb: the track "
            "runs along +x)",
            "wall_distance": "horizontal distance (m) from the base centre to the inner face of the left (+y) and "
            "right (-y) side wall: [track_width / 2 - y, track_width / 2 + y]",
            "engaging_block": "the next obstacle edge (the first one the base is not pass_margin beyond): distance "
            "along x (m, negative once on it), one-hot type (none, climb, jump_down), depth (flat length after the "
            "edge, m), signed height (m; + climb, - jump-down); zeros and type none past the last edge",
            "height_scan": "(1, num_x, num_y): terrain height minus base height (m, clipped to +-clip) at the "
            "env.height_scan grid (x forward, y left, linspace over x_range / y_range) rotated by the base yaw",
        },
        "joint_names": list(env.robot.JOINT_NAMES),
        "default_joint_pos": [float(x) for x in env.default_joint_pos],
        "action_scale": float(env.action_scale),
        "clip_actions": float(env.cfg["control"]["clip_actions"]),
        "control_law": "tau = clip(kp * (default_joint_pos + action_scale * action - q) - kd * qdot, +-torque_limits)",
        "kp": [float(x) for x in env.kp],
        "kd": [float(x) for x in env.kd],
        "torque_limits": [float(x) for x in env.torque_limits],
        "control_dt": float(env.dt),
        "sim_dt": float(env.cfg["sim_dt"]),
        "decimation": int(env.decimation),
        "env": json.loads(json.dumps(env.cfg)),  # the resolved env section, JSON-safe (tuples become lists)
    }
