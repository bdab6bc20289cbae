import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

from st_rl.algorithms.ppo import PPO
from st_rl.modules import ActorCritic, ActorCriticRecurrent
from st_rl.modules.actor_critic import default_segments, obs_sizes
from st_rl.modules.amp_discriminator import (
    AmpActorCritic,
    AmpActorCriticRecurrent,
    AMPDiscriminator,
    AmpMixin,
    least_squares_discriminator_loss,
)
from st_rl.modules.exported import Stage
from st_rl.modules.normalizer import Normalizer
from st_rl.utils.config import ConfigError, resolve_kwargs
from st_rl.utils.export import export_max_abs_diff
from st_rl.utils.obs_segments import segments_num_obs
from tests.st_rl.dummy_env import PointMassEnv

AMP_SEGMENTS = OrderedDict(pos=(2,))


def _linear_discriminator(weight: list[float], bias: float, **kwargs) -> AMPDiscriminator:
    """``D(x) = w . x + b`` exactly (no hidden layers)."""
    disc = AMPDiscriminator(len(weight), hidden_dims=(), **kwargs)
    with torch.no_grad():
        disc.linear.weight.copy_(torch.tensor([weight]))
        disc.linear.bias.fill_(bias)
    return disc


def _constant_discriminator(d: float, input_dim: int = 4, **kwargs) -> AMPDiscriminator:
    """An MLP discriminator whose output is ``d`` for every input (zero output weights, bias ``d``)."""
    disc = AMPDiscriminator(input_dim, hidden_dims=(8,), **kwargs)
    with torch.no_grad():
        disc.linear.weight.zero_()
        disc.linear.bias.fill_(d)
    return disc


# --- discriminator -----------------------------------------------------------------------------------------------
def test_forward_shape_and_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    disc = AMPDiscriminator(6, hidden_dims=(16, 8), activation="elu")
    out = disc(torch.randn(5, 6))
    assert out.shape == (5, 1)
    out.pow(2).mean().backward()
    for name, param in disc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_grad_pen_of_linear_discriminator_is_lambda_w_squared():
    w = [1.0, -2.0, 0.5, 3.0]
    disc = _linear_discriminator(w, bias=0.7)
    state, next_state = torch.randn(7, 2), torch.randn(7, 2)
    pen = disc.compute_grad_pen(state, next_state, lambda_=10)
    # dD/dx = w for every sample: 10 * (1 + 4 + 0.25 + 9) = 142.5
    assert pen.item() == pytest.approx(142.5, rel=1e-6)
    # differentiable w.r.t. the parameters: d(lambda * |w|^2)/dw = 2 * lambda * w, nothing for the bias
    pen.backward()
    torch.testing.assert_close(disc.linear.weight.grad, 20.0 * torch.tensor([w]))
    assert disc.linear.bias.grad is None or disc.linear.bias.grad.abs().max() == 0


def test_grad_pen_of_mlp_is_finite_positive_and_trainable():
    torch.manual_seed(0)
    disc = AMPDiscriminator(4, hidden_dims=(16, 16))
    pen = disc.compute_grad_pen(torch.randn(32, 2), torch.randn(32, 2))
    assert torch.isfinite(pen) and pen.item() > 0 and pen.requires_grad
    pen.backward()
    assert disc.trunk[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("d", "style"),
    [(1.0, 1.0), (0.0, 0.75), (2.0, 0.75), (-1.0, 0.0), (3.0, 0.0), (-3.0, 0.0), (0.5, 1 - 0.25 * 0.25)],
)
def test_style_reward_formula_and_lerp(d, style):
    disc = _constant_discriminator(d, style_reward_coef=2.0, task_reward_lerp=0.25)
    state, next_state = torch.randn(3, 2), torch.randn(3, 2)
    task = torch.tensor([1.0, -2.0, 4.0])
    reward, style_reward = disc.predict_style_reward(state, next_state, task)
    # style = 2 * max(0, 1 - 0.25 * (d - 1)^2); reward = 0.75 * style + 0.25 * task
    torch.testing.assert_close(style_reward, torch.full((3,), 2.0 * style))
    torch.testing.assert_close(reward, 0.75 * 2.0 * style + 0.25 * task)
    assert not reward.requires_grad and not style_reward.requires_grad
    # a (B, 1) task reward gives the same (B,) result
    reward_col, _ = disc.predict_style_reward(state, next_state, task.unsqueeze(-1))
    torch.testing.assert_close(reward_col, reward)


