"""gmmplat: cryo-EM heterogeneity analysis with deep Gaussian mixture models.

The public API of the core; the step packages (``gmmplat.projectors``,
``gmmplat.encoders``, ``gmmplat.decoders``, ``gmmplat.losses``,
``gmmplat.regularizers``) each expose a registry from name to class.
"""
from .errors import ConfigError, GmmplatError, InputError
from .model.gmm import GMM, render_map
from .physics.ctf import CTFParams, ctf_rfft
from .physics.fourier import Band, image_to_rfft, rfft_to_image
from .physics.geometry import euler_to_matrix, matrix_to_euler, random_rotations, symmetry_operators
from .projectors import PROJECTORS, DenseFourierProjector, FourierSeparableProjector, Projector

__version__ = "0.1.0"

__all__ = [
    "CTFParams", "ctf_rfft", "ConfigError", "GmmplatError", "InputError", "Band", "image_to_rfft",
    "rfft_to_image", "euler_to_matrix", "matrix_to_euler", "random_rotations", "symmetry_operators",
    "GMM", "render_map", "PROJECTORS", "Projector", "FourierSeparableProjector", "DenseFourierProjector",
    "__version__",
]
