"""Tests that fail when a core PPO behaviour breaks (issue 11, "Tests that must exist").

Each expectation is worked out by hand in the test (an independent replay of the recurrent memory, the
advantage normalisation written out, the Adam first step), never read back from the code under test:

- a recurrent policy's hidden state is reset for the envs that are done (``PPO.process_env_step``);
- the surrogate sees advantages normalised over the rollout (both mini-batch generators);
- the entropy term is a *bonus* (it raises the policy std);
- a recurrent critic bootstraps a time-out with ``V(s_T)`` peeked from the state *after* ``act`` consumed
  ``s_{T-1}`` (not the pre-step state, and without advancing the memory).
"""

import copy
import math

import pytest
import torch
from torch.distributions import Normal

from st_rl.algorithms.ppo import PPO
from st_rl.modules import ActorCritic, ActorCriticRecurrent
from tests.st_rl.dummy_env import PointMassEnv
from tests.st_rl.rollouts import collect_rollout


def _recurrent(rnn_type: str, num_obs: int = 3, num_critic_obs: int = 3, layers: int = 1) -> ActorCriticRecurrent:
    return ActorCriticRecurrent(
        num_obs,
        num_critic_obs,
        2,
        actor_hidden_dims=[8],
        critic_hidden_dims=[8],
        rnn_type=rnn_type,
        rnn_hidden_size=4,
        rnn_num_layers=layers,
    )


def _no_time_outs(num_envs: int) -> dict:
    return {"time_outs": torch.zeros(num_envs, dtype=torch.bool), "episode": {}}


# --- 1. recurrent state reset for done envs ------------------------------------------------------------------------
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_process_env_step_resets_the_recurrent_state_of_done_envs(rnn_type):
    torch.manual_seed(0)
    policy = _recurrent(rnn_type)
    fresh = copy.deepcopy(policy)  # same weights, memories never stepped
    ppo = PPO(policy)
    num_envs = 4
    ppo.init_storage(num_envs, 3, (3,), None, (2,))
    done = torch.tensor([False, True, False, True])
    with torch.inference_mode():
        obs = torch.randn(num_envs, 3)
        ppo.act(obs, obs)
        ppo.process_env_step(torch.zeros(num_envs), torch.zeros(num_envs, dtype=torch.bool), _no_time_outs(num_envs))
        obs = torch.randn(num_envs, 3)
        ppo.act(obs, obs)
        after_act = {name: state.clone() for name, state in policy.get_hidden_states().items()}
        assert set(after_act) == {"actor", "critic"} and all(s.abs().min() > 0 for s in after_act.values())
        ppo.process_env_step(torch.zeros(num_envs), done, _no_time_outs(num_envs))
        states = policy.get_hidden_states()
        for name in ("actor", "critic"):
            assert (states[name][:, done] == 0).all(), name  # done envs: exactly zero
            torch.testing.assert_close(states[name][:, ~done], after_act[name][:, ~done], atol=0, rtol=0)
        # The next step of a done env is the first step of a new episode: it acts like a fresh policy.
        obs = torch.randn(num_envs, 3)
        ppo.act(obs, obs)
        fresh.update_distribution(obs)
        fresh_values = fresh.evaluate(obs)
    torch.testing.assert_close(ppo.transition.action_mean[done], fresh.action_mean[done], atol=1e-6, rtol=0)
    torch.testing.assert_close(ppo.transition.values[done], fresh_values[done], atol=1e-6, rtol=0)
    # ... and the envs that go on do not (their memory is not empty), so the check above is not vacuous.
    assert (ppo.transition.action_mean[~done] - fresh.action_mean[~done]).abs().max() > 1e-3
    # The update replays each trajectory from the stored pre-step state: zeros for the new episodes.
    for name in ("actor", "critic"):
        stored = ppo.transition.hidden_states[name]
        assert (stored[:, done] == 0).all() and (stored[:, ~done] != 0).all(), name


