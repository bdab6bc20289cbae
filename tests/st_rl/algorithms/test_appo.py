import copy
import statistics
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from st_rl.algorithms import ALGORITHM_CLASSES
from st_rl.algorithms.appo import APPO, AmpBatch
from st_rl.algorithms.ppo import PPO
from st_rl.modules import ActorCritic
from st_rl.modules.amp_discriminator import AmpActorCritic, AmpActorCriticRecurrent
from st_rl.runners import OnPolicyRunner
from st_rl.runners.config import resolve_train_cfg
from st_rl.storage.amp_storage import AmpReplayBuffer, AmpRolloutStorage
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
        else:  # no env ended: the means are NaN, which the logs skip
            assert torch.isnan(infos["episode"]["style_reward"]) and torch.isnan(infos["episode"]["task_reward"])
    assert num_resets >= 8  # every env timed out twice


# --- optimisation: the discriminator's own optimiser, clip and replay ---------------------------------------------
DISCRIMINATOR_KEYS = {
    "discriminator_learning_rate": 1e-3,
    "discriminator_weight_decay": 1e-4,
    "discriminator_logit_weight_decay": 1e-2,
    "discriminator_max_grad_norm": 1.0,
    "discriminator_replay_size": 0,
}


def _collect(alg, env: SegmentsEnv, steps: int, amp_tag: float | None = None) -> None:
    """One rollout of ``steps`` env steps into ``alg``'s storage (as the runner collects), returns computed.
    ``amp_tag``: every ``infos["amp_obs"]`` / ``["final_amp_obs"]`` replaced by this constant (to trace them)."""
    obs, critic_obs = env.get_observations(), env.get_privileged_observations()
    with torch.inference_mode():
        for _ in range(steps):
            actions = alg.act(obs, critic_obs)
            obs, critic_obs, rewards, dones, infos = env.step(actions)
            if amp_tag is not None:
                infos["amp_obs"] = torch.full_like(infos["amp_obs"], amp_tag)
                infos["final_amp_obs"] = torch.full_like(infos["final_amp_obs"], amp_tag)
            alg.process_env_step(rewards, dones, infos)
        alg.compute_returns(critic_obs)


def _appo_with_rollout(num_envs: int = 4, steps: int = 16, **kwargs) -> APPO:
    torch.manual_seed(0)
    env = SegmentsEnv(num_envs=num_envs, max_episode_length=10, seed=0)
    alg = APPO(_segments_policy(), **kwargs)
    alg.set_reference_motion(GaussianMotion(seed=0))
    alg.init_storage(env.num_envs, steps, (env.num_obs,), (env.num_privileged_obs,), (env.num_actions,))
    _collect(alg, env, steps)
    return alg


def _actor_critic_state(policy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.named_parameters() if not k.startswith("discriminator.")}


def _discriminator_state(policy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.discriminator.named_parameters()}


def _max_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    return max((after[k] - v).abs().max().item() for k, v in before.items())


