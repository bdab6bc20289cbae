"""Climb rewards: one pure function per name (the config key and the log key ``rew_<name>``).

Each takes the step's quantities ``q`` (``ClimbTask.quantities``) and the ``env.rewards`` config and
returns an unscaled ``()`` value; scales (times dt) are applied by the core.
"""

import jax.numpy as jnp

from legged_env.tasks.walk import rewards as walk


def tracking_world_vel(q, cfg):
    """exp(-((v_cmd - v_x)^2 + v_y^2) / sigma) with the world-frame base velocity: run along the track."""
    v = q["world_lin_vel"]
    err = jnp.square(q["commands"][0] - v[0]) + jnp.square(v[1])
    return jnp.exp(-err / cfg["tracking_sigma"])


def alive(q, cfg):
    return jnp.ones(())


def energy(q, cfg):
    """sum((tau * qdot)^2): mechanical power per joint, squared."""
    return jnp.sum(jnp.square(q["torques"] * q["dof_vel"]))


def torque_limits(q, cfg):
    """How far torques exceed ``soft_torque_limit`` times the motor limits (Nm)."""
    return jnp.sum(jnp.clip(jnp.abs(q["torques"]) - cfg["soft_torque_limit"] * q["torque_limits"], 0.0))


def collision(q, cfg):
    """Trunk, hips, thighs and calves touching the terrain (count of parts, from the physics' contacts)."""
    return q["collision_count"].astype(jnp.float32)


def penetration(q, cfg):
    """Summed depth (m) of body points inside obstacles (virtual_obstacles: the soft-dynamics penalty)."""
    return q["penetration"]


REWARDS = {
    f.__name__: f
    for f in (
        tracking_world_vel,
        alive,
        energy,
        torque_limits,
        collision,
        penetration,
        walk.dof_pos_limits,
        walk.orientation,
        walk.action_rate,
        walk.dof_acc,
        walk.termination,
        walk.lin_vel_z,
        walk.ang_vel_xy,
        walk.torques,
    )
}
