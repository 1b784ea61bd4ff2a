"""Synthetic particle datasets with known conformations, rendered in real space.

Images are formed independently of any GMM projector, from Gaussian atoms
projected in real space, CTF-modulated, with white Gaussian noise added last.
The rendering helpers (:func:`render_particles`, shared with the oracle, :func:`project_atoms`,
:func:`apply_ctf`, :func:`render_volume`, :func:`write_stack`) live in :mod:`gmmplat.synthetic.images`
(which describes the image formation) and are re-exported here.

SNR: ``snr = mean_i var(clean_i) / σ_noise²`` where ``var(clean_i)`` is the pixel
variance over the whole box of particle i's noise-free, CTF-modulated image.

See docs/sample_data.md for the datasets and the files written.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import gemmi
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..io.atomic import atomic_write_path, write_json
from ..io.models import read_model, write_models
from ..io.mrc import write_map
from ..io.star import TABLE_COLUMNS, write_particle_star
from ..physics.ctf import CTFParams, ctf_rfft
from ..physics.geometry import euler_to_matrix, matrix_to_euler, random_rotations
from .images import (  # noqa: F401 (re-exported)
    apply_ctf, project_atoms, render_particles, render_volume, write_stack)
from .motions import Motion, get_motion, summarize
from .nuisance import Nuisances, colour_noise, draw_nuisances, junk_coordinates, noise_spectrum

#: recorded in each dataset's ``metadata.json`` as ``origin_convention``: datasets without
#: this value were simulated with another origin sign and are stale (re-simulated by
#: :func:`gmmplat.demo.notebooks.ensure_sample_data`)
ORIGIN_CONVENTION = "relion: image = projection translated by -origin"

SNR_DEFINITION = (
    "snr = mean over particles of the pixel variance (whole box) of the noise-free, CTF-modulated image, "
    "divided by the variance of the added white Gaussian noise"
)


def nearest_frame(t: np.ndarray, n_frames: int) -> np.ndarray:
    """Index of the nearest of ``n_frames`` evenly spaced frames on [-1, 1] for each ``t`` (B,)."""
    return np.clip(np.rint((np.asarray(t) + 1.0) / 2.0 * (n_frames - 1)), 0, n_frames - 1).astype(np.int64)


def frame_values(n_frames: int) -> np.ndarray:
    """The frames' truth coordinates, ``(n_frames,)`` evenly spaced on [-1, 1]."""
    return np.linspace(-1.0, 1.0, n_frames)


