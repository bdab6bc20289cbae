"""Observation groups: the one place that knows both views of an env's observations.

Our learner (st_rl) reads flat tensors: ``get_observations()`` (actor), ``get_privileged_observations()`` (critic)
and the AMP observation, each laid out by an ordered segment mapping ``name -> shape``. Other learners (rsl_rl,
TorchRL) read named *groups*: one flat tensor per group in a TensorDict. :class:`ObservationGroups` maps one view
onto the other:

* base groups, one per flat tensor of our contract: ``"policy"`` (actor observation), ``"critic"`` (privileged
  observation) and ``"amp"`` (only when the task has an AMP group);
* derived groups, declared by segment names picked from one group, e.g. a teacher's actor input taken from the
  critic observation: ``groups.derive("teacher", "critic", ["base_lin_vel", "friction"])``.

Every group keeps its layout (``groups.segments("critic")``, ``groups.slices("critic")``), so a group's tensor can
be split back into its segments (:meth:`ObservationGroups.split`). :func:`resolve_obs_groups` checks an
rsl_rl-style ``obs_groups`` map (``{"actor": ["policy"], "critic": ["critic"]}``) against the available groups.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from tensordict import TensorDict

from st_rl.utils.obs_segments import Segments, get_obs_slice, normalize_segments, segment_size, segments_num_obs

POLICY = "policy"
CRITIC = "critic"
AMP = "amp"


@dataclass(frozen=True)
class Group:
    """One observation group.

    Attributes:
        name: the group's name (a key of the TensorDict of groups).
        segments: its layout, ``name -> shape`` in flat order.
        source: the base group its columns are read from (itself for a base group).
        columns: for a derived group, the flat columns of ``source`` it gathers, in order; None for a base group.
    """

    name: str
    segments: OrderedDict[str, tuple[int, ...]]
    source: str
    columns: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        return segments_num_obs(self.segments)

    @property
    def derived(self) -> bool:
        return self.columns is not None


class ObservationGroups:
    """Named observation groups over the flat tensors of our env contract (immutable: :meth:`derive` returns a
    new object).

    Args:
        base: base group name -> segments; each base group is one flat tensor handed to :meth:`gather`.
    """

    def __init__(self, base: Mapping[str, Segments]):
        self._groups: OrderedDict[str, Group] = OrderedDict()
        for name, segments in base.items():
            self._groups[name] = Group(name, normalize_segments(segments), name)
        self._index: dict[tuple[str, str], torch.Tensor] = {}  # (group, device) -> column index, derived groups

    @classmethod
    def from_vec_env(cls, env) -> ObservationGroups:
        """The base groups of a :class:`~legged_rl.torch_vec_env.TorchVecEnv` (anything with ``obs_segments``,
        ``privileged_obs_segments`` and ``amp_obs_segments``, None without an AMP group)."""
        base = {POLICY: env.obs_segments, CRITIC: env.privileged_obs_segments}
        if getattr(env, "amp_obs_segments", None) is not None:
            base[AMP] = env.amp_obs_segments
        return cls(base)

    # ------------------------------------------------------------------ layout
    @property
    def names(self) -> tuple[str, ...]:
        """Every group, base groups first, then derived ones in declaration order."""
        return tuple(self._groups)

    @property
    def base_names(self) -> tuple[str, ...]:
        return tuple(name for name, g in self._groups.items() if not g.derived)

    def __contains__(self, name: object) -> bool:
        return name in self._groups

    def __iter__(self):
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def __repr__(self) -> str:
        parts = []
        for g in self._groups.values():
            origin = f" from {g.source}" if g.derived else ""
            parts.append(f"{g.name}({g.size}{origin}: {', '.join(g.segments)})")
        return f"ObservationGroups({'; '.join(parts)})"

    def group(self, name: str) -> Group:
        """The :class:`Group` ``name``; ValueError (one line, listing the groups) if there is none."""
        if name not in self._groups:
            raise ValueError(f"no observation group '{name}' (groups: {', '.join(self._groups)})")
        return self._groups[name]

    def segments(self, name: str) -> OrderedDict[str, tuple[int, ...]]:
        """Layout of group ``name``: segment name -> shape, in flat order (a copy)."""
        return OrderedDict(self.group(name).segments)

    def size(self, name: str) -> int:
        """Flat size of group ``name``."""
        return self.group(name).size

    def slices(self, name: str) -> OrderedDict[str, slice]:
        """Segment name -> slice of group ``name``'s flat tensor."""
        out, start = OrderedDict(), 0
        for seg, shape in self.group(name).segments.items():
            out[seg] = slice(start, start + segment_size(shape))
            start += segment_size(shape)
        return out

    # ------------------------------------------------------------------ derived groups
    def derive(self, name: str, source: str, segment_names: Sequence[str]) -> ObservationGroups:
        """A copy with one more group ``name``: the segments ``segment_names`` of group ``source``, in that order
        (e.g. a teacher's input picked from the critic observation). ``source`` may itself be derived."""
        if name in self._groups:
            raise ValueError(f"observation group '{name}' already exists (groups: {', '.join(self._groups)})")
        if isinstance(segment_names, str) or not segment_names:
            raise ValueError(f"observation group '{name}' needs a non-empty list of segment names")
        src = self.group(source)
        layout = select(src.segments, segment_names)
        src_columns = range(src.size) if src.columns is None else src.columns
        columns = []
        for seg in segment_names:
            columns.extend(src_columns[get_obs_slice(src.segments, seg)[0]])
        out = ObservationGroups({})
        out._groups = OrderedDict(self._groups)
        out._groups[name] = Group(name, layout, src.source, tuple(columns))
        return out

    # ------------------------------------------------------------------ tensors
    def gather(self, base: Mapping[str, torch.Tensor], names: Iterable[str] | None = None) -> TensorDict:
        """TensorDict ``(N,)`` of one flat tensor per group (``names``, default every group) from the flat base
        tensors ``base`` (base group name -> ``(N, size)``). Base groups are the given tensors themselves (no
        copy); derived groups are gathered columns."""
        names = self.names if names is None else tuple(names)
        missing = sorted({self.group(n).source for n in names} - set(base))
        if missing:
            raise ValueError(f"gather needs the base observation(s) {', '.join(missing)}")
        out = {}
        for n in names:
            g = self._groups[n]
            x = base[g.source]
            out[n] = x if g.columns is None else x.index_select(-1, self._columns(g, x.device))
        first = next(iter(out.values()), None)
        batch, device = (first.shape[:-1], first.device) if first is not None else ((), None)
        return TensorDict(out, batch_size=batch, device=device)

    def split(self, name: str, flat: torch.Tensor) -> TensorDict:
        """Group ``name``'s flat tensor ``(N, size)`` as a TensorDict of its segments, each ``(N, *shape)``
        (views of ``flat``)."""
        g = self.group(name)
        if flat.shape[-1] != g.size:
            raise ValueError(f"observation group '{name}' has {g.size} columns, the tensor {flat.shape[-1]}")
        lead = flat.shape[:-1]
        segs = {seg: flat[..., sl].reshape(*lead, *g.segments[seg]) for seg, sl in self.slices(name).items()}
        return TensorDict(segs, batch_size=lead)

    def _columns(self, g: Group, device: torch.device) -> torch.Tensor:
        key = (g.name, str(device))
        if key not in self._index:
            with torch.inference_mode(False):  # a normal tensor even when first built in a rollout
                self._index[key] = torch.tensor(g.columns, dtype=torch.long, device=device)
        return self._index[key]


