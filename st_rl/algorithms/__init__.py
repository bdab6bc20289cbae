"""Learning algorithms, by ``algorithm.class_name``."""

from st_rl.algorithms.appo import APPO
from st_rl.algorithms.estimator import EstimatorPPO
from st_rl.algorithms.ppo import PPO
from st_rl.algorithms.tppo import TPPO

ALGORITHM_CLASSES = {"PPO": PPO, "EstimatorPPO": EstimatorPPO, "APPO": APPO, "TPPO": TPPO}

__all__ = ["ALGORITHM_CLASSES", "APPO", "PPO", "EstimatorPPO", "TPPO"]
