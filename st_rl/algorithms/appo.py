"""APPO: PPO with an adversarial motion prior (AMP, Peng et al. 2021).

A discriminator ``D`` (the AMP policy's ``policy.discriminator``, see :mod:`st_rl.modules.amp_discriminator`) tells
reference-motion transitions ``(s, s')`` from the policy's; its score becomes a style reward, blended with the
task reward (``style_reward_coef`` and ``task_reward_lerp`` are discriminator keywords of the policy), and PPO
learns from the blend.

Environment contract (``infos`` of ``env.step``, ``N = num_envs``, ``D = amp_obs_dim``):

- ``infos["amp_obs"]`` ``(N, D)``: the AMP observation of the current state, *after* any auto-reset (aligned
  with ``obs``);
- ``infos["final_amp_obs"]`` ``(N, D)``: the AMP observation of the final state before the auto-reset
  (meaningful where ``done``).

The policy's transition of step ``t`` is ``s_t = amp_obs_{t-1}`` (the previous step's ``infos["amp_obs"]``) and
``s'_t = where(done_t, final_amp_obs_t, amp_obs_t)``, so a transition never spans a reset. The very first step
has no previous ``amp_obs``: there ``s_0 = s'_0`` (a zero-motion transition, once per run).

Reference motion: any object with ``sample_pairs(batch_size) -> (s, s')`` (each ``(B, D)`` float), given with
:meth:`APPOAlgoMixin.set_reference_motion`, or built on first use from the ``motion_files`` keyword with
:class:`st_rl.datasets.motion_loader.MotionLoader`.

Update: PPO's mini-batches are zipped with shuffled mini-batches of the rollout's AMP transitions and with
reference mini-batches of the same size (all sampled before the epochs). Losses ``"discriminator"``
(least squares: reference -> +1, policy -> -1) and ``"gradient_penalty"`` (``lambda * mean ||dD/dx||^2`` on the
reference transitions, ``lambda = discriminator_grad_pen_coef``) both have the coefficient
``discriminator_loss_coef`` (it scales the discriminator's gradient; no PPO loss reaches the discriminator and no
AMP loss the actor-critic). The discriminator sees ``s, s'`` normalised by ``policy.amp_normalizer``, whose
statistics are updated once per ``update()`` (with every policy and reference transition of that update) and saved
with the policy. With ``discriminator_replay_size > 0`` an :class:`~st_rl.storage.amp_storage.AmpReplayBuffer`
keeps the policy's transitions of past rollouts (FIFO, the current rollout is added after its update): each policy
mini-batch is followed by as many replayed transitions (once the buffer holds any), so the discriminator does not
forget motion of earlier policies.

Optimisation: the discriminator's parameters are policy parameters, but PPO's optimiser, gradient clip
(``max_grad_norm``) and adaptive-KL learning rate own only the others (:meth:`APPOAlgoMixin.ppo_parameters`): the
discriminator's larger gradient would otherwise dominate the joint clip (walk_amp's first mini-batch: norm 4.5 vs
0.79 for the actor-critic, so the PPO step was scaled by 0.22 where it needs no clip). The discriminator has its own
Adam (``extra_optimizers()["discriminator"]``, whose state a checkpoint must keep): the fixed
``discriminator_learning_rate``, L2 weight decay ``discriminator_weight_decay`` on the trunk and a larger
``discriminator_logit_weight_decay`` on the output layer (as AMP implementations do), and its own clip
``discriminator_max_grad_norm`` (Adam adds the L2 term after it). Both optimisers step on every mini-batch from the
same backward pass, PPO's first; with ``dist`` both gradients ride PPO's one all-reduce (rank means).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Protocol

import torch
from torch import nn

from st_rl.algorithms.ppo import PPO
from st_rl.modules.amp_discriminator import AMPDiscriminator, AmpMixin, least_squares_discriminator_loss
from st_rl.storage.amp_storage import AmpReplayBuffer, AmpRolloutStorage
from st_rl.storage.rollout_storage import Batch


class ReferenceMotion(Protocol):
    """A source of reference (motion-data) AMP transitions."""

    def sample_pairs(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` transitions ``(s, s')``, each ``(batch_size, amp_obs_dim)`` float."""


class AmpBatch(NamedTuple):
    """A PPO mini-batch with the AMP mini-batches it is trained with; every AMP tensor is raw: reference
    ``(B, D)``, policy ``(B, D)`` or, with replayed past transitions appended, ``(2 B, D)``."""

    batch: Batch
    policy_state: torch.Tensor
    policy_next_state: torch.Tensor
    reference_state: torch.Tensor
    reference_next_state: torch.Tensor


