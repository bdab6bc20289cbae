"""Recurrent actor-critic: a GRU/LSTM memory in front of the actor MLP and another in front of the critic.

Hidden states are containers ``name -> (S, N, H)``: ``S`` = ``num_layers`` for a GRU and
``2 * num_layers`` for an LSTM (``h`` rows then ``c`` rows), ``N`` envs, ``H`` = hidden size. The actor
and critic memories are ``"actor"`` and ``"critic"``; other recurrent stages (e.g. a privileged
adaptor) add their own names. See :mod:`st_rl.modules.actor_critic` for the rollout / peek / batch
calling convention and :mod:`st_rl.utils.trajectories` for the padded-trajectory layout.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from st_rl.modules.actor_critic import ActorCritic, HiddenStates, Segments, incoming_layouts
from st_rl.utils.obs_segments import segments_num_obs
from st_rl.utils.trajectories import unpad_trajectories

RNN_TYPES = ("gru", "lstm")


class Memory(nn.Module):
    """A GRU or LSTM over ``(N, input_size)`` steps (rollout) or padded ``(T, B, input_size)`` trajectories (batch).

    Attributes:
        hidden_states: the rollout state ``(S, N, H)``, or None before the first step / after a full reset.
            Not part of the ``state_dict``.
    """

    def __init__(self, input_size: int, type: str = "gru", num_layers: int = 1, hidden_size: int = 256) -> None:
        super().__init__()
        if type not in RNN_TYPES:
            raise ValueError(f"unknown rnn_type '{type}' (valid: {', '.join(RNN_TYPES)})")
        self.type = type
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        rnn_cls = nn.GRU if type == "gru" else nn.LSTM
        self.rnn = rnn_cls(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.hidden_states: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        """Copies start from a fresh (zero) state: the rollout state is transient, not a parameter."""
        state = self.__dict__.copy()
        state["hidden_states"] = None
        return state

    @property
    def num_state_rows(self) -> int:
        """``S``: rows of the packed state (``num_layers``, doubled for an LSTM)."""
        return self.num_layers * (2 if self.type == "lstm" else 1)

    def _unpack(self, packed: torch.Tensor | None):
        if packed is None:
            return None
        if self.type == "lstm":
            h, c = packed.chunk(2, dim=0)
            return h.contiguous(), c.contiguous()
        return packed.contiguous()

    def _pack(self, state) -> torch.Tensor:
        return torch.cat(state, dim=0) if self.type == "lstm" else state

    def forward(
        self, x: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Rollout ``(N, in) -> (N, H)`` (advances ``self.hidden_states``); peek with ``hidden_states``
        ``(S, N, H)`` (advances nothing); batch with ``masks``: padded ``(T, B, in)`` -> unpadded ``(T, N, H)``."""
        if masks is not None:
            out, _ = self.rnn(x, self._unpack(hidden_states))
            return unpad_trajectories(out, masks)
        if hidden_states is not None:
            out, _ = self.rnn(x.unsqueeze(0), self._unpack(hidden_states))
            return out.squeeze(0)
        if self.hidden_states is not None and self.hidden_states.shape[1] != x.shape[0]:
            self.hidden_states = None  # a different number of envs (e.g. play after training): start from zeros
        out, state = self.rnn(x.unsqueeze(0), self._unpack(self.hidden_states))
        self.hidden_states = self._pack(state)
        return out.squeeze(0)

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Zero the state of envs where ``dones`` ``(N,)`` is True; all envs if None. Out of place, so it
        also works on states created under ``torch.inference_mode``."""
        if dones is None:
            self.hidden_states = None
        elif self.hidden_states is not None:
            keep = (~dones.to(torch.bool)).to(self.hidden_states.dtype).view(1, -1, 1)
            self.hidden_states = self.hidden_states * keep

    def export_module(self) -> nn.Module:
        """A scriptable copy holding the state in a buffer (see :mod:`st_rl.modules.exported`)."""
        return (ExportedLSTM if self.type == "lstm" else ExportedGRU)(self)


def memory_states(module: nn.Module) -> dict[str, torch.Tensor]:
    """The rollout state ``(S, N, H)`` of every :class:`Memory` in ``module`` that has one, by module name (what a
    checkpoint keeps so that a resumed run continues the running episodes with the same memory)."""
    return {
        name: m.hidden_states.clone()
        for name, m in module.named_modules()
        if isinstance(m, Memory) and m.hidden_states is not None
    }


def load_memory_states(module: nn.Module, states: dict[str, torch.Tensor]) -> None:
    """Set the rollout states of the :class:`Memory` modules of ``module`` from :func:`memory_states`; a memory not
    named in ``states`` starts from zeros. ValueError on a name that is not a memory of ``module``."""
    memories = {name: m for name, m in module.named_modules() if isinstance(m, Memory)}
    unknown = sorted(set(states) - set(memories))
    if unknown:
        raise ValueError(f"memory states for {unknown}, which are not memories of the policy ({sorted(memories)})")
    for name, memory in memories.items():
        state = states.get(name)
        memory.hidden_states = None if state is None else state.clone()


class ExportedGRU(nn.Module):
    """Exported GRU stage: ``(B, in) -> (B, H)`` with the state in the ``hidden_states`` buffer ``(S, B, H)``."""

    def __init__(self, memory: Memory) -> None:
        super().__init__()
        self.rnn = copy.deepcopy(memory.rnn)
        self.num_rows = memory.num_state_rows
        self.hidden_size = memory.hidden_size
        self.register_buffer("hidden_states", torch.zeros(self.num_rows, 1, self.hidden_size))

    def _state_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.hidden_states.size(1) != x.size(0):
            self.hidden_states = torch.zeros(self.num_rows, x.size(0), self.hidden_size, dtype=x.dtype, device=x.device)
        return self.hidden_states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, h = self.rnn(x.unsqueeze(0), self._state_for(x))
        self.hidden_states = h
        return out.squeeze(0)

    @torch.jit.export
    def reset(self, dones: Optional[torch.Tensor] = None) -> None:  # noqa: UP045 (TorchScript needs Optional)
        if dones is None:
            self.hidden_states = torch.zeros_like(self.hidden_states)
        elif dones.size(0) == self.hidden_states.size(1):
            keep = (~dones.to(torch.bool)).to(self.hidden_states.dtype)
            self.hidden_states = self.hidden_states * keep.view(1, -1, 1)


class ExportedLSTM(ExportedGRU):
    """Exported LSTM stage; the buffer holds ``h`` rows then ``c`` rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, c = self._state_for(x).chunk(2, dim=0)
        out, (h, c) = self.rnn(x.unsqueeze(0), (h.contiguous(), c.contiguous()))
        self.hidden_states = torch.cat([h, c], dim=0)
        return out.squeeze(0)


