"""Visual feature stage: an image segment of the actor observation is replaced by a conv-head latent.

On a robot the camera runs at a lower rate than the policy, so the latent is computed when a frame arrives
(:meth:`VisualActorCriticMixin.embed_visual_latent`) and reused for several policy steps
(:meth:`VisualActorCriticMixin.act_with_embedded_latent`).

Critic: the critic input is left as it is (typically privileged state without the image); only if it has a
segment of the same name does the critic get its own conv head (``critic_visual_encoder``, same settings, its
own parameters, trained by the value loss only), so the value loss never shapes the actor's visual features.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from st_rl.modules.actor_critic import ActorCritic, HiddenStates, Segments, incoming_layouts
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.deterministic_policy import DeterministicPolicyMixin
from st_rl.modules.encoder_actor_critic import (
    EncodedSegmentsStage,
    encode_pieces,
    make_encoder_spec,
    replace_segments,
    segment_pieces,
)
from st_rl.utils.obs_segments import get_obs_slice

_VISUAL_KEYS = ("visual_class_name", "visual_kwargs", "visual_latent_size")


class VisualActorCriticMixin:
    """Feature stage encoding the image segment ``visual_component_name`` with a :class:`Conv2dHeadModel`.

    Keyword args:
        visual_component_name: an image segment ``(C, H, W)`` (or ``(H, W)``) of the actor stage input; required.
        visual_kwargs: Conv2dHeadModel settings without its sizes: ``channels``, ``kernel_sizes``, ``strides``
            (required), ``paddings``, ``nonlinearity``, ``normlayer``, ``use_maxpool``, ``hidden_sizes``.
        visual_latent_size: latent width; the segment's shape becomes ``(visual_latent_size,)`` in the layout.

    Attributes:
        visual_encoder: the actor's conv head; critic_visual_encoder: the critic's own head, or None when the
            critic input has no such segment.
    """

    def __init__(
        self,
        *args,
        visual_component_name: str | None = None,
        visual_kwargs: dict[str, Any] | None = None,
        visual_latent_size: int = 32,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
        **kwargs,
    ) -> None:
        _, _, actor_in, critic_in = incoming_layouts(args, kwargs, actor_feature_segments, critic_feature_segments)
        name = visual_component_name
        if not isinstance(name, str) or name not in actor_in:
            raise ValueError(
                f"visual_component_name {name!r} is not an actor segment (segments: {', '.join(actor_in)})"
            )
        kwargs_ = {} if visual_kwargs is None else visual_kwargs
        spec = make_encoder_spec(
            name, tuple(actor_in[name]), "Conv2dHeadModel", kwargs_, visual_latent_size, _VISUAL_KEYS
        )
        critic_spec = None
        if name in critic_in:
            critic_shape = tuple(critic_in[name])
            critic_spec = make_encoder_spec(
                name, critic_shape, "Conv2dHeadModel", kwargs_, visual_latent_size, _VISUAL_KEYS
            )
        super().__init__(
            *args,
            actor_feature_segments=replace_segments(actor_in, {name: spec}),
            critic_feature_segments=replace_segments(critic_in, {name: critic_spec} if critic_spec else {}),
            **kwargs,
        )
        self.visual_component_name = name
        self.visual_latent_size = visual_latent_size
        self.visual_actor_segments = actor_in
        self.visual_critic_segments = critic_in
        self._visual_slice = get_obs_slice(actor_in, name)[0]
        self._visual_pieces = segment_pieces(actor_in, [name])
        self._critic_visual_pieces = segment_pieces(critic_in, [name] if critic_spec else [])
        self._visual_latent_override: torch.Tensor | None = None
        self.visual_encoder = spec.build()
        self.critic_visual_encoder: nn.Module | None = critic_spec.build() if critic_spec else None

    def actor_features(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        sl = self._visual_slice
        latent = self._visual_latent_override
        if latent is None:
            latent = self.visual_encoder(obs[..., sl])
        x = torch.cat([obs[..., : sl.start], latent, obs[..., sl.stop :]], dim=-1)
        return super().actor_features(x, masks, hidden_states)

    def critic_features(
        self, critic_obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        if self.critic_visual_encoder is not None:
            encoders = {self.visual_component_name: self.critic_visual_encoder}
            critic_obs = encode_pieces(critic_obs, self._critic_visual_pieces, encoders)
        return super().critic_features(critic_obs, masks, hidden_states)

    def embed_visual_latent(self, obs: torch.Tensor) -> torch.Tensor:
        """Visual latent ``(N, visual_latent_size)`` from a RAW flat actor observation ``(N, num_actor_obs)`` (the
        normaliser is applied here, as on the forward path).

        Raises:
            RuntimeError: an earlier feature stage moved the image segment, so the raw observation is not its input.
        """
        name = self.visual_component_name
        in_slice = get_obs_slice(self.visual_actor_segments, name)
        if name not in self.actor_obs_segments or get_obs_slice(self.actor_obs_segments, name) != in_slice:
            raise RuntimeError(f"segment '{name}' is not where the observation has it: an earlier stage moved it")
        return self.visual_encoder(self._normalize_actor(obs)[..., in_slice[0]])

    def act_with_embedded_latent(self, obs: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Deterministic actions ``(N, num_actions)`` (like :meth:`act_inference`, rollout mode: recurrent states
        advance) with ``latent`` ``(N, visual_latent_size)`` used in place of the image, whose columns of
        ``obs`` ``(N, num_actor_obs)`` are ignored (e.g. a stale frame)."""
        expected = (*obs.shape[:-1], self.visual_latent_size)
        if tuple(latent.shape) != expected:
            raise ValueError(f"latent has shape {tuple(latent.shape)}, expected {expected}")
        self._visual_latent_override = latent
        try:
            return self.act_inference(obs)
        finally:
            self._visual_latent_override = None

    def export_actor_stages(self) -> list[nn.Module]:
        stage = EncodedSegmentsStage(self._visual_pieces, {self.visual_component_name: self.visual_encoder})
        return [stage, *super().export_actor_stages()]


class VisualDeterministicAC(VisualActorCriticMixin, DeterministicPolicyMixin, ActorCritic):
    """Visual stage, then the actor MLP; ``act`` returns the mean (for distillation / evaluation)."""


class VisualDeterministicRecurrent(VisualActorCriticMixin, DeterministicPolicyMixin, ActorCriticRecurrent):
    """Visual stage, then the GRU/LSTM memories, then the MLPs; ``act`` returns the mean."""