def discriminator_losses(
    discriminator: AMPDiscriminator,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    policy_state: torch.Tensor,
    policy_next_state: torch.Tensor,
    reference_state: torch.Tensor,
    reference_next_state: torch.Tensor,
    grad_pen_lambda: float,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The AMP discriminator losses on one mini-batch of raw transitions (each ``(B, D)``).

    With ``x = [normalize(s), normalize(s')]``:

    - ``discriminator``: ``mean((D(x_ref) - 1)^2) + mean((D(x_pol) + 1)^2)``;
    - ``gradient_penalty``: ``grad_pen_lambda * mean(||dD/dx_ref||^2)``.

    Returns:
        ``(losses, metrics)``; metrics: ``discriminator_accuracy`` (fraction of reference scored ``> 0`` and of
        policy ``< 0``, over both sets), ``reference_d`` and ``policy_d`` (mean scores).
    """
    ref_s, ref_next = normalize(reference_state), normalize(reference_next_state)
    reference_d = discriminator(torch.cat([ref_s, ref_next], dim=-1))
    policy_d = discriminator(torch.cat([normalize(policy_state), normalize(policy_next_state)], dim=-1))
    loss, lsq_metrics = least_squares_discriminator_loss(reference_d, policy_d)
    grad_pen = discriminator.compute_grad_pen(ref_s, ref_next, lambda_=grad_pen_lambda)
    metrics = {
        "discriminator_accuracy": lsq_metrics["accuracy"],
        "reference_d": lsq_metrics["expert_d"],
        "policy_d": lsq_metrics["policy_d"],
    }
    return {"discriminator": loss, "gradient_penalty": grad_pen}, metrics


def _amp_policy_class_names() -> list[str]:
    from st_rl.modules import POLICY_CLASSES

    return sorted(name for name, cls in POLICY_CLASSES.items() if issubclass(cls, AmpMixin))


class APPOAlgoMixin:
    """Adds AMP to a PPO algorithm (put it before :class:`PPO` or a PPO subclass in the bases).

    Args:
        policy: an AMP policy (:class:`~st_rl.modules.amp_discriminator.AmpMixin`: ``policy.discriminator``,
            ``policy.amp_normalizer``, ``policy.amp_obs_segments``); a ValueError otherwise.
        motion_files: reference motion files for :class:`st_rl.datasets.motion_loader.MotionLoader`, built on
            first use (unless :meth:`set_reference_motion` gave a source); recorded in the config.
        motion_joint_names: the robot's joint order (MotionLoader's ``joint_names``); needed with ``motion_files``.
        motion_dt: time step between ``s`` and ``s'`` of the reference transitions, seconds (the env's policy dt).
        discriminator_loss_coef: coefficient of the ``discriminator`` and ``gradient_penalty`` losses.
        discriminator_grad_pen_coef: ``lambda`` of the gradient penalty (inside the ``gradient_penalty`` loss).
        discriminator_learning_rate: the discriminator optimiser's learning rate (fixed: the adaptive-KL schedule
            moves PPO's only).
        discriminator_weight_decay: Adam's L2 weight decay on the discriminator trunk's parameters.
        discriminator_logit_weight_decay: Adam's L2 weight decay on the output layer (``discriminator.linear``).
        discriminator_max_grad_norm: gradient-norm clip of the discriminator's parameters (alone), > 0.
        discriminator_replay_size: capacity of the replay buffer of past policy AMP transitions; 0: none.
        amp_obs_dim: the AMP observation size, a check: None takes the policy's ``num_amp_obs``; a different
            value is a ValueError.
        **kwargs: arguments of the PPO class after this mixin.
    """

    policy: nn.Module
    device: torch.device
    num_mini_batches: int
    num_learning_epochs: int
    loss_coefs: dict[str, float]

    def __init__(
        self,
        policy: nn.Module,
        *,
        motion_files: Sequence[str] = (),
        motion_joint_names: list[str] | None = None,
        motion_dt: float = 0.02,
        discriminator_loss_coef: float = 1.0,
        discriminator_grad_pen_coef: float = 10.0,
        discriminator_learning_rate: float = 1e-3,
        discriminator_weight_decay: float = 1e-4,
        discriminator_logit_weight_decay: float = 1e-2,
        discriminator_max_grad_norm: float = 1.0,
        discriminator_replay_size: int = 0,
        amp_obs_dim: int | None = None,
        **kwargs,
    ) -> None:
        name = type(self).__name__
        if not isinstance(policy, AmpMixin):
            raise ValueError(
                f"{name} needs an AMP policy (with a discriminator; valid: {', '.join(_amp_policy_class_names())}), "
                f"got {type(policy).__name__}"
            )
        if amp_obs_dim is not None and amp_obs_dim != policy.num_amp_obs:
            raise ValueError(
                f"algorithm.amp_obs_dim={amp_obs_dim} does not match the policy's AMP observation size "
                f"{policy.num_amp_obs} (amp_obs_segments {dict(policy.amp_obs_segments)}); leave it None"
            )
        for key, value in (
            ("discriminator_loss_coef", discriminator_loss_coef),
            ("discriminator_grad_pen_coef", discriminator_grad_pen_coef),
            ("discriminator_learning_rate", discriminator_learning_rate),
            ("discriminator_weight_decay", discriminator_weight_decay),
            ("discriminator_logit_weight_decay", discriminator_logit_weight_decay),
            ("discriminator_replay_size", discriminator_replay_size),
        ):
            if value < 0:
                raise ValueError(f"algorithm.{key}={value} must be >= 0")
        if not discriminator_max_grad_norm > 0:  # 0 would zero every discriminator gradient
            raise ValueError(f"algorithm.discriminator_max_grad_norm={discriminator_max_grad_norm} must be > 0")
        if motion_dt <= 0:
            raise ValueError(f"algorithm.motion_dt={motion_dt} must be > 0")
        super().__init__(policy, **kwargs)
        self.motion_files = list(motion_files)
        self.motion_joint_names = motion_joint_names
        self.motion_dt = motion_dt
        self.discriminator_grad_pen_coef = discriminator_grad_pen_coef
        self.discriminator_max_grad_norm = discriminator_max_grad_norm
        self.discriminator_replay_size = discriminator_replay_size
        discriminator = self.policy.discriminator
        groups = [
            {"params": list(discriminator.trunk.parameters()), "weight_decay": discriminator_weight_decay},
            {"params": list(discriminator.linear.parameters()), "weight_decay": discriminator_logit_weight_decay},
        ]
        self.discriminator_optimizer = torch.optim.Adam(
            [group for group in groups if group["params"]], lr=discriminator_learning_rate
        )
        self.num_amp_obs: int = policy.num_amp_obs
        self.loss_coefs["discriminator"] = discriminator_loss_coef
        self.loss_coefs["gradient_penalty"] = discriminator_loss_coef
        self.amp_storage: AmpRolloutStorage | None = None
        self.amp_replay: AmpReplayBuffer | None = None
        if discriminator_replay_size > 0:
            self.amp_replay = AmpReplayBuffer(discriminator_replay_size, self.num_amp_obs, self.device)
        self._reference_motion: ReferenceMotion | None = None
        self._amp_state: torch.Tensor | None = None  # (N, D): the previous step's infos["amp_obs"]
        self._style_reward_sum: torch.Tensor | None = None  # (N,) per-env sums over the running episode
        self._task_reward_sum: torch.Tensor | None = None

    # --- reference motion --------------------------------------------------------------------------------------------
    def set_reference_motion(self, source: ReferenceMotion) -> None:
        """Use ``source`` (anything with ``sample_pairs(batch_size) -> (s, s')``) as the reference motion,
        instead of loading ``motion_files``."""
        if not callable(getattr(source, "sample_pairs", None)):
            raise ValueError(
                f"reference motion source {type(source).__name__} has no sample_pairs(batch_size) -> (s, s') method"
            )
        self._reference_motion = source

    @property
    def reference_motion(self) -> ReferenceMotion:
        """The reference source; on first use without :meth:`set_reference_motion`, a ``MotionLoader`` of
        ``motion_files``."""
        if self._reference_motion is None:
            if not self.motion_files:
                raise ValueError(
                    f"{type(self).__name__} has no reference motion: set algorithm.motion_files or call "
                    "set_reference_motion(source) before the first update"
                )
            if self.motion_joint_names is None:
                raise ValueError(
                    f"algorithm.motion_files {self.motion_files} need algorithm.motion_joint_names (the robot's joint "
                    "order, checked against the clips)"
                )
            from st_rl.datasets.motion_loader import MotionLoader

            self._reference_motion = MotionLoader(
                self.motion_files, self.policy.amp_obs_segments, self.motion_joint_names, self.motion_dt, self.device
            )
        return self._reference_motion

    def _sample_reference(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` reference transitions on the algorithm's device, each ``(batch_size, D)`` float32."""
        state, next_state = self.reference_motion.sample_pairs(batch_size)
        expected = (batch_size, self.num_amp_obs)
        for name, x in (("s", state), ("s'", next_state)):
            if tuple(x.shape) != expected:
                raise ValueError(
                    f"reference motion sample_pairs({batch_size}) gave {name} of shape {tuple(x.shape)}, "
                    f"expected (batch_size, amp_obs_dim) {expected}"
                )
        return state.to(self.device, torch.float32), next_state.to(self.device, torch.float32)

    # --- rollout -----------------------------------------------------------------------------------------------------
    def init_storage(self, num_envs: int, num_transitions_per_env: int, *args, **kwargs) -> None:
        """PPO's rollout storage plus the AMP transitions beside it (same ``T``, ``N``)."""
        super().init_storage(num_envs, num_transitions_per_env, *args, **kwargs)
        self.amp_storage = AmpRolloutStorage(num_envs, num_transitions_per_env, self.num_amp_obs, self.device)
        self._amp_state = None
        self._style_reward_sum = torch.zeros(num_envs, device=self.device)
        self._task_reward_sum = torch.zeros(num_envs, device=self.device)

    def amp_transition(self, dones: torch.Tensor, infos: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's AMP transition ``(s, s')`` of this step, each ``(N, D)``, from ``dones`` ``(N,)`` and
        ``infos["amp_obs"]`` / ``infos["final_amp_obs"]`` (see the module docstring); remembers ``amp_obs`` as
        the next step's ``s``."""
        missing = [key for key in ("amp_obs", "final_amp_obs") if key not in infos]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs infos['amp_obs'] and infos['final_amp_obs'] (N, {self.num_amp_obs}) "
                f"from env.step(): missing {missing} (amp_obs: after the auto-reset; final_amp_obs: before it)"
            )
        amp_obs = infos["amp_obs"].to(self.device, torch.float32)
        final_amp_obs = infos["final_amp_obs"].to(self.device, torch.float32)
        num_envs = dones.shape[0]
        for key, x in (("amp_obs", amp_obs), ("final_amp_obs", final_amp_obs)):
            if tuple(x.shape) != (num_envs, self.num_amp_obs):
                raise ValueError(
                    f"infos['{key}'] has shape {tuple(x.shape)}, expected (num_envs, amp_obs_dim) "
                    f"{(num_envs, self.num_amp_obs)}"
                )
        next_state = torch.where(dones.to(self.device).bool().view(-1, 1), final_amp_obs, amp_obs)
        state = next_state if self._amp_state is None else self._amp_state
        self._amp_state = amp_obs.clone()
        return state, next_state

    @torch.no_grad()
    def process_env_step(self, rewards: torch.Tensor, dones: torch.Tensor, infos: dict) -> None:
        """Replace the task reward ``rewards`` ``(N,)`` by its blend with the style reward of this step's AMP
        transition, store the transition, then PPO's step (time-out bootstrapping on the blended reward).

        Envs that finished this step report their episode sums (mean over those envs; NaN when none finished) as
        ``style_reward`` and ``task_reward`` in ``infos["episode"]``, a new dict (the env's own is not modified).
        """
        state, next_state = self.amp_transition(dones, infos)
        task_reward = rewards.to(self.device, torch.float32).reshape(-1)
        normalizer = self.policy.amp_normalizer
        reward, style_reward = self.policy.discriminator.predict_style_reward(
            normalizer.normalize(state), normalizer.normalize(next_state), task_reward=task_reward
        )
        self.amp_storage.add(state, next_state)
        self._style_reward_sum += style_reward
        self._task_reward_sum += task_reward
        done = dones.to(self.device).bool().view(-1)
        num_done = done.sum()  # no host sync: where no env ended, the means are 0 / 0 = NaN (skipped in the logs)
        episode = dict(infos.get("episode") or {})
        episode["style_reward"] = torch.where(done, self._style_reward_sum, 0.0).sum() / num_done
        episode["task_reward"] = torch.where(done, self._task_reward_sum, 0.0).sum() / num_done
        infos["episode"] = episode
        self._style_reward_sum.masked_fill_(done, 0.0)
        self._task_reward_sum.masked_fill_(done, 0.0)
        super().process_env_step(reward, dones, infos)

    def rollout_state(self) -> dict[str, torch.Tensor]:
        """PPO's plus the previous step's AMP observation and the running episodes' style/task reward sums."""
        state = super().rollout_state()
        state.update(style_reward_sum=self._style_reward_sum, task_reward_sum=self._task_reward_sum)
        if self._amp_state is not None:
            state["amp_state"] = self._amp_state
        return state

    def load_rollout_state(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        mine = {key: state.pop(key, None) for key in ("style_reward_sum", "task_reward_sum", "amp_state")}
        super().load_rollout_state(state)
        if mine["style_reward_sum"] is not None:
            self._style_reward_sum = mine["style_reward_sum"].to(self.device).clone()
            self._task_reward_sum = mine["task_reward_sum"].to(self.device).clone()
        self._amp_state = None if mine["amp_state"] is None else mine["amp_state"].to(self.device).clone()

    # --- learning ----------------------------------------------------------------------------------------------------
    def ppo_parameters(self) -> list[nn.Parameter]:
        """The policy's parameters except the discriminator's (those have their own optimiser); called by
        ``PPO.__init__``, so it needs nothing but ``self.policy``."""
        discriminator = {id(p) for p in self.policy.discriminator.parameters()}
        return [p for p in self.policy.parameters() if id(p) not in discriminator]

    def extra_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The PPO class's extra optimisers plus ``"discriminator"``: the discriminator's Adam."""
        return {**super().extra_optimizers(), "discriminator": self.discriminator_optimizer}

    def step_extra_optimizers(self) -> dict[str, torch.Tensor]:
        """Clip the discriminator's gradient to ``discriminator_max_grad_norm`` and step its optimiser (after the
        PPO class's step and extra optimisers). Adds metric ``discriminator_grad_norm`` (before the clip)."""
        metrics = super().step_extra_optimizers()
        grad_norm = nn.utils.clip_grad_norm_(self.policy.discriminator.parameters(), self.discriminator_max_grad_norm)
        self.discriminator_optimizer.step()
        return {**metrics, "discriminator_grad_norm": grad_norm}

    def _mini_batches(self) -> Iterator[AmpBatch]:
        """PPO's mini-batches zipped with AMP policy mini-batches and reference mini-batches of the same size.

        Before the epochs: every reference mini-batch is sampled (and every replayed one, if the replay buffer holds
        any transition: appended to the policy mini-batches), and ``policy.amp_normalizer`` is updated once with all
        the rollout's ``s``, ``s'`` and all those reference ``s``, ``s'`` (replayed ones were counted in their own
        update).
        """
        ppo_batches = super()._mini_batches()
        storage = self.amp_storage
        batch_size = storage.mini_batch_size(self.num_mini_batches)
        num_batches = self.num_learning_epochs * self.num_mini_batches
        reference = [self._sample_reference(batch_size) for _ in range(num_batches)]
        policy_batches = storage.mini_batch_generator(self.num_mini_batches, self.num_learning_epochs)
        if self.amp_replay is not None and self.amp_replay.size > 0:
            replayed = [self.amp_replay.sample(batch_size) for _ in range(num_batches)]
            policy_batches = (
                (torch.cat([state, old_state]), torch.cat([next_state, old_next_state]))
                for (state, next_state), (old_state, old_next_state) in zip(policy_batches, replayed, strict=True)
            )
        self.policy.amp_normalizer.update(
            torch.cat(
                [storage.states.flatten(0, 1), storage.next_states.flatten(0, 1)]
                + [x for pair in reference for x in pair]
            )
        )
        return (
            AmpBatch(batch, policy_state, policy_next, reference_state, reference_next)
            for batch, (policy_state, policy_next), (reference_state, reference_next) in zip(
                ppo_batches, policy_batches, reference, strict=True
            )
        )

    def compute_losses(self, batch: AmpBatch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The losses and metrics of the PPO class on ``batch.batch``, plus :func:`discriminator_losses`."""
        losses, metrics = super().compute_losses(batch.batch)
        amp_losses, amp_metrics = discriminator_losses(
            self.policy.discriminator,
            self.policy.amp_normalizer.normalize,
            batch.policy_state,
            batch.policy_next_state,
            batch.reference_state,
            batch.reference_next_state,
            self.discriminator_grad_pen_coef,
        )
        return {**losses, **amp_losses}, {**metrics, **amp_metrics}

    def update(self) -> dict[str, float]:
        """PPO's update with the AMP losses (see :meth:`_mini_batches`); then the rollout's AMP transitions go to
        the replay buffer (if any) and the AMP storage is cleared.

        Returns:
            PPO's means plus ``discriminator``, ``gradient_penalty``, ``discriminator_accuracy``, ``reference_d``,
            ``policy_d`` and ``discriminator_grad_norm`` (before its clip).
        """
        means = super().update()
        if self.amp_replay is not None:
            storage = self.amp_storage
            self.amp_replay.insert(storage.states.flatten(0, 1), storage.next_states.flatten(0, 1))
        self.amp_storage.clear()
        return means


class APPO(APPOAlgoMixin, PPO):
    """:class:`PPO` with an adversarial motion prior; see :class:`APPOAlgoMixin` and the module docstring."""
