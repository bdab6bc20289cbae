import copy

import pytest
import torch

from st_rl.modules import INJECTED_POLICY_ARGS
from st_rl.modules.actor_critic import ActorCritic
from st_rl.modules.state_estimator import StateAc, StateAcRecurrent
from st_rl.utils.config import ConfigError, resolve_kwargs
from st_rl.utils.export import export_max_abs_diff
from st_rl.utils.trajectories import split_and_pad_trajectories
from tests.st_rl.velocity_env import SEGMENTS, VelocityEnv

NUM_OBS = 11
VEL = slice(8, 10)  # base_lin_vel columns in the velocity env layout


def _policy(cls=StateAc, **kwargs):
    base = {
        "num_actor_obs": NUM_OBS,
        "num_critic_obs": NUM_OBS,
        "num_actions": 2,
        "obs_segments": SEGMENTS,
        "privileged_obs_segments": SEGMENTS,
        "actor_hidden_dims": [16],
        "critic_hidden_dims": [16],
        "estimator_target_components": ["base_lin_vel"],
        "estimator_kwargs": {"hidden_sizes": [32]},
    }
    if cls is StateAcRecurrent:
        base["rnn_hidden_size"] = 8
    return cls(**{**base, **kwargs})


def _env_data(num_steps: int = 30, num_envs: int = 16, seed: int = 0):
    """``(obs, critic_obs, dones)``, each ``(T, N, .)``, from random actions in the velocity env."""
    env = VelocityEnv(num_envs=num_envs, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    obs, critic_obs = env.reset()
    all_obs, all_critic, all_dones = [], [], []
    for _ in range(num_steps):
        all_obs.append(obs)
        all_critic.append(critic_obs)
        obs, critic_obs, _, dones, _ = env.step(torch.rand(num_envs, 2, generator=generator) * 2 - 1)
        all_dones.append(dones)
    return torch.stack(all_obs), torch.stack(all_critic), torch.stack(all_dones)


def _fit_normalizer(policy, obs: torch.Tensor, critic_obs: torch.Tensor) -> None:
    for o, c in zip(obs, critic_obs):
        policy.update_normalization(o, c)


def _substituted(policy, obs: torch.Tensor) -> torch.Tensor:
    """The normalised obs with base_lin_vel replaced by the normalised estimate, computed by hand."""
    x = policy._normalize_actor(obs)
    estimate = policy.estimator(x[:, [0, 1, 2, 3]])  # pos, last_pos
    out = x.clone()
    if policy.obs_normalization:
        norm = policy.actor_obs_normalizer
        estimate = (estimate - norm.mean[VEL]) / (norm.std[VEL] + norm.eps)
    out[:, VEL] = estimate
    return out


def test_shapes_and_layouts():
    torch.manual_seed(0)
    policy = _policy(estimator_obs_components=["pos", "last_pos"])
    obs = torch.randn(5, NUM_OBS)
    assert policy.act(obs).shape == (5, 2)
    assert policy.evaluate(obs).shape == (5, 1)
    assert policy.estimate_state(obs).shape == (5, 2)
    assert isinstance(policy, ActorCritic) and not policy.is_recurrent and policy.get_hidden_states() == {}
    assert policy.estimator[0].weight.shape == (32, 4)
    assert dict(policy.obs_layouts()["estimator.0.weight"]) == {"pos": (2,), "last_pos": (2,)}
    # default inputs: every actor segment except the targets
    default = _policy()
    assert default.estimator_obs_components == ["pos", "last_pos", "target", "last_action", "friction"]
    assert default.estimator[0].weight.shape[1] == 9
    rnn = _policy(StateAcRecurrent, use_actor_rnn=True, replace_state_prob=0.0)
    assert dict(rnn.obs_layouts()["estimator.0.weight"]) == {"memory_a": (8,)}


def test_gradient_reaches_estimator_only_through_its_loss():
    torch.manual_seed(0)
    policy = _policy()
    obs = torch.randn(6, NUM_OBS)
    policy.update_distribution(obs)
    policy.action_mean.sum().backward()  # a policy-gradient-like loss: the substituted estimate is detached
    assert all(p.grad is None for p in policy.estimator.parameters())
    assert policy.actor[0].weight.grad.abs().sum() > 0
    policy.estimate_state(obs).pow(2).sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in policy.estimator.parameters())
    # with use_actor_rnn the estimator loss shapes the actor memory
    rnn = _policy(StateAcRecurrent, use_actor_rnn=True, replace_state_prob=0.0)
    rnn.estimate_state(obs).pow(2).sum().backward()
    assert rnn.memory_a.rnn.weight_ih_l0.grad.abs().sum() > 0
    assert rnn.estimator[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (StateAc, {"estimator_obs_components": ["pos", "velocity"]}, r"no segment 'velocity'.*segments: pos, last_pos"),
        (StateAc, {"estimator_target_components": ["lin_vel"]}, r"estimator_target_components: no segment 'lin_vel'"),
        (StateAc, {"estimator_target_components": []}, r"non-empty list"),
        (StateAc, {"privileged_obs_segments": {"pos": (2,), "rest": (9,)}}, r"'base_lin_vel' is not in the critic"),
        (StateAc, {"use_actor_rnn": True, "replace_state_prob": 0.0}, r"needs a recurrent policy.*StateAc has no"),
        (
            StateAcRecurrent,
            {"use_actor_rnn": True, "replace_state_prob": 0.0, "estimator_obs_components": ["pos"]},
            r"contradicts it: drop estimator_obs_components or set use_actor_rnn=False",
        ),
        (StateAcRecurrent, {"use_actor_rnn": True}, r"replace_state_prob=1.0 is circular.*already consumed"),
        (StateAc, {"replace_state_prob": 1.5}, r"replace_state_prob=1.5 is not a probability in \[0, 1\]"),
        (StateAc, {"replace_state_prob": -0.1}, r"replace_state_prob=-0.1 is not a probability"),
        (StateAc, {"estimator_kwargs": {"hidden_size": [4]}}, r"unknown key 'hidden_size'.*valid: hidden_sizes"),
        (StateAc, {"estimator_kwargs": {"nonlinearity": "relux"}}, r"unknown activation 'relux'"),
    ],
)
def test_option_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _policy(cls, **kwargs)


