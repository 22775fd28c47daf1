"""mamlib.models.beats: config, checkpoints in the original format, agreement with an independent BEATs, ViT merging."""

from __future__ import annotations

import math
import os
import time

import pytest
import torch
from torch import nn
from transformers import ViTConfig, ViTModel, WhisperConfig, WhisperModel

from mamlib.merge.families import attention_modules, detect_family
from mamlib.merge.merger import AttentionMerger
from mamlib.models.beats import (
    BEATS_ITER3_CONFIG,
    BEATs,
    BEATsConfig,
    beats_from_checkpoint_dict,
    load_beats_checkpoint,
    patch_padding_mask,
    relative_position_bucket,
    tiny_beats_config,
)

#: Largest absolute difference allowed between our BEATs and ESPnet's (float32, random weights of O(1) outputs).
OPENBEATS_ATOL = 1e-5

pytestmark = pytest.mark.filterwarnings("ignore:.*(weight_norm|autocast).*:FutureWarning")


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values in every parameter, LayerNorm gains and gates included (so swapped or skipped pieces show)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            centre = 1.0 if name.endswith(("layer_norm.weight", "weight_g", "grep_a")) else 0.0
            p.normal_(centre, 0.05 if p.dim() > 1 else 0.1, generator=gen)
    return model.eval()


