"""legged_rl: the application on top of ``legged_env`` (JAX simulator) and ``st_rl`` (PyTorch learner).

The torch bridge (:mod:`legged_rl.torch_vec_env`), the commands (``legged-rl-train``, ``-play``, ``-export``,
``-sim2sim``, ``-benchmark``: :mod:`legged_rl.commands`, also ``python scripts/<command>.py``), the shipped
recipes (``legged_rl/configs``), evaluation, deployment, sim2sim and benchmarks.

``legged_rl.make_vec_env(task, num_envs=...)`` builds the env train.py trains on (:mod:`legged_rl.api`).
"""

__all__ = ["make_vec_env", "recipe_path"]


def __getattr__(name: str):
    # Lazy: the commands import this package before jax may be imported (torchrun's XLA flags come first).
    if name in __all__:
        from legged_rl import api

        return getattr(api, name)
    raise AttributeError(f"module 'legged_rl' has no attribute {name!r}")
