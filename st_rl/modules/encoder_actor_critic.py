"""Encoder feature stage: named observation segments are replaced by learned latents before the next stage.

Example (``class_name: EncoderActorCritic``)::

    encoder_component_names: [height_scan, image]
    encoder_class_name: [MlpModel, Conv2dHeadModel]
    encoder_kwargs:
      - {hidden_sizes: [64]}
      - {channels: [8, 16], kernel_sizes: [3, 3], strides: [2, 1], hidden_sizes: [32]}
    encoder_output_size: [16, 32]
    critic_encoder_component_names: shared

Each encoded segment keeps its name and position in the layout the next stage sees, its shape becomes
``(encoder_output_size,)``. The encoders see the *normalised* observation segment (like every stage).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional

import torch
from torch import nn

from st_rl.modules.actor_critic import ActorCritic, HiddenStates, Segments, incoming_layouts
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.amp_discriminator import AmpMixin
from st_rl.modules.conv2d import Conv2dHeadModel
from st_rl.modules.mlp import MlpModel
from st_rl.utils.config import resolve_kwargs
from st_rl.utils.obs_segments import get_obs_slice, segment_size

ENCODER_CLASSES: dict[str, type[nn.Module]] = {"MlpModel": MlpModel, "Conv2dHeadModel": Conv2dHeadModel}
"""Encoder classes by ``encoder_class_name``; their size arguments are set from the segment, not from kwargs."""

_INJECTED_ENCODER_ARGS = {"MlpModel": {"input_size", "output_size"}, "Conv2dHeadModel": {"image_shape", "output_size"}}

Piece = tuple[int, int, str | None]  # (start, end, encoder name or None for raw columns)


class EncoderSpec(NamedTuple):
    """How to build the encoder of one segment (pure data, checked before any module is built)."""

    class_name: str
    kwargs: dict[str, Any]
    output_size: int
    shape: tuple[int, ...]

    def build(self) -> nn.Module:
        """The encoder ``(..., prod(shape)) -> (..., output_size)``."""
        if self.class_name == "Conv2dHeadModel":
            image_shape = self.shape if len(self.shape) == 3 else (1, *self.shape)
            return Conv2dHeadModel(image_shape, **self.kwargs, output_size=self.output_size)
        return MlpModel(segment_size(self.shape), **self.kwargs, output_size=self.output_size)


def make_encoder_spec(
    name: str,
    shape: tuple[int, ...],
    class_name: Any,
    kwargs: Any,
    output_size: Any,
    keys: tuple[str, str, str] = ("encoder_class_name", "encoder_kwargs", "encoder_output_size"),
) -> EncoderSpec:
    """Check one segment's encoder settings and return its spec; ``keys`` name the class, kwargs and size config
    keys in messages.

    Raises:
        ValueError: unknown class name, kwargs not a dict / unknown kwarg (a ConfigError), bad output size,
            or a segment shape the class cannot take (Conv2dHeadModel needs ``(C, H, W)`` or ``(H, W)``).
    """
    class_key, kwargs_key, size_key = keys
    if class_name not in ENCODER_CLASSES:
        raise ValueError(
            f"unknown {class_key} '{class_name}' for segment '{name}' (valid: {', '.join(ENCODER_CLASSES)})"
        )
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{kwargs_key} for segment '{name}' must be a dict, got {kwargs!r}")
    if isinstance(output_size, bool) or not isinstance(output_size, int) or output_size <= 0:
        raise ValueError(f"{size_key} for segment '{name}' must be a positive int, got {output_size!r}")
    if class_name == "Conv2dHeadModel" and len(shape) not in (2, 3):
        raise ValueError(f"segment '{name}' has shape {shape}; Conv2dHeadModel needs (C, H, W) or (H, W)")
    resolved = resolve_kwargs(
        ENCODER_CLASSES[class_name],
        dict(kwargs),
        f"policy.{kwargs_key}",
        f"the {class_name} encoder of '{name}'",
        exclude=_INJECTED_ENCODER_ARGS[class_name],
    )
    return EncoderSpec(class_name, resolved, output_size, tuple(shape))


def per_component(value: Any, num: int, what: str, scalar_types: tuple[type, ...]) -> list[Any]:
    """``value`` for each of ``num`` components: a scalar (of ``scalar_types``) is shared, a list has one each."""
    if isinstance(value, scalar_types):
        return [value] * num
    if isinstance(value, (list, tuple)):
        if len(value) != num:
            raise ValueError(f"{what} has {len(value)} entries, expected 1 or one per component ({num}): {value!r}")
        return list(value)
    raise ValueError(f"{what} must be a {scalar_types[0].__name__} or a list of them, got {value!r}")


def replace_segments(layout: Segments, specs: Mapping[str, EncoderSpec]) -> Segments:
    """``layout`` with each encoded segment's shape replaced by ``(output_size,)``, same names and order."""
    return OrderedDict((name, (specs[name].output_size,) if name in specs else shape) for name, shape in layout.items())


