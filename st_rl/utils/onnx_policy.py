"""Run an exported ``policy.onnx`` (see :mod:`st_rl.utils.onnx_export`) with onnxruntime and numpy only.

:class:`OnnxPolicy` has the calling convention of the exported TorchScript module, so a sim2sim or deploy loop
can run either file: ``actions = policy(obs)`` with ``obs`` ``(B, num_obs)`` float32, and ``policy.reset(dones)``
when episodes start. The ONNX graph itself is stateless (its recurrent state is explicit inputs and outputs);
this class keeps that state per batch row between calls and zeroes the rows of the envs that are reset.

This file imports nothing but the standard library and numpy (onnxruntime when a policy is loaded), so it can
be copied next to a ``policy.onnx`` on a machine without torch or st_rl; ``import st_rl.utils.onnx_policy`` loads
no torch either (``st_rl/__init__.py`` and ``st_rl/utils/__init__.py`` import nothing).

The graph's interface, as stored in its ``metadata_props`` under :data:`IO_KEY` (a JSON object):

- ``obs`` / ``actions``: the names of the observation input ``(B, num_obs)`` and action output
  ``(B, num_actions)``, float32; ``num_obs``, ``num_actions``;
- ``state``: one entry per state tensor, in graph input order after ``obs`` (outputs: after ``actions``, same
  order): ``name``, ``input`` (e.g. ``h_in``), ``output`` (``h_out``), ``shape`` (per batch row: the tensor is
  ``(B, *shape)``), ``dtype`` (a numpy dtype name) and ``reset``: ``"zero"`` (the row is zeroed whenever its env
  is reset) or ``"full"`` (zeroed only when all envs are reset, ``reset()`` without ``dones``; kept through a
  reset of some envs). A fresh episode starts from all-zero state;
- ``metadata_keys``: the other metadata keys, in the exporter's order; ``json_keys``: those whose values are
  JSON-encoded (the rest are plain strings).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

IO_KEY = "st_rl.onnx_io"
"""Key of the graph-interface description in the ONNX model's ``metadata_props``."""

FORMAT_VERSION = 1


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:  # one line, naming the fix
        raise ImportError("running a policy.onnx needs onnxruntime: pip install onnxruntime") from e
    return onnxruntime


def decode_metadata(props: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metadata, io)`` from an ONNX model's ``metadata_props`` (as a dict): the exporter's ``metadata`` dict
    with its values JSON-decoded, and the graph interface (see the module docstring). ValueError if the model
    was not written by :func:`st_rl.utils.onnx_export.export_policy_as_onnx`."""
    if IO_KEY not in props:
        raise ValueError(f"no '{IO_KEY}' in the model's metadata: not a policy.onnx written by st_rl")
    io = json.loads(props[IO_KEY])
    if io.get("format") != FORMAT_VERSION:
        raise ValueError(f"policy.onnx interface format {io.get('format')!r}, this reader knows {FORMAT_VERSION}")
    json_keys = set(io["json_keys"])
    metadata = {k: json.loads(props[k]) if k in json_keys else props[k] for k in io["metadata_keys"]}
    return metadata, io


class OnnxPolicy:
    """A ``policy.onnx`` on onnxruntime: ``policy(obs (B, num_obs)) -> actions (B, num_actions)``, recurrent state
    kept per batch row, ``reset(dones)``.

    Args:
        path: the ``policy.onnx`` file.
        providers: onnxruntime execution providers (default: CPU).

    Attributes:
        metadata: the ``metadata`` dict given to the exporter (the run's ``policy.json``), values decoded.
        io: the graph interface (see the module docstring); ``state_specs`` is ``io["state"]``.
        num_obs, num_actions: observation and action sizes.
    """

    def __init__(self, path: str, providers: list[str] | None = None) -> None:
        ort = _import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
        self.metadata, self.io = decode_metadata(dict(self.session.get_modelmeta().custom_metadata_map))
        self.state_specs: list[dict[str, Any]] = list(self.io["state"])
        self.num_obs = int(self.io["num_obs"])
        self.num_actions = int(self.io["num_actions"])
        self._obs_name = self.io["obs"]
        self._output_names = [self.io["actions"], *(s["output"] for s in self.state_specs)]
        self._state: list[np.ndarray] | None = None

    @property
    def is_recurrent(self) -> bool:
        """Whether the graph has state inputs."""
        return bool(self.state_specs)

    @property
    def state(self) -> dict[str, np.ndarray] | None:
        """The current state by input name (``(B, *shape)`` arrays; copies), None before the first step or after
        ``reset()``."""
        if self._state is None:
            return None
        return {spec["input"]: s.copy() for spec, s in zip(self.state_specs, self._state)}

    def zero_state(self, batch: int) -> list[np.ndarray]:
        """All-zero state for ``batch`` envs, in graph input order."""
        return [np.zeros((batch, *spec["shape"]), dtype=np.dtype(spec["dtype"])) for spec in self.state_specs]

    def __call__(self, obs: Any) -> np.ndarray:
        """Actions ``(B, num_actions)`` float32 for ``obs`` ``(B, num_obs)`` (anything ``np.asarray`` takes);
        advances the state. A batch size other than the state's starts every env from zero state."""
        obs = np.ascontiguousarray(np.asarray(obs, dtype=np.float32))
        if obs.ndim != 2 or obs.shape[1] != self.num_obs:
            raise ValueError(f"obs has shape {obs.shape}, expected (B, {self.num_obs})")
        if self._state is None or (self._state and self._state[0].shape[0] != obs.shape[0]):
            self._state = self.zero_state(obs.shape[0])
        feed = {self._obs_name: obs}
        feed.update({spec["input"]: s for spec, s in zip(self.state_specs, self._state)})
        actions, *state = self.session.run(self._output_names, feed)
        self._state = state
        return actions

    def reset(self, dones: Any | None = None) -> None:
        """Zero the state of the envs where ``dones`` ``(B,)`` is True (states with ``reset == "full"`` are kept);
        all state if None."""
        if dones is None:
            self._state = None
            return
        if self._state is None or not self._state:
            return
        done = np.asarray(dones).astype(bool).reshape(-1)
        if done.shape[0] != self._state[0].shape[0]:
            raise ValueError(f"dones has {done.shape[0]} entries, the state {self._state[0].shape[0]} rows")
        for spec, s in zip(self.state_specs, self._state):
            if spec["reset"] == "zero":
                s[done] = 0
