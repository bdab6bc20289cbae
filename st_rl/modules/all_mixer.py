"""Composites of several mixins: a state estimator in front of encoders (and a memory).

The class order is the pipeline order (see :mod:`st_rl.modules.actor_critic`): the estimator reads and
replaces segments of the observation first, then the encoders turn segments into latents, then the
memory (recurrent variant) and the MLPs. Train them with ``EstimatorPPO``. Like every st_rl policy they
load checkpoints whose segments were reordered, added or removed with ``load_misaligned_state_dict`` /
``load_misaligned_from_run`` (matching by segment name, with a report of what could not be matched).
"""

from __future__ import annotations

from st_rl.modules.actor_critic import ActorCritic
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.encoder_actor_critic import EncoderActorCriticMixin
from st_rl.modules.state_estimator import EstimatorMixin


class EncoderStateAc(EstimatorMixin, EncoderActorCriticMixin, ActorCritic):
    """State estimator, then encoders, then the actor/critic MLPs."""


class EncoderStateAcRecurrent(EstimatorMixin, EncoderActorCriticMixin, ActorCriticRecurrent):
    """State estimator, then encoders, then the GRU/LSTM memories and the MLPs."""
