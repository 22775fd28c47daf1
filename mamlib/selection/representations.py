"""Data-driven layer selection (Sec. 4.1, "Interpolation of subset of layers", Table 3).

The paper encodes paired data — an utterance with HuBERT (target), its transcript with BERT (source) — takes "hidden
representations at the output of each attention block" from every layer of both networks, averages them over the
sequence (one width-sized vector per layer and sample), scores every layer by the similarity of the paired vectors
(Euclidean distance, inner product, Sliced Wasserstein Distance) and merges the top-k most similar layers (Eq. 2).

Two steps, kept apart:

* **Representations** — :func:`layer_representations` (one batch, any model with a registered attention family)
  and the batching wrappers :func:`audio_layer_representations` (HuBERT / Wav2Vec2 on waveforms),
  :func:`text_layer_representations` (BERT on text) and :func:`whisper_layer_representations` (Whisper encoder).
  Each returns a ``[n_layers, n_samples, width]`` tensor of mean-pooled vectors, padding masked out.
* **Scores** — pure functions over those arrays: :func:`layer_scores`, :func:`similarity_table`,
  :func:`rank_layers`, :func:`top_k_layers`.

Where the vectors are read (``site``). "The output of each attention block" is read as the output of each
transformer block (``site="layer"``, the default): the hidden state that layer ``i`` hands to layer ``i + 1`` — what
``output_hidden_states`` reports, and what "hidden representations ... from every layer" most plainly means. For
post-LN models (BERT, HuBERT-base) that is the layer's final LayerNorm output; for pre-LN models (HuBERT-large,
Whisper) it is the raw residual stream, before any encoder-final LayerNorm. ``site="attention"`` instead reads the
self-attention sub-layer itself: the output of its output projection (``out_proj`` / BERT's ``attention.output.dense``),
i.e. the term added to the residual stream, before the residual addition and any LayerNorm — the same definition in
every family.

How the Sliced Wasserstein Distance is read. The paper computes SWD "between an audio-text pair's ... hidden
representations" after mean pooling. Between two single vectors SWD degenerates into a rescaled Euclidean distance
(``≈ ‖a − t‖ / √width`` for p = 2), which could not produce Table 3's distinct SWD column. We therefore treat, for each
layer, the ``N`` pooled audio vectors and the ``N`` pooled text vectors as two empirical distributions in
``R^width`` (uniform weights) and compute POT's ``ot.sliced_wasserstein_distance`` between them — the
distribution-level comparison of hidden representations of the cited speech-transferability work [37]. Projections
are drawn from a fixed seed, the same directions for every layer, so that layer scores are comparable.

Euclidean distance and inner product are computed per pair and averaged over the ``N`` pairs.

Scale. Pre-LN residual streams grow with depth, so raw Euclidean / inner-product rankings can just follow the norms.
``normalize="l2"`` scales every pooled vector to unit length (inner product becomes cosine similarity);
``normalize="rms"`` divides each layer's vectors, per model, by their root-mean-square norm (keeping the geometry
between samples, removing the depth-wise scale).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
#: Default number of random directions for the Sliced Wasserstein Distance.
DEFAULT_PROJECTIONS = 256
#: Default seed for the SWD projections.
DEFAULT_SEED = 0

# The attention sub-layer's output projection, relative to a layer module (HuBERT/Wav2Vec2, Whisper, BERT).
_OUT_PROJECTIONS: tuple[str, ...] = ("attention.out_proj", "self_attn.out_proj", "attention.output.dense")



def layer_modules(model: nn.Module, family: str | AttentionFamily | None = None) -> list[nn.Module]:
    """The transformer layer modules of ``model`` in order, located through its attention family's Q projections."""
    fam = resolve_family(model, family)
    attention_modules(model, fam)  # validates a complete, contiguous Q/K/V layout
    regex = re.compile(fam.pattern)
    names: dict[int, str] = {}
    for name, _ in model.named_modules():
        m = regex.fullmatch(name)
        if m is not None:
            names[int(m.group("layer"))] = name[: m.end("layer")]
    return [model.get_submodule(names[i]) for i in range(len(names))]


