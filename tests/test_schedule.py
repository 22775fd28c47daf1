"""The λ schedule (Eq. 1–3), checked once: every input form against a hand-written ``[source][layer]`` table, the
one default layer map, the errors with their key paths, and the check of a tensor λ that tracks gradients."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from mamlib.cli.merge_config import parse_merge_config
from mamlib.merge.interpolation import interpolate
from mamlib.merge.merger import MultiSourceMerger
from mamlib.merge.schedule import (
    evenly_spaced_layer_map,
    lambda_table,
    lambda_values,
    layer_indices,
    per_layer_lambdas,
    resolve_layer_map,
)
from mamlib.presets.schema import load_preset, parse_preset
from tests.conftest import tiny_bert, tiny_hubert

ONE, TWO = ["s"], ["a", "b"]


def test_one_value_for_every_layer_eq1():
    assert lambda_table(3, [0.1], labels=ONE) == [[0.1, 0.1, 0.1]]
    assert per_layer_lambdas(3, 0) == [0.0, 0.0, 0.0]


def test_one_value_per_layer_eq3():
    assert lambda_table(4, [[0.0, 0.05, 0.1, 0.2]], labels=ONE) == [[0.0, 0.05, 0.1, 0.2]]


def test_a_value_on_a_subset_of_layers_eq2():
    assert lambda_table(4, [0.2], [[1, 3]], labels=ONE) == [[0.0, 0.2, 0.0, 0.2]]
    assert lambda_table(4, [0.2], [range(2, 4)], labels=ONE) == [[0.0, 0.0, 0.2, 0.2]]


def test_two_sources_each_with_its_lambda():
    table = lambda_table(3, [0.1, [0.0, 0.2, 0.3]], labels=TWO)
    assert table == [[0.1, 0.1, 0.1], [0.0, 0.2, 0.3]]
    assert lambda_table(3, [0.5, 0.5], [[0], [1, 2]], labels=TWO) == [[0.5, 0.0, 0.0], [0.0, 0.5, 0.5]]
    assert lambda_table(3, table, labels=TWO) == table  # a table is a spec of itself
    assert lambda_table(3, [0.551, 0.333, 0.116], labels=["x", "y", "z"])[2] == [0.116] * 3  # 1 + rounding


def test_layer_map_of_a_6_layer_source_onto_a_4_layer_target():
    # round(i · 5/3) for i = 0..3: 0, 1.67 → 2, 3.33 → 3, 5
    assert resolve_layer_map(None, 4, 6) == [0, 2, 3, 5]
    assert resolve_layer_map(None, 4, 12) == [0, 4, 7, 11]  # the mini preset's ViT-S/14 onto Whisper tiny
    assert resolve_layer_map(None, 3, 3) == [0, 1, 2]  # the identity for equal depths
    assert resolve_layer_map((5, 4, 1, 0), 4, 6) == [5, 4, 1, 0]  # a given map, checked
    # The merger's plan: by target layer, (source layer, λ) of a 6-layer and of a 4-layer source, and 1 − Σ λ.
    merger = MultiSourceMerger(tiny_hubert(layers=4), [tiny_bert(layers=6), tiny_bert(layers=4)], labels=TWO)
    plan = merger.plan([[0.1, 0.1, 0.2, 0.2], 0.3])
    assert [[(e["source_layer"], e["lambda"]) for e in row["sources"]] for row in plan] == [
        [(0, 0.1), (0, 0.3)], [(2, 0.1), (1, 0.3)], [(3, 0.2), (2, 0.3)], [(5, 0.2), (3, 0.3)]]
    assert [row["target_lambda"] for row in plan] == pytest.approx([0.6, 0.6, 0.5, 0.5])
    with pytest.raises(ValueError, match="at target layer 2 the λ of a, b sum to 1.2"):
        merger.plan([[0.1, 0.1, 0.9, 0.2], 0.3])  # the plan goes through the schedule too


def test_layer_map_ties_round_half_to_even_exactly():
    # 7 · 29/14 = 14.5 exactly: half to even gives 14 (float steps made 14.500000000000002, so 15).
    assert evenly_spaced_layer_map(15, 30)[7] == 14
    # 11 · 15/22 = 7.5 exactly: half to even gives 8 (float steps made 7.499999999999999, so 7).
    assert evenly_spaced_layer_map(23, 16)[11] == 8
    # i · 3/2 for i = 0..4: 0, 1.5 → 2, 3, 4.5 → 4, 6
    assert evenly_spaced_layer_map(5, 7) == [0, 2, 3, 4, 6]


def test_layer_map_equals_exact_rounding_for_every_depth_pair_up_to_48():
    for t in range(1, 49):
        for s in range(1, 49):
            got = evenly_spaced_layer_map(t, s)
            # Fraction keeps i·(S−1)/(T−1) exact and Python's round() takes a Fraction's ties to even.
            expected = [0] if t == 1 else [round(Fraction(i * (s - 1), t - 1)) for i in range(t)]
            assert got == expected, (t, s)
            assert got[0] == 0 and got[-1] == (s - 1 if t > 1 else 0), (t, s)  # first to first, last to last
            assert all(a <= b for a, b in zip(got, got[1:])), (t, s)
        assert evenly_spaced_layer_map(t, t) == list(range(t))  # the identity for equal depths


@pytest.mark.parametrize(("call", "message"), [
    (lambda: lambda_table(3, [1.5], labels=ONE), r"^λ of s: λ must lie in \[0, 1\], got 1\.5$"),
    (lambda: lambda_table(3, [-0.1], labels=ONE), r"must lie in \[0, 1\], got -0\.1"),
    (lambda: lambda_table(3, [float("nan")], labels=ONE), r"must lie in \[0, 1\], got nan"),
    (lambda: lambda_table(3, [[0.1, float("nan"), 0.1]], labels=ONE), r"^λ of s of layer 1 must lie in \[0, 1\]"),
    (lambda: lambda_table(3, [True], labels=ONE), r"must be a real number in \[0, 1\], got True"),
    (lambda: lambda_table(4, [0.2], [[4]], labels=ONE), r"layer index 4 is out of range for a model of 4 layers"),
    (lambda: lambda_table(4, [0.2], [[-1]], labels=ONE), r"layer index -1 is out of range"),
    (lambda: lambda_table(3, [[0.1, 0.2]], labels=ONE), r"^λ of s: 2 per-layer λ values for a target of 3 layers$"),
    (lambda: lambda_table(3, [[0.1, 0.2, 0.3]], [[1]], labels=ONE), r"per-layer λ values or a layer subset, not both"),
    (lambda: lambda_table(3, [[0.5, 0.6, 0.5], [0.5, 0.5, 0.5]], labels=TWO),
     r"^at target layer 1 the λ of a, b sum to 1\.1, past 1 \(0\.6 \+ 0\.5\)$"),
    (lambda: lambda_table(3, [0.1], labels=TWO), r"give one λ \(or one λ per layer\) for each of the 2 sources"),
    (lambda: lambda_table(3, [0.1, 0.1], [[0]], labels=TWO), r"2 sources but 1 layer subsets"),
    (lambda: resolve_layer_map([0, 9, 1], 3, 6), r"sends target layer 1 to source layer 9, out of range for 6"),
    (lambda: resolve_layer_map([0, 1], 3, 6), r"layer map has 2 entries; the target has 3 layers"),
])
def test_errors_name_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_lambda_parser_and_one_layer_index_parser_with_key_paths():
    assert lambda_values([0, 0.5], "x") == (0.0, 0.5)
    with pytest.raises(ValueError, match=r"^x\[1\] must lie in"):
        lambda_values([0.1, 2], "x")
    with pytest.raises(ValueError, match=r"^x entry must be a real number"):
        lambda_values([0.1, "a"], "x", entry="{where} entry")
    assert layer_indices([0, 3], "m") == [0, 3]
    for bad, message in (([], r"^m must be a non-empty list"), ([0, True], r"^m\[1\] must be a layer index")):
        with pytest.raises(ValueError, match=message):
            layer_indices(bad, "m")
    # The presets and `mam merge`'s YAML read layer indices and λ with the same parsers.
    with pytest.raises(ValueError, match=r"^sources\[0\]\.layer_map\[1\] must be a layer index \(an integer from 0\)"):
        parse_merge_config({"target": "minilm", "output": "/tmp/x",
                            "sources": [{"model": "minilm", "lambda": 0.1, "layer_map": [0, -2]}]})
    preset = load_preset("smoke").raw
    preset["asr"] = {**preset["asr"], "layer_map": [0, -2, 1, 2]}
    with pytest.raises(ValueError, match=r"^asr\.layer_map\[1\] must be a layer index \(an integer from 0\)"):
        parse_preset(preset)
    preset["asr"]["layer_map"] = [0, 2, 1, 3]
    assert parse_preset(preset).asr.layer_map == (0, 2, 1, 3)


@pytest.mark.parametrize("bad", [1.5, -0.25, float("nan"), float("inf")])
def test_a_lambda_tracking_gradients_is_checked_too(bad):
    s, t = torch.ones(2, 2), torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"λ must lie in \[0, 1\]"):
        interpolate(s, t, torch.tensor(bad, requires_grad=True))
    with pytest.raises(ValueError, match=r"λ must lie in \[0, 1\]"):
        interpolate(s, t, torch.tensor([[0.5], [bad]], requires_grad=True))  # one factor per row


def test_the_check_leaves_autograd_intact():
    lam = torch.tensor([[0.25], [0.75]], requires_grad=True)
    s, t = torch.ones(2, 3), torch.zeros(2, 3)
    out = interpolate(s, t, lam * 1.0)  # a non-leaf λ, as L-MAM's sigmoid is
    assert torch.equal(out, torch.tensor([[0.25] * 3, [0.75] * 3]))
    out.sum().backward()
    assert torch.equal(lam.grad, torch.full((2, 1), 3.0))  # d/dλ_r Σ_c λ_r = 3
