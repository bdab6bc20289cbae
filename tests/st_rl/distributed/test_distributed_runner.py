"""Two gloo ranks through OnPolicyRunner: identical parameters after every update, rank 0 alone writes,
and checkpoints move between 2-process and 1-process runs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from st_rl.runners import OnPolicyRunner
from tests.st_rl.distributed.spawn import run_ranks
from tests.st_rl.dummy_env import PointMassEnv

pytestmark = pytest.mark.timeout(120)

TOTAL_ENVS = 16


def small_cfg(**runner) -> dict:
    return {
        "policy": {"actor_hidden_dims": [16], "critic_hidden_dims": [16], "obs_normalization": True},
        "algorithm": {"num_mini_batches": 2, "num_learning_epochs": 2},
        "runner": {"num_steps_per_env": 8, "seed": 3, "print_progress": False, "save_interval": 100, **runner},
    }


def flat_params(runner: OnPolicyRunner) -> np.ndarray:
    return torch.cat([t.detach().reshape(-1).float() for t in runner.alg.policy.state_dict().values()]).numpy()


def train_recording_every_update(ctx, log_root: str) -> dict:
    env = PointMassEnv(num_envs=TOTAL_ENVS // ctx.world_size, seed=ctx.rank)
    runner = OnPolicyRunner(env, small_cfg(), os.path.join(log_root, f"rank{ctx.rank}"), dist=ctx)
    after_update, update = [], runner.alg.update

    def recording_update():
        info = update()
        after_update.append(flat_params(runner))
        return info

    runner.alg.update = recording_update
    runner.learn(3)
    return {"after_update": after_update, "learning_rate": runner.alg.learning_rate}


def test_parameters_identical_on_both_ranks_after_every_update_and_only_rank_0_writes(tmp_path):
    rank0, rank1 = run_ranks(train_recording_every_update, str(tmp_path))
    assert len(rank0["after_update"]) == len(rank1["after_update"]) == 3
    for it, (a, b) in enumerate(zip(rank0["after_update"], rank1["after_update"])):
        np.testing.assert_array_equal(a, b, err_msg=f"iteration {it + 1}")
    assert not np.array_equal(rank0["after_update"][0], rank0["after_update"][2])  # it did learn
    assert rank0["learning_rate"] == rank1["learning_rate"]
    assert not (tmp_path / "rank1").exists()
    files = sorted(p.name for p in (tmp_path / "rank0").iterdir())
    assert len(files) == 3 and files[0] == "config.json" and files[2] == "model_3.pt", files
    assert files[1].startswith("events.out.tfevents"), files
    cfg = json.loads((tmp_path / "rank0" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["num_envs_per_rank"] == 8 and cfg["env"]["num_envs"] == TOTAL_ENVS


def train_two_iterations(ctx, log_dir: str) -> None:
    env = PointMassEnv(num_envs=TOTAL_ENVS // ctx.world_size, seed=ctx.rank)
    OnPolicyRunner(env, small_cfg(), log_dir, dist=ctx).learn(2)


def resume_and_train(ctx, checkpoint: str, log_dir: str) -> dict:
    env = PointMassEnv(num_envs=TOTAL_ENVS // ctx.world_size, seed=ctx.rank)
    runner = OnPolicyRunner(env, small_cfg(), log_dir, dist=ctx)
    runner.load(checkpoint)
    loaded = flat_params(runner)
    runner.learn(1)
    return {"loaded": loaded, "iteration": runner.current_learning_iteration, "final": flat_params(runner)}


def test_checkpoint_moves_between_two_processes_and_one(tmp_path):
    # 2 processes -> model_2.pt
    first = tmp_path / "first"
    run_ranks(train_two_iterations, str(first))
    # 1 process resumes it -> model_3.pt
    single = OnPolicyRunner(PointMassEnv(num_envs=TOTAL_ENVS), small_cfg(), str(tmp_path / "second"))
    single.load(str(first / "model_2.pt"))
    assert single.current_learning_iteration == 2
    # the ranks' running-episode counters were gathered into the checkpoint, rank order, and re-split for one process
    resume = torch.load(first / "model_2.pt", weights_only=True)["resume"]
    assert resume["world_size"] == 2
    per_rank = [r["per_env"]["runner/cur_episode_length"] for r in resume["ranks"]]
    assert [len(x) for x in per_rank] == [TOTAL_ENVS // 2] * 2 and per_rank[0].max() > 0
    torch.testing.assert_close(single._cur_episode_length, torch.cat(per_rank))
    np.testing.assert_array_equal(flat_params(single), _checkpoint_params(first / "model_2.pt"))
    single.learn(1)
    assert (tmp_path / "second" / "model_3.pt").exists()
    # 2 processes resume that -> model_4.pt
    ranks = run_ranks(resume_and_train, str(tmp_path / "second" / "model_3.pt"), str(tmp_path / "third"))
    for result in ranks:
        np.testing.assert_array_equal(result["loaded"], _checkpoint_params(tmp_path / "second" / "model_3.pt"))
        assert result["iteration"] == 4
    np.testing.assert_array_equal(ranks[0]["final"], ranks[1]["final"])
    assert torch.load(tmp_path / "third" / "model_4.pt", weights_only=True)["iter"] == 4


def _checkpoint_params(path) -> np.ndarray:
    state = torch.load(path, weights_only=True)["model_state_dict"]
    return torch.cat([t.reshape(-1).float() for t in state.values()]).numpy()
