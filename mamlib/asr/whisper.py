"""Batched greedy transcription with a transformers Whisper model (a :class:`~mamlib.asr.recognizers.Transcriber`):
length-sorted batches of log-mel features (padded to the 30 s window) decoded greedily with the English
no-timestamps prompt (tiny.en). Attention merging targets the encoder's self-attention (family ``whisper-encoder``)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.modeling_outputs import BaseModelOutput

from mamlib.asr.prefix_cache import CachedTranscriber, SuffixParts, whisper_encoder_parts
from mamlib.asr.recognizers import audio_batches
from mamlib.common.audio import SAMPLE_RATE
from mamlib.models.whisper_tiny import WHISPER_EN_PROMPT

#: The longest clip Whisper's encoder takes in one window.
MAX_SECONDS = 30.0
#: Bound on decoded tokens per second of audio (fast English speech is ~3 words, ~4 tokens per second).
TOKENS_PER_SECOND = 6.0


class WhisperTranscriber:
    """Greedy decoding with a ``WhisperForConditionalGeneration`` and a ``WhisperProcessor`` or its ``(feature
    extractor, tokenizer)``; clips longer than 30 s are rejected (Whisper would silently truncate them)."""

    def __init__(self, model: nn.Module, processor_or_parts, device: str | torch.device = "cpu", *,
                 max_new_tokens: int = 128) -> None:
        self.feature_extractor, self.tokenizer = (
            processor_or_parts if isinstance(processor_or_parts, (tuple, list))
            else (processor_or_parts.feature_extractor, processor_or_parts.tokenizer))
        self.model, self.device = model.eval().to(device), torch.device(device)
        self.max_new_tokens = max_new_tokens
        gen = copy.deepcopy(model.generation_config)
        # Greedy, no timestamps; :meth:`_decode` bounds the whole decoder sequence (prompt + new tokens) per batch:
        # setting only ``max_new_tokens`` makes transformers warn that the checkpoint's ``max_length`` is also set.
        gen.do_sample, gen.num_beams, gen.return_timestamps, gen.max_new_tokens = False, 1, False, None
        self.generation_config = gen

    @torch.inference_mode()
    def transcribe(self, waves: Sequence[np.ndarray], *, batch_size: int = 8, batch_seconds: float | None = None,
                   progress: bool = False) -> list[str]:
        """Transcripts of 16 kHz mono ``waves``, in input order (special tokens removed, whitespace stripped); every
        clip is padded to Whisper's 30 s window, which is what a ``batch_seconds`` budget counts."""
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


class CachedWhisperTranscriber(CachedTranscriber):
    """Greedy Whisper transcription (:class:`WhisperTranscriber`) with the encoder's unmerged bottom (features,
    convolutions, layers below each cache level) computed once per split (Tables 2 and 3 on the mini preset)."""

    transcriber: WhisperTranscriber
    padded_seconds = MAX_SECONDS

    def _network(self) -> tuple[nn.Module, Callable[[nn.Module], SuffixParts]]:
        return self.model.get_encoder(), whisper_encoder_parts

    def _inputs(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        return {"input_features": self.transcriber.features(waves)}

    def _texts(self, outputs: Iterator[tuple[list[int], torch.Tensor]]) -> list[str]:
        out: list[str] = [""] * len(self.waves)
        for idx, hidden in outputs:
            self.transcriber._decode(idx, self.waves, out, encoder_outputs=BaseModelOutput(last_hidden_state=hidden))
        return out
