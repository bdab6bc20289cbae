"""Training loops."""

from st_rl.runners.config import RunnerCfg, resolve_train_cfg
from st_rl.runners.on_policy_runner import OnPolicyRunner
from st_rl.utils.errors import CheckpointError, NonFiniteError

__all__ = ["CheckpointError", "NonFiniteError", "OnPolicyRunner", "RunnerCfg", "resolve_train_cfg"]
