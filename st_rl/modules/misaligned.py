"""Loading a checkpoint into a policy whose observation segments differ, matching columns by segment name.

Every st_rl policy lists, in ``obs_layouts()``, the parameters and buffers whose LAST dimension is laid
out by observation segments (the first Linear of the actor/critic MLPs, the first RNN input weights, the
normaliser statistics...), each with the ordered ``name -> shape`` layout of that dimension. With the
layouts of the checkpoint's policy too, a tensor can be rebuilt column block by column block:

- a segment in both layouts with the same shape: its columns are copied from the checkpoint (wherever
  they sit in the source);
- a segment only in the target ("new"), or in both with a different shape ("shape changed"): its
  columns keep the target's current (initial) values, e.g. a normaliser's mean 0 / var 1 / std 1;
- a segment only in the checkpoint: dropped.

Every other tensor is copied when the checkpoint has one of the same name and shape. Nothing is
written into the policy until every tensor has been built (all or nothing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from st_rl.modules.registry import load_policy_from_run
from st_rl.utils.obs_segments import get_obs_slice, segments_num_obs

Layout = Mapping[str, tuple[int, ...]]


@dataclass
class SegmentRemap:
    """How one observation-laid-out tensor was rebuilt along its last dimension.

    Attributes:
        copied: segments copied from the checkpoint, in target order.
        new: target segments absent from the checkpoint, left at their initial value.
        shape_changed: segments in both layouts with different shapes, ``name -> (source shape, target shape)``;
            left at their initial value.
        dropped: checkpoint segments absent from the target, in source order.
    """

    copied: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    shape_changed: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every column of the target tensor was restored from the checkpoint."""
        return not self.new and not self.shape_changed

    def describe(self) -> str:
        """One line: ``copied a, c; new d; shape changed b (2,) -> (3,); dropped e``."""
        parts = [f"copied {', '.join(self.copied) or 'nothing'}"]
        if self.new:
            parts.append(f"new {', '.join(self.new)}")
        if self.shape_changed:
            changes = ", ".join(f"{n} {src} -> {tgt}" for n, (src, tgt) in self.shape_changed.items())
            parts.append(f"shape changed {changes}")
        if self.dropped:
            parts.append(f"dropped {', '.join(self.dropped)}")
        return "; ".join(parts)


