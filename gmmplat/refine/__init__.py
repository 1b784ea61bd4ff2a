"""Refinement after training, by the likelihood of each image: latent points (``latent``) and poses
(``poses``).
"""
