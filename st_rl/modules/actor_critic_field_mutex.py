"""Skill-switching mutex policies for the obstacle track: walk (field) until an obstacle is near, then a skill.

Selection reads the mutex env's ``engaging_block`` segment (layout in :mod:`st_rl.env.engaging_block`):
``distance`` to the next obstacle edge (negative once on / past it), the obstacle ``type`` one-hot
(none | climb | jump_down) and its signed ``critical_height``. An env *engages* the obstacle when its type is not
``none`` and ``distance <= skill_trigger_distance`` (negative distances included: on the obstacle).

- :class:`ActorCriticFieldMutex` (2 sub-policies): 0 = field (walk) unless engaged; 1 = climb when engaged
  (for a climb, and for a jump-down too: there is no jump-down sub-policy).
- :class:`ActorCriticClimbMutex` (3 sub-policies): 0 = field unless engaged; when engaged, 2 = jump-down if
  ``critical_height < 0``, else 1 = climb (the sign of the obstacle height decides).

Action scales: every sub-policy's action is converted to the mutex's scale, ``a_sub * scale_sub / action_scale``,
and the previous mutex output is given back to a sub-policy in its own scale, ``a_prev * action_scale / scale_sub``
(see :mod:`st_rl.modules.actor_critic_mutex`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from st_rl.env.engaging_block import (
    CRITICAL_HEIGHT,
    DEPTH,
    DISTANCE,
    ENGAGING_BLOCK_SEGMENT,
    ENGAGING_BLOCK_SIZE,
    OBSTACLE_TYPES,
    TYPE_START,
)
from st_rl.modules.actor_critic_mutex import RESET_ALL, RESET_NEVER, RESET_WHEN_SKILL, ActorCriticMutex
from st_rl.utils.config import ConfigError
from st_rl.utils.obs_segments import get_obs_slice

RESET_NON_SELECTED_VALUES = (True, False, "all", "when_skill")


class EngagingBlockSelector(nn.Module):
    """``obs (N, num_obs) -> (N,)`` long sub-policy index from the ``engaging_block`` segment starting at column
    ``block_start``: 0 unless engaged (type not none and ``distance <= trigger_distance``); when engaged, 1, or
    ``jump_down_index`` where ``critical_height < 0`` (``jump_down_index < 0``: no jump-down sub-policy)."""

    def __init__(self, block_start: int, trigger_distance: float, jump_down_index: int = -1) -> None:
        super().__init__()
        self.distance_column = block_start + DISTANCE
        self.type_start = block_start + TYPE_START
        self.type_end = block_start + DEPTH
        self.height_column = block_start + CRITICAL_HEIGHT
        self.none_type = OBSTACLE_TYPES.index("none")
        self.trigger_distance = float(trigger_distance)
        self.jump_down_index = int(jump_down_index)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        distance = obs[:, self.distance_column]
        obstacle_type = obs[:, self.type_start : self.type_end].argmax(dim=-1)
        engaged = (obstacle_type != self.none_type) & (distance <= self.trigger_distance)
        skill = torch.ones_like(obstacle_type)
        if self.jump_down_index >= 0:
            jump_down = obs[:, self.height_column] < 0
            skill = torch.where(jump_down, torch.full_like(skill, self.jump_down_index), skill)
        return torch.where(engaged, skill, torch.zeros_like(skill))


def parse_cmd_vel_mapping(mapping: Mapping[Any, Any] | None, num_sub_policies: int) -> dict[int, tuple[float, float]]:
    """``{index: value | [low, high]}`` (int or digit-string keys, as YAML/JSON give) -> ``{index: (low, high)}``;
    a fixed value ``v`` becomes ``(v, v)``.

    Raises:
        ConfigError: a key that is not a sub-policy index, or a value that is neither a number nor ``[low, high]``
            with ``low <= high``.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"policy.cmd_vel_mapping must be a mapping sub-policy index -> velocity, got {mapping!r}")
    valid = ", ".join(str(k) for k in range(num_sub_policies))
    parsed: dict[int, tuple[float, float]] = {}
    for key, value in mapping.items():
        try:
            index = int(key) if not isinstance(key, bool) and str(key).strip().lstrip("-").isdigit() else None
        except ValueError:
            index = None
        if index is None or not 0 <= index < num_sub_policies:
            raise ConfigError(f"policy.cmd_vel_mapping key {key!r} is not a sub-policy index (valid: {valid})")
        if _is_number(value):
            low = high = float(value)
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
            low, high = float(value[0]), float(value[1])
        else:
            low = high = math.nan
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ConfigError(
                f"policy.cmd_vel_mapping[{key!r}] must be a velocity or a range [low, high] with low <= high, "
                f"got {value!r}"
            )
        parsed[index] = (low, high)
    return parsed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_reset_non_selected(value: bool | str | None) -> int:
    """``True``/``"all"``/None -> RESET_ALL, ``"when_skill"`` -> RESET_WHEN_SKILL, ``False`` -> RESET_NEVER."""
    if value is None or value is True or value == "all":
        return RESET_ALL
    if value is False:
        return RESET_NEVER
    if value == "when_skill":
        return RESET_WHEN_SKILL
    raise ConfigError(
        f"policy.reset_non_selected must be one of {', '.join(repr(v) for v in RESET_NON_SELECTED_VALUES)}, "
        f"got {value!r}"
    )


