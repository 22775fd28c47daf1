"""Reusing the unchanged bottom of the network across a sweep (Sec. 3.1–3.2, Eq. 1–2, Tables 1 and 2).

When a merge configuration leaves layers ``0 .. j-1`` untouched (``λ_i = 0`` for ``i < j``), everything below layer
``j`` — the convolutional feature encoder, the feature projection, the positional convolution, and layers
``0 .. j-1`` — computes the same activations for every such configuration; with ``j = 0`` (Table 1's all-layer
merges) that is the features below the first layer. A :class:`PrefixCache` runs the model once
on a fixed list of input batches, keeps the hidden states entering each requested layer (its *levels*) together with
the exact extra arguments the encoder hands its layers (the attention mask it built, ...), and afterwards evaluates a
configuration by running only layers ``j ..`` and the CTC head on the cached inputs.

What the suffix reproduces (transformers 5, ``HubertForCTC`` / ``Wav2Vec2ForCTC``, eval mode so dropout and LayerDrop
are off): ``layer(h, attention_mask=..., **kwargs)`` for every remaining layer with the very arguments the encoder
passed (captured by a forward pre-hook, not rebuilt), then the encoder's final LayerNorm for the stable-layer-norm
variant (HuBERT-large; the post-LN variant applies its LayerNorm *before* the layers, so it is part of the cached
prefix), then the head's dropout and ``lm_head``. Models with an adapter after the encoder are refused.

Safety. At construction the cache fingerprints (float64 sum and sum of squares of every tensor) the frontend and each
layer below its deepest level. Every evaluation recomputes them: if anything below the requested level changed (e.g.
an :class:`~mamlib.merge.merger.AttentionMerger` merged a lower layer), it raises ValueError rather than return stale
results. :meth:`CachedCTCTranscriber.transcribe_merged` additionally checks the merger's per-layer λ up front.

`CachedCTCTranscriber` wraps a :class:`~mamlib.asr.recognizers.CTCTranscriber` for a fixed list of waveforms and returns
exactly the strings ``CTCTranscriber.transcribe`` would (same length-sorted batches, same padding and masks).
:class:`~mamlib.asr.whisper.CachedWhisperTranscriber` does the same for Whisper's encoder (only the encoder is merged;
the decoder runs on the encoder output of every configuration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from mamlib.asr.recognizers import CTCDecoder, CTCTranscriber, audio_batches
from mamlib.merge.merger import AttentionMerger


class _StopForward(Exception):
    """Raised by the capture hook once the deepest level is stored, to skip the rest of the forward pass."""


def first_merged_layer(lams: Sequence[float]) -> int:
    """The lowest layer with ``λ_i ≠ 0`` (``len(lams)`` when nothing is merged)."""
    for i, lam in enumerate(lams):
        if lam != 0.0:
            return i
    return len(lams)


def check_prefix_unmerged(lams: Sequence[float], start_layer: int) -> None:
    """Raise ValueError if any layer below ``start_layer`` has ``λ_i ≠ 0`` (a prefix cache would be stale)."""
    merged = [i for i, lam in enumerate(lams[:start_layer]) if lam != 0.0]
    if merged:
        raise ValueError(
            f"layers {merged} are merged (λ ≠ 0) below the cached start layer {start_layer}: the cached activations "
            "do not apply; build the cache from a lower start layer"
        )


def deepest_level(levels: Iterable[int], lams: Sequence[float]) -> int:
    """The deepest cache level that a configuration with per-layer factors ``lams`` leaves valid."""
    first = first_merged_layer(lams)
    usable = [level for level in levels if level <= first]
    if not usable:
        raise ValueError(
            f"the configuration merges layer {first}, below every cached level {sorted(levels)}; "
            "build the cache with a lower start layer"
        )
    return max(usable)


@dataclass(frozen=True)
class SuffixParts:
    layers: nn.ModuleList
    final_norm: nn.Module | None
    dropout: nn.Module
    lm_head: nn.Module
    frontend: list[nn.Parameter | Tensor]


def _suffix_parts(layers: nn.ModuleList, final_norm: nn.Module | None, head: nn.Module, dropout: nn.Module,
                  everything: nn.Module) -> SuffixParts:
    """The suffix (layers, final norm, head) and, as the frontend, every other tensor of ``everything``."""
    suffix = {id(t) for m in (layers, head, *([final_norm] if final_norm is not None else []))
              for t in (*m.parameters(), *m.buffers())}
    frontend = [t for t in (*everything.parameters(), *everything.buffers()) if id(t) not in suffix]
    return SuffixParts(layers, final_norm, dropout, head, frontend)


def whisper_encoder_parts(encoder: nn.Module) -> SuffixParts:
    """A Whisper encoder as a cacheable network: the convolutions and positions are the frontend, the suffix its
    layers and final LayerNorm; the "head" is the identity, so a batch's output is the encoder's last hidden state."""
    layers = getattr(encoder, "layers", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(encoder, "conv1"):
        raise ValueError(f"{type(encoder).__name__} is not a Whisper encoder (conv1, layers, layer_norm)")
    return _suffix_parts(layers, encoder.layer_norm, nn.Identity(), nn.Identity(), encoder)


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
    stable = bool(getattr(model.config, "do_stable_layer_norm", False))
    final_norm = encoder.layer_norm if stable else None
    return _suffix_parts(layers, final_norm, lm_head, getattr(model, "dropout", None) or nn.Identity(), model)


@torch.no_grad()
def _fingerprint(tensors: Iterable[Tensor]) -> Tensor:
    stats = [torch.stack([t.detach().double().sum(), t.detach().double().square().sum()]) for t in tensors]
    return torch.cat(stats).cpu() if stats else torch.zeros(0, dtype=torch.float64)


def _indexed(device: torch.device) -> torch.device:
    """``cuda`` as ``cuda:<current index>``, so that two spellings of one GPU compare equal."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _to(value: Any, device: torch.device | str) -> Any:
    return value.to(device) if isinstance(value, Tensor) else value


