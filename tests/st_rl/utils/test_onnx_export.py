"""ONNX export: the stateless graph on onnxruntime (through OnnxPolicy) equals eager act_inference over
observation sequences with resets, with the normaliser baked in, explicit state inputs/outputs, a dynamic batch,
metadata round-trips; nothing is written when the check fails; the deploy runner needs neither torch nor st_rl."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from st_rl.modules import build_policy
from st_rl.modules.actor_critic_field_mutex import ActorCriticClimbMutex
from st_rl.modules.actor_critic_mutex import ActorCriticMutex
from st_rl.modules.exported import ExportedPolicy, Stage
from st_rl.utils.onnx_export import export_policy_as_onnx
from st_rl.utils.onnx_policy import IO_KEY, OnnxPolicy
from tests.policy_matrix import train_cfg
from tests.st_rl.modules.test_mutex import (
    CLIMB_SEGMENTS,
    FIELD_SEGMENTS,
    GRU,
    JUMP_SEGMENTS,
    LSTM,
    MLP,
    MUTEX_SEGMENTS,
    NUM_OBS,
    SCALES,
    A,
    field_mutex,
    write_run,
)
from tests.st_rl.segments_env import SegmentsEnv

onnxruntime = pytest.importorskip("onnxruntime")

METADATA = {
    "task": "go2_flat",
    "looks_like_a_number": "1.5",  # a string stays a string
    "num_actions": 12,
    "dt": 0.02,
    "recurrent": True,
    "checkpoint": None,
    "obs_segments": {"base_ang_vel": [3], "height_scan": [1, 3, 3]},
    "joint_names": ["FL_hip", "FL_thigh"],
}
SMALL = {"actor_hidden_dims": [16, 16], "critic_hidden_dims": [8], "obs_normalization": True}
N_OBS = 6


def _nontrivial_normaliser(policy, num_obs: int, num_critic_obs: int) -> None:
    """Running statistics far from (0, 1), so a graph without the normaliser disagrees with eager."""
    generator = torch.Generator().manual_seed(1)
    scale = torch.linspace(0.2, 6.0, num_obs)
    shift = torch.linspace(-4.0, 5.0, num_obs)
    for _ in range(3):
        obs = torch.randn(32, num_obs, generator=generator) * scale + shift
        policy.update_normalization(obs, torch.randn(32, num_critic_obs, generator=generator))
    norm = policy.actor_obs_normalizer
    assert norm.mean.abs().max() > 2.0 and (norm.std - 1).abs().max() > 2.0


def _flat_policy(rnn_type: str | None):
    torch.manual_seed(0)
    if rnn_type is None:
        cfg = {"class_name": "ActorCritic", **SMALL}
    else:
        cfg = {"class_name": "ActorCriticRecurrent", "rnn_type": rnn_type, "rnn_hidden_size": 8, **SMALL}
        cfg["rnn_num_layers"] = 2 if rnn_type == "lstm" else 1
    policy = build_policy(cfg, N_OBS, N_OBS, 3)
    _nontrivial_normaliser(policy, N_OBS, N_OBS)
    return policy, N_OBS


def _visual_policy():
    torch.manual_seed(0)
    env = SegmentsEnv(2)
    policy = build_policy(
        train_cfg("VisualDeterministicRecurrent")["policy"],
        env.num_obs,
        env.num_privileged_obs,
        env.num_actions,
        env.obs_segments,
        env.privileged_obs_segments,
    )
    _nontrivial_normaliser(policy, env.num_obs, env.num_privileged_obs)
    return policy, env.num_obs


POLICIES = {
    "mlp": lambda: _flat_policy(None),
    "gru": lambda: _flat_policy("gru"),
    "lstm": lambda: _flat_policy("lstm"),
    "visual_gru": _visual_policy,
}
STATE_NAMES = {"mlp": [], "gru": ["h"], "lstm": ["h", "c"], "visual_gru": ["h"]}


def compare_sequence(policy, runner: OnnxPolicy, num_obs: int, steps: int = 20, batch: int = 5, seed: int = 3):
    """Max |runner - eager act_inference| over a random sequence, resetting random envs (some steps: all) on both."""
    generator = torch.Generator().manual_seed(seed)
    eager = copy.deepcopy(policy).eval()
    eager.reset()
    runner.reset()
    worst = 0.0
    with torch.inference_mode():
        for step in range(steps):
            obs = torch.randn(batch, num_obs, generator=generator) * 3.0
            actions = runner(obs.numpy())
            assert actions.shape == (batch, eager.num_actions) and actions.dtype == np.float32
            worst = max(worst, float(np.abs(actions - eager.act_inference(obs).numpy()).max()))
            if step % 7 == 6:
                eager.reset()
                runner.reset()
            else:
                dones = torch.rand(batch, generator=generator) < 0.3
                eager.reset(dones)
                runner.reset(dones.numpy())
    return worst


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_onnx_equals_eager_with_state_and_resets(kind, tmp_path):
    policy, num_obs = POLICIES[kind]()
    path = tmp_path / "exported" / "policy.onnx"
    diff = export_policy_as_onnx(policy, str(path), num_obs, metadata=METADATA)
    assert diff <= 1e-5
    assert sorted(p.name for p in path.parent.iterdir()) == ["policy.onnx"]  # no temp files left

    runner = OnnxPolicy(str(path))
    assert compare_sequence(policy, runner, num_obs) <= 1e-5
    assert runner.metadata == METADATA and list(runner.metadata) == list(METADATA)

    # explicit state: graph inputs/outputs named in the metadata, batch-first with a dynamic batch axis
    names = STATE_NAMES[kind]
    assert [s["name"] for s in runner.state_specs] == names
    assert runner.is_recurrent == bool(names)
    inputs = {i.name: i for i in runner.session.get_inputs()}
    outputs = [o.name for o in runner.session.get_outputs()]
    assert list(inputs) == ["obs", *(f"{n}_in" for n in names)]
    assert outputs == ["actions", *(f"{n}_out" for n in names)]
    assert inputs["obs"].shape == ["batch", num_obs]
    for spec in runner.state_specs:
        assert inputs[spec["input"]].shape == ["batch", *spec["shape"]]
        assert spec["dtype"] == "float32" and spec["reset"] == "zero"
    if kind == "lstm":
        assert runner.state_specs[0]["shape"] == [2, 8]  # (num_layers, hidden)

    # any batch size, including 1, from zero state (as the TorchScript module)
    obs = np.random.default_rng(0).normal(size=(1, num_obs)).astype(np.float32) * 3
    runner.reset()
    eager = copy.deepcopy(policy).eval()
    eager.reset()
    with torch.inference_mode():
        for _ in range(3):
            expected = eager.act_inference(torch.from_numpy(obs)).numpy()
            np.testing.assert_allclose(runner(obs), expected, atol=1e-5, rtol=0)


def test_torch_export_based_exporter_too(tmp_path, capsys):
    policy, num_obs = _flat_policy("lstm")
    path = tmp_path / "policy.onnx"
    assert export_policy_as_onnx(policy, str(path), num_obs, metadata=METADATA, dynamo=True) <= 1e-5
    runner = OnnxPolicy(str(path))
    assert compare_sequence(policy, runner, num_obs) <= 1e-5
    assert [i.name for i in runner.session.get_inputs()] == ["obs", "h_in", "c_in"]
    assert runner.session.get_inputs()[1].shape[1:] == [2, 8] and isinstance(
        runner.session.get_inputs()[1].shape[0], str
    )
    assert runner.metadata == METADATA
    assert capsys.readouterr().out == ""  # no progress printing


def test_recurrent_state_is_carried_and_reset_per_row(tmp_path):
    policy, num_obs = _flat_policy("gru")
    policy.act_inference(torch.randn(3, num_obs))  # some eager state: the export leaves it alone
    state = policy.get_hidden_states()["actor"].clone()
    path = tmp_path / "policy.onnx"
    export_policy_as_onnx(policy, str(path), num_obs)
    assert torch.equal(policy.get_hidden_states()["actor"], state)
    runner = OnnxPolicy(str(path))
    obs = np.random.default_rng(1).normal(size=(3, num_obs)).astype(np.float32)
    first = runner(obs)
    second = runner(obs)
    assert np.abs(second - first).max() > 1e-3  # the state matters
    runner.reset(np.array([False, True, False]))
    assert not runner.state["h_in"][1].any() and runner.state["h_in"][0].any()
    third = runner(obs)
    np.testing.assert_array_equal(third[1], first[1])  # env 1 starts over
    assert np.abs(third[0] - first[0]).max() > 1e-3
    with pytest.raises(ValueError, match="dones has 2 entries"):
        runner.reset(np.array([True, False]))
    with pytest.raises(ValueError, match=r"expected \(B, 6\)"):
        runner(obs[0])


@pytest.fixture
def mutex_runs(tmp_path) -> dict[str, str]:
    specs = {"field_lstm": (LSTM, FIELD_SEGMENTS), "climb_gru": (GRU, CLIMB_SEGMENTS), "jump_mlp": (MLP, JUMP_SEGMENTS)}
    paths = {}
    for seed, (name, (cfg, segments)) in enumerate(specs.items()):
        paths[name] = str(tmp_path / "runs" / name)
        write_run(paths[name], cfg, segments, SCALES[name], seed)
    return paths


MUTEXES = {
    # one sub-policy, no command, no last-action recovery: the step never reads last_output (the graph still
    # has the input), smoothing_len 1
    "mutex": lambda runs: ActorCriticMutex(
        NUM_OBS, NUM_OBS, A, sub_policy_paths=[runs["field_lstm"]], obs_segments=MUTEX_SEGMENTS
    ),
    "field_no_reset": lambda runs: field_mutex(
        runs, field="field_lstm", cmd_vel_mapping={"0": [0.5, 1.0]}, recover_last_action=False, reset_non_selected=False
    ),
    **{
        f"climb_{mode}": lambda runs, mode=mode: field_mutex(
            runs,
            field="field_lstm",
            cls=ActorCriticClimbMutex,
            cmd_vel_mapping={"0": [0.5, 1.0], "2": [0.2, 0.4]},  # ranges: the per-env command generator matters
            action_smoothing_buffer_len=2,
            reset_non_selected=mode,
        )
        for mode in ("all", "when_skill")
    },
}


@pytest.mark.parametrize("kind", sorted(MUTEXES))
def test_mutex_onnx_equals_eager(mutex_runs, kind, tmp_path):
    mutex = MUTEXES[kind](mutex_runs)
    path = tmp_path / "policy.onnx"
    assert export_policy_as_onnx(mutex, str(path), NUM_OBS, metadata=METADATA) <= 1e-5
    runner = OnnxPolicy(str(path))
    assert runner.metadata == METADATA
    assert compare_sequence(mutex, runner, NUM_OBS, steps=24, batch=6) <= 1e-5

    specs = {s["name"]: s for s in runner.state_specs}
    inputs = [i.name for i in runner.session.get_inputs()]
    assert inputs == ["obs", *(s["input"] for s in runner.state_specs)]  # every state, read or not
    mutex_state = ["last_output", "prev_selection", "commands", "rng_state", "action_history", "history_count"]
    assert list(specs)[:6] == mutex_state
    assert specs["prev_selection"]["dtype"] == "int64"
    assert [n for n, s in specs.items() if s["reset"] == "full"] == ["rng_state"]
    if kind == "mutex":
        assert list(specs)[6:] == ["h", "c"]  # one memory: plain names
        return
    # two sub-policy memories: prefixed by their path in the exported module (both would be "h")
    assert list(specs)[6:] == ["slots.0.policy.stages.1.h", "slots.0.policy.stages.1.c", "slots.1.policy.stages.1.h"]
    if kind.startswith("climb"):
        assert specs["action_history"]["shape"] == [2, A]
        assert "slots.2.policy" not in " ".join(specs)  # the MLP jump sub-policy has no state

    # the sequence switched between sub-policies (so every state path ran)
    eager = copy.deepcopy(mutex)
    eager.reset()
    seen = set()
    generator = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        for _ in range(8):
            eager.act_inference(torch.randn(6, NUM_OBS, generator=generator) * 3.0)
            seen |= set(eager.last_selection.tolist())
    assert len(seen) >= 2


class _HiddenCounter(nn.Module):
    """A stage with state in a buffer the ONNX exporter does not know."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count = self.count + 1
        return x + self.count

    def reset(self, dones: torch.Tensor | None = None) -> None:
        pass


