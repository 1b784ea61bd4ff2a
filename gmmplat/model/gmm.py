"""The Gaussian mixture model of a structure: parameters, file format, 3D rendering.

A GMM of ``N`` isotropic Gaussians is a tensor ``(N, 5)`` of columns
``x, y, z`` (Å, relative to the box centre), ``amplitude`` (peak height) and
``sigma`` (Å); a batch of per-particle GMMs is ``(B, N, 5)``.  The density is
``ρ(r) = Σ a_i exp(-|r - μ_i|² / (2 σ_i²))`` (docs/conventions.md).

File format (``.npz``, written atomically), keys:

* ``format`` = ``"gmmplat-gmm"``, ``format_version`` = 1
* ``params`` float32 ``(N, 5)``: x, y, z [Å from box centre], amplitude, sigma [Å]
* ``box`` int, ``pixel_size_angstrom`` float, ``box_centre_world_angstrom`` float ``(3,)``
  (world coordinates of the box centre; world = GMM xyz + this)
* any further arrays in ``extras`` under their own names, e.g. ``bonds (E, 2)``,
  ``angles (A, 3)``, ``origin (N,)`` (0 model, 1 pseudoatom), ``mask__<name> (N,)`` bool.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError

FORMAT_NAME = "gmmplat-gmm"
FORMAT_VERSION = 1

# The columns of a parameter tensor ``(..., N, N_COLUMNS)``; index with these, never with numbers.
XYZ = slice(0, 3)  #: x, y, z [Å from the box centre]
AMPLITUDE = 3  #: peak height
WIDTH = 4  #: sigma [Å]
N_COLUMNS = 5
COLUMN_NAMES = ("x", "y", "z", "amplitude", "sigma")
POSITION_COLUMNS = (0, 1, 2)


def xyz(params):
    """Centres ``(..., N, 3)`` [Å] of parameters ``(..., N, 5)`` (a view; tensors or arrays)."""
    return params[..., XYZ]


def amplitude(params):
    """Peak heights ``(..., N)`` of parameters ``(..., N, 5)`` (a view)."""
    return params[..., AMPLITUDE]


def width(params):
    """Widths sigma ``(..., N)`` [Å] of parameters ``(..., N, 5)`` (a view)."""
    return params[..., WIDTH]


def with_xyz(params, new_xyz):
    """Parameters ``(..., N, 5)`` with the centres replaced by ``new_xyz (..., N, 3)`` (a copy)."""
    if isinstance(params, torch.Tensor):
        return torch.cat([torch.as_tensor(new_xyz, dtype=params.dtype, device=params.device),
                          params[..., AMPLITUDE:]], dim=-1)
    return np.concatenate([np.asarray(new_xyz, dtype=params.dtype), params[..., AMPLITUDE:]], axis=-1)


@dataclass
class GMM:
    """A neutral GMM with its box.  ``params``: float32 tensor ``(N, 5)``."""

    params: torch.Tensor
    box: int
    pixel_size_angstrom: float
    box_centre_world_angstrom: np.ndarray = field(default_factory=lambda: np.zeros(3))
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        self.params = torch.as_tensor(self.params, dtype=torch.float32)
        if self.params.ndim != 2 or self.params.shape[1] != N_COLUMNS:
            raise ValueError(f"GMM params must be (N, {N_COLUMNS}), got {tuple(self.params.shape)}")
        self.box_centre_world_angstrom = np.asarray(self.box_centre_world_angstrom, dtype=np.float64).reshape(3)

    @classmethod
    def from_arrays(cls, xyz_angstrom, amplitude, sigma_angstrom, box, pixel_size_angstrom, **kw) -> "GMM":
        xyz = torch.as_tensor(np.asarray(xyz_angstrom), dtype=torch.float32).reshape(-1, 3)
        n = xyz.shape[0]
        amp = torch.as_tensor(np.asarray(amplitude), dtype=torch.float32).expand(n)
        sig = torch.as_tensor(np.asarray(sigma_angstrom), dtype=torch.float32).expand(n)
        return cls(torch.cat([xyz, amp[:, None], sig[:, None]], dim=1), box, pixel_size_angstrom, **kw)

    @property
    def n(self) -> int:
        return int(self.params.shape[0])

    @property
    def xyz_angstrom(self) -> torch.Tensor:
        """``(N, 3)`` centres [Å from the box centre] (a view of ``params``)."""
        return xyz(self.params)

    @property
    def amplitude(self) -> torch.Tensor:
        """``(N,)`` peak heights (a view of ``params``)."""
        return amplitude(self.params)

    @property
    def sigma_angstrom(self) -> torch.Tensor:
        """``(N,)`` widths [Å] (a view of ``params``)."""
        return width(self.params)

    def world_xyz_angstrom(self, params: torch.Tensor | None = None) -> np.ndarray:
        """Centres in world coordinates (as the atomic model / ChimeraX see them) ``(..., N, 3)``."""
        p = self.params if params is None else params
        return xyz(p).detach().cpu().double().numpy() + self.box_centre_world_angstrom

    def masks(self) -> dict[str, np.ndarray]:
        return {k[len("mask__"):]: v.astype(bool) for k, v in self.extras.items() if k.startswith("mask__")}

    def save(self, path: str | os.PathLike) -> None:
        from ..io.atomic import atomic_write_path

        arrays = {
            "format": np.array(FORMAT_NAME),
            "format_version": np.array(FORMAT_VERSION),
            "params": self.params.detach().cpu().numpy().astype(np.float32),
            "box": np.array(int(self.box)),
            "pixel_size_angstrom": np.array(float(self.pixel_size_angstrom)),
            "box_centre_world_angstrom": self.box_centre_world_angstrom,
        }
        arrays.update({k: np.asarray(v) for k, v in self.extras.items()})
        with atomic_write_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GMM":
        """Read a ``.npz`` written by :meth:`save`; a one-line :class:`InputError` for anything
        that is not a finite gmmplat GMM (missing entries, wrong shapes, NaN/inf)."""
        if os.path.isdir(path):
            raise InputError(path, "is a folder, not a GMM file (.npz)")
        if not os.path.exists(path):
            raise InputError(path, "GMM file does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as exc:  # not a zip / not an .npz at all
            if isinstance(exc, OSError) and exc.filename:
                raise
            raise InputError(path, "not a GMM file (not a readable .npz archive)") from None
        except Exception as exc:  # a damaged archive
            raise InputError(path, f"not a readable GMM file ({type(exc).__name__}: {exc})") from None
        if not isinstance(data, dict) or str(data.get("format", "")) != FORMAT_NAME:
            raise InputError(path, "not a gmmplat GMM file (no 'format' = 'gmmplat-gmm' entry)")
        core = {"format", "format_version", "params", "box", "pixel_size_angstrom", "box_centre_world_angstrom"}
        missing = sorted(k for k in core - {"format_version"} if k not in data)
        if missing:
            raise InputError(path, f"GMM file lacks {', '.join(missing)}")
        params = data["params"]
        if params.ndim != 2 or params.shape[1] != 5 or params.shape[0] < 1 or params.dtype.kind not in "fiu":
            raise InputError(path, f"GMM params have shape {params.shape} ({params.dtype}); expected (N, 5) numbers")
        if not np.all(np.isfinite(params)):
            rows = np.flatnonzero(~np.isfinite(params).all(1))
            raise InputError(path, f"GMM params hold NaN/inf in {rows.size} Gaussian(s) (first: row {rows[0]}, "
                                   "counted from 0); rebuild the GMM")
        try:
            box, apix = int(data["box"]), float(data["pixel_size_angstrom"])
            centre = np.asarray(data["box_centre_world_angstrom"], dtype=np.float64).reshape(3)
        except (TypeError, ValueError):
            raise InputError(path, "GMM box, pixel_size_angstrom or box_centre_world_angstrom malformed") from None
        if box < 2 or not apix > 0 or not np.all(np.isfinite(centre)):
            raise InputError(path, f"GMM box {box} / pixel size {apix} / centre {centre.tolist()} not valid")
        return cls(
            torch.from_numpy(params.astype(np.float32)),
            box,
            apix,
            centre,
            {k: v for k, v in data.items() if k not in core},
        )


def render_map(params: torch.Tensor, box: int, pixel_size_angstrom: float, chunk: int = 8) -> torch.Tensor:
    """Density of a GMM ``(N, 5)`` on a ``box³`` grid ``[z, y, x]`` (ρ at voxel centres).

    Exact in Fourier space: the transform of each Gaussian is evaluated on the
    rfftn grid as a product of z, y and x factors and inverted; Gaussians with
    σ ≳ 1.5 voxels are rendered without aliasing.  The box is periodic: density
    within ~4σ of an edge wraps to the opposite side.  Differentiable.
    """
    M, apix = int(box), float(pixel_size_angstrom)
    p = params.to(torch.float32)
    centres, amp, sig = xyz(p), amplitude(p), width(p)
    k_full = torch.fft.fftfreq(M, d=apix, device=p.device)
    k_half = torch.fft.rfftfreq(M, d=apix, device=p.device)
    s2 = (2 * math.pi**2) * sig[:, None] ** 2
    weight = amp * (2 * math.pi * sig**2) ** 1.5 / apix**3

    def factor(k, coord):  # (N, K) complex: exp(-2π²σ²k² - 2πi k c)
        return torch.exp(torch.complex(-s2 * k[None] ** 2, -2 * math.pi * coord[:, None] * k[None]))

    fz, fy, fx = factor(k_full, centres[:, 2]), factor(k_full, centres[:, 1]), factor(k_half, centres[:, 0])
    fx = fx * weight[:, None]
    slabs = []
    for z0 in range(0, M, chunk):
        zy = fz[:, z0 : z0 + chunk, None] * fy[:, None, :]  # (N, cz, M)
        slabs.append((zy.reshape(p.shape[0], -1).T @ fx).reshape(-1, M, M // 2 + 1))
    F = torch.cat(slabs, dim=0)
    return torch.fft.fftshift(torch.fft.irfftn(F, s=(M, M, M)), dim=(0, 1, 2))
