"""The conventions the data check tests: the stated ones and the usual mistakes, with their fixes.

Each alternative is what the images would look like if the STAR file or the stack had
that mistake (see ``docs/check.md``):

* ``origin_flipped``: images = projection translated by ``+origin`` instead of ``−origin``.
* ``origin_swapped``: the origin's x and y columns exchanged (``rlnOriginXAngst`` ↔ ``Y``).
* ``image_transposed``: the stack's images have their x and y axes exchanged (a stack
  written ``[x, y]``); tested by transposing the images, since the prediction of a
  transposed image is no rotation of the map.
* ``rotation_transposed``: the Euler angles give ``Aᵀ`` (the inverse rotation) instead of ``A``.
* ``phase_flipped``: the stack was phase-flipped, so it carries ``|CTF|``, not the CTF.
* ``polarity``: the images have the opposite contrast (``−`` the stated prediction).
* ``ctf_parameters``: the stated CTF with one of voltage, Cs, amplitude contrast or the
  defocus unit replaced by a usual value (the best-fitting variant; :mod:`.ctf_variants`).
* ``shuffled``: a control, each image against another particle's prediction: what a
  STAR file whose rows do not match the stack order would give.
"""
from __future__ import annotations

import torch

from ..physics.fourier import Band, origin_phase

STATED = "stated"
ROW_LABELS = {
    STATED: "stated conventions",
    "origin_flipped": "origin sign flipped",
    "origin_swapped": "origin x/y columns swapped",
    "image_transposed": "images transposed (x/y)",
    "rotation_transposed": "rotation transposed",
    "phase_flipped": "phase-flipped stack (|CTF|)",
    "polarity": "polarity inverted",
    "shuffled": "shuffled rows (control)",
}
CTF_ROW = "ctf_parameters"  # the stated CTF with one parameter replaced (gmmplat.check.ctf_variants)
ROW_LABELS[CTF_ROW] = "CTF parameters (best variant)"
GEOMETRIC = ("origin_flipped", "origin_swapped", "image_transposed", "rotation_transposed", "phase_flipped", CTF_ROW)

_FIXES = {
    "origin_flipped": ("the origin sign is flipped",
                       "negate rlnOriginXAngst and rlnOriginYAngst (RELION: the particle sits at the image "
                       "centre minus the origin)"),
    "origin_swapped": ("the origin's x and y columns are swapped", "exchange rlnOriginXAngst and rlnOriginYAngst"),
    "image_transposed": ("the images are transposed (x and y axes exchanged)",
                         "rewrite the stack with its images transposed (x = column, y = row)"),
    "rotation_transposed": ("the rotations are transposed (inverse poses)",
                            "replace (rot, tilt, psi) by (-psi, -tilt, -rot)"),
    "phase_flipped": ("the stack is phase-flipped (it carries |CTF|)",
                      "use particles extracted without phase flipping"),
    "shuffled": ("the images fit their own STAR rows no better than other rows",
                 "check that the STAR rows match the stack order (rlnImageName), that the reference is this "
                 "structure, or use more particles (--n)"),
}


def polarity_fix(invert_contrast: bool) -> tuple[str, str]:
    if invert_contrast:
        return ("the images are white-protein (RELION polarity) but were inverted",
                "remove --invert-contrast")
    return "the images are dark-protein", "pass --invert-contrast"


def describe(names: list[str], invert_contrast: bool, ctf_variant: tuple[str, str] | None = None) -> tuple[str, str]:
    """(what is wrong, how to fix it) for a list of alternative names, joined with "and";
    ``ctf_variant``: (name, fix) of the CTF-parameter row's variant."""
    variant, variant_fix = ctf_variant or ("another value", "check the CTF parameters")
    fixes = {**_FIXES, CTF_ROW: (f"the CTF parameters are wrong ({variant} fits better)", variant_fix)}
    parts = [polarity_fix(invert_contrast) if n == "polarity" else fixes[n] for n in names]
    return " and ".join(p[0] for p in parts), "; ".join(p[1] for p in parts)


def shift_phase(band: Band, shifts_angstrom: torch.Tensor) -> torch.Tensor:
    """``exp(+2πi (kx·ox + ky·oy))`` ``(B, Ky, Kx)`` on the band: a projection translated by ``−origin`` (RELION)."""
    return origin_phase(band.kx, band.ky, shifts_angstrom)


def transpose_band(band: Band, F: torch.Tensor) -> torch.Tensor:
    """The band transform of the transposed (x ↔ y) real images whose band transform is ``F``."""
    return band.images_to_band(band.band_to_images(F).transpose(-1, -2).contiguous())


def predictions(band: Band, P: torch.Tensor, PT: torch.Tensor, shifts: torch.Tensor, ctf: torch.Tensor,
                observed: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(prediction, observed) band transforms ``(B, Ky, Kx)`` per row except the shuffled control.

    ``P``/``PT``: unshifted CTF-free projections with ``A`` / ``Aᵀ``; ``ctf`` real ``(B, Ky, Kx)``.
    """
    S = shift_phase(band, shifts)
    stated = P * S * ctf
    return {
        STATED: (stated, observed),
        "origin_flipped": (P * S.conj() * ctf, observed),
        "origin_swapped": (P * shift_phase(band, shifts.flip(-1)) * ctf, observed),
        "image_transposed": (stated, transpose_band(band, observed)),
        "rotation_transposed": (PT * S * ctf, observed),
        "phase_flipped": (P * S * ctf.abs(), observed),
        "polarity": (-stated, observed),
    }
