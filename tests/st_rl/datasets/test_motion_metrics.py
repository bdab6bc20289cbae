import torch

from st_rl.datasets.motion_metrics import joint_angle_distance, wasserstein_1d


def test_wasserstein_of_a_shift_is_the_shift_and_zero_for_the_same_samples():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g)
    shifts = torch.tensor([0.0, 0.5, -2.0])
    torch.testing.assert_close(wasserstein_1d(a, a + shifts), shifts.abs().double(), atol=1e-6, rtol=0)
    # different sample sizes of the same distribution: close to zero; of a wider one: clearly not
    b = torch.randn(1000, 3, generator=g)
    assert wasserstein_1d(a, b).max() < 0.1
    assert wasserstein_1d(a, 3 * b).min() > 1.0


def test_joint_angle_distance_uses_only_the_joint_columns():
    frames = torch.zeros(100, 5)
    reference = torch.zeros(100, 5)
    reference[:, 3:] = 10.0  # not joint columns
    assert joint_angle_distance(frames, reference, slice(0, 3)) == 0.0
    reference[:, :3] = 0.2
    assert abs(joint_angle_distance(frames, reference, slice(0, 3)) - 0.2) < 1e-6
