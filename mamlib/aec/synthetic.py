"""Synthetic sound events, the smoke preset's classification data (no ESC-50 needed)."""

from __future__ import annotations

import numpy as np

from mamlib.aec.esc50 import FOLDS, Clip
from mamlib.common.audio import SAMPLE_RATE


def synthetic_clips(
    cache_dir: object = None, *, n_classes: int, n_per_class: int, seed: int = 0, seconds: float = 1.0
) -> list[Clip]:
    """Short synthetic "sound events" in ``n_classes`` classes (``cache_dir`` is not used: nothing is cached).

    Class ``c`` is one of three shapes, cycling: a tone (with two harmonics), a band of noise bursts, or a chirp;
    each shape's centre frequency is spread log-uniformly over 200 Hz–6 kHz by class. Every clip jitters pitch
    (±6 %), onset, duration and level, and adds faint white noise. Clips are assigned to folds 1–5 in turn,
    so :func:`mamlib.aec.esc50.split_folds` applies; ids are ``synth-<class>-<index>``.
    """
    if n_classes < 1 or n_per_class < 1:
        raise ValueError("n_classes and n_per_class must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    centres = np.geomspace(200.0, 6000.0, n_classes)
    shapes = ("tone", "noise", "chirp")
    clips: list[Clip] = []
    for c in range(n_classes):
        shape = shapes[c % 3]
        for i in range(n_per_class):
            f0 = centres[c] * rng.uniform(0.94, 1.06)
            onset = rng.uniform(0.0, 0.3) * seconds
            length = rng.uniform(0.4, 0.65) * seconds
            env = ((t >= onset) & (t < onset + length)).astype(np.float64)
            if shape == "tone":
                sig = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
            elif shape == "noise":
                spec = np.fft.rfft(rng.standard_normal(n))
                freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
                spec[np.abs(np.log(np.maximum(freqs, 1.0) / f0)) > 0.25] = 0
                sig = np.fft.irfft(spec, n)
                sig /= np.abs(sig).max() + 1e-9
                env *= (np.sin(2 * np.pi * rng.uniform(6, 10) * t) > 0).astype(np.float64)  # bursts
            else:
                sweep = f0 * np.exp(np.log(2.0) * (t - onset) / max(length, 1e-3))  # one octave up
                sig = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE)
            wave = rng.uniform(0.2, 0.5) * env * sig / np.max(np.abs(sig) + 1e-9)
            wave += 0.003 * rng.standard_normal(n)
            clips.append(Clip(wave.astype(np.float32), c, FOLDS[i % len(FOLDS)], f"synth-{c}-{i}", f"{shape}-{c}"))
    return clips
