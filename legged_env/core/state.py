"""The per-env State pytree that reset/step pass around (vmapped: every leaf gains a leading num_envs axis)."""

import dataclasses

import jax
from mujoco import mjx


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class State:
    """One env's state. Shapes are per env; batched states add a leading ``(num_envs,)`` axis.

    Attributes:
        data: MJX physics data.
        obs: ``(num_obs,)`` actor observation (noisy, scaled), already the reset one after a done.
        critic_obs: ``(num_critic_obs,)`` privileged observation (clean, scaled).
        reward: ``()`` total reward of the last step (scales already multiplied by dt).
        done: ``()`` bool, the episode ended in the last step (termination or time-out).
        time_out: ``()`` bool, the episode ended by time-out only.
        final_critic_obs: ``(num_critic_obs,)`` critic obs of the final state before the auto-reset.
        amp_obs: ``(num_amp_obs,)`` AMP observation (clean, unscaled unless configured) of the current state,
            already the reset one after a done; ``(0,)`` when the task has no ``observations.amp`` group.
        final_amp_obs: ``(num_amp_obs,)`` AMP observation of the final state before the auto-reset.
        info: task bookkeeping (rng, step counter, commands, last actions, randomised parameters...).
        metrics: clean quantities of the last step before any reset (episode sums, velocities, power).
    """

    data: mjx.Data
    obs: jax.Array
    critic_obs: jax.Array
    reward: jax.Array
    done: jax.Array
    time_out: jax.Array
    final_critic_obs: jax.Array
    info: dict
    metrics: dict
    amp_obs: jax.Array
    final_amp_obs: jax.Array

    def replace(self, **changes) -> "State":
        return dataclasses.replace(self, **changes)
