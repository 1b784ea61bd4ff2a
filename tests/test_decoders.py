"""Decoders: zero at initialisation, subsets, rigid motion, hierarchical transition, sums."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from factories import random_gmm
from gmmplat.decoders import DECODERS, FreeDecoder, HierarchicalDecoder, MultiDecoder, RigidDecoder
from gmmplat.decoders.free import smoothing_kernel
from gmmplat.errors import ConfigError
from gmmplat.model.gmm import GMM

N, D = 12, 3


def _neutral(with_small=True):
    params = random_gmm(N, 32, 2.0, seed=4)
    extras = {
        "mask__arm": np.arange(N) < 4,
        "mask__head": (np.arange(N) >= 8),
    }
    if with_small:
        small = params[::4].clone()  # 3 small Gaussians
        dist = torch.cdist(small[:, :3], params[:, :3]) / (32 * 2.0)  # box-normalised
        extras["small_params"] = small.numpy()
        extras["transition"] = torch.exp(-50 * dist**2).numpy()
    return GMM(params, 32, 2.0, extras=extras)


def _perturb(module, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _z(B=5, seed=1):
    return torch.randn(B, D, generator=torch.Generator().manual_seed(seed)) * 2


BUILD = {
    "free": dict(move_sigma=True),
    "free_coarse": dict(move_sigma=True, coarse_angstrom=8.0),
    "hierarchical": dict(move_sigma=True),
    "rigid": dict(domains=["arm", "head"]),
}


def test_registry_names():
    assert {"free", "hierarchical", "rigid"} <= set(DECODERS.names())


@pytest.mark.parametrize("name", sorted(BUILD))
def test_zero_at_initialisation_for_every_z(name):
    dec = DECODERS.build(name.split("_")[0], D, _neutral(), **BUILD[name])
    out = dec(_z(7))
    assert out.shape == (7, N, 5)
    assert torch.count_nonzero(out) == 0
    _perturb(dec)  # the same decoder does move once its weights change: the test can fail
    assert dec(_z(7)).abs().max() > 1e-3


@pytest.mark.parametrize("name", sorted(BUILD))
def test_zero_outside_subset(name):
    subset = torch.tensor([0, 1, 2, 9, 10])
    dec = DECODERS.build(name.split("_")[0], D, _neutral(), subset=subset, **BUILD[name])
    _perturb(dec)
    out = dec(_z())
    outside = torch.ones(N, dtype=torch.bool)
    outside[subset] = False
    assert torch.count_nonzero(out[:, outside]) == 0
    assert out[:, subset].abs().amax(dim=(0, 2)).min() > 0


def test_free_decoder_column_switches():
    for kw, moving in [({}, [0, 1, 2]), (dict(move_amplitude=True), [0, 1, 2, 3]),
                       (dict(move_position=False, move_sigma=True), [4]),
                       (dict(move_position=False, move_amplitude=True, move_sigma=True), [3, 4])]:
        dec = FreeDecoder(D, _neutral(), **kw)
        _perturb(dec)
        out = dec(_z())
        still = [c for c in range(5) if c not in moving]
        assert torch.count_nonzero(out[..., still]) == 0
        assert (out[..., moving].abs().amax(dim=(0, 1)) > 0).all()
    with pytest.raises(ConfigError):
        FreeDecoder(D, _neutral(), move_position=False)


def test_smoothing_kernel_against_a_dense_one():
    rng = np.random.default_rng(3)
    xyz = rng.uniform(0, 30, size=(40, 3))
    index, weight = smoothing_kernel(xyz, 4.0)
    K = np.zeros((40, 40))
    K[index[0], index[1]] = weight
    d2 = ((xyz[:, None] - xyz[None]) ** 2).sum(-1)
    dense = np.exp(-d2 / (2 * 4.0 ** 2)) * (d2 < (3 * 4.0) ** 2)
    np.testing.assert_allclose(K, dense / dense.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert (np.diag(K) > 0).all() and ((K > 0) == (K.T > 0)).all()
    # at most the nearest few per row (itself included), each row still summing to 1
    index3, weight3 = smoothing_kernel(xyz, 4.0, max_neighbours=3)
    assert np.bincount(index3[0], minlength=40).max() <= 3
    np.testing.assert_allclose(np.bincount(index3[0], weights=weight3, minlength=40), 1.0, rtol=1e-6)
    nearest = np.argsort(d2, axis=1)[:, :3]
    for r, c in index3.T:
        assert c in nearest[r] and d2[r, c] < (3 * 4.0) ** 2
    far = np.array([[0.0, 0, 0], [100.0, 0, 0]])  # no neighbour within 3 widths: each keeps itself
    i, w = smoothing_kernel(far, 4.0)
    assert i.tolist() == [[0, 1], [0, 1]] and w.tolist() == [1.0, 1.0]


def test_free_decoder_coarse_output_is_the_fine_one_smoothed():
    neutral = _neutral()
    subset = torch.tensor([0, 1, 2, 5, 9, 10])
    dec = FreeDecoder(D, neutral, subset=subset, move_amplitude=False, coarse_angstrom=10.0)
    plain = FreeDecoder(D, neutral, subset=subset, move_amplitude=False)
    _perturb(dec)
    S, C = len(subset), 3
    last = dec.mlp[-1]
    with torch.no_grad():  # the plain decoder gets the fine half of the last layer
        for name, p in plain.mlp.named_parameters():
            src = dict(dec.mlp.named_parameters())[name]
            p.copy_(src[: S * C] if name.startswith(str(len(dec.mlp) - 1)) else src)
    z = _z()
    raw = dec.mlp(z).reshape(len(z), 2, S, C)
    index, weight = smoothing_kernel(neutral.params[subset, :3].double().numpy(), 10.0)
    K = torch.zeros(S, S)
    K[index[0], index[1]] = torch.as_tensor(weight)
    want = plain(z).clone()
    want[:, subset, :3] += torch.einsum("ij,bjc->bic", K, raw[:, 1])
    torch.testing.assert_close(dec(z), want, rtol=1e-5, atol=1e-6)
    assert last.out_features == 2 * S * C
    # the kernel is derived from the neutral GMM, not saved: a plain state dict loads into a new decoder
    state = dec.state_dict()
    assert not any(k.startswith("kernel") for k in state)
    again = FreeDecoder(D, neutral, subset=subset, move_amplitude=False, coarse_angstrom=10.0)
    again.load_state_dict(state)
    torch.testing.assert_close(again(z), dec(z))
    for bad in (0.0, -2.0):
        with pytest.raises(ConfigError, match="coarse_angstrom must be positive"):
            FreeDecoder(D, neutral, coarse_angstrom=bad)


def test_free_decoder_fine_scale_weighs_the_unsmoothed_output():
    """offsets = fine_scale · fine + K · coarse, the same network otherwise; bad values are refused."""
    neutral = _neutral()
    subset = torch.tensor([0, 1, 2, 5, 9, 10])
    dec = FreeDecoder(D, neutral, subset=subset, move_amplitude=False, coarse_angstrom=10.0, fine_scale=0.3)
    full = FreeDecoder(D, neutral, subset=subset, move_amplitude=False, coarse_angstrom=10.0)
    _perturb(dec)
    full.load_state_dict(dec.state_dict())
    z = _z()
    S, C = len(subset), 3
    raw = dec.mlp(z).reshape(len(z), 2, S, C)
    fine = torch.zeros(len(z), neutral.n, 5)
    fine[:, subset, :3] = raw[:, 0]
    got, unscaled = dec(z), full(z)
    assert fine.abs().max() > 0.1  # the fine output is not negligible here
    torch.testing.assert_close(got, unscaled - 0.7 * fine, rtol=1e-4, atol=1e-5)  # float32 sums, any thread count
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="fine_scale must be a number"):
            FreeDecoder(D, neutral, coarse_angstrom=6.0, fine_scale=bad)
    with pytest.raises(ConfigError, match="needs coarse_angstrom"):
        FreeDecoder(D, neutral, fine_scale=0.3)


def test_rigid_moves_only_domains_and_keeps_distances():
    torch.manual_seed(0)  # initial weights: float32 distances hold to 1e-4 Å only for moderate rotations
    neutral = _neutral()
    dec = RigidDecoder(D, neutral, domains=["arm", "head"])
    _perturb(dec, scale=1.0)
    z = _z(6)
    out = dec(z)
    moved = neutral.params[None, :, :3] + out[..., :3]
    masks = neutral.masks()
    rest = ~(torch.as_tensor(masks["arm"]) | torch.as_tensor(masks["head"]))
    assert torch.count_nonzero(out[:, rest]) == 0
    assert torch.count_nonzero(out[..., 3:]) == 0
    x0 = neutral.params[:, :3]
    for name in ("arm", "head"):
        m = torch.as_tensor(masks[name])
        assert out[:, m, :3].abs().amax(dim=(1, 2)).min() > 0.1  # it really moves
        d0 = torch.cdist(x0[m], x0[m])
        for b in range(z.shape[0]):
            assert torch.allclose(torch.cdist(moved[b, m], moved[b, m]), d0, atol=1e-4)


def test_rigid_motion_against_scipy():
    """x' = c + R(x - c) + t about the amplitude-weighted centroid, R from the rotation vector."""
    neutral = _neutral()
    dec = RigidDecoder(D, neutral, domains=["head"], rotation_scale_rad=0.7)
    _perturb(dec, scale=1.0)
    z = _z(4)
    motion = dec.describe_motion(z)
    rotvec, shift = motion["rotation_rad"], motion["translation_angstrom"]
    out = dec(z).detach().double().numpy()
    m = neutral.masks()["head"]
    x = neutral.params[m, :3].double().numpy()
    a = neutral.params[m, 3].double().numpy()
    c = (a[:, None] * x).sum(0) / a.sum()
    for b in range(4):
        R = Rotation.from_rotvec(rotvec[b, 0].double().detach().numpy()).as_matrix()
        ref = c + (x - c) @ R.T + shift[b, 0].detach().double().numpy()
        np.testing.assert_allclose(x + out[b, m, :3], ref, rtol=2e-6, atol=1e-4)  # float32 at ~1000 Å
    assert np.abs(np.rad2deg(np.linalg.norm(rotvec.detach().numpy(), axis=-1))).max() > 1.0