@dataclass
class _Entry:
    hidden: dict[int, Tensor]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class PrefixCache:
    """Hidden states entering layers ``levels`` of a ``*ForCTC`` model, for a fixed list of input batches.
    ``parts`` describes another network the same way (:func:`whisper_encoder_parts` for Whisper's encoder).

    ``batches`` are keyword-argument dicts for ``model(**batch)`` (``input_values`` and, if used, ``attention_mask``).
    ``levels`` are layer indices in ``[0, num_layers]`` (``num_layers``: only the head is recomputed). The cached
    tensors live on ``storage_device`` (default: the model's device) and move to the model's device per batch.

    ``cuda_graphs`` (off by default; needs the model and the storage on one CUDA device) records the suffix of each
    (batch, level) as a CUDA graph the first time it runs and replays it afterwards: a sweep's configurations change
    the weights in place (:class:`~mamlib.merge.merger.AttentionMerger` copies into them), so one recording serves
    every configuration, and the host no longer issues some thousand kernels per batch. The graphs are dropped and
    recorded again if any suffix tensor was replaced rather than written in place. On an H200 this paid (1.3×) only
    for small batches, which are launch-bound; with the paper preset's batches it did not (benchmarks/RESULTS.md).
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Iterable[Mapping[str, Tensor]],
        levels: int | Sequence[int],
        *,
        storage_device: torch.device | str | None = None,
        cuda_graphs: bool = False,
        progress: bool = False,
        parts: Callable[[nn.Module], SuffixParts] | None = None,
    ) -> None:
        if model.training:
            raise ValueError("PrefixCache needs the model in eval mode (dropout and LayerDrop off): call model.eval()")
        self.model = model
        self._parts = (parts or _ctc_parts)(model)
        self.num_layers = len(self._parts.layers)
        wanted = [levels] if isinstance(levels, int) else list(levels)
        if not wanted:
            raise ValueError("give at least one cache level")
        for level in wanted:
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= self.num_layers:
                raise ValueError(f"cache level {level!r} is out of range [0, {self.num_layers}]")
        self.levels: tuple[int, ...] = tuple(sorted(set(wanted)))
        self.storage_device = _indexed(torch.device(storage_device) if storage_device is not None else self._device())
        if cuda_graphs and not (self._device().type == "cuda" and self.storage_device == _indexed(self._device())):
            raise ValueError("CUDA graphs need the model and the cache storage on the same CUDA device")
        self.cuda_graphs = bool(cuda_graphs)
        self._fingerprints = self._segment_fingerprints(max(self.levels))
        self._entries = [self._capture(dict(batch)) for batch in tqdm(batches, disable=not progress, leave=False)]
        self._graphs: dict[tuple[int, int], tuple[Any, Tensor]] = {}
        self._graph_pools: dict[int, Any] = {}
        self._graph_pointers: list[int] = []

    # -- building ---------------------------------------------------------------------------------------------------

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _segment_fingerprints(self, upto: int) -> list[Tensor]:
        """Fingerprints of the frontend (index 0) and of layers ``0 .. upto-1`` (index ``i + 1``)."""
        return [_fingerprint(self._parts.frontend)] + [
            _fingerprint([*self._parts.layers[i].parameters(), *self._parts.layers[i].buffers()]) for i in range(upto)
        ]

    @torch.inference_mode()
    def _capture(self, batch: dict[str, Tensor]) -> _Entry:
        hidden: dict[int, Tensor] = {}
        extra: dict[str, Any] = {}
        deepest = max(self.levels)
        layers = self._parts.layers
        handles = []

        def store(level: int, h: Tensor) -> None:
            hidden[level] = h.detach().to(self.storage_device, copy=True)
            if level == deepest:
                raise _StopForward

        def make_pre(level: int):
            def pre_hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                if "kwargs" not in extra:
                    extra["args"] = tuple(_to(a, self.storage_device) for a in args[1:])
                    extra["kwargs"] = {k: _to(v, self.storage_device) for k, v in kwargs.items()}
                store(level, args[0])

            return pre_hook

        def post_hook(_m: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
            store(self.num_layers, output[0] if isinstance(output, tuple) else output)

        try:
            for level in self.levels:
                if level < self.num_layers:
                    handles.append(layers[level].register_forward_pre_hook(make_pre(level), with_kwargs=True))
                else:
                    handles.append(layers[self.num_layers - 1].register_forward_hook(post_hook))
            try:
                self.model(**{k: _to(v, self._device()) for k, v in batch.items()})
            except _StopForward:
                pass
        finally:
            for h in handles:
                h.remove()
        missing = [level for level in self.levels if level not in hidden]
        if missing:
            raise RuntimeError(f"the forward pass never reached cache levels {missing}")
        return _Entry(hidden, extra.get("args", ()), extra.get("kwargs", {}))

    # -- checking ---------------------------------------------------------------------------------------------------

    def first_changed_segment(self) -> int | None:
        """``None`` when nothing below the deepest level changed since the cache was built; ``-1`` when the frontend
        changed; otherwise the lowest changed layer."""
        now = self._segment_fingerprints(max(self.levels))
        for i, (before, after) in enumerate(zip(self._fingerprints, now, strict=True)):
            if not torch.equal(before, after):
                return i - 1
        return None

    def usable_level(self) -> int:
        """The deepest level whose prefix is unchanged; ValueError when the change lies below every level."""
        changed = self.first_changed_segment()
        limit = self.num_layers if changed is None else changed
        usable = [level for level in self.levels if level <= limit]
        if changed == -1 or not usable:
            where = "the convolutional frontend" if changed == -1 else f"layer {changed}"
            raise ValueError(
                f"{where} changed since the prefix cache was built, below every cached level {list(self.levels)}: "
                "the cached activations are stale"
            )
        return max(usable)

    def check_level(self, level: int) -> None:
        """Raise ValueError unless ``level`` is cached and nothing below it changed since the cache was built."""
        if level not in self.levels:
            raise ValueError(f"level {level} is not cached (levels: {list(self.levels)})")
        changed = self.first_changed_segment()
        if changed is not None and changed < level:
            where = "the convolutional frontend" if changed == -1 else f"layer {changed}"
            raise ValueError(
                f"{where} changed since the prefix cache was built (e.g. merged with λ ≠ 0), below the start layer "
                f"{level}: the cached activations are stale"
            )

    # -- evaluating -------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @torch.inference_mode()
    def batch_logits(self, index: int, level: int) -> Tensor:
        """Logits ``[batch, frames, vocab]`` of batch ``index``, running layers ``level ..`` and the head only.

        Does not re-check the prefix; :meth:`logits` does. With CUDA graphs the returned tensor is the graph's
        output buffer, which the next replay of any graph of the same level may overwrite (they share a memory
        pool): use it (e.g. take its arg-max) before the next call, or clone it.
        """
        if self.model.training:
            raise ValueError("the model was put in training mode; the cache reproduces eval-mode forward passes only")
        if not self.cuda_graphs:
            return self._suffix(index, level)
        if self._suffix_pointers() != self._graph_pointers:  # a suffix tensor was replaced: recorded graphs are stale
            self._graphs.clear()
            self._graph_pools.clear()
            self._graph_pointers = self._suffix_pointers()
        if (index, level) not in self._graphs:
            self._graphs[index, level] = self._record(index, level)
        graph, out = self._graphs[index, level]
        graph.replay()
        return out

    def _suffix(self, index: int, level: int) -> Tensor:
        device = self._device()
        entry = self._entries[index]
        h = entry.hidden[level].to(device)
        args = tuple(_to(a, device) for a in entry.args)
        kwargs = {k: _to(v, device) for k, v in entry.kwargs.items()}
        for layer in self._parts.layers[level:]:
            out = layer(h, *args, **kwargs)
            h = out[0] if isinstance(out, tuple) else out
        if self._parts.final_norm is not None:
            h = self._parts.final_norm(h)
        return self._parts.lm_head(self._parts.dropout(h))

    def _suffix_pointers(self) -> list[int]:
        """Storage addresses of every tensor the suffix reads (a graph reads them by address)."""
        parts = [self._parts.layers, self._parts.lm_head] + ([self._parts.final_norm] if self._parts.final_norm else [])
        return [t.data_ptr() for m in parts for t in (*m.parameters(), *m.buffers())]

    def _record(self, index: int, level: int) -> tuple[Any, Tensor]:
        """Record the suffix of batch ``index`` from ``level`` as a CUDA graph (after two eager warm-up runs on a side
        stream, as CUDA graph capture requires). Graphs of one level share a memory pool: they run one after the
        other, and each output is consumed before the next graph runs."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._suffix(index, level)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        pool = self._graph_pools.setdefault(level, torch.cuda.graph_pool_handle())
        with torch.cuda.graph(graph, pool=pool):
            out = self._suffix(index, level)
        return graph, out

    def logits(self, level: int | None = None) -> list[Tensor]:
        """Logits of every cached batch, from ``level`` (default: the deepest level still valid)."""
        if level is None:
            level = self.usable_level()
        else:
            self.check_level(level)
        return [self.batch_logits(i, level).clone() for i in range(len(self._entries))]


