"""Exact resume: k iterations, a checkpoint, m more from it in a new runner and env == k + m without a stop.

The checkpoint carries the torch RNG, the whole env state (physics inputs, per-env random keys, episode counters,
commands, curriculum levels), the policy's memory of the running episodes and the runner's episode statistics.
On CPU the two runs execute the same kernels on the same inputs, so their weights agree to float precision.
"""

import numpy as np
import pytest
import torch

from legged_rl.torch_vec_env import TorchVecEnv
from st_rl.runners import OnPolicyRunner

pytestmark = pytest.mark.timeout(600)

K, M = 2, 2


def train_cfg(recurrent: bool) -> dict:
    policy = {"actor_hidden_dims": [32], "critic_hidden_dims": [32], "obs_normalization": True}
    if recurrent:
        policy.update(class_name="ActorCriticRecurrent", rnn_type="gru", rnn_hidden_size=16)
    return {
        "policy": policy,
        "algorithm": {"num_mini_batches": 2, "num_learning_epochs": 2},
        "runner": {"num_steps_per_env": 8, "save_interval": K, "seed": 3, "print_progress": False},
    }


def uninterrupted_and_resumed(env, cfg: dict, tmp_path, restore: bool = True, steps_left: int | None = None):
    """``(runner of k + m iterations, runner resumed from its model_k.pt for m)``, each on its own TorchVecEnv;
    ``steps_left``: every episode of the first run starts that many steps before its time limit."""
    straight = OnPolicyRunner(TorchVecEnv(env), cfg, log_dir=str(tmp_path / "straight"))
    if steps_left is not None:
        buf = straight.env.episode_length_buf
        straight.env.episode_length_buf = torch.full_like(buf, straight.env.max_episode_length - steps_left)
        cfg["runner"]["init_at_random_ep_len"] = False
    straight.learn(K + M)
    resumed = OnPolicyRunner(TorchVecEnv(env), cfg, log_dir=str(tmp_path / "resumed"))
    resumed.load(str(tmp_path / "straight" / f"model_{K}.pt"), load_resume_state=restore)
    resumed.learn(M)
    return straight, resumed


def max_weight_diff(a: OnPolicyRunner, b: OnPolicyRunner) -> float:
    sa, sb = a.alg.policy.state_dict(), b.alg.policy.state_dict()
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


@pytest.mark.parametrize("recurrent", [False, True], ids=["mlp", "gru"])
def test_walk_resume_equals_an_uninterrupted_run(walk_env, tmp_path, recurrent):
    straight, resumed = uninterrupted_and_resumed(walk_env, train_cfg(recurrent), tmp_path)
    assert resumed.current_learning_iteration == K + M
    assert max_weight_diff(straight, resumed) < 1e-6
    torch.testing.assert_close(resumed.env.get_observations(), straight.env.get_observations(), rtol=0, atol=1e-6)
    assert list(resumed._reward_buffer) == pytest.approx(list(straight._reward_buffer))
    torch.testing.assert_close(resumed._cur_reward_sum, straight._cur_reward_sum)


def test_walk_resume_without_the_saved_state_differs(walk_env, tmp_path):
    # The same comparison with the resume state ignored (the old checkpoint): the runs part, so the test above
    # would notice a resume state that is saved but not restored.
    straight, resumed = uninterrupted_and_resumed(walk_env, train_cfg(False), tmp_path, restore=False)
    assert max_weight_diff(straight, resumed) > 1e-4


def test_climb_resume_keeps_the_curriculum_levels(hard_env, tmp_path):
    # Every first episode times out in the first iteration without reaching the goal: each level drops by one,
    # so the levels at the checkpoint differ from the fresh env's spread 0..7.
    straight, resumed = uninterrupted_and_resumed(hard_env, train_cfg(False), tmp_path, steps_left=3)
    levels = np.asarray(straight.env.state.info["level"])
    np.testing.assert_array_equal(np.asarray(resumed.env.state.info["level"]), levels)
    assert not np.array_equal(levels, np.arange(8))
    assert max_weight_diff(straight, resumed) < 1e-6
