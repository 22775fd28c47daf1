"""Batched greedy transcription with a transformers Whisper model (a :class:`~mamlib.asr.recognizers.Transcriber`).

Utterances are sorted by length and batched (:func:`~mamlib.asr.recognizers.audio_batches`); each batch is
turned into log-mel features (padded to Whisper's 30 s window) and decoded greedily with the English
no-timestamps prompt ``<|startoftranscript|><|notimestamps|>`` (tiny.en). Attention merging into Whisper targets
the encoder's self-attention only: mamlib family ``"whisper-encoder"``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutput

from mamlib.asr.recognizers import audio_batches
from mamlib.common.audio import SAMPLE_RATE
from mamlib.models.whisper_tiny import WHISPER_EN_PROMPT

#: The mamlib attention family to merge into (encoder self-attention only).
WHISPER_MERGE_FAMILY = "whisper-encoder"
#: The longest clip Whisper's encoder takes in one window.
MAX_SECONDS = 30.0
#: Bound on decoded tokens per second of audio (fast English speech is ~3 words, ~4 tokens per second).
TOKENS_PER_SECOND = 6.0


class WhisperTranscriber:
    """Greedy decoding with a ``WhisperForConditionalGeneration``.

    ``processor_or_parts`` is a ``WhisperProcessor`` or a ``(feature_extractor, tokenizer)`` pair. Clips longer
    than 30 s are rejected (Whisper would silently truncate them).
    """

    def __init__(
        self,
        model: nn.Module,
        processor_or_parts,
        device: str | torch.device = "cpu",
        *,
        max_new_tokens: int = 128,
    ) -> None:
        if isinstance(processor_or_parts, (tuple, list)):
            self.feature_extractor, self.tokenizer = processor_or_parts
        else:
            self.feature_extractor = processor_or_parts.feature_extractor
            self.tokenizer = processor_or_parts.tokenizer
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.max_new_tokens = max_new_tokens
        gen = copy.deepcopy(model.generation_config)
        gen.do_sample = False
        gen.num_beams = 1
        gen.return_timestamps = False
        # A bound on the whole decoder sequence (prompt + new tokens): setting only ``max_new_tokens`` makes
        # transformers warn that the checkpoint's ``max_length`` is also set.
        gen.max_new_tokens = None
        gen.max_length = len(WHISPER_EN_PROMPT) + max_new_tokens
        self.generation_config = gen

    @torch.inference_mode()
    def transcribe(
        self, waves: Sequence[np.ndarray], *, batch_size: int = 8, batch_seconds: float | None = None,
        progress: bool = False,
    ) -> list[str]:
        """Transcripts of 16 kHz mono ``waves``, in input order (special tokens removed, whitespace stripped).

        Every clip is padded to Whisper's 30 s window, which is what a ``batch_seconds`` budget counts."""
        for i, w in enumerate(waves):
            if len(w) > MAX_SECONDS * SAMPLE_RATE:
                raise ValueError(f"utterance {i} is {len(w) / SAMPLE_RATE:.1f} s long; Whisper takes at most 30 s")
        out: list[str] = [""] * len(waves)
        batches = audio_batches(waves, batch_size, batch_seconds, padded_seconds=MAX_SECONDS)
        for idx in tqdm(batches, desc="Whisper batches", disable=not progress, leave=False):
            features = self.features([waves[i] for i in idx])
            self._decode(idx, waves, out, input_features=features.to(self.device))
        return out

    def features(self, waves: Sequence[np.ndarray]) -> torch.Tensor:
        """Log-mel features of one batch, padded to the 30 s window, in the model's dtype (on the CPU)."""
        feats = self.feature_extractor([np.asarray(w, dtype=np.float32) for w in waves], sampling_rate=SAMPLE_RATE,
                                       return_tensors="pt")
        return feats["input_features"].to(next(self.model.parameters()).dtype)

    def _decode(self, idx: Sequence[int], waves: Sequence[np.ndarray], out: list[str], **inputs) -> None:
        """Greedy decoding of batch ``idx`` from its features or its encoder output, texts written into ``out``."""
        # Speech rarely exceeds ~4 tokens per second; a merged encoder that has lost the audio otherwise
        # loops until the length limit, so the limit follows the longest clip of the batch.
        seconds = max(len(waves[i]) for i in idx) / SAMPLE_RATE
        gen = copy.copy(self.generation_config)
        gen.max_length = len(WHISPER_EN_PROMPT) + min(self.max_new_tokens, int(TOKENS_PER_SECOND * seconds) + 10)
        ids = self.model.generate(generation_config=gen, **inputs)
        for i, text in zip(idx, self.tokenizer.batch_decode(ids, skip_special_tokens=True), strict=True):
            out[i] = text.strip()


class CachedWhisperTranscriber:
    """Greedy Whisper transcription of a fixed list of waveforms with the encoder's unmerged bottom computed once
    (Tables 2 and 3 on the mini preset): log-mel features, the convolutions and the layers below each cache level
    run once per split (:class:`~mamlib.asr.prefix_cache.PrefixCache` over the encoder); every configuration then runs
    the encoder layers from the deepest level it leaves unchanged, and the decoder on that encoder output. The
    transcripts are those of :meth:`WhisperTranscriber.transcribe` with the same batching.
    """

    def __init__(self, transcriber: WhisperTranscriber, waves: Sequence[np.ndarray], start_layer: int | Sequence[int],
                 *, batch_size: int = 8, batch_seconds: float | None = None) -> None:
        from mamlib.asr.prefix_cache import PrefixCache, whisper_encoder_parts

        self.transcriber, self.waves = transcriber, list(waves)
        self.batch_size, self.batch_seconds = batch_size, batch_seconds
        self._batches = audio_batches(self.waves, batch_size, batch_seconds, padded_seconds=MAX_SECONDS)
        encoder = transcriber.model.get_encoder()
        self.cache = PrefixCache(encoder, ({"input_features": transcriber.features([self.waves[i] for i in idx])}
                                           for idx in self._batches), start_layer, parts=whisper_encoder_parts)

    @property
    def model(self) -> nn.Module:
        return self.transcriber.model

    @torch.inference_mode()
    def transcribe(self, waves: Sequence[np.ndarray] | None = None, *, batch_size: int | None = None,
                   batch_seconds: float | None = None, progress: bool = False) -> list[str]:
        """Transcripts of the cached waveforms with the model's current weights (``waves`` and the batching, if
        given, must be the cache's own: the :class:`~mamlib.asr.recognizers.Transcriber` signature)."""
        if waves is not None and (len(waves) != len(self.waves)
                                  or any(a is not b and not np.array_equal(a, b) for a, b in zip(waves, self.waves))):
            raise ValueError("CachedWhisperTranscriber only transcribes the waveforms it was built with")
        if batch_size is not None and batch_size != self.batch_size:
            raise ValueError(f"the cache was built with batch_size={self.batch_size}, got {batch_size}")
        if batch_seconds is not None and batch_seconds != self.batch_seconds:
            raise ValueError(f"the cache was built with batch_seconds={self.batch_seconds}, got {batch_seconds}")
        level = self.cache.usable_level()
        out: list[str] = [""] * len(self.waves)
        for b, idx in enumerate(tqdm(self._batches, desc="cached Whisper batches", disable=not progress, leave=False)):
            hidden = self.cache.batch_logits(b, level)
            self.transcriber._decode(idx, self.waves, out, encoder_outputs=BaseModelOutput(last_hidden_state=hidden))
        return out
