"""Data-driven layer selection (Sec. 4.1, "Interpolation of subset of layers", Table 3): per-layer representations.

The paper encodes paired data — an utterance with the target (e.g. HuBERT), its transcript with the text source
(BERT) — takes "hidden representations at the output of each attention block" from every layer of both networks,
averages them over the sequence, scores every layer by the similarity of the paired vectors (Euclidean distance,
inner product, Sliced Wasserstein Distance; :mod:`mamlib.selection.scores`) and merges the top-k layers (Eq. 2).
Here :func:`audio_layer_representations` (HuBERT / Wav2Vec2), :func:`text_layer_representations` (BERT) and
:func:`whisper_layer_representations` (Whisper encoder) each return ``[n_layers, n_samples, width]`` mean-pooled
vectors, padding masked out.

Where the vectors are read (``site``): by default (``"layer"``) the output of each transformer block — what
``output_hidden_states`` reports: the final LayerNorm output for post-LN models (BERT, HuBERT-base), the raw
residual stream for pre-LN ones (HuBERT-large, Whisper). ``site="attention"`` reads the self-attention sub-layer's
output projection instead (the term added to the residual stream), the same definition in every family.

How the SWD is read: between two single pooled vectors it degenerates into a rescaled Euclidean distance, which
could not give Table 3 a distinct SWD column; so for each layer the ``N`` audio and ``N`` text vectors are two
empirical distributions in ``R^width``, compared with POT's ``ot.sliced_wasserstein_distance`` (the distribution-level
comparison of the cited work [37]), projections from a fixed seed, the same for every layer. Euclidean distance and
inner product are averaged over the ``N`` pairs. Pre-LN residual streams grow with depth, so ``normalize="l2"``
(unit vectors: the inner product becomes the cosine) or ``"rms"`` (each layer divided by its RMS norm, per model)
keeps the rankings from just following the norms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from mamlib.asr.recognizers import audio_batches
from mamlib.common.audio import SAMPLE_RATE
from mamlib.common.tensors import masked_mean
from mamlib.merge.families import AttentionFamily, attention_modules, resolve_family

Site = Literal["layer", "attention"]
Metric = Literal["euclidean", "inner_product", "swd"]
Normalization = Literal["none", "l2", "rms"]

#: The three layer-similarity measures of Table 3.
METRICS: tuple[str, ...] = ("euclidean", "inner_product", "swd")
#: Whether a larger score means "more similar" (only the inner product is a similarity; the others are distances).
HIGHER_IS_MORE_SIMILAR: dict[str, bool] = {"euclidean": False, "inner_product": True, "swd": False}

# The attention sub-layer's output projection, relative to a layer module (HuBERT/Wav2Vec2, Whisper, BERT).
_OUT_PROJECTIONS: tuple[str, ...] = ("attention.out_proj", "self_attn.out_proj", "attention.output.dense")
#: Batch inputs of one model: the indices of a batch and the model's device → (model inputs, pooling mask).
Encode = Callable[[list[int], torch.device], tuple[Mapping[str, Tensor], Tensor]]


def _read_sites(model: nn.Module, site: Site, family: str | AttentionFamily | None) -> list[nn.Module]:
    """The module of every transformer layer (located through its attention family's Q projections), or of its
    attention output projection, in layer order."""
    if site not in ("layer", "attention"):
        raise ValueError(f"site must be 'layer' or 'attention', got {site!r}")
    fam = resolve_family(model, family)
    attention_modules(model, fam)  # validates a complete, contiguous Q/K/V layout
    regex = re.compile(fam.pattern)
    names = {int(m.group("layer")): name[: m.end("layer")]
             for name, _ in model.named_modules() if (m := regex.fullmatch(name)) is not None}
    layers = [model.get_submodule(names[i]) for i in range(len(names))]
    if site == "layer":
        return layers
    for path in _OUT_PROJECTIONS:
        with suppress(AttributeError):
            return [layer.get_submodule(path) for layer in layers]
    raise ValueError(f"no attention output projection ({', '.join(_OUT_PROJECTIONS)}) in {type(layers[0]).__name__}")


def _pooled(model: nn.Module, batches: list[list[int]], encode: Encode, site: Site, family: str | None) -> Tensor:
    """Mean-pooled per-layer representations ``[n_layers, n_samples, width]`` (float32, on CPU) in sample order: the
    model runs once per batch (inputs and pooling mask from ``encode``) with a forward hook at every ``site``."""
    if not batches:
        raise ValueError("no samples given")
    sites = _read_sites(model, site, family)
    model.eval()
    device = next(model.parameters()).device
    pooled: dict[int, Tensor] = {}
    batch: dict[str, Tensor] = {}
    reps = []

    def pool(i: int, _module: nn.Module, _args: Any, output: Any) -> None:
        hidden = output[0] if isinstance(output, (tuple, list)) else output
        pooled[i] = masked_mean(hidden.float(), batch["mask"])  # on the model's device: one copy per batch

    handles = [m.register_forward_hook(partial(pool, i)) for i, m in enumerate(sites)]
    try:
        for idx in batches:
            inputs, batch["mask"] = encode(idx, device)
            pooled.clear()
            with torch.inference_mode():
                model(**inputs)
            if missing := [i for i in range(len(sites)) if i not in pooled]:
                raise RuntimeError(f"layers {missing} did not run in the forward pass")
            reps.append(torch.stack([pooled[i] for i in range(len(sites))]).cpu())
    finally:
        for h in handles:
            h.remove()
    return torch.cat(reps, dim=1)[:, np.argsort([i for idx in batches for i in idx])]  # back into sample order


def _in_order(n: int, batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def audio_layer_representations(
    model: nn.Module, feature_extractor: Any, waves: Sequence[np.ndarray], *, batch_size: int = 8,
    batch_seconds: float | None = None, site: Site = "layer",
) -> Tensor:
    """``[n_layers, len(waves), width]`` pooled representations of a HuBERT / Wav2Vec2 model (e.g. HubertForCTC).

    Waveforms are batched by length. The model gets an attention mask exactly when the feature extractor returns one
    (as :class:`~mamlib.asr.recognizers.CTCTranscriber` calls it); pooling always drops the frames of padding, via
    the model's ``_get_feat_extract_output_lengths`` (padding still leaks into models trained without masks through
    the feature encoder; ``batch_size=1`` avoids it).
    """
    use_mask = bool(getattr(feature_extractor, "return_attention_mask", False))
    frames_of = getattr(model, "_get_feat_extract_output_lengths", None)
    if frames_of is None:
        raise ValueError(f"{type(model).__name__} has no _get_feat_extract_output_lengths (not a Wav2Vec2-like model)")

    def encode(idx: list[int], device: torch.device) -> tuple[dict[str, Tensor], Tensor]:
        feats = feature_extractor([waves[i] for i in idx], sampling_rate=SAMPLE_RATE, padding=True,
                                  return_tensors="pt", return_attention_mask=use_mask)
        values = feats["input_values"].to(device=device, dtype=next(model.parameters()).dtype)  # a bf16 target too
        inputs = {"input_values": values} | ({"attention_mask": feats["attention_mask"].to(device)} if use_mask else {})
        # frames of each waveform, and (last) of the padded batch
        frames = frames_of(torch.tensor([len(waves[i]) for i in idx] + [values.shape[1]], device=device)).long()
        return inputs, torch.arange(int(frames[-1]), device=device)[None, :] < frames[:-1, None]

    return _pooled(model, audio_batches(waves, batch_size, batch_seconds), encode, site, None)


def text_layer_representations(
    model: nn.Module, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 32, site: Site = "layer",
    exclude_special_tokens: bool = False,
) -> Tensor:
    """``[n_layers, len(texts), width]`` pooled representations of a BERT-like text encoder (at most 512 tokens):
    the mean over every real token, ``[CLS]``/``[SEP]`` included unless ``exclude_special_tokens``."""

    def encode(idx: list[int], device: torch.device) -> tuple[dict[str, Tensor], Tensor]:
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=512, return_tensors="pt",
                        return_special_tokens_mask=exclude_special_tokens)
        mask = enc["attention_mask"].bool()
        if exclude_special_tokens:
            mask = mask & ~enc.pop("special_tokens_mask").bool()
        return {k: v.to(device) for k, v in enc.items()}, mask.to(device)

    return _pooled(model, _in_order(len(texts), batch_size), encode, site, None)


def whisper_layer_representations(
    model: nn.Module, feature_extractor: Any, waves: Sequence[np.ndarray], *, batch_size: int = 8, site: Site = "layer"
) -> Tensor:
    """``[n_layers, len(waves), width]`` pooled representations of a Whisper encoder (``model``: a Whisper model or
    its encoder). Inputs are padded to 30 s and the encoder takes no mask; pooling keeps the frames covering real
    audio (the feature extractor's mel-frame mask, subsampled by the encoder's stride-2 convolution)."""
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model
    dtype = next(encoder.parameters()).dtype

    def encode(idx: list[int], device: torch.device) -> tuple[dict[str, Tensor], Tensor]:
        feats = feature_extractor([waves[i] for i in idx], sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                  return_attention_mask=True)
        features = feats["input_features"].to(device=device, dtype=dtype)
        return {"input_features": features}, feats["attention_mask"][:, ::2].bool().to(device)

    return _pooled(encoder, _in_order(len(waves), batch_size), encode, site, "whisper-encoder")
