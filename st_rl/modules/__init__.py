"""Policy modules and the registry that builds a policy from its config section.

``policy_cfg["class_name"]`` picks the class; every other key is a constructor keyword argument,
validated by :func:`st_rl.utils.config.resolve_kwargs`. Sizes and segments come from the env.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from st_rl.modules.actor_critic import ActorCritic
from st_rl.modules.actor_critic_field_mutex import ActorCriticClimbMutex, ActorCriticFieldMutex
from st_rl.modules.actor_critic_mutex import ActorCriticMutex
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent, Memory
from st_rl.modules.all_mixer import EncoderStateAc, EncoderStateAcRecurrent
from st_rl.modules.amp_discriminator import AmpActorCritic, AmpActorCriticRecurrent, AMPDiscriminator, AmpMixin
from st_rl.modules.conv2d import Conv2dHeadModel, Conv2dModel
from st_rl.modules.deterministic_policy import DeterministicPolicyMixin
from st_rl.modules.encoder_actor_critic import (
    EncoderActorCritic,
    EncoderActorCriticMixin,
    EncoderActorCriticRecurrent,
    EncoderAmpActorCriticRecurrent,
)
from st_rl.modules.misaligned import MisalignedLoadReport
from st_rl.modules.mlp import MlpModel
from st_rl.modules.normalizer import EmpiricalNormalization, Normalize, Normalizer, RunningMeanStd
from st_rl.modules.state_adaptor import PrivilegeEstimatorMixin, PrivilegeStateAc, PrivilegeStateAcRecurrent
from st_rl.modules.state_estimator import EstimatorMixin, StateAc, StateAcRecurrent
from st_rl.modules.utils import conv2d_output_shape, get_activation_Cls
from st_rl.modules.visual_actor_critic import (
    VisualActorCriticMixin,
    VisualDeterministicAC,
    VisualDeterministicRecurrent,
)
from st_rl.utils.config import ConfigError, resolve_kwargs, signature_params

POLICY_CLASSES: dict[str, type[nn.Module]] = {
    "ActorCritic": ActorCritic,
    "ActorCriticRecurrent": ActorCriticRecurrent,
    "AmpActorCritic": AmpActorCritic,
    "AmpActorCriticRecurrent": AmpActorCriticRecurrent,
    "StateAc": StateAc,
    "StateAcRecurrent": StateAcRecurrent,
    "PrivilegeStateAc": PrivilegeStateAc,
    "PrivilegeStateAcRecurrent": PrivilegeStateAcRecurrent,
    "EncoderActorCritic": EncoderActorCritic,
    "EncoderActorCriticRecurrent": EncoderActorCriticRecurrent,
    "EncoderAmpActorCriticRecurrent": EncoderAmpActorCriticRecurrent,
    "VisualDeterministicAC": VisualDeterministicAC,
    "VisualDeterministicRecurrent": VisualDeterministicRecurrent,
    "EncoderStateAc": EncoderStateAc,
    "EncoderStateAcRecurrent": EncoderStateAcRecurrent,
    # composed of trained run directories; played and exported, never trained
    "ActorCriticMutex": ActorCriticMutex,
    "ActorCriticFieldMutex": ActorCriticFieldMutex,
    "ActorCriticClimbMutex": ActorCriticClimbMutex,
}

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


__all__ = [
    "POLICY_CLASSES",
    "AMPDiscriminator",
    "AmpActorCritic",
    "AmpActorCriticRecurrent",
    "AmpMixin",
    "Conv2dHeadModel",
    "Conv2dModel",
    "DeterministicPolicyMixin",
    "EncoderActorCritic",
    "EncoderActorCriticMixin",
    "EncoderActorCriticRecurrent",
    "EncoderAmpActorCriticRecurrent",
    "EncoderStateAc",
    "EncoderStateAcRecurrent",
    "VisualActorCriticMixin",
    "VisualDeterministicAC",
    "VisualDeterministicRecurrent",
    "EstimatorMixin",
    "PrivilegeEstimatorMixin",
    "PrivilegeStateAc",
    "PrivilegeStateAcRecurrent",
    "StateAc",
    "StateAcRecurrent",
    "MisalignedLoadReport",
    "Normalizer",
    "RunningMeanStd",
    "ActorCritic",
    "ActorCriticClimbMutex",
    "ActorCriticFieldMutex",
    "ActorCriticMutex",
    "ActorCriticRecurrent",
    "EmpiricalNormalization",
    "Memory",
    "MlpModel",
    "Normalize",
    "build_policy",
    "conv2d_output_shape",
    "get_activation_Cls",
    "resolve_policy_cfg",
]