def _site_module(layer: nn.Module, site: Site) -> nn.Module:
    if site == "layer":
        return layer
    if site == "attention":
        for path in _OUT_PROJECTIONS:
            try:
                return layer.get_submodule(path)
            except AttributeError:
                continue
        raise ValueError(
            f"no attention output projection ({', '.join(_OUT_PROJECTIONS)}) in {type(layer).__name__}"
        )
    raise ValueError(f"site must be 'layer' or 'attention', got {site!r}")


@contextmanager
def _pooling_hooks(modules: Sequence[nn.Module], mask: Tensor | None, sink: list[Tensor | None]) -> Iterator[None]:
    def make(i: int) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            hidden = output[0] if isinstance(output, (tuple, list)) else output
            sink[i] = masked_mean(hidden.float(), mask)

        return hook

    handles = [m.register_forward_hook(make(i)) for i, m in enumerate(modules)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.inference_mode()
def layer_representations(
    model: nn.Module,
    inputs: Mapping[str, Tensor],
    pool_mask: Tensor | None,
    *,
    site: Site = "layer",
    family: str | AttentionFamily | None = None,
    hooked: nn.Module | None = None,
) -> Tensor:
    """Mean-pooled per-layer representations of one batch: ``[n_layers, batch, width]`` (float32, on CPU).

    ``model(**inputs)`` is run once with forward hooks on every layer (``site="layer"``) or every attention output
    projection (``site="attention"``), see the module docstring. ``pool_mask [batch, seq]`` marks the positions to
    average (None: all). ``hooked`` is the module whose layers are read when it differs from ``model`` (e.g. the
    encoder inside a larger model); ``family`` is detected when None.
    """
    layers = layer_modules(hooked if hooked is not None else model, family)
    sites = [_site_module(layer, site) for layer in layers]
    pooled: list[Tensor | None] = [None] * len(sites)
    with _pooling_hooks(sites, pool_mask, pooled):
        model(**inputs)
    if any(p is None for p in pooled):
        missing = [i for i, p in enumerate(pooled) if p is None]
        raise RuntimeError(f"layers {missing} did not run in the forward pass")
    return torch.stack([p.cpu() for p in pooled if p is not None])


def frame_lengths(model: nn.Module, sample_lengths: Tensor) -> Tensor:
    """Frames produced by a HuBERT/Wav2Vec2 model's convolutional feature encoder for ``sample_lengths`` samples,
    via the model's own ``_get_feat_extract_output_lengths``."""
    lengths_fn = getattr(model, "_get_feat_extract_output_lengths", None)
    if lengths_fn is None:
        raise ValueError(f"{type(model).__name__} has no _get_feat_extract_output_lengths (not a Wav2Vec2-like model)")
    return lengths_fn(sample_lengths.long()).long()


def frame_mask(model: nn.Module, sample_mask: Tensor, num_frames: int) -> Tensor:
    """The frame-level mask ``[batch, num_frames]`` of a HuBERT/Wav2Vec2 model for a sample-level mask
    ``[batch, samples]``: frame ``t`` is valid when ``t < frame_lengths(valid samples)``."""
    lengths = frame_lengths(model, sample_mask.long().sum(-1))
    return torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]


