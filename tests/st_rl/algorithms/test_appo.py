import statistics
import sys
from collections import OrderedDict

import pytest
import torch

from st_rl.algorithms import ALGORITHM_CLASSES
from st_rl.algorithms.appo import APPO, AmpBatch
from st_rl.algorithms.ppo import PPO
from st_rl.modules import ActorCritic
from st_rl.modules.amp_discriminator import AmpActorCritic, AmpActorCriticRecurrent
from st_rl.runners import OnPolicyRunner
from st_rl.runners.config import resolve_train_cfg
from st_rl.storage.amp_storage import AmpRolloutStorage
from st_rl.storage.rollout_storage import Batch
from st_rl.utils.config import ConfigError
from tests.st_rl.segments_env import SegmentsEnv


class GaussianMotion:
    """A fake reference source: ``s = (pos, vel)`` around ``pos (0.5, 0.5)``, ``vel (1, -1)``, and ``s'`` one
    ``0.1 s`` step further along ``vel``. The random policy's velocities are spread around 0: separable."""

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def sample_pairs(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(batch_size, 4, generator=self.generator)
        state = torch.tensor([0.5, 0.5, 1.0, -1.0]) + torch.tensor([0.3, 0.3, 0.1, 0.1]) * noise
        next_state = state.clone()
        next_state[:, :2] += 0.1 * state[:, 2:]
        return state, next_state


def _segments_policy(cls=AmpActorCritic, task_reward_lerp: float = 0.5, **kwargs):
    env = SegmentsEnv(num_envs=1)
    extra = {"rnn_hidden_size": 8} if cls is AmpActorCriticRecurrent else {}
    return cls(
        env.num_obs,
        env.num_privileged_obs,
        env.num_actions,
        actor_hidden_dims=[16],
        critic_hidden_dims=[16],
        obs_normalization=True,
        obs_segments=env.obs_segments,
        privileged_obs_segments=env.privileged_obs_segments,
        amp_obs_segments=env.amp_obs_segments,
        amp_discriminator_kwargs={"hidden_dims": [16], "task_reward_lerp": task_reward_lerp},
        **extra,
        **kwargs,
    )


# --- losses ------------------------------------------------------------------------------------------------------
def test_compute_losses_adds_discriminator_and_gradient_penalty_on_normalised_transitions():
    # A 1-d AMP observation and a linear discriminator D([s, s']) = s - 2 s' + 0.5 on NORMALISED inputs
    # n = (x - 1) / 2 (normaliser mean 1, std 1.99 + eps 0.01).
    policy = AmpActorCritic(
        3,
        3,
        1,
        actor_hidden_dims=[4],
        critic_hidden_dims=[4],
        amp_obs_segments=OrderedDict(x=(1,)),
        amp_discriminator_kwargs={"hidden_dims": []},
    )
    with torch.no_grad():
        policy.discriminator.linear.weight.copy_(torch.tensor([[1.0, -2.0]]))
        policy.discriminator.linear.bias.fill_(0.5)
        policy.amp_normalizer._mean.fill_(1.0)
        policy.amp_normalizer._std.fill_(1.99)
    alg = APPO(policy, discriminator_loss_coef=0.7, discriminator_grad_pen_coef=3.0)
    assert alg.loss_coefs["discriminator"] == alg.loss_coefs["gradient_penalty"] == 0.7

    def raw(*normalised: float) -> torch.Tensor:
        return 2.0 * torch.tensor(normalised).unsqueeze(-1) + 1.0

    # reference n: (1, 0) -> D = 1.5, (0, 0) -> D = 0.5 ; policy n: (2, 2) -> D = -1.5, (-1, -1) -> D = 1.5
    # LS: mean((0.5)^2, (-0.5)^2) + mean((-0.5)^2, (2.5)^2) = 0.25 + 3.25 = 3.5
    # accuracy: reference > 0: 2 of 2, policy < 0: 1 of 2 -> 3/4 ; mean D: reference 1.0, policy 0.0
    # gradient penalty: lambda * |w|^2 = 3 * (1 + 4) = 15 (dD/dn = w whatever the normalisation)
    ppo_batch = Batch(
        observations=torch.randn(4, 3),
        critic_observations=torch.randn(4, 3),
        actions=torch.randn(4, 1),
        values=torch.zeros(4, 1),
        advantages=torch.randn(4, 1),
        returns=torch.randn(4, 1),
        old_actions_log_prob=torch.randn(4, 1),
        old_mu=torch.zeros(4, 1),
        old_sigma=torch.ones(4, 1),
    )
    batch = AmpBatch(ppo_batch, raw(2, -1), raw(2, -1), raw(1, 0), raw(0, 0))
    losses, metrics = alg.compute_losses(batch)
    ppo_losses, _ = PPO.compute_losses(alg, ppo_batch)
    assert set(losses) == set(alg.loss_coefs) == {*ppo_losses, "discriminator", "gradient_penalty"}
    for name, value in ppo_losses.items():
        torch.testing.assert_close(losses[name], value)
    assert losses["discriminator"].item() == pytest.approx(3.5, rel=1e-6)
    assert losses["gradient_penalty"].item() == pytest.approx(15.0, rel=1e-6)
    assert metrics["discriminator_accuracy"].item() == pytest.approx(0.75)
    assert metrics["reference_d"].item() == pytest.approx(1.0, abs=1e-6)
    assert metrics["policy_d"].item() == pytest.approx(0.0, abs=1e-6)
    # only the discriminator gets a gradient from the AMP losses
    policy.zero_grad()
    (losses["discriminator"] + losses["gradient_penalty"]).backward()
    assert policy.discriminator.linear.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in policy.actor.parameters())


