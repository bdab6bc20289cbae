"""Learning algorithms, by ``algorithm.class_name``."""

from st_rl.algorithms.appo import APPO
from st_rl.algorithms.estimator import EstimatorPPO
from st_rl.algorithms.ppo import PPO

ALGORITHM_CLASSES = {"PPO": PPO, "EstimatorPPO": EstimatorPPO, "APPO": APPO}

__all__ = ["ALGORITHM_CLASSES", "APPO", "PPO", "EstimatorPPO"]
