import warnings
from collections import OrderedDict

import pytest
import torch

from st_rl.algorithms.ppo import PPO
from st_rl.modules import ActorCriticRecurrent, build_policy
from st_rl.modules.actor_critic_recurrent import Memory
from st_rl.utils.config import ConfigError
from st_rl.utils.export import export_max_abs_diff
from tests.st_rl.dummy_env import PointMassEnv
from tests.st_rl.rollouts import collect_rollout


def _policy(rnn_type="gru", layers=1, normalization=False) -> ActorCriticRecurrent:
    env = PointMassEnv(privileged=True)
    return ActorCriticRecurrent(
        num_actor_obs=4,
        num_critic_obs=5,
        num_actions=2,
        actor_hidden_dims=[16],
        critic_hidden_dims=[16],
        rnn_type=rnn_type,
        rnn_hidden_size=8,
        rnn_num_layers=layers,
        obs_normalization=normalization,
        obs_segments=env.obs_segments,
        privileged_obs_segments=env.privileged_obs_segments,
    )


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_shapes_state_and_gradient_flow(rnn_type):
    policy = _policy(rnn_type, layers=2)
    obs, critic_obs = torch.randn(6, 4), torch.randn(6, 5)
    actions = policy.act(obs)
    values = policy.evaluate(critic_obs)
    assert actions.shape == (6, 2) and values.shape == (6, 1)
    rows = 4 if rnn_type == "lstm" else 2  # (h, c) x layers for an LSTM
    states = policy.get_hidden_states()
    assert set(states) == {"actor", "critic"} and states["actor"].shape == (rows, 6, 8)
    (policy.get_actions_log_prob(actions).sum() + values.sum()).backward()
    assert policy.memory_a.rnn.weight_ih_l0.grad.abs().sum() > 0
    assert policy.memory_c.rnn.weight_ih_l0.grad.abs().sum() > 0


def test_memory_carries_state_and_peek_does_not_advance():
    policy = _policy()
    obs, critic_obs = torch.randn(3, 4), torch.randn(3, 5)
    first = policy.act_inference(obs)
    assert set(policy.get_hidden_states()) == {"actor"}  # the critic memory has not stepped yet
    assert not torch.allclose(first, policy.act_inference(obs))  # same input, different memory
    policy.evaluate(critic_obs)
    state = policy.get_hidden_states()["critic"]
    peeked = policy.evaluate(torch.randn(3, 5), hidden_states=policy.get_hidden_states())
    assert peeked.shape == (3, 1)
    torch.testing.assert_close(policy.get_hidden_states()["critic"], state)  # peeking left it alone


def test_reset_clears_only_done_envs():
    policy = _policy("lstm")
    policy.act(torch.randn(4, 4))
    policy.evaluate(torch.randn(4, 5))
    before = {k: v.clone() for k, v in policy.get_hidden_states().items()}
    policy.reset(torch.tensor([False, True, False, True]))
    for name, state in policy.get_hidden_states().items():
        assert (state[:, [1, 3]] == 0).all()
        torch.testing.assert_close(state[:, [0, 2]], before[name][:, [0, 2]])
    policy.reset()
    assert policy.get_hidden_states() == {}


