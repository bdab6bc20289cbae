"""TPPO: teacher-student distillation. A frozen teacher labels every collected state with its action (DAgger),
optionally with PPO on top.

Per collected step (``N`` envs): the student acts as under PPO; the teacher, a policy rebuilt from the run directory
``teacher_run``, acts on its own observation, assembled *by segment name* from the env's observation and, for
segments the observation lacks, the env's privileged observation (the teacher's oracle inputs usually live there);
each env executes the teacher's action with probability ``p = teacher_act_prob`` and the student's otherwise,
drawn anew every step (the DAgger mixture ``beta * teacher + (1 - beta) * student``). The teacher's action is
stored beside the rollout as the label ``"teacher_actions"`` (:attr:`st_rl.storage.rollout_storage.Transition.labels`).

Update, per mini-batch (``B`` samples, or ``(T, n)`` replayed trajectories for a recurrent student):

- ``using_ppo: false`` (pure DAgger): ``loss = distill_coef * Loss/distill``; no critic runs (a deterministic
  student such as :class:`~st_rl.modules.VisualDeterministicRecurrent` is fine) and rewards are not used;
- ``using_ppo: true``: PPO's losses on the executed actions (their log-probabilities under the student, so the
  ratio is that of what the env saw) plus ``distill_coef * Loss/distill``.

``distill_loss``: ``mse`` ``mean((mu - a_teacher)^2)``, ``l1`` ``mean(|mu - a_teacher|)`` (both over samples and
action entries, ``mu`` the student's mean), or ``nll`` ``-mean(log pi(a_teacher | o))`` (stochastic students only).

``teacher_act_prob`` schedule over learning iterations ``k`` (``p0 = teacher_act_prob``, ``p1 =
teacher_act_prob_final``, ``K = teacher_act_prob_decay_iterations``): ``constant`` ``p0``; ``linear``
``p0 + (p1 - p0) * min(k / K, 1)``; ``exp`` ``p1 + (p0 - p1) * exp(-k / K)``. The runner sets ``k`` each iteration
(:meth:`TPPO.set_learning_iteration`), so a resumed run continues the schedule.

The teacher is not part of the student: checkpoints hold the student only, and the teacher is rebuilt from
``teacher_run`` (``teacher_checkpoint``, -1 the latest) whenever TPPO is built. A run directory whose config.json
names a mutex policy (what play.py writes for a mutex config) is a teacher too: it is built from that config over
the env's segments, with the env's action scale. A trained teacher's actions are converted to the env's action
scale (``a * scale_teacher / scale_env``, scales from ``env.control.action_scale``, 1 when absent).

Latent distillation (optional, ``latent_distill: {student segment: teacher segment}``): the student's encoder latent
of a segment (its visual encoder's, or an :class:`~st_rl.modules.EncoderActorCriticMixin` encoder's) is regressed
onto the teacher's latent of the mapped segment, stored beside the rollout like the actions:
``Loss/latent = mean over pairs of mean((z_student - z_teacher)^2)``, weight ``latent_distill_coef``.

The student must not read oracle inputs: ``privileged_segments`` (default: :data:`ORACLE_SEGMENTS` plus the
segments the teacher run's critic read and its actor did not, except the robot's own sensors,
:data:`ROBOT_SENSOR_SEGMENTS`) may not be in the student's observation.

Logged: ``Loss/distill`` (and ``Loss/latent``), ``Policy/teacher_act_prob`` (this iteration's ``p``),
``Policy/teacher_act_fraction`` (fraction of steps the teacher's action was executed), ``Policy/distill_error``
(``mean |mu - a_teacher|``).
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict

import torch
from torch import nn
from torch.distributions import Normal

from st_rl.algorithms.ppo import PPO, gaussian_kl
from st_rl.modules.actor_critic_mutex import ActorCriticMutex, read_action_scale
from st_rl.modules.actor_critic_recurrent import load_memory_states, memory_states
from st_rl.modules.deterministic_policy import DeterministicPolicyMixin
from st_rl.modules.encoder_actor_critic import EncoderActorCriticMixin
from st_rl.modules.registry import POLICY_CLASSES, build_policy, load_policy_from_run
from st_rl.modules.visual_actor_critic import VisualActorCriticMixin
from st_rl.storage.rollout_storage import Batch
from st_rl.utils.checkpoint import checkpoint_iteration, get_load_path
from st_rl.utils.config import ConfigError
from st_rl.utils.obs_segments import Segments, get_obs_slice, segments_num_obs
from st_rl.utils.trajectories import unpad_trajectories

SCHEDULES = ("constant", "linear", "exp")
DISTILL_LOSSES = ("mse", "l1", "nll")
# Oracle inputs of a climb teacher (DESIGN: "for critics and teachers"), never a deployable student's.
ORACLE_SEGMENTS = ("engaging_block", "height_scan")
# Sensors a robot carries: a teacher's critic may read them (an auxiliary input) without making them oracles.
ROBOT_SENSOR_SEGMENTS = ("forward_depth",)
TEACHER_ACTIONS = "teacher_actions"  # the label name in the rollout storage
TEACHER_LATENT = "teacher_latent/"  # + the student's segment name: latent labels


def teacher_act_prob_at(iteration: int, start: float, final: float, schedule: str, decay_iterations: int) -> float:
    """The probability of executing the teacher's action at learning iteration ``iteration`` (0-based); see the
    module docstring for the three schedules."""
    if schedule == "constant":
        return start
    if schedule == "linear":
        return start + (final - start) * min(iteration / decay_iterations, 1.0)
    if schedule == "exp":
        return final + (start - final) * math.exp(-iteration / decay_iterations)
    raise ValueError(f"unknown teacher_act_prob_schedule '{schedule}' (valid: {', '.join(SCHEDULES)})")


def distillation_loss(
    kind: str, distribution: Normal, teacher_actions: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The student's distance to the teacher's actions.

    Args:
        kind: ``mse``, ``l1`` or ``nll`` (see the module docstring).
        distribution: the student's action distribution on the batch, batch shape ``(B, A)`` (or ``(T, n, A)``).
        teacher_actions: the labels, same shape.

    Returns:
        The loss and metrics ``distill_error``: ``mean(|mu - a_teacher|)``.
    """
    mean = distribution.mean
    if mean.shape != teacher_actions.shape:
        raise ValueError(f"student actions {tuple(mean.shape)} vs teacher actions {tuple(teacher_actions.shape)}")
    error = mean - teacher_actions
    if kind == "mse":
        loss = error.pow(2).mean()
    elif kind == "l1":
        loss = error.abs().mean()
    elif kind == "nll":
        loss = -distribution.log_prob(teacher_actions).sum(dim=-1).mean()
    else:
        raise ValueError(f"unknown distill_loss '{kind}' (valid: {', '.join(DISTILL_LOSSES)})")
    with torch.no_grad():
        metrics = {"distill_error": error.abs().mean()}
    return loss, metrics


