"""Audio encoders for the classification protocol (Sec. 4, AEC): the frozen network a merge is applied to, run on
padded waveform batches and mean-pooled over its real frames.

An ``encoder_fn`` is any callable ``(waveform (B, N), padding_mask (B, N), True at padding) → (frames (B, T, D),
frame padding mask (B, T) or None)``, so the same code drives BEATs and, in the mini preset, a Whisper encoder.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from mamlib.aec.esc50 import Clip
from mamlib.common.audio import SAMPLE_RATE
from mamlib.common.tensors import masked_mean
from mamlib.models.beats import BEATs
from mamlib.models.build import LoadedModel

EncoderFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]]


def pad_batch(waves: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad waveforms with zeros: ``(batch, max_len)`` and the padding mask (True at padding)."""
    if not waves:
        raise ValueError("cannot pad an empty batch")
    tensors = [torch.as_tensor(np.asarray(w, dtype=np.float32)).flatten() for w in waves]
    lengths = torch.tensor([len(t) for t in tensors])
    if (lengths == 0).any():
        raise ValueError(f"waveform {int((lengths == 0).nonzero()[0])} of the batch is empty")
    batch = pad_sequence(tensors, batch_first=True)
    return batch, torch.arange(batch.shape[1]) >= lengths[:, None]


@torch.no_grad()
def embed(encoder_fn: EncoderFn, clips: Sequence[Clip | np.ndarray | Tensor], batch_size: int = 16) -> Tensor:
    """Mean-pooled encoder features ``(len(clips), D)`` (float32, on the CPU), padding frames left out: clips are
    batched in order and right-padded, so ``batch_size`` changes the result by float rounding at most."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    waves = [c if isinstance(c, (np.ndarray, Tensor)) else c.waveform for c in clips]
    if not waves:
        raise ValueError("no clips to embed")
    pooled = []
    for start in range(0, len(waves), batch_size):
        batch, mask = pad_batch(waves[start : start + batch_size])
        frames, frame_mask = encoder_fn(batch, mask)
        if frames.dim() != 3 or frames.shape[0] != batch.shape[0]:
            raise ValueError(f"encoder_fn must return (batch, time, dim) frames, got {tuple(frames.shape)}")
        valid = None if frame_mask is None else ~frame_mask.to(frames.device, torch.bool)
        pooled.append(masked_mean(frames, valid).float().cpu())
    return torch.cat(pooled)


def beats_encoder_fn(model: BEATs) -> EncoderFn:
    """An ``encoder_fn`` running ``model`` on its own device — frames and their padding mask. It runs in whatever
    mode the model is in and records gradients when they are enabled (fine-tuning); :func:`embed` runs it without."""

    def encode(waveform: Tensor, padding_mask: Tensor) -> tuple[Tensor, Tensor | None]:
        device = next(model.parameters()).device
        return model.extract_features(waveform.to(device), padding_mask.to(device))

    return encode


def whisper_frames(num_samples: int, max_samples: int = 30 * SAMPLE_RATE) -> int:
    """Encoder frames of Whisper that cover ``num_samples`` of real audio: the 10 ms log-mel frames that the feature
    extractor marks as audio (``ceil(num_samples / 160)``, at most 30 s' worth) halved by the stride-2 convolution,
    and at least one."""
    return max(1, -(-min(num_samples, max_samples) // 160) // 2)


def whisper_encoder_fn(model: nn.Module, feature_extractor) -> EncoderFn:
    """An ``encoder_fn`` running Whisper's encoder (``model.get_encoder()``) as :func:`beats_encoder_fn` runs BEATs.

    ``feature_extractor`` is a ``WhisperFeatureExtractor`` (or a processor holding one). Each clip, without its
    padding, becomes log-mel features padded to 30 s (clips over 30 s are truncated), which Whisper attends over
    whole, as the original does; the frame padding mask keeps :func:`whisper_frames` of the ``(B, 1500, d_model)``
    frames per clip, so mean pooling covers only the real audio.
    """
    extractor = getattr(feature_extractor, "feature_extractor", feature_extractor)
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model

    def encode(waveform: Tensor, padding_mask: Tensor) -> tuple[Tensor, Tensor | None]:
        param = next(encoder.parameters())
        lengths = (~padding_mask.bool()).sum(dim=1).tolist()
        waves = [waveform[i, :n].detach().float().cpu().numpy() for i, n in enumerate(lengths)]
        inputs = extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        frames = encoder(inputs["input_features"].to(param.device, param.dtype)).last_hidden_state
        keep = torch.tensor([whisper_frames(n, extractor.n_samples) for n in lengths], device=frames.device)
        return frames, torch.arange(frames.shape[1], device=frames.device) >= keep[:, None]

    return encode


@dataclass
class AudioEncoder:
    """An audio classifier's encoder: the network to merge into, how to run it (:data:`EncoderFn`), and the built
    model it came from (to make an independent copy, e.g. for fine-tuning)."""

    encode: EncoderFn
    loaded: LoadedModel

    @property
    def model(self) -> nn.Module:
        return self.loaded.model

    def copy(self) -> AudioEncoder:
        """An independent deep copy (its own weights), run the same way."""
        return audio_encoder(replace(self.loaded, model=copy.deepcopy(self.model)))


def audio_encoder(loaded: LoadedModel) -> AudioEncoder:
    """The :class:`AudioEncoder` of a built BEATs model or of a Whisper model's encoder."""
    if loaded.architecture == "beats":
        return AudioEncoder(beats_encoder_fn(loaded.model), loaded)
    if loaded.architecture == "whisper":
        return AudioEncoder(whisper_encoder_fn(loaded.model, loaded.feature_extractor), loaded)
    raise ValueError(f"a {loaded.architecture!r} model is not an audio encoder (BEATs or Whisper)")
