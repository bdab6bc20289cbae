import pytest
import torch
from torch import nn

from st_rl.modules.utils import conv2d_output_shape, get_activation_Cls


def test_activation_lookup():
    assert get_activation_Cls("elu") is nn.ELU
    assert get_activation_Cls("LReLU") is nn.LeakyReLU


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'elux' \(valid: .*elu.*relu.*tanh"):
        get_activation_Cls("elux")


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"), [(3, 1, 0, 1), (5, 2, 1, 1), ((3, 5), (2, 1), (1, 2), 2)]
)
def test_conv2d_output_shape_matches_conv(kernel, stride, padding, dilation):
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    out = conv(torch.zeros(1, 1, 48, 64))
    assert conv2d_output_shape(48, 64, kernel, stride, padding, dilation) == tuple(out.shape[-2:])
