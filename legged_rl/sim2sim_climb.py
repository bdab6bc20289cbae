"""Climb episodes in plain MuJoCo (sim2sim.py --task=climb): one episode per curriculum level round-robin, as the
env runs them, summarised with play.py's climb keys plus contact and penetration statistics."""

import math

import numpy as np

from legged_rl.sim2sim import NON_FOOT, MujocoDeployment, quat_to_mat, touches


def run_climb_episode(deployment: MujocoDeployment, level: int, rng: np.random.Generator) -> dict:
    """One climb episode at curriculum ``level`` on a track sampled with ``rng``, as the env runs it: spawn at the
    origin in the default pose, yaw uniform in ``env.init_state.yaw``, command vx uniform in
    ``env.commands.lin_vel_x`` (vy = yaw rate = 0; resampled every ``resampling_time_s``), until a climb
    termination (roll / pitch limits, a ``contact_geoms`` group touching the terrain, off the track), the goal
    (success) or ``episode_length_s``."""
    dep, spec, env = deployment, deployment.track_spec, deployment.env_cfg
    track = spec.sample(rng, level)
    dep.reset(yaw=rng.uniform(*env["init_state"]["yaw"]), track=track)
    dt = dep.meta["control_dt"]
    vx = env["commands"]["lin_vel_x"]
    dep.commands = np.array([rng.uniform(*vx), 0.0, 0.0])
    resample = max(int(round(env["commands"]["resampling_time_s"] / dt)), 1)
    max_steps = int(math.ceil(env["episode_length_s"] / dt))
    term = env["terminations"]
    goal_x, max_x = spec.goal_x(track), 0.0
    steps, non_foot, body_pen, pen, outcome = 0, 0, 0.0, 0.0, "time_out"
    while steps < max_steps:
        contacts = dep.step()
        steps += 1
        non_foot += touches(contacts, NON_FOOT)
        body_pen, pen = max(body_pen, contacts["body_penetration"]), max(pen, contacts["penetration"])
        qpos = dep.data.qpos
        max_x = max(max_x, float(qpos[0]))
        g = quat_to_mat(qpos[3:7]).T @ np.array([0.0, 0.0, -1.0])
        roll, pitch = abs(math.atan2(g[1], -g[2])), abs(math.asin(min(max(g[0], -1.0), 1.0)))
        off_track = abs(qpos[1]) > spec.width / 2 and term["off_track"]
        tilted = roll > term["max_roll"] or pitch > term["max_pitch"]
        if touches(contacts, term["contact_geoms"]) or tilted or off_track:
            outcome = "fall"
            break
        if qpos[0] > goal_x:
            outcome = "success"
            break
        if steps % resample == 0:
            dep.commands = np.array([rng.uniform(*vx), 0.0, 0.0])
    return {
        "level": level,
        "height": spec.level_height(level),
        "outcome": outcome,
        "obstacles_cleared": spec.cleared(track, max_x),
        "steps": steps,
        "non_foot_contacts": non_foot,
        "max_body_penetration_m": body_pen,
        "max_penetration_m": pen,
    }


def _summary(episodes: list[dict], dt: float) -> dict:
    steps = sum(e["steps"] for e in episodes)
    non_foot = sum(e["non_foot_contacts"] for e in episodes)
    return {
        "episodes": len(episodes),
        "success_rate": float(np.mean([e["outcome"] == "success" for e in episodes])),
        "obstacles_cleared": float(np.mean([e["obstacles_cleared"] for e in episodes])),
        "fall_rate": float(np.mean([e["outcome"] == "fall" for e in episodes])),
        "mean_episode_length_s": steps * dt / len(episodes),
        "non_foot_contacts": non_foot,
        "non_foot_contact_steps_fraction": non_foot / max(steps, 1),
        "max_body_penetration_m": max(e["max_body_penetration_m"] for e in episodes),
        "max_penetration_m": max(e["max_penetration_m"] for e in episodes),
    }


def run_climb(deployment: MujocoDeployment, num_episodes: int, seed: int = 0) -> dict:
    """``num_episodes`` climb episodes over the curriculum levels round-robin (episode i at level
    ``i % num_levels``, its track, yaw and command from ``numpy.random.default_rng([seed, i])``), summarised with
    play.py's climb keys (``ClimbTask.summarize_episodes``) plus contact and penetration statistics."""
    spec, dt = deployment.track_spec, deployment.meta["control_dt"]
    episodes = [
        run_climb_episode(deployment, i % spec.num_levels, np.random.default_rng([seed, i]))
        for i in range(num_episodes)
    ]
    total = _summary(episodes, dt)
    by_height = {}
    for level in sorted({e["level"] for e in episodes}):
        at = [e for e in episodes if e["level"] == level]
        by_height[f"{spec.level_height(level):.3f}"] = {"level": level, **_summary(at, dt)}
    return {
        "success_rate": total["success_rate"],
        "obstacles_cleared_per_episode": total["obstacles_cleared"],
        "obstacles_per_track": 2 * spec.num_boxes,
        "fall_rate": total["fall_rate"],
        "mean_episode_length_s": total["mean_episode_length_s"],
        "num_episodes": num_episodes,
        "non_foot_contacts": total["non_foot_contacts"],
        "non_foot_contact_steps_fraction": total["non_foot_contact_steps_fraction"],
        "max_body_penetration_m": total["max_body_penetration_m"],
        "max_penetration_m": total["max_penetration_m"],
        "by_obstacle_height": by_height,
    }
