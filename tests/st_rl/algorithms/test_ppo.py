import math

import pytest
import torch
from torch import nn

from st_rl.algorithms.ppo import PPO, surrogate_loss, value_function_loss
from st_rl.modules import ActorCritic


def test_surrogate_loss_clips_by_hand():
    # ratio = [1.5, 0.5, 1.1], A = [1, -1, 2], eps = 0.2
    # sample 0: max(-1*1.5, -1*1.2) = -1.2 ; sample 1: max(1*0.5, 1*0.8) = 0.8 ; sample 2: max(-2.2, -2.2) = -2.2
    # pg_loss = (-1.2 + 0.8 - 2.2) / 3 = -0.8667 ; clipfrac = 2/3 (samples 0 and 1 have |ratio-1| > 0.2)
    log_prob = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    loss, metrics = surrogate_loss(log_prob, torch.zeros(3), torch.tensor([1.0, -1.0, 2.0]), clip_param=0.2)
    assert loss.item() == pytest.approx(-2.6 / 3, abs=1e-6)
    assert metrics["clipfrac"].item() == pytest.approx(2 / 3)
    assert metrics["ratio"].item() == pytest.approx((1.5 + 0.5 + 1.1) / 3)
    # approx_kl = mean((ratio - 1) - log ratio)
    expected_kl = sum((r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)) / 3
    assert metrics["approx_kl"].item() == pytest.approx(expected_kl, abs=1e-6)


def test_value_loss_clipped_by_hand():
    # V = [1.0, 2.0], V_old = [0.5, 2.0], R = [2.0, 1.0], eps = 0.2
    # sample 0: (1-2)^2 = 1 ; clipped V = 0.5 + 0.2 = 0.7 -> (0.7-2)^2 = 1.69 ; max = 1.69
    # sample 1: (2-1)^2 = 1 ; clipped V = 2.0 -> 1 ; max = 1
    # clipped loss = (1.69 + 1) / 2 = 1.345 ; unclipped = (1 + 1) / 2 = 1.0
    values, old, returns = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [2.0]]), torch.tensor([[2.0], [1.0]])
    clipped, _ = value_function_loss(values, old, returns, clip_param=0.2, use_clipped=True)
    unclipped, _ = value_function_loss(values, old, returns, clip_param=0.2, use_clipped=False)
    assert clipped.item() == pytest.approx(1.345, abs=1e-6)
    assert unclipped.item() == pytest.approx(1.0, abs=1e-6)


def _identity_critic_policy() -> ActorCritic:
    """Policy whose value is the (single) critic observation itself: V(c) = c."""
    policy = ActorCritic(2, 1, 1, actor_hidden_dims=[4], critic_hidden_dims=[4])
    policy.critic = nn.Linear(1, 1)
    with torch.no_grad():
        policy.critic.weight.fill_(1.0)
        policy.critic.bias.zero_()
    return policy


def test_time_outs_bootstrap_with_final_critic_obs():
    ppo = PPO(_identity_critic_policy(), gamma=0.9)
    ppo.init_storage(3, 1, (2,), (1,), (1,))
    # The observations after the step are reset observations (critic obs 0 -> V = 0); the final
    # states have V = 10 and 20. env 0 timed out, env 1 terminated, env 2 goes on (its final obs is junk).
    ppo.act(torch.zeros(3, 2), torch.zeros(3, 1))
    infos = {
        "time_outs": torch.tensor([True, False, False]),
        "final_critic_obs": torch.tensor([[10.0], [20.0], [float("nan")]]),
        "episode": {},
    }
    ppo.process_env_step(torch.ones(3), torch.tensor([True, True, False]), infos)
    # r = 1 + 0.9 * V(s_T) for the time-out only: [1 + 9, 1, 1]
    torch.testing.assert_close(ppo.storage.rewards[0].flatten(), torch.tensor([10.0, 1.0, 1.0]))


def test_time_out_bootstrap_evaluates_only_the_time_out_rows_on_cpu():
    """The final-state critic pass costs one row per time-out, not a second pass over every env (on the CPU, where
    asking which envs timed out is free), with the same rewards as the full pass."""
    ppo = PPO(_identity_critic_policy(), gamma=0.5)
    ppo.init_storage(5, 2, (2,), (1,), (1,))
    batch_sizes = []
    evaluate = ppo.policy.evaluate

    def recording_evaluate(critic_obs, *args, **kwargs):
        batch_sizes.append(critic_obs.shape[0])
        return evaluate(critic_obs, *args, **kwargs)

    ppo.policy.evaluate = recording_evaluate
    final = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    for time_outs in (torch.tensor([False, True, False, True, False]), torch.zeros(5, dtype=torch.bool)):
        ppo.act(torch.zeros(5, 2), torch.zeros(5, 1))
        ppo.process_env_step(torch.ones(5), time_outs, {"time_outs": time_outs, "final_critic_obs": final})
    assert batch_sizes == [5, 2, 5]  # act's critic pass, the two time-out rows, act's pass; none without time-outs
    torch.testing.assert_close(ppo.storage.rewards[0].flatten(), torch.tensor([1.0, 2.0, 1.0, 3.0, 1.0]))
    torch.testing.assert_close(ppo.storage.rewards[1].flatten(), torch.ones(5))


def _collect_random_rollout(ppo: PPO, num_steps: int, num_envs: int = 4) -> None:
    """Fill ``ppo``'s storage with ``num_steps`` steps of random 3-dim observations and rewards, no dones."""
    ppo.init_storage(num_envs, num_steps, (3,), None, (2,))
    for _ in range(num_steps):
        obs = torch.randn(num_envs, 3)
        ppo.act(obs, obs)
        no_dones = torch.zeros(num_envs, dtype=torch.bool)
        ppo.process_env_step(torch.randn(num_envs), no_dones, {"time_outs": no_dones})
    ppo.compute_returns(torch.randn(num_envs, 3))


