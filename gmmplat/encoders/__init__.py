"""Encoders: particle -> latent vector.  ``ENCODERS.build(name, latent_dim, context, **opts)``."""
from ..model.nets import make_mlp
from .base import ENCODERS, Encoder, RunningScale, StepContext
from .fixed import FixedEncoder
from .gradient import GradientEncoder
from .image import ImageEncoder
from .truth import TruthEncoder

__all__ = ["ENCODERS", "Encoder", "StepContext", "RunningScale", "make_mlp", "ImageEncoder", "GradientEncoder",
           "TruthEncoder", "FixedEncoder"]
