"""References for the data check: unshifted, CTF-free projections on a low-pass band.

A reference turns RELION rotation matrices ``A (B, 3, 3)`` into the centred Fourier
transforms of the projections, ``(B, Ky, Kx)`` complex64 on a :class:`~gmmplat.physics.fourier.Band`
of the particles' box (no shift, no CTF: the check applies those itself, once per
convention it tests).

* :class:`MapReference`: a density map.  The map is Fourier-cropped to the few
  frequencies the band needs (a box of ``2·(r+2)`` voxels for a band radius of ``r``
  Fourier pixels, the same physical size as the particles' box, so its Fourier grid
  is the band's), then projected by central slices with ``torch-fourier-slice``
  (``project_3d_to_2d`` with ``rotation_matrices = Aᵀ``, as ``docs/conventions.md``).
* :class:`GMMReference`: a GMM ``(N, 5)`` (Å from the box centre), projected by the
  separable projector; :func:`model_reference` makes one from an atomic model's heavy
  atoms (σ = 1 Å, amplitude = atomic number) in the map's frame.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..model.gmm import AMPLITUDE, N_COLUMNS, WIDTH, XYZ
from ..physics.fourier import Band, image_to_rfft

PIXEL_SIZE_RTOL = 0.005


def _fit_box(volume: np.ndarray, box: int) -> np.ndarray:
    """Centre-crop or zero-pad a cubic ``[z, y, x]`` volume to ``box`` voxels (centre voxel ``M//2`` kept)."""
    m = volume.shape[0]
    if m == box:
        return volume
    out = np.zeros((box,) * 3, dtype=np.float32)
    lo_src, lo_dst = max(0, m // 2 - box // 2), max(0, box // 2 - m // 2)
    n = min(m - lo_src, box - lo_dst)
    sl_src, sl_dst = slice(lo_src, lo_src + n), slice(lo_dst, lo_dst + n)
    out[sl_dst, sl_dst, sl_dst] = volume[sl_src, sl_src, sl_src]
    return out


def _band_radius_px(band: Band) -> int:
    """Largest |integer Fourier index| on the band's rows or columns."""
    delta = 1.0 / (band.box * band.pixel_size_angstrom)
    return int(round(float(torch.max(band.ky.abs().max(), band.kx.abs().max())) / delta))


class MapReference:
    """A consensus map ``[z, y, x]`` (cubic), projected by central slices of its Fourier transform.

    Args:
        volume: ``(M, M, M)`` density, box centre at voxel ``M//2`` per axis.
        pixel_size_angstrom: voxel size; must equal the particles' pixel size.
        path: the map file, named in errors.
    """

    def __init__(self, volume: np.ndarray, pixel_size_angstrom: float, path=None):
        volume = np.asarray(volume, dtype=np.float32)
        if volume.ndim != 3 or len(set(volume.shape)) != 1:
            raise InputError(path, f"map is not cubic ({'x'.join(map(str, volume.shape[::-1]))} voxels)")
        self.volume = volume
        self.pixel_size_angstrom = float(pixel_size_angstrom)
        self.path = path
        self._cache: tuple | None = None

    @classmethod
    def from_map(cls, map_data, path=None) -> "MapReference":
        return cls(map_data.data, map_data.voxel_size_angstrom, path)

    def describe(self) -> str:
        return f"map {self.path}" if self.path else "map"

    def _cropped(self, band: Band) -> tuple[torch.Tensor, int]:
        """The map Fourier-cropped to a box of ``mc`` voxels holding the band's frequencies."""
        key = (band.box, band.pixel_size_angstrom, _band_radius_px(band))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        if abs(self.pixel_size_angstrom - band.pixel_size_angstrom) > PIXEL_SIZE_RTOL * band.pixel_size_angstrom:
            raise InputError(self.path, f"map pixel size {self.pixel_size_angstrom:g} Å differs from the particles' "
                                        f"{band.pixel_size_angstrom:g} Å")
        if not np.any(self.volume):  # every row would fit equally badly: say why instead
            raise InputError(self.path, "map is empty (every voxel is 0): nothing to project and compare")
        M = band.box
        vol = torch.from_numpy(_fit_box(self.volume, M)).to(torch.float64)
        mc = min(M, max(2 * (key[2] + 2), 16))  # the projector averages 4 voxels of each face: at least 10
        F = torch.fft.fftn(torch.fft.ifftshift(vol))
        idx = torch.arange(-(mc // 2), mc - mc // 2) % M  # integer frequencies -mc/2 .. mc/2-1
        Fc = F[idx][:, idx][:, :, idx]
        Fc = torch.fft.ifftshift(Fc)  # back to FFT order of the small box
        small = torch.fft.fftshift(torch.fft.ifftn(Fc).real).to(torch.float32) * (mc / M) ** 3
        self._cache = (key, small, mc)
        return small, mc

    def project(self, rotations: torch.Tensor, band: Band) -> torch.Tensor:
        """RELION matrices ``(B, 3, 3)`` -> complex64 ``(B, Ky, Kx)`` (no shift, no CTF)."""
        from torch_fourier_slice import project_3d_to_2d

        small, mc = self._cropped(band)
        images = project_3d_to_2d(small, rotation_matrices=rotations.to(torch.float32).transpose(-1, -2),
                                  pad_factor=2.0)  # (B, mc, mc)
        F = image_to_rfft(images)  # (B, mc, mc//2+1), integer frequencies of the particles' box
        delta = 1.0 / (band.box * band.pixel_size_angstrom)
        rows = torch.round(band.ky / delta).long() % mc
        cols = torch.round(band.kx / delta).long()
        return F[:, rows][:, :, cols].to(torch.complex64)


class GMMReference:
    """A GMM ``(N, 5)`` (x, y, z Å from the box centre, amplitude, σ Å) and the separable projector."""

    def __init__(self, params: torch.Tensor, name: str = "GMM", max_elements: int = 20_000_000):
        self.params = torch.as_tensor(params, dtype=torch.float32)
        self.name = name
        self.max_elements = int(max_elements)  # bound of B·N·(Kx+Ky) per projector call

    def describe(self) -> str:
        return self.name

    def project(self, rotations: torch.Tensor, band: Band) -> torch.Tensor:
        from ..projectors import PROJECTORS

        projector = PROJECTORS.build("separable", band=band)
        B, N = rotations.shape[0], self.params.shape[0]
        chunk = max(1, self.max_elements // max(1, N * (band.shape[0] + band.shape[1])))
        out = []
        with torch.no_grad():
            for s in range(0, B, chunk):
                A = rotations[s : s + chunk].to(torch.float32)
                out.append(projector(self.params, A))
        return torch.cat(out)


def model_reference(model_path, map_data, map_path=None) -> GMMReference:
    """Heavy atoms of ``model_path`` as Gaussians (σ = 1 Å, amplitude = atomic number), in the
    frame of ``map_data`` (coordinates relative to the world position of its box centre)."""
    from ..io.models import read_model
    from ..io.mrc import box_centre_world_angstrom
    from ..neutral.from_model import electron_counts

    model = read_model(model_path, selection="heavy")
    xyz = model.xyz_angstrom - box_centre_world_angstrom(map_data)
    params = np.zeros((len(xyz), N_COLUMNS), dtype=np.float32)
    params[:, XYZ] = xyz
    params[:, AMPLITUDE] = electron_counts(model.element)
    params[:, WIDTH] = 1.0
    half = 0.5 * map_data.data.shape[0] * map_data.voxel_size_angstrom
    if np.mean(np.all(np.abs(xyz) < half, axis=1)) < 0.5:
        raise InputError(model_path, f"fewer than half of the atoms lie inside the box of {map_path or 'the map'}; "
                                     "the model must be fitted into the consensus map")
    return GMMReference(torch.from_numpy(params), name=f"model {model_path}")