def test_rigid_decoder_errors():
    with pytest.raises(ConfigError, match="no mask 'tail'"):
        RigidDecoder(D, _neutral(), domains=["tail"])
    gmm = _neutral()
    gmm.extras["mask__arm2"] = np.arange(N) < 2
    with pytest.raises(ConfigError, match="overlaps"):
        RigidDecoder(D, gmm, domains=["arm", "arm2"])
    with pytest.raises(ConfigError):
        RigidDecoder(D, gmm)


def test_hierarchical_transition_buffer_then_parameter():
    dec = HierarchicalDecoder(D, _neutral())
    names = dict(dec.named_parameters())
    assert "transition" not in names and not dec.transition.requires_grad
    assert "transition" in dict(dec.named_buffers())
    _perturb(dec)
    dec(_z()).pow(2).sum().backward()
    assert dec.transition.grad is None
    dec.set_transition_trainable(True)
    assert isinstance(dec.transition, torch.nn.Parameter) and dec.transition_trainable
    same = dec.transition
    dec.set_transition_trainable(True)
    assert dec.transition is same  # idempotent: an optimizer holding it stays valid
    assert "transition" in dict(dec.named_parameters())
    assert "transition" in dec.state_dict()
    dec.zero_grad()
    dec(_z()).pow(2).sum().backward()
    assert dec.transition.grad is not None and dec.transition.grad.abs().max() > 0
    dec.set_transition_trainable(False)
    assert "transition" not in dict(dec.named_parameters())
    dec.configure_round({"train_transition": True}, trained=True)  # the round option the trainer passes
    assert dec.transition_trainable
    dec.configure_round({"train_transition": True}, trained=False)  # a frozen decoder keeps it constant
    assert not dec.transition_trainable
    with pytest.raises(ConfigError, match="train_transition"):
        FreeDecoder(D, _neutral()).configure_round({"train_transition": True}, trained=True)


