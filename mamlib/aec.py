"""The Audio Event Classification protocol of the paper's zero-shot experiments (Sec. 4.1, Tables 1 and 2).

A linear classification head reads a frozen encoder's frame features, mean-pooled over time. The head is trained
once, on the training folds, with the unmerged encoder; the merge (Eq. 1/2) is then applied to the encoder and the
*same* head is evaluated, so any change in error comes from the merged attention alone ("zero-shot").

The pieces compose as::

    fn = beats_encoder_fn(model)
    head = train_linear_head(embed(fn, split.train), labels(split.train), epochs=20, lr=1e-3, seed=0)
    with merger.merged(0.1):
        err = classification_error(head, embed(fn, split.test), labels(split.test))

``encoder_fn`` is any callable ``(waveform (B, N), padding_mask (B, N), True at padding) → (frames (B, T, D),
frame padding mask (B, T) or None)``, so the same code drives BEATs and, in the mini preset, a Whisper encoder.
The paper fine-tunes with AdamW (lr 1e-3 for AEC, batch 32; Sec. 4.3); the head here uses the same optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from mamlib.audio import SAMPLE_RATE
from mamlib.beats import BEATs, masked_mean
from mamlib.esc50 import FOLDS, Clip

EncoderFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]]


class HasWaveform(Protocol):
    waveform: np.ndarray


def labels(clips: Sequence[Clip]) -> Tensor:
    """The class indices of ``clips`` as a long tensor."""
    return torch.tensor([c.label for c in clips], dtype=torch.long)


def pad_batch(waves: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad waveforms with zeros: ``(batch, max_len)`` and the padding mask (True at padding)."""
    if not waves:
        raise ValueError("cannot pad an empty batch")
    tensors = [torch.as_tensor(np.asarray(w, dtype=np.float32)).flatten() for w in waves]
    longest = max(len(t) for t in tensors)
    batch = torch.zeros(len(tensors), longest)
    mask = torch.ones(len(tensors), longest, dtype=torch.bool)
    for i, t in enumerate(tensors):
        if len(t) == 0:
            raise ValueError(f"waveform {i} of the batch is empty")
        batch[i, : len(t)] = t
        mask[i, : len(t)] = False
    return batch, mask


@torch.no_grad()
def embed(encoder_fn: EncoderFn, clips: Sequence[Clip | HasWaveform | np.ndarray], batch_size: int = 16) -> Tensor:
    """Mean-pooled encoder features ``(len(clips), D)`` (float32, on the CPU), padding frames left out.

    Clips are batched in order, right-padded to the batch's longest; ``batch_size`` does not change the result
    beyond float rounding (padding is masked).
    """
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
        if frame_mask is not None:
            frame_mask = frame_mask.to(frames.device, torch.bool)
        pooled.append(masked_mean(frames, frame_mask).float().cpu())
    return torch.cat(pooled)


def beats_encoder_fn(model: BEATs) -> EncoderFn:
    """An ``encoder_fn`` running ``model`` (in eval mode, on its own device) — frames and their padding mask."""

    def encode(waveform: Tensor, padding_mask: Tensor) -> tuple[Tensor, Tensor | None]:
        model.eval()
        device = next(model.parameters()).device
        return model.extract_features(waveform.to(device), padding_mask.to(device))

    return encode


#: Samples per Whisper log-mel frame (10 ms at 16 kHz) and mel frames per encoder frame (the stride-2 conv).
WHISPER_HOP = 160
WHISPER_MEL_PER_FRAME = 2


