"""Convolutional building blocks: a conv stack and a conv + MLP head for image observation segments.

Normalisation layers: only ``None``, ``"group"`` and ``"layer"`` (see :data:`NORM_LAYERS`). Batch
normalisation is deliberately not offered: its running statistics make a policy compute different
actions in training and eval mode, they would move during every PPO update epoch and mini-batch (so the
rollout-time log-probs no longer match the policy being updated), and an exported policy would have to
freeze them. Group and layer normalisation normalise each sample by itself, so rollout, update and export
compute the same function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from st_rl.modules.mlp import MlpModel
from st_rl.modules.utils import conv2d_output_shape, get_activation_Cls

NORM_LAYERS = ("group", "layer")
"""Valid ``normlayer`` names (besides ``None``):

- ``"group"``: ``nn.GroupNorm(gcd(C, 8), C)`` after each conv (groups of channels, at most 8 groups);
- ``"layer"``: ``nn.GroupNorm(1, C)``: normalises each sample over all of ``(C, H, W)`` with a per-channel affine.
"""


def _per_layer(value: int | Sequence[int], num_layers: int, name: str) -> list[int]:
    """``value`` for each of ``num_layers`` layers: an int is repeated, a sequence must have one entry per layer."""
    if isinstance(value, int):
        return [value] * num_layers
    values = [int(v) for v in value]
    if len(values) != num_layers:
        raise ValueError(f"{name} has {len(values)} entries {values}, expected one per conv layer ({num_layers})")
    return values


def _norm_layer(normlayer: str, channels: int) -> nn.Module:
    if normlayer == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    return nn.GroupNorm(1, channels)


class Conv2dModel(nn.Module):
    """Conv stack ``(B, in_channels, H, W) -> (B, channels[-1], H', W')``.

    Each layer is ``Conv2d -> [norm] -> nonlinearity [-> MaxPool2d]``. With ``use_maxpool=True`` the convs
    run with stride 1 and a ``MaxPool2d(stride, stride)`` follows every layer whose stride is > 1 (the
    downsampling is done by pooling instead of strided convs).

    Args:
        in_channels: input channels ``C``.
        channels: output channels of each conv layer.
        kernel_sizes, strides, paddings: one int per layer (or one int for every layer); ``paddings``
            defaults to 0.
        nonlinearity: activation name (see :func:`st_rl.modules.utils.get_activation_Cls`).
        normlayer: ``None`` or one of :data:`NORM_LAYERS`.
        use_maxpool: downsample with max pooling instead of conv strides.
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        kernel_sizes: int | Sequence[int],
        strides: int | Sequence[int],
        paddings: int | Sequence[int] | None = None,
        nonlinearity: str = "relu",
        normlayer: str | None = None,
        use_maxpool: bool = False,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels:
            raise ValueError("channels is empty: a Conv2dModel needs at least one conv layer")
        if normlayer is not None and normlayer not in NORM_LAYERS:
            raise ValueError(f"unknown normlayer '{normlayer}' (valid: None, {', '.join(NORM_LAYERS)})")
        n = len(channels)
        self.kernel_sizes = _per_layer(kernel_sizes, n, "kernel_sizes")
        self.strides = _per_layer(strides, n, "strides")
        self.paddings = _per_layer(0 if paddings is None else paddings, n, "paddings")
        self.channels = channels
        self.in_channels = in_channels
        self.use_maxpool = use_maxpool
        activation = get_activation_Cls(nonlinearity)
        layers: list[nn.Module] = []
        last = in_channels
        for out, kernel, stride, padding in zip(channels, self.kernel_sizes, self.strides, self.paddings):
            conv_stride = 1 if use_maxpool else stride
            layers.append(nn.Conv2d(last, out, kernel, stride=conv_stride, padding=padding))
            if normlayer is not None:
                layers.append(_norm_layer(normlayer, out))
            layers.append(activation())
            if use_maxpool and stride > 1:
                layers.append(nn.MaxPool2d(stride, stride))
            last = out
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, channels[-1], H', W')``."""
        return self.conv(x)

    def conv_out_resolution(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size ``(H', W')`` of the output for an ``(h, w)`` input (may be <= 0 if the input is too small)."""
        for kernel, stride, padding in zip(self.kernel_sizes, self.strides, self.paddings):
            if self.use_maxpool:
                h, w = conv2d_output_shape(h, w, kernel, 1, padding)
                if stride > 1:
                    h, w = conv2d_output_shape(h, w, stride, stride)
            else:
                h, w = conv2d_output_shape(h, w, kernel, stride, padding)
        return h, w

    def conv_out_size(self, h: int, w: int) -> int:
        """Flattened output size ``channels[-1] * H' * W'`` for an ``(h, w)`` input."""
        h_out, w_out = self.conv_out_resolution(h, w)
        return self.channels[-1] * h_out * w_out


