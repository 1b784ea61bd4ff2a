"""Losses: predicted vs observed Fourier images -> (B,).  ``LOSSES.build(name, band, **opts)``."""
from .base import LOSSES, Loss
from .frc import FRCLoss
from .weighted_l2 import WeightedL2Loss

__all__ = ["LOSSES", "Loss", "FRCLoss", "WeightedL2Loss"]
