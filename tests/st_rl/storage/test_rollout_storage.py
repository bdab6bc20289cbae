import math

import torch

from st_rl.storage.rollout_storage import RolloutStorage, Transition


def _fill(storage: RolloutStorage, rewards, values, dones) -> None:
    for r, v, d in zip(rewards, values, dones):
        t = Transition(
            observations=torch.zeros(1, 2),
            actions=torch.zeros(1, 1),
            rewards=torch.tensor([r]),
            dones=torch.tensor([d]),
            values=torch.tensor([[v]]),
            actions_log_prob=torch.zeros(1),
            action_mean=torch.zeros(1, 1),
            action_sigma=torch.ones(1, 1),
        )
        storage.add_transitions(t)


def test_gae_hand_worked_example():
    # T=3, N=1, gamma=0.5, lam=0.5, episode ends at t=1, V(s_3)=2.0
    #   r = [1, 2, 3], V = [0.5, 1.0, 1.5], d = [0, 1, 0]
    # t=2: delta = 3 + 0.5*2.0*1 - 1.5 = 2.5          A_2 = 2.5
    # t=1: delta = 2 + 0.5*1.5*0 - 1.0 = 1.0          A_1 = 1.0 + 0.25*0*A_2 = 1.0
    # t=0: delta = 1 + 0.5*1.0*1 - 0.5 = 1.0          A_0 = 1.0 + 0.25*1*A_1 = 1.25
    # returns = A + V = [1.75, 2.0, 4.0]
    storage = RolloutStorage(1, 3, (2,), None, (1,))
    _fill(storage, rewards=[1.0, 2.0, 3.0], values=[0.5, 1.0, 1.5], dones=[False, True, False])
    storage.compute_returns(torch.tensor([[2.0]]), gamma=0.5, lam=0.5)
    torch.testing.assert_close(storage.advantages.flatten(), torch.tensor([1.25, 1.0, 2.5]))
    torch.testing.assert_close(storage.returns.flatten(), torch.tensor([1.75, 2.0, 4.0]))


def test_mini_batches_cover_every_sample_once_per_epoch():
    num_envs, steps = 4, 6
    storage = RolloutStorage(num_envs, steps, (3,), (5,), (2,))
    for t in range(steps):
        obs = torch.arange(num_envs).float().unsqueeze(-1).expand(num_envs, 3) + 100 * t
        storage.add_transitions(
            Transition(
                observations=obs,
                critic_observations=torch.zeros(num_envs, 5),
                actions=torch.zeros(num_envs, 2),
                rewards=torch.ones(num_envs),
                dones=torch.zeros(num_envs, dtype=torch.bool),
                values=torch.zeros(num_envs, 1),
                actions_log_prob=torch.zeros(num_envs),
                action_mean=torch.zeros(num_envs, 2),
                action_sigma=torch.ones(num_envs, 2),
            )
        )
    storage.compute_returns(torch.zeros(num_envs, 1), gamma=0.99, lam=0.95)
    batches = list(storage.mini_batch_generator(num_mini_batches=3, num_epochs=2))
    assert len(batches) == 6
    assert batches[0].observations.shape == (8, 3)
    assert batches[0].critic_observations.shape == (8, 5)
    assert batches[0].advantages.shape == (8, 1)
    seen = torch.cat([b.observations[:, 0] for b in batches[:3]]).sort().values
    expected = torch.tensor([100.0 * t + e for t in range(steps) for e in range(num_envs)]).sort().values
    torch.testing.assert_close(seen, expected)


def test_full_storage_refuses_more_transitions():
    storage = RolloutStorage(1, 1, (2,), None, (1,))
    _fill(storage, [1.0], [0.0], [False])
    try:
        _fill(storage, [1.0], [0.0], [False])
    except OverflowError:
        return
    raise AssertionError("expected OverflowError")


def test_both_mini_batch_generators_yield_advantages_normalised_over_the_whole_rollout():
    # A (T=3, N=2) = [[1, 2], [3, 6], [0, 0]]: mean 2, deviations [-1, 0, 1, 4, -2, -2], sum of squares 26,
    # unbiased std sqrt(26 / 5). Two mini-batches of 3 samples: per-batch statistics would give other values.
    num_envs, steps = 2, 3
    storage = RolloutStorage(num_envs, steps, (1,), None, (1,))
    for t in range(steps):
        index = torch.arange(num_envs).float().view(-1, 1) + num_envs * t  # sample index t * N + n
        storage.add_transitions(
            Transition(
                observations=index,
                actions=index,
                rewards=torch.zeros(num_envs),
                dones=torch.zeros(num_envs, dtype=torch.bool),
                values=torch.zeros(num_envs, 1),
                actions_log_prob=torch.zeros(num_envs),
                action_mean=torch.zeros(num_envs, 1),
                action_sigma=torch.ones(num_envs, 1),
            )
        )
    storage.advantages.copy_(torch.tensor([[1.0, 2.0], [3.0, 6.0], [0.0, 0.0]]).unsqueeze(-1))
    expected = (torch.tensor([1.0, 2.0, 3.0, 6.0, 0.0, 0.0]) - 2.0) / (math.sqrt(26 / 5) + 1e-8)
    torch.testing.assert_close(storage.normalized_advantages().flatten(), expected)
    batches = list(storage.mini_batch_generator(num_mini_batches=2))
    assert [b.advantages.shape for b in batches] == [(3, 1), (3, 1)]
    for batch in batches:
        torch.testing.assert_close(batch.advantages.flatten(), expected[batch.observations.flatten().long()])
    batches = list(storage.recurrent_mini_batch_generator(num_mini_batches=2))
    assert [b.advantages.shape for b in batches] == [(3, 1, 1), (3, 1, 1)]
    for batch in batches:  # recurrent fields are (T, n, .) in rollout order: the actions carry the sample index
        torch.testing.assert_close(batch.advantages.flatten(), expected[batch.actions.flatten().long()])
