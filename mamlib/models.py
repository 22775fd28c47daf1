"""Building the experiments' models from a :class:`ModelSpec`: tiny random ones, hub checkpoints, packaged weights.

The paper's ASR pair is HuBERT-large fine-tuned for CTC (target) and BERT-large-uncased (source), both 24 × 1024
(Sec. 4). The ``smoke`` preset builds the same architectures tiny and randomly initialised; :func:`hubert_large_config`
and :func:`bert_large_config` mirror the published configurations so that the paper preset's code paths can be tested
at full size without downloading anything.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    HubertConfig,
    HubertForCTC,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
)

from mamlib.asr import CTCTranscriber, Transcriber

#: Characters of the LibriSpeech CTC vocabulary used by facebook/hubert-large-ls960-ft ("|" separates words).
CTC_CHARACTERS = list("|ETAONIHSRDLUMWCFGYPBVK'XJQZ")


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build: a ``kind`` from :data:`MODEL_KINDS`, an optional ``name`` (hub id) and options."""

    kind: str
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; known kinds: {sorted(MODEL_KINDS)}")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "options": dict(self.options)}


def char_ctc_tokenizer() -> Wav2Vec2CTCTokenizer:
    """A character CTC tokenizer with the LibriSpeech vocabulary layout (pad=0, ``|`` as word delimiter)."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in CTC_CHARACTERS:
        vocab[c] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab))
        return Wav2Vec2CTCTokenizer(str(path), word_delimiter_token="|", do_lower_case=False)


def char_wordpiece_tokenizer():
    """A character-level WordPiece tokenizer for the random text models (no vocabulary can be downloaded).

    Every lower-case letter, digit and apostrophe is a token, word-initial or continuation (``##x``), so any
    normalized transcript tokenizes without ``[UNK]``.
    """
    from transformers import BertTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789'")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n")
        return BertTokenizer(str(path), do_lower_case=True)


def speech_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """The feature extractor of HuBERT-large-ft: raw 16 kHz audio, per-utterance normalisation, attention masks."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def hubert_large_config(**overrides: Any) -> HubertConfig:
    """The architecture of ``facebook/hubert-large-ls960-ft`` (24 layers × 1024, stable layer norm, CTC head)."""
    cfg = dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True, vocab_size=32,
        pad_token_id=0, ctc_loss_reduction="sum",
    )
    cfg.update(overrides)
    return HubertConfig(**cfg)


def bert_large_config(**overrides: Any) -> BertConfig:
    """The architecture of ``bert-large-uncased`` (24 layers × 1024, 16 heads)."""
    cfg = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    cfg.update(overrides)
    return BertConfig(**cfg)


def _tiny_options(spec: ModelSpec) -> tuple[int, int, int, int]:
    o = spec.options
    return int(o.get("seed", 0)), int(o.get("hidden_size", 64)), int(o.get("num_layers", 4)), int(o.get("heads", 4))


def _build_tiny_hubert_ctc(spec: ModelSpec, device: str) -> Transcriber:
    seed, hidden, layers, heads = _tiny_options(spec)
    torch.manual_seed(seed)
    conv = int(spec.options.get("conv_dim", 32))
    tokenizer = char_ctc_tokenizer()
    model = HubertForCTC(
        hubert_large_config(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
            conv_dim=(conv,) * 7, num_conv_pos_embeddings=16, vocab_size=len(tokenizer),
        )
    )
    return CTCTranscriber(model, speech_feature_extractor(), tokenizer, device)


def _build_tiny_bert(spec: ModelSpec, device: str) -> nn.Module:
    seed, hidden, layers, heads = _tiny_options(spec)
    torch.manual_seed(seed)
    return BertModel(bert_large_config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
    )).eval().to(device)


def _build_random_hubert_large(spec: ModelSpec, device: str) -> Transcriber:
    torch.manual_seed(int(spec.options.get("seed", 0)))
    tokenizer = char_ctc_tokenizer()
    return CTCTranscriber(HubertForCTC(hubert_large_config()), speech_feature_extractor(), tokenizer, device)


def _build_random_bert_large(spec: ModelSpec, device: str) -> nn.Module:
    torch.manual_seed(int(spec.options.get("seed", 0)))
    return BertModel(bert_large_config()).eval().to(device)


def _hub_kwargs(spec: ModelSpec) -> dict[str, Any]:
    return {"local_files_only": bool(spec.options.get("local_files_only", False))}


def _build_hub_ctc(spec: ModelSpec, device: str) -> Transcriber:
    from transformers import AutoModelForCTC, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(spec.name, **_hub_kwargs(spec))
        model = AutoModelForCTC.from_pretrained(spec.name, **_hub_kwargs(spec))
    except OSError as err:
        raise OSError(
            f"cannot load the CTC model {spec.name!r} from the Hugging Face hub or its local cache ({err}). "
            "The paper preset needs hub access (or a pre-filled HF cache); the smoke and mini presets run offline."
        ) from err
    return CTCTranscriber(model, processor.feature_extractor, processor.tokenizer, device)


def _build_hub_encoder(spec: ModelSpec, device: str) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(spec.name, **_hub_kwargs(spec)).eval().to(device)
    except OSError as err:
        raise OSError(
            f"cannot load {spec.name!r} from the Hugging Face hub or its local cache ({err}). "
            "The paper preset needs hub access (or a pre-filled HF cache); the smoke and mini presets run offline."
        ) from err