def test_style_reward_normalises_states_with_the_normalizer():
    w = [0.5, -1.0, 0.25, 2.0]
    disc = _linear_discriminator(w, bias=0.1)
    norm = Normalizer(2, epsilon=1e-4, clip_obs=10.0)
    norm.mean, norm.var = np.array([1.0, -2.0]), np.array([4.0, 9.0])
    state, next_state = torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, -2.0]])
    _, style = disc.predict_style_reward(state, next_state, torch.zeros(1), normalizer=norm)
    ns = [(3.0 - 1.0) / np.sqrt(4.0001), (1.0 + 2.0) / np.sqrt(9.0001)]
    nn_ = [0.0, 0.0]
    d = float(np.dot(w, ns + nn_) + 0.1)
    assert style.item() == pytest.approx(max(0.0, 1 - 0.25 * (d - 1) ** 2), rel=1e-5)
    _, raw_style = disc.predict_style_reward(state, next_state, torch.zeros(1))
    assert raw_style.item() != pytest.approx(style.item(), rel=1e-3)


def test_invalid_discriminator_arguments():
    with pytest.raises(ValueError, match=r"task_reward_lerp=1.5 is not in \[0, 1\]"):
        AMPDiscriminator(4, task_reward_lerp=1.5)
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'"):
        AMPDiscriminator(4, activation="rleu")


