import numpy as np
import pytest
import torch

# Test tensors are tiny: extra threads only compete with each other on small CI machines.
torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