def test_declared_capabilities():
    neutral = _neutral()
    rigid = RigidDecoder(D, neutral, domains=["head", "arm"])
    free = FreeDecoder(D, neutral)
    assert list(MultiDecoder([free, rigid]).domains) == ["head", "arm"] and list(free.domains) == []
    assert free.describe_motion(_z()) == {}
    assert HierarchicalDecoder(D, neutral).describe_motion(_z(2))["small_offsets"].shape == (2, 3, 5)


@pytest.mark.parametrize("normalize", [True, False])
def test_hierarchical_translation_of_small_gmm_translates_large(normalize):
    gmm = _neutral()
    if not normalize:  # a transition normalised by its builder
        T = gmm.extras["transition"]
        gmm.extras["transition"] = T / T.sum(0, keepdims=True)
    dec = HierarchicalDecoder(D, gmm, normalize_transition=normalize, move_amplitude=False)
    t = torch.tensor([1.5, -2.0, 0.7])
    last = dec.mlp[-1]
    with torch.no_grad():  # small offsets = the same translation t for every small Gaussian
        last.bias.copy_((t / dec.column_scale).repeat(dec.n_small))
    small = dec.small_offsets(_z())
    assert torch.allclose(small[..., :3], t.expand_as(small[..., :3]))
    out = dec(_z())
    assert torch.allclose(out[..., :3], t.expand(5, N, 3), atol=1e-5)
    assert torch.count_nonzero(out[..., 3:]) == 0


