"""Export a trained policy as a standalone ONNX file, beside the TorchScript export.

The graph is what :func:`st_rl.utils.export.export_policy_as_jit` scripts (``policy.export_module()``: the
observation normaliser's statistics baked in, raw flat actor observation ``(B, num_obs)`` -> deterministic
action ``(B, num_actions)``), made stateless: every state tensor the TorchScript module keeps in a buffer (GRU /
LSTM memories, the mutex's selection, smoothing and command state) is an explicit graph input and output,
batch-first, with a dynamic batch axis::

    inputs:  obs (B, num_obs), <state>_in (B, *shape) ...
    outputs: actions (B, num_actions), <state>_out (B, *shape) ...

State names: ``h`` (and ``c`` for an LSTM) for a policy with one memory; with several memories, their names are
prefixed by the stage's path in the exported module (``stages.2.h``, ``stages.2.c``); a mutex adds ``last_output``,
``prev_selection``, ``commands``, ``rng_state``, ``action_history`` and ``history_count`` (int64 where the
TorchScript buffer is). An episode starts from all-zero state, and resetting an env zeroes its rows (except
``rng_state``, zeroed only by a reset of all envs: see :mod:`st_rl.utils.onnx_policy`, which describes the
metadata and runs the file with onnxruntime and numpy only).

Exporting needs the ``onnx`` and ``onnxruntime`` packages (the result is checked on onnxruntime before it is
kept); importing this module does not.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from st_rl.modules.actor_critic_mutex import MutexCore
from st_rl.modules.actor_critic_recurrent import ExportedGRU, ExportedLSTM
from st_rl.utils.export import sequence_max_abs_diff
from st_rl.utils.io import atomic_write
from st_rl.utils.onnx_policy import FORMAT_VERSION, IO_KEY, OnnxPolicy

OPSET_VERSION = 17
"""ONNX opset of the graph from the TorchScript-based exporter (the default; onnxruntime >= 1.12 runs it)."""
DYNAMO_OPSET_VERSION = 18
"""ONNX opset of the graph from the torch.export-based exporter (``dynamo=True``; onnxruntime >= 1.14)."""

_EXAMPLE_BATCH = 3  # traced with this batch, checked with 4 (onnx_max_abs_diff): a frozen batch size fails


@dataclass(frozen=True)
class StateSpec:
    """One state tensor of a stateful exported module, as a graph input/output ``(B, *shape)``."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    reset: str = "zero"  # "zero": zeroed whenever its env resets; "full": only when all envs reset


