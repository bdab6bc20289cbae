"""legged_env: batched legged-robot environments in JAX + MuJoCo-MJX (imports jax, mujoco and numpy only).

Tasks are pure functions over a :class:`legged_env.core.state.State` pytree, vmapped over envs and jitted once.
``legged_env.make(task, num_envs=..., **overrides)`` builds one (:mod:`legged_env.api`). The application
package ``legged_rl`` puts a task behind the PyTorch learner's contract (``legged_rl.torch_vec_env``).
"""

__all__ = ["make"]


def __getattr__(name: str):
    # Lazy: ``import legged_env`` stays cheap; the tasks (and mjx) load on first use.
    if name == "make":
        from legged_env.api import make

        return make
    raise AttributeError(f"module 'legged_env' has no attribute {name!r}")
