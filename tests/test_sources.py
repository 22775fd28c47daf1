"""The source-variant registry: Table 1's columns, and a user's own variant flowing through mergers and sweeps."""

from __future__ import annotations

import pytest
import torch

from mamlib.merge.merger import AttentionMerger
from mamlib.merge.sources import (
    TABLE1_VARIANTS,
    NoiseSettings,
    SourceVariant,
    build_mergers,
    get_source_variant,
    register_source_variant,
    source_variants,
)
from mamlib.presets.schema import load_preset
from mamlib.sweeps.grid import MergeRig, SweepGrid, sweep_configs


def test_table1_columns_and_selectability():
    variants = source_variants()
    assert [variants[k].label for k in TABLE1_VARIANTS] == ["Source", "N(Source)", "N(Target)", "N(0,1)"]
    assert [variants[k].selectable for k in TABLE1_VARIANTS] == [True, False, False, False]
    assert variants["source-normed"].selectable and not variants["source-normed"].random
    with pytest.raises(ValueError, match="unknown source variant 'bogus'; registered: \\['source'"):
        get_source_variant("bogus")
    with pytest.raises(ValueError, match="already registered"):
        register_source_variant(variants["source"])


def test_mergers_by_variant_match_hand_computations(hubert, bert):
    mergers = build_mergers(hubert, bert, ["source", "noise-standard", "source-normed"], noise=NoiseSettings(seed=3))
    w_t = mergers["source"].original.weights[(1, "k")]
    w_s = bert.encoder.layer[1].attention.self.key.weight.detach()
    with mergers["source"].merged(0.2):
        torch.testing.assert_close(hubert.hubert.encoder.layers[1].attention.k_proj.weight, 0.2 * w_s + 0.8 * w_t)
    normed = w_s * (torch.linalg.matrix_norm(w_t) / torch.linalg.matrix_norm(w_s))
    with mergers["source-normed"].merged(0.2):
        torch.testing.assert_close(hubert.hubert.encoder.layers[1].attention.k_proj.weight, 0.2 * normed + 0.8 * w_t)
    noise = mergers["noise-standard"].source.weights[(1, "k")]
    assert noise.shape == w_t.shape and abs(noise.std().item() - 1.0) < 0.2


def test_a_registered_variant_is_swept_like_the_built_in_ones(hubert, bert):
    def zeros(target, inputs):
        weights = {k: torch.zeros_like(w) for k, w in inputs.target.weights.items()}
        zero = type(inputs.target)(weights, dict.fromkeys(weights), inputs.target.num_layers, "zeros")
        return AttentionMerger(target, zero)

    variant = register_source_variant(SourceVariant("zeros", "Zeros", selectable=False, build=zeros), replace=True)
    preset = load_preset("smoke")
    rig = MergeRig(preset=preset, setup=preset.asr, variants=("source", variant.name))
    configs = sweep_configs(rig, {"dataset": "fake"}, SweepGrid(lambdas=(0.0, 0.1)))
    assert "mergers" not in vars(rig)  # the configurations need no network
    rig.mergers = build_mergers(hubert, bert, rig.variants)
    assert [(c["split"], c["source"]) for c in configs] == [
        ("dev", "none"), ("dev", "source"), ("test", "none"), ("test", "source"), ("test", "zeros")]
    with rig.mergers["zeros"].merged(1.0):
        assert hubert.hubert.encoder.layers[0].attention.q_proj.weight.abs().sum() == 0
