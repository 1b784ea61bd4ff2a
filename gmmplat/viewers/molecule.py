"""Atomic models and their trajectories in nglview (cartoon + a chosen representation).

A multi-model PDB/mmCIF (e.g. the morphed models of a latent trajectory, or the
sample data's ``truth_frames.pdb``) becomes an nglview trajectory: the first model
is the topology, every model one frame, and the widget's player / ``frame`` trait
steps through them (coordinates are sent from the kernel frame by frame).

nglview is pinned to 4.0: 4.0.1 ships a JupyterLab extension (3.1.5) that does not
match its Python side and draws nothing ("Module nglview-js-widgets, version 4.0 is
not registered"); see docs/notebooks.md.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

try:  # nglview's base classes; the viewer itself needs nglview anyway
    from nglview import Structure as _Structure, Trajectory as _Trajectory
except ImportError:  # pragma: no cover - nglview is in the [notebooks] extra
    class _Structure:
        def __init__(self):
            self.id = ""

    class _Trajectory:
        def __init__(self):
            self.id, self.shown = "", True


class FramesTrajectory(_Trajectory, _Structure):
    """nglview trajectory over the models of one structure.

    Args:
        structure: a one-model ``gemmi.Structure`` (the topology NGL parses).
        frames_xyz: float32 ``(F, n_atoms, 3)`` Å, atoms in the structure's order.
        initial_frame: the frame whose coordinates the topology is sent with: NGL draws it
            before any frame message (one sent before the viewer has loaded is lost).
    """

    def __init__(self, structure, frames_xyz: np.ndarray, initial_frame: int = 0):
        _Trajectory.__init__(self)
        _Structure.__init__(self)
        self.ext = "pdb"
        self.params = {}
        self._structure = structure
        self.frames_xyz = np.ascontiguousarray(frames_xyz, dtype=np.float32)
        self.initial_frame = int(initial_frame)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "FramesTrajectory":
        """All models of a PDB/mmCIF with the first model's atom count (others are an error)."""
        import gemmi

        path = Path(path)
        if not path.is_file():
            raise InputError(path, "atomic model file not found")
        try:
            st = gemmi.read_structure(str(path))
        except Exception as exc:  # gemmi raises several types with long texts
            raise InputError(path, f"cannot read atomic model ({str(exc).splitlines()[0]})") from None
        if len(st) == 0 or st[0].count_atom_sites() == 0:
            raise InputError(path, "no atoms in the first model")
        frames = []
        for k, model in enumerate(st):
            xyz = [a.pos.tolist() for ch in model for res in ch for a in res]
            if frames and len(xyz) != len(frames[0]):
                raise InputError(path, f"model {k + 1} has {len(xyz)} atoms, model 1 has {len(frames[0])}")
            frames.append(xyz)
        first = st.clone()
        while len(first) > 1:
            del first[len(first) - 1]
        return cls(first, np.asarray(frames, dtype=np.float32))

    @property
    def n_frames(self) -> int:
        return int(self.frames_xyz.shape[0])

    def get_coordinates(self, index: int) -> np.ndarray:
        return self.frames_xyz[int(index)]

    def get_structure_string(self) -> str:
        """PDB text of the topology at :attr:`initial_frame`."""
        import gemmi

        st = self._structure.clone()
        atoms = [a for ch in st[0] for res in ch for a in res]
        for atom, (x, y, z) in zip(atoms, self.frames_xyz[self.initial_frame].tolist()):
            atom.pos = gemmi.Position(x, y, z)
        options = gemmi.PdbWriteOptions()
        options.cryst1_record = False
        return st.make_pdb_string(options)


def _trajectory(source: Any, frames_xyz: np.ndarray | None) -> FramesTrajectory:
    if isinstance(source, FramesTrajectory):
        return source
    if frames_xyz is None and isinstance(source, (str, os.PathLike)):
        return FramesTrajectory.from_file(source)
    if frames_xyz is None and isinstance(source, tuple) and len(source) == 2:
        source, frames_xyz = source
    if frames_xyz is None:
        raise ConfigError("model_view needs a model file, or a template (path or AtomModel) with frames_xyz (F, n_atoms, 3)")
    from ..io.models import read_model, write_models

    template = read_model(source) if isinstance(source, (str, os.PathLike)) else source
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.pdb"
        try:
            write_models(path, template, np.asarray(frames_xyz))
        except ValueError as exc:
            raise ConfigError(f"model_view: {exc}") from None
        return FramesTrajectory.from_file(path)


def model_view(pdb_path_or_frames: Any, frames_xyz: np.ndarray | None = None, representation: str | None = "licorice",
               selection: str = "backbone", color_scheme: str = "residueindex", height: str = "420px",
               frame: int | None = None):
    """An ``nglview.NGLWidget`` of a model: cartoon (``color_scheme``) + ``representation`` on ``selection``.

    Args:
        pdb_path_or_frames: a PDB/mmCIF path (several models -> a trajectory with a player),
            a ``(template, frames_xyz)`` pair, or a :class:`FramesTrajectory`.
        frames_xyz: ``(F, n_atoms, 3)`` world coordinates (Å) for a template path or
            :class:`gmmplat.io.models.AtomModel` given first.
        representation: NGL representation name (``"licorice"``, ``"ball+stick"``,
            ``"spacefill"``, ...) drawn over ``selection`` (NGL selection language, e.g.
            ``"backbone"``, ``":B"``, ``"10-50"``), or None for the cartoon alone.
        frame: the frame shown first (default the middle one).
    """
    traj = _trajectory(pdb_path_or_frames, frames_xyz)
    start = traj.n_frames // 2 if frame is None else int(frame)
    if not 0 <= start < traj.n_frames:
        raise ConfigError(f"model_view: frame {start} is outside 0..{traj.n_frames - 1}")
    traj.initial_frame = start
    import nglview

    view = nglview.NGLWidget()
    view.add_trajectory(traj)
    view.clear_representations()
    view.add_representation("cartoon", selection="protein", color_scheme=color_scheme)
    if representation:
        view.add_representation(representation, selection=selection, color_scheme="element")
    view.layout.width, view.layout.height = "100%", height  # the widget observes its own Layout object
    view.add_class("gmmplat-model")
    # nglview builds its player (Play + IntSlider, linked to `frame` in the browser) with
    # max 0 before any trajectory exists; left so, the kernel clamps the frame the browser
    # echoes back to 0 and the model stops following `frame` (tests/browser).  Give the
    # player the real range.
    for control in getattr(view, "_iplayer", None).children if getattr(view, "_iplayer", None) else ():
        control.max = view.max_frame
        control.value = start
    view.frame = start
    view.center()
    return view


def ngl_selection(residue_ranges: dict) -> str:
    """NGL selection text for residue ranges per chain, e.g. ``{"B": [[1, 40]]}`` -> ``"(1-40:B)"``.

    The ranges are those of a sample dataset's ``masks.json`` (1-based, inclusive).
    """
    parts = [f"({int(a)}-{int(b)}:{chain})" for chain, runs in residue_ranges.items() for a, b in runs]
    if not parts:
        raise ConfigError("ngl_selection: no residue ranges given")
    return " or ".join(parts)
