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

from mamlib.asr.recognizers import audio_batches
from mamlib.common.audio import SAMPLE_RATE
from mamlib.models.pretrained import WHISPER_EN_PROMPT

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
        dtype = next(self.model.parameters()).dtype
        for idx in tqdm(batches, desc="Whisper batches", disable=not progress, leave=False):
            feats = self.feature_extractor(
                [np.asarray(waves[i], dtype=np.float32) for i in idx], sampling_rate=SAMPLE_RATE, return_tensors="pt"
            )
            # Speech rarely exceeds ~4 tokens per second; a merged encoder that has lost the audio otherwise
            # loops until the length limit, so the limit follows the longest clip of the batch.
            seconds = max(len(waves[i]) for i in idx) / SAMPLE_RATE
            gen = copy.copy(self.generation_config)
            gen.max_length = len(WHISPER_EN_PROMPT) + min(self.max_new_tokens, int(TOKENS_PER_SECOND * seconds) + 10)
            ids = self.model.generate(feats["input_features"].to(self.device, dtype), generation_config=gen)
            for i, text in zip(idx, self.tokenizer.batch_decode(ids, skip_special_tokens=True), strict=True):
                out[i] = text.strip()
        return out