def latent_size(policy: nn.Module, name: str) -> int | None:
    """Width of ``policy``'s encoder latent of segment ``name``; None when no encoder of it takes that segment."""
    if isinstance(policy, VisualActorCriticMixin) and name == policy.visual_component_name:
        return policy.visual_latent_size
    if isinstance(policy, EncoderActorCriticMixin) and name in policy.encoder_component_names:
        return policy.encoder_specs[name].output_size
    return None


def encoder_latent(policy: nn.Module, obs: torch.Tensor, name: str) -> torch.Tensor:
    """``policy``'s encoder latent ``(..., latent_size)`` of segment ``name`` from a raw flat actor observation
    ``(..., num_actor_obs)`` (the normaliser is applied as on the forward path)."""
    if isinstance(policy, VisualActorCriticMixin) and name == policy.visual_component_name:
        return policy.embed_visual_latent(obs)
    return policy.get_encoder_latent(obs, name)


def read_teacher_run(teacher_run: str | None, teacher_checkpoint: int = -1) -> tuple[dict, str | None]:
    """``(config.json of the teacher run, checkpoint path)``; the path is None for a mutex teacher (built from its
    config). Every failure is one line: ConfigError naming ``algorithm.teacher_run``."""
    key = "algorithm.teacher_run"
    if teacher_run is None or teacher_run == "":
        raise ConfigError(
            f"algorithm.class_name TPPO needs {key}: the teacher's run directory (train.py --teacher <run dir>)"
        )
    if not isinstance(teacher_run, str):
        raise ConfigError(f"{key} must be a run directory (a string), got {teacher_run!r}")
    if not os.path.isdir(teacher_run):
        raise ConfigError(f"{key} {teacher_run}: no such run directory")
    config_path = os.path.join(teacher_run, "config.json")
    if not os.path.isfile(config_path):
        raise ConfigError(f"{key} {teacher_run}: not a run directory (no config.json)")
    try:
        with open(config_path) as f:
            cfg = json.load(f)
        class_name = cfg["policy"]["class_name"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{key} {teacher_run}: unreadable config.json ({type(e).__name__}: {e})") from None
    if _is_mutex(class_name):
        return cfg, None
    run = os.path.abspath(teacher_run)
    try:
        path = get_load_path(os.path.dirname(run), run, teacher_checkpoint)
    except RuntimeError as e:  # CheckpointError: no such checkpoint, listing those there are
        raise ConfigError(f"{key} {teacher_run}: {e}") from None
    return cfg, path


def _is_mutex(class_name: str) -> bool:
    cls = POLICY_CLASSES.get(class_name)
    return cls is not None and issubclass(cls, ActorCriticMutex)


def teacher_columns(
    names: Segments, obs_segments: Segments, privileged_segments: Segments | None, who: str
) -> torch.Tensor:
    """Columns ``(n,)`` of ``cat([obs, privileged_obs], -1)`` holding the segments ``names`` (``name -> shape``, in
    that order): each from the observation when it has the segment, else from the privileged observation.

    Raises:
        ConfigError: segments neither provides (all named), or provided with another shape.
    """
    num_obs = segments_num_obs(obs_segments)
    privileged = privileged_segments or {}
    columns, missing = [], []
    for name, shape in names.items():
        shape = tuple(shape)
        for segments, offset in ((obs_segments, 0), (privileged, num_obs)):
            if name in segments and tuple(segments[name]) == shape:
                sl = get_obs_slice(segments, name)[0]
                columns.append(torch.arange(sl.start, sl.stop) + offset)
                break
        else:
            found = [tuple(s[name]) for s in (obs_segments, privileged) if name in s]
            missing.append(f"{name} {shape}" + (f" (the env's is {found[0]})" if found else ""))
    if missing:
        raise ConfigError(
            f"{who} reads segment(s) the env provides in neither its observation nor its privileged observation: "
            f"{', '.join(missing)} (observation: {', '.join(obs_segments)}; privileged: {', '.join(privileged) or '-'})"
        )
    return torch.cat(columns) if columns else torch.zeros(0, dtype=torch.long)


class TPPO(PPO):
    """Teacher-student distillation (see the module docstring); a :class:`PPO` whose rollout is labelled by a teacher.

    Args:
        policy: the student (any st_rl actor-critic; built on the env's segments).
        teacher_run: the teacher's run directory (config.json + ``model_<iter>.pt``, or a mutex config.json).
        teacher_checkpoint: the teacher's iteration, -1 the latest.
        using_ppo: False: pure DAgger (distillation loss only); True: PPO's losses plus the distillation loss.
        distill_loss: ``mse``, ``l1`` or ``nll``.
        distill_coef: weight of ``Loss/distill`` in the total loss.
        teacher_act_prob: probability of executing the teacher's action at iteration 0, in [0, 1].
        teacher_act_prob_schedule: ``constant``, ``linear`` or ``exp``.
        teacher_act_prob_final: the value the schedule decays to, in [0, 1].
        teacher_act_prob_decay_iterations: ``K``: ``linear`` reaches the final value after ``K`` iterations, ``exp``
            has come ``1 - 1/e`` of the way after ``K``.
        privileged_segments: segment names the student may not read; None: :data:`ORACLE_SEGMENTS` and the
            teacher run's critic-only segments; ``[]``: no check.
        latent_distill: student segment -> teacher segment whose encoder latents are matched; None: none.
        latent_distill_coef: weight of ``Loss/latent``.
        schedule: PPO's learning-rate schedule; ``fixed`` by default (``adaptive`` needs ``using_ppo``).
        env_cfg: the env's config (injected by the runner, not a config key): its ``control.action_scale``.
        **kwargs: :class:`PPO` arguments (its loss weights, clip and GAE keys are unused without ``using_ppo``).

    Raises:
        ConfigError: every misuse above, the teacher's ones naming ``algorithm.teacher_run``.
    """

    def __init__(
        self,
        policy: nn.Module,
        *,
        teacher_run: str | None = None,
        teacher_checkpoint: int = -1,
        using_ppo: bool = False,
        distill_loss: str = "mse",
        distill_coef: float = 1.0,
        teacher_act_prob: float = 1.0,
        teacher_act_prob_schedule: str = "constant",
        teacher_act_prob_final: float = 0.0,
        teacher_act_prob_decay_iterations: int = 500,
        privileged_segments: list[str] | None = None,
        latent_distill: dict[str, str] | None = None,
        latent_distill_coef: float = 1.0,
        schedule: str = "fixed",
        env_cfg: dict | None = None,
        **kwargs,
    ) -> None:
        self._check_options(policy, using_ppo, distill_loss, schedule, teacher_act_prob_schedule, kwargs)
        super().__init__(policy, schedule=schedule, **kwargs)
        self.using_ppo = using_ppo
        self.distill_loss = distill_loss
        if not using_ppo:
            self.loss_coefs = {}  # no PPO term: no critic runs, no reward is used
        self.loss_coefs["distill"] = distill_coef
        self.schedule_args = (teacher_act_prob, teacher_act_prob_final, teacher_act_prob_schedule)
        self.teacher_act_prob_decay_iterations = teacher_act_prob_decay_iterations
        self.teacher_act_prob = teacher_act_prob
        self.teacher_run = teacher_run
        run_cfg, checkpoint_path = read_teacher_run(teacher_run, teacher_checkpoint)
        self._check_student_segments(privileged_segments, run_cfg)
        self.teacher, self._teacher_index, self._teacher_scale = self._build_teacher(
            run_cfg, checkpoint_path, read_action_scale({"env": env_cfg or {}}, "the env config")
        )
        self._teacher_reads_privileged = bool(
            self._teacher_index.numel() and self._teacher_index.max() >= policy.num_actor_obs
        )
        self.latent_pairs = self._check_latent_pairs(latent_distill)
        if self.latent_pairs:
            self.loss_coefs["latent"] = latent_distill_coef
        self._teacher_steps = torch.zeros((), device=self.device)
        self._steps = 0

    @staticmethod
    def _check_options(policy, using_ppo, distill_loss, schedule, act_prob_schedule, kwargs) -> None:
        """What no value check of one key can see."""
        if distill_loss == "nll" and isinstance(policy, DeterministicPolicyMixin):
            raise ConfigError(
                f"algorithm.distill_loss nll needs a stochastic student; {type(policy).__name__} acts with its mean "
                "(use mse or l1)"
            )
        if not using_ppo and schedule == "adaptive":
            raise ConfigError(
                "algorithm.schedule adaptive follows PPO's KL; pure DAgger (algorithm.using_ppo false) needs fixed"
            )
        if kwargs.get("symmetry") is not None:
            raise ConfigError("algorithm.symmetry is not supported by TPPO (its batches carry the teacher's labels)")
        if distill_loss not in DISTILL_LOSSES or act_prob_schedule not in SCHEDULES:
            raise ConfigError(
                f"algorithm.distill_loss must be one of {', '.join(DISTILL_LOSSES)} and "
                f"algorithm.teacher_act_prob_schedule one of {', '.join(SCHEDULES)}"
            )

    def _build_teacher(
        self, run_cfg: dict, checkpoint_path: str | None, env_scale: float
    ) -> tuple[nn.Module, torch.Tensor, float]:
        """``(frozen teacher, its input columns of cat([obs, privileged_obs]), factor to the env's action scale)``."""
        student = self.policy
        # The student was built on the env's layouts: the critic's is the privileged one (the actor's without it).
        obs_segments, privileged = student.actor_obs_segments, student.critic_obs_segments
        where = f"algorithm.teacher_run {self.teacher_run}"
        if checkpoint_path is None:  # a mutex over everything the env provides, in the env's action scale
            view = OrderedDict([*privileged.items(), *obs_segments.items()])  # the observation's wins
            columns = teacher_columns(view, obs_segments, privileged, f"{where} (mutex)")
            policy_cfg = {**run_cfg["policy"], "action_scale": env_scale}
            n = len(columns)
            teacher = build_policy(policy_cfg, n, n, student.num_actions, view, None, source=where)
            factor = 1.0
        else:
            try:
                teacher = load_policy_from_run(self.teacher_run, checkpoint_iteration(checkpoint_path), self.device)
            except Exception as e:  # config, checkpoint and state-dict errors: one line naming the run
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ConfigError(f"{where}: cannot load the teacher: {first}") from e
            columns = teacher_columns(teacher.actor_obs_segments, obs_segments, privileged, f"the teacher ({where})")
            factor = read_action_scale(run_cfg, os.path.join(self.teacher_run, "config.json")) / env_scale
        if teacher.num_actions != student.num_actions:
            raise ConfigError(f"{where} has {teacher.num_actions} actions, the env {student.num_actions}")
        for param in teacher.parameters():
            param.requires_grad_(False)
        return teacher.to(self.device).eval(), columns.to(self.device), factor

    def _check_student_segments(self, privileged_segments: list[str] | None, run_cfg: dict) -> None:
        if privileged_segments is None:
            teacher_obs = run_cfg.get("obs_segments") or {}
            critic_only = [
                k
                for k in run_cfg.get("privileged_obs_segments") or {}
                if k not in teacher_obs and k not in ROBOT_SENSOR_SEGMENTS
            ]
            privileged_segments = [*ORACLE_SEGMENTS, *critic_only]
        elif not isinstance(privileged_segments, (list, tuple)) or not all(
            isinstance(s, str) for s in privileged_segments
        ):
            raise ConfigError(
                f"algorithm.privileged_segments must be a list of segment names, got {privileged_segments!r}"
            )
        read = [name for name in self.policy.actor_obs_segments if name in privileged_segments]
        if read:
            raise ConfigError(
                f"the student ({type(self.policy).__name__}) reads privileged segment(s) {', '.join(read)}: a student "
                "sees what a robot has (drop them from its observation, or set algorithm.privileged_segments)"
            )

    def _check_latent_pairs(self, latent_distill: dict[str, str] | None) -> list[tuple[str, str]]:
        key = "algorithm.latent_distill"
        if latent_distill is None:
            return []
        if not isinstance(latent_distill, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in latent_distill.items()
        ):
            raise ConfigError(f"{key} must map student segments to teacher segments, got {latent_distill!r}")
        for student_name, teacher_name in latent_distill.items():
            sizes = [latent_size(p, n) for p, n in ((self.policy, student_name), (self.teacher, teacher_name))]
            if None in sizes:
                who = "the student" if sizes[0] is None else f"the teacher ({self.teacher_run})"
                name = student_name if sizes[0] is None else teacher_name
                raise ConfigError(f"{key}: {who} has no encoder of segment '{name}'")
            if sizes[0] != sizes[1]:
                raise ConfigError(
                    f"{key}: the student's latent of '{student_name}' has {sizes[0]} entries, the teacher's of "
                    f"'{teacher_name}' {sizes[1]}"
                )
        return list(latent_distill.items())

    # --- schedule ----------------------------------------------------------------------------------------------------
    def set_learning_iteration(self, iteration: int) -> None:
        """Set ``teacher_act_prob`` for learning iteration ``iteration`` (0-based; called by the runner)."""
        start, final, schedule = self.schedule_args
        self.teacher_act_prob = teacher_act_prob_at(
            iteration, start, final, schedule, self.teacher_act_prob_decay_iterations
        )

    # --- rollout -----------------------------------------------------------------------------------------------------
    def teacher_actions(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """The teacher's actions ``(N, A)`` in the env's action scale for ``obs`` ``(N, O)`` and the privileged
        observation ``critic_obs`` ``(N, C)``; advances a recurrent teacher's memory."""
        return self._teacher_act(self._teacher_obs(obs, critic_obs))

    def _teacher_act(self, teacher_obs: torch.Tensor) -> torch.Tensor:
        return self.teacher.act_inference(teacher_obs) * self._teacher_scale

    def _teacher_obs(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, critic_obs], dim=-1) if self._teacher_reads_privileged else obs
        return x.index_select(-1, self._teacher_index)

    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """The executed actions ``(N, A)``: per env the teacher's with probability ``teacher_act_prob``, else the
        student's; records the transition (with the teacher's actions as labels)."""
        student_actions = super().act(obs, critic_obs) if self.using_ppo else self._act_student(obs, critic_obs)
        teacher_obs = self._teacher_obs(obs, critic_obs)
        teacher_actions = self._teacher_act(teacher_obs)
        use_teacher = torch.rand(obs.shape[0], 1, device=self.device) < self.teacher_act_prob
        actions = torch.where(use_teacher, teacher_actions, student_actions)
        transition = self.transition
        transition.actions = actions
        transition.actions_log_prob = self.policy.get_actions_log_prob(actions).detach()
        transition.labels = {TEACHER_ACTIONS: teacher_actions}
        if self.latent_pairs:
            for student_name, teacher_name in self.latent_pairs:
                latent = encoder_latent(self.teacher, teacher_obs, teacher_name)
                transition.labels[TEACHER_LATENT + student_name] = latent
        self._teacher_steps = self._teacher_steps + use_teacher.sum()
        self._steps += obs.shape[0]
        return actions

    def _act_student(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """:meth:`PPO.act` without the critic (pure DAgger: values are zeros, never used)."""
        transition = self.transition
        transition.hidden_states = self.policy.get_hidden_states()
        masks = self.policy.draw_substitution_masks(obs.shape[0], obs.device)
        transition.substitution_masks = masks
        with self.policy.using_substitution_masks(masks):
            actions = self.policy.act(obs).detach()
        transition.values = torch.zeros(obs.shape[0], 1, device=self.device)
        transition.action_mean = self.policy.action_mean.detach()
        transition.action_sigma = self.policy.action_std.detach()
        transition.observations = obs
        transition.critic_observations = critic_obs
        return actions

    @torch.no_grad()
    def process_env_step(self, rewards: torch.Tensor, dones: torch.Tensor, infos: dict) -> None:
        """Store the step (PPO's, with its time-out bootstrap, when ``using_ppo``); reset the teacher's memory of
        the envs that are done."""
        if self.using_ppo:
            super().process_env_step(rewards, dones, infos)
        else:
            self.transition.rewards = rewards.to(self.device).float()
            self.transition.dones = dones.to(self.device)
            self.storage.add_transitions(self.transition)
            self.transition.clear()
            self.policy.reset(dones)
        self.teacher.reset(dones.to(self.device).bool())

    @torch.no_grad()
    def compute_returns(self, last_critic_obs: torch.Tensor) -> None:
        """GAE when ``using_ppo``; pure DAgger has no returns."""
        if self.using_ppo:
            super().compute_returns(last_critic_obs)

    def rollout_state(self) -> dict[str, torch.Tensor]:
        """The teacher's memories of the running episodes, ``teacher/<memory> -> (N, S, H)`` (env axis first)."""
        return {f"teacher/{k}": v.transpose(0, 1) for k, v in memory_states(self.teacher).items()}

    def load_rollout_state(self, state: dict[str, torch.Tensor]) -> None:
        unknown = sorted(k for k in state if not k.startswith("teacher/"))
        if unknown:
            raise ValueError(f"TPPO carries the teacher's memories only, got {', '.join(unknown)}")
        load_memory_states(self.teacher, {k[len("teacher/") :]: v.transpose(0, 1) for k, v in state.items()})

    # --- learning ----------------------------------------------------------------------------------------------------
    def compute_losses(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """PPO's losses (``using_ppo``), ``distill`` and ``latent`` (with latent pairs); metrics ``kl`` (for PPO's
        update) and ``distill_error``."""
        if self.using_ppo:
            losses, metrics = super().compute_losses(batch)  # its actor pass sets the distribution on the batch
        else:
            with self.policy.using_substitution_masks(batch.substitution_masks):
                self.policy.update_distribution(batch.observations, batch.masks, batch.hidden_states)
            losses, metrics = {}, {}
            with torch.no_grad():
                policy = self.policy
                metrics["kl"] = gaussian_kl(policy.action_mean, policy.action_std, batch.old_mu, batch.old_sigma)
        losses["distill"], distill_metrics = distillation_loss(
            self.distill_loss, self.policy.distribution, batch.labels[TEACHER_ACTIONS]
        )
        metrics.update(distill_metrics)
        if self.latent_pairs:
            losses["latent"] = self._latent_loss(batch)
        return losses, metrics

    def _latent_loss(self, batch: Batch) -> torch.Tensor:
        """Mean over the pairs of ``mean((z_student - z_teacher)^2)`` on the batch (recurrent: unpadded)."""
        total = 0.0
        for student_name, _ in self.latent_pairs:
            latent = encoder_latent(self.policy, batch.observations, student_name)
            if batch.masks is not None:
                latent = unpad_trajectories(latent, batch.masks)
            total = total + (latent - batch.labels[TEACHER_LATENT + student_name]).pow(2).mean()
        return total / len(self.latent_pairs)

    def update(self) -> dict[str, float]:
        """PPO's update on the labelled rollout; adds ``teacher_act_prob`` and ``teacher_act_fraction``."""
        fraction = float(self._teacher_steps) / self._steps if self._steps else float("nan")
        self._teacher_steps, self._steps = torch.zeros((), device=self.device), 0
        means = super().update()
        if not self.using_ppo:
            del means["explained_variance"]  # no critic is trained
        means["teacher_act_prob"] = self.teacher_act_prob
        means["teacher_act_fraction"] = fraction
        return means
