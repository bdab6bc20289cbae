import math

import pytest
import torch

from st_rl.algorithms.estimator import EstimatorPPO, estimation_loss, segment_target
from st_rl.modules.actor_critic import ActorCritic
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.state_adaptor import PrivilegeEstimatorMixin, PrivilegeStateAc, PrivilegeStateAcRecurrent
from st_rl.modules.state_estimator import EstimatorMixin, StateAc, StateAcRecurrent
from st_rl.utils.export import export_max_abs_diff
from tests.st_rl.rollouts import collect_rollout
from tests.st_rl.velocity_env import SEGMENTS, VelocityEnv

NUM_OBS = 11


class StatePrivilegeAcRecurrent(EstimatorMixin, PrivilegeEstimatorMixin, ActorCriticRecurrent):
    """Both stages: the estimator first, then the adaptor, then the memory."""


ESTIMATOR = {"estimator_target_components": ["base_lin_vel"], "estimator_kwargs": {"hidden_sizes": [16]}}
ADAPTOR = {
    "adaptor_target_components": ["friction"],
    "adaptor_kwargs": {"rnn_type": "gru", "rnn_hidden_size": 8, "hidden_sizes": [8]},
}
CASES = {
    "StateAc": (StateAc, ESTIMATOR),
    "StateAcRecurrent": (StateAcRecurrent, ESTIMATOR),
    "StateAcRecurrent-actor_rnn": (StateAcRecurrent, {**ESTIMATOR, "use_actor_rnn": True, "replace_state_prob": 0.0}),
    "PrivilegeStateAcRecurrent": (PrivilegeStateAcRecurrent, ADAPTOR),
    "PrivilegeStateAc": (PrivilegeStateAc, {**ADAPTOR, "adaptor_kwargs": {"hidden_sizes": [8]}}),
    "both": (StatePrivilegeAcRecurrent, {**ESTIMATOR, **ADAPTOR, "replace_state_prob": 0.5}),
}


def _policy(name: str, obs_normalization: bool = True):
    cls, kwargs = CASES[name]
    if cls.is_recurrent:
        kwargs = {**kwargs, "rnn_hidden_size": 8}
    return cls(
        NUM_OBS,
        NUM_OBS,
        2,
        actor_hidden_dims=[16],
        critic_hidden_dims=[16],
        obs_normalization=obs_normalization,
        obs_segments=SEGMENTS,
        privileged_obs_segments=SEGMENTS,
        **kwargs,
    )


def _train(alg: EstimatorPPO, iterations: int = 2, num_steps: int = 8) -> list[dict[str, float]]:
    """Collect rollouts on the velocity env and update ``iterations`` times."""
    env = VelocityEnv(num_envs=8, max_episode_length=6)
    alg.init_storage(env.num_envs, num_steps, (env.num_obs,), (env.num_privileged_obs,), (env.num_actions,))
    obs, critic_obs = env.reset()
    infos = []
    for _ in range(iterations):
        with torch.inference_mode():
            for _ in range(num_steps):
                actions = alg.act(obs, critic_obs)
                obs, critic_obs, rewards, dones, extras = env.step(actions)
                alg.process_env_step(rewards, dones, extras)
            alg.compute_returns(critic_obs)
        infos.append(alg.update())
    return infos


def test_estimation_loss_and_target_by_hand():
    # estimate [[1, 2], [3, 5]], target [[1, 0], [4, 5]]: errors [0, 2, -1, 0] -> MSE 5/4, MAE 3/4
    loss, metrics = estimation_loss(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[1.0, 0.0], [4.0, 5.0]]))
    assert loss.item() == pytest.approx(1.25) and metrics["error"].item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"estimate shape \(2, 1\) does not match target shape \(2, 2\)"):
        estimation_loss(torch.zeros(2, 1), torch.zeros(2, 2))
    critic_obs = torch.arange(2 * 3 * NUM_OBS, dtype=torch.float).view(2, 3, NUM_OBS)  # padded (T=2, 3 traj)
    masks = torch.tensor([[True, True, True], [False, False, True]])  # env 0: two 1-step trajectories, env 1: one
    target = segment_target(critic_obs, SEGMENTS, ["base_lin_vel", "friction"], masks)
    assert target.shape == (2, 2, 3)
    torch.testing.assert_close(target[:, 0], critic_obs[[0, 0], [0, 1], 8:11])  # env 0: traj 0 then traj 1
    torch.testing.assert_close(target[:, 1], critic_obs[:, 2, 8:11])


def test_policy_without_estimator_is_rejected():
    policy = ActorCritic(NUM_OBS, NUM_OBS, 2, actor_hidden_dims=[4], critic_hidden_dims=[4])
    with pytest.raises(
        ValueError, match=r"EstimatorPPO needs a policy with a state estimator.*ActorCritic has neither"
    ):
        EstimatorPPO(policy)


