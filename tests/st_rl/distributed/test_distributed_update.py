"""Two gloo ranks: the distributed PPO update is the single-process update on the union of their batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_rl.algorithms.ppo import PPO
from st_rl.modules import ActorCritic
from tests.st_rl.distributed.spawn import run_ranks

pytestmark = pytest.mark.timeout(120)

T, N, NUM_OBS, NUM_CRITIC_OBS, NUM_ACTIONS = 6, 8, 3, 4, 2


def rollout_data() -> dict[str, torch.Tensor]:
    """Fixed rollout of ``N`` envs: observations, actions, rewards, dones (some of them time-outs)."""
    gen = torch.Generator().manual_seed(0)
    dones = torch.rand(T, N, generator=gen) < 0.2
    return {
        "obs": 3.0 * torch.randn(T + 1, N, NUM_OBS, generator=gen) + 1.0,
        "critic_obs": torch.randn(T + 1, N, NUM_CRITIC_OBS, generator=gen) - 2.0,
        "final_critic_obs": torch.randn(T, N, NUM_CRITIC_OBS, generator=gen),
        "actions": torch.randn(T, N, NUM_ACTIONS, generator=gen),
        "rewards": torch.randn(T, N, generator=gen),
        "dones": dones,
        "time_outs": dones & (torch.rand(T, N, generator=gen) < 0.5),
    }


def make_ppo(seed: int, dist=None) -> PPO:
    torch.manual_seed(seed)
    policy = ActorCritic(NUM_OBS, NUM_CRITIC_OBS, NUM_ACTIONS, [16], [16], obs_normalization=True)
    # Two epochs of one full mini-batch: the permutation cannot matter, the second step sees a non-zero KL.
    return PPO(policy, num_learning_epochs=2, num_mini_batches=1, learning_rate=1e-3, desired_kl=1e-3, dist=dist)


def collect_and_update(ppo: PPO, envs: slice) -> dict[str, float]:
    """Feed envs ``envs`` of the fixed rollout through act/process_env_step (actions replaced by the fixed ones)."""
    data = rollout_data()
    ppo.init_storage(envs.stop - envs.start, T, (NUM_OBS,), (NUM_CRITIC_OBS,), (NUM_ACTIONS,))
    with torch.inference_mode():  # as the runner collects
        for t in range(T):
            ppo.act(data["obs"][t, envs], data["critic_obs"][t, envs])  # merges normaliser statistics
            actions = data["actions"][t, envs]
            ppo.transition.actions = actions
            ppo.transition.actions_log_prob = ppo.policy.get_actions_log_prob(actions)
            infos = {"time_outs": data["time_outs"][t, envs], "final_critic_obs": data["final_critic_obs"][t, envs]}
            ppo.process_env_step(data["rewards"][t, envs], data["dones"][t, envs], infos)
        ppo.compute_returns(data["critic_obs"][T, envs])
    return ppo.update()


def snapshot(ppo: PPO, info: dict[str, float]) -> dict:
    state = {name: t.detach().numpy().copy() for name, t in ppo.policy.state_dict().items()}
    return {"state": state, "learning_rate": ppo.learning_rate, "kl": info["kl"]}


def distributed_update(ctx) -> dict:
    ppo = make_ppo(seed=100 + ctx.rank, dist=ctx)  # different initial weights: rank 0's are broadcast
    ctx.broadcast_module(ppo.policy)
    half = N // ctx.world_size
    info = collect_and_update(ppo, slice(ctx.rank * half, (ctx.rank + 1) * half))
    return snapshot(ppo, info)


def test_update_on_two_half_batches_equals_single_process_update_on_the_whole_batch():
    ranks = run_ranks(distributed_update)
    single_ppo = make_ppo(seed=100)
    initial = {name: t.clone() for name, t in single_ppo.policy.state_dict().items()}
    single = snapshot(single_ppo, collect_and_update(single_ppo, slice(0, N)))
    assert single["learning_rate"] != 1e-3  # the adaptive schedule acted on the KL
    assert not torch.equal(initial["actor.0.weight"], torch.from_numpy(single["state"]["actor.0.weight"]))
    for rank, result in enumerate(ranks):
        assert result["learning_rate"] == single["learning_rate"], rank
        assert result["kl"] == pytest.approx(single["kl"], rel=1e-4), rank  # KL of the whole batch, not the half
        for name, value in single["state"].items():  # weights, normaliser mean/var/count
            np.testing.assert_allclose(
                result["state"][name], value, rtol=1e-4, atol=1e-6, err_msg=f"rank {rank} {name}"
            )
    for name in ranks[0]["state"]:  # the ranks agree exactly
        np.testing.assert_array_equal(ranks[0]["state"][name], ranks[1]["state"][name], err_msg=name)