def test_actor_critic_update_equals_plain_ppo_whatever_the_discriminator_gradient():
    # A huge gradient penalty makes the discriminator's gradient norm > 1e4. Clipped jointly with it (the old
    # single optimiser) the PPO gradient was scaled down towards Adam's eps: measured max |APPO - PPO| 5.0e-3 on
    # the actor-critic, for a largest PPO step of 9.4e-3 (1.2e-3 even at the default coefficient 10). With its own
    # optimiser and clip, the actor-critic update is plain PPO's (measured: equal). One epoch: the AMP mini-batch
    # shuffle draws from the global RNG after PPO's, so PPO's permutation is the same as plain PPO's.
    kwargs = {"num_learning_epochs": 1, "num_mini_batches": 4, "learning_rate": 1e-3, "max_grad_norm": 1.0}
    alg = _appo_with_rollout(discriminator_grad_pen_coef=1e6, **kwargs)
    ppo = PPO(copy.deepcopy(alg.policy), **kwargs)  # the same weights and normaliser statistics
    ppo.storage = copy.deepcopy(alg.storage)  # the same rollout (blended rewards, returns)
    ac_before, disc_before = _actor_critic_state(alg.policy), _discriminator_state(alg.policy)
    torch.manual_seed(1)
    appo_means = alg.update()
    torch.manual_seed(1)
    ppo_means = ppo.update()
    appo_state, ppo_state = _actor_critic_state(alg.policy), _actor_critic_state(ppo.policy)
    for name, value in ppo_state.items():
        torch.testing.assert_close(appo_state[name], value, rtol=0.0, atol=1e-6, msg=name)
    assert appo_means["learning_rate"] == ppo_means["learning_rate"]
    assert ppo_means["surrogate"] == pytest.approx(appo_means["surrogate"], abs=1e-6)
    # not vacuous: the actor-critic moved, the discriminator's gradient was huge, and it stepped too
    assert _max_change(ac_before, ppo_state) > 1e-4
    assert appo_means["discriminator_grad_norm"] > 1e4
    assert _max_change(disc_before, _discriminator_state(alg.policy)) > 1e-4


def test_discriminator_has_its_own_optimiser_learning_rate_and_weight_decay():
    # PPO's optimiser owns exactly the non-discriminator parameters; the discriminator's Adam the rest.
    alg = APPO(_segments_policy(), discriminator_learning_rate=3e-4, discriminator_weight_decay=2e-4)
    disc = {id(p) for p in alg.policy.discriminator.parameters()}
    ppo_owned = [id(p) for group in alg.optimizer.param_groups for p in group["params"]]
    disc_owned = [id(p) for group in alg.discriminator_optimizer.param_groups for p in group["params"]]
    assert set(ppo_owned).isdisjoint(disc) and set(disc_owned) == disc and len(disc_owned) == len(disc)
    assert set(ppo_owned) | disc == {id(p) for p in alg.policy.parameters()}
    assert alg.extra_optimizers() == {"discriminator": alg.discriminator_optimizer}
    assert PPO(_segments_policy()).extra_optimizers() == {}
    assert [(g["lr"], g["weight_decay"]) for g in alg.discriminator_optimizer.param_groups] == [
        (3e-4, 2e-4),  # trunk
        (3e-4, 1e-2),  # output layer
    ]

    # lr 0: the discriminator stays put while the actor-critic moves; the adaptive-KL schedule (a tiny
    # desired_kl shrinks PPO's learning rate at every mini-batch) leaves the discriminator's learning rate alone
    # (one shared optimiser, or a schedule over every group, would have moved both)
    alg = _appo_with_rollout(discriminator_learning_rate=0.0, desired_kl=1e-8, learning_rate=1e-3)
    ac_before, disc_before = _actor_critic_state(alg.policy), _discriminator_state(alg.policy)
    means = alg.update()
    assert means["learning_rate"] == 1e-5  # shrunk at every mini-batch down to the schedule's floor
    assert [g["lr"] for g in alg.optimizer.param_groups] == [means["learning_rate"]]
    assert [g["lr"] for g in alg.discriminator_optimizer.param_groups] == [0.0, 0.0]
    assert means["discriminator_grad_norm"] > 0  # it had a gradient, just no step
    assert _max_change(disc_before, _discriminator_state(alg.policy)) == 0.0
    assert _max_change(ac_before, _actor_critic_state(alg.policy)) > 1e-5

    # a fixed discriminator learning rate, whatever PPO's does
    alg = _appo_with_rollout(discriminator_learning_rate=2e-4, desired_kl=1e-8)
    alg.update()
    assert alg.learning_rate == 1e-5
    assert [g["lr"] for g in alg.discriminator_optimizer.param_groups] == [2e-4, 2e-4]

    # weight decay per group: with no loss gradient (coefficient 0) only the L2 term moves a parameter, so only
    # the output layer (decay 1e-2) moves, the trunk (decay 0) does not
    alg = _appo_with_rollout(
        discriminator_loss_coef=0.0, discriminator_weight_decay=0.0, discriminator_logit_weight_decay=1e-2
    )
    disc_before = _discriminator_state(alg.policy)
    alg.update()
    disc_after = _discriminator_state(alg.policy)
    trunk = {k: v for k, v in disc_before.items() if k.startswith("trunk.")}
    assert trunk and _max_change(trunk, disc_after) == 0.0
    weight = "linear.weight"
    assert disc_after[weight].abs().sum() < disc_before[weight].abs().sum()  # decayed towards 0


