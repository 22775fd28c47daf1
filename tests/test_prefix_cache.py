"""Prefix caching for layer-subset sweeps (Sec. 3.2, Table 2): cached results equal uncached ones, stale caches are
refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    HubertConfig,
    HubertForCTC,
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
)

from mamlib.asr.prefix_cache import CachedCTCTranscriber, PrefixCache
from mamlib.asr.recognizers import CTCTranscriber, Utterance, evaluate_asr
from mamlib.common.tensors import length_sorted_batches
from mamlib.merge.merger import AttentionMerger

LAYERS = 4
WIDTH = 32
BATCH = 2


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Wav2Vec2CTCTokenizer:
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in "|ETAONIHSRDLUMWCFGYPBVK'XJQZ":
        vocab[c] = len(vocab)
    path = tmp_path_factory.mktemp("ctc") / "vocab.json"
    path.write_text(json.dumps(vocab))
    return Wav2Vec2CTCTokenizer(str(Path(path)), word_delimiter_token="|")


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(int(16_000 * s)).astype(np.float32) for s in (0.5, 0.8, 0.3, 1.0, 0.6)]


@pytest.fixture(scope="module")
def bert() -> BertModel:
    torch.manual_seed(1)
    return BertModel(
        BertConfig(hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=64)
    ).eval()


def _transcriber(kind: str, tokenizer: Wav2Vec2CTCTokenizer) -> CTCTranscriber:
    """``stable``: HuBERT-large layout (pre-LN, layer-norm convs, attention masks); ``post``: HuBERT-base layout
    (post-LN, group-norm convs, no attention masks); ``wav2vec2``: Wav2Vec2ForCTC with the large layout."""
    torch.manual_seed(0)
    common = dict(
        hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, vocab_size=len(tokenizer), pad_token_id=0,
    )
    stable = kind != "post"
    norm = dict(do_stable_layer_norm=stable, feat_extract_norm="layer" if stable else "group")
    if kind == "wav2vec2":
        model: torch.nn.Module = Wav2Vec2ForCTC(Wav2Vec2Config(**common, **norm))
    else:
        model = HubertForCTC(HubertConfig(**common, **norm))
    fe = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=stable)
    return CTCTranscriber(model, fe, tokenizer)


@pytest.fixture(scope="module", params=["stable", "post", "wav2vec2"])
def transcriber(request: pytest.FixtureRequest, tokenizer: Wav2Vec2CTCTokenizer) -> CTCTranscriber:
    return _transcriber(request.param, tokenizer)


def _batches(tr: CTCTranscriber, waves: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
    use_mask = bool(tr.feature_extractor.return_attention_mask)
    out = []
    for idx in length_sorted_batches([len(w) for w in waves], BATCH):
        feats = tr.feature_extractor(
            [waves[i] for i in idx], sampling_rate=16_000, padding=True, return_tensors="pt",
            return_attention_mask=use_mask,
        )
        out.append({k: v for k, v in feats.items() if k == "input_values" or use_mask})
    return out


def test_cached_logits_equal_full_forward(
    transcriber: CTCTranscriber, bert: BertModel, waves: list[np.ndarray]
) -> None:
    model = transcriber.model
    batches = _batches(transcriber, waves)
    cache = PrefixCache(model, batches, [0, 1, 3, LAYERS])
    merger = AttentionMerger(model, bert)
    with torch.no_grad():
        base = [model(**b).logits for b in batches]
    for lam, layers in [(0.0, None), (0.4, [3]), (0.8, [1, 2]), (0.25, [0, 3])]:
        first = LAYERS if lam == 0 else min(layers) if layers else 0  # the lowest merged layer
        with merger.merged(lam, layers), torch.no_grad():
            full = [model(**b).logits for b in batches]
            if lam > 0:  # the merge does change the model
                assert not torch.allclose(full[0], base[0])
            assert cache.usable_level() == max(level for level in cache.levels if level <= first)
            for level in (level for level in cache.levels if level <= first):
                for i, ref in enumerate(full):
                    got = cache.batch_logits(i, level)
                    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
                    assert torch.equal(got.argmax(-1), ref.argmax(-1))


@pytest.mark.parametrize("start", [0, 2, LAYERS])
def test_cached_transcripts_equal_uncached(
    transcriber: CTCTranscriber, bert: BertModel, waves: list[np.ndarray], start: int
) -> None:
    cached = CachedCTCTranscriber(transcriber, waves, start, batch_size=BATCH)
    merger = AttentionMerger(transcriber.model, bert)
    assert cached.transcribe() == transcriber.transcribe(waves, batch_size=BATCH)
    for lam in (0.3, 0.9):
        with merger.merged(lam, list(range(start, LAYERS))):
            assert cached.transcribe() == transcriber.transcribe(waves, batch_size=BATCH)


def test_audio_budget_batches() -> None:
    """Batches by a budget of padded samples (longest × count), worked by hand: lengths 10, 9, 8, 4, 3, 3, 1."""
    lengths = [3, 10, 1, 8, 4, 9, 3]
    assert length_sorted_batches(lengths, 3) == [[1, 5, 3], [4, 0, 6], [2]]  # count only
    # budget 20: [10, 9] (a third would make 10 × 3 = 30), [8, 4] (8 × 3 = 24), [3, 3, 1] (3 × 3 = 9)
    assert length_sorted_batches(lengths, 8, 20) == [[1, 5], [3, 4], [0, 6, 2]]
    assert length_sorted_batches(lengths, 2, 20) == [[1, 5], [3, 4], [0, 6], [2]]  # the count still bounds
    assert length_sorted_batches([50, 5], 8, 20) == [[0], [1]]  # longer than the budget: a batch of its own
    # every item padded to 20 anyway (Whisper's window): the budget counts 20 per item, in length order
    assert length_sorted_batches([3, 10, 1], 8, 45, padded_length=20) == [[1, 0], [2]]
    with pytest.raises(ValueError, match="max_samples"):
        length_sorted_batches(lengths, 2, 0)


def test_cached_equals_uncached_with_audio_budget(
    tokenizer: Wav2Vec2CTCTokenizer, bert: BertModel, waves: list[np.ndarray]
) -> None:
    """Budget batching (here 1.6 s of padded audio per batch) in both paths gives the same transcripts."""
    tr = _transcriber("stable", tokenizer)
    cached = CachedCTCTranscriber(tr, waves, [0, 2], batch_size=8, batch_seconds=1.6)
    assert [len(b) for b in cached._batches] == [1, 2, 2]  # 1.0 s alone; 0.8 + 0.6; 0.5 + 0.3
    merger = AttentionMerger(tr.model, bert)
    for lam, layers in ((0.0, None), (0.5, None), (0.5, [2, 3])):
        with merger.merged(lam, layers):
            assert cached.transcribe() == tr.transcribe(waves, batch_size=8, batch_seconds=1.6)
    with pytest.raises(ValueError, match="batch_seconds"):
        cached.transcribe(waves, batch_seconds=2.0)
    with pytest.raises(ValueError, match="batch_seconds must be a positive, finite"):
        tr.transcribe(waves, batch_seconds=0.0)


def test_multi_level_sweep_picks_deepest_valid_level(
    tokenizer: Wav2Vec2CTCTokenizer, bert: BertModel, waves: list[np.ndarray]
) -> None:
    tr = _transcriber("stable", tokenizer)
    cached = CachedCTCTranscriber(tr, waves, [0, 2], batch_size=BATCH)
    merger = AttentionMerger(tr.model, bert)
    for layers in ([0, 1], [1, 2], [2, 3], [3]):
        with merger.merged(0.5, layers):
            reference = tr.transcribe(waves, batch_size=BATCH)
            assert cached.cache.usable_level() == (2 if min(layers) >= 2 else 0)
            assert cached.transcribe() == reference


def test_refuses_when_lower_layers_are_merged(
    tokenizer: Wav2Vec2CTCTokenizer, bert: BertModel, waves: list[np.ndarray]
) -> None:
    tr = _transcriber("stable", tokenizer)
    cached = CachedCTCTranscriber(tr, waves, 2, batch_size=BATCH)
    merger = AttentionMerger(tr.model, bert)
    for layers in ([1, 2], [0]):
        with merger.merged(0.1, layers), pytest.raises(ValueError, match=f"layer {layers[0]} changed.*stale"):
            cached.transcribe()
    with merger.merged(0.1, [3]):
        cached.transcribe()  # above the cached level: fine
    with torch.no_grad():
        tr.model.hubert.feature_projection.projection.bias.add_(1.0)
    try:
        with pytest.raises(ValueError, match="frontend changed"):
            cached.transcribe()
    finally:
        with torch.no_grad():
            tr.model.hubert.feature_projection.projection.bias.sub_(1.0)
    cached.transcribe()


def test_transcriber_protocol_and_argument_checks(
    tokenizer: Wav2Vec2CTCTokenizer, waves: list[np.ndarray]
) -> None:
    tr = _transcriber("stable", tokenizer)
    cached = CachedCTCTranscriber(tr, waves, 1, batch_size=BATCH)
    utts = [Utterance(str(i), w, "THE CAT") for i, w in enumerate(waves)]
    assert evaluate_asr(cached, utts, batch_size=BATCH).wer == evaluate_asr(tr, utts, batch_size=BATCH).wer
    with pytest.raises(ValueError, match="waveforms it was built with"):
        cached.transcribe(waves[:2])
    with pytest.raises(ValueError, match="batch_size"):
        cached.transcribe(waves, batch_size=BATCH + 1)
    with pytest.raises(ValueError, match="out of range"):
        PrefixCache(tr.model, [], LAYERS + 1)
    tr.model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            PrefixCache(tr.model, [], 1)
    finally:
        tr.model.eval()
    with pytest.raises(ValueError, match="ForCTC"):
        PrefixCache(BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2)).eval(), [], 0)
