import copy
import math
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from st_rl.modules import ActorCritic, build_policy
from st_rl.utils.export import export_policy_as_jit


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_jit_export_matches_eager_and_loads_without_st_rl(tmp_path):
    torch.manual_seed(0)
    policy = ActorCritic(5, 5, 3, actor_hidden_dims=[16, 16], critic_hidden_dims=[8], obs_normalization=True)
    for _ in range(3):  # non-trivial normaliser statistics
        obs = torch.randn(32, 5) * torch.tensor([1.0, 5.0, 0.1, 3.0, 10.0]) + torch.tensor([2.0, -1.0, 0.0, 7.0, 3.0])
        policy.update_normalization(obs, obs)
    assert policy.actor_obs_normalizer.mean.abs().max() > 1.0
    path = tmp_path / "exported" / "policy.pt"
    export_policy_as_jit(policy, str(path), example_obs_dim=5)
    x = torch.randn(7, 5) * 4
    expected = policy.act_inference(x).detach()
    torch.testing.assert_close(torch.jit.load(str(path))(x), expected)
    assert sorted(p.name for p in path.parent.iterdir()) == ["policy.pt"]  # no temp files left

    torch.save({"x": x, "expected": expected}, tmp_path / "io.pt")
    script = (
        "import sys; sys.modules['st_rl'] = None\n"  # any attempt to import st_rl fails
        "import torch\n"
        "m = torch.jit.load('exported/policy.pt')\n"
        "d = torch.load('io.pt')\n"
        "assert 'st_rl' not in [p.split('/')[-1] for p in sys.path]\n"
        "print(float((m(d['x']) - d['expected']).abs().max()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) < 1e-5


# the climb depth student's observation (configs/climb_distill.yaml's actor at 24 x 32) and a small version of its
# policy: conv stack, GRU, deterministic action
STUDENT_SEGMENTS = OrderedDict(
    [
        ("base_ang_vel", (3,)),
        ("projected_gravity", (3,)),
        ("commands", (3,)),
        ("dof_pos", (12,)),
        ("dof_vel", (12,)),
        ("last_actions", (12,)),
        ("base_rpy", (3,)),
        ("forward_depth", (1, 24, 32)),
    ]
)
STUDENT_CRITIC = OrderedDict([("base_lin_vel", (3,)), ("engaging_block", (6,)), ("height_scan", (1, 16, 7))])
STUDENT = {
    "class_name": "VisualDeterministicRecurrent",
    "visual_component_name": "forward_depth",
    "visual_kwargs": {"channels": [4, 8, 8], "kernel_sizes": [5, 3, 3], "strides": [2, 2, 2], "hidden_sizes": [16]},
    "visual_latent_size": 8,
    "rnn_type": "gru",
    "rnn_hidden_size": 16,
    "actor_hidden_dims": [32, 16],
    "critic_hidden_dims": [16],
    "obs_normalization": True,
}


def _student_obs(generator: torch.Generator, batch: int) -> torch.Tensor:
    """Proprioception-like values and a depth image in [0, 2] m with no-data zeros."""
    proprio = torch.randn(batch, 48, generator=generator) * 2.0
    depth = torch.rand(batch, 24 * 32, generator=generator) * 2.0
    depth = torch.where(torch.rand(batch, 24 * 32, generator=generator) < 0.05, 0.0, depth)
    return torch.cat([proprio, depth], dim=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_depth_student_exports_equal_eager_over_a_sequence_with_resets(tmp_path):
    """The depth student's policy.pt (state in buffers, ``reset(dones)``) and policy.onnx (explicit state, through
    OnnxPolicy) equal eager act_inference over 24 steps of 4 envs: random envs reset after most steps (both sides
    ``reset(dones)``), all of them after steps 7 and 15 (``reset()``); the state carries over between steps."""
    onnxruntime = pytest.importorskip("onnxruntime")  # noqa: F841  (OnnxPolicy needs it)
    from st_rl.utils.onnx_export import export_policy_as_onnx
    from st_rl.utils.onnx_policy import OnnxPolicy

    torch.manual_seed(0)
    num_obs = sum(math.prod(s) for s in STUDENT_SEGMENTS.values())
    num_critic = sum(math.prod(s) for s in STUDENT_CRITIC.values())
    policy = build_policy(STUDENT, num_obs, num_critic, 12, STUDENT_SEGMENTS, STUDENT_CRITIC)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):  # normaliser statistics far from (0, 1)
        obs = _student_obs(generator, 32) * 3.0 + 1.0
        policy.update_normalization(obs, torch.randn(32, num_critic, generator=generator))
    export_policy_as_jit(policy, str(tmp_path / "policy.pt"), num_obs)
    export_policy_as_onnx(policy, str(tmp_path / "policy.onnx"), num_obs)
    scripted, onnx = torch.jit.load(str(tmp_path / "policy.pt")), OnnxPolicy(str(tmp_path / "policy.onnx"))
    eager = copy.deepcopy(policy).eval()
    for side in (eager, scripted, onnx):
        side.reset()
    worst = {"jit": 0.0, "onnx": 0.0}
    with torch.inference_mode():
        for step in range(24):
            obs = _student_obs(generator, 4)
            expected = eager.act_inference(obs)
            worst["jit"] = max(worst["jit"], float((scripted(obs) - expected).abs().max()))
            worst["onnx"] = max(worst["onnx"], float(np.abs(onnx(obs.numpy()) - expected.numpy()).max()))
            if step in (7, 15):
                for side in (eager, scripted, onnx):
                    side.reset()
                continue
            dones = torch.rand(4, generator=generator) < 0.3
            eager.reset(dones)
            scripted.reset(dones)
            onnx.reset(dones.numpy())
    assert worst["jit"] < 1e-5 and worst["onnx"] < 1e-5, worst
    with torch.inference_mode():
        assert float((scripted(obs) - scripted(obs)).abs().max()) > 1e-3  # the state matters
