import os

import pytest
import torch

from st_rl.modules import load_policy_from_run
from st_rl.runners import CheckpointError, OnPolicyRunner
from st_rl.utils.checkpoint import get_load_path
from tests.st_rl.dummy_env import PointMassEnv

CFG = {
    "policy": {"actor_hidden_dims": [8], "critic_hidden_dims": [8], "obs_normalization": True},
    "runner": {"num_steps_per_env": 4, "save_interval": 2, "print_progress": False},
}


def test_get_load_path_picks_latest_run_and_iteration(tmp_path):
    for run, iters in {"2024-01-01_10-00-00_a": [5], "2024-02-01_10-00-00_b": [2, 10, 9]}.items():
        os.makedirs(tmp_path / run)
        for i in iters:
            (tmp_path / run / f"model_{i}.pt").write_bytes(b"")
    assert get_load_path(str(tmp_path)) == str(tmp_path / "2024-02-01_10-00-00_b" / "model_10.pt")
    assert get_load_path(str(tmp_path), "2024-01-01_10-00-00_a") == str(
        tmp_path / "2024-01-01_10-00-00_a" / "model_5.pt"
    )
    assert get_load_path(str(tmp_path), -1, 9).endswith("model_9.pt")
    with pytest.raises(CheckpointError, match="no run directories"):
        get_load_path(str(tmp_path / "missing"))


def test_policy_rebuilt_from_run_dir_alone(tmp_path):
    run_dir = tmp_path / "2024-01-01_00-00-00_x"
    runner = OnPolicyRunner(PointMassEnv(num_envs=4, privileged=True), CFG, log_dir=str(run_dir))
    runner.learn(3)  # saves model_2.pt and model_3.pt
    policy = load_policy_from_run(str(run_dir))
    obs = torch.randn(5, 4)
    torch.testing.assert_close(policy.act_inference(obs), runner.get_inference_policy()(obs))
    assert policy.actor_obs_normalizer.count.item() == 3 * 4 * 4
    assert policy.num_critic_obs == 5
