"""The model: the Gaussian mixture (``gmm``), its masks, the fully connected networks (``nets``)
and ``HeteroModel`` (``hetero``: neutral GMM + encoder + decoders).
"""
