import os

import numpy as np
import pytest
import torch

# Test tensors are tiny: extra threads only compete with each other on small CI machines.
torch.set_num_threads(1)

# Steps registered by plugins (os.pathsep-separated files or modules) join the registries before
# the tests are collected, so the step contract tests (tests/test_contracts.py) cover them too.
if os.environ.get("GMMPLAT_TEST_PLUGINS"):
    from gmmplat.plugins import import_plugins

    import_plugins(os.environ["GMMPLAT_TEST_PLUGINS"].split(os.pathsep))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