class CachedCTCTranscriber:
    """Greedy CTC transcription of a fixed list of waveforms through a :class:`PrefixCache`.

    Returns exactly what ``transcriber.transcribe(waves, batch_size=…, batch_seconds=…)`` returns for the model's
    current weights, as long as the layers below the level used are unchanged. ``start_layer`` may be one layer or
    several (e.g. every block start of a Table 2 sweep): each configuration then starts from the deepest valid level.
    """

    def __init__(
        self,
        transcriber: CTCTranscriber,
        waves: Sequence[np.ndarray],
        start_layer: int | Sequence[int],
        *,
        batch_size: int = 8,
        batch_seconds: float | None = None,
        storage_device: torch.device | str | None = None,
        cuda_graphs: bool = False,
        progress: bool = False,
    ) -> None:
        self.transcriber = transcriber
        self.waves = list(waves)
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self._batches = audio_batches(self.waves, batch_size, batch_seconds)
        self.cache = PrefixCache(
            transcriber.model,
            (self._inputs(idx) for idx in self._batches),
            start_layer,
            storage_device=storage_device,
            cuda_graphs=cuda_graphs,
            progress=progress,
        )

    @property
    def model(self) -> nn.Module:
        return self.transcriber.model

    @property
    def levels(self) -> tuple[int, ...]:
        return self.cache.levels

    def _inputs(self, idx: list[int]) -> dict[str, Tensor]:
        """The model inputs of one batch, as :meth:`~mamlib.asr.recognizers.CTCTranscriber.transcribe` builds them."""
        return self.transcriber.batch_inputs([self.waves[i] for i in idx])

    def _same_waves(self, waves: Sequence[np.ndarray]) -> bool:
        if len(waves) != len(self.waves):
            return False
        pairs = zip(waves, self.waves, strict=True)
        return all(a is b or (a.shape == b.shape and np.array_equal(a, b)) for a, b in pairs)

    def transcribe(
        self,
        waves: Sequence[np.ndarray] | None = None,
        *,
        batch_size: int | None = None,
        batch_seconds: float | None = None,
        progress: bool = False,
        level: int | None = None,
    ) -> list[str]:
        """Transcripts of the cached waveforms (``waves``, if given, must be those very waveforms, and the batching
        arguments, if given, those of the cache — this keeps the :class:`~mamlib.asr.recognizers.Transcriber`
        signature, so that :func:`~mamlib.asr.recognizers.evaluate_asr` accepts the cache)."""
        if waves is not None and not self._same_waves(waves):
            raise ValueError("CachedCTCTranscriber only transcribes the waveforms it was built with")
        if batch_size is not None and batch_size != self.batch_size:
            raise ValueError(f"the cache was built with batch_size={self.batch_size}, got {batch_size}")
        if batch_seconds is not None and batch_seconds != self.batch_seconds:
            raise ValueError(f"the cache was built with batch_seconds={self.batch_seconds}, got {batch_seconds}")
        if level is None:
            level = self.cache.usable_level()
        else:
            self.cache.check_level(level)
        decoder = CTCDecoder(self.model, self.transcriber.tokenizer, len(self.waves))
        for b, idx in enumerate(tqdm(self._batches, desc="cached CTC batches", disable=not progress, leave=False)):
            decoder.add(idx, self.cache.batch_logits(b, level), [len(self.waves[i]) for i in idx])
        return decoder.texts()

    def transcribe_merged(
        self, merger: AttentionMerger, lam: float | Sequence[float], layers: Iterable[int] | None = None
    ) -> list[str]:
        """Transcripts with ``merger.merged(lam, layers)`` applied, from the deepest level that configuration allows.

        Raises ValueError (before touching any weight) when the configuration merges a layer below every cached
        level, or when ``merger`` does not merge into this transcriber's model.
        """
        if merger.target is not self.model:
            raise ValueError("the merger's target is not the cached transcriber's model")
        layer_list = None if layers is None else list(layers)
        lams = merger.lambdas(lam, layer_list)
        level = deepest_level(self.levels, lams)
        with merger.merged(lam, layer_list):
            return self.transcribe(level=level)
