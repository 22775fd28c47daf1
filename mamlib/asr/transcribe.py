"""The recognizer of a built speech model (Sec. 4's ASR experiments): greedy CTC or Whisper's greedy decoding.

It sits above :mod:`mamlib.asr.recognizers` and :mod:`mamlib.asr.whisper`, which import neither it nor each other's
callers: no import circle.
"""

from __future__ import annotations

import torch

from mamlib.asr.recognizers import CTCTranscriber, Transcriber
from mamlib.asr.whisper import WhisperTranscriber
from mamlib.models.build import LoadedModel


def make_transcriber(loaded: LoadedModel, device: str | torch.device = "cpu") -> Transcriber:
    """The recognizer of a built speech model: greedy CTC for ``*ForCTC`` models, greedy decoding for Whisper."""
    if loaded.architecture == "ctc":
        return CTCTranscriber(loaded.model, loaded.feature_extractor, loaded.tokenizer, device)
    if loaded.architecture == "whisper":
        return WhisperTranscriber(loaded.model, (loaded.feature_extractor, loaded.tokenizer), device=device)
    raise ValueError(f"a {loaded.architecture!r} model is not a speech recognizer (a CTC model or Whisper)")
