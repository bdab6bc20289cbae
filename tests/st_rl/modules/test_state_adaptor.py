from collections import OrderedDict

import pytest
import torch

from st_rl.modules.state_adaptor import PrivilegeStateAc, PrivilegeStateAcRecurrent, pad_trajectories
from st_rl.utils.export import export_max_abs_diff
from st_rl.utils.trajectories import split_and_pad_trajectories, trajectory_start_states, unpad_trajectories
from tests.st_rl.velocity_env import SEGMENTS, VelocityEnv

NUM_OBS = 11
FRICTION = slice(10, 11)  # friction column in the velocity env layout


def _policy(cls=PrivilegeStateAcRecurrent, rnn_type="gru", **kwargs):
    base = {
        "num_actor_obs": NUM_OBS,
        "num_critic_obs": NUM_OBS,
        "num_actions": 2,
        "obs_segments": SEGMENTS,
        "privileged_obs_segments": SEGMENTS,
        "actor_hidden_dims": [16],
        "critic_hidden_dims": [16],
        "adaptor_target_components": ["friction"],
        "adaptor_kwargs": {"rnn_type": rnn_type, "rnn_hidden_size": 8, "hidden_sizes": [16]},
    }
    if cls is PrivilegeStateAcRecurrent:
        base["rnn_hidden_size"] = 8
    return cls(**{**base, **kwargs})


def _env_data(num_steps: int, num_envs: int, seed: int = 0):
    """``(obs, critic_obs, dones)``, each ``(T, N, .)``, from random actions in the velocity env."""
    env = VelocityEnv(num_envs=num_envs, max_episode_length=7, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    obs, critic_obs = env.reset()
    all_obs, all_critic, all_dones = [], [], []
    for _ in range(num_steps):
        all_obs.append(obs)
        all_critic.append(critic_obs)
        obs, critic_obs, _, dones, _ = env.step(torch.rand(num_envs, 2, generator=generator) * 2 - 1)
        all_dones.append(dones)
    return torch.stack(all_obs), torch.stack(all_critic), torch.stack(all_dones)


def test_shapes_layouts_and_hidden_state():
    torch.manual_seed(0)
    obs = torch.randn(5, NUM_OBS)
    feed_forward = _policy(PrivilegeStateAc, rnn_type=None, adaptor_obs_components=["pos", "last_action"])
    assert feed_forward.act(obs).shape == (5, 2) and feed_forward.evaluate(obs).shape == (5, 1)
    assert feed_forward.estimate_privilege(obs).shape == (5, 1)
    assert dict(feed_forward.obs_layouts()["adaptor.0.weight"]) == {"pos": (2,), "last_action": (2,)}
    assert feed_forward.get_hidden_states() == {}
    for rnn_type, rows in (("gru", 1), ("lstm", 2)):
        policy = _policy(rnn_type=rnn_type)
        assert policy.adaptor_obs_components == ["pos", "last_pos", "target", "last_action", "base_lin_vel"]
        assert policy.act(obs).shape == (5, 2)
        assert policy.get_hidden_states()["adaptor"].shape == (rows, 5, 8)
        layout = policy.obs_layouts()["adaptor_memory.rnn.weight_ih_l0"]
        assert list(layout) == policy.adaptor_obs_components
        assert policy.adaptor_memory.rnn.weight_ih_l0.shape[1] == 10


RECURRENT = PrivilegeStateAcRecurrent


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (
            RECURRENT,
            {"adaptor_target_components": ["mass"]},
            r"adaptor_target_components: no segment 'mass'.*pos, last",
        ),
        (RECURRENT, {"adaptor_obs_components": ["pos", "vel"]}, r"adaptor_obs_components: no segment 'vel'"),
        (RECURRENT, {"privileged_obs_segments": {"pos": (2,), "rest": (9,)}}, r"'friction' is not in the critic"),
        (RECURRENT, {"privilege_replace_state_prob": 2.0}, r"privilege_replace_state_prob=2.0 is not a probability"),
        (RECURRENT, {"rnn_type": "rnn"}, r"unknown adaptor_kwargs.rnn_type 'rnn' \(valid: None, gru, lstm\)"),
        (PrivilegeStateAc, {"rnn_type": "gru"}, r"rnn_type='gru' needs a recurrent policy.*PrivilegeStateAc is"),
        (RECURRENT, {"adaptor_kwargs": {"rnn": "gru"}}, r"unknown key 'rnn' in adaptor_kwargs \(valid: rnn_type"),
    ],
)
def test_option_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _policy(cls, **kwargs)


