"""Batched speech recognition for the ASR experiments (Sec. 4: HuBERT fine-tuned with CTC).

Utterances are sorted by length and batched so that padding stays small; every batch carries an attention mask
when the model was trained with one. Decoding is greedy (arg-max per frame, CTC collapse in the tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mamlib.asr.metrics import WERReport, word_error_rate

if TYPE_CHECKING:
    from mamlib.models.build import LoadedModel
from mamlib.common.audio import SAMPLE_RATE
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

    def transcribe(self, waves: Sequence[np.ndarray], *, batch_size: int = 8, progress: bool = False) -> list[str]: ...


def greedy_ctc_decode(model: nn.Module, tokenizer, logits: torch.Tensor, num_samples: Sequence[int]) -> list[str]:
    """Greedy CTC decoding of a padded batch: arg-max per frame over each utterance's own frames only (frames
    computed from padding are dropped), then the tokenizer's collapse of repeats and blanks."""
    ids = logits.argmax(dim=-1).cpu()
    frames = model._get_feat_extract_output_lengths(torch.tensor(list(num_samples)))
    return tokenizer.batch_decode([row[: int(n)] for row, n in zip(ids, frames)])


class CTCTranscriber:
    """Greedy CTC decoding with a transformers ``*ForCTC`` model, its feature extractor and tokenizer."""

    def __init__(self, model: nn.Module, feature_extractor, tokenizer, device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.device = torch.device(device)

    def batch_inputs(self, waves: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """Model inputs for one batch: padded, normalized waveforms, plus an attention mask when the feature
        extractor is configured to return one (as HuBERT-large's is); on the CPU, in the model's dtype."""
        use_mask = bool(getattr(self.feature_extractor, "return_attention_mask", False))
        feats = self.feature_extractor(
            list(waves), sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt", return_attention_mask=use_mask
        )
        inputs = {"input_values": feats["input_values"].to(next(self.model.parameters()).dtype)}
        if use_mask:
            inputs["attention_mask"] = feats["attention_mask"]
        return inputs

    @torch.inference_mode()
    def transcribe(self, waves: Sequence[np.ndarray], *, batch_size: int = 8, progress: bool = False) -> list[str]:
        out: list[str] = [""] * len(waves)
        batches = length_sorted_batches([len(w) for w in waves], batch_size)
        for idx in tqdm(batches, desc="CTC batches", disable=not progress, leave=False):
            inputs = {k: v.to(self.device) for k, v in self.batch_inputs([waves[i] for i in idx]).items()}
            logits = self.model(**inputs).logits
            texts = greedy_ctc_decode(self.model, self.tokenizer, logits, [len(waves[i]) for i in idx])
            for i, text in zip(idx, texts):
                out[i] = text
        return out


def evaluate_asr(
    transcriber: Transcriber, utterances: Sequence[Utterance], *, batch_size: int = 8, progress: bool = False
) -> WERReport:
    """Transcribe ``utterances`` and score them against their references (normalized, corpus WER via jiwer)."""
    hyps = transcriber.transcribe([u.audio for u in utterances], batch_size=batch_size, progress=progress)
    return word_error_rate([u.text for u in utterances], hyps, [u.id for u in utterances])


def make_transcriber(loaded: LoadedModel, device: str | torch.device = "cpu") -> Transcriber:
    """The recognizer of a built speech model: greedy CTC for ``*ForCTC`` models, greedy decoding for Whisper."""
    if loaded.architecture == "ctc":
        return CTCTranscriber(loaded.model, loaded.feature_extractor, loaded.tokenizer, device)
    if loaded.architecture == "whisper":
        from mamlib.asr.whisper import WhisperTranscriber

        return WhisperTranscriber(loaded.model, (loaded.feature_extractor, loaded.tokenizer), device=device)
    raise ValueError(f"a {loaded.architecture!r} model is not a speech recognizer (a CTC model or Whisper)")
