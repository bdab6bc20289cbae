"""Privileged adaptor stage: estimate privileged parameters (friction, added mass, ...) from what the robot sees.

The ``adaptor_target_components`` are privileged segments that the env *also* writes into the actor
observation under the same name: the true value in training, anything (e.g. zeros) on the robot. The adaptor
reads ``adaptor_obs_components`` of the normalised actor observation, through an MLP or, with
``adaptor_kwargs["rnn_type"]``, a GRU/LSTM memory (hidden-state name ``"adaptor"``) and an MLP head, predicts
the targets in raw units (supervised by the raw critic segments, see
:class:`st_rl.algorithms.estimator.EstimatorPPO`) and substitutes the normalised, detached estimate into the
actor observation: in training mode per sample with probability ``privilege_replace_state_prob``, in eval mode
and in the exported policy always (so the deployed policy never reads the privileged segments).

A recurrent adaptor follows the rollout / peek / batch convention of :mod:`st_rl.modules.actor_critic`; in batch
mode its memory returns unpadded steps, which are padded back to substitute into the padded observation.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from st_rl.modules.actor_critic import ActorCritic, HiddenStates, Segments, incoming_layouts
from st_rl.modules.actor_critic_recurrent import RNN_TYPES, ActorCriticRecurrent, Memory, _state
from st_rl.modules.exported import ExportedPolicy, Stage
from st_rl.modules.mlp import MlpModel
from st_rl.modules.state_estimator import (
    check_components,
    check_probability,
    check_targets,
    draw_mask,
    resolve_options,
    substitute_estimate,
    substitution_stage,
)
from st_rl.modules.utils import get_activation_Cls
from st_rl.utils.obs_segments import get_subobs_by_components, get_subobs_size, segments_num_obs
from st_rl.utils.trajectories import unpad_trajectories

ADAPTOR_DEFAULTS: dict[str, Any] = {
    "rnn_type": None,
    "rnn_hidden_size": 64,
    "rnn_num_layers": 1,
    "hidden_sizes": (64,),
    "nonlinearity": "elu",
}


def pad_trajectories(unpadded: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`st_rl.utils.trajectories.unpad_trajectories`: ``(T, N, ...)`` -> ``(T, num_traj, ...)``
    laid out by ``masks`` ``(T, num_traj)``, zeros on padded steps."""
    T, num_traj = masks.shape
    padded = unpadded.new_zeros(num_traj, T, *unpadded.shape[2:])  # trajectory-major, like masks.T
    padded[masks.transpose(0, 1)] = unpadded.transpose(0, 1).reshape(-1, *unpadded.shape[2:])
    return padded.transpose(0, 1)


