"""Gaussian actor-critic with MLP actor and critic: the base every st_rl policy composes onto.

Observation normalisation (``obs_normalization=True``): the actor and critic normalisers live in
this module, so ``state_dict`` checkpoints and the exported policy carry their statistics.
Scheme: every forward path (``act``, ``act_inference``, ``evaluate``) only *applies* the
normalisers; the statistics change only through :meth:`update_normalization`, which the algorithm
calls once per rollout with all its observations, after the update epochs (as rsl_rl 5 does): a rollout and
the update on it use the same statistics, and the update epochs never move them.

How mixins compose (by MRO, no special cases). An observation flows
``raw obs -> normaliser -> feature stages -> actor MLP``. Each mixin is one feature stage:

- in ``__init__`` it transforms the *layout* (``actor_feature_segments``, an ordered ``name -> shape``
  mapping of what the next stage sees; :func:`incoming_layouts` gives what it receives) before calling
  ``super().__init__``, then builds its modules;
- it overrides :meth:`actor_features` / :meth:`critic_features` to transform the tensor and pass it
  on to ``super()``;
- it adds its piece of the exported module in :meth:`export_actor_stages`, its recurrent states in
  :meth:`get_hidden_states`, and the observation-laid-out tensors it owns in :meth:`obs_layouts`.

So the class order is the pipeline order: ``class EncoderActorCriticRecurrent(EncoderActorCriticMixin,
ActorCriticRecurrent)`` encodes first, then runs the memory, then the MLP.

Recurrent calling convention (``masks``/``hidden_states`` on every forward path):

- rollout (both None): one step ``(N, O)``; recurrent stages use and advance their internal state;
- peek (``hidden_states`` given, ``masks`` None): one step from the given states, nothing advanced;
- batch (both given): padded trajectories ``(T, num_traj, O)`` from the recurrent mini-batch generator,
  ``masks`` ``(T, num_traj)``, states at each trajectory start; outputs are unpadded to ``(T, N, ...)``.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Normal

from st_rl.modules.exported import ExportedPolicy, Stage
from st_rl.modules.misaligned import MisalignedLoadReport, load_misaligned_from_run, load_misaligned_state_dict
from st_rl.modules.mlp import MlpModel
from st_rl.modules.normalizer import EmpiricalNormalization, Normalize
from st_rl.utils.obs_segments import get_subobs_columns, normalize_segments, segments_num_obs

Segments = OrderedDict[str, tuple[int, ...]]
HiddenStates = dict[str, torch.Tensor]
SubstitutionMasks = dict[str, torch.Tensor]


def default_segments(
    num_obs: int, segments: Segments | None, fallback_name: str, fallback: Segments | None = None
) -> Segments:
    """``segments`` checked against ``num_obs``; without segments, ``fallback`` if it fits, else one segment."""
    if segments is None:
        if fallback is not None and segments_num_obs(fallback) == num_obs:
            return fallback
        return OrderedDict([(fallback_name, (num_obs,))])
    segments = normalize_segments(segments)
    if segments_num_obs(segments) != num_obs:
        raise ValueError(f"segments {dict(segments)} have {segments_num_obs(segments)} entries, not {num_obs}")
    return segments


def obs_sizes(args: tuple, kwargs: dict) -> tuple[int, int]:
    """``(num_actor_obs, num_critic_obs)`` from a policy constructor's positional or keyword arguments."""
    num_actor_obs = args[0] if len(args) > 0 else kwargs["num_actor_obs"]
    num_critic_obs = args[1] if len(args) > 1 else kwargs["num_critic_obs"]
    return num_actor_obs, num_critic_obs


class IncomingLayouts(NamedTuple):
    """What a mixin's ``__init__`` starts from: the observation layouts and its stage's input layouts."""

    actor_obs: Segments
    critic_obs: Segments
    actor_in: Segments
    critic_in: Segments


def incoming_layouts(
    args: tuple, kwargs: dict, actor_feature_segments: Segments | None, critic_feature_segments: Segments | None
) -> IncomingLayouts:
    """For a mixin's ``__init__(*args, actor_feature_segments, critic_feature_segments, **kwargs)``: the actor and
    critic observation layouts, and the layouts its stage receives (what an earlier stage passed down, else the
    observation layouts)."""
    num_actor_obs, num_critic_obs = obs_sizes(args, kwargs)
    actor_obs = default_segments(num_actor_obs, kwargs.get("obs_segments"), "obs")
    critic_obs = default_segments(num_critic_obs, kwargs.get("privileged_obs_segments"), "critic_obs", actor_obs)
    return IncomingLayouts(
        actor_obs, critic_obs, actor_feature_segments or actor_obs, critic_feature_segments or critic_obs
    )


