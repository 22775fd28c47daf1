"""Batched speech recognition for the ASR experiments (Sec. 4: HuBERT fine-tuned with CTC): length-sorted batches
(:func:`audio_batches`), greedy decoding whose tokenizer runs once all batches are queued, so an accelerator never
waits for it (:func:`ctc_texts`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mamlib.asr.metrics import WERReport, word_error_rate
from mamlib.common.audio import SAMPLE_RATE, check_seconds_budget
from mamlib.common.tensors import length_sorted_batches


@dataclass(frozen=True)
class Utterance:
    """One test item: a 16 kHz mono waveform and its reference transcript."""

    id: str
    audio: np.ndarray
    text: str
    speaker: str = ""

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class Transcriber(Protocol):
    """Anything that turns waveforms into text, with its network exposed for merging."""

    model: nn.Module

    def transcribe(self, waves: Sequence[np.ndarray], *, batch_size: int = 8, batch_seconds: float | None = None,
                   progress: bool = False) -> list[str]: ...


def audio_batches(waves: Sequence[np.ndarray], batch_size: int, batch_seconds: float | None = None,
                  padded_seconds: float = 0.0) -> list[list[int]]:
    """Length-sorted evaluation batches of ``waves``: at most ``batch_size`` clips and ``batch_seconds`` of padded
    audio (counting ``padded_seconds``, Whisper's 30 s window, for shorter clips) each."""
    batch_seconds = check_seconds_budget(batch_seconds)
    budget = None if batch_seconds is None else max(1, int(batch_seconds * SAMPLE_RATE))
    return length_sorted_batches([len(w) for w in waves], batch_size, budget,
                                 padded_length=int(padded_seconds * SAMPLE_RATE))


def ctc_texts(model: nn.Module, tokenizer, waves: Sequence[np.ndarray],
              outputs: Iterable[tuple[list[int], torch.Tensor]]) -> list[str]:
    """Greedy CTC decoding (Sec. 4) of ``waves`` from each padded batch's indices and logits: every batch's arg-max
    stays on its device until all are queued (no host synchronisation), then the tokenizer decodes each utterance's
    own frames (not padding's)."""
    pending = [(idx, logits.argmax(dim=-1)) for idx, logits in outputs]
    texts: dict[int, str] = {}
    for idx, ids in pending:
        frames = model._get_feat_extract_output_lengths(torch.tensor([len(waves[i]) for i in idx]))
        rows = [row[: int(n)] for row, n in zip(ids.cpu(), frames, strict=True)]
        texts.update(zip(idx, tokenizer.batch_decode(rows), strict=True))
    return [texts[i] for i in range(len(waves))]


class CTCTranscriber:
    """Greedy CTC decoding with a transformers ``*ForCTC`` model, its feature extractor and tokenizer."""

    def __init__(self, model: nn.Module, feature_extractor, tokenizer, device: str | torch.device = "cpu") -> None:
        self.model, self.device = model.eval().to(device), torch.device(device)
        self.feature_extractor, self.tokenizer = feature_extractor, tokenizer

    def batch_inputs(self, waves: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """Model inputs for one batch: padded, normalized waveforms, plus an attention mask when the feature
        extractor is configured to return one (as HuBERT-large's is); on the CPU, in the model's dtype."""
        use_mask = bool(getattr(self.feature_extractor, "return_attention_mask", False))
        feats = self.feature_extractor(list(waves), sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt",
                                       return_attention_mask=use_mask)
        feats["input_values"] = feats["input_values"].to(next(self.model.parameters()).dtype)
        return dict(feats)

    @torch.inference_mode()
    def transcribe(self, waves: Sequence[np.ndarray], *, batch_size: int = 8, batch_seconds: float | None = None,
                   progress: bool = False) -> list[str]:
        def logits() -> Iterator[tuple[list[int], torch.Tensor]]:
            for idx in tqdm(audio_batches(waves, batch_size, batch_seconds), desc="CTC batches", disable=not progress,
                            leave=False):
                batch = self.batch_inputs([waves[i] for i in idx])
                yield idx, self.model(**{k: v.to(self.device, non_blocking=True) for k, v in batch.items()}).logits

        return ctc_texts(self.model, self.tokenizer, waves, logits())


def evaluate_asr(transcriber: Transcriber, utterances: Sequence[Utterance], *, batch_size: int = 8,
                 batch_seconds: float | None = None, progress: bool = False) -> WERReport:
    """Transcribe ``utterances`` and score them against their references (normalized, corpus WER via jiwer)."""
    hyps = transcriber.transcribe([u.audio for u in utterances], batch_size=batch_size, batch_seconds=batch_seconds,
                                  progress=progress)
    return word_error_rate([u.text for u in utterances], hyps, [u.id for u in utterances])