def whisper_frames(num_samples: int, max_samples: int = 30 * SAMPLE_RATE) -> int:
    """Encoder frames of Whisper that cover ``num_samples`` of real audio: the log-mel frames that the feature
    extractor marks as audio (``ceil(num_samples / 160)``, at most 30 s' worth) halved, and at least one."""
    mel = -(-min(num_samples, max_samples) // WHISPER_HOP)
    return max(1, mel // WHISPER_MEL_PER_FRAME)


def whisper_encoder_fn(model: nn.Module, feature_extractor) -> EncoderFn:
    """An ``encoder_fn`` running Whisper's encoder (``model.get_encoder()``, eval mode, its own device and dtype).

    ``feature_extractor`` is a ``WhisperFeatureExtractor`` (or a processor holding one). Each clip, without its
    padding, becomes log-mel features padded to 30 s (3000 mel frames, which Whisper's encoder requires); the
    encoder returns ``(B, 1500, d_model)`` frames. Whisper attends over the whole 30 s window, padding included,
    as in the original model; the returned frame padding mask (True at padding) keeps ``mel frames // 2`` frames
    of each clip (at least one), so mean pooling covers only the real audio. Clips over 30 s are truncated.
    """
    extractor = getattr(feature_extractor, "feature_extractor", feature_extractor)
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model

    def encode(waveform: Tensor, padding_mask: Tensor) -> tuple[Tensor, Tensor | None]:
        encoder.eval()
        param = next(encoder.parameters())
        lengths = (~padding_mask.bool()).sum(dim=1).tolist()
        waves = [waveform[i, :n].detach().float().cpu().numpy() for i, n in enumerate(lengths)]
        inputs = extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            frames = encoder(inputs["input_features"].to(param.device, param.dtype)).last_hidden_state
        keep = [whisper_frames(n, extractor.n_samples) for n in lengths]
        steps = torch.arange(frames.shape[1], device=frames.device)
        mask = steps.unsqueeze(0) >= torch.tensor(keep, device=frames.device).unsqueeze(1)
        return frames, mask

    return encode


def train_linear_head(
    features: Tensor,
    targets: Tensor,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    num_classes: int | None = None,
    standardize: bool = True,
) -> nn.Linear:
    """A linear classifier on frozen pooled features, trained with AdamW and cross-entropy (deterministic: the
    initialisation and the mini-batch order come from ``seed``).

    With ``standardize`` the features are z-scored with the training statistics during training and the
    scaling is then folded into the returned layer, so it applies to raw features (of the merged encoder too).
    """
    if features.dim() != 2 or targets.shape != (features.shape[0],):
        shapes = f"{tuple(features.shape)}, {tuple(targets.shape)}"
        raise ValueError(f"expected features (N, D) and targets (N,), got {shapes}")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs, batch_size and lr must be positive (got {epochs}, {batch_size}, {lr})")
    x = features.detach().float().cpu()
    y = targets.detach().long().cpu()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{bad} of {len(x)} training feature vectors contain NaN or infinite values; "
                         "the encoder diverged or its input is corrupt — nothing was trained")
    n_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"targets must lie in [0, {n_classes}), got {int(y.min())}..{int(y.max())}")
    mean = x.mean(dim=0) if standardize else torch.zeros(x.shape[1])
    std = x.std(dim=0, unbiased=False).clamp(min=1e-6) if standardize and len(x) > 1 else torch.ones(x.shape[1])
    z = (x - mean) / std
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        bound = 1.0 / x.shape[1] ** 0.5
        head.weight.uniform_(-bound, bound, generator=gen)
        head.bias.uniform_(-bound, bound, generator=gen)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        order = torch.randperm(len(z), generator=gen)
        for start in range(0, len(z), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(head(z[idx]), y[idx])
            if not torch.isfinite(loss):
                raise ValueError(f"training loss became {loss.item()} in epoch {epoch}: lower lr (now {lr})")
            loss.backward()
            opt.step()
    with torch.no_grad():  # head(z) = W (x − μ)/σ + b  =  (W/σ) x + (b − W μ/σ)
        weight = head.weight / std
        head.bias.sub_(weight @ mean)
        head.weight.copy_(weight)
    return head.eval().requires_grad_(False)


@torch.no_grad()
def predict(head: nn.Module, features: Tensor) -> Tensor:
    """Predicted class indices of ``head`` for pooled ``features``."""
    param = next(head.parameters())
    return head(features.to(param.device, param.dtype)).argmax(dim=-1).cpu()


def classification_error(head: nn.Module, features: Tensor, targets: Tensor) -> float:
    """Classification error in percent (the paper's metric for ESC-50: 100 · wrong / total)."""
    if len(targets) == 0 or len(features) != len(targets):
        raise ValueError(f"need as many features as targets, at least one (got {len(features)}, {len(targets)})")
    wrong = (predict(head, features) != targets.cpu()).sum().item()
    return 100.0 * wrong / len(targets)


def synthetic_clips(
    n_classes: int,
    n_per_class: int,
    seed: int = 0,
    *,
    seconds: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
) -> list[Clip]:
    """Short synthetic "sound events" in ``n_classes`` classes, for the smoke preset (no ESC-50 needed).

    Class ``c`` is one of three kinds, cycling: a tone (with two harmonics), a band of noise bursts, or a chirp;
    each kind's centre frequency is spread log-uniformly over 200 Hz–6 kHz by class. Every clip jitters pitch
    (±6 %), onset, duration and level, and adds faint white noise. Clips are assigned to folds 1–5 in turn,
    so :func:`mamlib.esc50.split_folds` applies; ids are ``synth-<class>-<index>``.
    """
    if n_classes < 1 or n_per_class < 1:
        raise ValueError("n_classes and n_per_class must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    centres = np.geomspace(200.0, 6000.0, n_classes)
    kinds = ("tone", "noise", "chirp")
    clips: list[Clip] = []
    for c in range(n_classes):
        kind = kinds[c % 3]
        for i in range(n_per_class):
            f0 = centres[c] * rng.uniform(0.94, 1.06)
            onset = rng.uniform(0.0, 0.3) * seconds
            length = rng.uniform(0.4, 0.65) * seconds
            env = ((t >= onset) & (t < onset + length)).astype(np.float64)
            if kind == "tone":
                sig = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
            elif kind == "noise":
                spec = np.fft.rfft(rng.standard_normal(n))
                freqs = np.fft.rfftfreq(n, 1 / sample_rate)
                spec[np.abs(np.log(np.maximum(freqs, 1.0) / f0)) > 0.25] = 0
                sig = np.fft.irfft(spec, n)
                sig /= np.abs(sig).max() + 1e-9
                env *= (np.sin(2 * np.pi * rng.uniform(6, 10) * t) > 0).astype(np.float64)  # bursts
            else:
                sweep = f0 * np.exp(np.log(2.0) * (t - onset) / max(length, 1e-3))  # one octave up
                sig = np.sin(2 * np.pi * np.cumsum(sweep) / sample_rate)
            wave = rng.uniform(0.2, 0.5) * env * sig / np.max(np.abs(sig) + 1e-9)
            wave += 0.003 * rng.standard_normal(n)
            clips.append(
                Clip(
                    waveform=wave.astype(np.float32),
                    label=c,
                    fold=FOLDS[i % len(FOLDS)],
                    id=f"synth-{c}-{i}",
                    category=f"{kind}-{c}",
                )
            )
    return clips
