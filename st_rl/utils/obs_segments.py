"""Named observation segments.

A segment mapping is an ordered mapping ``name -> shape`` (e.g. ``{"base_ang_vel": (3,),
"height_scan": (1, 17, 11)}``). The flat observation of shape ``(N, num_obs)`` is the
concatenation, in mapping order, of every segment flattened. Code finds its inputs by name
through these helpers, never by numeric index.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch

Segments = Mapping[str, tuple[int, ...]]


def segment_size(shape: Sequence[int]) -> int:
    """Number of flat entries of one segment of the given shape."""
    return math.prod(shape)


def segments_num_obs(segments: Segments) -> int:
    """Total flat size of all segments, i.e. ``num_obs``."""
    return sum(segment_size(shape) for shape in segments.values())


def normalize_segments(segments: Mapping[str, Sequence[int]] | None) -> OrderedDict[str, tuple[int, ...]] | None:
    """Copy of ``segments`` as an ``OrderedDict`` of int tuples (accepts lists, e.g. read from JSON)."""
    if segments is None:
        return None
    return OrderedDict((name, tuple(int(d) for d in shape)) for name, shape in segments.items())


def get_obs_slice(segments: Segments, name: str) -> tuple[slice, tuple[int, ...]]:
    """Location of one segment in the flat observation.

    Returns:
        ``(slice, shape)``: ``obs[:, slice]`` has shape ``(N, prod(shape))``; reshape to ``(N, *shape)``.

    Raises:
        ValueError: ``name`` is not a segment; the message lists the valid names.
    """
    start = 0
    for seg_name, shape in segments.items():
        size = segment_size(shape)
        if seg_name == name:
            return slice(start, start + size), tuple(shape)
        start += size
    raise ValueError(f"no observation segment '{name}' (segments: {', '.join(segments)})")


def get_subobs_size(segments: Segments, component_names: Sequence[str]) -> int:
    """Total flat size of the named segments."""
    return sum(segment_size(get_obs_slice(segments, name)[1]) for name in component_names)


def get_subobs_by_components(obs: torch.Tensor, component_names: Sequence[str], segments: Segments) -> torch.Tensor:
    """Gather named segments of a flat observation.

    Args:
        obs: ``(N, num_obs)`` flat observation laid out by ``segments``.
        component_names: segments to gather, in the order they are concatenated in the output.

    Returns:
        ``(N, get_subobs_size(segments, component_names))``.
    """
    parts = [obs[..., get_obs_slice(segments, name)[0]] for name in component_names]
    return torch.cat(parts, dim=-1)


def get_subobs_columns(
    segments: Segments, component_names: Sequence[str], device: torch.device | None = None
) -> torch.Tensor:
    """Flat column indices ``(get_subobs_size(segments, component_names),)`` of the named segments, in that order:
    ``obs[..., columns]`` equals :func:`get_subobs_by_components`."""
    columns = torch.arange(segments_num_obs(segments), device=device)
    return torch.cat([columns[get_obs_slice(segments, name)[0]] for name in component_names])


def substitute_estimated_state(
    obs: torch.Tensor, segments: Segments, estimated_components: Sequence[str], estimated: torch.Tensor
) -> torch.Tensor:
    """Replace named segments of ``obs`` by an estimate (e.g. from a state estimator).

    Args:
        obs: ``(N, num_obs)`` flat observation; not modified.
        estimated_components: segment names covered by ``estimated``, in its order.
        estimated: ``(N, get_subobs_size(segments, estimated_components))``.

    Returns:
        A new ``(N, num_obs)`` tensor equal to ``obs`` except on those segments.
    """
    expected = get_subobs_size(segments, estimated_components)
    if estimated.shape[-1] != expected:
        raise ValueError(
            f"estimate has {estimated.shape[-1]} entries, segments {list(estimated_components)} need {expected}"
        )
    out = obs.clone()
    start = 0
    for name in estimated_components:
        sl, shape = get_obs_slice(segments, name)
        size = segment_size(shape)
        out[..., sl] = estimated[..., start : start + size]
        start += size
    return out


def locate_index(segments: Segments, flat_index: int) -> str:
    """Name of the segment containing flat column ``flat_index`` (for error messages)."""
    start = 0
    for name, shape in segments.items():
        start += segment_size(shape)
        if flat_index < start:
            return name
    return f"<column {flat_index} beyond segments>"
