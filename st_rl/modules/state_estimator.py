"""State estimator stage: predict actor segments the robot cannot measure well (e.g. base linear velocity).

The estimator is the first feature stage: an MLP reads named segments of the *normalised* actor observation
and predicts the ``estimator_target_components`` in *raw* units (its supervised target is the raw segment of
the same name in the critic (privileged) observation, see :class:`st_rl.algorithms.estimator.EstimatorPPO`).
The estimate, normalised with the actor normaliser, replaces those segments in the actor observation:
in training mode per sample with probability ``replace_state_prob`` (otherwise the actor sees the value
the env put in its observation), in eval mode and in the exported policy always. The substituted estimate
is detached: the estimator learns from its supervised loss only, never from the policy gradient.

With ``use_actor_rnn`` the estimator is an auxiliary head on the actor memory output (the ``memory_a``
segment of the actor MLP input, read after ``super().actor_features`` ran the memory): its loss shapes the
memory, and it substitutes nothing (``replace_state_prob`` must be 0, see :class:`EstimatorMixin`).

The substitution helpers here (:func:`substitute_estimate`, :class:`ExportedSubstitution`) are shared with
the privileged adaptor (:mod:`st_rl.modules.state_adaptor`).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Optional

import torch
from torch import nn

from st_rl.modules.actor_critic import ActorCritic, HiddenStates, Segments, incoming_layouts
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.exported import Stage
from st_rl.modules.mlp import MlpModel
from st_rl.modules.normalizer import Normalize
from st_rl.modules.utils import get_activation_Cls
from st_rl.utils.obs_segments import (
    get_obs_slice,
    get_subobs_by_components,
    get_subobs_columns,
    get_subobs_size,
    segments_num_obs,
    substitute_estimated_state,
)
from st_rl.utils.trajectories import unpad_trajectories

ESTIMATOR_DEFAULTS: dict[str, Any] = {"hidden_sizes": (128, 64), "nonlinearity": "elu"}


# --- helpers shared with the privileged adaptor ----------------------------------------------------------------------
def resolve_options(options: dict[str, Any] | None, defaults: dict[str, Any], name: str) -> dict[str, Any]:
    """``defaults`` updated by ``options`` (a new dict); ValueError on an unknown key, listing the valid ones."""
    options = options or {}
    for key in options:
        if key not in defaults:
            raise ValueError(f"unknown key '{key}' in {name} (valid: {', '.join(defaults)})")
    return {**defaults, **options}


def check_probability(value: float, name: str) -> float:
    """``value`` as a float; ValueError if it is outside ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r} is not a probability in [0, 1]")
    return float(value)


def check_components(names: Sequence[str] | None, segments: Segments, option: str, where: str) -> list[str]:
    """``names`` as a non-empty list of segments of ``segments``; ValueError naming a bad one and the valid ones."""
    if names is None or isinstance(names, str) or len(names) == 0:
        raise ValueError(f"{option} must be a non-empty list of segment names, got {names!r}")
    for name in names:
        if name not in segments:
            raise ValueError(f"{option}: no segment '{name}' in the {where} (segments: {', '.join(segments)})")
    return list(names)


def check_targets(
    names: Sequence[str] | None, actor_in: Segments, actor_obs: Segments, critic_obs: Segments, option: str
) -> list[str]:
    """Targets must be actor segments (where the estimate goes) and critic segments (where the target is read),
    with one shape; ValueError otherwise."""
    names = check_components(names, actor_in, option, "actor observation (the estimate replaces it there)")
    for name in names:
        if name not in actor_obs:
            raise ValueError(
                f"{option}: '{name}' is not in the actor observation, whose normaliser scales the estimate "
                f"(segments: {', '.join(actor_obs)})"
            )
        if name not in critic_obs:
            raise ValueError(
                f"{option}: '{name}' is not in the critic (privileged) observation, where its supervised target is "
                f"read (critic segments: {', '.join(critic_obs)})"
            )
        shapes = {"actor observation": actor_obs[name], "actor features": actor_in[name], "critic": critic_obs[name]}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"{option}: segment '{name}' has different shapes: {shapes}")
    return names


def substitute_estimate(
    policy: ActorCritic,
    x: torch.Tensor,
    segments: Segments,
    names: Sequence[str],
    estimate: torch.Tensor,
    prob: float,
    stage: str,
) -> torch.Tensor:
    """``x`` ``(..., F)`` (normalised, laid out as ``segments``) with the segments ``names`` replaced by the raw
    ``estimate`` ``(..., size of names)``, detached and normalised with the actor normaliser.

    In training mode each sample (every leading index) is replaced with probability ``prob``: where
    ``policy.substitution_masks[stage]`` (``(..., 1)`` bool, drawn once per collected step, see
    :meth:`ActorCritic.draw_substitution_masks`) says so, else by a fresh draw. In eval mode always.
    """
    if policy.training and prob <= 0.0:
        return x
    normalised = policy.normalize_actor_segments(estimate.detach(), names)
    replaced = substitute_estimated_state(x, segments, names, normalised)
    if not policy.training or prob >= 1.0:
        return replaced
    use = (policy.substitution_masks or {}).get(stage)
    if use is None:
        use = torch.rand(x.shape[:-1] + (1,), device=x.device) < prob
    elif use.shape != x.shape[:-1] + (1,):
        raise ValueError(
            f"substitution mask '{stage}' has shape {tuple(use.shape)}, expected {tuple(x.shape[:-1]) + (1,)}"
        )
    return torch.where(use, replaced, x)