def test_amp_storage_mini_batches_cover_the_rollout_each_epoch():
    storage = AmpRolloutStorage(num_envs=3, num_transitions_per_env=4, amp_obs_dim=2)
    for t in range(4):
        states = torch.arange(3.0).unsqueeze(-1).expand(3, 2) + 10 * t  # unique per (t, env)
        storage.add(states, states + 0.5)
    with pytest.raises(OverflowError, match="AMP rollout storage is full"):
        storage.add(torch.zeros(3, 2), torch.zeros(3, 2))
    batches = list(storage.mini_batch_generator(num_mini_batches=2, num_epochs=3))
    assert len(batches) == 6 and all(s.shape == n.shape == (6, 2) for s, n in batches)
    for epoch in range(3):
        seen = torch.cat([s[:, 0] for s, _ in batches[2 * epoch : 2 * epoch + 2]])
        assert sorted(seen.tolist()) == sorted(storage.states[..., 0].flatten().tolist())
    assert all(torch.equal(n, s + 0.5) for s, n in batches)  # pairs stay pairs
    storage.clear()
    with pytest.raises(ValueError, match=r"AMP states of shape \(2, 2\), expected .* \(3, 2\)"):
        storage.add(torch.zeros(2, 2), torch.zeros(2, 2))


# --- environment contract ----------------------------------------------------------------------------------------
def test_amp_transition_takes_final_obs_at_a_reset_and_the_reset_obs_next():
    alg = APPO(_segments_policy())
    alg.init_storage(2, 4, (52,), (16,), (2,))

    def infos(amp_obs, final_amp_obs):
        return {"amp_obs": torch.tensor(amp_obs), "final_amp_obs": torch.tensor(final_amp_obs)}

    # step 0: no previous amp_obs: s = s'
    s, s_next = alg.amp_transition(torch.tensor([False, False]), infos([[1.0] * 4, [2.0] * 4], [[7.0] * 4] * 2))
    torch.testing.assert_close(s_next, torch.tensor([[1.0] * 4, [2.0] * 4]))
    torch.testing.assert_close(s, s_next)
    # step 1: env 1 ends in state 2.5 and is reset to 9
    s, s_next = alg.amp_transition(torch.tensor([False, True]), infos([[1.1] * 4, [9.0] * 4], [[1.1] * 4, [2.5] * 4]))
    torch.testing.assert_close(s, torch.tensor([[1.0] * 4, [2.0] * 4]))
    torch.testing.assert_close(s_next, torch.tensor([[1.1] * 4, [2.5] * 4]))  # the final state, not the reset one
    # step 2: env 1's transition starts from the reset state
    s, s_next = alg.amp_transition(torch.tensor([False, False]), infos([[1.2] * 4, [9.1] * 4], [[0.0] * 4] * 2))
    torch.testing.assert_close(s, torch.tensor([[1.1] * 4, [9.0] * 4]))
    torch.testing.assert_close(s_next, torch.tensor([[1.2] * 4, [9.1] * 4]))