class _UnknownStatePolicy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def export_module(self) -> nn.Module:
        return ExportedPolicy([_HiddenCounter(), Stage(copy.deepcopy(self.linear))])


def test_unknown_stateful_stage_is_refused(tmp_path):
    path = tmp_path / "policy.onnx"
    with pytest.raises(TypeError, match=r"keeps state in buffers \['exported.stages.0.count'\]"):
        export_policy_as_onnx(_UnknownStatePolicy(), str(path), 3)
    assert not path.exists()


def test_nothing_written_when_the_check_fails(tmp_path):
    policy, num_obs = _flat_policy("gru")
    path = tmp_path / "policy.onnx"
    path.write_bytes(b"previous export")
    with pytest.raises(RuntimeError, match="disagrees with act_inference"):
        export_policy_as_onnx(policy, str(path), num_obs, atol=-1.0)
    assert path.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]
    with pytest.raises(ValueError, match="reserved"):
        export_policy_as_onnx(policy, str(path), num_obs, metadata={IO_KEY: 1})
    with pytest.raises(TypeError, match="has no export_module"):
        export_policy_as_onnx(nn.Linear(3, 2), str(path), 3)


def test_missing_onnxruntime_is_one_clear_line(tmp_path, monkeypatch):
    policy, num_obs = _flat_policy(None)
    path = tmp_path / "policy.onnx"
    export_policy_as_onnx(policy, str(path), num_obs)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install onnxruntime"):
        OnnxPolicy(str(path))


