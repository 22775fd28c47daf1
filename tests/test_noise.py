import pytest
import torch

from mamlib.merge.merger import AttentionWeights
from mamlib.merge.noise import moments, noise_source, noise_weights


def _weights(scale: float, shift: float, seed: int) -> AttentionWeights:
    g = torch.Generator().manual_seed(seed)
    w = {(i, p): torch.randn(64, 64, generator=g) * scale * (i + 1) + shift for i in range(2) for p in "qkv"}
    return AttentionWeights(w, {k: None for k in w}, 2, "test")


def test_per_matrix_moments_are_reproduced():
    target, source = _weights(0.05, 0.0, 0), _weights(0.3, 0.1, 1)
    noise = noise_source("source", target, source, seed=7)
    for key, w in noise.weights.items():
        src = source.weights[key].double()
        assert w.shape == target.weights[key].shape
        assert w.double().mean().item() == pytest.approx(src.mean().item(), abs=0.03)
        assert w.double().std().item() == pytest.approx(src.std().item(), rel=0.05)
    # layer 1 was drawn twice as wide as layer 0: per-matrix keeps that difference
    assert noise.weights[(1, "q")].std() > 1.8 * noise.weights[(0, "q")].std()


def test_pooled_moments():
    source = _weights(0.3, 0.1, 1)
    flat = torch.cat([w.double().flatten() for w in source.weights.values()])
    m = moments(source, "model")
    assert m[(0, "q")] == pytest.approx((flat.mean().item(), flat.std(unbiased=False).item()))
    assert len(set(m.values())) == 1


def test_standard_normal_and_target_noise():
    target, source = _weights(0.05, 0.0, 0), _weights(0.3, 0.1, 1)
    std = noise_source("standard", target, source, seed=3)
    flat = torch.cat([w.flatten() for w in std.weights.values()])
    assert flat.mean().item() == pytest.approx(0.0, abs=0.02) and flat.std().item() == pytest.approx(1.0, rel=0.03)
    tgt = noise_source("target", target, source, seed=3)
    assert tgt.weights[(1, "k")].std().item() == pytest.approx(target.weights[(1, "k")].std().item(), rel=0.05)


def test_seeded_and_mapped():
    target, source = _weights(0.05, 0.0, 0), _weights(0.3, 0.1, 1)
    a = noise_weights(target, source, seed=5)
    b = noise_weights(target, source, seed=5)
    c = noise_weights(target, source, seed=6)
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not torch.equal(a.weights[(0, "q")], c.weights[(0, "q")])
    mapped = noise_weights(target, source, seed=5, layer_map=[1, 1])
    assert mapped.weights[(0, "q")].std().item() == pytest.approx(source.weights[(1, "q")].std().item(), rel=0.05)


def test_unknown_noise():
    t = _weights(0.05, 0.0, 0)
    with pytest.raises(ValueError, match="noise must be drawn like"):
        noise_source("uniform", t, t, seed=0)
