"""Reading audio for the experiments: mono float32 at 16 kHz (what HuBERT, Whisper and BEATs take), read and
written with ``soundfile``, resampled with ``torchaudio.functional.resample``."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio

SAMPLE_RATE = 16_000


def check_seconds_budget(seconds: float | None, where: str = "batch_seconds") -> float | None:
    """``seconds`` if it is None or a finite positive number of seconds, else a ValueError naming ``where``."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{where} must be a number of seconds, got {seconds!r}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{where} must be a positive, finite number of seconds, got {seconds!r}")
    return float(seconds)


def resample(wave: np.ndarray, orig_sr: int, new_sr: int = SAMPLE_RATE) -> np.ndarray:
    """``wave`` (1-D float) resampled from ``orig_sr`` to ``new_sr`` with torchaudio."""
    if orig_sr == new_sr:
        return wave.astype(np.float32, copy=False)
    tensor = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return torchaudio.functional.resample(tensor, orig_sr, new_sr).numpy()


def decode_audio(source: str | BinaryIO, where: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A mono float32 waveform at ``sample_rate`` from an encoded WAV/FLAC/OGG file or file object; ValueError
    (naming ``where``) for audio that cannot be decoded, holds no samples or holds NaN or infinite ones."""
    try:
        wave, sr = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"cannot decode audio {where}: {err}") from err
    if wave.shape[0] == 0:
        raise ValueError(f"audio {where} holds no samples")
    mono = wave.mean(axis=1)
    if not np.isfinite(mono).all():
        raise ValueError(f"audio {where} contains NaN or infinite samples")
    return resample(mono, sr, sample_rate)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A mono float32 waveform at ``sample_rate`` from a WAV/FLAC/OGG file (FileNotFoundError if it is missing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    return decode_audio(str(path), f"file {path}", sample_rate)


def save_audio(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write ``wave`` as 16-bit PCM WAV (atomically: a temporary file of this process renamed into place, so
    processes writing the same file at once, e.g. ranks of a sharded build, each leave a whole one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    sf.write(str(tmp), wave, sample_rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)
