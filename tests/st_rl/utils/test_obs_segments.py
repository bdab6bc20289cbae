from collections import OrderedDict

import pytest
import torch

from st_rl.utils.obs_segments import (
    get_obs_slice,
    get_subobs_by_components,
    get_subobs_size,
    segments_num_obs,
    substitute_estimated_state,
)

SEGMENTS = OrderedDict([("lin_vel", (3,)), ("commands", (3,)), ("height_scan", (1, 2, 3)), ("dof_pos", (2,))])


def test_slices_follow_segment_order():
    assert segments_num_obs(SEGMENTS) == 3 + 3 + 6 + 2
    assert get_obs_slice(SEGMENTS, "lin_vel") == (slice(0, 3), (3,))
    assert get_obs_slice(SEGMENTS, "height_scan") == (slice(6, 12), (1, 2, 3))
    assert get_obs_slice(SEGMENTS, "dof_pos") == (slice(12, 14), (2,))


def test_missing_segment_lists_names():
    with pytest.raises(
        ValueError, match="no observation segment 'base_height'.*lin_vel, commands, height_scan, dof_pos"
    ):
        get_obs_slice(SEGMENTS, "base_height")


def test_subobs_in_requested_order():
    obs = torch.arange(14.0).expand(2, 14)
    sub = get_subobs_by_components(obs, ["dof_pos", "lin_vel"], SEGMENTS)
    assert get_subobs_size(SEGMENTS, ["dof_pos", "lin_vel"]) == 5
    torch.testing.assert_close(sub[0], torch.tensor([12.0, 13.0, 0.0, 1.0, 2.0]))


def test_substitute_estimated_state_returns_new_tensor():
    obs = torch.zeros(2, 14)
    estimate = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]).expand(2, 5)
    out = substitute_estimated_state(obs, SEGMENTS, ["dof_pos", "lin_vel"], estimate)
    torch.testing.assert_close(out[0, 12:14], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(out[0, 0:3], torch.tensor([3.0, 4.0, 5.0]))
    assert out[:, 3:12].abs().sum() == 0
    assert obs.abs().sum() == 0  # input untouched
    with pytest.raises(ValueError, match="need 5"):
        substitute_estimated_state(obs, SEGMENTS, ["dof_pos", "lin_vel"], estimate[:, :4])


def test_subobs_columns_index_the_named_segments_in_order():
    from collections import OrderedDict

    import torch

    from st_rl.utils.obs_segments import get_subobs_by_components, get_subobs_columns

    segments = OrderedDict([("a", (2,)), ("b", (1, 2, 2)), ("c", (3,))])
    obs = torch.arange(9.0).view(1, 9)
    cols = get_subobs_columns(segments, ["c", "a"])
    assert cols.tolist() == [6, 7, 8, 0, 1]
    torch.testing.assert_close(obs[:, cols], get_subobs_by_components(obs, ["c", "a"], segments))