def test_rollout_on_segments_env_stores_contract_transitions_blended_rewards_and_episode_sums():
    torch.manual_seed(0)
    lerp, gamma = 0.25, 0.9
    alg = APPO(_segments_policy(task_reward_lerp=lerp), gamma=gamma)
    env = SegmentsEnv(num_envs=4, max_episode_length=4, seed=0)
    steps = 10
    alg.init_storage(env.num_envs, steps, (env.num_obs,), (env.num_privileged_obs,), (env.num_actions,))
    obs, critic_obs = env.get_observations(), env.get_privileged_observations()
    records = []
    with torch.inference_mode():
        for _ in range(steps):
            actions = alg.act(obs, critic_obs)
            obs, critic_obs, rewards, dones, infos = env.step(actions)
            env_episode = infos["episode"]
            alg.process_env_step(rewards, dones, infos)
            # the value PPO bootstraps time-outs with (the critic normaliser moves at every act)
            final_values = alg.policy.evaluate(infos["final_critic_obs"]).squeeze(-1)
            records.append((critic_obs.clone(), rewards.clone(), dones.clone(), infos, env_episode, final_values))
    storage, disc, norm = alg.amp_storage, alg.policy.discriminator, alg.policy.amp_normalizer
    assert norm.count.item() == 0  # the normaliser moves only in update()
    style_sum = torch.zeros(env.num_envs)
    task_sum = torch.zeros(env.num_envs)
    num_resets = 0
    for t, (critic_obs, rewards, dones, infos, env_episode, final_values) in enumerate(records):
        # the env follows the contract: amp_obs = (pos, vel) after the reset, final_amp_obs = before it
        torch.testing.assert_close(infos["amp_obs"], critic_obs[:, :4])
        torch.testing.assert_close(infos["final_amp_obs"], infos["final_critic_obs"][:, :4])
        done = dones.bool()
        num_resets += int(done.sum())
        # s' = final_amp_obs where done, else amp_obs; the next s = this amp_obs (the reset state where done)
        torch.testing.assert_close(storage.next_states[t][done], infos["final_amp_obs"][done])
        torch.testing.assert_close(storage.next_states[t][~done], infos["amp_obs"][~done])
        if done.any():
            assert not torch.allclose(infos["final_amp_obs"][done], infos["amp_obs"][done])
        expected_state = storage.next_states[0] if t == 0 else records[t - 1][3]["amp_obs"]
        torch.testing.assert_close(storage.states[t], expected_state)
        # reward = (1 - lerp) * style + lerp * task (+ gamma * V(final) at time-outs), style by hand
        x = torch.cat([norm.normalize(storage.states[t]), norm.normalize(storage.next_states[t])], dim=-1)
        with torch.no_grad():
            d = disc(x).squeeze(-1)
        style = torch.clamp(1 - 0.25 * (d - 1) ** 2, min=0)
        expected = (1 - lerp) * style + lerp * rewards + torch.where(infos["time_outs"], gamma * final_values, 0.0)
        torch.testing.assert_close(alg.storage.rewards[t].flatten(), expected)
        # per-episode sums, reported for the envs that ended, in a new episode dict
        style_sum += style
        task_sum += rewards
        if done.any():
            assert infos["episode"] is not env_episode and set(env_episode) == {"rew_reach"}
            assert infos["episode"]["rew_reach"] is env_episode["rew_reach"]
            assert infos["episode"]["style_reward"].item() == pytest.approx(style_sum[done].mean().item(), rel=1e-5)
            assert infos["episode"]["task_reward"].item() == pytest.approx(env_episode["rew_reach"].item(), rel=1e-5)
            style_sum[done], task_sum[done] = 0.0, 0.0
        else:
            assert "style_reward" not in infos["episode"]
    assert num_resets >= 8  # every env timed out twice


# --- training through the runner ---------------------------------------------------------------------------------
@pytest.fixture
def appo_registered(monkeypatch):
    monkeypatch.setitem(ALGORITHM_CLASSES, "APPO", APPO)


