import warnings

import pytest
import torch
from torch import nn

from st_rl.modules.conv2d import Conv2dHeadModel, Conv2dModel
from st_rl.modules.utils import conv2d_output_shape

# (in_channels, channels, kernel_sizes, strides, paddings, use_maxpool, normlayer, (H, W))
CONFIGS = [
    (1, [4], [3], [1], None, False, None, (12, 16)),
    (1, [4, 8], [3, 3], [2, 1], [1, 0], False, "group", (12, 16)),
    (3, [6, 8, 4], [5, 3, 2], [2, 2, 1], [2, 1, 0], False, "layer", (31, 24)),
    (2, [4, 8], [3, 3], [2, 2], [1, 1], True, None, (17, 23)),
    (1, [8, 8], 3, 2, 1, True, "group", (12, 16)),
]


@pytest.mark.parametrize(("in_ch", "channels", "kernels", "strides", "paddings", "maxpool", "norm", "hw"), CONFIGS)
def test_conv_out_size_matches_real_output(in_ch, channels, kernels, strides, paddings, maxpool, norm, hw):
    model = Conv2dModel(in_ch, channels, kernels, strides, paddings, normlayer=norm, use_maxpool=maxpool)
    out = model(torch.randn(2, in_ch, *hw))
    assert tuple(out.shape) == (2, channels[-1], *model.conv_out_resolution(*hw))
    assert model.conv_out_size(*hw) == out[0].numel()


def test_conv_out_resolution_is_the_conv2d_output_shape_formula():
    # strided convs: the formula per layer; maxpool: stride-1 convs each followed by a (stride, stride) pool
    h, w = 17, 23
    strided = Conv2dModel(1, [4, 4], [3, 5], [2, 3], [1, 2])
    expected = conv2d_output_shape(*conv2d_output_shape(h, w, 3, 2, 1), 5, 3, 2)
    assert strided.conv_out_resolution(h, w) == expected
    pooled = Conv2dModel(1, [4, 4], [3, 5], [2, 1], [1, 2], use_maxpool=True)
    after_first = conv2d_output_shape(*conv2d_output_shape(h, w, 3, 1, 1), 2, 2)
    assert pooled.conv_out_resolution(h, w) == conv2d_output_shape(*after_first, 5, 1, 2)
    convs = [m for m in pooled.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(1, 1), (1, 1)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in pooled.modules()) == 1  # only the stride-2 layer pools


def test_paddings_default_to_zero_and_scalars_broadcast():
    model = Conv2dModel(1, [2, 3], 3, 2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((3, 3), (2, 2), (0, 0))] * 2


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match=r"unknown normlayer 'batch' \(valid: None, group, layer\)"):
        Conv2dModel(1, [4], [3], [1], normlayer="batch")
    with pytest.raises(ValueError, match=r"strides has 1 entries \[1\], expected one per conv layer \(2\)"):
        Conv2dModel(1, [4, 4], [3, 3], [1])
    with pytest.raises(ValueError, match=r"too small for the conv stack.*output resolution \(0, "):
        Conv2dHeadModel((1, 4, 8), [4, 4], [3, 3], [1, 1], output_size=2)
    with pytest.raises(ValueError, match=r"activation 'rleu'"):
        Conv2dModel(1, [4], [3], [1], nonlinearity="rleu")


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_norm_layers_are_per_sample(norm):
    # no batch statistics: a sample's output does not depend on the rest of the batch, in train or eval mode
    torch.manual_seed(0)
    model = Conv2dModel(1, [8, 6], [3, 3], [1, 1], normlayer=norm)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert [n.num_groups for n in norms] == ([8, 2] if norm == "group" else [1, 1])
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(model(x)[:1], model(x[:1]))
    model.eval()
    torch.testing.assert_close(model(x)[:1], model(x[:1]))


def _head() -> Conv2dHeadModel:
    torch.manual_seed(0)
    return Conv2dHeadModel(
        (2, 12, 16), [4, 8], [3, 3], [2, 1], [1, 0], normlayer="group", hidden_sizes=[16], output_size=5
    )


def test_head_accepts_flat_or_image_input_with_leading_dims():
    head = _head()
    assert head.conv_out_size == 8 * 4 * 6  # (12, 16) -> (6, 8) -> (4, 6)
    images = torch.randn(3, 2, 2, 12, 16)
    out = head(images)
    assert out.shape == (3, 2, 5)
    torch.testing.assert_close(head(images.flatten(-3)), out)  # flat layout = row-major (C, H, W)
    torch.testing.assert_close(head(images[1, 0]), out[1, 0])  # a single image, no batch dim
    assert head(torch.zeros(0, 2 * 12 * 16)).shape == (0, 5)
    with pytest.raises(ValueError, match="neither"):
        head(torch.randn(3, 100))


def test_head_gradient_reaches_every_parameter_and_scripts():
    head = _head()
    x = torch.randn(4, 2 * 12 * 16)
    head(x).pow(2).sum().backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(head)
    torch.testing.assert_close(scripted(x), head(x))
    torch.testing.assert_close(scripted(x.view(4, 2, 12, 16)), head(x))


def test_head_without_output_size_ends_with_hidden_features():
    head = Conv2dHeadModel((1, 8, 8), [4], [3], [1], hidden_sizes=[7, 6])
    assert head.output_size == 6
    assert (head(torch.randn(2, 64)) >= 0).all()  # ends with the (relu) nonlinearity
