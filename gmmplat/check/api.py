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
    from ..io.dataset import ParticleDataset
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
        result = run_check(dataset, reference, n=n, lowpass_angstrom=lowpass_angstrom, seed=seed, progress=progress)
        result.notes = list(dataset.notes)
        return result
    finally:
        dataset.close()


def output_paths(out, check: bool = False) -> tuple[Path, Path]:
    """``--out``: a ``.png`` (or ``.csv``) path, the other file beside it, or a folder (``check.png``,
    ``check.csv``).

    With ``check``, refuse (one-line InputError, before any work) an ``--out`` that cannot take
    them: a file where the folder is wanted, a folder where a file is, a parent that is a file,
    a missing folder for a file path, no write permission.
    """
    from ..io.atomic import check_output_path

    out = Path(out)
    if out.suffix.lower() in (".png", ".csv"):
        png, csv = out.with_suffix(".png"), out.with_suffix(".csv")
        if check:
            for path in (out, png, csv):
                check_output_path(path, "--out", folder=False, create_parents=False)
        return png, csv
    png, csv = out / "check.png", out / "check.csv"
    if check:
        check_output_path(out, "--out")
        for path in (png, csv):
            check_output_path(path, "--out", folder=False)
    return png, csv


def save_outputs(result: CheckResult, out) -> tuple[Path, Path]:
    """Write the figure (PNG) and the table (CSV) together atomically: both or neither (a folder
    created for them is removed again on failure); returns their paths."""
    from ..io.atomic import atomic_write_paths
    from .figure import write_png

    png, csv = output_paths(out)
    with atomic_write_paths(png, csv) as (tmp_png, tmp_csv):
        write_png(result, tmp_png)
        result.table().to_csv(tmp_csv, float_format="%.6g")
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