def _runner_cfg(policy_class: str, seed: int = 0) -> dict:
    extra = {"rnn_hidden_size": 16} if "Recurrent" in policy_class else {}
    return {
        "policy": {
            "class_name": policy_class,
            "actor_hidden_dims": [32],
            "critic_hidden_dims": [32],
            "obs_normalization": True,
            "amp_discriminator_kwargs": {"hidden_dims": [32, 32], "task_reward_lerp": 0.3},
            **extra,
        },
        "algorithm": {"class_name": "APPO", "num_mini_batches": 2, "num_learning_epochs": 2},
        "runner": {"num_steps_per_env": 16, "seed": seed, "print_progress": False, "save_interval": 100},
    }


@pytest.mark.parametrize("policy_class", ["AmpActorCritic", "AmpActorCriticRecurrent"])
def test_runner_trains_the_discriminator_logs_style_and_task_rewards_and_checkpoints_the_normaliser(
    appo_registered, tmp_path, policy_class
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    num_envs, steps, epochs, iterations = 8, 16, 2, 6
    runner = OnPolicyRunner(
        SegmentsEnv(num_envs=num_envs, max_episode_length=10, seed=0), _runner_cfg(policy_class), str(tmp_path)
    )
    alg = runner.alg
    assert isinstance(alg, APPO) and runner.cfg["algorithm"]["motion_files"] == []
    alg.set_reference_motion(GaussianMotion(seed=0))
    updates, rollouts = [], []
    update = alg.update

    def recording_update():
        rollouts.append((alg.amp_storage.states.clone(), alg.amp_storage.next_states.clone()))
        updates.append(update())
        return updates[-1]

    alg.update = recording_update
    disc_before = {k: v.clone() for k, v in alg.policy.discriminator.state_dict().items()}
    runner.learn(iterations)

    # Measured (seeds 0-7, both classes): mean accuracy of updates 4-6 0.94-0.99 (first update 0.38-0.90);
    # mean style reward afterwards: reference 0.92-1.0, policy 0.19-0.42 (gap >= 0.50).
    accuracy = [u["discriminator_accuracy"] for u in updates]
    assert statistics.fmean(accuracy[3:]) > 0.85, accuracy
    assert all(torch.isfinite(torch.tensor([u["discriminator"], u["gradient_penalty"]])).all() for u in updates)
    assert any(not torch.equal(v, alg.policy.discriminator.state_dict()[k]) for k, v in disc_before.items())
    # afterwards reference transitions earn a higher style reward than the policy's (its last rollout)
    norm, disc = alg.policy.amp_normalizer, alg.policy.discriminator
    ref_s, ref_next = GaussianMotion(seed=123).sample_pairs(num_envs * steps)
    pol_s, pol_next = (x.flatten(0, 1) for x in rollouts[-1])
    zeros = torch.zeros(num_envs * steps)
    _, ref_style = disc.predict_style_reward(norm.normalize(ref_s), norm.normalize(ref_next), zeros)
    _, pol_style = disc.predict_style_reward(norm.normalize(pol_s), norm.normalize(pol_next), zeros)
    assert ref_style.mean() > pol_style.mean() + 0.3, (ref_style.mean(), pol_style.mean())
    # the normaliser saw every policy and reference (s, s') once per update
    per_update = 2 * steps * num_envs + 2 * epochs * steps * num_envs
    assert norm.count.item() == iterations * per_update

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "Episode/style_reward", "Episode/task_reward", "Episode/rew_reach", "Loss/discriminator",
        "Loss/gradient_penalty", "Policy/discriminator_accuracy", "Policy/reference_d", "Policy/policy_d",
    }  # fmt: skip
    assert expected <= tags, expected - tags
    # task_reward: the env's own per-episode sums (rew_reach), unchanged by the style blend
    task = [e.value for e in events.Scalars("Episode/task_reward")]
    assert len(task) == iterations
    assert task == pytest.approx([e.value for e in events.Scalars("Episode/rew_reach")], rel=1e-5)
    style = [e.value for e in events.Scalars("Episode/style_reward")]
    assert all(0.0 <= v <= 10.0 for v in style)  # style_reward_coef 1, at most 10 steps per episode
    assert [e.value for e in events.Scalars("Policy/discriminator_accuracy")] == pytest.approx(accuracy)

    # the normaliser statistics travel with the checkpoint
    resumed = OnPolicyRunner(SegmentsEnv(num_envs=num_envs, seed=1), _runner_cfg(policy_class, seed=3), None)
    assert resumed.alg.policy.amp_normalizer.count.item() == 0
    resumed.load(str(tmp_path / f"model_{iterations}.pt"))
    for name, value in norm.state_dict().items():
        torch.testing.assert_close(resumed.alg.policy.amp_normalizer.state_dict()[name], value, msg=name)


