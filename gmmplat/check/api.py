"""Entry points of the data check: from files, to files, and before training."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import GmmplatError, InputError
from .report import CheckResult, run_check

PRETRAIN_PARTICLES = 200


class DataCheckFailed(GmmplatError):
    """The particles clearly fit a known mistake better than their stated conventions."""


def check_files(particles, map_path, model_path=None, n: int = 500, lowpass_angstrom: float = 12.0,
                invert_contrast: bool = False, seed: int = 0, progress: bool = False) -> CheckResult:
    """:func:`run_check` of a particle file against a consensus map (or, given ``model_path``,
    the heavy atoms of the fitted model in the map's frame).

    ``particles``: a RELION STAR path, or a :class:`~gmmplat.io.particles.ParticleSource`
    (STAR or cryoSPARC ``.cs`` with its options)."""
    from ..data import ParticleDataset
    from ..io.mrc import read_map
    from .references import MapReference, model_reference

    star = particles if isinstance(particles, (str, os.PathLike)) else None
    for path in (star, map_path, model_path):
        if path is not None and not os.path.isfile(path):
            raise InputError(path, "file not found")
    dataset = ParticleDataset(particles, invert_contrast=invert_contrast, cache_mb=0)
    try:
        map_data = read_map(map_path)
        reference = (MapReference.from_map(map_data, os.fspath(map_path)) if model_path is None
                     else model_reference(model_path, map_data, map_path))
        return run_check(dataset, reference, n=n, lowpass_angstrom=lowpass_angstrom, seed=seed, progress=progress)
    finally:
        dataset.close()


def output_paths(out) -> tuple[Path, Path]:
    """``--out``: a ``.png`` path (the table goes beside it as ``.csv``) or a folder (``check.png``, ``check.csv``)."""
    out = Path(out)
    if out.suffix.lower() == ".png":
        return out, out.with_suffix(".csv")
    return out / "check.png", out / "check.csv"


def save_outputs(result: CheckResult, out) -> tuple[Path, Path]:
    """Write the figure (PNG) and the table (CSV), each atomically; returns their paths."""
    from ..io.atomic import atomic_write_path
    from .figure import save_figure

    png, csv = output_paths(out)
    png.parent.mkdir(parents=True, exist_ok=True)
    save_figure(result, png)
    with atomic_write_path(csv) as tmp:
        result.table().to_csv(tmp, float_format="%.6g")
    return png, csv


def check_before_training(dataset, gmm, n: int = PRETRAIN_PARTICLES, seed: int = 0) -> CheckResult:
    """The data check of ``gmm.params`` against ``n`` particles; raises :class:`DataCheckFailed`
    (one line naming the mistake and its fix) only when a mistake clearly fits better."""
    from .references import GMMReference

    lowpass = max(12.0, 2.0 * dataset.pixel_size_angstrom)
    result = run_check(dataset, GMMReference(gmm.params, "the neutral GMM"), n=n, lowpass_angstrom=lowpass,
                       seed=seed, n_examples=0)
    if result.mistake:
        raise DataCheckFailed(f"data check ({result.n_particles} particles against the neutral GMM): "
                              f"{result.verdict}; --skip-data-check trains anyway")
    return result