def segment_pieces(layout: Segments, encoded: Sequence[str]) -> list[Piece]:
    """Column ranges of ``layout`` in order, each raw (adjacent raw segments merged) or one encoded segment."""
    pieces: list[Piece] = []
    start = 0
    for name, shape in layout.items():
        end = start + segment_size(shape)
        if name in encoded:
            pieces.append((start, end, name))
        elif pieces and pieces[-1][2] is None and pieces[-1][1] == start:
            pieces[-1] = (pieces[-1][0], end, None)
        else:
            pieces.append((start, end, None))
        start = end
    return pieces


def encode_pieces(x: torch.Tensor, pieces: Sequence[Piece], encoders: Mapping[str, nn.Module]) -> torch.Tensor:
    """``x`` ``(..., in)`` with every encoded piece replaced by its encoder's latent: ``(..., out)``."""
    parts = [x[..., s:e] if name is None else encoders[name](x[..., s:e]) for s, e, name in pieces]
    return torch.cat(parts, dim=-1)


class EncodedSegmentsStage(nn.Module):
    """Exported stage ``(B, in) -> (B, out)``: copies of the encoders applied to their column ranges, the other
    columns passed through, in layout order. Stateless; scriptable."""

    def __init__(self, pieces: Sequence[Piece], encoders: Mapping[str, nn.Module]) -> None:
        super().__init__()
        encoded = [(s, e, name) for s, e, name in pieces if name is not None]
        self.encoders = nn.ModuleList([copy.deepcopy(encoders[name]) for _, _, name in encoded])
        self.encoder_starts = [s for s, _, _ in encoded]
        self.encoder_ends = [e for _, e, _ in encoded]
        self.starts = [s for s, _, _ in pieces]
        self.ends = [e for _, e, _ in pieces]
        slots, slot = [], 0
        for _, _, name in pieces:
            slots.append(-1 if name is None else slot)
            slot += name is not None
        self.slots = slots

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latents: list[torch.Tensor] = []
        i = 0
        for encoder in self.encoders:
            latents.append(encoder(x[..., self.encoder_starts[i] : self.encoder_ends[i]]))
            i += 1
        parts: list[torch.Tensor] = []
        for k in range(len(self.starts)):
            slot = self.slots[k]
            if slot < 0:
                parts.append(x[..., self.starts[k] : self.ends[k]])
            else:
                parts.append(latents[slot])
        return torch.cat(parts, dim=-1)

    @torch.jit.export
    def reset(self, dones: Optional[torch.Tensor] = None) -> None:  # noqa: UP045 (TorchScript needs Optional)
        pass


