import torch

from st_rl.utils.trajectories import split_and_pad_trajectories, trajectory_start_states, unpad_trajectories


def _rollout():
    # T=5, N=3: env 0 ends at t=1, env 1 at t=4 (the last step), env 2 at t=3
    T, N = 5, 3
    x = torch.arange(T * N, dtype=torch.float).view(T, N)  # x[t, n] = 3 t + n
    dones = torch.zeros(T, N, dtype=torch.bool)
    dones[1, 0] = dones[4, 1] = dones[3, 2] = True
    return x, dones


def test_split_and_pad_cuts_at_dones_env_by_env():
    x, dones = _rollout()
    padded, masks = split_and_pad_trajectories(x, dones)
    # trajectories in env-major order: env0 t0-1, env0 t2-4, env1 t0-4, env2 t0-3, env2 t4
    expected = [[0, 3], [6, 9, 12], [1, 4, 7, 10, 13], [2, 5, 8, 11], [14]]
    assert padded.shape == (5, len(expected)) and masks.shape == (5, len(expected))
    for i, traj in enumerate(expected):
        assert padded[: len(traj), i].tolist() == traj
        assert masks[:, i].tolist() == [t < len(traj) for t in range(5)]
        assert (padded[len(traj) :, i] == 0).all()


def test_unpad_inverts_split_with_feature_dims():
    x, dones = _rollout()
    features = torch.stack([x, -x], dim=-1)  # [T, N, 2]
    padded, masks = split_and_pad_trajectories(features, dones)
    torch.testing.assert_close(unpad_trajectories(padded, masks), features)


def test_start_states_are_the_states_at_trajectory_starts():
    x, dones = _rollout()
    states = x.view(5, 1, 3, 1).expand(5, 2, 3, 4)  # [T, S=2, N, H=4], value = x[t, n]
    starts = trajectory_start_states(states, dones)
    assert starts.shape == (2, 5, 4)
    assert starts[0, :, 0].tolist() == [0, 6, 1, 2, 14]
