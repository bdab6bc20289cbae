"""Policy modules, registered by class name for :func:`build_policy` (:mod:`st_rl.modules.registry`).

``policy_cfg["class_name"]`` picks the class; every other key is a constructor keyword argument,
validated by :func:`st_rl.utils.config.resolve_kwargs`. Sizes and segments come from the env.
"""

from __future__ import annotations

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
from st_rl.modules.registry import (
    DEFAULT_POLICY_CLASS,
    INJECTED_POLICY_ARGS,
    POLICY_CLASSES,
    build_policy,
    load_policy_from_run,
    resolve_policy_cfg,
)
from st_rl.modules.state_adaptor import PrivilegeEstimatorMixin, PrivilegeStateAc, PrivilegeStateAcRecurrent
from st_rl.modules.state_estimator import EstimatorMixin, StateAc, StateAcRecurrent
from st_rl.modules.utils import conv2d_output_shape, get_activation_Cls
from st_rl.modules.visual_actor_critic import (
    VisualActorCriticMixin,
    VisualDeterministicAC,
    VisualDeterministicRecurrent,
)

POLICY_CLASSES.update(
    {
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
)


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
    "DEFAULT_POLICY_CLASS",
    "INJECTED_POLICY_ARGS",
    "build_policy",
    "load_policy_from_run",
    "conv2d_output_shape",
    "get_activation_Cls",
    "resolve_policy_cfg",
]