class ActorCriticFieldMutex(ActorCriticMutex):
    """Field (walk) sub-policy 0 and climb sub-policy 1, switched on the ``engaging_block`` segment.

    Selection (per env, per step): 1 when the obstacle type is climb or jump_down and
    ``distance <= skill_trigger_distance`` (including negative: on it), else 0. Every sub-policy is stepped on
    every step (see :class:`~st_rl.modules.actor_critic_mutex.ActorCriticMutex`).

    Args:
        cmd_vel_mapping: sub-policy index (int, or the same as a string) -> forward-velocity command, either a
            fixed value or ``[low, high]``. When an env switches into a mapped sub-policy (or starts an episode in
            it), it draws the command uniformly in the range, from a per-env deterministic generator that
            ``reset()`` of all envs reseeds (so the exported module draws the same values). While that
            sub-policy is selected, the first entry of its ``command_segment`` observation is replaced by the
            command (in observation units: the value is written as is); non-selected sub-policies and the other
            command entries see the env's values. Default: no override.
        command_segment: name of the command segment; its first entry is the forward velocity.
        action_smoothing_buffer_len: ``k``; the output of an env is the mean of its last ``k`` selected actions
            (each already converted to the mutex scale), over fewer right after a reset (only the actions since).
            ``1``: no smoothing. It filters every step, not only switches.
        recover_last_action: sub-policies whose observations have ``last_action_segment`` (shape
            ``(num_actions,)``) get there the mutex's previous output in *their* action scale,
            ``a_prev * action_scale / scale_sub`` (zeros after a reset), instead of the env's values (the segment
            then need not exist in the mutex env). False: the env's segment is passed through unconverted.
        last_action_segment: name of the last-action segment (legged_env's is ``last_actions``).
        reset_non_selected: recurrent state of non-selected sub-policies. ``True``/``"all"`` (None = the default,
            ``"all"``): after every step, the state of every sub-policy is reset in the envs where it was not
            selected, so a sub-policy (the field one included) starts from a zero state whenever it is selected
            again. ``"when_skill"``: when an env switches into a skill sub-policy (index >= 1), that skill's state
            is reset before its step; the field policy keeps its memory (stepped on every step). ``False``: never
            (beyond ``reset(dones)``).
        skill_trigger_distance: distance (m) to the obstacle edge at and below which the skill is selected.
        *args, **kwargs: those of :class:`~st_rl.modules.actor_critic_mutex.ActorCriticMutex`.
    """

    num_sub_policies = 2
    jump_down_index = -1  # no jump-down sub-policy: a jump-down is climbed

    def __init__(
        self,
        *args,
        cmd_vel_mapping: dict | None = None,
        command_segment: str = "commands",
        action_smoothing_buffer_len: int = 1,
        recover_last_action: bool = True,
        last_action_segment: str = "last_actions",
        reset_non_selected: bool | str | None = None,
        skill_trigger_distance: float = 1.0,
        **kwargs,
    ) -> None:
        # Plain values only (checked before the sub-policies load); the base class reads them in its hooks.
        paths = kwargs.get("sub_policy_paths", args[3] if len(args) > 3 else None)
        if isinstance(paths, (list, tuple)) and len(paths) != self.num_sub_policies:
            raise ConfigError(
                f"{type(self).__name__} needs {self.num_sub_policies} sub_policy_paths (field, climb"
                f"{', jump-down' if self.num_sub_policies > 2 else ''}), got {len(paths)}"
            )
        smoothing = action_smoothing_buffer_len
        if isinstance(smoothing, bool) or not isinstance(smoothing, int) or smoothing < 1:
            raise ConfigError(f"policy.action_smoothing_buffer_len must be an integer >= 1, got {smoothing!r}")
        if not _is_number(skill_trigger_distance) or not math.isfinite(skill_trigger_distance):
            raise ConfigError(f"policy.skill_trigger_distance must be a finite number, got {skill_trigger_distance!r}")
        self._reset_mode = parse_reset_non_selected(reset_non_selected)
        self._cmd_vel_ranges = parse_cmd_vel_mapping(cmd_vel_mapping, self.num_sub_policies)
        self.command_segment = command_segment
        self.last_action_segment = last_action_segment
        self.action_smoothing_buffer_len = action_smoothing_buffer_len
        self.recover_last_action = bool(recover_last_action)
        self.skill_trigger_distance = float(skill_trigger_distance)
        super().__init__(*args, **kwargs)

    def _make_selector(self) -> nn.Module:
        names = type(self).__name__
        shape = self.actor_obs_segments.get(ENGAGING_BLOCK_SEGMENT)
        if shape is None or tuple(shape) != (ENGAGING_BLOCK_SIZE,):
            found = f"shape {tuple(shape)}" if shape is not None else "missing"
            raise ConfigError(
                f"{names} needs observation segment '{ENGAGING_BLOCK_SEGMENT}' of shape ({ENGAGING_BLOCK_SIZE},) "
                f"in the mutex env ({found}; segments: {', '.join(self.actor_obs_segments)})"
            )
        block_start = get_obs_slice(self.actor_obs_segments, ENGAGING_BLOCK_SEGMENT)[0].start
        return EngagingBlockSelector(block_start, self.skill_trigger_distance, self.jump_down_index)

    def _command_ranges(self) -> dict[int, tuple[float, float]]:
        return dict(self._cmd_vel_ranges)

    def _core_options(self) -> dict[str, Any]:
        return {
            "smoothing_len": self.action_smoothing_buffer_len,
            "recover_last_action": self.recover_last_action,
            "reset_mode": self._reset_mode,
        }


class ActorCriticClimbMutex(ActorCriticFieldMutex):
    """Field sub-policy 0, climb 1 and jump-down 2: when engaged (type not none, ``distance <=
    skill_trigger_distance``), jump-down where the obstacle's ``critical_height < 0``, climb otherwise; field when
    not engaged. Keywords: those of :class:`ActorCriticFieldMutex`."""

    num_sub_policies = 3
    jump_down_index = 2