# --- 2. advantages normalised before the surrogate ---------------------------------------------------------------
def _hand_surrogate(storage, std: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """Clipped surrogate over the whole rollout when the policy's mean is the rollout's and its std is ``std``."""
    mu = storage.mu.flatten(0, 1)
    actions = storage.actions.flatten(0, 1)
    log_prob = Normal(mu, std.expand_as(mu)).log_prob(actions).sum(-1)
    ratio = torch.exp(log_prob - storage.actions_log_prob.flatten())
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
    return torch.max(-advantages * ratio, -advantages * clipped).mean()


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
def test_surrogate_uses_advantages_normalised_over_the_rollout(recurrent):
    torch.manual_seed(0)
    env = PointMassEnv(num_envs=4, max_episode_length=5, privileged=True)
    if recurrent:
        policy = _recurrent("gru", num_obs=4, num_critic_obs=5)
    else:
        policy = ActorCritic(4, 5, 2, actor_hidden_dims=[8], critic_hidden_dims=[8])
    ppo = PPO(policy, num_learning_epochs=1, num_mini_batches=1, clip_param=0.2)
    ppo.init_storage(4, 6, (4,), (5,), (2,))
    collect_rollout(ppo, env, 6)
    with torch.no_grad():
        policy.std.copy_(torch.tensor([0.7, 1.4]))  # the mean is the rollout's, the ratio is not 1 and varies
    raw = ppo.storage.advantages.flatten()
    normalised = (raw - raw.mean()) / (raw.std() + 1e-8)  # over all T * N samples, unbiased std
    expected = _hand_surrogate(ppo.storage, policy.std.detach(), normalised, 0.2)
    unnormalised = _hand_surrogate(ppo.storage, policy.std.detach(), raw, 0.2)
    assert abs(expected - unnormalised) > 1e-2  # the rollout tells the two apart
    batch = next(iter(ppo._mini_batches()))
    with torch.no_grad():
        losses, _ = ppo.compute_losses(batch)
    assert losses["surrogate"].item() == pytest.approx(expected.item(), abs=1e-5)


# --- 3. entropy bonus sign -----------------------------------------------------------------------------------------
def test_entropy_bonus_raises_the_policy_std_when_advantages_are_zero():
    """With zero advantages the surrogate has no gradient and the value loss does not touch the std, so the one
    step moves the std by the entropy bonus alone: Adam's first step is ``lr * sign(-d loss / d std)`` = +lr."""
    torch.manual_seed(0)
    policy = ActorCritic(3, 3, 2, actor_hidden_dims=[8], critic_hidden_dims=[8], init_noise_std=0.5)
    lr = 1e-3
    ppo = PPO(policy, num_learning_epochs=1, num_mini_batches=1, entropy_coef=1.0, learning_rate=lr, schedule="fixed")
    ppo.init_storage(4, 3, (3,), None, (2,))
    with torch.inference_mode():
        for _ in range(3):
            obs = torch.randn(4, 3)
            ppo.act(obs, obs)
            ppo.process_env_step(torch.randn(4), torch.zeros(4, dtype=torch.bool), _no_time_outs(4))
        ppo.compute_returns(torch.randn(4, 3))
    ppo.storage.advantages.zero_()
    std_before = policy.std.detach().clone()
    info = ppo.update()
    # entropy of N(mu, 0.5^2) per action: 0.5 * log(2 pi e sigma^2), summed over the 2 actions
    assert info["entropy"] == pytest.approx(2 * 0.5 * math.log(2 * math.pi * math.e * 0.25), abs=1e-6)
    torch.testing.assert_close(policy.std.detach(), std_before + lr, atol=1e-6, rtol=0)


# --- 4. recurrent time-out bootstrap from the post-act critic state ---------------------------------------------------
def _replay_critic(policy: ActorCriticRecurrent, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the critic memory's RNN from zeros over one env's ``inputs`` ``(L, C)`` in a single call; return the
    critic value after the last input ``()`` and the packed state ``(S, 1, H)`` it leaves."""
    out, state = policy.memory_c.rnn(inputs.unsqueeze(1))
    packed = torch.cat(state, dim=0) if isinstance(state, tuple) else state
    return policy.critic(out[-1, 0]).squeeze(-1), packed


def _episode_start(dones: torch.Tensor, t: int) -> int:
    """First step of the episode running at step ``t`` of one env whose ``dones`` are ``(T,)``."""
    ended = dones[:t].nonzero()
    return int(ended[-1]) + 1 if len(ended) else 0


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_recurrent_time_out_bootstrap_peeks_from_the_post_act_critic_state(rnn_type):
    """``r_t + gamma * V(s_T)`` where the critic memory has consumed the episode's ``c_0 .. c_t`` then ``s_T``.

    env 0 times out at the last step; env 1 times out at step 1 and starts again; env 2 terminates at step 1 (no
    bootstrap) and starts again; env 3 never ends. Expected values replay the RNN over each episode's inputs in
    one call, independent of the rollout's state handling. Peeking from the pre-step state (the one recorded in
    the transition) drops ``c_t``; evaluating in rollout mode advances the memory by ``s_T``: both fail here.
    """
    torch.manual_seed(0)
    gamma = 0.9
    policy = _recurrent(rnn_type, num_obs=3, num_critic_obs=2, layers=2)
    ppo = PPO(policy, gamma=gamma)
    num_envs, steps = 4, 4
    ppo.init_storage(num_envs, steps, (3,), (2,), (2,))
    critic_obs = torch.randn(steps, num_envs, 2)
    final_obs = torch.randn(steps, num_envs, 2)  # finite junk where there is no time-out
    rewards = torch.rand(steps, num_envs)
    time_outs = torch.zeros(steps, num_envs, dtype=torch.bool)
    time_outs[3, 0] = time_outs[1, 1] = True
    dones = time_outs.clone()
    dones[1, 2] = True
    with torch.inference_mode():
        for t in range(steps):
            ppo.act(torch.randn(num_envs, 3), critic_obs[t])
            infos = {"time_outs": time_outs[t], "final_critic_obs": final_obs[t], "episode": {}}
            ppo.process_env_step(rewards[t], dones[t], infos)
        expected = rewards.clone()
        for t, i in time_outs.nonzero().tolist():
            start = _episode_start(dones[:, i], t)
            value, _ = _replay_critic(policy, torch.cat([critic_obs[start : t + 1, i], final_obs[t, i, None]]))
            expected[t, i] += gamma * value
        # The memory holds c_start .. c_3 of each running episode and nothing else (peeking advanced nothing).
        for i in (1, 2, 3):
            _, state = _replay_critic(policy, critic_obs[_episode_start(dones[:, i], steps) :, i])
            torch.testing.assert_close(policy.memory_c.hidden_states[:, i : i + 1], state, atol=1e-6, rtol=1e-6)
    assert (policy.memory_c.hidden_states[:, 0] == 0).all()  # env 0 timed out at the last step: reset
    assert (expected != rewards).sum() == 2  # two bootstraps, each with a non-zero value
    torch.testing.assert_close(ppo.storage.rewards.squeeze(-1), expected, atol=1e-6, rtol=1e-6)