def batch(lengths: tuple[int, ...] = (16000, 12000, 9000), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    wave = torch.randn(len(lengths), max(lengths), generator=gen) * 0.1
    mask = torch.arange(max(lengths))[None, :] >= torch.tensor(lengths)[:, None]
    return wave.masked_fill(mask, 0.0), mask


def reference_encoder(cfg: BEATsConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """ESPnet's BEATs encoder (vendored by openbeats) holding ``state``; it adds two fixed all-ones convolutions
    for mask bookkeeping (``*_pad``), absent from the original format."""
    beats_encoder = pytest.importorskip("openbeats.beats_encoder")
    ref = beats_encoder.BeatsEncoder(input_size=0, beats_config=cfg.to_dict(), is_pretraining=False).eval()
    info = ref.load_state_dict(state, strict=False)
    assert info.unexpected_keys == []
    assert sorted(info.missing_keys) == ["patch_embedding_pad.weight", "raw2fbank_pad.weight"]
    return ref


@torch.no_grad()
def reference_features(ref: nn.Module, wave: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    feats, out_mask = ref.extract_features(wave.unsqueeze(-1), None if mask is None else mask.clone())[:2]
    return feats, out_mask


# ------------------------------------------------------------------------------------------------ config


def test_config_round_trips_reference_keys_and_keeps_unknown_ones() -> None:
    cfg = BEATS_ITER3_CONFIG.to_dict()
    assert cfg["encoder_layers"] == 12 and cfg["encoder_embed_dim"] == 768 and cfg["max_distance"] == 800
    assert BEATsConfig.from_dict(cfg) == BEATS_ITER3_CONFIG
    odd = BEATsConfig.from_dict({"encoder_layers": 2, "some_future_key": [1, 2]})
    assert odd.encoder_layers == 2 and odd.encoder_embed_dim == 768  # defaults fill the rest
    assert odd.to_dict()["some_future_key"] == [1, 2]


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        ({"encoder_layers": "twelve"}, "encoder_layers"),
        ({"encoder_embed_dim": 100, "encoder_attention_heads": 12}, "divisible"),
        ({"activation_fn": "swish"}, "activation_fn"),
        ({"deep_norm": True, "layer_norm_first": True}, "deep_norm"),
        ({"input_patch_size": 0}, "input_patch_size"),
    ],
)
def test_bad_config_names_the_field(cfg: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        BEATsConfig.from_dict(cfg)


def test_iter3_config_has_about_90m_parameters() -> None:
    with torch.device("meta"):
        model = BEATs(BEATS_ITER3_CONFIG)
    n = sum(p.numel() for p in model.parameters())  # the shared position table counted once
    assert 89e6 < n < 92e6  # Sec. 4: "totaling 90 million parameters"


# ----------------------------------------------------------------------------------------- pieces by hand


def test_relative_position_buckets_by_hand() -> None:
    # 32 buckets → 16 per direction, exact below 8, log-spaced from 8 up to max_distance 128 (capped at 15).
    offsets = torch.tensor([0, -1, 1, -7, 7, -8, -16, -128, -500, 500])
    expected = [0, 1, 17, 7, 23, 8, 8 + int(math.log(2) / math.log(16) * 8), 15, 15, 31]
    assert relative_position_bucket(offsets, 32, 128).tolist() == expected


def test_patch_padding_mask_follows_samples_to_patches() -> None:
    # 12000 real samples: frames whose 400-sample window reaches past them start at 73; time step t covers
    # frames 16t..16t+15, so steps 0-3 are real and 4-5 padding; 8 mel bands per step.
    mask = torch.arange(16000)[None, :] >= 12000
    patches = patch_padding_mask(mask, num_frames=98, patch_size=16)
    assert patches.shape == (1, 48)
    assert patches[0].tolist() == [False] * 32 + [True] * 16


# --------------------------------------------------------------------------------- agreement with ESPnet


def test_agrees_with_openbeats_with_and_without_padding() -> None:
    model = randomize(BEATs(tiny_beats_config(layers=3)))
    ref = reference_encoder(model.cfg, model.state_dict())
    wave, mask = batch()
    with torch.no_grad():
        ours = model.extract_features(wave)[0]
        theirs = reference_features(ref, wave, None)[0]
        assert ours.shape == theirs.shape == (3, 48, 64)
        assert (ours - theirs).abs().max().item() <= OPENBEATS_ATOL
        ours, our_mask = model.extract_features(wave, mask)
        theirs, their_mask = reference_features(ref, wave, mask)
    assert torch.equal(our_mask, their_mask)
    assert our_mask.sum(dim=1).tolist() == [0, 16, 24]
    keep = ~our_mask.unsqueeze(-1)
    assert ((ours - theirs).abs() * keep).max().item() <= OPENBEATS_ATOL


def test_full_size_random_model_agrees_with_openbeats_on_one_second() -> None:
    start = time.perf_counter()
    with torch.device("meta"):  # skip the default initialisation: randomize() fills every parameter
        model = BEATs(BEATS_ITER3_CONFIG)
    model = randomize(model.to_empty(device="cpu"), seed=1)
    ref = reference_encoder(model.cfg, model.state_dict())
    wave, _ = batch((16000,), seed=1)
    with torch.no_grad():
        ours = model(wave)
        theirs = reference_features(ref, wave, None)[0]
    assert ours.shape == (1, 48, 768)  # 98 frames → 6 time steps × 8 mel bands
    assert torch.isfinite(ours).all()
    assert (ours - theirs).abs().max().item() <= OPENBEATS_ATOL
    assert time.perf_counter() - start < 60


def test_padded_clip_gives_the_same_frames_as_the_clip_alone() -> None:
    model = randomize(BEATs(tiny_beats_config()))
    wave, mask = batch((16000, 12000))
    with torch.no_grad():
        together, frame_mask = model.extract_features(wave, mask)
        alone = model(wave[1:, :12000])
    assert alone.shape[1] == int((~frame_mask[1]).sum())
    torch.testing.assert_close(together[1, : alone.shape[1]], alone[0], atol=1e-5, rtol=1e-5)


def test_all_padding_clip_is_rejected() -> None:
    model = BEATs(tiny_beats_config()).eval()
    wave, mask = batch((16000, 100))
    with pytest.raises(ValueError, match="all padding"):
        model.extract_features(wave, mask)


# ------------------------------------------------------------------------------------------- checkpoints


def test_checkpoint_in_the_original_format_loads_and_round_trips(tmp_path) -> None:
    """A checkpoint written by hand as the original code does (reference cfg keys, ESPnet-named weights)."""
    beats_encoder = pytest.importorskip("openbeats.beats_encoder")
    cfg = {**beats_encoder.BeatsConfig().__dict__, **tiny_beats_config().to_dict(), "finetuned_model": False}
    torch.manual_seed(3)
    ref = beats_encoder.BeatsEncoder(input_size=0, beats_config=cfg, is_pretraining=False).eval()
    randomize(ref, seed=3)
    state = {k: v for k, v in ref.state_dict().items() if not k.endswith("_pad.weight")}
    torch.save({"cfg": cfg, "model": state}, tmp_path / "orig.pt")

    model = load_beats_checkpoint(tmp_path / "orig.pt")
    wave, mask = batch()
    with torch.no_grad():
        ours = model.extract_features(wave, mask)[0]
        theirs = reference_features(ref, wave, mask)[0]
    keep = ~model.extract_features(wave, mask)[1].unsqueeze(-1)
    assert ((ours - theirs).abs() * keep).max().item() <= OPENBEATS_ATOL

    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, tmp_path / "again.pt")
    again = load_beats_checkpoint(tmp_path / "again.pt")
    with torch.no_grad():
        assert torch.equal(again(wave, mask), model(wave, mask))
    raw = torch.load(tmp_path / "again.pt", weights_only=True)
    assert set(raw) == {"cfg", "model"}
    assert set(raw["model"]) == set(state)
    assert {k: raw["cfg"][k] for k in cfg} == {k: cfg[k] for k in cfg}


def test_finetuned_checkpoint_keeps_predictor_and_labels(tmp_path) -> None:
    model = randomize(BEATs(tiny_beats_config(finetuned=True, num_classes=5), label_dict={"0": "dog", "1": "rain"}))
    path = tmp_path / "ft.pt"
    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict(), "label_dict": model.label_dict}, path)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"cfg", "model", "label_dict"} and "predictor.weight" in raw["model"]
    again = load_beats_checkpoint(path)
    assert again.label_dict == {"0": "dog", "1": "rain"}
    wave, mask = batch()
    with torch.no_grad():
        logits = again.predict(wave, mask)
        frames, frame_mask = again.extract_features(wave, mask)
        keep = (~frame_mask).unsqueeze(-1).float()
        by_hand = (again.predictor(frames) * keep).sum(1) / keep.sum(1)
    assert logits.shape == (3, 5)
    torch.testing.assert_close(logits, by_hand)
    torch.testing.assert_close(logits, model.predict(wave, mask), atol=0, rtol=0)
    with pytest.raises(ValueError, match="no predictor"):
        BEATs(tiny_beats_config()).predict(wave)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: torch.save({"model": {}}, p), "lacks \\['cfg'\\]"),
        (lambda p: torch.save({"cfg": tiny_beats_config().to_dict()}, p), "lacks \\['model'\\]"),
        (lambda p: torch.save(torch.zeros(3), p), "not a BEATs checkpoint.*Tensor"),
        (lambda p: torch.save({"cfg": {"encoder_layers": "x"}, "model": {}}, p), "bad BEATs 'cfg'.*encoder_layers"),
        (lambda p: _write(p, os.urandom(512)), "not a readable torch checkpoint"),
        (lambda p: _write(p, b"hello, I am text"), "not a readable torch checkpoint"),
        (lambda p: _write(p, b""), "not a readable torch checkpoint"),
    ],
    ids=["no-cfg", "no-model", "tensor", "bad-cfg", "random-bytes", "text", "empty"],
)
def test_bad_checkpoints_say_what_is_wrong(tmp_path, make, words: str) -> None:
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(ValueError, match=words):
        load_beats_checkpoint(path)