def validate_options(
    n_particles: int, box: int, pixel_size_angstrom: float, snr: float, sigma_angstrom: float,
    images_per_stack: int, n_frames: int, n_consensus: int, max_shift_angstrom: float, seed: int = 0,
) -> None:
    """Raise :class:`ConfigError` (one line) for an unusable option."""
    def is_int(v):
        return isinstance(v, (int, np.integer))

    checks = [
        (is_int(n_particles) and n_particles >= 1, f"--n-particles must be a positive integer, got {n_particles}"),
        (is_int(box) and box >= 16 and box % 2 == 0, f"--box must be an even integer >= 16, got {box}"),
        (math.isfinite(pixel_size_angstrom) and pixel_size_angstrom > 0,
         f"--pixel-size must be positive, got {pixel_size_angstrom}"),
        (not math.isnan(snr) and snr > 0, f"--snr must be positive (inf for no noise), got {snr}"),
        (math.isfinite(sigma_angstrom) and sigma_angstrom > 0, f"--sigma must be positive, got {sigma_angstrom}"),
        (images_per_stack >= 1, f"images per stack must be >= 1, got {images_per_stack}"),
        (n_frames >= 2, f"n_frames must be >= 2, got {n_frames}"),
        (n_consensus >= 1, f"n_consensus must be >= 1, got {n_consensus}"),
        (max_shift_angstrom >= 0, f"max shift must be >= 0 Å, got {max_shift_angstrom}"),
        (is_int(seed) and seed >= 0, f"--seed must be a non-negative integer, got {seed}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def simulate_dataset(
    name: str,
    out_dir: str | Path,
    n_particles: int = 3000,
    box: int = 64,
    pixel_size_angstrom: float = 2.0,
    snr: float = 0.05,
    seed: int = 0,
    sigma_angstrom: float = 3.0,
    invert_contrast: bool = False,
    images_per_stack: int = 1000,
    n_frames: int = 11,
    n_consensus: int = 21,
    max_shift_angstrom: float = 4.0,
    defocus_range_angstrom: tuple[float, float] = (8000.0, 25000.0),
    max_astigmatism_angstrom: float = 400.0,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    box_centre_world_angstrom: tuple[float, float, float] = (100.0, 110.0, 90.0),
    chunk_size: int | None = None,
    progress: bool = True,
    nuisances: Nuisances | None = None,
) -> dict:
    """Simulate dataset ``name`` (``hinge``, ``bend``, ``coupled``, ``tetramer``) into ``out_dir``; returns its metadata.

    Writes ``particles.star``, ``stacks/particles_NNN.mrcs``, ``consensus_map.mrc``,
    ``neutral_model.pdb``, ``truth.csv``, ``truth_frames.pdb``, ``masks.json`` and,
    last, ``metadata.json`` (see docs/sample_data.md).  Deterministic for a seed.
    ``snr=inf`` writes noise-free images.  ``chunk_size`` (particles rendered at once) defaults to
    :func:`render_chunk_size`.  ``nuisances`` (:mod:`gmmplat.synthetic.nuisance`): junk,
    B-factors, coloured noise, scale and pose errors, each recorded per particle in ``truth.csv``;
    the SNR's signal variance is then the mean over the particles that are not junk.
    """
    nuisances = nuisances or Nuisances()
    t_start = time.perf_counter()
    validate_options(n_particles, box, pixel_size_angstrom, snr, sigma_angstrom, images_per_stack, n_frames,
                     n_consensus, max_shift_angstrom, seed)
    motion = get_motion(name)
    model = motion.model
    chunk_size = render_chunk_size(model.n_atoms, box) if chunk_size is None else chunk_size
    if _CTF_BLOCK % chunk_size:
        raise ConfigError(f"chunk_size must divide {_CTF_BLOCK}, got {chunk_size}")
    amplitudes = model.electrons
    _check_fits(motion, box, pixel_size_angstrom, max_shift_angstrom, sigma_angstrom)
    out = Path(out_dir).absolute()
    (out / "stacks").mkdir(parents=True, exist_ok=True)
    (out / "metadata.json").unlink(missing_ok=True)  # the dataset is incomplete until it is rewritten

    draws = _draw_particles(n_particles, seed, max_shift_angstrom, defocus_range_angstrom,
                            max_astigmatism_angstrom, voltage_kv, cs_mm, amplitude_contrast)
    A = euler_to_matrix(draws["rot_deg"], draws["tilt_deg"], draws["psi_deg"]).numpy()  # the true poses
    shifts = np.stack([draws["shift_x_angstrom"], draws["shift_y_angstrom"]], 1)
    nz = draw_nuisances(n_particles, nuisances, seed)
    # the envelope is simulated; the STAR keeps rlnCtfBfactor 0, as a refinement that does not fit it
    ctf = CTFParams.from_values(n_particles, **{k: draws[k] for k in _CTF_KEYS}, bfactor=nz["bfactor_angstrom2"])
    junk = nz["junk"]

    clean = np.empty((n_particles, box, box), dtype=np.float32)
    variance_sum = 0.0
    bar = tqdm(total=n_particles, desc=f"simulate {name}", unit="particle", disable=not progress)
    for i in range(0, n_particles, chunk_size):
        j = min(i + chunk_size, n_particles)
        if i % _CTF_BLOCK == 0:  # evaluating the CTF has a large fixed cost: do it for many particles at once
            ctf_block = ctf_rfft(ctf.subset(slice(i, i + _CTF_BLOCK)), box, pixel_size_angstrom)
        xyz = motion.coordinates_batch(draws["t"][i:j])
        junk_projections = {b: _junk_image(nz, i + b, xyz[b], amplitudes, A, shifts, box, pixel_size_angstrom,
                                           sigma_angstrom, seed) for b in np.flatnonzero(junk[i:j])}
        ctf_rows = ctf_block[i % _CTF_BLOCK : i % _CTF_BLOCK + j - i]
        img = render_particles(xyz, amplitudes, A[i:j], shifts[i:j], ctf_rows,
                               box, pixel_size_angstrom, sigma_angstrom, scale=nz["scale"][i:j],
                               invert_contrast=invert_contrast, replace=junk_projections)
        variance_sum += float(img.var(dim=(1, 2), unbiased=False)[torch.as_tensor(~junk[i:j])].sum())
        clean[i:j] = img.numpy()
        bar.update(j - i)
    bar.close()
    signal_variance = variance_sum / max(1, int((~junk).sum()))
    spectrum = None
    if nuisances.noise_power_at_nyquist != 1.0:
        spectrum = noise_spectrum(box, pixel_size_angstrom, nuisances.noise_power_at_nyquist)
    noise_std = 0.0 if math.isinf(snr) else math.sqrt(signal_variance / snr)

    noise_gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 5]).generate_state(1)[0]))
    n_stacks = math.ceil(n_particles / images_per_stack)
    stack_paths = [out / "stacks" / f"particles_{k:03d}.mrcs" for k in range(n_stacks)]
    for old in (out / "stacks").glob("particles_*.mrcs"):
        if old not in stack_paths:
            old.unlink()
    for k, path in enumerate(stack_paths):
        rows = slice(k * images_per_stack, min((k + 1) * images_per_stack, n_particles))
        images = torch.as_tensor(clean[rows], dtype=torch.float64)
        if noise_std > 0:
            noise = noise_std * torch.randn(images.shape, generator=noise_gen, dtype=torch.float64)
            images = images + (noise if spectrum is None else colour_noise(noise, spectrum))
        write_stack(path, images.numpy(), pixel_size_angstrom)

    written = _written_poses(draws, nz, nuisances)
    table = _particle_table(written, stack_paths, images_per_stack, pixel_size_angstrom, box)
    write_particle_star(out / "particles.star", table, version="3.1")
    centre = np.asarray(box_centre_world_angstrom, dtype=np.float64)
    _write_truth(out, motion, draws, nz, n_frames, centre)
    t_consensus = np.linspace(-1.0, 1.0, n_consensus) if n_consensus > 1 else np.zeros(1)
    conformations = motion.coordinates_batch(t_consensus)  # (C, N, 3)
    volume = render_volume(conformations.reshape(-1, 3), np.tile(amplitudes, n_consensus) / n_consensus,
                           box, pixel_size_angstrom, sigma_angstrom)
    origin = centre - (box // 2) * pixel_size_angstrom
    write_map(out / "consensus_map.mrc", volume.astype(np.float32), pixel_size_angstrom, origin)

    options = dict(
        n_particles=n_particles, box=box, pixel_size_angstrom=pixel_size_angstrom,
        snr=snr if math.isfinite(snr) else "inf", seed=seed,  # strict JSON has no Infinity
        sigma_angstrom=sigma_angstrom, invert_contrast=invert_contrast, images_per_stack=images_per_stack,
        n_frames=n_frames, n_consensus=n_consensus, max_shift_angstrom=max_shift_angstrom,
        defocus_range_angstrom=list(defocus_range_angstrom), max_astigmatism_angstrom=max_astigmatism_angstrom,
        voltage_kv=voltage_kv, cs_mm=cs_mm, amplitude_contrast=amplitude_contrast,
        nuisances=nuisances.to_dict(),
    )
    metadata = _metadata(name, motion, options, centre, origin, signal_variance, noise_std, n_stacks,
                         t_consensus, time.perf_counter() - t_start)
    write_json(out / "metadata.json", metadata)
    return metadata


_CTF_BLOCK = 1024  # a multiple of chunk_size
_RENDER_BUDGET_BYTES = 512 * 2**20


def render_chunk_size(n_atoms: int, box: int) -> int:
    """Particles rendered at once: 128, halved while the two ``(B, N_atoms, M)`` float64 factors of
    :func:`project_atoms` exceed 512 MB (a 12,000-atom model at box 256 renders 8 at a time)."""
    chunk = 128
    while chunk > 1 and chunk * n_atoms * box * 16 > _RENDER_BUDGET_BYTES:
        chunk //= 2
    return chunk
#: columns of ``truth.csv`` holding the true pose and origin (the STAR file's names)
TRUE_POSE_COLUMNS = ("rot_deg", "tilt_deg", "psi_deg", "shift_x_angstrom", "shift_y_angstrom")
_CTF_KEYS = ("defocus_u_angstrom", "defocus_v_angstrom", "defocus_angle_deg", "voltage_kv", "cs_mm",
             "amplitude_contrast")


def _check_fits(motion: Motion, box: int, apix: float, max_shift: float, sigma: float) -> None:
    radius = float(np.linalg.norm(motion.coordinates_batch(np.linspace(-1, 1, 11)), axis=-1).max())
    half = box // 2 * apix
    if radius + max_shift + 2 * sigma > half:
        raise ConfigError(
            f"the {motion.name} molecule (radius {radius:.0f} Å) plus shifts ({max_shift:g} Å) and blur "
            f"(2σ = {2 * sigma:g} Å) does not fit in half a box of {box} px × {apix:g} Å = {half:g} Å; "
            f"use a larger --box or --pixel-size"
        )


def _draw_particles(n, seed, max_shift, defocus_range, max_astig, voltage_kv, cs_mm, q) -> dict[str, np.ndarray]:
    """Per-particle truth, poses, shifts and CTF, each from its own seeded stream.

    Angles and shifts are rounded to the 6 decimals the STAR file holds (defocus to 2), so the
    values written are exactly the values simulated.
    """
    def rng(k):
        return np.random.default_rng(np.random.SeedSequence([seed, k]))

    pose_gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0]).generate_state(1)[0]))
    euler = np.round(matrix_to_euler(random_rotations(n, pose_gen)).numpy(), 6)
    shift = np.round(rng(2).uniform(-max_shift, max_shift, (n, 2)), 6)
    r = rng(3)
    du = r.uniform(defocus_range[0], defocus_range[1], n)
    dv = du - r.uniform(0.0, max_astig, n)
    return {
        "t": rng(1).uniform(-1.0, 1.0, n),
        "rot_deg": euler[:, 0], "tilt_deg": euler[:, 1], "psi_deg": euler[:, 2],
        "shift_x_angstrom": shift[:, 0], "shift_y_angstrom": shift[:, 1],
        "defocus_u_angstrom": np.round(du, 2), "defocus_v_angstrom": np.round(dv, 2),
        "defocus_angle_deg": np.round(r.uniform(0.0, 180.0, n), 6),
        "voltage_kv": np.full(n, float(voltage_kv)), "cs_mm": np.full(n, float(cs_mm)),
        "amplitude_contrast": np.full(n, float(q)),
    }