def draw_mask(num_envs: int, prob: float, device: torch.device | str) -> torch.Tensor | None:
    """``(num_envs, 1)`` bool, True with probability ``prob``; None when ``prob`` is 0 or 1 (nothing to draw)."""
    if prob <= 0.0 or prob >= 1.0:
        return None
    return torch.rand(num_envs, 1, device=device) < prob


class ExportedSubstitution(nn.Module):
    """Exported estimate-and-substitute stage ``(B, F) -> (B, F)``:
    ``x[:, target_columns] = normalize(model(x[:, input_columns]))``.

    ``model`` is a stage (``forward`` + ``reset(dones)``, e.g. :class:`~st_rl.modules.exported.Stage` or a chain
    holding a recurrent state); ``reset`` is forwarded to it.
    """

    def __init__(
        self, model: nn.Module, input_columns: torch.Tensor, target_columns: torch.Tensor, normalize: nn.Module
    ) -> None:
        super().__init__()
        self.model = model
        self.normalize = normalize
        self.register_buffer("input_columns", input_columns.clone(), persistent=False)
        self.register_buffer("target_columns", target_columns.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        estimate = self.normalize(self.model(x.index_select(1, self.input_columns)))
        return x.index_copy(1, self.target_columns, estimate)

    @torch.jit.export
    def reset(self, dones: Optional[torch.Tensor] = None) -> None:  # noqa: UP045 (TorchScript needs Optional)
        self.model.reset(dones)


def substitution_stage(
    policy: ActorCritic, model: nn.Module, segments: Segments, inputs: Sequence[str], targets: Sequence[str]
) -> ExportedSubstitution:
    """An :class:`ExportedSubstitution` over a ``segments`` layout, with the actor normaliser's current
    statistics of ``targets`` frozen in (identity without ``obs_normalization``)."""
    device = next(policy.parameters()).device
    normalize: nn.Module = nn.Identity()
    if policy.obs_normalization:
        norm = policy.actor_obs_normalizer
        columns = get_subobs_columns(policy.actor_obs_segments, targets, device)
        normalize = Normalize(norm.mean[columns], norm.std[columns], norm.eps)
    return ExportedSubstitution(
        model, get_subobs_columns(segments, inputs, device), get_subobs_columns(segments, targets, device), normalize
    )


# --- the estimator stage -------------------------------------------------------------------------------------------
class EstimatorMixin:
    """State estimator feature stage (see the module docstring).

    Args:
        estimator_target_components: actor segments to estimate; each must also be a critic (privileged)
            segment of the same shape, holding the true value (the supervised target).
        estimator_obs_components: actor segments the estimator reads (normalised), in this order; default: every
            actor segment except the targets. Must be left None with ``use_actor_rnn``.
        estimator_kwargs: ``hidden_sizes`` (default ``(128, 64)``) and ``nonlinearity`` (``"elu"``) of the MLP.
        use_actor_rnn: the estimator reads the actor memory output instead (recurrent policies only); an
            auxiliary head that substitutes nothing, so ``replace_state_prob`` must be 0.
        replace_state_prob: in training mode, per sample, the probability that the actor sees the estimate
            instead of the observed value; eval mode and the exported policy always use the estimate.

    Attributes:
        state_estimate: raw estimate ``(..., size of targets)`` from the last actor pass (unpadded ``(T, N, .)`` in
            batch mode), like ``distribution`` after ``update_distribution``; None before the first pass.
    """

    def __init__(
        self,
        *args,
        estimator_target_components: list[str],
        estimator_obs_components: list[str] | None = None,
        estimator_kwargs: dict | None = None,
        use_actor_rnn: bool = False,
        replace_state_prob: float = 1.0,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
        **kwargs,
    ) -> None:
        actor_obs, critic_obs, actor_in, _ = incoming_layouts(args, kwargs, actor_feature_segments, None)
        replace_state_prob = check_probability(replace_state_prob, "replace_state_prob")
        targets = check_targets(
            estimator_target_components, actor_in, actor_obs, critic_obs, "estimator_target_components"
        )
        options = resolve_options(estimator_kwargs, ESTIMATOR_DEFAULTS, "estimator_kwargs")
        get_activation_Cls(options["nonlinearity"])  # fail before building anything
        if use_actor_rnn:
            _check_actor_rnn(type(self), estimator_obs_components, replace_state_prob)
            inputs: list[str] = []
        elif estimator_obs_components is None:
            inputs = [name for name in actor_in if name not in targets]
            if not inputs:
                raise ValueError("estimator_obs_components: the actor observation has no segment besides the targets")
        else:
            inputs = check_components(
                estimator_obs_components, actor_in, "estimator_obs_components", "actor observation"
            )
        # The stage keeps the layout: the estimate replaces segments in place.
        super().__init__(
            *args, actor_feature_segments=actor_in, critic_feature_segments=critic_feature_segments, **kwargs
        )
        self.estimator_target_components = targets
        self.estimator_obs_components = inputs
        self.use_actor_rnn = use_actor_rnn
        self.replace_state_prob = replace_state_prob
        self.estimator_in_segments = actor_in  # layout of the tensor this stage receives
        if use_actor_rnn:
            if "memory_a" not in self.actor_feature_segments:
                raise ValueError(
                    "use_actor_rnn=True reads the actor memory output 'memory_a', which is not in the actor MLP input "
                    f"(segments: {', '.join(self.actor_feature_segments)})"
                )
            self._memory_slice = get_obs_slice(self.actor_feature_segments, "memory_a")[0]
            self.estimator_input_segments = OrderedDict([("memory_a", self.actor_feature_segments["memory_a"])])
        else:
            self.estimator_input_segments = OrderedDict((name, actor_in[name]) for name in inputs)
        self.estimator = MlpModel(
            segments_num_obs(self.estimator_input_segments),
            list(options["hidden_sizes"]),
            get_subobs_size(actor_obs, targets),
            options["nonlinearity"],
        )
        self.state_estimate: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["state_estimate"] = None  # transient, may hold a graph
        return state

    def actor_features(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Estimate the targets from ``obs`` ``(..., F)`` (or from the memory output with ``use_actor_rnn``),
        record the raw estimate in ``state_estimate`` and substitute it before the next stages."""
        if self.use_actor_rnn:
            features = super().actor_features(obs, masks, hidden_states)  # memory output, already unpadded
            self.state_estimate = self.estimator(features[..., self._memory_slice])
            return features
        inputs = get_subobs_by_components(obs, self.estimator_obs_components, self.estimator_in_segments)
        estimate = self.estimator(inputs)
        self.state_estimate = estimate if masks is None else unpad_trajectories(estimate, masks)
        obs = substitute_estimate(
            self,
            obs,
            self.estimator_in_segments,
            self.estimator_target_components,
            estimate,
            self.replace_state_prob,
            "estimator",
        )
        return super().actor_features(obs, masks, hidden_states)

    def draw_substitution_masks(self, num_envs: int, device: torch.device | str) -> dict[str, torch.Tensor]:
        masks = super().draw_substitution_masks(num_envs, device)
        mask = None if self.use_actor_rnn else draw_mask(num_envs, self.replace_state_prob, device)
        if mask is not None:
            masks["estimator"] = mask
        return masks

    def estimate_state(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Raw estimate ``(N, size of targets)`` for the raw actor ``obs`` ``(N, num_actor_obs)`` (batch mode:
        padded ``(T, B, .)`` in, unpadded ``(T, N, .)`` out).

        Runs the actor feature pipeline with the usual modes: in rollout mode recurrent stages advance their state,
        as with ``act``; pass ``hidden_states=policy.get_hidden_states()`` to peek instead.
        """
        self.actor_features(self._normalize_actor(obs), masks, hidden_states)
        return self.state_estimate

    def obs_layouts(self) -> dict[str, Segments]:
        layouts = super().obs_layouts()
        layouts["estimator.0.weight"] = self.estimator_input_segments
        return layouts

    def export_actor_stages(self) -> list[nn.Module]:
        stages = super().export_actor_stages()
        if self.use_actor_rnn:  # an auxiliary head: nothing to substitute
            return stages
        model = Stage(copy.deepcopy(self.estimator))
        stage = substitution_stage(
            self, model, self.estimator_in_segments, self.estimator_obs_components, self.estimator_target_components
        )
        return [stage, *stages]


def _check_actor_rnn(cls: type, estimator_obs_components: list[str] | None, replace_state_prob: float) -> None:
    """The contradictions of ``use_actor_rnn=True``, each a ValueError."""
    if not getattr(cls, "is_recurrent", False):
        raise ValueError(
            f"use_actor_rnn=True needs a recurrent policy (the estimator reads the actor memory output); "
            f"{cls.__name__} has no actor memory: use StateAcRecurrent or set use_actor_rnn=False"
        )
    if estimator_obs_components is not None:
        raise ValueError(
            f"use_actor_rnn=True reads the actor memory output, so estimator_obs_components={estimator_obs_components} "
            "contradicts it: drop estimator_obs_components or set use_actor_rnn=False"
        )
    if replace_state_prob > 0.0:
        raise ValueError(
            f"use_actor_rnn=True with replace_state_prob={replace_state_prob} is circular: the estimate would be "
            "computed from the actor memory output, which already consumed the observation it is meant to replace; set "
            "replace_state_prob=0.0 (the estimator is then an auxiliary head) or use_actor_rnn=False"
        )


class StateAc(EstimatorMixin, ActorCritic):
    """Feed-forward actor-critic with a state estimator in front of the actor MLP."""


class StateAcRecurrent(EstimatorMixin, ActorCriticRecurrent):
    """Recurrent actor-critic with a state estimator before the actor memory (or, with ``use_actor_rnn``, a
    supervised head on the memory output)."""