def _batches(n: int, batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def _gather(parts: list[tuple[list[int], Tensor]], n: int) -> Tensor:
    if not parts:
        raise ValueError("no samples given")
    first = parts[0][1]
    out = torch.empty(first.shape[0], n, first.shape[2], dtype=first.dtype)
    for idx, reps in parts:
        out[:, idx] = reps
    return out


def _device_of(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def audio_layer_representations(
    model: nn.Module,
    feature_extractor: Any,
    waves: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
    batch_seconds: float | None = None,
    site: Site = "layer",
    family: str | AttentionFamily | None = None,
) -> Tensor:
    """``[n_layers, len(waves), width]`` pooled representations of a HuBERT / Wav2Vec2 model (e.g. HubertForCTC).

    Waveforms are batched by length. The model receives an attention mask exactly when the feature extractor is
    configured to return one (as :class:`~mamlib.asr.recognizers.CTCTranscriber` does); pooling always ignores the
    padded frames, whose extent is derived from each waveform's length with :func:`frame_mask`. (Models trained
    without attention masks still let padding leak into valid frames through the feature encoder; ``batch_size=1``
    avoids it.)
    """
    model.eval()
    device = _device_of(model)
    use_mask = bool(getattr(feature_extractor, "return_attention_mask", False))
    parts: list[tuple[list[int], Tensor]] = []
    for idx in audio_batches(waves, batch_size, batch_seconds):
        # Called as CTCTranscriber calls it: asking for a mask also changes the extractor's normalisation.
        feats = feature_extractor(
            [waves[i] for i in idx], sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt",
            return_attention_mask=use_mask,
        )
        values = feats["input_values"].to(device)
        lengths = torch.tensor([len(waves[i]) for i in idx], device=device)
        sample_mask = torch.arange(values.shape[1], device=device)[None, :] < lengths[:, None]
        inputs = {"input_values": values}
        if use_mask:
            inputs["attention_mask"] = feats["attention_mask"].to(device)
        num_frames = int(frame_lengths(model, torch.tensor([values.shape[1]]))[0])
        mask = frame_mask(model, sample_mask, num_frames)
        parts.append((idx, layer_representations(model, inputs, mask, site=site, family=family)))
    return _gather(parts, len(waves))


def text_layer_representations(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    site: Site = "layer",
    exclude_special_tokens: bool = False,
    max_length: int | None = 512,
    family: str | AttentionFamily | None = None,
) -> Tensor:
    """``[n_layers, len(texts), width]`` pooled representations of a BERT-like text encoder.

    Pooling averages over the tokenizer's attention mask (every real token, ``[CLS]``/``[SEP]`` included, as a plain
    mean over the sequence does); ``exclude_special_tokens=True`` leaves the special tokens out of the average.
    """
    model.eval()
    device = _device_of(model)
    parts: list[tuple[list[int], Tensor]] = []
    for idx in _batches(len(texts), batch_size):
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=max_length is not None, max_length=max_length,
            return_tensors="pt", return_special_tokens_mask=exclude_special_tokens,
        )
        mask = enc["attention_mask"].bool()
        if exclude_special_tokens:
            mask = mask & ~enc.pop("special_tokens_mask").bool()
        inputs = {k: v.to(device) for k, v in enc.items()}
        parts.append((idx, layer_representations(model, inputs, mask.to(device), site=site, family=family)))
    return _gather(parts, len(texts))


def whisper_layer_representations(
    model: nn.Module,
    feature_extractor: Any,
    waves: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
    site: Site = "layer",
) -> Tensor:
    """``[n_layers, len(waves), width]`` pooled representations of a Whisper encoder.

    ``model`` is a Whisper model (its encoder is used) or the encoder itself. Whisper pads every input to 30 s and
    its encoder takes no mask; pooling uses the feature extractor's mel-frame mask, subsampled by the encoder's
    stride-2 convolution, so only frames covering real audio are averaged.
    """
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model
    encoder.eval()
    device = _device_of(encoder)
    parts: list[tuple[list[int], Tensor]] = []
    for idx in _batches(len(waves), batch_size):
        feats = feature_extractor(
            [waves[i] for i in idx], sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
        )
        features = feats["input_features"].to(device=device, dtype=next(encoder.parameters()).dtype)
        mask = feats["attention_mask"][:, ::2].bool().to(device)
        reps = layer_representations(encoder, {"input_features": features}, mask, site=site, family="whisper-encoder")
        parts.append((idx, reps))
    return _gather(parts, len(waves))