def test_discriminator_clip_is_its_own_and_bounds_its_update():
    # PPO's clip effectively off (1e9), the discriminator's 1e-3: after the update the discriminator's gradient
    # (clipped in place) has norm 1e-3 while the actor-critic's is untouched by that clip
    alg = _appo_with_rollout(
        num_learning_epochs=1, num_mini_batches=1, max_grad_norm=1e9, discriminator_max_grad_norm=1e-3
    )
    means = alg.update()
    disc_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in alg.policy.discriminator.parameters()]))
    ac_params = alg.ppo_parameters()
    ac_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ac_params if p.grad is not None]))
    assert disc_norm.item() == pytest.approx(1e-3, rel=1e-3)
    assert means["discriminator_grad_norm"] > 0.1  # what it was before its clip
    assert ac_norm.item() > 0.1

    # with Adam (eps 1e-8) a gradient clipped to 1e-12 hardly moves a parameter, an unclipped one moves it by ~lr
    def disc_change(max_grad_norm: float) -> float:
        alg = _appo_with_rollout(
            discriminator_max_grad_norm=max_grad_norm,
            discriminator_weight_decay=0.0,
            discriminator_logit_weight_decay=0.0,
        )
        before = _discriminator_state(alg.policy)
        alg.update()
        return _max_change(before, _discriminator_state(alg.policy))

    unclipped, clipped = disc_change(float("inf")), disc_change(1e-12)
    assert unclipped > 1e-3  # 20 Adam steps at lr 1e-3
    assert clipped < 1e-3 * unclipped


def test_replay_buffer_mixes_past_policy_transitions_into_the_policy_side():
    buffer = AmpReplayBuffer(capacity=5, amp_obs_dim=1)
    buffer.insert(torch.arange(3.0).unsqueeze(-1), torch.arange(3.0).unsqueeze(-1) + 0.5)
    assert buffer.size == 3 and buffer.states[:3, 0].tolist() == [0.0, 1.0, 2.0]
    buffer.insert(torch.arange(3.0, 10.0).unsqueeze(-1), torch.arange(3.0, 10.0).unsqueeze(-1) + 0.5)
    assert buffer.size == 5 and sorted(buffer.states[:, 0].tolist()) == [5.0, 6.0, 7.0, 8.0, 9.0]  # the newest 5
    states, next_states = buffer.sample(100)
    assert set(states[:, 0].tolist()) <= {5.0, 6.0, 7.0, 8.0, 9.0} and torch.equal(next_states, states + 0.5)

    # rollouts of 4 envs x 8 steps whose AMP observations are tagged with the rollout number k (s' = k)
    def policy_side_tags(replay_size: int) -> list[list[torch.Tensor]]:
        torch.manual_seed(0)
        env = SegmentsEnv(num_envs=4, max_episode_length=10, seed=0)
        alg = APPO(_segments_policy(), num_mini_batches=2, num_learning_epochs=2, discriminator_replay_size=replay_size)
        alg.set_reference_motion(GaussianMotion(seed=0))
        alg.init_storage(env.num_envs, 8, (env.num_obs,), (env.num_privileged_obs,), (env.num_actions,))
        seen: list[list[torch.Tensor]] = []
        compute_losses = alg.compute_losses

        def recording(batch):
            seen[-1].append(batch.policy_next_state[:, 0].clone())
            return compute_losses(batch)

        alg.compute_losses = recording
        for k in range(1, 5):
            _collect(alg, env, 8, amp_tag=float(k))
            seen.append([])
            alg.update()
        # replayed transitions are not counted again by the normaliser: 2 (s, s') x 32 + 2 x 4 x 16 reference
        assert alg.policy.amp_normalizer.count.item() == 4 * (2 * 32 + 2 * 4 * 16)
        return seen

    # capacity 64: the last two rollouts. Mini-batch B = 32 / 2 = 16 current transitions, then 16 replayed.
    seen = policy_side_tags(64)
    assert [len(update) for update in seen] == [4] * 4
    assert all(b.shape == (16,) and set(b.tolist()) == {1.0} for b in seen[0])  # nothing to replay yet
    for k, update in enumerate(seen[1:], start=2):
        assert all(b.shape == (32,) and set(b[:16].tolist()) == {float(k)} for b in update)
        replayed = set(torch.cat([b[16:] for b in update]).tolist())
        assert replayed == {float(k - 1), float(k - 2)} - {0.0}  # 64 draws: both past rollouts, never older
    # off: only the current rollout
    assert all(
        set(b.tolist()) == {float(k)} and b.shape == (16,) for k, u in enumerate(policy_side_tags(0), 1) for b in u
    )


