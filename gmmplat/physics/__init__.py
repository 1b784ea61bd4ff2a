"""The forward model of one image: rotations, Fourier transforms and bands, the CTF, FSC, and
``ImageModel`` that puts them together.
"""
