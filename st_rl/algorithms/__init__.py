"""Learning algorithms."""

from st_rl.algorithms.ppo import PPO

ALGORITHM_CLASSES = {"PPO": PPO}

__all__ = ["ALGORITHM_CLASSES", "PPO"]