@pytest.mark.parametrize("name", list(CASES))
def test_updates_train_the_estimation_stages(name):
    torch.manual_seed(0)
    policy = _policy(name)
    alg = EstimatorPPO(policy, num_learning_epochs=2, num_mini_batches=2, estimator_loss_coef=2.0)
    expected = {"estimator"} if isinstance(policy, EstimatorMixin) else set()
    expected |= {"adaptor"} if isinstance(policy, PrivilegeEstimatorMixin) else set()
    assert set(alg.loss_coefs) - {"surrogate", "value_function", "entropy"} == expected
    assert alg.loss_coefs.get("estimator", 2.0) == 2.0
    stages = [m for m in ("estimator", "adaptor", "adaptor_memory") if getattr(policy, m, None) is not None]
    before = {n: p.detach().clone() for n, p in policy.named_parameters() if n.split(".")[0] in stages}
    assert before
    infos = _train(alg)
    for key in expected | {f"{k}_error" for k in expected}:
        assert all(math.isfinite(info[key]) for info in infos), key
    for n, p in policy.named_parameters():
        if n in before:
            assert not torch.equal(p, before[n]), f"{n} did not change"
    assert export_max_abs_diff(policy, torch.jit.script(policy.export_module()), NUM_OBS) < 1e-5


@pytest.mark.parametrize("name", ["StateAc", "StateAcRecurrent-actor_rnn", "both"])
def test_loss_is_the_error_of_the_batch_estimate(name):
    """The recorded estimate the loss uses is the policy's estimate for the batch, compared with its own target."""
    torch.manual_seed(0)
    policy = _policy(name)
    alg = EstimatorPPO(policy, num_learning_epochs=1, num_mini_batches=1)
    _train(alg, iterations=1)  # fills the normaliser; then collect one more rollout without updating
    env = VelocityEnv(num_envs=8, max_episode_length=6, seed=1)
    obs, critic_obs = env.reset()
    with torch.inference_mode():
        for _ in range(8):
            obs, critic_obs, rewards, dones, extras = env.step(alg.act(obs, critic_obs))
            alg.process_env_step(rewards, dones, extras)
        alg.compute_returns(critic_obs)
    generator = alg.storage.recurrent_mini_batch_generator if policy.is_recurrent else alg.storage.mini_batch_generator
    batch = next(generator(1, 1))
    policy.eval()  # no random substitution: both passes see the same actor input
    losses, metrics = alg.compute_losses(batch)
    with torch.no_grad():
        if isinstance(policy, EstimatorMixin):
            estimate = policy.estimate_state(batch.observations, batch.masks, batch.hidden_states)
            target = segment_target(batch.critic_observations, SEGMENTS, ["base_lin_vel"], batch.masks)
            assert losses["estimator"].item() == pytest.approx((estimate - target).pow(2).mean().item(), rel=1e-5)
            assert metrics["estimator_error"].item() == pytest.approx((estimate - target).abs().mean().item(), rel=1e-5)
        if isinstance(policy, PrivilegeEstimatorMixin):
            estimate = policy.estimate_privilege(batch.observations, batch.masks, batch.hidden_states)
            target = segment_target(batch.critic_observations, SEGMENTS, ["friction"], batch.masks)
            assert losses["adaptor"].item() == pytest.approx((estimate - target).pow(2).mean().item(), rel=1e-5)


def _first_batch_log_ratio(alg: EstimatorPPO) -> tuple[torch.Tensor, float]:
    """``log pi(a|s) - log pi_old(a|s)`` of every sample of the first mini-batch of one collected rollout (before
    any optimiser step), and the fraction of steps whose stored stage choice was to substitute."""
    env = VelocityEnv(num_envs=8, max_episode_length=6)
    alg.init_storage(env.num_envs, 8, (env.num_obs,), (env.num_privileged_obs,), (env.num_actions,))
    collect_rollout(alg, env, 8)
    substituted = [mask.float().mean().item() for mask in alg.storage.substitution_masks.values()]
    batch = next(iter(alg._mini_batches()))
    alg.compute_losses(batch)
    log_prob = alg.policy.get_actions_log_prob(batch.actions)
    return (log_prob - batch.old_actions_log_prob.squeeze(-1)).detach(), min(substituted, default=0.0)


SUBSTITUTING = ["StateAc", "StateAcRecurrent", "PrivilegeStateAc", "PrivilegeStateAcRecurrent", "both"]


@pytest.mark.parametrize("name", SUBSTITUTING)
def test_substitution_choices_of_the_rollout_are_reused_by_the_update(name):
    # replace probability 0.5: each step's choice is drawn once, stored, and replayed, so before any step the
    # update's log-probabilities equal the rollout's (ratio exactly 1; a fresh draw gave mean |ratio - 1| ~ 0.1).
    # Without observation normalisation: its statistics move during the rollout, which changes the ratio too.
    torch.manual_seed(0)
    policy = _policy(name, obs_normalization=False)
    policy.replace_state_prob = 0.5 if isinstance(policy, EstimatorMixin) else None
    if isinstance(policy, PrivilegeEstimatorMixin):
        policy.privilege_replace_state_prob = 0.5
    alg = EstimatorPPO(policy, num_learning_epochs=1, num_mini_batches=2)
    log_ratio, substituted = _first_batch_log_ratio(alg)
    assert 0.25 < substituted < 0.75  # both choices occur
    assert log_ratio.abs().max().item() < 1e-5
