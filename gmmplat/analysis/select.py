"""Particle subsets chosen in the latent space, written back for re-refinement.

A selection starts as a boolean over latent *rows* (one per particle, or one per
symmetry copy when the latent is ``(n, K, d)``: rows ``p*K .. p*K+K-1`` are particle
``p``'s copies, as :func:`gmmplat.analysis.latent.flatten_latent` orders them).
:func:`particles_from_rows` turns it into particles by a stated rule:

* ``any``: a particle is selected when at least one of its K copies is;
* ``majority``: when more than half of its copies are (the default);
* ``all``: when every copy is.

Without symmetry expansion (K = 1) the three rules agree.  :func:`write_subset`
writes the chosen particles in the particle file's own format: a STAR file keeps its
text (every column, the optics block, the order; only unselected particle lines are
left out), a cryoSPARC ``.cs`` file keeps ``uid`` and every field (passthrough fields
joined in), so the subset goes straight into RELION ``Refine3D`` or cryoSPARC
Homogeneous Reconstruction.  A ``.cs`` input may also be written as a RELION 3.1 STAR.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io.atomic import atomic_write_path

__all__ = ["RULES", "Selection", "particles_from_rows", "state_rows", "pc_range_rows", "ellipse_rows",
           "write_subset", "write_selection"]

RULES = ("any", "majority", "all")


@dataclass
class Selection:
    """Particles chosen from latent rows.

    Attributes:
        particles: sorted particle rows (0-based, file order), int64 ``(m,)``.
        n_particles: particles in the file.
        n_copies: symmetry copies per particle K (1 without expansion).
        rule: how copies were combined (:data:`RULES`).
    """

    particles: np.ndarray
    n_particles: int
    n_copies: int
    rule: str

    def describe(self) -> str:
        rule = (f"; symmetry copies: selected when {self.rule} of {self.n_copies} copies fall in the selection"
                if self.n_copies > 1 else "")
        return f"{self.particles.size} of {self.n_particles} particles{rule}"


def particles_from_rows(row_mask, latent_shape: tuple, rule: str = "majority") -> Selection:
    """Boolean over latent rows ``(n*K,)`` -> :class:`Selection` of particles by ``rule``."""
    if rule not in RULES:
        raise ConfigError(f"selection rule {rule!r} unknown; use one of {', '.join(RULES)}")
    n = int(latent_shape[0])
    k = int(latent_shape[1]) if len(latent_shape) == 3 else 1
    mask = np.asarray(row_mask, dtype=bool).reshape(-1)
    if mask.size != n * k:
        raise ConfigError(f"selection covers {mask.size} latent rows but the latent has {n * k}")
    votes = mask.reshape(n, k).sum(axis=1)
    chosen = {"any": votes >= 1, "majority": 2 * votes > k, "all": votes == k}[rule]
    return Selection(np.flatnonzero(chosen).astype(np.int64), n, k, rule)


def state_rows(labels: np.ndarray, states) -> np.ndarray:
    """Rows whose k-means label is one of ``states`` (0-based, as in ``kmeans.npz``)."""
    labels = np.asarray(labels).reshape(-1)
    states = np.atleast_1d(np.asarray(states, dtype=np.int64))
    known = np.unique(labels)
    bad = [int(s) for s in states if s not in known]
    if bad:
        raise ConfigError(f"state(s) {bad} not among the k-means states {known.tolist()}")
    return np.isin(labels, states)


def pc_range_rows(scores: np.ndarray, pc: int, low: float, high: float) -> np.ndarray:
    """Rows whose score on PC ``pc`` (1-based) lies in ``[low, high]``."""
    if not 1 <= pc <= scores.shape[1]:
        raise ConfigError(f"PC {pc} asked for but the latent has {scores.shape[1]} principal components")
    if not low < high:
        raise ConfigError(f"range {low:g},{high:g}: the low end must be below the high end")
    s = scores[:, pc - 1]
    return (s >= low) & (s <= high)


def ellipse_rows(scores: np.ndarray, cx: float, cy: float, rx: float, ry: float, angle_deg: float = 0.0) -> np.ndarray:
    """Rows inside the ellipse (centre, semi-axes, rotation in degrees) on the PC1/PC2 plane."""
    if scores.shape[1] < 2:
        raise ConfigError("--ellipse needs two principal components; the latent has one")
    if rx <= 0 or ry <= 0:
        raise ConfigError("ellipse semi-axes must be positive")
    a = np.radians(angle_deg)
    dx, dy = scores[:, 0] - cx, scores[:, 1] - cy
    u = dx * np.cos(a) + dy * np.sin(a)
    v = -dx * np.sin(a) + dy * np.cos(a)
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def write_subset(particles, rows, out: str | os.PathLike) -> str:
    """Write the particles ``rows`` (0-based, file order) of ``particles`` (a ParticleStar) to ``out``.

    ``out`` ending in ``.star``: a STAR input keeps its text; a ``.cs`` input is written as
    RELION 3.1 (image paths relative to ``out``'s folder).  ``out`` ending in ``.cs``: the
    records of a ``.cs`` input (a STAR input cannot be written as ``.cs``).  Returns the
    format written (``"star"``, ``"star from cs"`` or ``"cs"``).
    """
    out = Path(out)
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    n = len(particles.table)
    if rows.size and (rows[0] < 0 or rows[-1] >= n):
        raise ConfigError(f"particle rows must lie in 0..{n - 1}")
    suffix = out.suffix.lower()
    if suffix not in (".star", ".cs"):
        raise ConfigError(f"--out {out}: write a .star or a .cs file")
    if suffix == ".cs":
        if particles.records is None:
            raise ConfigError(f"--out {out}: particles from a STAR file are written as .star, not .cs")
        with atomic_write_path(out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, particles.records[rows])
        return "cs"
    if particles.records is not None:
        from ..io.star_write import write_particle_star

        write_particle_star(out, particles.table.iloc[rows])
        return "star from cs"
    text = _star_subset_text(Path(particles.path), particles.particles_block, n, rows)
    with atomic_write_path(out) as tmp:
        Path(tmp).write_text(text)
    return "star"


def _star_subset_text(path: Path, block: str, n_rows: int, rows: np.ndarray) -> str:
    """The STAR file's text with only the particle lines ``rows`` left in the particles loop."""
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip() == f"data_{block}"), None)
    if start is None:
        raise InputError(path, f"data_{block} block not found in the text")
    j = start + 1
    while j < len(lines) and lines[j].strip() != "loop_":
        j += 1
    j += 1
    while j < len(lines) and (lines[j].lstrip().startswith("_") or not lines[j].strip()):
        j += 1
    end = j
    while end < len(lines) and not lines[end].lstrip().startswith("data_"):
        end += 1
    data = [i for i in range(j, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    if len(data) != n_rows:
        raise InputError(path, f"particles loop has {len(data)} text lines but {n_rows} particles "
                               "(one particle per line is needed to keep the text)")
    drop = set(data) - {data[r] for r in rows.tolist()}
    return "".join(ln for i, ln in enumerate(lines) if i not in drop)


def write_selection(particles, latent: np.ndarray, row_mask, out: str | os.PathLike,
                    rule: str = "majority") -> Selection:
    """Latent-row selection -> particles (by ``rule``) -> ``out`` via :func:`write_subset`."""
    latent = np.asarray(latent)
    if latent.shape[0] != len(particles.table):
        raise InputError(particles.path, f"has {len(particles.table)} particles but the latent has {latent.shape[0]}")
    sel = particles_from_rows(row_mask, latent.shape, rule)
    if sel.particles.size == 0:
        raise ConfigError("the selection holds no particle; nothing written")
    write_subset(particles, sel.particles, out)
    return sel