def test_update_returns_named_metrics_and_adapts_learning_rate():
    """One mini-batch step on a fixed rollout: every reported metric equals the formula worked out here."""
    torch.manual_seed(0)
    policy = ActorCritic(3, 3, 2, actor_hidden_dims=[8], critic_hidden_dims=[8], obs_normalization=True)
    ppo = PPO(policy, num_learning_epochs=1, num_mini_batches=1, learning_rate=1e-3, desired_kl=1e-9, clip_param=0.2)
    _collect_random_rollout(ppo, num_steps=5)
    count_before = policy.actor_obs_normalizer.count.item()
    with torch.no_grad():
        policy.std.copy_(torch.tensor([0.8, 1.25]))  # rollout std 1: the ratio moves, part of it past the clip
        policy.critic[-1].weight.mul_(3.0)  # and the values, part of them past the value clip
    s = ppo.storage
    obs, actions = s.observations.flatten(0, 1), s.actions.flatten(0, 1)
    old_log_prob, old_values, returns = s.actions_log_prob.flatten(), s.values.flatten(), s.returns.flatten()
    old_mu, old_sigma, raw_advantages = s.mu.flatten(0, 1), s.sigma.flatten(0, 1), s.advantages.flatten()
    with torch.no_grad():  # the networks' outputs (the rollout's normalisation; std and critic changed since)
        policy.update_distribution(obs)
        mu, values = policy.action_mean.clone(), policy.evaluate(obs).flatten()
        sigma = policy.std.clone()
    log_prob = -((actions - mu) ** 2) / (2 * sigma**2) - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    ratio = torch.exp(log_prob.sum(-1) - old_log_prob)
    advantages = (raw_advantages - raw_advantages.mean()) / (raw_advantages.std() + 1e-8)
    surrogate = torch.max(-advantages * ratio, -advantages * ratio.clamp(0.8, 1.2)).mean()
    values_clipped = old_values + (values - old_values).clamp(-0.2, 0.2)
    value_loss = torch.max((values - returns) ** 2, (values_clipped - returns) ** 2).mean()
    assert abs(value_loss - ((values - returns) ** 2).mean()) > 1e-3  # the clip matters on this batch
    entropy = sum(0.5 * math.log(2 * math.pi * math.e * sd**2) for sd in (0.8, 1.25))
    kl = (torch.log(sigma / old_sigma) + (old_sigma**2 + (old_mu - mu) ** 2) / (2 * sigma**2) - 0.5).sum(-1).mean()
    clipfrac = ((ratio - 1).abs() > 0.2).float().mean().item()
    assert 0 < clipfrac < 1
    explained_var = 1 - (returns - old_values).var() / returns.var()

    info = ppo.update()
    assert info["surrogate"] == pytest.approx(surrogate.item(), abs=1e-6)
    assert info["value_function"] == pytest.approx(value_loss.item(), abs=1e-6)
    assert info["entropy"] == pytest.approx(entropy, abs=1e-6)
    assert info["ratio"] == pytest.approx(ratio.mean().item(), abs=1e-6)
    assert info["clipfrac"] == pytest.approx(clipfrac, abs=1e-6)
    assert info["approx_kl"] == pytest.approx(((ratio - 1) - torch.log(ratio)).mean().item(), abs=1e-6)
    assert info["kl"] == pytest.approx(kl.item(), abs=1e-6)
    assert info["explained_variance"] == pytest.approx(explained_var.item(), abs=1e-6)
    # desired_kl is tiny, so the step's KL exceeds 2 * desired: lr divided by 1.5 once
    assert info["learning_rate"] == pytest.approx(1e-3 / 1.5)
    # the update ran on the rollout's own statistics (none yet); after it, the 20 collected samples are merged in
    assert count_before == 0
    assert policy.actor_obs_normalizer.count.item() == 20
    torch.testing.assert_close(policy.actor_obs_normalizer.mean, obs.mean(0))
    torch.testing.assert_close(policy.actor_obs_normalizer.std, obs.std(0, unbiased=False))
    assert ppo.storage.step == 0


@pytest.mark.parametrize("desired_kl, factor", [(1e-9, 1 / 1.5), (1e3, 1.5)])
def test_adaptive_learning_rate_changes_once_per_mini_batch(desired_kl, factor):
    torch.manual_seed(0)
    policy = ActorCritic(3, 3, 2, actor_hidden_dims=[8], critic_hidden_dims=[8], obs_normalization=True)
    ppo = PPO(policy, num_learning_epochs=2, num_mini_batches=2, learning_rate=1e-3, desired_kl=desired_kl)
    _collect_random_rollout(ppo, num_steps=5)
    # KL above 2 * desired: divide by 1.5; in (0, desired / 2): multiply by 1.5; one change per mini-batch after
    # the first (4 - 1): the first mini-batch's policy is the rollout's own (KL exactly 0, no change)
    assert ppo.update()["learning_rate"] == pytest.approx(1e-3 * factor**3)


def test_clip_min_std_applied_after_each_step():
    policy = ActorCritic(3, 3, 2, actor_hidden_dims=[8], critic_hidden_dims=[8], init_noise_std=0.01)
    ppo = PPO(policy, num_learning_epochs=1, num_mini_batches=1, clip_min_std=0.5)
    _collect_random_rollout(ppo, num_steps=2)
    ppo.update()
    assert torch.all(policy.std >= 0.5)
