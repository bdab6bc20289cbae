"""Utilities: strict config resolution, observation segments, policy export."""

from st_rl.utils.config import ConfigError, resolve_kwargs
from st_rl.utils.obs_segments import (
    get_obs_slice,
    get_subobs_by_components,
    get_subobs_size,
    segments_num_obs,
    substitute_estimated_state,
)

__all__ = [
    "ConfigError",
    "get_obs_slice",
    "get_subobs_by_components",
    "get_subobs_size",
    "resolve_kwargs",
    "segments_num_obs",
    "substitute_estimated_state",
]
