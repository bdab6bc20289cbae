import numpy as np
import torch

from st_rl.modules.normalizer import EmpiricalNormalization, Normalize


def test_running_stats_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=3.0, scale=[0.5, 2.0, 7.0], size=(n, 3)).astype(np.float32) for n in (5, 17, 64, 2)]
    norm = EmpiricalNormalization(3)
    for batch in batches:
        norm.update(torch.from_numpy(batch))
    data = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.std.numpy() ** 2, data.var(axis=0), rtol=1e-4)
    assert norm.count.item() == len(data)
    x = torch.from_numpy(data[:4])
    expected = (data[:4] - data.mean(axis=0)) / (data.std(axis=0) + 1e-2)
    np.testing.assert_allclose(norm.normalize(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.inverse(norm.normalize(x)), x)


def test_forward_updates_only_in_training_mode():
    norm = EmpiricalNormalization(2)
    x = torch.randn(8, 2) * 4 + 1
    norm.eval()
    norm(x)
    assert norm.count.item() == 0
    torch.testing.assert_close(norm.mean, torch.zeros(2))
    norm.train()
    norm(x)
    assert norm.count.item() == 8
    torch.testing.assert_close(norm.mean, x.mean(dim=0))


def test_until_stops_updates():
    norm = EmpiricalNormalization(1, until=10)
    batches = [torch.full((4, 1), float(i)) for i in range(5)]
    for b in batches:
        norm.update(b)
    # updates while count < 10: batches 0, 1, 2 (count 4, 8, 12), then frozen
    assert norm.count.item() == 12
    torch.testing.assert_close(norm.mean, torch.tensor([1.0]))


def test_normalize_is_frozen_copy():
    norm = EmpiricalNormalization(2)
    norm.update(torch.randn(16, 2) * 3)
    frozen = Normalize.frozen(norm)
    x = torch.randn(5, 2)
    torch.testing.assert_close(frozen(x), norm.normalize(x))
    norm.update(torch.randn(16, 2) + 10)
    assert not torch.allclose(frozen(x), norm.normalize(x))
