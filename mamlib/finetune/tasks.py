"""What the fine-tuning loop trains on (Sec. 4.2): per task, how a list of examples becomes a batch and a batch a loss.

* :class:`CTCTask` — a ``*ForCTC`` recognizer (HuBERT in the paper): CTC loss, mean over the batch, infinite losses
  of impossible alignments zeroed; the convolutional feature encoder stays frozen, as is usual for CTC fine-tuning.
* :class:`WhisperTask` — the mini preset's Whisper tiny.en: its own sequence-to-sequence cross-entropy on the
  decoder prompt ``<|notimestamps|>`` + text + ``<|endoftext|>`` (the prompt it decodes with).
* :class:`AECTask` — an audio encoder with a linear head (:class:`AudioClassifier`): cross-entropy over classes.

Batches are built on the CPU; the loop moves them to the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from mamlib.aec.encoders import AudioEncoder, pad_batch
from mamlib.aec.esc50 import Clip
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
    out = torch.full((len(sequences), max(len(s) for s in sequences)), IGNORE, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return out


def _waves(items: Sequence[Utterance]) -> list[np.ndarray]:
    if not items:
        raise ValueError("cannot build a batch of no utterances")
    return [np.asarray(u.audio, dtype=np.float32) for u in items]


class CTCTask:
    """CTC fine-tuning of a ``*ForCTC`` model with a character tokenizer (HuBERT-large-ft's layout)."""

    def __init__(self, feature_extractor: Any, tokenizer: Any) -> None:
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        delimiter = getattr(tokenizer, "word_delimiter_token", None)
        self.alphabet = frozenset(c for c in tokenizer.get_vocab() if len(c) == 1 and c != delimiter)

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
        if use_mask:
            batch["attention_mask"] = feats["attention_mask"]
        return batch

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return model(**batch).loss


class WhisperTask:
    """Whisper's sequence-to-sequence loss (teacher forcing) on the no-timestamps English prompt."""

    def __init__(self, feature_extractor: Any, tokenizer: Any) -> None:
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    def prepare(self, model: nn.Module) -> None:
        return None

    def labels(self, text: str) -> list[int]:
        """``<|notimestamps|>`` + the text's tokens + ``<|endoftext|>`` (the model prepends
        ``<|startoftranscript|>`` when it shifts the labels into decoder inputs)."""
        words = " ".join(text.split())
        return [WHISPER_NO_TIMESTAMPS, *self.tokenizer.encode(" " + words, add_special_tokens=False), WHISPER_EOT]

    def collate(self, items: Sequence[Utterance]) -> dict[str, Tensor]:
        feats = self.feature_extractor(_waves(items), sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {"input_features": feats["input_features"], "labels": pad_labels([self.labels(u.text) for u in items])}

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        param = next(model.parameters())
        return model(input_features=batch["input_features"].to(param.dtype), labels=batch["labels"]).loss


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
        return {"waveform": waveform, "padding_mask": mask,
                "labels": torch.tensor([c.label for c in items], dtype=torch.long)}

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        logits = model(batch["waveform"], batch["padding_mask"])
        return nn.functional.cross_entropy(logits.float(), batch["labels"])
