"""RELION's contrast transfer function on centred rfft grids, batched.

``CTF(k) = sin(π λ Δf(θ) |k|² − (π/2) Cs λ³ |k|⁴ + φ + arctan(Q/√(1−Q²))) · exp(−B |k|²/4)``
with ``Δf(θ) = (ΔU+ΔV)/2 + (ΔU−ΔV)/2 · cos(2(θ − θ_ast))`` (underfocus positive),
so ``CTF(0) = +Q``: protein white, RELION polarity.  The phase part is evaluated
by ``torch-ctf`` (defocus converted from Å to µm); the B-factor envelope is ours.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch_ctf import calculate_ctf_2d

from .fourier import Band


@dataclass
class CTFParams:
    """Per-particle CTF parameters, each a tensor of shape ``(B,)`` (RELION units)."""

    defocus_u_angstrom: torch.Tensor
    defocus_v_angstrom: torch.Tensor
    defocus_angle_deg: torch.Tensor
    voltage_kv: torch.Tensor
    cs_mm: torch.Tensor
    amplitude_contrast: torch.Tensor
    phase_shift_deg: torch.Tensor
    bfactor: torch.Tensor

    @classmethod
    def from_table(cls, table, index=None) -> "CTFParams":
        """From a normalized particle table (pandas, columns named as the fields)."""
        rows = table if index is None else table.iloc[index]
        return cls(**{f.name: torch.tensor(rows[f.name].to_numpy(dtype="float64")) for f in fields(cls)})

    @classmethod
    def from_values(cls, n: int, **values) -> "CTFParams":
        """Broadcast scalars or arrays to ``n`` particles; ``phase_shift_deg``, ``bfactor`` default 0."""
        values.setdefault("phase_shift_deg", 0.0)
        values.setdefault("bfactor", 0.0)
        return cls(
            **{
                f.name: torch.as_tensor(values[f.name], dtype=torch.float64).expand(n).clone()
                for f in fields(cls)
            }
        )

    def __len__(self) -> int:
        return int(self.defocus_u_angstrom.shape[0])

    def subset(self, index) -> "CTFParams":
        return CTFParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device) -> "CTFParams":
        return CTFParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def electron_wavelength_angstrom(voltage_kv: torch.Tensor) -> torch.Tensor:
    """Relativistic electron wavelength (Å) for an acceleration voltage in kV (RELION's formula)."""
    V = torch.as_tensor(voltage_kv, dtype=torch.float64) * 1e3
    return 12.2643247 / torch.sqrt(V * (1.0 + V * 0.978466e-6))


def ctf_rfft(params: CTFParams, box: int, pixel_size_angstrom: float, band: Band | None = None) -> torch.Tensor:
    """CTF on the centred rfft grid ``(B, M, M//2+1)``, or on ``band``'s grid ``(B, Ky, Kx)``. float32."""
    # torch-ctf needs astigmatism >= 0: where V > U, swap them and turn the axis by 90 degrees
    # (the same Δf(θ)).
    du, dv = params.defocus_u_angstrom, params.defocus_v_angstrom
    swap = dv > du
    angle = torch.where(swap, params.defocus_angle_deg + 90.0, params.defocus_angle_deg)
    du, dv = torch.where(swap, dv, du), torch.where(swap, du, dv)
    ctf = calculate_ctf_2d(
        defocus=((du + dv) / 2 * 1e-4).float(),
        astigmatism=((du - dv) / 2 * 1e-4).float(),
        astigmatism_angle=angle.float(),
        voltage=params.voltage_kv.float(),
        spherical_aberration=params.cs_mm.float(),
        amplitude_contrast=params.amplitude_contrast.float(),
        phase_shift=params.phase_shift_deg.float(),
        pixel_size=float(pixel_size_angstrom),
        image_shape=(box, box),
        rfft=True,
        fftshift=False,
    ).reshape(len(params), box, box // 2 + 1)
    if band is not None:
        ctf = band.crop(ctf)
    if bool((params.bfactor != 0).any()):
        ky = torch.fft.fftfreq(box, d=pixel_size_angstrom, device=ctf.device)
        kx = torch.fft.rfftfreq(box, d=pixel_size_angstrom, device=ctf.device)
        if band is not None:
            ky, kx = ky[band.ky_index.to(ctf.device)], kx[band.kx_index.to(ctf.device)]
        k2 = (ky[:, None] ** 2 + kx[None, :] ** 2).to(ctf.dtype)
        ctf = ctf * torch.exp(-params.bfactor.to(ctf.dtype)[:, None, None] * k2 / 4)
    return ctf
