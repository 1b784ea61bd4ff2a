"""Decoders: latent vector -> offsets of the neutral GMM.
``DECODERS.build(name, latent_dim, neutral, subset=None, **opts)``; combine with :class:`MultiDecoder`."""
from .base import DECODERS, Decoder
from .free import FreeDecoder
from .hierarchical import HierarchicalDecoder
from .multi import MultiDecoder
from .rigid import RigidDecoder

__all__ = ["DECODERS", "Decoder", "FreeDecoder", "HierarchicalDecoder", "RigidDecoder", "MultiDecoder"]