def test_hierarchical_needs_small_gmm():
    with pytest.raises(ConfigError, match="small GMM"):
        HierarchicalDecoder(D, _neutral(with_small=False))


def test_multi_decoder_sums_and_respects_subsets():
    gmm = _neutral()
    a = FreeDecoder(D, gmm, subset=torch.arange(0, 5))
    b = RigidDecoder(D, gmm, domains=["head"])
    c = HierarchicalDecoder(D, gmm, subset=torch.tensor([3, 4, 5]))
    for k, d in enumerate((a, b, c)):
        _perturb(d, seed=k)
    multi = MultiDecoder([a, b])
    z = _z()
    assert torch.allclose(multi(z), a(z) + b(z))
    assert torch.count_nonzero(multi(z)[:, 5:8]) == 0  # neither decoder touches 5..7
    assert multi.add(c) == 2  # round 2: another decoder joins
    assert torch.allclose(multi(z), a(z) + b(z) + c(z))
    assert multi(z)[:, 5].abs().max() > 0 and torch.count_nonzero(multi(z)[:, 6:8]) == 0
    multi.freeze(0)
    assert all(not p.requires_grad for p in a.parameters())
    assert all(p.requires_grad for p in c.parameters())
    multi(z).pow(2).sum().backward()
    assert all(p.grad is None for p in a.parameters())
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in c.parameters())
    with pytest.raises(ConfigError):
        multi.add(FreeDecoder(D + 1, gmm))


def test_column_views_and_one_meaning_of_amplitude_scale():
    from gmmplat.model.gmm import AMPLITUDE, WIDTH, XYZ, amplitude, width, xyz

    neutral = _neutral()
    p = neutral.params
    assert torch.equal(xyz(p), p[:, XYZ]) and torch.equal(amplitude(p), p[:, AMPLITUDE])
    assert torch.equal(width(p), p[:, WIDTH]) and torch.equal(neutral.sigma_angstrom, width(p))
    subset = torch.arange(N) >= 6
    dec = FreeDecoder(D, neutral, subset=subset, move_position=False, move_amplitude=True, move_sigma=True,
                      amplitude_scale=0.2, sigma_scale_angstrom=0.3)
    with torch.no_grad():
        dec.mlp[-1].bias.fill_(1.0)  # one unit of raw output in every column
    out = dec(_z(2))
    mean_amp = amplitude(p[subset]).abs().mean()
    torch.testing.assert_close(amplitude(out)[:, subset], torch.full((2, int(subset.sum())), 0.2 * float(mean_amp)))
    torch.testing.assert_close(width(out)[:, subset], torch.full((2, int(subset.sum())), 0.3))
    assert torch.count_nonzero(xyz(out)) == 0 and torch.count_nonzero(out[:, ~subset]) == 0