def _particle_table(draws, stack_paths, per_stack, apix, box) -> pd.DataFrame:
    n = len(draws["t"])
    k = np.arange(n)
    table = pd.DataFrame({
        "stack_path": [str(stack_paths[i // per_stack]) for i in k],
        "image_index": k % per_stack,
        **{c: draws[c] for c in TABLE_COLUMNS if c in draws},
        "phase_shift_deg": 0.0, "bfactor": 0.0, "pixel_size_angstrom": float(apix), "box_size": int(box),
        "optics_group": 1,
    })
    return table[TABLE_COLUMNS]


def _junk_image(nz, k, xyz, amplitudes, A, shifts, box, apix, sigma, seed) -> np.ndarray:
    """Real-space image ``(M, M)`` of junk particle ``k`` (see :func:`junk_coordinates`) at its drawn pose."""
    coords, rows = junk_coordinates(str(nz["junk_kind"][k]), xyz, nz["fragment_fraction"][k],
                                    nz["fragment_start"][k], seed, k)
    if len(rows) == 0:
        return np.zeros((box, box))
    return project_atoms(coords, amplitudes[rows], A[k : k + 1], shifts[k : k + 1], box, apix, sigma)[0]


def _written_poses(draws: dict, nz: dict, nuisances: Nuisances) -> dict:
    """The draws with the poses and origins the STAR file states: the true ones turned and moved by the
    drawn errors (rounded to the STAR's 6 decimals), or the true ones without pose errors."""
    out = dict(draws)
    if nuisances.pose_error_deg > 0:
        A = euler_to_matrix(draws["rot_deg"], draws["tilt_deg"], draws["psi_deg"]).numpy()
        euler = np.round(matrix_to_euler(torch.as_tensor(nz["rotation_error"] @ A)).numpy(), 6)
        out.update(rot_deg=euler[:, 0], tilt_deg=euler[:, 1], psi_deg=euler[:, 2])
    if nuisances.shift_error_angstrom > 0:
        err = nz["shift_error_angstrom"]
        out.update(shift_x_angstrom=np.round(draws["shift_x_angstrom"] + err[:, 0], 6),
                   shift_y_angstrom=np.round(draws["shift_y_angstrom"] + err[:, 1], 6))
    return out


def _write_truth(out: Path, motion: Motion, draws: dict, nz: dict, n_frames: int, centre: np.ndarray) -> None:
    """neutral_model.pdb, truth_frames.pdb, truth.csv and masks.json (world coordinates = box-relative + centre).

    ``truth.csv`` holds, per particle, ``t`` and its nearest ``frame``, the ``junk`` flag and ``junk_kind``,
    the simulated ``bfactor_angstrom2`` and ``scale``, and the true pose and origin (``rot_deg`` …
    ``shift_y_angstrom``, which the STAR file states with the pose errors added)."""
    t = draws["t"]
    model = motion.model
    options = gemmi.PdbWriteOptions()
    options.cryst1_record = False
    with atomic_write_path(out / "neutral_model.pdb") as tmp:
        model.to_structure(model.xyz + centre, name=motion.name).write_pdb(str(tmp), options)
    frames = motion.coordinates_batch(frame_values(n_frames)) + centre
    write_models(out / "truth_frames.pdb", read_model(out / "neutral_model.pdb"), frames)
    truth = pd.DataFrame({"particle_index": np.arange(len(t)), "t": t, "frame": nearest_frame(t, n_frames),
                          "junk": nz["junk"].astype(int), "junk_kind": nz["junk_kind"],
                          "bfactor_angstrom2": nz["bfactor_angstrom2"], "scale": nz["scale"],
                          **{c: draws[c] for c in TRUE_POSE_COLUMNS}})
    with atomic_write_path(out / "truth.csv") as tmp:
        truth.to_csv(tmp, index=False)
    masks = {}
    for key, mask in motion.masks.items():
        ranges = model.residue_ranges(mask)
        spec = ",".join(f"{c}:{a}-{b}" for c, runs in ranges.items() for a, b in runs)
        masks[key] = {"residues": ranges, "selection": spec, "chimerax": " ".join(f"/{x}" for x in spec.split(",")),
                      "n_atoms": int(mask.sum())}
    write_json(out / "masks.json", {"dataset": motion.name, "masks": masks,
                                     "note": "residue ranges are 1-based and inclusive, per chain"})


def _metadata(name, motion, options, centre, origin, signal_variance, noise_std, n_stacks, t_consensus, elapsed):
    from .. import __version__

    info = dict(motion.info)
    for key in ("hinge_point_angstrom", "axis_point_angstrom"):
        if key in info:
            info[key.replace("_angstrom", "_world_angstrom")] = (np.asarray(info[key]) + centre).tolist()
    return {
        "dataset": name,
        "complete": True,
        "origin_convention": ORIGIN_CONVENTION,
        "package": "gmmplat",
        "package_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": options,
        "seed": options["seed"],
        "description": motion.description,
        "motion": info,
        "summary": summarize(motion),
        "truth": {"coordinate": "t", "range": [-1.0, 1.0], "distribution": "uniform on [-1, 1]",
                  "n_frames": options["n_frames"], "frame_t": frame_values(options["n_frames"]).tolist(),
                  "files": ["truth.csv", "truth_frames.pdb", "masks.json"]},
        "snr_definition": SNR_DEFINITION,
        "signal_variance": signal_variance,
        "noise_std": noise_std,
        "image_formation": "real-space sum of projected 3D Gaussians (peak = electrons: C 6, N 7, O 8, S 16), "
                           "RELION pose and origin conventions, CTF on centred rfft, then noise",
        "box_centre_world_angstrom": centre.tolist(),
        "map_origin_angstrom": np.asarray(origin).tolist(),
        "coordinates": "model world coordinates = box-centre-relative coordinates + box_centre_world_angstrom",
        "consensus_t": np.asarray(t_consensus).tolist(),
        "n_stacks": n_stacks,
        "files": {"star": "particles.star", "stacks": [f"stacks/particles_{k:03d}.mrcs" for k in range(n_stacks)],
                  "map": "consensus_map.mrc", "model": "neutral_model.pdb", "frames": "truth_frames.pdb",
                  "truth": "truth.csv", "masks": "masks.json"},
        "elapsed_seconds": round(elapsed, 2),
    }