class ConstantMotion:
    """Every reference transition is the same ``(s, s')``: ranks sampling half a batch each see what one process
    sampling the whole batch does."""

    def sample_pairs(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        state = torch.tensor([[0.5, 0.5, 1.0, -1.0]]).repeat(batch_size, 1)
        return state, state + torch.tensor([0.1, -0.1, 0.0, 0.0])


DIST_T, DIST_N = 6, 4


def _dist_appo_update(dist, envs: slice) -> dict[str, np.ndarray]:
    """APPO update (2 epochs of one mini-batch) on envs ``envs`` of a fixed rollout; the policy's state after it."""
    gen = torch.Generator().manual_seed(0)
    T, N = DIST_T, DIST_N
    dones = torch.rand(T, N, generator=gen) < 0.3
    data = {
        "obs": torch.randn(T + 1, N, 52, generator=gen),
        "critic_obs": torch.randn(T + 1, N, 16, generator=gen),
        "final_critic_obs": torch.randn(T, N, 16, generator=gen),
        "actions": torch.randn(T, N, 2, generator=gen),
        "rewards": torch.randn(T, N, generator=gen),
        "amp_obs": torch.randn(T, N, 4, generator=gen),
        "final_amp_obs": torch.randn(T, N, 4, generator=gen),
        "dones": dones,
        "time_outs": dones & (torch.rand(T, N, generator=gen) < 0.5),
    }
    torch.manual_seed(0)  # the same initial weights on every rank
    alg = APPO(_segments_policy(), num_learning_epochs=2, num_mini_batches=1, dist=dist)
    alg.set_reference_motion(ConstantMotion())
    alg.init_storage(envs.stop - envs.start, T, (52,), (16,), (2,))
    with torch.inference_mode():
        for t in range(T):
            alg.act(data["obs"][t, envs], data["critic_obs"][t, envs])
            actions = data["actions"][t, envs]  # fixed actions: the same samples whatever each rank's RNG
            alg.transition.actions = actions
            alg.transition.actions_log_prob = alg.policy.get_actions_log_prob(actions)
            infos = {key: data[key][t, envs] for key in ("time_outs", "final_critic_obs", "amp_obs", "final_amp_obs")}
            alg.process_env_step(data["rewards"][t, envs], data["dones"][t, envs], infos)
        alg.compute_returns(data["critic_obs"][T, envs])
    alg.update()
    return {name: t.detach().numpy().copy() for name, t in alg.policy.state_dict().items()}


def _dist_appo_rank(ctx) -> dict[str, np.ndarray]:
    half = DIST_N // ctx.world_size
    return _dist_appo_update(ctx, slice(ctx.rank * half, (ctx.rank + 1) * half))


@pytest.mark.timeout(180)
def test_two_ranks_average_the_discriminator_gradient_as_one_process_on_the_union():
    # The discriminator's gradient rides PPO's all-reduce: two ranks with half the envs each end where one
    # process with all of them does (without the averaging each rank's discriminator would fit its own half).
    from tests.st_rl.distributed.spawn import run_ranks

    ranks = run_ranks(_dist_appo_rank, timeout=150)
    single = _dist_appo_update(None, slice(0, DIST_N))
    torch.manual_seed(0)
    initial = _segments_policy().discriminator.state_dict()
    assert max(np.abs(single[f"discriminator.{k}"] - v.numpy()).max() for k, v in initial.items()) > 1e-3
    for rank, state in enumerate(ranks):
        for name, value in single.items():  # actor-critic, discriminator, normalisers
            np.testing.assert_allclose(state[name], value, rtol=1e-4, atol=1e-6, err_msg=f"rank {rank} {name}")


def test_discriminator_keys_are_recorded_in_the_config_and_validated():
    resolved = resolve_train_cfg({"algorithm": {"class_name": "APPO"}})["algorithm"]
    assert {key: resolved[key] for key in DISCRIMINATOR_KEYS} == DISCRIMINATOR_KEYS
    for key in DISCRIMINATOR_KEYS:
        if key == "discriminator_max_grad_norm":
            continue
        value = -1 if key == "discriminator_replay_size" else -1.0
        with pytest.raises(ValueError, match=rf"^algorithm\.{key}={value} must be >= 0$"):
            APPO(_segments_policy(), **{key: value})
    for value in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"^algorithm\.discriminator_max_grad_norm={value} must be > 0$"):
            APPO(_segments_policy(), discriminator_max_grad_norm=value)


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
        # the discriminator must learn in 6 iterations: at the default 1e-3, mean accuracy of updates 4-6 0.55-0.99
        "algorithm": {
            "class_name": "APPO",
            "num_mini_batches": 2,
            "num_learning_epochs": 2,
            "discriminator_learning_rate": 1e-2,
        },
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

    # Measured (seeds 0-7, both classes): mean accuracy of updates 4-6 0.90-0.97 (first update 0.59-0.95);
    # mean style reward afterwards: reference 0.93-0.99, policy 0.21-0.47 (gap >= 0.51).
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