def test_unknown_rnn_type_and_build_by_name_validates_mixin_keys():
    with pytest.raises(ValueError, match=r"unknown rnn_type 'rnn' \(valid: gru, lstm\)"):
        Memory(3, "rnn")
    cfg = {"class_name": "ActorCriticRecurrent", "rnn_type": "lstm", "actor_hidden_dims": [8], "rnn_hidden_size": 4}
    policy = build_policy(cfg, 4, 4, 2)
    assert isinstance(policy, ActorCriticRecurrent) and policy.memory_a.type == "lstm"
    with pytest.raises(ConfigError, match=r"'policy.rnn_hiden_size'.*did you mean 'rnn_hidden_size'"):
        build_policy({"class_name": "ActorCriticRecurrent", "rnn_hiden_size": 4}, 4, 4, 2)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_recurrent_batches_reproduce_rollout_log_probs_and_values(rnn_type):
    """Replaying the padded trajectories from their stored start states gives the rollout-time outputs."""
    torch.manual_seed(0)
    env = PointMassEnv(num_envs=8, max_episode_length=5, privileged=True)
    alg = PPO(_policy(rnn_type, layers=2), num_mini_batches=2)
    alg.init_storage(8, 12, (4,), (5,), (2,))
    collect_rollout(alg, env, 12)
    assert alg.storage.dones.sum() >= 8  # several trajectories per env
    for batch in alg.storage.recurrent_mini_batch_generator(num_mini_batches=2, num_epochs=2):
        with torch.no_grad():
            alg.policy.update_distribution(batch.observations, batch.masks, batch.hidden_states)
            log_prob = alg.policy.get_actions_log_prob(batch.actions)
            values = alg.policy.evaluate(batch.critic_observations, batch.masks, batch.hidden_states)
        assert log_prob.shape == (12, 4)
        torch.testing.assert_close(log_prob, batch.old_actions_log_prob.squeeze(-1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(values, batch.values, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(alg.policy.action_mean, batch.old_mu, atol=1e-5, rtol=1e-5)


def test_replay_fails_without_the_stored_start_states():
    """The check above is not vacuous: replaying from zero states gives different outputs."""
    torch.manual_seed(0)
    env = PointMassEnv(num_envs=4, max_episode_length=5, privileged=True)
    alg = PPO(_policy(), num_mini_batches=1)
    alg.init_storage(4, 6, (4,), (5,), (2,))
    collect_rollout(alg, env, 6)  # the first rollout starts from zeros; a second one starts mid-episode
    collect_rollout(alg, env, 0)
    alg.storage.clear()
    collect_rollout(alg, env, 6)
    batch = next(alg.storage.recurrent_mini_batch_generator(1, 1))
    with torch.no_grad():
        alg.policy.update_distribution(batch.observations, batch.masks, {})
    assert not torch.allclose(alg.policy.action_mean, batch.old_mu, atol=1e-4)


def test_ppo_trains_recurrent_policy_and_bootstraps_time_outs_from_the_post_act_critic_state():
    """Over two training iterations on the point mass (staggered time-outs): each stored reward is
    ``r + gamma * V(s_T) * time_out`` with ``V(s_T)`` from two RNN steps (``c_t`` then ``s_T``) run here from the
    pre-step state, and the memory after the step has consumed ``c_t`` only (zeros where done)."""
    torch.manual_seed(0)
    env = PointMassEnv(num_envs=8, max_episode_length=4, privileged=True)
    env.episode_length_buf = torch.arange(8) % 4  # staggered: at every step some envs time out, others go on
    alg = PPO(_policy(normalization=True), num_mini_batches=2, num_learning_epochs=2, gamma=0.9)
    alg.init_storage(8, 10, (4,), (5,), (2,))
    policy, normalizer = alg.policy, alg.policy.critic_obs_normalizer
    weights = policy.memory_a.rnn.weight_hh_l0.detach().clone()
    for _ in range(2):
        obs, critic_obs = env.get_observations(), env.get_privileged_observations()
        expected, num_time_outs = [], 0
        with torch.inference_mode():
            for _ in range(10):
                actions = alg.act(obs, critic_obs)
                before = alg.transition.hidden_states.get("critic", torch.zeros(1, 8, 8))  # zeros before any step
                inputs = [normalizer.normalize(critic_obs)]  # the statistics stay put until the next act
                obs, critic_obs, rewards, dones, infos = env.step(actions)
                inputs.append(normalizer.normalize(infos["final_critic_obs"]))
                alg.process_env_step(rewards, dones, infos)
                out, _ = policy.memory_c.rnn(torch.stack(inputs), before)
                final_values = policy.critic(out[-1]).squeeze(-1)
                expected.append(rewards + 0.9 * final_values * infos["time_outs"])
                num_time_outs += int(infos["time_outs"].sum())
                _, after = policy.memory_c.rnn(inputs[0].unsqueeze(0), before)
                after = after * (~dones).float().view(1, -1, 1)
                torch.testing.assert_close(policy.memory_c.hidden_states, after, atol=1e-6, rtol=1e-6)
            alg.compute_returns(critic_obs)
        assert num_time_outs >= 16
        torch.testing.assert_close(alg.storage.rewards.squeeze(-1), torch.stack(expected), atol=1e-6, rtol=1e-6)
        info = alg.update()
    assert not torch.allclose(weights, policy.memory_a.rnn.weight_hh_l0)
    assert all(torch.isfinite(torch.tensor(v)) for v in info.values())
    # After compute_returns (which evaluates the last observation), the critic state is the rollout's own.
    state = policy.get_hidden_states()["critic"].clone()
    alg.compute_returns(env.get_privileged_observations())
    torch.testing.assert_close(policy.get_hidden_states()["critic"], state)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_export_matches_eager_over_a_sequence_with_resets(rnn_type, tmp_path):
    policy = _policy(rnn_type, layers=2, normalization=True)
    policy.update_normalization(torch.randn(64, 4) * 3 + 1, torch.randn(64, 5) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(policy.export_module())
    assert export_max_abs_diff(policy, scripted, 4) < 1e-5
    # The recurrent state is really in the export: without resets the outputs drift from a fresh start.
    obs = torch.randn(2, 4)
    scripted.reset()
    first = scripted(obs)
    assert not torch.allclose(first, scripted(obs))
    scripted.reset(torch.tensor([True, False]))
    torch.testing.assert_close(scripted(obs)[0], first[0])
    torch.jit.save(scripted, str(tmp_path / "p.pt"))
    loaded = torch.jit.load(str(tmp_path / "p.pt"))
    loaded.reset()
    torch.testing.assert_close(loaded(obs), first)


def test_segments_must_match_sizes():
    with pytest.raises(ValueError, match="have 3 entries, not 4"):
        ActorCriticRecurrent(4, 4, 2, obs_segments=OrderedDict(a=(3,)))
