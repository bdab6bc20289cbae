import numpy as np
import pytest
import torch

from st_rl.modules.normalizer import Normalizer, RunningMeanStd


def _batches(seed: int = 0, sizes=(3, 50, 7, 1, 20)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(loc=[1.0, -4.0, 10.0], scale=[0.3, 2.0, 5.0], size=(n, 3)) for n in sizes]


def _expected_stats(data: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``data`` pooled with the initial pseudo-sample (count ``eps``, mean 0, var 1)."""
    n = len(data)
    mu, var = data.mean(axis=0), data.var(axis=0)
    total = n + eps
    return n * mu / total, (eps * 1.0 + n * var + mu**2 * eps * n / total) / total


def test_running_mean_std_matches_numpy_over_uneven_batches():
    batches = _batches()
    rms = RunningMeanStd(3, epsilon=1e-4)
    assert rms.count == pytest.approx(1e-4)
    np.testing.assert_array_equal(rms.mean, np.zeros(3))
    np.testing.assert_array_equal(rms.var, np.ones(3))
    for batch in batches:
        rms.update(batch)
    data = np.concatenate(batches)
    assert rms.mean.dtype == np.float64 and rms.var.shape == (3,)
    assert rms.count == pytest.approx(len(data) + 1e-4)
    # exactly the pooled statistics of the batches and the pseudo-sample ...
    mean, var = _expected_stats(data, 1e-4)
    np.testing.assert_allclose(rms.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(rms.var, var, rtol=1e-12)
    # ... which the pseudo-count (weight 1e-4 / 81) barely moves from the batches' own
    np.testing.assert_allclose(rms.mean, data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(rms.var, data.var(axis=0), rtol=1e-4)


def test_running_mean_std_multidim_shape_and_bad_shape():
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(n, 2, 3)) * 3 + 1 for n in (4, 9)]
    rms = RunningMeanStd((2, 3))
    for batch in batches:
        rms.update(batch)
    data = np.concatenate(batches)
    mean, var = _expected_stats(data, 1e-4)
    np.testing.assert_allclose(rms.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(rms.var, var, rtol=1e-12)
    with pytest.raises(ValueError, match=r"does not match"):
        rms.update(np.zeros((4, 3)))


def test_normalizer_normalizes_and_clips():
    norm = Normalizer(2, epsilon=1e-4, clip_obs=2.0)
    norm.mean = np.array([1.0, -1.0])
    norm.var = np.array([4.0, 0.25])
    x = np.array([[3.0, -1.0], [1.0, -0.5], [100.0, -100.0]])
    # (x - mean) / sqrt(var + eps): row 0 -> [2 / sqrt(4.0001), 0]; row 1 -> [0, 0.5 / sqrt(0.2501)];
    # row 2 -> [99 / 2.00002, -99 / 0.50010] clipped to [2, -2]
    expected = np.array([[2.0 / np.sqrt(4.0001), 0.0], [0.0, 0.5 / np.sqrt(0.2501)], [2.0, -2.0]])
    np.testing.assert_allclose(norm.normalize(x), expected, rtol=1e-12)
    assert np.abs(norm.normalize(np.random.default_rng(0).normal(size=(50, 2)) * 100)).max() <= 2.0


def test_numpy_and_torch_paths_agree():
    norm = Normalizer(3, clip_obs=3.0)
    for batch in _batches(seed=2):
        norm.update(batch)
    x = np.random.default_rng(3).normal(loc=[1.0, -4.0, 10.0], scale=[1.0, 5.0, 20.0], size=(64, 3))
    expected = norm.normalize(x)
    assert np.abs(expected).max() == pytest.approx(3.0)  # some entries are clipped
    out = norm.normalize_torch(torch.from_numpy(x), "cpu")
    assert out.dtype == torch.float32 and out.device == torch.device("cpu") and out.shape == (64, 3)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_update_normalizer_consumes_both_sources():
    policy_batches = [torch.from_numpy(b).float() for b in _batches(seed=4, sizes=(8, 8, 8))]
    # expert batches as (state, next_state) pairs of numpy arrays, consumed by a one-pass generator
    expert = _batches(seed=5, sizes=(5, 5, 11, 11))
    expert_pairs = [(expert[0], expert[1]), (expert[2], expert[3])]
    norm = Normalizer(3)
    norm.update_normalizer(iter(policy_batches), (pair for pair in expert_pairs))
    data = np.concatenate([b.numpy().astype(np.float64) for b in policy_batches] + expert)
    assert norm.count == pytest.approx(len(data) + 1e-4)
    mean, var = _expected_stats(data, 1e-4)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(norm.var, var, rtol=1e-12)
    # a policy-only update differs: the expert source really was read
    policy_only = Normalizer(3)
    policy_only.update_normalizer(policy_batches, [])
    assert policy_only.count == pytest.approx(24 + 1e-4)
    assert not np.allclose(policy_only.mean, norm.mean)
