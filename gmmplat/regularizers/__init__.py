"""Regularizers on per-particle GMMs (``REGULARIZERS`` registry).

Registered names:

* ``"ca_backbone"``: Cα–Cα bond lengths and Cα–Cα–Cα angles kept close to the
  neutral model (:class:`~gmmplat.regularizers.backbone.CABackboneRegularizer`).
* ``"elastic_network"``: distances between Gaussians closer than a cutoff kept close to the
  neutral GMM's, or to the batch's mean distances
  (:class:`~gmmplat.regularizers.elastic.ElasticNetworkRegularizer`).
"""
from __future__ import annotations

from .base import REGULARIZERS, Regularizer
from .backbone import CABackboneRegularizer, backbone_geometry, ca_graph, ca_graph_from_model
from .elastic import ElasticNetworkRegularizer, network_pairs

__all__ = ["REGULARIZERS", "Regularizer", "CABackboneRegularizer", "backbone_geometry", "ca_graph",
           "ca_graph_from_model", "ElasticNetworkRegularizer", "network_pairs"]
