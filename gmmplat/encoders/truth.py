"""Truth encoder: the true conformation of a simulated particle as its latent point.

A diagnostic for simulated datasets (``gmmplat simulate`` writes ``truth.csv``): with
``z = (t, 0, …, 0)`` the decoders learn from a perfect latent, so a run with this encoder
measures how far the decoders, losses and rounds alone can carry the motion (the *decoder
limit*), and a run with a real encoder shows what its latent costs on top.  Between the
two and the exact-likelihood oracle (``gmmplat evaluate --oracle``) the distance to the
limit splits into the latent's part and the decoders' part (docs/benchmarks.md,
"Decoder limit").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError
from .base import ENCODERS, Encoder, StepContext


@ENCODERS.register("truth")
class TruthEncoder(Encoder):
    """``z[b] = (scale · t[index_b], 0, …, 0)`` with ``t`` read from ``truth_csv`` by particle row.

    Options:
        truth_csv: the dataset's ``truth.csv`` (columns ``particle_index``, ``t``), one row per
            particle of the STAR file, in the same order (0-based ``particle_index`` = STAR row).
        scale: multiplies ``t`` (default 1: ``t ∈ [-1, 1]`` for the sample datasets).

    The encoder has no trainable weights; a symmetry-expanded copy gets its particle's ``t``.
    A particle row beyond the truth file's rows stops training with a one-line error naming the file.
    """

    def __init__(self, latent_dim: int, context: StepContext, truth_csv: str | None = None, scale: float = 1.0):
        super().__init__(latent_dim, context)
        from ..analysis.evaluate import load_truth

        if not truth_csv:
            raise ConfigError("the truth encoder needs option truth_csv (the simulated dataset's truth.csv)")
        self.truth_csv = str(Path(truth_csv))
        t = load_truth(truth_csv)["t"].to_numpy(dtype=np.float64) * float(scale)
        self.register_buffer("t", torch.as_tensor(t, dtype=torch.float32))

    def forward(self, batch) -> torch.Tensor:
        index = batch.index.to(self.t.device).long()
        if index.numel() and int(index.max()) >= self.t.shape[0]:
            raise InputError(self.truth_csv, f"holds {self.t.shape[0]} particles but the particle file has row "
                                             f"{int(index.max())} (0-based): not the truth of this particle file")
        z = torch.zeros(index.shape[0], self.latent_dim, dtype=torch.float32, device=self.t.device)
        z[:, 0] = self.t[index]
        return z
