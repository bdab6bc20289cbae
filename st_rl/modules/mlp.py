"""Multi-layer perceptron building block."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from st_rl.modules.utils import get_activation_Cls


class MlpModel(nn.Sequential):
    """Linear layers with a nonlinearity between them: ``(B, input_size) -> (B, output_size)``.

    With ``output_size=None`` the last hidden layer (followed by its nonlinearity) is the output,
    so the model is a feature extractor of width ``hidden_sizes[-1]``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int | None = None,
        nonlinearity: str = "elu",
    ) -> None:
        layers: list[nn.Module] = []
        last = input_size
        for size in hidden_sizes:
            layers += [nn.Linear(last, size), get_activation_Cls(nonlinearity)()]
            last = size
        if output_size is not None:
            layers.append(nn.Linear(last, output_size))
            last = output_size
        super().__init__(*layers)
        self.input_size = input_size
        self.output_size = last
