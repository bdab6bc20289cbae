"""Small helpers shared by the policy modules."""

from __future__ import annotations

from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "selu": nn.SELU,
    "relu": nn.ReLU,
    "lrelu": nn.LeakyReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def get_activation_Cls(name: str) -> type[nn.Module]:
    """Activation class by (case-insensitive) name, e.g. ``"elu"`` -> ``nn.ELU``.

    Raises:
        ValueError: unknown name; the message lists the valid names.
    """
    cls = _ACTIVATIONS.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown activation '{name}' (valid: {', '.join(sorted(_ACTIVATIONS))})")
    return cls


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv2d_output_shape(
    h: int,
    w: int,
    kernel: int | tuple[int, int] = 1,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> tuple[int, int]:
    """Spatial output ``(h_out, w_out)`` of ``nn.Conv2d`` (and pooling) for an ``(h, w)`` input.

    ``out = floor((in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)`` per axis.
    """
    k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    h_out = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    w_out = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    return h_out, w_out