def _transitions(mean: float, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    state = mean + 0.5 * torch.randn(n, 2, generator=generator)
    return state, state + 0.1 + 0.05 * torch.randn(n, 2, generator=generator)


def test_discriminator_separates_reference_from_policy_transitions():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    disc = AMPDiscriminator(4, hidden_dims=(32, 32))
    optimizer = torch.optim.Adam(disc.parameters(), lr=1e-3)
    for _ in range(300):
        ref_s, ref_next = _transitions(1.0, 64, generator)
        pol_s, pol_next = _transitions(-1.0, 64, generator)
        expert_d = disc(torch.cat([ref_s, ref_next], dim=-1))
        policy_d = disc(torch.cat([pol_s, pol_next], dim=-1))
        loss, _ = least_squares_discriminator_loss(expert_d, policy_d)
        loss = loss + disc.compute_grad_pen(ref_s, ref_next, lambda_=10)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ref_s, ref_next = _transitions(1.0, 500, generator)
    pol_s, pol_next = _transitions(-1.0, 500, generator)
    with torch.no_grad():
        _, metrics = least_squares_discriminator_loss(
            disc(torch.cat([ref_s, ref_next], dim=-1)), disc(torch.cat([pol_s, pol_next], dim=-1))
        )
    assert metrics["accuracy"] > 0.9
    _, ref_style = disc.predict_style_reward(ref_s, ref_next, torch.zeros(500))
    _, pol_style = disc.predict_style_reward(pol_s, pol_next, torch.zeros(500))
    assert ref_style.mean() > pol_style.mean() + 0.5


def test_least_squares_loss_by_hand():
    # expert d = [1, 0] -> (0 + 1) / 2 = 0.5 ; policy d = [-1, 1] -> (0 + 4) / 2 = 2 ; accuracy: 1 of 2 + 1 of 2
    loss, metrics = least_squares_discriminator_loss(torch.tensor([[1.0], [0.0]]), torch.tensor([[-1.0], [1.0]]))
    assert loss.item() == pytest.approx(2.5)
    assert metrics["accuracy"].item() == pytest.approx(0.5)


# --- policies ----------------------------------------------------------------------------------------------------
def _policy(cls, **kwargs):
    kwargs.setdefault("amp_obs_segments", AMP_SEGMENTS)
    extra = {"rnn_hidden_size": 8} if cls is AmpActorCriticRecurrent else {}
    return cls(
        4,
        4,
        2,
        actor_hidden_dims=[16],
        critic_hidden_dims=[16],
        obs_normalization=True,
        obs_segments=OrderedDict(pos=(2,), target=(2,)),
        amp_discriminator_kwargs={"hidden_dims": [16], "task_reward_lerp": 0.5},
        **extra,
        **kwargs,
    )


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.parametrize("cls", [AmpActorCritic, AmpActorCriticRecurrent])
def test_amp_policy_trains_with_ppo_and_exports_without_discriminator(cls):
    """A miniature AMP loop: PPO on the blended (style, task) reward, then one discriminator step on its own
    optimiser. Reference transitions: the point mass moving straight towards the origin."""
    torch.manual_seed(0)
    env = PointMassEnv(num_envs=8, max_episode_length=10, seed=0)
    policy = _policy(cls)
    ppo = PPO(policy, num_learning_epochs=2, num_mini_batches=2, learning_rate=1e-3)
    disc = policy.discriminator
    disc_optimizer = torch.optim.Adam(disc.parameters(), lr=1e-3)
    amp_norm = Normalizer(2)
    steps = 6
    ppo.init_storage(env.num_envs, steps, (4,), None, (2,))
    actor_before, disc_before = _snapshot(policy.actor), _snapshot(disc)
    generator = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        obs, _ = env.reset()
    for _ in range(2):
        policy_states, policy_next = [], []
        with torch.inference_mode():
            for _ in range(steps):
                amp_state = obs[:, :2].clone()
                actions = ppo.act(obs, obs)
                obs, _, task_reward, dones, infos = env.step(actions)
                amp_next = env.pos.clone()
                amp_next[dones] = amp_state[dones]  # reset envs: keep a plausible next state, not the reset one
                reward, style = disc.predict_style_reward(amp_state, amp_next, task_reward, normalizer=amp_norm)
                assert reward.shape == style.shape == (env.num_envs,)
                torch.testing.assert_close(reward, 0.5 * style + 0.5 * task_reward)
                ppo.process_env_step(reward, dones, infos)
                policy_states.append(amp_state)
                policy_next.append(amp_next)
            ppo.compute_returns(obs)
        info = ppo.update()
        assert np.isfinite(info["surrogate"])
        # PPO never moves the discriminator (no gradient reaches it)
        assert not _changed(disc_before, disc)
        # one discriminator step on the collected transitions and reference ones
        ref_state = 2 * torch.rand(48, 2, generator=generator) - 1
        ref_next = 0.9 * ref_state
        amp_norm.update_normalizer(zip(policy_states, policy_next), [(ref_state, ref_next)])
        pol_s, pol_next = (amp_norm.normalize_torch(torch.cat(x), "cpu") for x in (policy_states, policy_next))
        ref_s, ref_n = (amp_norm.normalize_torch(x, "cpu") for x in (ref_state, ref_next))
        loss, _ = least_squares_discriminator_loss(
            disc(torch.cat([ref_s, ref_n], dim=-1)), disc(torch.cat([pol_s, pol_next], dim=-1))
        )
        loss = loss + disc.compute_grad_pen(ref_s, ref_n)
        disc_optimizer.zero_grad()
        loss.backward()
        disc_optimizer.step()
        assert _changed(disc_before, disc)
        disc_before = _snapshot(disc)
    assert _changed(actor_before, policy.actor)
    assert policy.actor_obs_normalizer.count.item() == 2 * steps * env.num_envs

    exported = policy.export_module()
    names = [name for name, _ in exported.named_parameters()] + [name for name, _ in exported.named_buffers()]
    assert not any("discriminator" in name for name in names)
    # the exported parameters are exactly the actor's (and the actor memory's): no discriminator, no critic
    expected = sum(p.numel() for p in policy.actor.parameters())
    if cls is AmpActorCriticRecurrent:
        expected += sum(p.numel() for p in policy.memory_a.parameters())
    assert sum(p.numel() for p in exported.parameters()) == expected
    assert export_max_abs_diff(policy, torch.jit.script(exported), 4) < 1e-5


def test_feature_pipeline_unchanged_and_discriminator_in_state_dict():
    torch.manual_seed(0)
    amp = _policy(AmpActorCritic)
    torch.manual_seed(0)
    plain = ActorCritic(4, 4, 2, actor_hidden_dims=[16], critic_hidden_dims=[16], obs_normalization=True)
    assert amp.actor_feature_segments == OrderedDict(pos=(2,), target=(2,))
    assert amp.export_actor_stages() == []
    obs = torch.randn(5, 4)
    amp_only = ("discriminator.", "amp_normalizer.")
    plain.load_state_dict({k: v for k, v in amp.state_dict().items() if not k.startswith(amp_only)})
    torch.testing.assert_close(amp.act_inference(obs), plain.act_inference(obs))
    assert "discriminator.linear.weight" in amp.state_dict()
    assert amp.state_dict()["amp_normalizer._mean"].shape == (1, 2)  # one AMP observation (pos)
    assert amp.obs_layouts()["amp_normalizer._std"] == AMP_SEGMENTS
    assert amp.discriminator.input_dim == 4
    layout = amp.obs_layouts()["discriminator.trunk.0.weight"]
    assert layout == OrderedDict([("state.pos", (2,)), ("next_state.pos", (2,))])
    assert amp.state_dict()["discriminator.trunk.0.weight"].shape[-1] == segments_num_obs(layout)


def test_missing_amp_obs_segments_and_bad_discriminator_kwargs():
    with pytest.raises(ValueError, match=r"AmpActorCritic needs amp_obs_segments.*'amp_obs' segment group"):
        AmpActorCritic(4, 4, 2, actor_hidden_dims=[8], critic_hidden_dims=[8])
    with pytest.raises(ConfigError, match=r"'policy.amp_discriminator_kwargs.hiden_dims'.*did you mean 'hidden_dims'"):
        AmpActorCritic(4, 4, 2, amp_obs_segments=AMP_SEGMENTS, amp_discriminator_kwargs={"hiden_dims": [8]})
    with pytest.raises(ConfigError, match=r"unknown key 'policy.amp_discriminator_kwargs.input_dim'"):
        AmpActorCritic(4, 4, 2, amp_obs_segments=AMP_SEGMENTS, amp_discriminator_kwargs={"input_dim": 3})


def test_config_resolution_follows_the_mro():
    injected = {"num_actor_obs", "num_critic_obs", "num_actions", "obs_segments", "privileged_obs_segments"}
    injected |= {"amp_obs_segments", "actor_feature_segments", "critic_feature_segments"}
    resolved = resolve_kwargs(AmpActorCriticRecurrent, {"rnn_type": "lstm"}, "policy", "test", exclude=injected)
    assert resolved["amp_discriminator_kwargs"] is None
    assert resolved["rnn_type"] == "lstm" and resolved["actor_hidden_dims"] == [512, 256, 128]
    policy = _policy(AmpActorCritic)
    assert policy.amp_discriminator_kwargs == {
        "hidden_dims": [16],
        "activation": "relu",
        "style_reward_coef": 1.0,
        "task_reward_lerp": 0.5,
    }


class _DoubleObsMixin:
    """A test feature stage: ``x -> [x, 2 x]`` (layout ``orig``, ``doubled``)."""

    def __init__(self, *args, actor_feature_segments=None, critic_feature_segments=None, **kwargs):
        num_actor_obs, _ = obs_sizes(args, kwargs)
        actor_in = actor_feature_segments or default_segments(num_actor_obs, kwargs.get("obs_segments"), "obs")
        n = segments_num_obs(actor_in)
        super().__init__(
            *args,
            actor_feature_segments=OrderedDict(orig=(n,), doubled=(n,)),
            critic_feature_segments=critic_feature_segments,
            **kwargs,
        )

    def actor_features(self, obs, masks=None, hidden_states=None):
        return super().actor_features(torch.cat([obs, 2 * obs], dim=-1), masks, hidden_states)

    def export_actor_stages(self):
        return [Stage(_Doubler()), *super().export_actor_stages()]


class _Doubler(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, 2 * x], dim=-1)


@pytest.mark.parametrize("order", ["amp_first", "amp_last"])
def test_amp_mixin_composes_with_another_stage_in_any_order(order):
    bases = (AmpMixin, _DoubleObsMixin, ActorCriticRecurrent)
    if order == "amp_last":
        bases = (_DoubleObsMixin, AmpMixin, ActorCriticRecurrent)
    cls = type("Composed", bases, {})
    torch.manual_seed(0)
    policy = cls(
        4, 4, 2, actor_hidden_dims=[8], critic_hidden_dims=[8], rnn_hidden_size=8, amp_obs_segments=AMP_SEGMENTS
    )
    assert policy.memory_a.rnn.input_size == 8  # the doubled layout reached the memory through the AMP mixin
    assert policy.discriminator.input_dim == 4
    exported = torch.jit.script(copy.deepcopy(policy).export_module())
    assert export_max_abs_diff(policy, exported, 4) < 1e-5
