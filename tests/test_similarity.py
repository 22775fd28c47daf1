"""Layer similarity for data-driven layer selection (Sec. 4.1, Table 3): pooling, metrics, rankings."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizer,
    HubertConfig,
    HubertForCTC,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)

from mamlib.common.tensors import masked_mean
from mamlib.selection.representations import (
    METRICS,
    audio_layer_representations,
    text_layer_representations,
    whisper_layer_representations,
)
from mamlib.selection.scores import (
    euclidean_distance,
    inner_product,
    layer_scores,
    normalize_representations,
    rank_layers,
    similarity_table,
    sliced_wasserstein,
    top_k_layers,
)

WIDTH = 32


@pytest.fixture(scope="module")
def hubert() -> HubertForCTC:
    torch.manual_seed(0)
    cfg = HubertConfig(
        hidden_size=WIDTH, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, vocab_size=12, do_stable_layer_norm=True, feat_extract_norm="layer",
    )
    return HubertForCTC(cfg).eval()


@pytest.fixture(scope="module")
def bert() -> BertModel:
    torch.manual_seed(1)
    return BertModel(BertConfig(hidden_size=WIDTH, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizer:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return BertTokenizer(str(path))


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(n).astype(np.float32) for n in (4000, 9000, 6000)]


# -- pooling -----------------------------------------------------------------------------------------------------


def test_masked_mean_ignores_masked_positions() -> None:
    h = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    out = masked_mean(h, mask)
    torch.testing.assert_close(out[0], h[0, :2].mean(0))
    torch.testing.assert_close(out[1], h[1, 0])
    torch.testing.assert_close(masked_mean(h, None), h.mean(1))
    with pytest.raises(ValueError, match="no unmasked"):
        masked_mean(h, torch.zeros(2, 3, dtype=torch.bool))


@pytest.mark.parametrize("site", ["layer", "attention"])
def test_audio_pooling_ignores_padding(hubert: HubertForCTC, waves: list[np.ndarray], site: str) -> None:
    fe = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    batched = audio_layer_representations(hubert, fe, waves, batch_size=3, site=site)
    alone = torch.cat([audio_layer_representations(hubert, fe, [w], site=site) for w in waves], dim=1)
    assert batched.shape == (3, len(waves), WIDTH)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_a_bfloat16_target_is_pooled_in_its_own_dtype(hubert: HubertForCTC, waves: list[np.ndarray]) -> None:
    import copy

    fe = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    half = copy.deepcopy(hubert).to(torch.bfloat16)
    reps = audio_layer_representations(half, fe, waves[:2], batch_size=2)
    assert reps.shape == (3, 2, WIDTH) and torch.isfinite(reps.float()).all()
    full = audio_layer_representations(hubert, fe, waves[:2], batch_size=2)
    torch.testing.assert_close(reps.float(), full.float(), atol=0.15, rtol=0.1)  # bf16 rounding, same layers


@pytest.mark.parametrize("use_mask", [True, False])
def test_layer_site_is_each_layers_output(hubert: HubertForCTC, waves: list[np.ndarray], use_mask: bool) -> None:
    fe = Wav2Vec2FeatureExtractor(return_attention_mask=use_mask)
    pair = [waves[1], waves[0]]  # longest first, as the length-sorted batch holds them
    reps = audio_layer_representations(hubert, fe, pair, batch_size=2)
    feats = fe(pair, sampling_rate=16_000, padding=True, return_tensors="pt", return_attention_mask=use_mask)
    with torch.no_grad():
        hidden = hubert(**feats, output_hidden_states=True).hidden_states
    frames = hubert._get_feat_extract_output_lengths(torch.tensor([len(w) for w in pair])).tolist()
    for i in range(3):
        for n in range(2):
            torch.testing.assert_close(reps[i, n], hidden[i + 1][n, : frames[n]].mean(0))


@pytest.mark.parametrize("special", [False, True])
def test_text_pooling_ignores_padding(bert: BertModel, tokenizer: BertTokenizer, special: bool) -> None:
    texts = ["the cat sat on a mat", "a dog ran", "the dog"]
    batched = text_layer_representations(bert, tokenizer, texts, batch_size=3, exclude_special_tokens=special)
    alone = torch.cat(
        [text_layer_representations(bert, tokenizer, [t], exclude_special_tokens=special) for t in texts], dim=1
    )
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(
        batched, text_layer_representations(bert, tokenizer, texts, exclude_special_tokens=not special)
    )


def test_whisper_encoder_representations(waves: list[np.ndarray]) -> None:
    torch.manual_seed(2)
    cfg = WhisperConfig(
        d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
    )
    reps = whisper_layer_representations(WhisperModel(cfg), WhisperFeatureExtractor(), waves[:2], site="attention")
    assert reps.shape == (2, 2, 16) and torch.isfinite(reps).all()


# -- metrics -----------------------------------------------------------------------------------------------------


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def test_euclidean_and_inner_product_match_numpy() -> None:
    a, b = _rand(5, 7), _rand(5, 7, seed=1)
    assert euclidean_distance(a, b) == pytest.approx(np.mean([np.sqrt(((a[n] - b[n]) ** 2).sum()) for n in range(5)]))
    assert inner_product(a, b) == pytest.approx(np.mean([float(a[n] @ b[n]) for n in range(5)]))
    assert inner_product(torch.tensor(a), torch.tensor(b)) == pytest.approx(inner_product(a, b))


def test_sliced_wasserstein_properties() -> None:
    a, b = _rand(20, 6), _rand(30, 6, seed=1) + 0.5
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    assert sliced_wasserstein(a, b, seed=3) == pytest.approx(sliced_wasserstein(b, a, seed=3), rel=1e-9)
    direct = ot.sliced_wasserstein_distance(a, b, n_projections=64, seed=7)
    assert sliced_wasserstein(a, b, n_projections=64, seed=7) == pytest.approx(float(direct), rel=1e-12)
    assert sliced_wasserstein(a, b, seed=3) > 0


def test_width_and_pairing_errors() -> None:
    with pytest.raises(ValueError, match="width"):
        layer_scores(_rand(2, 4, 8), _rand(2, 4, 6), "euclidean")
    with pytest.raises(ValueError, match="paired"):
        layer_scores(_rand(2, 4, 8), _rand(2, 5, 8), "swd")
    with pytest.raises(ValueError, match="layer_map"):
        layer_scores(_rand(2, 4, 8), _rand(3, 4, 8), "inner_product")
    with pytest.raises(ValueError, match="unknown metric"):
        layer_scores(_rand(2, 4, 8), _rand(2, 4, 8), "cosine")  # type: ignore[arg-type]


def test_layer_map_selects_source_layers() -> None:
    t, s = _rand(2, 4, 8), _rand(3, 4, 8, seed=1)
    scores = layer_scores(t, s, "euclidean", layer_map=[2, 0])
    assert scores.tolist() == pytest.approx([euclidean_distance(t[0], s[2]), euclidean_distance(t[1], s[0])])


def _constructed(num_layers: int = 6, close: tuple[int, ...] = (1, 4)) -> tuple[np.ndarray, np.ndarray]:
    """Source = target + noise; small noise on the ``close`` layers, large elsewhere."""
    t = _rand(num_layers, 40, 8)
    noise = _rand(num_layers, 40, 8, seed=1) + 1.0
    scale = np.array([0.05 if i in close else 2.0 for i in range(num_layers)])[:, None, None]
    return t, t + scale * noise


@pytest.mark.parametrize("metric", ["euclidean", "swd"])
def test_top_k_finds_the_close_layers(metric: str) -> None:
    t, s = _constructed()
    scores = layer_scores(t, s, metric)
    assert top_k_layers(scores, metric, 2) == [1, 4]
    assert set(rank_layers(scores, metric)[:2]) == {1, 4}


def test_top_k_inner_product_picks_largest() -> None:
    t = np.ones((4, 10, 3))
    s = np.stack([c * np.ones((10, 3)) for c in (0.5, 3.0, -1.0, 2.0)])
    scores = layer_scores(t, s, "inner_product")
    assert scores.tolist() == pytest.approx([1.5, 9.0, -3.0, 6.0])
    assert top_k_layers(scores, "inner_product", 2) == [1, 3]


def test_rank_direction_per_metric() -> None:
    scores = [3.0, 1.0, 2.0]
    assert rank_layers(scores, "euclidean") == [1, 2, 0]
    assert rank_layers(scores, "swd") == [1, 2, 0]
    assert rank_layers(scores, "inner_product") == [0, 2, 1]
    assert rank_layers([1.0, 1.0, 0.0], "euclidean") == [2, 0, 1]  # ties: lower layer first


@pytest.mark.parametrize("k", [0, 4, -1])
def test_top_k_out_of_range(k: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        top_k_layers([0.1, 0.2, 0.3], "euclidean", k)


def test_normalizations() -> None:
    t, s = _rand(3, 5, 4), _rand(3, 5, 4, seed=1)
    cos = layer_scores(t, s, "inner_product", normalize="l2")
    expected = [np.mean([t[i, n] @ s[i, n] / np.linalg.norm(t[i, n]) / np.linalg.norm(s[i, n]) for n in range(5)])
                for i in range(3)]
    assert cos.tolist() == pytest.approx(expected)
    # RMS normalisation removes a per-layer scale (the depth-wise growth of pre-LN residual streams).
    grown = t * np.array([1.0, 10.0, 100.0])[:, None, None]
    for metric in METRICS:
        assert layer_scores(grown, s, metric, normalize="rms").tolist() == pytest.approx(
            layer_scores(t, s, metric, normalize="rms").tolist()
        )
    rms = normalize_representations(grown, "rms")
    assert np.sqrt((rms**2).sum(-1).mean(-1)).tolist() == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="normalize"):
        normalize_representations(t, "zscore")  # type: ignore[arg-type]


def test_similarity_table_and_end_to_end(
    hubert: HubertForCTC, bert: BertModel, tokenizer: BertTokenizer, waves: list[np.ndarray]
) -> None:
    audio = audio_layer_representations(hubert, Wav2Vec2FeatureExtractor(return_attention_mask=True), waves)
    text = text_layer_representations(bert, tokenizer, ["the cat sat", "a dog ran on the mat", "the mat"])
    table = similarity_table(audio, text, normalize="l2")
    assert list(table.columns) == list(METRICS) and len(table) == 3
    for metric in METRICS:
        assert len(top_k_layers(table[metric].to_numpy(), metric, 2)) == 2
