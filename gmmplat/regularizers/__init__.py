"""Regularizers on per-particle GMMs (``REGULARIZERS`` registry).

Registered names:

* ``"ca_backbone"``: Cα–Cα bond lengths and Cα–Cα–Cα angles kept close to the
  neutral model (:class:`~gmmplat.regularizers.backbone.CABackboneRegularizer`).
"""
from __future__ import annotations

from .base import REGULARIZERS, Regularizer
from .backbone import CABackboneRegularizer, backbone_geometry, ca_graph, ca_graph_from_model

__all__ = ["REGULARIZERS", "Regularizer", "CABackboneRegularizer", "backbone_geometry", "ca_graph",
           "ca_graph_from_model"]
