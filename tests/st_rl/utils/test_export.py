import subprocess
import sys

import pytest
import torch

from st_rl.modules import ActorCritic
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