def test_truncated_and_mismatched_checkpoints(tmp_path) -> None:
    model = BEATs(tiny_beats_config())
    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, tmp_path / "good.pt")
    good = (tmp_path / "good.pt").read_bytes()
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        load_beats_checkpoint(_write(tmp_path / "cut.pt", good[: len(good) // 2]))

    state = model.state_dict()
    cfg = model.cfg.to_dict()
    missing = {k: v for k, v in state.items() if k != "encoder.layers.1.self_attn.q_proj.weight"}
    with pytest.raises(ValueError, match="missing.*layers.1.self_attn.q_proj.weight"):
        beats_from_checkpoint_dict({"cfg": cfg, "model": missing})
    with pytest.raises(ValueError, match="unexpected.*raw2fbank_pad"):
        beats_from_checkpoint_dict({"cfg": cfg, "model": {**state, "raw2fbank_pad.weight": torch.ones(1, 1, 400)}})
    with pytest.raises(ValueError, match="shape mismatches.*fc1.weight"):
        beats_from_checkpoint_dict({"cfg": {**cfg, "encoder_ffn_embed_dim": 96}, "model": state})
    with pytest.raises(FileNotFoundError, match="microsoft/unilm"):
        load_beats_checkpoint(tmp_path / "absent.pt")


# ----------------------------------------------------------------------------------- attention family, merge


def test_attention_family_finds_qkv_and_coexists_with_whisper() -> None:
    model = BEATs(tiny_beats_config(layers=3))
    found = attention_modules(model, "beats")
    assert sorted(found) == [0, 1, 2]
    assert found[2]["q"] is model.encoder.layers[2].self_attn.q_proj
    assert found[1]["v"] is model.encoder.layers[1].self_attn.v_proj
    # Whisper's encoder pattern names the same modules, which detection accepts; the modules are what matter.
    detected = attention_modules(model, detect_family(model))
    assert {(i, p): id(m) for i, d in detected.items() for p, m in d.items()} == {
        (i, p): id(m) for i, d in found.items() for p, m in d.items()
    }
    whisper = WhisperModel(
        WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
                      max_source_positions=16, max_target_positions=16, vocab_size=64, pad_token_id=0,
                      bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
    )
    assert sorted(attention_modules(whisper, detect_family(whisper))) == [0, 1]


def tiny_vit(seed: int = 7) -> ViTModel:
    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                    image_size=32, patch_size=16)
    return ViTModel(cfg).eval()


def test_vit_merges_into_beats() -> None:
    beats = randomize(BEATs(tiny_beats_config(layers=2, dim=64)))
    vit = tiny_vit()
    wave, mask = batch()
    with torch.no_grad():
        original = beats(wave, mask)
    merger = AttentionMerger(beats, vit, target_family="beats")
    assert merger.source.origin.endswith("(vit)")

    merger.apply(0.0)
    with torch.no_grad():
        assert torch.equal(beats(wave, mask), original)

    merger.apply(0.5)
    q_beats = merger.original.weights[(1, "q")]
    q_vit = vit.layers[1].attention.q_proj.weight
    torch.testing.assert_close(beats.encoder.layers[1].self_attn.q_proj.weight, 0.5 * q_vit + 0.5 * q_beats)
    with torch.no_grad():
        half = beats(wave, mask)
        merger.apply(0.1)
        tenth = beats(wave, mask)
    gap_half = (half - original).abs().max().item()
    gap_tenth = (tenth - original).abs().max().item()
    assert 0 < gap_tenth < gap_half

    merger.restore()
    with torch.no_grad():
        assert torch.equal(beats(wave, mask), original)


def test_merging_q_alone_moves_the_relative_position_gate() -> None:
    beats = randomize(BEATs(tiny_beats_config(layers=2, dim=64)))
    merger = AttentionMerger(beats, tiny_vit(), target_family="beats", projections=("q",))
    attn = beats.encoder.layers[0].self_attn
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        q = attn.q_proj(x).view(2, 10, 4, 16).transpose(1, 2)
        before = attn.gate(q)
        with merger.merged(0.3):
            q = attn.q_proj(x).view(2, 10, 4, 16).transpose(1, 2)
            after = attn.gate(q)
    assert not torch.allclose(before, after)