class Conv2dHeadModel(nn.Module):
    """Conv stack -> flatten -> MLP: images ``(..., C, H, W)`` or flat ``(..., C*H*W)`` -> ``(..., output_size)``.

    Any leading dims are kept (``(N, .)`` rollout batches, ``(T, B, .)`` padded trajectories). An input whose
    last dim equals ``C*H*W`` is read as flat (the policy path always passes flat segments); otherwise its last
    three dims must be ``image_shape``. For an image with ``C*H == 1`` pass it flat.

    Args:
        image_shape: ``(C, H, W)`` of one image.
        channels, kernel_sizes, strides, paddings, nonlinearity, normlayer, use_maxpool: see :class:`Conv2dModel`.
        hidden_sizes: hidden layers of the MLP after the flattened conv output (``nonlinearity`` between them).
        output_size: width of the output; None makes the last hidden layer (with its nonlinearity) the output.

    Raises:
        ValueError: bad conv settings, or an image too small for the conv stack (output resolution <= 0).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: Sequence[int],
        kernel_sizes: int | Sequence[int],
        strides: int | Sequence[int],
        paddings: int | Sequence[int] | None = None,
        nonlinearity: str = "relu",
        normlayer: str | None = None,
        use_maxpool: bool = False,
        hidden_sizes: Sequence[int] = (),
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape {tuple(image_shape)} is not (C, H, W)")
        c, h, w = (int(d) for d in image_shape)
        self.image_shape = (c, h, w)
        self.flat_size = c * h * w
        self.conv = Conv2dModel(c, channels, kernel_sizes, strides, paddings, nonlinearity, normlayer, use_maxpool)
        h_out, w_out = self.conv.conv_out_resolution(h, w)
        if h_out <= 0 or w_out <= 0:
            raise ValueError(
                f"image {self.image_shape} is too small for the conv stack (kernel_sizes {self.conv.kernel_sizes}, "
                f"strides {self.conv.strides}, paddings {self.conv.paddings}): output resolution {(h_out, w_out)}"
            )
        self.conv_out_size = self.conv.conv_out_size(h, w)
        self.mlp = MlpModel(self.conv_out_size, list(hidden_sizes), output_size, nonlinearity)
        self.output_size = self.mlp.output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., C*H*W)`` or ``(..., C, H, W)`` -> ``(..., output_size)``."""
        c, h, w = self.image_shape
        if x.size(-1) == self.flat_size:
            lead = list(x.shape[:-1])
        else:
            if x.dim() < 3 or list(x.shape[-3:]) != [c, h, w]:
                raise ValueError("Conv2dHeadModel input is neither (..., C*H*W) nor (..., C, H, W)")
            lead = list(x.shape[:-3])
        batch = 1
        for d in lead:
            batch *= d
        out = self.mlp(self.conv(x.reshape(batch, c, h, w)).flatten(1))
        return out.reshape(lead + [out.size(-1)])