class GlobalRngMotion(GaussianMotion):
    """GaussianMotion drawing from torch's global RNG, as MotionLoader does (so a checkpoint's RNG state covers it)."""

    def sample_pairs(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.generator = None
        return super().sample_pairs(batch_size)


def test_runner_resume_is_exact_with_the_discriminator_optimiser_and_amp_rollout_state(appo_registered, tmp_path):
    # 2 + 2 iterations with a checkpoint at 2 == 2, save, resume for 2: the discriminator's own optimiser, the
    # previous AMP observation and the running style/task sums travel with the checkpoint.
    cfg = _runner_cfg("AmpActorCriticRecurrent")
    cfg["runner"]["save_interval"] = 2

    def runner(log_dir: str | None) -> OnPolicyRunner:
        r = OnPolicyRunner(SegmentsEnv(num_envs=8, max_episode_length=10, seed=0), cfg, log_dir)
        r.alg.set_reference_motion(GlobalRngMotion())
        return r

    straight = runner(str(tmp_path))
    straight.learn(4)
    resumed = runner(None)
    resumed.load(str(tmp_path / "model_2.pt"))
    assert resumed.alg._amp_state is not None and resumed.alg._style_reward_sum.abs().sum() > 0
    resumed.learn(2)
    expected = straight.alg.policy.state_dict()
    for name, value in resumed.alg.policy.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-6, msg=name)
    disc_state = resumed.alg.extra_optimizers()["discriminator"].state_dict()["state"]
    for key, value in straight.alg.extra_optimizers()["discriminator"].state_dict()["state"].items():
        torch.testing.assert_close(disc_state[key]["exp_avg"], value["exp_avg"], rtol=0, atol=1e-6)


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
