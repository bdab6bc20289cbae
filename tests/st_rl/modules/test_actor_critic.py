import pytest
import torch

from st_rl.modules import ActorCritic, build_policy
from st_rl.utils.config import ConfigError


def test_build_policy_shapes_and_distribution():
    policy = build_policy(
        {"class_name": "ActorCritic", "actor_hidden_dims": [16, 8], "critic_hidden_dims": [8]}, 6, 9, 3
    )
    assert isinstance(policy, ActorCritic)
    obs, critic_obs = torch.randn(5, 6), torch.randn(5, 9)
    actions = policy.act(obs)
    assert actions.shape == (5, 3)
    assert policy.get_actions_log_prob(actions).shape == (5,)
    assert policy.entropy.shape == (5,)
    assert policy.evaluate(critic_obs).shape == (5, 1)
    torch.testing.assert_close(policy.act_inference(obs), policy.action_mean)
    torch.testing.assert_close(policy.action_std, torch.ones(5, 3))


def test_build_policy_unknown_class_lists_valid():
    with pytest.raises(ConfigError, match=r"unknown policy class 'ActorCritc'.*valid: ActorCritic"):
        build_policy({"class_name": "ActorCritc"}, 2, 2, 1)


def test_build_policy_rejects_unknown_and_injected_keys():
    with pytest.raises(
        ConfigError, match=r"unknown key 'policy.actor_hiden_dims' in walk.yaml .*did you mean 'actor_hidden_dims'"
    ):
        build_policy({"actor_hiden_dims": [4]}, 2, 2, 1, source="walk.yaml")
    with pytest.raises(ConfigError, match=r"'policy.num_actions'.*set from the environment"):
        build_policy({"num_actions": 4}, 2, 2, 1)


def test_normalisers_change_only_through_update_normalization():
    policy = ActorCritic(3, 4, 2, actor_hidden_dims=[8], critic_hidden_dims=[8], obs_normalization=True)
    obs, critic_obs = torch.randn(10, 3) * 5 + 2, torch.randn(10, 4) * 3
    policy.act(obs)
    policy.evaluate(critic_obs)
    policy.act_inference(obs)
    assert policy.actor_obs_normalizer.count.item() == 0
    policy.update_normalization(obs, critic_obs)
    assert policy.actor_obs_normalizer.count.item() == 10 and policy.critic_obs_normalizer.count.item() == 10
    torch.testing.assert_close(policy.actor_obs_normalizer.mean, obs.mean(dim=0))
    assert "actor_obs_normalizer._mean" in policy.state_dict()


def test_clip_std():
    policy = ActorCritic(2, 2, 3, actor_hidden_dims=[4], critic_hidden_dims=[4], init_noise_std=0.5)
    with torch.no_grad():
        policy.std.copy_(torch.tensor([-1.0, 0.5, 5.0]))
    policy.clip_std(0.1, 2.0)
    torch.testing.assert_close(policy.std.detach(), torch.tensor([0.1, 0.5, 2.0]))
