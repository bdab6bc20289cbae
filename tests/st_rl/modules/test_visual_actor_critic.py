import copy
import warnings
from collections import OrderedDict

import pytest
import torch

from st_rl.algorithms.ppo import PPO
from st_rl.modules import INJECTED_POLICY_ARGS, ActorCritic, ActorCriticRecurrent
from st_rl.modules.deterministic_policy import DeterministicPolicyMixin
from st_rl.modules.encoder_actor_critic import EncoderActorCriticMixin
from st_rl.modules.visual_actor_critic import (
    VisualActorCriticMixin,
    VisualDeterministicAC,
    VisualDeterministicRecurrent,
)
from st_rl.utils.config import ConfigError, resolve_kwargs
from st_rl.utils.export import export_max_abs_diff
from st_rl.utils.obs_segments import get_obs_slice
from tests.st_rl.image_env import ImageTargetEnv, train_ppo

VISUAL = {"channels": [8, 8], "kernel_sizes": [3, 3], "strides": [2, 2], "hidden_sizes": [16]}


def _policy(cls, env: ImageTargetEnv, **overrides):
    torch.manual_seed(0)
    kwargs = {
        "visual_component_name": "image",
        "visual_kwargs": VISUAL,
        "visual_latent_size": 6,
        "actor_hidden_dims": [32],
        "critic_hidden_dims": [32],
        "init_noise_std": 0.5,
        **overrides,
    }
    if issubclass(cls, ActorCriticRecurrent):
        kwargs.setdefault("rnn_hidden_size", 16)
    return cls(
        num_actor_obs=env.num_obs,
        num_critic_obs=env.num_critic_obs,
        num_actions=env.num_actions,
        obs_segments=env.obs_segments,
        privileged_obs_segments=env.privileged_obs_segments,
        **kwargs,
    )


def _set_statistics(policy, env: ImageTargetEnv) -> None:
    """Normaliser statistics of 32 real observations."""
    obs = torch.cat([ImageTargetEnv(num_envs=16, seed=s).get_observations() for s in (1, 2)])
    policy.update_normalization(obs, torch.randn(32, env.num_critic_obs) * 2 + 1)


