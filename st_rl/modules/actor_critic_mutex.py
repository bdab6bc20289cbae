"""Mutex policies: several frozen, already trained sub-policies, one of which acts in each env at each step.

A mutex is built from run directories (``config.json`` + ``model_<iter>.pt``, as ``OnPolicyRunner`` writes
them); it is never trained (PPO cannot update it: it has no action distribution and no trainable parameter).
It is for playing, evaluating and exporting a skill-switching controller.

Per step, for observations ``obs (N, num_actor_obs)`` of the *mutex's* env:

1. **Selection.** A selector maps ``obs`` to the index ``(N,)`` of the sub-policy acting in each env. This
   base class always selects sub-policy 0 (it is an adaptor that runs a policy on another env's observation
   layout and action scale); :mod:`st_rl.modules.actor_critic_field_mutex` switches on the ``engaging_block``.
2. **Observation re-indexing.** Each sub-policy's observation is rebuilt from ``obs`` *by segment name*
   (the sub-policy's own segments, in its own order), so sub-policies trained with different segment
   sets/orders work side by side. Subclasses may then override some entries (a command, the last action).
3. **Every sub-policy is stepped on every step**, in every env, selected or not, so the memories of
   recurrent sub-policies stay current with the observations; only the selected output is used.
4. **Action-scale conversion.** A sub-policy's raw action ``a_sub`` means a joint-target offset
   ``a_sub * scale_sub`` (``scale_sub`` = its run's ``env.control.action_scale``, see :func:`read_action_scale`).
   The mutex outputs actions in *its own* scale ``action_scale`` (default: the first sub-policy's), so the
   same offset is ``out = a_sub * scale_sub / action_scale``.

State (last output, previous selection, ...) lives in buffers of :class:`MutexCore`, the one module that runs
the step both in eager mode (wrapping the live sub-policies) and in the exported TorchScript module
(wrapping each sub-policy's ``export_module()``), so the two follow the same code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import torch
from torch import nn

from st_rl.modules.actor_critic import HiddenStates, Segments, default_segments
from st_rl.modules.registry import load_policy_from_run
from st_rl.utils.config import ConfigError
from st_rl.utils.obs_segments import get_obs_slice, get_subobs_by_components, segment_size

# reset_non_selected modes of MutexCore (ints so TorchScript can branch on them).
RESET_NEVER = 0
RESET_ALL = 1
RESET_WHEN_SKILL = 2

# Per-env uniform draws for sampled commands: the "minimal standard" Lehmer generator, in int64 tensor ops
# (state < 2**31, so state * 48271 never overflows), identical in eager mode and TorchScript.
_RNG_MODULUS = 2147483647
_RNG_MULTIPLIER = 48271
_RNG_SEED_STRIDE = 2654435761  # scatters env indices over the state space, so neighbouring envs are uncorrelated


def read_action_scale(run_config: Mapping[str, Any], source: str = "config.json") -> float:
    """The action scale of a run: ``run_config["env"]["control"]["action_scale"]`` (the legged_env layout).

    A raw action ``a`` of that run's policy means a joint-target offset ``a * scale``.

    Returns:
        The scale, or 1.0 when the run's env config has no ``control.action_scale`` (an env whose raw action
        is used as is, e.g. the test point mass).

    Raises:
        ConfigError: the scale is present but not a positive number.
    """
    env_cfg = run_config.get("env")
    control = env_cfg.get("control") if isinstance(env_cfg, Mapping) else None
    if not isinstance(control, Mapping) or "action_scale" not in control:
        return 1.0
    scale = control["action_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 or not math.isfinite(scale):
        raise ConfigError(f"env.control.action_scale in {source} must be a positive number, got {scale!r}")
    return float(scale)


class FirstSelector(nn.Module):
    """Selects sub-policy 0 in every env: ``(N, num_obs) -> (N,)`` long zeros."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(obs.size(0), dtype=torch.long, device=obs.device)


