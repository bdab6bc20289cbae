"""Learning algorithms, by ``algorithm.class_name``."""

from st_rl.algorithms.estimator import EstimatorPPO
from st_rl.algorithms.ppo import PPO

ALGORITHM_CLASSES = {"PPO": PPO, "EstimatorPPO": EstimatorPPO}

__all__ = ["ALGORITHM_CLASSES", "PPO", "EstimatorPPO"]
