import pytest
import torch

from mamlib.merge.interpolation import check_lambda, convex_combination, interpolate, layer_lambdas, match_norm


def test_interpolate_matches_hand_computation():
    s = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    # 0.25 * s + 0.75 * t, computed by hand
    expected = torch.tensor([[7.75, 15.5], [23.25, 31.0]])
    assert torch.allclose(interpolate(s, t, 0.25), expected)
    assert torch.equal(interpolate(s, t, 0.0), t)
    assert torch.equal(interpolate(s, t, 1.0), s)


def test_tensor_lambda_is_differentiable():
    lam = torch.tensor(0.3, requires_grad=True)
    s, t = torch.ones(2, 2), torch.zeros(2, 2)
    interpolate(s, t, lam).sum().backward()
    assert lam.grad is not None and float(lam.grad) == pytest.approx(4.0)  # d/dλ Σ(λ·1 + (1−λ)·0) = 4


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), True])
def test_lambda_out_of_range(bad):
    with pytest.raises(ValueError, match="λ"):
        check_lambda(bad)
    with pytest.raises(ValueError):
        interpolate(torch.ones(2), torch.ones(2), bad)


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        interpolate(torch.ones(2, 3), torch.ones(3, 2), 0.1)


def test_layer_lambdas_eq2():
    assert layer_lambdas(4, 0.2, [1, 3]) == [0.0, 0.2, 0.0, 0.2]
    assert layer_lambdas(3, 0.1) == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="layer index 4 is out of range for a model of 4 layers"):
        layer_lambdas(4, 0.2, [4])
    with pytest.raises(ValueError, match="out of range"):
        layer_lambdas(4, 0.2, [-1])


def test_convex_combination_two_sources():
    t, a, b = torch.zeros(2), torch.ones(2), 2 * torch.ones(2)
    # 0.2·1 + 0.3·2 + 0.5·0 = 0.8
    assert torch.allclose(convex_combination(t, [a, b], [0.2, 0.3]), torch.full((2,), 0.8))
    assert torch.allclose(convex_combination(t, [a], [0.4]), interpolate(a, t, 0.4))
    with pytest.raises(ValueError, match="sum"):
        convex_combination(t, [a, b], [0.7, 0.6])


def test_match_norm():
    s, t = torch.full((3, 3), 2.0), torch.eye(3)
    out = match_norm(s, t)
    assert torch.linalg.matrix_norm(out) == pytest.approx(3 ** 0.5)
    assert torch.allclose(out / out[0, 0], torch.ones(3, 3))  # direction kept
