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

import numpy as np

from ..errors import ConfigError
from .base import ENCODERS, StepContext
from .fixed import TableEncoder


@ENCODERS.register("truth")
class TruthEncoder(TableEncoder):
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
        t = load_truth(truth_csv)["t"].to_numpy(dtype=np.float64) * float(scale)
        table = np.zeros((len(t), self.latent_dim))
        table[:, 0] = t
        self.use_table(table, truth_csv, "particles", "not the truth of this particle file")
