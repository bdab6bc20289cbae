"""benchmark.py --vs_rsl_rl's learner timing (legged_rl.learner_benchmark): both learners on the same batch."""

import pytest
import torch

from legged_rl.learner_benchmark import compare_with_rsl_rl, synthetic_rollout

pytest.importorskip("rsl_rl")


def test_synthetic_rollout_times_out_about_one_env_in_episode_steps():
    data = synthetic_rollout(4000, 3, 5, steps=50, episode_steps=100)
    time_outs = torch.stack([s["time_outs"] for s in data]).float().mean()
    assert 0.008 < time_outs < 0.012  # 1 / 100 per step
    assert all((s["dones"] >= s["time_outs"]).all() for s in data)  # a time-out is a done
    assert data[0]["obs"].shape == (4000, 3) and data[0]["critic_obs"].shape == (4000, 5)


def test_both_learners_run_the_same_batch_and_report_speedups():
    result = compare_with_rsl_rl(64, 6, 9, 2, steps=4, hidden=(8,), epochs=1, mini_batches=2, repeats=1)
    for name in ("st_rl", "rsl_rl"):
        assert result[name]["act_store_s"] > 0 and result[name]["update_s"] > 0
    assert result["act_store_speedup"] == pytest.approx(
        result["rsl_rl"]["act_store_s"] / result["st_rl"]["act_store_s"], rel=0.01
    )
    assert (result["num_envs"], result["num_obs"], result["num_critic_obs"]) == (64, 6, 9)
