"""Abstract regularizer: a scalar penalty on per-particle GMMs relative to the neutral GMM."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..model.gmm import GMM
from ..registry import Registry

REGULARIZERS: Registry = Registry("regularizer")


class Regularizer(ABC, torch.nn.Module):
    """``Regularizer(neutral, weight=1.0, **opts)``.

    * ``penalty(params)``: the unweighted penalty of ``params`` ``(B, N, 5)``
      or ``(N, 5)`` (averaged over the batch), a scalar tensor, differentiable.
    * ``forward(params) = weight * penalty(params)``: what a training loop adds
      to its loss (so the loop does not multiply by ``weight`` again).

    Everything a regularizer needs from the neutral structure comes from the
    neutral GMM and its extras (e.g. the Cα bond graph); buffers move with
    ``.to(device)``.
    """

    def __init__(self, neutral: GMM, weight: float = 1.0, **opts):
        super().__init__()
        if opts:
            raise TypeError(f"{type(self).__name__} got unknown options: {', '.join(sorted(opts))}")
        self.weight = float(weight)
        self.n_gaussians = neutral.n

    @staticmethod
    def as_batch(params: torch.Tensor) -> torch.Tensor:
        """``(N, 5)`` -> ``(1, N, 5)``; ``(B, N, 5)`` unchanged."""
        return params[None] if params.ndim == 2 else params

    @abstractmethod
    def penalty(self, params: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        ...

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return self.weight * self.penalty(params)
