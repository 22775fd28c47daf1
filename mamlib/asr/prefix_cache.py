"""Reusing the unchanged bottom of the network across a sweep (Sec. 3.1–3.2, Eq. 1–2, Tables 1 and 2).

A merge that leaves layers ``0 .. j-1`` untouched (``λ_i = 0`` for ``i < j``) shares everything below layer ``j``
(feature encoder, projection, positional convolution, those layers) with every such configuration. A
:class:`PrefixCache` runs the model once on fixed batches, keeps the hidden states entering each requested layer (its
*levels*) with the very extra arguments the encoder handed its layers (captured by a forward pre-hook), and then runs
only layers ``j ..``, the final LayerNorm of the stable-layer-norm variant (HuBERT-large), the head's dropout and
``lm_head`` (transformers 5 ``HubertForCTC`` / ``Wav2Vec2ForCTC`` in eval mode; models with an adapter are refused).

Safety: the cache fingerprints (float64 sum and sum of squares) the frontend and each layer below its deepest level;
every transcription recomputes them and starts from the deepest level below every change, and a change below every
level raises ValueError. A :class:`CachedTranscriber` returns exactly the strings its recognizer's ``transcribe``
would (same batches, padding and masks): :class:`CachedCTCTranscriber`, and
:class:`~mamlib.asr.whisper.CachedWhisperTranscriber` for Whisper's encoder (the decoder runs for every configuration).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from mamlib.asr.recognizers import CTCTranscriber, Transcriber, audio_batches, ctc_texts


class _StopForward(Exception):
    """Raised by the capture hook once the deepest level is stored, to skip the rest of the forward pass."""


@dataclass(frozen=True)
class SuffixParts:
    """What a cache re-runs: the layers, then the ``head`` on the last one's output (final norm, dropout, lm_head);
    every other tensor of the network is its frontend."""

    layers: nn.ModuleList
    head: nn.Module


def whisper_encoder_parts(encoder: nn.Module) -> SuffixParts:
    """A Whisper encoder as a cacheable network: the convolutions and positions are the frontend, the suffix its
    layers and final LayerNorm (the "head"), so a batch's output is the encoder's last hidden state."""
    layers = getattr(encoder, "layers", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(encoder, "conv1"):
        raise ValueError(f"{type(encoder).__name__} is not a Whisper encoder (conv1, layers, layer_norm)")
    return SuffixParts(layers, encoder.layer_norm)


def _ctc_parts(model: nn.Module) -> SuffixParts:
    base = getattr(model, "base_model", None)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layers", None)
    lm_head = getattr(model, "lm_head", None)
    if base is None or base is model or not isinstance(layers, nn.ModuleList) or lm_head is None:
        raise ValueError(
            f"{type(model).__name__} is not a HuBERT/Wav2Vec2-style *ForCTC model (base_model.encoder.layers, lm_head)"
        )
    if getattr(base, "adapter", None) is not None:
        raise ValueError("models with an adapter after the encoder (config.add_adapter) are not supported")
    final_norm = [encoder.layer_norm] if getattr(model.config, "do_stable_layer_norm", False) else []
    return SuffixParts(layers, nn.Sequential(*final_norm, getattr(model, "dropout", None) or nn.Identity(), lm_head))


@torch.no_grad()
def _fingerprint(tensors: Iterable[Tensor]) -> Tensor:
    stats = [torch.stack([t.detach().double().sum(), t.detach().double().square().sum()]) for t in tensors]
    return torch.cat(stats).cpu() if stats else torch.zeros(0, dtype=torch.float64)


class PrefixCache:
    """Hidden states entering layers ``levels`` of a ``*ForCTC`` model, for a fixed list of input batches.
    ``parts`` describes another network the same way (:func:`whisper_encoder_parts` for Whisper's encoder).

    ``batches`` are keyword-argument dicts for ``model(**batch)`` (``input_values`` and, if used, ``attention_mask``).
    ``levels`` are layer indices in ``[0, num_layers]`` (``num_layers``: only the head is recomputed). The cached
    tensors live on the model's device.
    """

    def __init__(self, model: nn.Module, batches: Iterable[Mapping[str, Tensor]], levels: int | Sequence[int], *,
                 parts: Callable[[nn.Module], SuffixParts] | None = None) -> None:
        if model.training:
            raise ValueError("PrefixCache needs the model in eval mode (dropout and LayerDrop off): call model.eval()")
        self.model = model
        self._parts = (parts or _ctc_parts)(model)
        suffix = {id(t) for m in (self._parts.layers, self._parts.head) for t in (*m.parameters(), *m.buffers())}
        self._frontend = [t for t in (*model.parameters(), *model.buffers()) if id(t) not in suffix]
        self.num_layers = len(self._parts.layers)
        wanted = [levels] if isinstance(levels, int) else list(levels)
        if not wanted:
            raise ValueError("give at least one cache level")
        for level in wanted:
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= self.num_layers:
                raise ValueError(f"cache level {level!r} is out of range [0, {self.num_layers}]")
        self.levels: tuple[int, ...] = tuple(sorted(set(wanted)))
        self._fingerprints = self._segment_fingerprints()
        self._entries = [self._capture(batch) for batch in batches]

    def _segment_fingerprints(self) -> list[Tensor]:
        """Fingerprints of the frontend (index 0) and of each layer ``i`` below the deepest level (index ``i + 1``)."""
        return [_fingerprint(self._frontend)] + [
            _fingerprint([*layer.parameters(), *layer.buffers()]) for layer in self._parts.layers[: max(self.levels)]
        ]

    @torch.inference_mode()
    def _capture(self, batch: Mapping[str, Tensor]) -> tuple[dict[int, Tensor], tuple[Any, ...], dict[str, Any]]:
        """The hidden states entering each level, and the extra arguments the encoder hands its layers."""
        hidden: dict[int, Tensor] = {}
        extra: dict[str, Any] = {}
        deepest, layers = max(self.levels), self._parts.layers

        def store(level: int, h: Tensor) -> None:
            hidden[level] = h.detach().clone()
            if level == deepest:
                raise _StopForward

        def pre_hook(level: int, _m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            extra.setdefault("args", args[1:])
            extra.setdefault("kwargs", dict(kwargs))
            store(level, args[0])

        def post_hook(_m: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
            store(self.num_layers, output[0] if isinstance(output, tuple) else output)

        device = next(self.model.parameters()).device
        handles = [layers[level].register_forward_pre_hook(partial(pre_hook, level), with_kwargs=True)
                   if level < self.num_layers else layers[-1].register_forward_hook(post_hook) for level in self.levels]
        try:
            with suppress(_StopForward):
                self.model(**{k: v.to(device) for k, v in batch.items()})
        finally:
            for h in handles:
                h.remove()
        if missing := [level for level in self.levels if level not in hidden]:
            raise RuntimeError(f"the forward pass never reached cache levels {missing}")
        return hidden, extra.get("args", ()), extra.get("kwargs", {})

    def usable_level(self) -> int:
        """The deepest level below which nothing changed since the cache was built (by the fingerprints); ValueError
        when the change lies below every level or the model is in training mode."""
        if self.model.training:
            raise ValueError("the model was put in training mode; the cache reproduces eval-mode forward passes only")
        now = self._segment_fingerprints()
        changed = next((i - 1 for i, (before, after) in enumerate(zip(self._fingerprints, now, strict=True))
                        if not torch.equal(before, after)), None)
        usable = [level for level in self.levels if changed is None or level <= changed]
        if not usable:
            where = "the convolutional frontend" if changed == -1 else f"layer {changed}"
            raise ValueError(
                f"{where} changed since the prefix cache was built, below every cached level {list(self.levels)}: "
                "the cached activations are stale"
            )
        return max(usable)

    @torch.inference_mode()
    def batch_logits(self, index: int, level: int) -> Tensor:
        """Logits ``[batch, frames, vocab]`` of batch ``index`` (Whisper's encoder: its last hidden state), running
        layers ``level ..`` and the head only; the prefix is not re-checked (:meth:`usable_level` does that)."""
        hidden, args, kwargs = self._entries[index]
        h = hidden[level]
        for layer in self._parts.layers[level:]:
            out = layer(h, *args, **kwargs)
            h = out[0] if isinstance(out, tuple) else out
        return self._parts.head(h)


class CachedTranscriber(ABC):
    """A recognizer's transcripts of fixed waveforms, the layers below each level of ``start_layer`` (one layer, or
    every block start of a Table 2 sweep) run once in a :class:`PrefixCache`: :meth:`transcribe` returns exactly what
    ``transcriber.transcribe(waves, batch_size=…, batch_seconds=…)`` returns."""

    #: The length every clip is padded to anyway (Whisper's 30 s window), which a ``batch_seconds`` budget counts.
    padded_seconds = 0.0

    def __init__(self, transcriber: Transcriber, waves: Sequence[np.ndarray], start_layer: int | Sequence[int], *,
                 batch_size: int = 8, batch_seconds: float | None = None) -> None:
        self.transcriber, self.waves = transcriber, list(waves)
        self.batch_size, self.batch_seconds = batch_size, batch_seconds
        self._batches = audio_batches(self.waves, batch_size, batch_seconds, self.padded_seconds)
        network, parts = self._network()
        self.cache = PrefixCache(network, (self._inputs([self.waves[i] for i in idx]) for idx in self._batches),
                                 start_layer, parts=parts)

    @property
    def model(self) -> nn.Module:
        return self.transcriber.model

    @abstractmethod
    def _network(self) -> tuple[nn.Module, Callable[[nn.Module], SuffixParts]]:
        """The network the cache runs, and how it divides into frontend and suffix."""

    @abstractmethod
    def _inputs(self, waves: list[np.ndarray]) -> dict[str, Tensor]:
        """The network's inputs for one batch, as the recognizer builds them."""

    @abstractmethod
    def _texts(self, outputs: Iterator[tuple[list[int], Tensor]]) -> list[str]:
        """The transcripts of every cached waveform, from each batch's indices and network output."""

    @torch.inference_mode()
    def transcribe(self, waves: Sequence[np.ndarray] | None = None, *, batch_size: int | None = None,
                   batch_seconds: float | None = None, progress: bool = False) -> list[str]:
        """Transcripts of the cached waveforms with the model's current weights (``waves`` and the batching, if
        given, must be the cache's own: the :class:`~mamlib.asr.recognizers.Transcriber` signature, so that
        :func:`~mamlib.asr.recognizers.evaluate_asr` accepts the cache)."""
        if waves is not None and (len(waves) != len(self.waves)
                                  or any(a is not b and not np.array_equal(a, b) for a, b in zip(waves, self.waves))):
            raise ValueError(f"{type(self).__name__} only transcribes the waveforms it was built with")
        for name, given in (("batch_size", batch_size), ("batch_seconds", batch_seconds)):
            if given is not None and given != getattr(self, name):
                raise ValueError(f"the cache was built with {name}={getattr(self, name)}, got {given}")
        level = self.cache.usable_level()
        batches = tqdm(self._batches, desc="cached batches", disable=not progress, leave=False)
        return self._texts((idx, self.cache.batch_logits(b, level)) for b, idx in enumerate(batches))


class CachedCTCTranscriber(CachedTranscriber):
    """Greedy CTC transcription (:class:`~mamlib.asr.recognizers.CTCTranscriber`) through a :class:`PrefixCache`."""

    transcriber: CTCTranscriber

    def _network(self) -> tuple[nn.Module, Callable[[nn.Module], SuffixParts]]:
        return self.model, _ctc_parts

    def _inputs(self, waves: list[np.ndarray]) -> dict[str, Tensor]:
        return self.transcriber.batch_inputs(waves)

    def _texts(self, outputs: Iterator[tuple[list[int], Tensor]]) -> list[str]:
        return ctc_texts(self.model, self.transcriber.tokenizer, self.waves, outputs)