def test_config_keys_are_validated_through_the_mro():
    with pytest.raises(ConfigError, match=r"did you mean 'estimator_target_components'"):
        resolve_kwargs(StateAc, {"estimator_target_component": ["a"]}, "policy", "t.yaml", INJECTED_POLICY_ARGS)
    resolved = resolve_kwargs(
        StateAcRecurrent, {"estimator_target_components": ["a"]}, "policy", "t.yaml", INJECTED_POLICY_ARGS
    )
    assert resolved["replace_state_prob"] == 1.0 and resolved["rnn_type"] == "gru"


def test_replace_state_prob_decides_what_the_actor_sees():
    torch.manual_seed(0)
    obs, critic_obs, _ = _env_data(num_steps=3)
    obs = obs.flatten(0, 1)
    for prob, expect_estimate in ((0.0, False), (1.0, True)):
        policy = _policy(estimator_obs_components=["pos", "last_pos"], replace_state_prob=prob, obs_normalization=True)
        _fit_normalizer(policy, obs.unsqueeze(0), critic_obs.flatten(0, 1).unsqueeze(0))
        with torch.no_grad():
            true_action = policy.actor(policy._normalize_actor(obs))
            estimate_action = policy.actor(_substituted(policy, obs))
            assert (true_action - estimate_action).abs().max() > 1e-3  # the two cases are distinguishable
            expected = estimate_action if expect_estimate else true_action
            torch.testing.assert_close(policy.act_inference(obs), expected)
            policy.eval()  # eval mode always uses the estimate
            torch.testing.assert_close(policy.act_inference(obs), estimate_action)
    # in between: each sample sees one or the other, both happen
    policy = _policy(estimator_obs_components=["pos", "last_pos"], replace_state_prob=0.5)
    with torch.no_grad():
        true_action = policy.actor(obs)
        estimate_action = policy.actor(_substituted(policy, obs))
        actions = policy.act_inference(obs)
    is_true = (actions - true_action).abs().amax(-1) < 1e-6
    is_estimate = (actions - estimate_action).abs().amax(-1) < 1e-6
    assert torch.all(is_true ^ is_estimate) and 0.2 < is_estimate.float().mean() < 0.8


def test_estimator_learns_velocity_supervised():
    torch.manual_seed(0)
    obs, critic_obs, _ = _env_data()
    policy = _policy(
        estimator_obs_components=["pos", "last_pos"],
        estimator_kwargs={"hidden_sizes": [64, 64]},
        obs_normalization=True,
    )
    _fit_normalizer(policy, obs, critic_obs)
    obs, target = obs.flatten(0, 1), critic_obs.flatten(0, 1)[:, VEL]  # vel = (pos - last_pos) / dt
    optimizer = torch.optim.Adam(policy.estimator.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = (policy.estimate_state(obs) - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    assert losses[-1] < 0.05 * target.var(dim=0).mean().item()  # far better than predicting the mean


def test_recurrent_batch_matches_rollout():
    """Estimates and actions from padded trajectories (batch mode) equal those of the step-by-step rollout."""
    torch.manual_seed(0)
    obs, _, dones = _env_data(num_steps=12, num_envs=3)
    for kwargs in ({}, {"use_actor_rnn": True, "replace_state_prob": 0.0}):
        policy = _policy(StateAcRecurrent, **kwargs).eval()
        estimates, actions = [], []
        with torch.no_grad():
            for o, d in zip(obs, dones):
                actions.append(policy.act_inference(o))
                estimates.append(policy.state_estimate)
                policy.reset(d)
            padded, masks = split_and_pad_trajectories(obs, dones)
            zeros = torch.zeros(1, masks.shape[1], 8)
            policy.update_distribution(padded, masks, {"actor": zeros, "critic": zeros})
            torch.testing.assert_close(policy.action_mean, torch.stack(actions))
            torch.testing.assert_close(policy.state_estimate, torch.stack(estimates))
            torch.testing.assert_close(policy.estimate_state(padded, masks, {"actor": zeros}), torch.stack(estimates))


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (StateAc, {"estimator_obs_components": ["pos", "last_pos"]}),
        (StateAcRecurrent, {}),
        (StateAcRecurrent, {"use_actor_rnn": True, "replace_state_prob": 0.0}),
    ],
)
def test_export_matches_eager(cls, kwargs):
    torch.manual_seed(0)
    policy = _policy(cls, obs_normalization=True, **kwargs)
    obs, critic_obs, _ = _env_data(num_steps=5)
    _fit_normalizer(policy, obs * 3.0 + 1.0, critic_obs)
    policy.act(obs[0])  # leaves a graph-holding estimate behind: copies must still work
    copy.deepcopy(policy)
    exported = torch.jit.script(policy.export_module())
    assert export_max_abs_diff(policy, exported, NUM_OBS) < 1e-5
    if not policy.use_actor_rnn:  # the exported policy never reads the measured velocity
        x = torch.randn(4, NUM_OBS)
        y = x.clone()
        y[:, VEL] += 5.0
        exported.reset()
        a = exported(x)
        exported.reset()
        torch.testing.assert_close(exported(y), a)