def _build_minilm(spec: ModelSpec, device: str) -> nn.Module:
    from mamlib.pretrained import load_minilm

    model, _ = load_minilm(origin=spec.options.get("origin", "package"))
    return model.eval().to(device)


def _build_whisper_tiny_en(spec: ModelSpec, device: str) -> Transcriber:
    from mamlib.pretrained import load_whisper_tiny_en
    from mamlib.whisper_asr import WhisperTranscriber

    model, processor = load_whisper_tiny_en(origin=spec.options.get("origin", "package"))
    return WhisperTranscriber(model, processor, device=device)


@dataclass
class AudioEncoder:
    """An audio classifier's frozen encoder (Sec. 4, AEC): the network to merge into and how to run it.

    ``encode`` follows :data:`mamlib.aec.EncoderFn`: waveforms ``(B, N)`` and padding mask → frames and frame mask.
    """

    model: nn.Module
    encode: Callable[..., Any]


def _spec_path(spec: ModelSpec) -> str:
    import os

    env = spec.options.get("path_env")
    path = spec.options.get("path") or (os.environ.get(env) if env else None)
    if not path:
        raise FileNotFoundError(
            f"model kind {spec.kind!r} needs a checkpoint file: set options.path in the preset"
            + (f" or the environment variable {env}" if env else "")
            + ". BEATs checkpoints (e.g. BEATs_iter3_plus_AS2M.pt) come from "
            "https://github.com/microsoft/unilm/tree/master/beats"
        )
    return str(path)


def _build_tiny_beats(spec: ModelSpec, device: str) -> AudioEncoder:
    from mamlib.aec import beats_encoder_fn
    from mamlib.beats import BEATs, tiny_beats_config

    seed, hidden, layers, heads = _tiny_options(spec)
    torch.manual_seed(seed)
    model = BEATs(tiny_beats_config(layers=layers, dim=hidden, heads=heads)).eval().to(device)
    return AudioEncoder(model, beats_encoder_fn(model))


def _build_beats_checkpoint(spec: ModelSpec, device: str) -> AudioEncoder:
    from mamlib.aec import beats_encoder_fn
    from mamlib.beats import load_beats_checkpoint

    model = load_beats_checkpoint(_spec_path(spec)).eval().to(device)
    return AudioEncoder(model, beats_encoder_fn(model))


def _build_whisper_encoder(spec: ModelSpec, device: str) -> AudioEncoder:
    from mamlib.aec import whisper_encoder_fn
    from mamlib.pretrained import load_whisper_tiny_en

    model, processor = load_whisper_tiny_en(origin=spec.options.get("origin", "package"))
    model = model.eval().to(device)
    return AudioEncoder(model, whisper_encoder_fn(model, processor.feature_extractor))


def _build_tiny_vit(spec: ModelSpec, device: str) -> nn.Module:
    from transformers import ViTConfig, ViTModel

    seed, hidden, layers, heads = _tiny_options(spec)
    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=2 * hidden, image_size=32, patch_size=16)
    return ViTModel(cfg).eval().to(device)


def _build_random_vit_base(spec: ModelSpec, device: str) -> nn.Module:
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(int(spec.options.get("seed", 0)))
    return ViTModel(ViTConfig()).eval().to(device)  # ViT-B/16: 12 layers × 768, as google/vit-base-patch16-224-in21k


def _build_vit_s14(spec: ModelSpec, device: str) -> nn.Module:
    from mamlib.pretrained import load_vit_s14

    return load_vit_s14(origin=spec.options.get("origin", "package")).eval().to(device)


MODEL_KINDS: dict[str, Callable[[ModelSpec, str], Any]] = {
    "tiny-hubert-ctc": _build_tiny_hubert_ctc,
    "tiny-bert": _build_tiny_bert,
    "random-hubert-large-ctc": _build_random_hubert_large,
    "random-bert-large": _build_random_bert_large,
    "hub-ctc": _build_hub_ctc,
    "hub-encoder": _build_hub_encoder,
    "minilm": _build_minilm,
    "whisper-tiny-en": _build_whisper_tiny_en,
    "tiny-beats": _build_tiny_beats,
    "beats-checkpoint": _build_beats_checkpoint,
    "whisper-tiny-en-encoder": _build_whisper_encoder,
    "tiny-vit": _build_tiny_vit,
    "random-vit-base": _build_random_vit_base,
    "vit-s14": _build_vit_s14,
}


def build_text_source(spec: ModelSpec, device: str = "cpu") -> tuple[nn.Module, Any]:
    """A text source model with its tokenizer (Sec. 4.1's layer selection encodes transcripts with both)."""
    if spec.kind in ("tiny-bert", "random-bert-large"):
        return build(spec, device), char_wordpiece_tokenizer()
    if spec.kind == "minilm":
        from mamlib.pretrained import load_minilm

        model, tokenizer = load_minilm(origin=spec.options.get("origin", "package"))
        return model.eval().to(device), tokenizer
    if spec.kind == "hub-encoder":
        from transformers import AutoTokenizer

        return build(spec, device), AutoTokenizer.from_pretrained(spec.name, **_hub_kwargs(spec))
    raise ValueError(f"model kind {spec.kind!r} is not a text source with a tokenizer")


def build(spec: ModelSpec, device: str = "cpu") -> Any:
    """Build the model (or, for ASR targets, the :class:`~mamlib.asr.Transcriber`) that ``spec`` describes."""
    return MODEL_KINDS[spec.kind](spec, device)
