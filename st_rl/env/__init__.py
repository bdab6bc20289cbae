"""The environment contract."""

from st_rl.env.vec_env import VecEnv

__all__ = ["VecEnv"]