def select(segments: Segments, segment_names: Sequence[str]) -> OrderedDict[str, tuple[int, ...]]:
    """Layout of the segments ``segment_names`` picked from ``segments``, in that order; ValueError (one line,
    listing the valid names) for a name ``segments`` lacks or a repeated one."""
    if len(set(segment_names)) != len(segment_names):
        raise ValueError(f"repeated segment name in {list(segment_names)}")
    out = OrderedDict()
    for seg in segment_names:
        out[seg] = get_obs_slice(segments, seg)[1]  # raises for an unknown name
    return out


def resolve_obs_groups(
    obs_groups_map: Mapping[str, Sequence[str]],
    available: ObservationGroups | Mapping | Iterable[str],
    required: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Checked copy of an rsl_rl-style ``obs_groups`` map: observation set (``"actor"``, ``"critic"``...) -> the
    groups whose flat tensors it concatenates, in order.

    Args:
        obs_groups_map: e.g. ``{"actor": ["policy"], "critic": ["critic"]}``.
        available: the groups there are: an :class:`ObservationGroups`, a TensorDict / mapping of groups, or names.
        required: observation sets the map must have.

    Raises:
        ValueError: one line, for an unknown group (listing the available ones), an empty or non-list entry, or a
            missing required set.
    """
    if isinstance(available, ObservationGroups):
        names = list(available.names)
    elif isinstance(available, Mapping) or hasattr(available, "keys"):
        names = list(available.keys())
    else:
        names = list(available)
    out = {}
    for obs_set, groups in obs_groups_map.items():
        if isinstance(groups, str) or not isinstance(groups, Sequence) or not groups:
            raise ValueError(f"obs_groups['{obs_set}'] must be a non-empty list of observation groups, got {groups!r}")
        for group in groups:
            if group not in names:
                raise ValueError(
                    f"obs_groups['{obs_set}'] names unknown observation group '{group}' (available: {', '.join(names)})"
                )
        out[obs_set] = list(groups)
    missing = [s for s in required if s not in out]
    if missing:
        raise ValueError(f"obs_groups has no '{missing[0]}' entry (it has: {', '.join(out) or 'none'})")
    return out


def concat_groups(obs: TensorDict, groups: Sequence[str]) -> torch.Tensor:
    """The flat tensors of ``groups`` (one resolved observation set) concatenated along the last axis."""
    return torch.cat([obs[g] for g in groups], dim=-1)
