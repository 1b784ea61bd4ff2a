"""Synthetic molecules with known motions, for simulated datasets (see docs/sample_data.md).

``get_motion(name)`` gives one of :data:`DATASETS` (``hinge``, ``bend``, ``coupled``):
a neutral :class:`AtomicModel` and ``coordinates(t)`` for a truth coordinate t ∈ [-1, 1].
"""
from .motions import DATASETS, BendMotion, CoupledMotion, HingeMotion, Motion, get_motion, summarize
from . import assembly  # noqa: F401  registers the tetramer with get_motion
from .structures import AtomicModel, ChainTrace, Helix, backbone_from_ca, build_chain, loop_ca

__all__ = [
    "DATASETS", "Motion", "HingeMotion", "BendMotion", "CoupledMotion", "get_motion", "summarize",
    "AtomicModel", "ChainTrace", "Helix", "build_chain", "loop_ca", "backbone_from_ca",
]