class ActorCriticRecurrent(ActorCritic):
    """:class:`ActorCritic` with a memory (``rnn_type`` gru|lstm) before the actor MLP (``memory_a``) and
    one before the critic MLP (``memory_c``); each MLP sees the memory's ``rnn_hidden_size`` outputs."""

    is_recurrent = True

    def __init__(
        self,
        *args,
        rnn_type: str = "gru",
        rnn_hidden_size: int = 256,
        rnn_num_layers: int = 1,
        actor_feature_segments: Segments | None = None,
        critic_feature_segments: Segments | None = None,
        **kwargs,
    ) -> None:
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"unknown rnn_type '{rnn_type}' (valid: {', '.join(RNN_TYPES)})")
        _, _, actor_in, critic_in = incoming_layouts(args, kwargs, actor_feature_segments, critic_feature_segments)
        super().__init__(
            *args,
            actor_feature_segments=Segments([("memory_a", (rnn_hidden_size,))]),
            critic_feature_segments=Segments([("memory_c", (rnn_hidden_size,))]),
            **kwargs,
        )
        self.rnn_type = rnn_type
        self.memory_a_segments = actor_in
        self.memory_c_segments = critic_in
        self.memory_a = Memory(segments_num_obs(actor_in), rnn_type, rnn_num_layers, rnn_hidden_size)
        self.memory_c = Memory(segments_num_obs(critic_in), rnn_type, rnn_num_layers, rnn_hidden_size)

    def reset(self, dones: torch.Tensor | None = None) -> None:
        super().reset(dones)
        self.memory_a.reset(dones)
        self.memory_c.reset(dones)

    def get_hidden_states(self) -> HiddenStates:
        states = super().get_hidden_states()
        for name, memory in (("actor", self.memory_a), ("critic", self.memory_c)):
            if memory.hidden_states is not None:
                states[name] = memory.hidden_states
        return states

    def actor_features(
        self, obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        latent = self.memory_a(obs, masks, _state(hidden_states, "actor", obs, self.memory_a))
        return super().actor_features(latent, masks, hidden_states)

    def critic_features(
        self, critic_obs: torch.Tensor, masks: torch.Tensor | None = None, hidden_states: HiddenStates | None = None
    ) -> torch.Tensor:
        latent = self.memory_c(critic_obs, masks, _state(hidden_states, "critic", critic_obs, self.memory_c))
        return super().critic_features(latent, masks, hidden_states)

    def obs_layouts(self) -> dict[str, Segments]:
        layouts = super().obs_layouts()
        layouts["memory_a.rnn.weight_ih_l0"] = self.memory_a_segments
        layouts["memory_c.rnn.weight_ih_l0"] = self.memory_c_segments
        return layouts

    def export_actor_stages(self) -> list[nn.Module]:
        return [self.memory_a.export_module(), *super().export_actor_stages()]


def _state(hidden_states: HiddenStates | None, name: str, x: torch.Tensor, memory: Memory) -> torch.Tensor | None:
    """The named state from a container, or zeros when the container lacks it (a state never stepped yet).

    None when no container was given (rollout mode: the memory uses its own state)."""
    if hidden_states is None:
        return None
    state = hidden_states.get(name)
    if state is None:
        batch = x.shape[-2]
        state = x.new_zeros(memory.num_state_rows, batch, memory.hidden_size)
    return state