class ActorCritic(nn.Module):
    """Actor ``(N, num_actor_obs) -> action mean (N, num_actions)``, critic ``(N, num_critic_obs) -> (N, 1)``.

    The action distribution is a diagonal Normal with a learned, state-independent std.

    ``actor_feature_segments`` / ``critic_feature_segments`` are set by mixins (never by a config): the
    layout the actor/critic MLP sees after the feature stages; default: the observation segments.
    """

    is_recurrent = False

    def __init__(
        self,
        num_actor_obs: int,
        num_critic_obs: int,
        num_actions: int,
        actor_hidden_dims: Sequence[int] = (512, 256, 128),
        critic_hidden_dims: Sequence[int] = (512, 256, 128),
        activation: str = "elu",
        init_noise_std: float = 1.0,
        obs_normalization: bool = False,
        obs_segments: Segments | None = None,
        privileged_obs_segments: Segments | None = None,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
    ) -> None:
        super().__init__()
        self.num_actor_obs = num_actor_obs
        self.num_critic_obs = num_critic_obs
        self.num_actions = num_actions
        self.obs_segments = obs_segments
        self.privileged_obs_segments = privileged_obs_segments
        self.activation = activation
        # Resolved layouts (never None): what the flat actor / critic observations hold.
        self.actor_obs_segments = default_segments(num_actor_obs, obs_segments, "obs")
        self.critic_obs_segments = default_segments(
            num_critic_obs, privileged_obs_segments, "critic_obs", self.actor_obs_segments
        )
        self.actor_feature_segments = actor_feature_segments or self.actor_obs_segments
        self.critic_feature_segments = critic_feature_segments or self.critic_obs_segments
        actor_in = segments_num_obs(self.actor_feature_segments)
        critic_in = segments_num_obs(self.critic_feature_segments)
        self.actor = MlpModel(actor_in, list(actor_hidden_dims), num_actions, activation)
        self.critic = MlpModel(critic_in, list(critic_hidden_dims), 1, activation)
        self.std = nn.Parameter(init_noise_std * torch.ones(num_actions))
        self.obs_normalization = obs_normalization
        if obs_normalization:
            self.actor_obs_normalizer: nn.Module = EmpiricalNormalization(num_actor_obs)
            self.critic_obs_normalizer: nn.Module = EmpiricalNormalization(num_critic_obs)
        else:
            self.actor_obs_normalizer = nn.Identity()
            self.critic_obs_normalizer = nn.Identity()
        self.distribution: Normal | None = None
        # Per-sample choices of the stochastic stages for the pass in progress (see draw_substitution_masks).
        self.substitution_masks: SubstitutionMasks | None = None

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the transient action distribution (it holds non-leaf tensors)."""
        state = self.__dict__.copy()
        state["distribution"] = None
        state["substitution_masks"] = None
        return state

    # --- recurrent state (none here; recurrent mixins extend these) ------------------------------------------------
    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Reset the internal state of envs where ``dones`` ``(N,)`` is True (all envs if None)."""

    def get_hidden_states(self) -> HiddenStates:
        """Current recurrent states by name, each ``(S, N, H)`` (``S`` = layers, x2 for LSTM); ``{}`` if none."""
        return {}

    # --- per-step random choices (stages that substitute an estimate with a probability extend these) ---------------
    def draw_substitution_masks(self, num_envs: int, device: torch.device | str) -> SubstitutionMasks:
        """Draw this collected step's per-env choices of every stage that substitutes an estimate with a probability
        in ``(0, 1)``: ``stage name -> (N, 1)`` bool, True where the stage substitutes; ``{}`` when no stage draws.

        The algorithm draws them once per collected step, stores them with the transition and hands the same masks
        back (:meth:`using_substitution_masks`) on every pass over that step, so PPO's ratio compares the actions
        under the inputs the rollout actually used. Without masks a training-mode pass draws its own.
        """
        return {}

    @contextmanager
    def using_substitution_masks(self, masks: SubstitutionMasks | None) -> Iterator[None]:
        """Within the block, stages read their substitution choices from ``masks`` (each ``(N, 1)``, or padded
        ``(T, num_traj, 1)`` in batch mode, laid out like the observation the pass receives)."""
        previous, self.substitution_masks = self.substitution_masks, masks
        try:
            yield
        finally:
            self.substitution_masks = previous

    # --- normalisation -------------------------------------------------------------------------------------------
    def _normalize_actor(self, obs: torch.Tensor) -> torch.Tensor:
        if self.obs_normalization:
            return self.actor_obs_normalizer.normalize(obs)
        return obs

    def _normalize_critic(self, critic_obs: torch.Tensor) -> torch.Tensor:
        if self.obs_normalization:
            return self.critic_obs_normalizer.normalize(critic_obs)
        return critic_obs

    def normalize_actor_segments(self, values: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """Apply the actor normaliser to ``values`` ``(..., size of names)`` laid out as the segments ``names``
        of the actor observation (e.g. to put an estimate of raw segments into a normalised observation)."""
        if not self.obs_normalization:
            return values
        mean, std = self.actor_obs_normalizer.mean, self.actor_obs_normalizer.std
        cols = get_subobs_columns(self.actor_obs_segments, names, values.device)
        return (values - mean[cols]) / (std[cols] + self.actor_obs_normalizer.eps)

    @torch.no_grad()
    def update_normalization(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> None:
        """Merge one collected step into the normaliser statistics: ``obs (N, num_actor_obs)``,
        ``critic_obs (N, num_critic_obs)``. No-op without ``obs_normalization``."""
        if self.obs_normalization:
            self.actor_obs_normalizer.update(obs)
            self.critic_obs_normalizer.update(critic_obs)

    # --- feature stages (mixins override and call super()) ---------------------------------------------------------
    def actor_features(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Normalised actor observation -> input of the actor MLP (laid out as ``actor_feature_segments``)."""
        return obs

    def critic_features(
        self, critic_obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Normalised critic observation -> input of the critic MLP (laid out as ``critic_feature_segments``)."""
        return critic_obs

    # --- actor -----------------------------------------------------------------------------------------------------
    def update_distribution(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> None:
        """Set ``self.distribution`` from ``obs`` ``(N, num_actor_obs)`` (or padded ``(T, B, num_actor_obs)``)."""
        mean = self.actor(self.actor_features(self._normalize_actor(obs), masks, hidden_states))
        self.distribution = Normal(mean, self.std.expand_as(mean), validate_args=False)

    def act(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Sample actions ``(N, num_actions)`` for ``obs`` ``(N, num_actor_obs)`` (also sets the distribution)."""
        self.update_distribution(obs, masks, hidden_states)
        return self.distribution.sample()

    def act_inference(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic actions (the distribution mean) ``(N, num_actions)``; advances recurrent state."""
        return self.actor(self.actor_features(self._normalize_actor(obs)))

    def get_actions_log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability ``(N,)`` of ``actions`` ``(N, num_actions)`` under the current distribution."""
        return self.distribution.log_prob(actions).sum(dim=-1)

    @property
    def action_mean(self) -> torch.Tensor:
        """``(N, num_actions)`` mean of the current distribution."""
        return self.distribution.mean

    @property
    def action_std(self) -> torch.Tensor:
        """``(N, num_actions)`` std of the current distribution."""
        return self.distribution.stddev

    @property
    def entropy(self) -> torch.Tensor:
        """``(N,)`` entropy of the current distribution."""
        return self.distribution.entropy().sum(dim=-1)

    @torch.no_grad()
    def clip_std(self, min: float | None = None, max: float | None = None) -> None:
        """Clamp the learned std in place to ``[min, max]``."""
        self.std.clamp_(min=min, max=max)

    # --- critic ----------------------------------------------------------------------------------------------------
    def evaluate(
        self, critic_obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        """Value estimate ``(N, 1)`` for ``critic_obs`` ``(N, num_critic_obs)``."""
        return self.critic(self.critic_features(self._normalize_critic(critic_obs), masks, hidden_states))

    # --- checkpoint layout -------------------------------------------------------------------------------------------
    def obs_layouts(self) -> dict[str, Segments]:
        """Parameters and buffers whose last dimension is laid out by observation segments, with that layout.

        Used to load a checkpoint whose segments were reordered, added or removed (matching columns by name).
        """
        layouts = {
            "actor.0.weight": self.actor_feature_segments,
            "critic.0.weight": self.critic_feature_segments,
        }
        if self.obs_normalization:
            for buffer in ("_mean", "_var", "_std"):
                layouts[f"actor_obs_normalizer.{buffer}"] = self.actor_obs_segments
                layouts[f"critic_obs_normalizer.{buffer}"] = self.critic_obs_segments
        return layouts

    def load_misaligned_state_dict(
        self, state_dict: dict[str, torch.Tensor], source_layouts: dict[str, Segments], strict: bool = False
    ) -> MisalignedLoadReport:
        """Load a checkpoint written by a policy with other segments (``source_layouts`` = its
        :meth:`obs_layouts`), matching columns by segment name; see :mod:`st_rl.modules.misaligned`.
        Returns the report of what was copied, remapped, left at its initial value or unused."""
        return load_misaligned_state_dict(self, state_dict, source_layouts, strict)

    def load_misaligned_from_run(
        self, run_dir: str, checkpoint: int = -1, strict: bool = False
    ) -> MisalignedLoadReport:
        """:meth:`load_misaligned_state_dict` from a run directory (``config.json`` + ``model_<iter>.pt``)."""
        return load_misaligned_from_run(self, run_dir, checkpoint, strict)

    # --- export ----------------------------------------------------------------------------------------------------
    def export_actor_stages(self) -> list[nn.Module]:
        """Exportable copies of the feature stages between the normaliser and the actor MLP, in order.

        Each stage maps ``(B, in) -> (B, out)`` and has ``reset(dones: Optional[Tensor])``
        (see :mod:`st_rl.modules.exported`). Mixins prepend their stage to ``super()``'s list.
        """
        return []

    def export_module(self) -> nn.Module:
        """A standalone deterministic policy ``(B, num_actor_obs) -> (B, num_actions)`` with the current
        normaliser statistics frozen in and recurrent state held in buffers (``reset()``); a copy,
        scriptable with ``torch.jit.script``."""
        stages: list[nn.Module] = []
        if self.obs_normalization:
            stages.append(Stage(Normalize.frozen(self.actor_obs_normalizer)))
        stages += self.export_actor_stages()
        stages.append(Stage(copy.deepcopy(self.actor)))
        return ExportedPolicy(stages).eval()
