"""Rollout storage."""

from st_rl.storage.rollout_storage import Batch, RolloutStorage, Transition

__all__ = ["Batch", "RolloutStorage", "Transition"]
