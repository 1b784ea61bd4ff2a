"""Data-consistency check of particles against a reference (``gmmplat check``, ``docs/check.md``).

``run_check(dataset, reference)`` correlates each particle image with the reference
projected by its STAR pose, shift and CTF, and compares with the usual mistakes (origin
sign, x/y swaps, transposed rotations, polarity, phase-flipped stacks, rows not matching
the stack).  It returns a :class:`CheckResult` with the table, the verdict and a figure.
"""
from __future__ import annotations

from .conventions import ROW_LABELS, describe
from .figure import examples_figure, save_figure
from .references import GMMReference, MapReference, model_reference
from .report import MARGIN_SE, SIMILAR_CC, CheckResult, RowResult, paired_z, run_check

__all__ = ["run_check", "CheckResult", "RowResult", "paired_z", "MARGIN_SE", "SIMILAR_CC", "ROW_LABELS",
           "describe", "MapReference", "GMMReference", "model_reference", "examples_figure", "save_figure"]