class EagerSubPolicy(nn.Module):
    """A live (frozen) st_rl policy seen as a stage: ``forward = act_inference``, ``reset(dones)``."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.policy.act_inference(x)

    def reset(self, dones: torch.Tensor | None = None) -> None:
        self.policy.reset(dones)


class SubPolicySlot(nn.Module):
    """One sub-policy in a :class:`MutexCore` and how its observation is rebuilt from the mutex observation.

    Attributes:
        policy: ``forward(x (N, n_sub)) -> (N, num_actions)`` and ``reset(dones)``: an :class:`EagerSubPolicy`
            or the sub-policy's exported module.
        obs_index: ``(n_sub,)`` long buffer: column of the mutex observation for each column of the sub-policy's
            observation (0 where the mutex fills the column itself).
        to_mutex_scale: ``scale_sub / mutex_scale`` (sub-policy action -> mutex action).
        to_sub_scale: ``mutex_scale / scale_sub`` (mutex action -> sub-policy action).
        command_column: column of the sub-policy observation overridden by the mapped command, -1 if none.
        command_low / command_high: the uniform range of that command (equal for a fixed value).
        last_action_start: first column of the sub-policy's last-action segment filled with the mutex's previous
            output (converted to ``scale_sub``), -1 if none.
    """

    def __init__(
        self,
        policy: nn.Module,
        obs_index: torch.Tensor,
        to_mutex_scale: float,
        command_column: int = -1,
        command_range: tuple[float, float] = (0.0, 0.0),
        last_action_start: int = -1,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.register_buffer("obs_index", obs_index.to(torch.long).clone())
        self.to_mutex_scale = float(to_mutex_scale)
        self.to_sub_scale = 1.0 / float(to_mutex_scale)
        self.command_column = int(command_column)
        self.command_low = float(command_range[0])
        self.command_high = float(command_range[1])
        self.last_action_start = int(last_action_start)


class MutexCore(nn.Module):
    """The mutex step ``obs (N, num_obs) -> actions (N, num_actions)`` (mutex action scale), scriptable.

    Per step (see the module docstring for the overview):

    - ``sel = selector(obs)`` ``(N,)``; an env *switches into* ``sel`` when ``sel`` differs from its previous
      selection (always true on its first step after a reset).
    - Commands: on a switch into a sub-policy with a command mapping, the env draws that sub-policy's command
      uniformly in ``[command_low, command_high]`` (a fixed value when equal) from a per-env deterministic
      generator (a Lehmer generator in int64 tensor ops, state in ``rng_state``; reseeded by ``reset()`` of all
      envs, so eager and exported modules draw the same values, and so does every run from a full reset).
      The *selected* sub-policy sees it in its command column; the others see the env's.
    - ``recover_last_action``: each slot's last-action segment holds ``last_output * mutex_scale / scale_sub``.
    - ``reset_mode``: :data:`RESET_ALL` resets, after the step, the state of every sub-policy in the envs where
      it was not selected; :data:`RESET_WHEN_SKILL` resets a skill sub-policy (index >= 1) in the envs switching
      into it, before its step; :data:`RESET_NEVER` never resets (beyond ``reset(dones)``).
    - Every slot is stepped; each output is converted to the mutex scale and the selected one kept.
    - Smoothing: the output is the mean of the last ``smoothing_len`` selected (converted) actions of the env,
      fewer right after a reset (only those since the reset); ``smoothing_len == 1`` is no smoothing.

    State buffers (not in the ``state_dict``; sized to the batch on the first step, or when it changes):
    ``last_output (N, A)``, ``prev_selection (N,)`` (-1 after a reset), ``commands (N, K)``, ``rng_state (N,)``,
    ``action_history (smoothing_len, N, A)`` and ``history_count (N,)``.
    """

    def __init__(
        self,
        slots: Sequence[SubPolicySlot],
        selector: nn.Module,
        num_actions: int,
        smoothing_len: int = 1,
        recover_last_action: bool = False,
        reset_mode: int = RESET_NEVER,
    ) -> None:
        super().__init__()
        self.slots = nn.ModuleList(slots)
        self.selector = selector
        self.num_actions = int(num_actions)
        self.num_slots = len(slots)
        self.smoothing_len = int(smoothing_len)
        self.recover_last_action = bool(recover_last_action)
        self.reset_mode = int(reset_mode)
        self.reset_all = self.reset_mode == RESET_ALL
        self.reset_when_skill = self.reset_mode == RESET_WHEN_SKILL
        self.rng_modulus = _RNG_MODULUS  # attributes, not globals: TorchScript cannot read module globals
        self.rng_multiplier = _RNG_MULTIPLIER
        self.rng_seed_stride = _RNG_SEED_STRIDE
        self.register_buffer("command_low", torch.tensor([s.command_low for s in slots]), persistent=False)
        self.register_buffer("command_high", torch.tensor([s.command_high for s in slots]), persistent=False)
        self.register_buffer("last_output", torch.zeros(0, self.num_actions), persistent=False)
        self.register_buffer("prev_selection", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("commands", torch.zeros(0, self.num_slots), persistent=False)
        self.register_buffer("rng_state", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("action_history", torch.zeros(self.smoothing_len, 0, self.num_actions), persistent=False)
        self.register_buffer("history_count", torch.zeros(0, dtype=torch.long), persistent=False)

    def _seed(self, n: int, device: torch.device) -> torch.Tensor:
        envs = torch.arange(n, dtype=torch.long, device=device)
        return (envs * self.rng_seed_stride + 12345) % (self.rng_modulus - 1) + 1

    def _init_state(self, obs: torch.Tensor) -> None:
        n = obs.size(0)
        self.last_output = torch.zeros(n, self.num_actions, dtype=obs.dtype, device=obs.device)
        self.prev_selection = torch.full((n,), -1, dtype=torch.long, device=obs.device)
        self.commands = torch.zeros(n, self.num_slots, dtype=obs.dtype, device=obs.device)
        self.rng_state = self._seed(n, obs.device)
        self.action_history = torch.zeros(self.smoothing_len, n, self.num_actions, dtype=obs.dtype, device=obs.device)
        self.history_count = torch.zeros(n, dtype=torch.long, device=obs.device)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        n = obs.size(0)
        if self.prev_selection.size(0) != n:
            self._init_state(obs)
        sel = self.selector(obs)
        switched = sel != self.prev_selection
        # One uniform draw per env per step; used where an env switches into a sub-policy with a command.
        self.rng_state = (self.rng_state * self.rng_multiplier) % self.rng_modulus
        uniform = self.rng_state.to(obs.dtype) / float(self.rng_modulus)
        low, high = self.command_low.to(obs.dtype), self.command_high.to(obs.dtype)
        drawn = low.unsqueeze(0) + (high - low).unsqueeze(0) * uniform.unsqueeze(1)
        slot_ids = torch.arange(self.num_slots, device=obs.device)
        switched_into = switched.unsqueeze(1) & (sel.unsqueeze(1) == slot_ids.unsqueeze(0))
        self.commands = torch.where(switched_into, drawn, self.commands)

        outputs: list[torch.Tensor] = []
        for k, slot in enumerate(self.slots):
            x = obs.index_select(1, slot.obs_index)
            if slot.command_column >= 0:
                c = slot.command_column
                command = torch.where(sel == k, self.commands[:, k], x[:, c])
                x = torch.cat([x[:, :c], command.unsqueeze(1), x[:, c + 1 :]], dim=1)
            if self.recover_last_action and slot.last_action_start >= 0:
                s = slot.last_action_start
                previous = self.last_output * slot.to_sub_scale
                x = torch.cat([x[:, :s], previous, x[:, s + self.num_actions :]], dim=1)
            if self.reset_when_skill and k > 0:
                slot.policy.reset(switched & (sel == k))
            outputs.append(slot.policy(x) * slot.to_mutex_scale)
            if self.reset_all:
                slot.policy.reset(sel != k)
        stacked = torch.stack(outputs, dim=0)
        chosen = stacked.gather(0, sel.view(1, n, 1).expand(1, n, self.num_actions)).squeeze(0)

        self.action_history = torch.cat([self.action_history[1:], chosen.unsqueeze(0)], dim=0)
        self.history_count = torch.clamp(self.history_count + 1, max=self.smoothing_len)
        rows = torch.arange(self.smoothing_len, device=obs.device).unsqueeze(1)
        valid = (rows >= self.smoothing_len - self.history_count.unsqueeze(0)).to(obs.dtype)
        out = (self.action_history * valid.unsqueeze(2)).sum(dim=0) / self.history_count.to(obs.dtype).unsqueeze(1)

        self.last_output = out
        self.prev_selection = sel
        return out

    @torch.jit.export
    def reset(self, dones: Optional[torch.Tensor] = None) -> None:  # noqa: UP045 (TorchScript needs Optional)
        """Reset every sub-policy and the mutex state of the envs where ``dones`` ``(N,)`` is True (all if None;
        that also reseeds the command generator)."""
        for slot in self.slots:
            slot.policy.reset(dones)
        if dones is None:
            n = self.prev_selection.size(0)
            self.last_output = torch.zeros_like(self.last_output)
            self.prev_selection = torch.full_like(self.prev_selection, -1)
            self.commands = torch.zeros_like(self.commands)
            self.rng_state = self._seed(n, self.rng_state.device)
            self.action_history = torch.zeros_like(self.action_history)
            self.history_count = torch.zeros_like(self.history_count)
        elif dones.size(0) == self.prev_selection.size(0):
            done = dones.to(torch.bool)
            keep = (~done).to(self.last_output.dtype)
            self.last_output = self.last_output * keep.unsqueeze(1)
            self.prev_selection = torch.where(done, torch.full_like(self.prev_selection, -1), self.prev_selection)
            self.action_history = self.action_history * keep.view(1, -1, 1)
            self.history_count = torch.where(done, torch.zeros_like(self.history_count), self.history_count)


class ActorCriticMutex(nn.Module):
    """Runs frozen sub-policies loaded from run directories and outputs the selected one's action.

    This base class always selects sub-policy 0 (see the module docstring for the step): it runs a trained
    policy on this env's observations (re-indexed by segment name) in this env's action scale. Subclasses
    (:class:`~st_rl.modules.actor_critic_field_mutex.ActorCriticFieldMutex`) define switching.

    Not trainable: every parameter is frozen, ``act`` = ``act_inference`` (deterministic: each sub-policy's
    action mean), and there is no ``evaluate``. ``is_recurrent`` is False even with recurrent sub-policies:
    their memories are internal rollout state, advanced on every step for every env and cleared by ``reset``.

    Args:
        num_actor_obs, num_critic_obs, num_actions, obs_segments, privileged_obs_segments: the mutex env's
            sizes and segments (injected from the env).
        sub_policy_paths: run directories (``config.json`` + ``model_<iter>.pt``), in sub-policy index order.
        sub_policy_checkpoints: iteration to load per run, ``-1`` for the latest (default: latest for all).
        action_scale: the scale of the mutex's output actions (default: the first sub-policy's scale).

    Raises:
        ConfigError: a missing/unreadable run directory, a sub-policy with another number of actions, or a
            segment a sub-policy needs that the mutex env's observations lack (or has with another shape).
    """

    is_recurrent = False
    # Segment names a subclass may override entries of (see ActorCriticFieldMutex).
    command_segment = "commands"
    last_action_segment = "last_actions"

    def __init__(
        self,
        num_actor_obs: int,
        num_critic_obs: int,
        num_actions: int,
        sub_policy_paths: Sequence[str],
        sub_policy_checkpoints: Sequence[int] | None = None,
        action_scale: float | None = None,
        obs_segments: Segments | None = None,
        privileged_obs_segments: Segments | None = None,
    ) -> None:
        super().__init__()
        self.num_actor_obs = num_actor_obs
        self.num_critic_obs = num_critic_obs
        self.num_actions = num_actions
        self.obs_segments = obs_segments
        self.privileged_obs_segments = privileged_obs_segments
        self.actor_obs_segments = default_segments(num_actor_obs, obs_segments, "obs")
        if isinstance(sub_policy_paths, str) or not isinstance(sub_policy_paths, Sequence) or not sub_policy_paths:
            raise ConfigError(
                f"policy.sub_policy_paths must be a non-empty list of run directories, got {sub_policy_paths!r}"
            )
        self.sub_policy_paths = [str(p) for p in sub_policy_paths]
        if sub_policy_checkpoints is None:
            sub_policy_checkpoints = [-1] * len(self.sub_policy_paths)
        if len(sub_policy_checkpoints) != len(self.sub_policy_paths) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in sub_policy_checkpoints
        ):
            raise ConfigError(
                f"policy.sub_policy_checkpoints must be {len(self.sub_policy_paths)} integers (one per sub-policy, "
                f"-1 = latest), got {sub_policy_checkpoints!r}"
            )
        self.sub_policy_checkpoints = list(sub_policy_checkpoints)

        policies: list[nn.Module] = []
        self.sub_policy_action_scales: list[float] = []
        self.sub_policy_segments: list[Segments] = []
        for k, (run_dir, checkpoint) in enumerate(zip(self.sub_policy_paths, self.sub_policy_checkpoints)):
            policy, scale = _load_sub_policy(k, run_dir, checkpoint)
            if policy.num_actions != num_actions:
                raise ConfigError(
                    f"sub-policy {k} ({run_dir}) has {policy.num_actions} actions, the mutex env has {num_actions}"
                )
            policies.append(policy)
            self.sub_policy_action_scales.append(scale)
            self.sub_policy_segments.append(policy.actor_obs_segments)
        if action_scale is None:
            action_scale = self.sub_policy_action_scales[0]
        if isinstance(action_scale, bool) or not isinstance(action_scale, (int, float)) or not action_scale > 0:
            raise ConfigError(f"policy.action_scale must be a positive number or null, got {action_scale!r}")
        self.action_scale = float(action_scale)
        self._sub_policies = policies  # plain list: the modules are registered once, inside self.core
        self.core = self._build_core([EagerSubPolicy(p) for p in policies])

    # --- what subclasses configure -----------------------------------------------------------------------------------
    def _make_selector(self) -> nn.Module:
        """The selector ``(N, num_obs) -> (N,)`` long, a scriptable module (copied into the export)."""
        return FirstSelector()

    def _command_ranges(self) -> dict[int, tuple[float, float]]:
        """Sub-policy index -> ``(low, high)`` of its forward-velocity command; ``{}``: no command override."""
        return {}

    def _core_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`MutexCore` beyond slots and selector."""
        return {"smoothing_len": 1, "recover_last_action": False, "reset_mode": RESET_NEVER}

    # --- building ----------------------------------------------------------------------------------------------------
    def _build_core(self, modules: list[nn.Module]) -> MutexCore:
        """A :class:`MutexCore` around ``modules`` (one per sub-policy: eager wrappers or exported modules)."""
        options = self._core_options()
        ranges = self._command_ranges()
        slots = []
        for k, module in enumerate(modules):
            slots.append(self._make_slot(k, module, ranges.get(k), options["recover_last_action"]))
        return MutexCore(slots, self._make_selector(), self.num_actions, **options)

    def _make_slot(
        self, k: int, module: nn.Module, command_range: tuple[float, float] | None, recover_last_action: bool
    ) -> SubPolicySlot:
        run_dir, sub_segments = self.sub_policy_paths[k], self.sub_policy_segments[k]
        mutex_columns = torch.arange(self.num_actor_obs)
        index: list[torch.Tensor] = []
        start, command_column, last_action_start = 0, -1, -1
        for name, shape in sub_segments.items():
            size = segment_size(shape)
            if recover_last_action and name == self.last_action_segment:
                if tuple(shape) != (self.num_actions,):
                    raise ConfigError(
                        f"sub-policy {k} ({run_dir}): segment '{name}' has shape {tuple(shape)}, "
                        f"not ({self.num_actions},) = the actions, so the last action cannot be recovered into it"
                    )
                last_action_start = start
                index.append(torch.zeros(size, dtype=torch.long))  # filled by the mutex
            else:
                mutex_shape = self.actor_obs_segments.get(name)
                if mutex_shape is None:
                    raise ConfigError(
                        f"sub-policy {k} ({run_dir}) needs observation segment '{name}', which the mutex env's "
                        f"observations lack (segments: {', '.join(self.actor_obs_segments)})"
                    )
                if tuple(mutex_shape) != tuple(shape):
                    raise ConfigError(
                        f"sub-policy {k} ({run_dir}): segment '{name}' has shape {tuple(shape)} there but "
                        f"{tuple(mutex_shape)} in the mutex env"
                    )
                index.append(mutex_columns[get_obs_slice(self.actor_obs_segments, name)[0]])
                if command_range is not None and name == self.command_segment:
                    command_column = start  # the first entry: forward velocity
            start += size
        if command_range is not None and command_column < 0:
            raise ConfigError(
                f"policy.cmd_vel_mapping maps sub-policy {k} ({run_dir}), whose observations have no "
                f"'{self.command_segment}' segment (segments: {', '.join(sub_segments)})"
            )
        return SubPolicySlot(
            module,
            torch.cat(index) if index else torch.zeros(0, dtype=torch.long),
            self.sub_policy_action_scales[k] / self.action_scale,
            command_column,
            command_range if command_range is not None else (0.0, 0.0),
            last_action_start,
        )

    # --- policy interface ---------------------------------------------------------------------------------------------
    @property
    def sub_policies(self) -> list[nn.Module]:
        """The loaded sub-policies (frozen, eval mode), in index order."""
        return list(self._sub_policies)

    @property
    def last_selection(self) -> torch.Tensor:
        """``(N,)`` index of the sub-policy selected at the last step (-1 for envs reset since)."""
        return self.core.prev_selection

    def train(self, mode: bool = True) -> ActorCriticMutex:
        """Sets the flag only: the sub-policies stay in eval mode."""
        super().train(mode)
        for policy in self._sub_policies:
            policy.eval()
        return self

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Reset the sub-policies' memories and the mutex state where ``dones`` ``(N,)`` is True (all if None)."""
        self.core.reset(dones)

    def get_hidden_states(self) -> HiddenStates:
        """The sub-policies' recurrent states, named ``sub_policy_<k>/<name>``, each ``(S, N, H)``."""
        return {
            f"sub_policy_{k}/{name}": state
            for k, policy in enumerate(self._sub_policies)
            for name, state in policy.get_hidden_states().items()
        }

    def act_inference(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``(N, num_actions)`` in the mutex action scale for ``obs`` ``(N, num_actor_obs)``; advances state."""
        return self.core(obs)

    def act(self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None):
        """Same as :meth:`act_inference` (the mutex is deterministic and not trainable)."""
        return self.act_inference(obs)

    def sub_observation(self, obs: torch.Tensor, k: int) -> torch.Tensor:
        """Sub-policy ``k``'s observation ``(N, n_k)`` gathered from ``obs`` by segment name, without any override."""
        return get_subobs_by_components(obs, list(self.sub_policy_segments[k]), self.actor_obs_segments)

    def export_module(self) -> nn.Module:
        """One scriptable module ``forward(obs (B, num_actor_obs)) -> (B, num_actions)``, ``reset(dones)``: a
        :class:`MutexCore` around every sub-policy's ``export_module()``, from a fresh state."""
        return self._build_core([policy.export_module() for policy in self._sub_policies]).eval()


def _load_sub_policy(k: int, run_dir: str, checkpoint: int) -> tuple[nn.Module, float]:
    """``(frozen eval policy, action scale)`` of run ``run_dir``; every failure is a one-line ConfigError."""

    where = f"sub-policy {k} ({run_dir})"
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"{where}: run directory not found")
    if not os.path.isfile(config_path):
        raise ConfigError(f"{where}: no config.json in the run directory")
    try:
        with open(config_path) as f:
            run_config = json.load(f)
        scale = read_action_scale(run_config, config_path)
        policy = load_policy_from_run(run_dir, checkpoint)
    except Exception as e:  # json, checkpoint, config and state-dict errors: one line naming the run
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{where}: cannot load the policy: {first_line}") from e
    if not hasattr(policy, "export_module") or not hasattr(policy, "actor_obs_segments"):
        raise ConfigError(f"{where}: {type(policy).__name__} is not an exportable st_rl policy")
    for param in policy.parameters():
        param.requires_grad_(False)
    return policy.eval(), scale
