"""Building a policy by class name, and rebuilding a trained one from its run directory.

The classes are registered in :data:`POLICY_CLASSES` by :mod:`st_rl.modules` (its ``__init__``); this module
imports none of them, so any module (the misaligned loader, the mutex policies) can build policies from runs
without an import cycle.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from st_rl.utils.checkpoint import get_load_path, read_checkpoint
from st_rl.utils.config import ConfigError, resolve_kwargs, signature_params
from st_rl.utils.obs_segments import normalize_segments

# class_name -> class; filled by st_rl.modules when it is imported (which importing this module does first).
POLICY_CLASSES: dict[str, type[nn.Module]] = {}

DEFAULT_POLICY_CLASS = "ActorCritic"

# Constructor arguments set from the environment, never from the config file.
INJECTED_POLICY_ARGS = frozenset(
    {
        "num_actor_obs",
        "num_critic_obs",
        "num_actions",
        "obs_segments",
        "privileged_obs_segments",
        "amp_obs_segments",
        # set by mixins for the classes after them in the MRO (see st_rl.modules.actor_critic)
        "actor_feature_segments",
        "critic_feature_segments",
    }
)


def resolve_policy_cfg(policy_cfg: dict[str, Any], source: str = "policy config") -> dict[str, Any]:
    """Validated copy of ``policy_cfg`` with ``class_name`` (default ``"ActorCritic"``) and every constructor
    default filled in.

    Raises:
        ConfigError: unknown ``class_name``, unknown key or wrong value type.
    """
    class_name = policy_cfg.get("class_name", DEFAULT_POLICY_CLASS)
    if class_name not in POLICY_CLASSES:
        raise ConfigError(
            f"unknown policy class '{class_name}' in {source} (valid: {', '.join(sorted(POLICY_CLASSES))})"
        )
    kwargs = {k: v for k, v in policy_cfg.items() if k != "class_name"}
    resolved = resolve_kwargs(POLICY_CLASSES[class_name], kwargs, "policy", source, exclude=INJECTED_POLICY_ARGS)
    return {"class_name": class_name, **resolved}


def build_policy(
    policy_cfg: dict[str, Any],
    num_obs: int,
    num_critic_obs: int,
    num_actions: int,
    obs_segments: OrderedDict[str, tuple[int, ...]] | None = None,
    privileged_obs_segments: OrderedDict[str, tuple[int, ...]] | None = None,
    source: str = "policy config",
    amp_obs_segments: OrderedDict[str, tuple[int, ...]] | None = None,
) -> nn.Module:
    """Build the policy named by ``policy_cfg["class_name"]`` with env sizes and segments injected.

    ``amp_obs_segments`` (the env's AMP observation layout) goes only to classes that take it (AMP policies).

    Raises:
        ConfigError: what :func:`resolve_policy_cfg` rejects, and a ValueError/TypeError of the class's
            constructor (a value it rejects, e.g. a segment name the observation lacks), naming the class and
            ``source``; other exceptions pass unchanged (they are bugs, not bad config).
    """
    resolved = resolve_policy_cfg(policy_cfg, source)
    class_name = resolved.pop("class_name")
    cls = POLICY_CLASSES[class_name]
    if "amp_obs_segments" in signature_params(cls):
        resolved["amp_obs_segments"] = amp_obs_segments
    try:
        return cls(
            num_actor_obs=num_obs,
            num_critic_obs=num_critic_obs,
            num_actions=num_actions,
            obs_segments=obs_segments,
            privileged_obs_segments=privileged_obs_segments,
            **resolved,
        )
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"policy.class_name {class_name} in {source}: {e}") from e


def load_policy_from_run(run_dir: str, checkpoint: int = -1, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the trained policy from a run directory alone (``config.json`` + ``model_<iter>.pt``), in eval mode."""
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)
    policy = build_policy(
        cfg["policy"],
        cfg["num_obs"],
        cfg["num_critic_obs"],
        cfg["num_actions"],
        _segments(cfg["obs_segments"]),
        _segments(cfg["privileged_obs_segments"]),
        source=os.path.join(run_dir, "config.json"),
        amp_obs_segments=_segments(cfg.get("amp_obs_segments")),
    )
    path = get_load_path(os.path.dirname(os.path.abspath(run_dir)), os.path.abspath(run_dir), checkpoint)
    state = read_checkpoint(path, torch.device(device))["model_state_dict"]
    policy.load_state_dict(state)
    return policy.to(device).eval()


def _segments(raw: dict[str, Any] | None):
    return normalize_segments(raw)
