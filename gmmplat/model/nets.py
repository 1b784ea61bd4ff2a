"""Fully connected networks, shared by encoders and decoders."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from ..errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def make_mlp(
    n_in: int,
    n_out: int,
    hidden: Sequence[int] = (256, 256),
    activation: str = "relu",
    zero_last: bool = False,
) -> nn.Sequential:
    """Fully connected network ``n_in -> hidden... -> n_out`` (linear last layer).

    ``zero_last=True`` zero-initialises the last layer's weight and bias, so the
    output is exactly 0 for every input at initialisation (decoders).
    """
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    layers: list[nn.Module] = []
    width = int(n_in)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), ACTIVATIONS[activation]()]
        width = int(h)
    last = nn.Linear(width, int(n_out))
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)
