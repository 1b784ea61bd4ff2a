"""Fixed encoder: every particle keeps a latent point given beforehand (an ``(n, d)`` .npy file).

Decoders then train on a latent from elsewhere: another run's ``latent.npy``, a principal
component of it, a simulation's oracle, or another method's embedding of the same particles.
With the latent held fixed, a run measures what the decoders make of that latent alone
(docs/benchmarks.md, "Decoder limit").  For a simulated dataset's true ``t`` use the
``truth`` encoder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..records import read_latent
from .base import ENCODERS, Encoder, StepContext


class TableEncoder(Encoder):
    """Base of the encoders without a network: ``z[b] = latent[index_b]``, one table row per particle.

    Subclasses build the ``(n, latent_dim)`` table and call :meth:`use_table` with the file it came
    from; a particle row past the table stops training with a one-line error naming that file.  The
    table is not part of the state dict: loading a run reads the file again.
    """

    def use_table(self, latent: np.ndarray, source, rows: str, verdict: str) -> None:
        """Hold ``latent (n, latent_dim)`` read from ``source``; ``rows`` names its rows and ``verdict``
        ends the error for a particle row past them."""
        self.source, self.rows, self.verdict = str(Path(source)), rows, verdict
        # not saved with the run: the file is read again when the run is loaded
        self.register_buffer("latent", torch.as_tensor(np.asarray(latent), dtype=torch.float32), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in ("latent", "t"):  # the table as runs written before saved it (``t``: the truth encoder's)
            state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, batch) -> torch.Tensor:
        index = batch.index.to(self.latent.device).long()
        if index.numel() and int(index.max()) >= self.latent.shape[0]:
            raise InputError(self.source, f"holds {self.latent.shape[0]} {self.rows} but the particle file has "
                                          f"row {int(index.max())} (0-based): {self.verdict}")
        return self.latent[index]


@ENCODERS.register("fixed")
class FixedEncoder(TableEncoder):
    """``z[b] = latent[index_b]`` with ``latent (n, latent_dim)`` read from ``latent_npy`` by particle row.

    Options:
        latent_npy: a float ``(n, latent_dim)`` array, row ``i`` the latent point of STAR row ``i``
            (0-based; symmetry copies share it), e.g. a run's ``latent.npy``.

    No trainable weights.  A file that is not such an array, or whose width is not ``latent_dim``, is
    a one-line error naming it; a particle row past its rows stops training the same way.
    """

    def __init__(self, latent_dim: int, context: StepContext, latent_npy: str | None = None):
        super().__init__(latent_dim, context)
        if not latent_npy:
            raise ConfigError("the fixed encoder needs option latent_npy (an (n, d) .npy of latent points)")
        z = self.read(latent_npy)
        if z.shape[1] != self.latent_dim:
            raise InputError(latent_npy, f"holds {z.shape[1]}-D latent points but latent_dim is {self.latent_dim}")
        self.use_table(z, latent_npy, "latent points", "not a latent of these particles")

    @staticmethod
    def read(path) -> np.ndarray:
        """The finite numeric ``(n, d)`` array in ``path`` (:func:`gmmplat.records.read_latent`, which
        names the file in a one-line error for a missing, unreadable or non-finite array), 2-D."""
        z = read_latent(path)
        if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
            raise InputError(path, f"expected a latent array (n particles, d), got shape {z.shape}")
        return z

    @classmethod
    def width_of(cls, path) -> int:
        """The latent dimension ``d`` of the array in ``path`` (checked as :meth:`read`)."""
        return int(cls.read(path).shape[1])
