"""Offline text-to-speech for the small test sets, cached on disk by content.

Two engines: ``espeak-ng`` (Debian package; formant synthesis with many English accents; a 22.05 kHz WAV file, as a
piped ``--stdout`` was seen to come out shorter) and ``hibari-tts`` (PyPI, Apache-2.0; a small neural voice, only its
bundled "heart" is used; deterministic for a seed; 24 kHz). Every result is a 16 kHz mono 16-bit WAV at
``cache_dir/<engine>/<key>.wav``, ``key`` a SHA-256 of engine, version, voice, settings and text (:func:`cache_key`),
written to a temporary name and renamed into place, so an interrupted run never leaves a truncated entry."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mamlib.common.audio import SAMPLE_RATE, resample, save_audio

ESPEAK = "espeak-ng"
HIBARI_PACKAGE = "hibari-tts==0.2.1"
HIBARI_VOICE = "heart"
HIBARI_MISSING = (f"the hibari TTS engine is not installed: `pip install {HIBARI_PACKAGE}` (PyPI package "
                  "hibari-tts, needs onnxruntime), or `pip install -e .[mini]`")
_KEY_SCHEMA = 1  # bump when the way audio is produced changes in a way the other fields do not capture


class SynthesisError(RuntimeError):
    """A text-to-speech engine is missing or failed."""


def cache_key(engine: str, voice: str, text: str, **settings: Any) -> str:
    """Hex SHA-256 naming one synthesis request (engine incl. version, voice, settings, text, output rate)."""
    payload = {"schema": _KEY_SCHEMA, "engine": engine, "voice": voice, "text": text, "sample_rate": SAMPLE_RATE,
               "settings": settings}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _cached(engine: str, voice: str, text: str, cache_dir: str | Path,
            make: Callable[[str], tuple[np.ndarray, int]], **settings: Any) -> Path:
    """The cached 16 kHz WAV of ``text``; on a miss ``make(text)`` gives the wave and its rate, which is resampled,
    refused if silent, and written atomically."""
    text = text.strip()
    if not text:
        raise ValueError("cannot synthesize empty text")
    path = Path(cache_dir) / engine / f"{cache_key(engine, voice, text, **settings)}.wav"
    if path.is_file():
        return path
    wave, orig_sr = make(text)
    wave = resample(np.asarray(wave, dtype=np.float32).reshape(-1), orig_sr, SAMPLE_RATE)
    if wave.size == 0 or float(np.max(np.abs(wave))) < 1e-4:
        raise SynthesisError(f"synthesis produced silence for {path.name}")
    save_audio(path, np.clip(wave, -1.0, 1.0), SAMPLE_RATE)
    return path


# -- espeak-ng ---------------------------------------------------------------------------------------------------


def _espeak_binary() -> str:
    if exe := shutil.which(ESPEAK):
        return exe
    raise SynthesisError("espeak-ng is not installed: run `sudo apt-get install espeak-ng` (or `make setup`) to "
                         "synthesize speech")


@lru_cache(maxsize=1)
def espeak_version() -> str:
    """The first line of ``espeak-ng --version`` (part of the cache key)."""
    out = subprocess.run([_espeak_binary(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


def synthesize_espeak(text: str, voice: str, cache_dir: str | Path, *, speed: int | None = None) -> Path:
    """A cached 16 kHz WAV of ``text`` spoken by espeak-ng voice ``voice`` (e.g. ``en-us``, ``en-gb-scotland``) at
    ``speed`` words per minute (``-s``; its default, 175, when None)."""
    speed = None if speed is None else int(speed)

    def make(text: str) -> tuple[np.ndarray, int]:
        Path(cache_dir, ESPEAK).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=Path(cache_dir, ESPEAK), prefix=".espeak-") as tmp:
            txt, raw = Path(tmp) / "text.txt", Path(tmp) / "raw.wav"
            txt.write_text(text + "\n", encoding="utf-8")  # from a file, so text starting with '-' is never an option
            speed_args = [] if speed is None else ["-s", str(speed)]
            proc = subprocess.run([_espeak_binary(), *speed_args, "-v", voice, "-w", str(raw), "-f", str(txt)],
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not raw.is_file():
                detail = proc.stderr.strip() or proc.stdout.strip()
                raise SynthesisError(f"espeak-ng failed for voice {voice!r} (exit {proc.returncode}): {detail}")
            wave, sr = sf.read(str(raw), dtype="float32", always_2d=True)
            return wave.mean(axis=1), sr

    return _cached(ESPEAK, voice, text, cache_dir, make, version=espeak_version(), speed=speed)


# -- hibari ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _hibari_model() -> Any:
    """The bundled hibari voice, loaded once per process (never a downloaded one)."""
    try:
        import hibari
        from hibari.voices import voice_path
    except ImportError as err:
        raise SynthesisError(HIBARI_MISSING) from err
    model = voice_path(HIBARI_VOICE, download_missing=False)  # the bundled file; raises rather than downloading
    return hibari.Hibari(voice=HIBARI_VOICE, model=model, threads=1)


def hibari_version() -> str:
    """The installed hibari-tts version (part of the cache key), read without loading the model."""
    try:
        return importlib.metadata.version("hibari-tts")
    except importlib.metadata.PackageNotFoundError as err:
        raise SynthesisError(HIBARI_MISSING) from err


def synthesize_hibari(text: str, cache_dir: str | Path, *, seed: int = 0) -> Path:
    """A cached 16 kHz WAV of ``text`` read by hibari's bundled voice ("heart"), deterministic for ``seed``."""

    def make(text: str) -> tuple[np.ndarray, int]:
        tts = _hibari_model()
        return tts(text, speed=1.0, seed=int(seed)), int(tts.sample_rate)

    return _cached("hibari", HIBARI_VOICE, text, cache_dir, make, version=hibari_version(), seed=int(seed))