@dataclass
class MisalignedLoadReport:
    """What :func:`load_misaligned_state_dict` did, tensor by tensor (names of the policy's ``state_dict``).

    Attributes:
        loaded: target tensors copied as is (same name, same shape, same layout if laid out by segments).
        remapped: target tensors rebuilt segment by segment, with what was copied / kept / dropped.
        unmatched: target tensors left entirely at their initial value, ``name -> reason``.
        unused: checkpoint tensors of which nothing was copied.
    """

    loaded: list[str] = field(default_factory=list)
    remapped: dict[str, SegmentRemap] = field(default_factory=dict)
    unmatched: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every target tensor was fully restored: nothing unmatched and no new or reshaped segment.

        Checkpoint data may still have been dropped (removed segments, ``unused`` tensors)."""
        return not self.unmatched and all(remap.complete for remap in self.remapped.values())

    def not_restored(self) -> list[str]:
        """What stays (partly) at its initial value, one short item per tensor."""
        items = [f"{name} ({reason})" for name, reason in self.unmatched.items()]
        for name, remap in self.remapped.items():
            kept = remap.new + list(remap.shape_changed)
            if kept:
                items.append(f"{name} (segments {', '.join(kept)})")
        return items

    def summary(self) -> str:
        """Multi-line human-readable account: counts, then every remapped, unmatched and unused tensor."""
        status = "complete" if self.complete else "INCOMPLETE: some tensors keep initial values"
        lines = [
            f"misaligned load ({status}): {len(self.loaded)} loaded as is, {len(self.remapped)} remapped, "
            f"{len(self.unmatched)} unmatched, {len(self.unused)} unused checkpoint tensors"
        ]
        lines += [f"  remapped {name}: {remap.describe()}" for name, remap in self.remapped.items()]
        lines += [f"  unmatched {name}: {reason}" for name, reason in self.unmatched.items()]
        if self.unused:
            lines.append(f"  unused: {', '.join(self.unused)}")
        return "\n".join(lines)


def load_misaligned_state_dict(
    policy: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source_layouts: Mapping[str, Layout],
    strict: bool = False,
) -> MisalignedLoadReport:
    """Load ``state_dict`` (written by a policy whose layouts were ``source_layouts``) into ``policy``.

    Args:
        policy: the target; its ``obs_layouts()`` (if it has one) give the target layouts.
        state_dict: the checkpoint's ``model_state_dict``.
        source_layouts: ``obs_layouts()`` of the policy that wrote ``state_dict``.
        strict: raise instead of loading when some target tensor would not be fully restored.

    Returns:
        The report; the policy holds the loaded values (tensors not restored keep their current values).

    Raises:
        ValueError: ``strict`` and the report is not :attr:`~MisalignedLoadReport.complete` (one line listing
            what could not be restored); the policy is then left unchanged.
    """
    target_layouts = policy.obs_layouts() if hasattr(policy, "obs_layouts") else {}
    report = MisalignedLoadReport()
    used: set[str] = set()
    new_state: dict[str, torch.Tensor] = {}
    for name, target in policy.state_dict().items():
        new_state[name] = target
        source = state_dict.get(name)
        if source is None:
            report.unmatched[name] = "not in the checkpoint"
            continue
        source = source.detach()
        if name in target_layouts and name in source_layouts:
            result = _remap(target, source, source_layouts[name], target_layouts[name])
            if isinstance(result, str):
                report.unmatched[name] = result
                continue
            new_state[name], remap = result
            used.add(name)
            if remap is None:
                report.loaded.append(name)
            else:
                report.remapped[name] = remap
        elif source.shape == target.shape:
            new_state[name] = source.to(dtype=target.dtype, device=target.device).clone()
            used.add(name)
            report.loaded.append(name)
        else:
            report.unmatched[name] = f"shape {tuple(target.shape)} but {tuple(source.shape)} in the checkpoint"
    report.unused = [name for name in state_dict if name not in used]
    if strict and not report.complete:
        raise ValueError(f"checkpoint does not fully restore the policy (strict): {'; '.join(report.not_restored())}")
    policy.load_state_dict(new_state)
    return report


def load_misaligned_from_run(
    policy: nn.Module, run_dir: str | os.PathLike, checkpoint: int = -1, strict: bool = False
) -> MisalignedLoadReport:
    """Load checkpoint ``checkpoint`` (iteration, -1 = latest) of the run directory ``run_dir`` into ``policy``.

    The policy that wrote it is rebuilt from the run's ``config.json`` for its layouts; see
    :func:`load_misaligned_state_dict`.
    """
    source = load_policy_from_run(str(run_dir), checkpoint, device="cpu")
    return load_misaligned_state_dict(policy, source.state_dict(), source.obs_layouts(), strict)


def _remap(
    target: torch.Tensor, source: torch.Tensor, source_layout: Layout, target_layout: Layout
) -> tuple[torch.Tensor, SegmentRemap | None] | str:
    """``target`` ``(..., T)`` with the columns of every segment shared with ``source`` ``(..., S)`` copied.

    Returns ``(tensor, None)`` when the layouts are identical (a plain copy), ``(tensor, remap)`` otherwise,
    or the reason the tensor cannot be built (a string).
    """
    for which, tensor, layout in (("target", target, target_layout), ("checkpoint", source, source_layout)):
        if tensor.dim() == 0 or tensor.shape[-1] != segments_num_obs(layout):
            return f"{which} layout of {segments_num_obs(layout)} columns does not fit shape {tuple(tensor.shape)}"
    if source.shape[:-1] != target.shape[:-1]:
        return f"shape {tuple(target.shape)} but {tuple(source.shape)} in the checkpoint (leading dims differ)"
    source = source.to(dtype=target.dtype, device=target.device)
    if list(source_layout.items()) == list(target_layout.items()):
        return source.clone(), None
    remap = SegmentRemap(dropped=[n for n in source_layout if n not in target_layout])
    out = target.clone()
    for seg, shape in target_layout.items():
        if seg not in source_layout:
            remap.new.append(seg)
        elif tuple(source_layout[seg]) != tuple(shape):
            remap.shape_changed[seg] = (tuple(source_layout[seg]), tuple(shape))
        else:
            out[..., get_obs_slice(target_layout, seg)[0]] = source[..., get_obs_slice(source_layout, seg)[0]]
            remap.copied.append(seg)
    if not remap.copied:
        return (
            f"no segment in common with the checkpoint (target: {', '.join(target_layout)}; "
            f"checkpoint: {', '.join(source_layout)})"
        )
    return out, remap