class EncoderActorCriticMixin:
    """Feature stage encoding named segments of the actor (and optionally critic) observation.

    Keyword args:
        encoder_component_names: segments of the actor stage input (the observation segments unless an earlier
            stage changed the layout) to encode; at least one.
        encoder_class_name: ``"MlpModel"`` (default) or ``"Conv2dHeadModel"``, for all components or a list with
            one per component.
        encoder_kwargs: constructor kwargs of the encoder class without its size arguments (MlpModel:
            ``hidden_sizes``, ``nonlinearity``; Conv2dHeadModel: ``channels``, ``kernel_sizes``, ``strides``,
            ``paddings``, ``nonlinearity``, ``normlayer``, ``use_maxpool``, ``hidden_sizes``); one dict for all
            components or a list with one per component. MlpModel needs ``hidden_sizes`` (may be ``[]``).
        encoder_output_size: latent size, an int for all components or a list with one per component; required.
        critic_encoder_component_names: ``None``: the critic sees its segments raw. ``"shared"``: the critic
            applies the actor's encoder modules (same parameters) to the same-named segments of its input (every
            actor component the critic input has, with the same shape; at least one). A list: separate critic
            encoders for those critic segments, built like the actor encoder of the same name, or like the first
            actor component's encoder for a segment the actor does not encode.

    Attributes:
        encoders: ``nn.ModuleDict`` segment name -> actor encoder; critic_encoders: the separate critic encoders
        (empty unless ``critic_encoder_component_names`` is a list).
    """

    def __init__(
        self,
        *args,
        encoder_component_names: Sequence[str] = (),
        encoder_class_name: str | Sequence[str] | None = None,
        encoder_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        encoder_output_size: int | Sequence[int] | None = None,
        critic_encoder_component_names: str | Sequence[str] | None = None,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
        **kwargs,
    ) -> None:
        _, _, actor_in, critic_in = incoming_layouts(args, kwargs, actor_feature_segments, critic_feature_segments)
        actor_specs = _actor_specs(
            actor_in, encoder_component_names, encoder_class_name, encoder_kwargs, encoder_output_size
        )
        critic_specs, critic_shared = _critic_specs(critic_in, actor_specs, critic_encoder_component_names)
        super().__init__(
            *args,
            actor_feature_segments=replace_segments(actor_in, actor_specs),
            critic_feature_segments=replace_segments(critic_in, critic_specs),
            **kwargs,
        )
        self.encoder_component_names = list(actor_specs)
        self.critic_encoder_component_names = list(critic_specs)
        self.critic_encoder_shared = critic_shared
        self.encoder_actor_segments = actor_in
        self.encoder_critic_segments = critic_in
        self.encoder_specs = actor_specs
        self.critic_encoder_specs = critic_specs
        self._actor_pieces = segment_pieces(actor_in, self.encoder_component_names)
        self._critic_pieces = segment_pieces(critic_in, self.critic_encoder_component_names)
        self.encoders = nn.ModuleDict({name: spec.build() for name, spec in actor_specs.items()})
        self.critic_encoders = nn.ModuleDict(
            {} if critic_shared else {name: spec.build() for name, spec in critic_specs.items()}
        )

    def _critic_encoder_modules(self) -> Mapping[str, nn.Module]:
        return self.encoders if self.critic_encoder_shared else self.critic_encoders

    def actor_features(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        x = encode_pieces(obs, self._actor_pieces, self.encoders)
        return super().actor_features(x, masks, hidden_states)

    def critic_features(
        self, critic_obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        if self.critic_encoder_component_names:
            critic_obs = encode_pieces(critic_obs, self._critic_pieces, self._critic_encoder_modules())
        return super().critic_features(critic_obs, masks, hidden_states)

    def get_encoder_latent(self, obs: torch.Tensor, name: str, critic: bool = False) -> torch.Tensor:
        """Latent ``(..., encoder_output_size)`` of segment ``name`` from a RAW flat observation.

        Args:
            obs: ``(..., num_actor_obs)`` (``(..., num_critic_obs)`` with ``critic=True``), not normalised: the
                normaliser is applied here as on the forward path.
            name: an encoded actor component (critic component with ``critic=True``).

        Raises:
            ValueError: ``name`` is not encoded (the message lists the encoded ones).
            RuntimeError: an earlier feature stage moved the segment, so the raw observation is not its input.
        """
        names = self.critic_encoder_component_names if critic else self.encoder_component_names
        if name not in names:
            which = "critic" if critic else "actor"
            raise ValueError(f"'{name}' is not an encoded {which} segment (encoded: {', '.join(names) or 'none'})")
        stage_in = self.encoder_critic_segments if critic else self.encoder_actor_segments
        obs_layout = self.critic_obs_segments if critic else self.actor_obs_segments
        in_slice = get_obs_slice(stage_in, name)
        if name not in obs_layout or get_obs_slice(obs_layout, name) != in_slice:
            raise RuntimeError(f"segment '{name}' is not where the observation has it: an earlier stage moved it")
        x = self._normalize_critic(obs) if critic else self._normalize_actor(obs)
        encoders = self._critic_encoder_modules() if critic else self.encoders
        return encoders[name](x[..., in_slice[0]])

    def obs_layouts(self) -> dict[str, Segments]:
        layouts = super().obs_layouts()
        for prefix, specs in (("encoders", self.encoder_specs), ("critic_encoders", self.critic_encoder_specs)):
            if prefix == "critic_encoders" and self.critic_encoder_shared:
                continue
            for name, spec in specs.items():
                if spec.class_name == "MlpModel":
                    layouts[f"{prefix}.{name}.0.weight"] = OrderedDict([(name, spec.shape)])
        return layouts

    def export_actor_stages(self) -> list[nn.Module]:
        return [EncodedSegmentsStage(self._actor_pieces, self.encoders), *super().export_actor_stages()]


def _actor_specs(
    layout: Segments, names: Any, class_names: Any, kwargs: Any, output_sizes: Any
) -> OrderedDict[str, EncoderSpec]:
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise ValueError(
            f"encoder_component_names must be a non-empty list of segment names, got {names!r} "
            f"(segments: {', '.join(layout)})"
        )
    unknown = [n for n in names if n not in layout]
    if unknown:
        raise ValueError(f"unknown encoder_component_names {unknown} (segments: {', '.join(layout)})")
    if len(set(names)) != len(names):
        raise ValueError(f"encoder_component_names has duplicates: {list(names)}")
    if output_sizes is None:
        raise ValueError("encoder_output_size is required (an int, or a list with one per encoded component)")
    n = len(names)
    class_names = per_component("MlpModel" if class_names is None else class_names, n, "encoder_class_name", (str,))
    kwargs = per_component({} if kwargs is None else kwargs, n, "encoder_kwargs", (dict,))
    output_sizes = per_component(output_sizes, n, "encoder_output_size", (int,))
    return OrderedDict(
        (name, make_encoder_spec(name, layout[name], c, k, o))
        for name, c, k, o in zip(names, class_names, kwargs, output_sizes)
    )


def _critic_specs(
    layout: Segments, actor_specs: Mapping[str, EncoderSpec], names: Any
) -> tuple[OrderedDict[str, EncoderSpec], bool]:
    """(critic specs by name, whether they share the actor's modules)."""
    if names is None:
        return OrderedDict(), False
    if names == "shared":
        shared = [name for name in actor_specs if name in layout]
        if not shared:
            raise ValueError(
                f"critic_encoder_component_names 'shared': the critic input has none of the encoded segments "
                f"{list(actor_specs)} (critic segments: {', '.join(layout)})"
            )
        for name in shared:
            if tuple(layout[name]) != actor_specs[name].shape:
                raise ValueError(
                    f"critic_encoder_component_names 'shared': segment '{name}' has shape {tuple(layout[name])} for "
                    f"the critic but {actor_specs[name].shape} for the actor"
                )
        return OrderedDict((name, actor_specs[name]) for name in shared), True
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ValueError(f"critic_encoder_component_names must be None, 'shared' or a list of names, got {names!r}")
    unknown = [n for n in names if n not in layout]
    if unknown:
        raise ValueError(f"unknown critic_encoder_component_names {unknown} (critic segments: {', '.join(layout)})")
    if len(set(names)) != len(names):
        raise ValueError(f"critic_encoder_component_names has duplicates: {list(names)}")
    first = next(iter(actor_specs.values()))
    specs = OrderedDict()
    for name in names:
        model = actor_specs.get(name, first)
        specs[name] = make_encoder_spec(name, tuple(layout[name]), model.class_name, model.kwargs, model.output_size)
    return specs, False


class EncoderActorCritic(EncoderActorCriticMixin, ActorCritic):
    """:class:`ActorCritic` whose actor (and optionally critic) sees encoded segments; see the mixin."""


class EncoderActorCriticRecurrent(EncoderActorCriticMixin, ActorCriticRecurrent):
    """Encoders, then the GRU/LSTM memories, then the MLPs."""


class EncoderAmpActorCriticRecurrent(EncoderActorCriticMixin, AmpMixin, ActorCriticRecurrent):
    """Encoders, then the memories and MLPs, plus an AMP discriminator over the env's ``amp_obs_segments``."""