def _scripted(policy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(policy.export_module())


class _DeterministicAC(DeterministicPolicyMixin, ActorCritic):
    pass


def test_deterministic_act_returns_the_mean_and_keeps_the_distribution():
    torch.manual_seed(0)
    policy = _DeterministicAC(4, 4, 3, actor_hidden_dims=[8], critic_hidden_dims=[8], init_noise_std=0.7)
    obs = torch.randn(5, 4)
    actions = policy.act(obs)
    torch.testing.assert_close(actions, policy.act_inference(obs))
    torch.testing.assert_close(actions, policy.act(obs))  # no sampling noise
    torch.testing.assert_close(policy.action_std, torch.full((5, 3), 0.7))
    # the mean is the mode: its log-prob is the largest there is, and the entropy is the Gaussian's
    expected_log_prob = -3 * (torch.log(torch.tensor(0.7)) + 0.5 * torch.log(torch.tensor(2 * torch.pi)))
    torch.testing.assert_close(policy.get_actions_log_prob(actions), expected_log_prob.expand(5))
    assert policy.entropy.shape == (5,)


def test_mro_is_the_pipeline_order():
    assert VisualDeterministicRecurrent.__mro__[1:4] == (
        VisualActorCriticMixin,
        DeterministicPolicyMixin,
        ActorCriticRecurrent,
    )
    assert VisualDeterministicAC.__mro__[1:4] == (VisualActorCriticMixin, DeterministicPolicyMixin, ActorCritic)


def test_layout_replaces_the_image_and_critic_heads():
    env = ImageTargetEnv(privileged=True)
    policy = _policy(VisualDeterministicAC, env)
    assert policy.actor_feature_segments == OrderedDict([("proprio", (2,)), ("image", (6,)), ("height_map", (1, 3, 4))])
    assert policy.critic_obs_segments == env.privileged_obs_segments == policy.critic_feature_segments
    assert policy.critic_visual_encoder is None  # privileged state without the image: seen raw
    with_image = _policy(VisualDeterministicAC, ImageTargetEnv(privileged=True, privileged_image=True))
    assert with_image.critic_feature_segments["image"] == (6,)
    assert with_image.critic_visual_encoder is not None
    actor_params = {id(p) for p in with_image.visual_encoder.parameters()}
    assert not actor_params & {id(p) for p in with_image.critic_visual_encoder.parameters()}


@pytest.mark.parametrize("cls", [VisualDeterministicAC, VisualDeterministicRecurrent])
def test_act_with_embedded_latent_equals_act_inference(cls):
    env = ImageTargetEnv(num_envs=6)
    policy = _policy(cls, env, obs_normalization=True)
    _set_statistics(policy, env)
    direct, cached = copy.deepcopy(policy), copy.deepcopy(policy)
    image_cols = get_obs_slice(env.obs_segments, "image")[0]
    with torch.no_grad():
        for _ in range(3):  # a sequence, so a recurrent policy's state advances the same way on both
            obs = env.get_observations()
            latent = cached.embed_visual_latent(obs)
            assert latent.shape == (6, 6)
            stale = obs.clone()
            stale[:, image_cols] = 0.0  # the image columns are ignored when a latent is given
            torch.testing.assert_close(cached.act_with_embedded_latent(stale, latent), direct.act_inference(obs))
            env.step(torch.randn(6, 2))
    with pytest.raises(ValueError, match=r"latent has shape \(6, 5\), expected \(6, 6\)"):
        policy.act_with_embedded_latent(obs, torch.zeros(6, 5))
    assert policy._visual_latent_override is None


def test_latent_replaces_exactly_the_image_columns():
    env = ImageTargetEnv(num_envs=4)
    policy = _policy(VisualDeterministicAC, env, obs_normalization=True)
    _set_statistics(policy, env)
    obs = env.get_observations()
    x = policy._normalize_actor(obs)
    features = policy.actor_features(x)
    image_cols = get_obs_slice(env.obs_segments, "image")[0]
    torch.testing.assert_close(features[:, :2], x[:, :2])
    torch.testing.assert_close(features[:, 2:8], policy.embed_visual_latent(obs))
    torch.testing.assert_close(features[:, 8:], x[:, image_cols.stop :])


def test_actor_visual_head_gets_gradients_and_distillation_learns():
    """The intended use: imitate a teacher (here the straight-to-target action) through the image."""
    env = ImageTargetEnv(num_envs=64, seed=3)
    policy = _policy(VisualDeterministicAC, env, obs_normalization=True)
    _set_statistics(policy, env)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        obs = env.get_observations()
        teacher = ((env.target - env.pos) / env.dt).clamp(-1, 1)
        loss = (policy.act(obs) - teacher).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            for name, param in policy.visual_encoder.named_parameters():
                assert param.grad is not None and param.grad.abs().sum() > 0, name
        optimizer.step()
        losses.append(loss.item())
        env.step(torch.rand(64, 2) * 2 - 1)
    # A student that ignores the image can do no better than ~0.60 (the teacher's variance given the position).
    # Measured (env seeds 0-3): mean loss of the first 10 steps 0.84-0.87, of the last 10 steps 0.17-0.21.
    assert sum(losses[-10:]) / 10 < 0.4, (losses[:10], losses[-10:])


@pytest.mark.parametrize("obs_normalization", [True, False])
@pytest.mark.parametrize("cls", [VisualDeterministicAC, VisualDeterministicRecurrent])
def test_ppo_runs_trains_the_critic_head_and_export_matches(cls, obs_normalization):
    torch.manual_seed(0)
    env = ImageTargetEnv(num_envs=8, max_episode_length=6, privileged=True, privileged_image=True)
    policy = _policy(cls, env, obs_normalization=obs_normalization)
    before = copy.deepcopy(policy.state_dict())
    ppo = PPO(policy, num_learning_epochs=2, num_mini_batches=2)
    rewards = train_ppo(ppo, env, num_iterations=2, num_steps=8)
    assert all(torch.isfinite(torch.tensor(rewards)))
    state = policy.state_dict()
    # under PPO a deterministic policy explores nothing: what PPO trains here is the critic (with its visual
    # head, through the value loss) and the std (entropy bonus); the actor's head is trained by distillation
    for key in before:
        if key.startswith("critic_visual_encoder.") or key == "std":
            assert not torch.equal(before[key], state[key]), key
    if obs_normalization:
        assert policy.actor_obs_normalizer.count.item() == 2 * 8 * 8
    assert export_max_abs_diff(policy, _scripted(policy), env.num_obs) < 1e-5


def test_export_after_distillation_steps():
    env = ImageTargetEnv(num_envs=8)
    policy = _policy(VisualDeterministicRecurrent, env, obs_normalization=True, rnn_type="lstm")
    _set_statistics(policy, env)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for _ in range(3):
        policy.reset()
        loss = policy.act(env.get_observations()).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert export_max_abs_diff(policy, _scripted(policy), env.num_obs) < 1e-5


def test_composes_with_another_stage_by_mro():
    class EncodedVisual(EncoderActorCriticMixin, VisualActorCriticMixin, DeterministicPolicyMixin, ActorCritic):
        pass

    env = ImageTargetEnv(num_envs=4)
    policy = _policy(
        EncodedVisual,
        env,
        encoder_component_names=["height_map"],
        encoder_kwargs={"hidden_sizes": [8]},
        encoder_output_size=3,
        obs_normalization=True,
    )
    _set_statistics(policy, env)
    assert policy.actor_feature_segments == OrderedDict([("proprio", (2,)), ("image", (6,)), ("height_map", (3,))])
    obs = env.get_observations()
    torch.testing.assert_close(policy.act_with_embedded_latent(obs, policy.embed_visual_latent(obs)), policy.act(obs))
    assert export_max_abs_diff(policy, _scripted(policy), env.num_obs) < 1e-5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"visual_component_name": "imag"}, r"visual_component_name 'imag' is not an actor segment \(segments: "),
        ({"visual_component_name": None}, r"visual_component_name None is not an actor segment"),
        ({"visual_component_name": "proprio"}, r"segment 'proprio' has shape \(2,\); Conv2dHeadModel needs"),
        ({"visual_kwargs": {**VISUAL, "chanels": [4]}}, r"unknown key 'policy.visual_kwargs.chanels'.*'channels'"),
        ({"visual_kwargs": None}, r"missing required key 'policy.visual_kwargs.channels'"),
        ({"visual_latent_size": 0}, r"visual_latent_size for segment 'image' must be a positive int, got 0"),
    ],
)
def test_bad_config_raises_one_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        _policy(VisualDeterministicAC, ImageTargetEnv(num_envs=2), **overrides)


def test_resolve_kwargs_accepts_visual_and_recurrent_keywords():
    cfg = {"visual_component_name": "image", "visual_kwargs": VISUAL, "visual_latent_size": 16, "rnn_type": "lstm"}
    resolved = resolve_kwargs(VisualDeterministicRecurrent, cfg, "policy", "test.yaml", exclude=INJECTED_POLICY_ARGS)
    assert resolved["rnn_type"] == "lstm" and resolved["visual_latent_size"] == 16
    assert resolved["actor_hidden_dims"] == [512, 256, 128]
    with pytest.raises(ConfigError, match=r"unknown key 'policy.visual_latent'.*did you mean 'visual_latent_size'"):
        resolve_kwargs(
            VisualDeterministicRecurrent, {"visual_latent": 8}, "policy", "test.yaml", exclude=INJECTED_POLICY_ARGS
        )
