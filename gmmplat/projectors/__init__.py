"""Projectors: GMM parameters -> centred Fourier images.  ``PROJECTORS.build(name, band)``."""
from .base import PROJECTORS, Projector
from .dense import DenseFourierProjector
from .separable import FourierSeparableProjector

__all__ = ["PROJECTORS", "Projector", "FourierSeparableProjector", "DenseFourierProjector"]