class PrivilegeEstimatorMixin:
    """Privileged adaptor feature stage (see the module docstring).

    Args:
        adaptor_target_components: privileged segments to estimate; each must be an actor segment and a critic
            segment of the same shape.
        adaptor_obs_components: actor segments the adaptor reads (normalised), in this order; default: every
            actor segment except the targets.
        adaptor_kwargs: ``rnn_type`` (None: feed-forward; ``"gru"`` | ``"lstm"``: recurrent, needs a recurrent
            policy), ``rnn_hidden_size`` (64), ``rnn_num_layers`` (1), ``hidden_sizes`` of the MLP (head) (``(64,)``),
            ``nonlinearity`` (``"elu"``).
        privilege_replace_state_prob: in training mode, per sample, the probability that the actor sees the
            estimate instead of the observed (true) value; eval mode and the exported policy always use the estimate.

    Attributes:
        privilege_estimate: raw estimate ``(..., size of targets)`` from the last actor pass (unpadded ``(T, N, .)``
            in batch mode); None before the first pass.
    """

    def __init__(
        self,
        *args,
        adaptor_target_components: list[str],
        adaptor_obs_components: list[str] | None = None,
        adaptor_kwargs: dict | None = None,
        privilege_replace_state_prob: float = 1.0,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
        **kwargs,
    ) -> None:
        actor_obs, critic_obs, actor_in, _ = incoming_layouts(args, kwargs, actor_feature_segments, None)
        prob = check_probability(privilege_replace_state_prob, "privilege_replace_state_prob")
        targets = check_targets(adaptor_target_components, actor_in, actor_obs, critic_obs, "adaptor_target_components")
        if adaptor_obs_components is None:
            inputs = [name for name in actor_in if name not in targets]
            if not inputs:
                raise ValueError("adaptor_obs_components: the actor observation has no segment besides the targets")
        else:
            inputs = check_components(adaptor_obs_components, actor_in, "adaptor_obs_components", "actor observation")
        options = resolve_options(adaptor_kwargs, ADAPTOR_DEFAULTS, "adaptor_kwargs")
        get_activation_Cls(options["nonlinearity"])
        rnn_type = options["rnn_type"]
        if rnn_type is not None:
            if rnn_type not in RNN_TYPES:
                raise ValueError(f"unknown adaptor_kwargs.rnn_type '{rnn_type}' (valid: None, {', '.join(RNN_TYPES)})")
            if not getattr(type(self), "is_recurrent", False):
                raise ValueError(
                    f"adaptor_kwargs.rnn_type='{rnn_type}' needs a recurrent policy (trained on whole trajectories); "
                    f"{type(self).__name__} is feed-forward: use PrivilegeStateAcRecurrent or rnn_type=None"
                )
        super().__init__(
            *args, actor_feature_segments=actor_in, critic_feature_segments=critic_feature_segments, **kwargs
        )
        self.adaptor_target_components = targets
        self.adaptor_obs_components = inputs
        self.privilege_replace_state_prob = prob
        self.adaptor_in_segments = actor_in  # layout of the tensor this stage receives
        self.adaptor_input_segments = OrderedDict((name, actor_in[name]) for name in inputs)
        in_size = segments_num_obs(self.adaptor_input_segments)
        self.adaptor_memory: Memory | None = None
        if rnn_type is not None:
            self.adaptor_memory = Memory(in_size, rnn_type, options["rnn_num_layers"], options["rnn_hidden_size"])
            in_size = options["rnn_hidden_size"]
        self.adaptor = MlpModel(
            in_size, list(options["hidden_sizes"]), get_subobs_size(actor_obs, targets), options["nonlinearity"]
        )
        self.privilege_estimate: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["privilege_estimate"] = None  # transient, may hold a graph
        return state

    # --- recurrent state -------------------------------------------------------------------------------------------
    def reset(self, dones: torch.Tensor | None = None) -> None:
        super().reset(dones)
        if self.adaptor_memory is not None:
            self.adaptor_memory.reset(dones)

    def get_hidden_states(self) -> HiddenStates:
        states = super().get_hidden_states()
        if self.adaptor_memory is not None and self.adaptor_memory.hidden_states is not None:
            states["adaptor"] = self.adaptor_memory.hidden_states
        return states

    # --- forward -----------------------------------------------------------------------------------------------------
    def actor_features(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Estimate the privileged targets from ``obs`` ``(..., F)``, record the raw estimate in
        ``privilege_estimate`` and substitute it before the next stages."""
        inputs = get_subobs_by_components(obs, self.adaptor_obs_components, self.adaptor_in_segments)
        if self.adaptor_memory is None:
            estimate = self.adaptor(inputs)  # padded in batch mode, like obs
            self.privilege_estimate = estimate if masks is None else unpad_trajectories(estimate, masks)
        else:
            state = _state(hidden_states, "adaptor", inputs, self.adaptor_memory)
            self.privilege_estimate = self.adaptor(self.adaptor_memory(inputs, masks, state))  # unpadded in batch mode
            estimate = self.privilege_estimate if masks is None else pad_trajectories(self.privilege_estimate, masks)
        obs = substitute_estimate(
            self,
            obs,
            self.adaptor_in_segments,
            self.adaptor_target_components,
            estimate,
            self.privilege_replace_state_prob,
            "adaptor",
        )
        return super().actor_features(obs, masks, hidden_states)

    def draw_substitution_masks(self, num_envs: int, device: torch.device | str) -> dict[str, torch.Tensor]:
        masks = super().draw_substitution_masks(num_envs, device)
        mask = draw_mask(num_envs, self.privilege_replace_state_prob, device)
        if mask is not None:
            masks["adaptor"] = mask
        return masks

    def estimate_privilege(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Raw estimate ``(N, size of targets)`` for the raw actor ``obs`` ``(N, num_actor_obs)`` (batch mode:
        padded ``(T, B, .)`` in, unpadded ``(T, N, .)`` out).

        Runs the actor feature pipeline with the usual modes: in rollout mode the adaptor (and any other recurrent
        stage) advances its state, as with ``act``; pass ``hidden_states=policy.get_hidden_states()`` to peek.
        """
        self.actor_features(self._normalize_actor(obs), masks, hidden_states)
        return self.privilege_estimate

    # --- checkpoint layout and export ---------------------------------------------------------------------------------
    def obs_layouts(self) -> dict[str, Segments]:
        layouts = super().obs_layouts()
        if self.adaptor_memory is None:
            layouts["adaptor.0.weight"] = self.adaptor_input_segments
        else:
            layouts["adaptor_memory.rnn.weight_ih_l0"] = self.adaptor_input_segments
        return layouts

    def export_actor_stages(self) -> list[nn.Module]:
        head = Stage(copy.deepcopy(self.adaptor))
        model = head if self.adaptor_memory is None else ExportedPolicy([self.adaptor_memory.export_module(), head])
        stage = substitution_stage(
            self, model, self.adaptor_in_segments, self.adaptor_obs_components, self.adaptor_target_components
        )
        return [stage, *super().export_actor_stages()]


class PrivilegeStateAc(PrivilegeEstimatorMixin, ActorCritic):
    """Feed-forward actor-critic with a (feed-forward) privileged adaptor in front of the actor MLP."""


class PrivilegeStateAcRecurrent(PrivilegeEstimatorMixin, ActorCriticRecurrent):
    """Recurrent actor-critic with a privileged adaptor (feed-forward or with its own memory) before the actor
    memory."""