def test_pad_trajectories_inverts_unpad():
    dones = torch.tensor([[0, 0], [1, 0], [0, 1], [0, 0]], dtype=torch.bool)
    x = torch.arange(8.0).view(4, 2, 1)
    padded, masks = split_and_pad_trajectories(x, dones)
    torch.testing.assert_close(pad_trajectories(unpad_trajectories(padded, masks), masks), padded)


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_rollout_peek_and_batch_modes_agree(rnn_type):
    torch.manual_seed(0)
    obs, _, dones = _env_data(num_steps=12, num_envs=3)
    assert dones.any()  # trajectories are cut inside the sequence
    policy = _policy(rnn_type=rnn_type).eval()
    rows = {"adaptor": 2 if rnn_type == "lstm" else 1, "actor": 1}
    estimates, actions, states = [], [], {name: [] for name in rows}
    with torch.no_grad():
        for o, d in zip(obs, dones):
            before = policy.get_hidden_states()
            for name, s in states.items():  # the storage's view: a state not stepped yet is zeros
                s.append(before.get(name, torch.zeros(rows[name], 3, 8)))
            peeked = policy.estimate_privilege(o, hidden_states=before)  # peek: advances nothing
            assert policy.get_hidden_states().keys() == before.keys()
            assert all(torch.equal(before[k], v) for k, v in policy.get_hidden_states().items())
            actions.append(policy.act_inference(o))  # rollout: advances the states
            estimates.append(policy.privilege_estimate)
            torch.testing.assert_close(peeked, estimates[-1])
            assert not torch.equal(policy.get_hidden_states()["adaptor"], states["adaptor"][-1])
            policy.reset(d)
        padded, masks = split_and_pad_trajectories(obs, dones)
        starts = {name: trajectory_start_states(torch.stack(s), dones) for name, s in states.items()}
        policy.update_distribution(padded, masks, starts)
    torch.testing.assert_close(policy.action_mean, torch.stack(actions))
    torch.testing.assert_close(policy.privilege_estimate, torch.stack(estimates))


def test_reset_clears_only_done_envs():
    torch.manual_seed(0)
    policy = _policy()
    for _ in range(3):
        policy.act(torch.randn(4, NUM_OBS))
    before = policy.get_hidden_states()["adaptor"].clone()
    assert before.abs().amin(dim=-1).gt(0).all()
    policy.reset(torch.tensor([False, True, False, True]))
    after = policy.get_hidden_states()["adaptor"]
    assert torch.all(after[:, [1, 3]] == 0)
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])


def test_replace_prob_and_eval_mode():
    torch.manual_seed(0)
    obs = torch.randn(64, NUM_OBS)
    for prob in (0.0, 1.0):
        policy = _policy(PrivilegeStateAc, rnn_type=None, privilege_replace_state_prob=prob)
        with torch.no_grad():
            true_action = policy.actor(obs)
            substituted = obs.clone()
            substituted[:, FRICTION] = policy.adaptor(obs[:, :10])
            estimate_action = policy.actor(substituted)
            assert (true_action - estimate_action).abs().max() > 1e-3
            torch.testing.assert_close(policy.act_inference(obs), estimate_action if prob else true_action)
            torch.testing.assert_close(policy.eval().act_inference(obs), estimate_action)


def test_recurrent_adaptor_learns_a_delayed_target():
    """The target at step t is the observed ``x`` of step t - 1: only a memory can fit it."""
    torch.manual_seed(0)
    segments = OrderedDict([("x", (1,)), ("p", (1,))])
    policy = PrivilegeStateAcRecurrent(
        2,
        2,
        1,
        actor_hidden_dims=[8],
        critic_hidden_dims=[8],
        rnn_hidden_size=8,
        obs_segments=segments,
        privileged_obs_segments=segments,
        adaptor_target_components=["p"],
        adaptor_kwargs={"rnn_type": "gru", "rnn_hidden_size": 16, "hidden_sizes": [16]},
    )
    x = torch.randn(10, 32, 1)
    target = torch.cat([torch.zeros(1, 32, 1), x[:-1]])
    obs = torch.cat([x, torch.zeros_like(x)], dim=-1)
    masks = torch.ones(10, 32, dtype=torch.bool)
    optimizer = torch.optim.Adam(list(policy.adaptor_memory.parameters()) + list(policy.adaptor.parameters()), 1e-2)
    losses = []
    for _ in range(200):
        loss = (policy.estimate_privilege(obs, masks, {}) - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.parametrize(
    ("cls", "rnn_type"), [(PrivilegeStateAc, None), (RECURRENT, None), (RECURRENT, "gru"), (RECURRENT, "lstm")]
)
def test_export_matches_eager(cls, rnn_type):
    torch.manual_seed(0)
    policy = _policy(cls, rnn_type=rnn_type, obs_normalization=True)
    obs, critic_obs, _ = _env_data(num_steps=5, num_envs=8)
    for o, c in zip(obs, critic_obs):
        policy.update_normalization(o * 3.0 + 1.0, c)
    policy.act(obs[0])
    exported = torch.jit.script(policy.export_module())
    assert export_max_abs_diff(policy, exported, NUM_OBS) < 1e-5
    x = torch.randn(4, NUM_OBS)  # the exported policy never reads the privileged friction
    y = x.clone()
    y[:, FRICTION] += 5.0
    exported.reset()
    a = exported(x)
    exported.reset()
    torch.testing.assert_close(exported(y), a)
