"""One entry point for particle metadata: RELION STAR or cryoSPARC ``.cs``, chosen by suffix.

:func:`read_particles` returns a :class:`~gmmplat.io.star.ParticleStar` either way
(normalized ``table``, :data:`~gmmplat.io.star.TABLE_COLUMNS`), so the dataset, the
training loop and the analysis commands read both formats the same way.
:class:`ParticleSource` is the serializable description of what to read (file,
passthrough, data folder, CTF values a file lacks), stored in a run's configuration.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from gmmplat.errors import InputError
from gmmplat.io.star import ParticleStar

__all__ = ["ParticleSource", "read_particles", "is_cs"]


def is_cs(path: str | os.PathLike) -> bool:
    """True for a cryoSPARC particle file (suffix ``.cs``)."""
    return Path(path).suffix.lower() == ".cs"


@dataclass
class ParticleSource:
    """What to read, with the options that go with it (JSON-friendly; empty/None = not given).

    Attributes:
        path: STAR or ``.cs`` file.
        passthrough: ``.cs`` passthrough joined by uid (cryoSPARC only).
        datadir: folder that relative image paths start from (RELION project or
            cryoSPARC project folder).
        amplitude_contrast, voltage_kv, cs_mm: used only where the file lacks the value.
        trust_star_pixel_size: the file's pixel size wins over stack headers that set another.
    """

    path: str
    passthrough: str | None = None
    datadir: str | None = None
    amplitude_contrast: float | None = None
    voltage_kv: float | None = None
    cs_mm: float | None = None
    trust_star_pixel_size: bool | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "ParticleSource":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if d.get(k) is not None})

    def options(self) -> dict:
        """Keyword arguments of :func:`read_particles` besides the path."""
        return {"passthrough": self.passthrough, "datadir": self.datadir, "ctf_defaults": {
            "amplitude_contrast": self.amplitude_contrast, "voltage_kv": self.voltage_kv, "cs_mm": self.cs_mm}}

    def read(self, require_poses: bool = True, require_ctf: bool = True) -> ParticleStar:
        star = read_particles(self.path, require_poses=require_poses, require_ctf=require_ctf, **self.options())
        star.trust_pixel_size = bool(self.trust_star_pixel_size)
        return star


def read_particles(path: str | os.PathLike, passthrough: str | os.PathLike | None = None,
                   datadir: str | os.PathLike | None = None, require_poses: bool = True, require_ctf: bool = True,
                   ctf_defaults: dict[str, float | None] | None = None) -> ParticleStar:
    """Read a RELION STAR or a cryoSPARC ``.cs`` particle file (by suffix) into a ParticleStar.

    ``datadir`` is the STAR reader's ``project_dir``; ``passthrough`` is refused for STAR
    files; ``ctf_defaults`` (``voltage_kv``, ``cs_mm``, ``amplitude_contrast``) fills values
    the file lacks, noted in the result's ``notes``.
    """
    defaults = {k: float(v) for k, v in (ctf_defaults or {}).items() if v is not None} or None
    if is_cs(path):
        from gmmplat.io.cryosparc import read_particle_cs

        return read_particle_cs(path, passthrough=passthrough, datadir=datadir, require_poses=require_poses,
                                require_ctf=require_ctf, ctf_defaults=defaults)
    if passthrough is not None:
        raise InputError(passthrough, "a passthrough file goes with a cryoSPARC .cs particle file, not a STAR file")
    from gmmplat.io.star import read_particle_star

    return read_particle_star(path, require_poses=require_poses, require_ctf=require_ctf, project_dir=datadir,
                              ctf_defaults=defaults)
