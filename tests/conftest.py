import numpy as np
import pytest
import torch

# Test tensors are tiny: extra threads only compete with each other on small CI machines.
torch.set_num_threads(1)


def random_gmm(n, box, apix, seed=0, sigma_px=(1.5, 2.5), extent=0.25):
    """A random asymmetric GMM ``(n, 5)`` inside the central part of the box."""
    g = torch.Generator().manual_seed(seed)
    half = box * apix * extent
    xyz = (torch.rand(n, 3, generator=g) * 2 - 1) * half
    amp = 0.5 + torch.rand(n, generator=g)
    sig = (sigma_px[0] + (sigma_px[1] - sigma_px[0]) * torch.rand(n, generator=g)) * apix
    return torch.cat([xyz, amp[:, None], sig[:, None]], dim=1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