class _StateBinding:
    """Maps the state buffers of one kind of exported module to batch-first graph tensors and back.

    ``buffers`` are the module's state buffers: in the module exported to ONNX they become plain attributes
    (so the exporters see no buffer mutation), set by :meth:`load` before the module's step and read by
    :meth:`store` after it.
    """

    buffers: tuple[str, ...] = ()

    def specs(self, module: nn.Module) -> list[StateSpec]:
        raise NotImplementedError

    def load(self, module: nn.Module, states: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def store(self, module: nn.Module) -> list[torch.Tensor]:
        raise NotImplementedError


class _GruBinding(_StateBinding):
    """:class:`ExportedGRU`: ``hidden_states`` ``(S, B, H)`` <-> ``h`` ``(B, S, H)``."""

    buffers = ("hidden_states",)

    def specs(self, module: nn.Module) -> list[StateSpec]:
        return [StateSpec("h", (module.num_rows, module.hidden_size), torch.float32)]

    def load(self, module: nn.Module, states: list[torch.Tensor]) -> None:
        module.hidden_states = states[0].transpose(0, 1).contiguous()

    def store(self, module: nn.Module) -> list[torch.Tensor]:
        return [module.hidden_states.transpose(0, 1)]


class _LstmBinding(_StateBinding):
    """:class:`ExportedLSTM`: ``hidden_states`` ``(2L, B, H)`` (``h`` rows, then ``c`` rows) <-> ``h``, ``c``
    ``(B, L, H)``."""

    buffers = ("hidden_states",)

    def specs(self, module: nn.Module) -> list[StateSpec]:
        shape = (module.num_rows // 2, module.hidden_size)
        return [StateSpec("h", shape, torch.float32), StateSpec("c", shape, torch.float32)]

    def load(self, module: nn.Module, states: list[torch.Tensor]) -> None:
        h, c = states
        module.hidden_states = torch.cat([h.transpose(0, 1), c.transpose(0, 1)], dim=0).contiguous()

    def store(self, module: nn.Module) -> list[torch.Tensor]:
        h, c = module.hidden_states.chunk(2, dim=0)
        return [h.transpose(0, 1), c.transpose(0, 1)]


class _MutexBinding(_StateBinding):
    """:class:`MutexCore`. Zero graph state is the state after a reset: ``prev_selection`` is stored plus one
    (0 = none, the core's -1) and a zero ``rng_state`` row (the generator's state is never 0) is seeded as the
    core seeds it. ``rng_state`` survives a reset of some envs, as in the core (``reset == "full"``)."""

    buffers = ("last_output", "prev_selection", "commands", "rng_state", "action_history", "history_count")

    def specs(self, module: nn.Module) -> list[StateSpec]:
        a, k, n = module.num_actions, module.num_slots, module.smoothing_len
        return [
            StateSpec("last_output", (a,), torch.float32),
            StateSpec("prev_selection", (), torch.int64),
            StateSpec("commands", (k,), torch.float32),
            StateSpec("rng_state", (), torch.int64, reset="full"),
            StateSpec("action_history", (n, a), torch.float32),
            StateSpec("history_count", (), torch.int64),
        ]

    def load(self, module: nn.Module, states: list[torch.Tensor]) -> None:
        last_output, prev_selection, commands, rng_state, action_history, history_count = states
        module.last_output = last_output
        module.prev_selection = prev_selection - 1
        module.commands = commands
        seed = module._seed(rng_state.size(0), rng_state.device)
        module.rng_state = torch.where(rng_state == 0, seed, rng_state)
        module.action_history = action_history.transpose(0, 1).contiguous()
        module.history_count = history_count

    def store(self, module: nn.Module) -> list[torch.Tensor]:
        return [
            module.last_output,
            module.prev_selection + 1,
            module.commands,
            module.rng_state,
            module.action_history.transpose(0, 1),
            module.history_count,
        ]


# Exact types (ExportedLSTM subclasses ExportedGRU).
_BINDINGS: dict[type, _StateBinding] = {
    ExportedGRU: _GruBinding(),
    ExportedLSTM: _LstmBinding(),
    MutexCore: _MutexBinding(),
}


@dataclass(frozen=True)
class _BoundState:
    path: str
    module: nn.Module
    binding: _StateBinding
    specs: tuple[StateSpec, ...]


class StatelessPolicy(nn.Module):
    """``forward(obs, *state_in) -> (actions, *state_out)``: an exported policy module (``export_module()``) with
    its state buffers turned into explicit inputs and outputs (see the module docstring).

    Owns ``exported`` (pass a copy): its state buffers become plain attributes, so it no longer works as the
    buffered module. ``names`` are the state names, ``specs`` their :class:`StateSpec`, in input order.
    """

    def __init__(self, exported: nn.Module) -> None:
        super().__init__()
        self.exported = exported
        bound = []
        for path, module in exported.named_modules():
            binding = _BINDINGS.get(type(module))
            if binding is None:
                continue
            for name in binding.buffers:  # state -> plain attribute, set by load() on every step
                value = module._buffers.pop(name)
                setattr(module, name, value)
            bound.append(_BoundState(path, module, binding, tuple(binding.specs(module))))
        self._bound = bound  # plain list: the modules are registered once, under ``exported``
        keys = [spec.key for b in bound for spec in b.specs]
        self.names = []  # a module's states are prefixed by its path when a key of it is another module's too
        for b in bound:
            prefixed = any(keys.count(spec.key) > 1 for spec in b.specs)
            self.names += [f"{b.path}.{spec.key}" if prefixed else spec.key for spec in b.specs]
        self.specs = [spec for b in bound for spec in b.specs]

    def zero_state(self, batch: int) -> list[torch.Tensor]:
        """All-zero state for ``batch`` envs, in input order."""
        return [torch.zeros(batch, *spec.shape, dtype=spec.dtype) for spec in self.specs]

    def forward(self, obs: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        i = 0
        for b in self._bound:
            b.binding.load(b.module, list(states[i : i + len(b.specs)]))
            i += len(b.specs)
        actions = self.exported(obs)
        outputs = [actions]
        for b in self._bound:
            outputs += b.binding.store(b.module)
        return tuple(outputs)


def _check_no_hidden_state(stateless: StatelessPolicy, num_obs: int) -> None:
    """TypeError if a step changes a buffer of the module other than the bound state (a stateful stage this
    exporter does not know: its state would be frozen into the graph as a constant)."""
    before = dict(stateless.named_buffers())
    snapshot = {name: value.clone() for name, value in before.items()}
    with torch.no_grad():
        stateless(torch.randn(_EXAMPLE_BATCH, num_obs), *stateless.zero_state(_EXAMPLE_BATCH))
    after = dict(stateless.named_buffers())
    changed = sorted(
        name
        for name in set(before) | set(after)
        if name not in before
        or name not in after
        or after[name] is not before[name]
        or not torch.equal(after[name], snapshot[name])
    )
    if changed:
        raise TypeError(
            f"the exported module keeps state in buffers {changed} that the ONNX export cannot make explicit "
            f"(known stateful stages: {', '.join(t.__name__ for t in _BINDINGS)})"
        )


def _onnx_model_bytes(stateless: StatelessPolicy, num_obs: int, dynamo: bool) -> bytes:
    input_names = ["obs", *(f"{n}_in" for n in stateless.names)]
    output_names = ["actions", *(f"{n}_out" for n in stateless.names)]
    example = (torch.randn(_EXAMPLE_BATCH, num_obs), *stateless.zero_state(_EXAMPLE_BATCH))
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated; its notes on RNN batch sizes are moot here (the initial
        # states are inputs). The torch.export-based one warns about the GRU's flat weights and internals.
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch")
            states = tuple({0: batch} for _ in example[1:])
            program = torch.onnx.export(
                stateless,
                example,
                None,
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=({0: batch}, states) if states else ({0: batch},),
                opset_version=DYNAMO_OPSET_VERSION,
                verbose=False,
            )
            return program.model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(
            stateless,
            example,
            buffer,
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes={name: {0: "batch"} for name in input_names + output_names},
            opset_version=OPSET_VERSION,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def _declare_every_input(model: Any, stateless: StatelessPolicy, num_obs: int) -> None:
    """Give ``model`` (an ``onnx.ModelProto``) every input of the interface, in order: the exporters drop inputs
    the step never reads (a mutex without ``recover_last_action`` never reads ``last_output``), but a runtime
    feeds every state the metadata lists. RuntimeError if an output is missing."""
    from onnx import TensorProto, helper

    elem_type = {torch.float32: TensorProto.FLOAT, torch.int64: TensorProto.INT64}
    wanted = [("obs", TensorProto.FLOAT, ["batch", num_obs])]
    wanted += [(f"{n}_in", elem_type[s.dtype], ["batch", *s.shape]) for n, s in zip(stateless.names, stateless.specs)]
    present = {value.name: value for value in model.graph.input}
    inputs = [present.pop(name, None) or helper.make_tensor_value_info(name, t, shape) for name, t, shape in wanted]
    if present:
        raise RuntimeError(f"the exported graph has unexpected inputs {sorted(present)}")
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    outputs = [value.name for value in model.graph.output]
    expected = ["actions", *(f"{n}_out" for n in stateless.names)]
    if outputs != expected:
        raise RuntimeError(f"the exported graph has outputs {outputs}, expected {expected}")


def _metadata_props(metadata: Mapping[str, Any], stateless: StatelessPolicy, num_obs: int, num_actions: int):
    props: dict[str, str] = {}
    json_keys = []
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be strings, got {key!r}")
        if key == IO_KEY:
            raise ValueError(f"metadata key '{IO_KEY}' is reserved for the graph interface")
        if isinstance(value, str):
            props[key] = value
        else:
            props[key] = json.dumps(value)
            json_keys.append(key)
    props[IO_KEY] = json.dumps(
        {
            "format": FORMAT_VERSION,
            "obs": "obs",
            "actions": "actions",
            "num_obs": num_obs,
            "num_actions": num_actions,
            "state": [
                {
                    "name": name,
                    "input": f"{name}_in",
                    "output": f"{name}_out",
                    "shape": list(spec.shape),
                    "dtype": str(spec.dtype).removeprefix("torch."),
                    "reset": spec.reset,
                }
                for name, spec in zip(stateless.names, stateless.specs)
            ],
            "metadata_keys": list(metadata),
            "json_keys": json_keys,
        }
    )
    return props


def onnx_max_abs_diff(
    policy: nn.Module, onnx_path: str, num_obs: int, steps: int = 16, batch: int = 4, seed: int = 0
) -> float:
    """:func:`~st_rl.utils.export.sequence_max_abs_diff` of ``policy.onnx`` on onnxruntime (:class:`OnnxPolicy`:
    a reset zeroes those rows of the state inputs)."""
    runner = OnnxPolicy(onnx_path)
    return sequence_max_abs_diff(
        policy, lambda obs: runner(obs.numpy()), lambda dones: runner.reset(dones.numpy()), num_obs, steps, batch, seed
    )


def export_policy_as_onnx(
    policy: nn.Module,
    path: str,
    num_obs: int,
    metadata: Mapping[str, Any] | None = None,
    atol: float = 1e-5,
    dynamo: bool = False,
) -> float:
    """Export ``policy.export_module()`` as a stateless ONNX graph, check it on onnxruntime against
    ``policy.act_inference``, write it atomically.

    Args:
        policy: an st_rl policy with ``export_module()`` (any class in ``st_rl.modules.POLICY_CLASSES``); not
            modified.
        path: output file, e.g. ``<run>/exported/policy.onnx``.
        num_obs: size of the flat actor observation.
        metadata: stored in the model's ``metadata_props`` (e.g. the run's ``policy.json``): string values as
            they are, others JSON-encoded; :class:`~st_rl.utils.onnx_policy.OnnxPolicy` decodes them. The
            graph interface (state names, shapes, dtypes) is added under :data:`IO_KEY`.
        atol: largest accepted difference (:func:`onnx_max_abs_diff`); beyond it nothing is written.
        dynamo: graph from the torch.export-based exporter (opset 18) instead of the TorchScript-based one (opset
            17, the default: equally exact and about 10x faster to export here, but deprecated by torch).

    Returns:
        The measured max abs difference between the ONNX graph on onnxruntime and eager ``act_inference``.
    """
    import onnx  # local: only exporting needs it

    if not hasattr(policy, "export_module"):
        raise TypeError(f"{type(policy).__name__} has no export_module(); cannot export it as ONNX")
    stateless = StatelessPolicy(policy.export_module().to("cpu").eval()).eval()
    _check_no_hidden_state(stateless, num_obs)
    with torch.no_grad():
        num_actions = int(stateless(torch.zeros(1, num_obs), *stateless.zero_state(1))[0].shape[1])
    props = _metadata_props(metadata or {}, stateless, num_obs, num_actions)
    model = onnx.load_from_string(_onnx_model_bytes(stateless, num_obs, dynamo))
    _declare_every_input(model, stateless, num_obs)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)

    measured: list[float] = []

    def write(tmp_path: str) -> None:
        onnx.save_model(model, tmp_path)
        diff = onnx_max_abs_diff(policy, tmp_path, num_obs)
        if not diff <= atol:
            raise RuntimeError(
                f"exported ONNX policy disagrees with act_inference (max abs diff {diff:.3g} > {atol:g}); "
                "refusing to write it"
            )
        measured.append(diff)

    atomic_write(path, write)
    return measured[0]
