"""What the fine-tuning loop trains on (Sec. 4.2): per task, how examples become a (CPU) batch and a batch a loss —
CTC for a ``*ForCTC`` recognizer (HuBERT in the paper), Whisper's own sequence-to-sequence loss, and cross-entropy
for an audio encoder with a linear head (AEC)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from mamlib.aec.encoders import AudioEncoder, pad_batch
from mamlib.aec.esc50 import Clip
from mamlib.aec.head import labels as clip_labels
from mamlib.asr.metrics import spoken_transcript
from mamlib.asr.recognizers import Utterance
from mamlib.common.audio import SAMPLE_RATE
from mamlib.common.tensors import masked_mean
from mamlib.models.whisper_tiny import WHISPER_EOT, WHISPER_NO_TIMESTAMPS

#: Label value the losses ignore (padding of label sequences).
IGNORE = -100


class Task(Protocol):
    """One fine-tuning task: ``prepare`` the model (loss settings, frozen parts), ``collate`` examples, ``loss``."""

    def prepare(self, model: nn.Module) -> None: ...

    def collate(self, items: Sequence[Any]) -> dict[str, Tensor]: ...

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor: ...


def pad_labels(sequences: Sequence[Sequence[int]]) -> Tensor:
    """Label id sequences right-padded with :data:`IGNORE` into one ``(batch, longest)`` tensor."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("every example needs at least one label token")
    return pad_sequence([torch.tensor(list(s), dtype=torch.long) for s in sequences], batch_first=True,
                        padding_value=IGNORE)


def _waves(items: Sequence[Utterance]) -> list[np.ndarray]:
    if not items:
        raise ValueError("cannot build a batch of no utterances")
    return [np.asarray(u.audio, dtype=np.float32) for u in items]


@dataclass
class _HubASRTask:
    """A recognizer of the Hugging Face hub: its feature extractor and tokenizer make the batch, its own loss given
    ``labels`` is the loss."""

    feature_extractor: Any
    tokenizer: Any

    def prepare(self, model: nn.Module) -> None:
        return None

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return model(**batch).loss


@dataclass  # so that its __init__ calls __post_init__
class CTCTask(_HubASRTask):
    """CTC fine-tuning (mean over the batch, impossible alignments zeroed) of a ``*ForCTC`` model with a character
    tokenizer (HuBERT-large-ft's layout); its convolutional feature encoder stays frozen, as usual for CTC."""

    def __post_init__(self) -> None:
        delimiter = getattr(self.tokenizer, "word_delimiter_token", None)
        self.alphabet = frozenset(c for c in self.tokenizer.get_vocab() if len(c) == 1 and c != delimiter)

    def prepare(self, model: nn.Module) -> None:
        model.config.ctc_loss_reduction = "mean"
        model.config.ctc_zero_infinity = True
        if hasattr(model, "freeze_feature_encoder"):
            model.freeze_feature_encoder()

    def labels(self, text: str) -> list[int]:
        """Character ids of the transcript as spoken (:func:`~mamlib.asr.metrics.spoken_transcript`): numbers stay
        words, in the vocabulary's own alphabet — the WER normalization's digits would train ``<unk>``."""
        ids = self.tokenizer(spoken_transcript(text, self.alphabet)).input_ids
        if not ids:
            raise ValueError(f"transcript {text!r} has no characters in the CTC vocabulary")
        return ids

    def collate(self, items: Sequence[Utterance]) -> dict[str, Tensor]:
        use_mask = bool(getattr(self.feature_extractor, "return_attention_mask", False))
        feats = self.feature_extractor(_waves(items), sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt",
                                       return_attention_mask=use_mask)
        batch = {"input_values": feats["input_values"], "labels": pad_labels([self.labels(u.text) for u in items])}
        return {**batch, "attention_mask": feats["attention_mask"]} if use_mask else batch


class WhisperTask(_HubASRTask):
    """Whisper's sequence-to-sequence loss (teacher forcing) on the no-timestamps English prompt it decodes with."""

    def labels(self, text: str) -> list[int]:
        """``<|notimestamps|>`` + the text's tokens + ``<|endoftext|>`` (the model prepends
        ``<|startoftranscript|>`` when it shifts the labels into decoder inputs)."""
        words = " ".join(text.split())
        return [WHISPER_NO_TIMESTAMPS, *self.tokenizer.encode(" " + words, add_special_tokens=False), WHISPER_EOT]

    def collate(self, items: Sequence[Utterance]) -> dict[str, Tensor]:
        feats = self.feature_extractor(_waves(items), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {"input_features": feats["input_features"], "labels": pad_labels([self.labels(u.text) for u in items])}


class AudioClassifier(nn.Module):
    """An audio encoder and a linear head on its mean-pooled frames (the AEC protocol's network, as one module)."""

    def __init__(self, encoder: AudioEncoder, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder.model
        self.head = head
        self._encode = encoder.encode

    def forward(self, waveform: Tensor, padding_mask: Tensor) -> Tensor:
        frames, frame_mask = self._encode(waveform, padding_mask)
        valid = None if frame_mask is None else ~frame_mask.to(frames.device, torch.bool)
        return self.head(masked_mean(frames, valid).to(self.head.weight.dtype))


class AECTask:
    """Cross-entropy fine-tuning of an :class:`AudioClassifier` (encoder and head both trained)."""

    def prepare(self, model: nn.Module) -> None:
        model.requires_grad_(True)

    def collate(self, items: Sequence[Clip]) -> dict[str, Tensor]:
        if not items:
            raise ValueError("cannot build a batch of no clips")
        waveform, mask = pad_batch([c.waveform for c in items])
        return {"waveform": waveform, "padding_mask": mask, "labels": clip_labels(items)}

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        logits = model(batch["waveform"], batch["padding_mask"])
        return nn.functional.cross_entropy(logits.float(), batch["labels"])