# --- reference motion and errors ---------------------------------------------------------------------------------
def test_motion_files_build_a_motion_loader_on_first_use(monkeypatch):
    import st_rl.datasets.motion_loader  # noqa: F401  (the module APPO imports the loader from)

    built = []

    class FakeLoader(GaussianMotion):
        def __init__(self, paths, amp_obs_segments, joint_names, dt, device):
            super().__init__()
            built.append((paths, amp_obs_segments, joint_names, dt, device))

    monkeypatch.setattr(sys.modules["st_rl.datasets.motion_loader"], "MotionLoader", FakeLoader)
    policy = _segments_policy()
    alg = APPO(policy, motion_files=["a.npz"], motion_joint_names=["j0", "j1"], motion_dt=0.05)
    assert built == []  # lazily
    source = alg.reference_motion
    assert isinstance(source, FakeLoader) and alg.reference_motion is source
    assert built == [(["a.npz"], policy.amp_obs_segments, ["j0", "j1"], 0.05, torch.device("cpu"))]
    alg.set_reference_motion(GaussianMotion())  # an injected source replaces it
    assert not isinstance(alg.reference_motion, FakeLoader)
    with pytest.raises(ValueError, match=r"motion_files \['a.npz'\] need algorithm.motion_joint_names"):
        _ = APPO(_segments_policy(), motion_files=["a.npz"]).reference_motion


def test_errors_name_the_problem(appo_registered):
    plain = ActorCritic(4, 4, 2, actor_hidden_dims=[8], critic_hidden_dims=[8])
    with pytest.raises(
        ValueError, match=r"APPO needs an AMP policy .*AmpActorCritic, AmpActorCriticRecurrent.*got ActorCritic"
    ):
        APPO(plain)
    with pytest.raises(ValueError, match=r"amp_obs_dim=5 does not match the policy's AMP observation size 4"):
        APPO(_segments_policy(), amp_obs_dim=5)
    assert APPO(_segments_policy(), amp_obs_dim=4).num_amp_obs == 4
    with pytest.raises(ValueError, match=r"discriminator_grad_pen_coef=-1.0 must be >= 0"):
        APPO(_segments_policy(), discriminator_grad_pen_coef=-1.0)
    with pytest.raises(
        ConfigError, match=r"'algorithm.discriminator_los_coef'.*did you mean 'discriminator_loss_coef'"
    ):
        resolve_train_cfg({"algorithm": {"class_name": "APPO", "discriminator_los_coef": 1.0}})

    alg = APPO(_segments_policy())
    alg.init_storage(2, 4, (52,), (16,), (2,))
    with pytest.raises(ValueError, match=r"APPO needs infos\['amp_obs'\] and infos\['final_amp_obs'\].*missing"):
        alg.process_env_step(torch.zeros(2), torch.zeros(2, dtype=torch.bool), {"time_outs": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"infos\['final_amp_obs'\] has shape \(2, 3\), expected .* \(2, 4\)"):
        alg.amp_transition(
            torch.zeros(2, dtype=torch.bool), {"amp_obs": torch.zeros(2, 4), "final_amp_obs": torch.zeros(2, 3)}
        )
    with pytest.raises(ValueError, match=r"APPO has no reference motion: set algorithm.motion_files or call"):
        _ = alg.reference_motion
    with pytest.raises(ValueError, match=r"reference motion source list has no sample_pairs"):
        alg.set_reference_motion([])

    class WrongWidth:
        def sample_pairs(self, batch_size):
            return torch.zeros(batch_size, 3), torch.zeros(batch_size, 3)

    alg.set_reference_motion(WrongWidth())
    with pytest.raises(ValueError, match=r"sample_pairs\(8\) gave s of shape \(8, 3\), expected .* \(8, 4\)"):
        alg._sample_reference(8)
