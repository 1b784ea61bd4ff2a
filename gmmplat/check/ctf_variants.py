"""The CTF-parameter row of the data check: the stated CTF with one parameter replaced by a usual value.

A wrong voltage, spherical aberration, amplitude contrast or a defocus in the wrong unit
changes the CTF's zeros, so the stated prediction fits poorly; without this row the
phase-flipped alternative (``|CTF|``) can fit least badly and be named as the mistake.
Each variant replaces one parameter for every particle; the row shows the best-fitting
testable variant, and the verdict names it (``docs/check.md``).
"""
from __future__ import annotations

import dataclasses

import torch

from ..physics.ctf import CTFParams

#: the values a typo or a converter most often replaces (kV, mm, fraction) and defocus unit factors
VOLTAGES_KV = (300.0, 200.0, 120.0)
CS_MM = (2.7, 0.01)
AMPLITUDE_CONTRAST = (0.1, 0.07)
DEFOCUS_FACTORS = (10.0, 0.1)  # nm taken for Å, or Å for nm


def ctf_variants(ctf: CTFParams) -> dict[str, tuple[CTFParams, str]]:
    """``{name: (CTF parameters, fix)}`` of the variants that differ from the stated values."""
    out = {}

    def replaced(**values):
        return dataclasses.replace(ctf, **{k: torch.full_like(getattr(ctf, k), v) if not callable(v) else v(getattr(ctf, k))
                                           for k, v in values.items()})

    def differs(field, value) -> bool:
        return bool((getattr(ctf, field) - value).abs().max() > 1e-3 * max(abs(value), 1e-3))

    for kv in VOLTAGES_KV:
        if differs("voltage_kv", kv):
            out[f"voltage {kv:g} kV"] = (replaced(voltage_kv=kv), f"set rlnVoltage (or --voltage) to {kv:g}")
    for mm in CS_MM:
        if differs("cs_mm", mm):
            out[f"Cs {mm:g} mm"] = (replaced(cs_mm=mm), f"set rlnSphericalAberration (or --cs-mm) to {mm:g}")
    for q in AMPLITUDE_CONTRAST:
        if differs("amplitude_contrast", q):
            out[f"amplitude contrast {q:g}"] = (replaced(amplitude_contrast=q),
                                                f"set rlnAmplitudeContrast (or --amplitude-contrast) to {q:g}")
    mean_defocus = float(ctf.defocus_u_angstrom.mean())
    factors = DEFOCUS_FACTORS + ((1e4,) if mean_defocus < 100.0 else ())  # values in µm
    for f in factors:
        out[f"defocus × {f:g}"] = (
            replaced(defocus_u_angstrom=lambda d, f=f: d * f, defocus_v_angstrom=lambda d, f=f: d * f),
            f"the defocus is in the wrong unit: multiply rlnDefocusU/V by {f:g} (RELION: Å)")
    return out
