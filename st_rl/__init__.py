"""st_rl: PyTorch learners (PPO and friends) for legged-robot locomotion, in the rsl_rl tradition.

The simulator side lives in ``legged_env``; the only contract between the two is
:class:`st_rl.env.VecEnv`. This package never imports jax.
"""

__version__ = "0.1.0"
