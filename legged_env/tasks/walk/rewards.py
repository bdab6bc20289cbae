"""Walk rewards: one pure function per name; the name is the config key and the log key ``rew_<name>``.

Each takes the step's quantities ``q`` (see ``WalkTask.quantities``) and the ``env.rewards``
config, and returns an unscaled ``()`` value. Scales (times dt) are applied in
:class:`legged_env.core.rewards.RewardTerms`.
"""

import jax.numpy as jnp


def tracking_lin_vel(q, cfg):
    """exp(-|v_cmd_xy - v_xy|^2 / sigma), base frame."""
    err = jnp.sum(jnp.square(q["commands"][:2] - q["base_lin_vel"][:2]))
    return jnp.exp(-err / cfg["tracking_sigma"])


def tracking_ang_vel(q, cfg):
    """exp(-(w_cmd_z - w_z)^2 / sigma)."""
    err = jnp.square(q["commands"][2] - q["base_ang_vel"][2])
    return jnp.exp(-err / cfg["tracking_sigma"])


def lin_vel_z(q, cfg):
    return jnp.square(q["base_lin_vel"][2])


def ang_vel_xy(q, cfg):
    return jnp.sum(jnp.square(q["base_ang_vel"][:2]))


def orientation(q, cfg):
    """Tilt: squared horizontal components of gravity in the base frame."""
    return jnp.sum(jnp.square(q["projected_gravity"][:2]))


def torques(q, cfg):
    return jnp.sum(jnp.square(q["torques"]))


def dof_acc(q, cfg):
    return jnp.sum(jnp.square((q["dof_vel"] - q["last_dof_vel"]) / q["dt"]))


def action_rate(q, cfg):
    return jnp.sum(jnp.square(q["actions"] - q["last_actions"]))


def feet_air_time(q, cfg):
    """Rewards steps longer than the target air time, paid at touch-down, only while commanded to move."""
    air = jnp.sum((q["feet_air_time"] - cfg["feet_air_time_target"]) * q["feet_first_contact"])
    return air * (jnp.linalg.norm(q["commands"][:2]) > 0.1)


def collision(q, cfg):
    """Number of thigh and calf geoms touching the ground."""
    return jnp.sum(q["leg_contacts"])


def dof_pos_limits(q, cfg):
    """How far joints are outside the soft limits (a fraction of the hard range about its centre)."""
    lo, hi = q["soft_joint_range"][:, 0], q["soft_joint_range"][:, 1]
    return jnp.sum(jnp.clip(lo - q["joint_pos"], 0.0) + jnp.clip(q["joint_pos"] - hi, 0.0))


def termination(q, cfg):
    return q["terminated"].astype(jnp.float32)


def stand_still(q, cfg):
    """Joint deviation from the default pose while the command is (near) zero."""
    return jnp.sum(jnp.abs(q["dof_pos"])) * (jnp.linalg.norm(q["commands"][:2]) < 0.1)


REWARDS = {
    f.__name__: f
    for f in (
        tracking_lin_vel,
        tracking_ang_vel,
        lin_vel_z,
        ang_vel_xy,
        orientation,
        torques,
        dof_acc,
        action_rate,
        feet_air_time,
        collision,
        dof_pos_limits,
        termination,
        stand_still,
    )
}