def test_deploy_runner_needs_neither_torch_nor_st_rl(tmp_path):
    policy, num_obs = _flat_policy("lstm")
    export_policy_as_onnx(policy, str(tmp_path / "policy.onnx"), num_obs, metadata=METADATA)
    generator = torch.Generator().manual_seed(5)
    xs = torch.randn(4, 2, num_obs, generator=generator) * 3
    eager = copy.deepcopy(policy).eval()
    expected = []
    with torch.inference_mode():
        for t, x in enumerate(xs):
            expected.append(eager.act_inference(x).numpy())
            if t == 1:
                eager.reset(torch.tensor([True, False]))
    np.savez(tmp_path / "io.npz", xs=xs.numpy(), expected=np.stack(expected))
    module_path = sys.modules[OnnxPolicy.__module__].__file__
    script = (
        "import sys, json, importlib.util\n"
        "sys.modules['torch'] = None; sys.modules['st_rl'] = None\n"  # any attempt to import them fails
        "import numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('onnx_policy', {module_path!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "p = mod.OnnxPolicy('policy.onnx')\n"
        "d = np.load('io.npz')\n"
        "worst = 0.0\n"
        "for t, x in enumerate(d['xs']):\n"
        "    worst = max(worst, float(np.abs(p(x) - d['expected'][t]).max()))\n"
        "    if t == 1: p.reset(np.array([True, False]))\n"
        "print(json.dumps({'diff': worst, 'metadata': p.metadata}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["diff"] <= 1e-5
    assert result["metadata"] == METADATA
