"""Cached offline speech synthesis (mamlib.asr.synth)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from mamlib.asr import synth
from mamlib.common.audio import SAMPLE_RATE

needs_espeak = pytest.mark.skipif(shutil.which(synth.ESPEAK) is None, reason="espeak-ng not installed (make setup)")
needs_hibari = pytest.mark.skipif(importlib.util.find_spec("hibari") is None, reason="hibari-tts not installed")

TEXT = "Please leave the spare key under the blue flower pot."


def _check_wav(path) -> np.ndarray:
    info = sf.info(str(path))
    assert info.samplerate == SAMPLE_RATE
    assert info.channels == 1
    wave, _ = sf.read(str(path), dtype="float32")
    assert 0.5 < len(wave) / SAMPLE_RATE < 10
    assert np.sqrt(np.mean(wave**2)) > 0.01
    return wave


def test_cache_key_depends_on_every_field() -> None:
    base = synth.cache_key("espeak-ng", "en-us", "hello there", version="1", speed=None)
    assert base == synth.cache_key("espeak-ng", "en-us", "hello there", speed=None, version="1")
    others = {
        synth.cache_key("espeak-ng", "en-gb", "hello there", version="1", speed=None),
        synth.cache_key("espeak-ng", "en-us", "hello where", version="1", speed=None),
        synth.cache_key("espeak-ng", "en-us", "hello there", version="2", speed=None),
        synth.cache_key("espeak-ng", "en-us", "hello there", version="1", speed=150),
        synth.cache_key("hibari", "en-us", "hello there", version="1", speed=None),
    }
    assert base not in others and len(others) == 5


@needs_espeak
def test_espeak_is_16k_mono_speech(tmp_path) -> None:
    path = synth.synthesize_espeak(TEXT, "en-us", tmp_path)
    assert path.parent == tmp_path / "espeak-ng" and path.suffix == ".wav"
    _check_wav(path)
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob(".espeak-*"))


@needs_espeak
def test_espeak_cache_hit_does_not_resynthesize(tmp_path, monkeypatch) -> None:
    first = synth.synthesize_espeak(TEXT, "en-gb", tmp_path)
    mtime = first.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("espeak-ng was run again for a cached sentence")

    monkeypatch.setattr(subprocess, "run", fail)
    again = synth.synthesize_espeak(TEXT, "en-gb", tmp_path)
    assert again == first and again.stat().st_mtime_ns == mtime


@needs_espeak
def test_espeak_file_changes_with_text_voice_and_speed(tmp_path) -> None:
    a = synth.synthesize_espeak(TEXT, "en-us", tmp_path)
    assert synth.synthesize_espeak(TEXT, "en-gb-scotland", tmp_path) != a
    assert synth.synthesize_espeak(TEXT + " Thanks.", "en-us", tmp_path) != a
    slow = synth.synthesize_espeak(TEXT, "en-us", tmp_path, speed=120)
    assert slow != a and sf.info(str(slow)).duration > sf.info(str(a)).duration


@needs_espeak
def test_espeak_bad_voice_and_empty_text(tmp_path) -> None:
    with pytest.raises(synth.SynthesisError, match="zz-bogus"):
        synth.synthesize_espeak(TEXT, "zz-bogus", tmp_path)
    with pytest.raises(ValueError, match="empty"):
        synth.synthesize_espeak("   ", "en-us", tmp_path)
    assert not list((tmp_path / "espeak-ng").glob("*.wav"))


@needs_espeak
def test_espeak_text_starting_with_dash(tmp_path) -> None:
    _check_wav(synth.synthesize_espeak("-v is not an option here, just words.", "en-us", tmp_path))


def test_espeak_missing_says_how_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    synth.espeak_version.cache_clear()
    try:
        with pytest.raises(synth.SynthesisError, match="apt-get install espeak-ng"):
            synth.synthesize_espeak(TEXT, "en-us", tmp_path)
    finally:
        synth.espeak_version.cache_clear()


def test_hibari_missing_names_the_package(tmp_path, monkeypatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(synth.importlib.metadata, "version", missing)
    with pytest.raises(synth.SynthesisError, match="hibari-tts==0.2.1"):
        synth.synthesize_hibari(TEXT, tmp_path)


@needs_hibari
def test_hibari_is_deterministic_and_cached(tmp_path) -> None:
    a = synth.synthesize_hibari(TEXT, tmp_path / "a", seed=0)
    b = synth.synthesize_hibari(TEXT, tmp_path / "b", seed=0)
    wave = _check_wav(a)
    np.testing.assert_array_equal(wave, sf.read(str(b), dtype="float32")[0])
    mtime = a.stat().st_mtime_ns
    assert synth.synthesize_hibari(TEXT, tmp_path / "a", seed=0) == a and a.stat().st_mtime_ns == mtime
    assert synth.synthesize_hibari(TEXT, tmp_path / "a", seed=1) != a
    assert synth.synthesize_hibari("Another sentence entirely.", tmp_path / "a") != a


@needs_hibari
def test_hibari_uses_only_the_bundled_voice() -> None:
    model = synth._hibari_model()
    assert model.voice == synth.HIBARI_VOICE == "heart"
    assert "site-packages" in model.model_path or "hibari" in model.model_path
