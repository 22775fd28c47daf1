"""Whisper's unmerged bottom computed once per split (CachedWhisperTranscriber): the same transcripts as the
uncached recognizer for every layer subset, with the packaged Whisper tiny.en and MiniLM on real recordings."""

from __future__ import annotations

from pathlib import Path

import pytest

from mamlib.asr.corpora import load_corpus
from mamlib.asr.whisper import CachedWhisperTranscriber, WhisperTranscriber
from mamlib.merge.merger import AttentionMerger
from mamlib.models.minilm import load_minilm
from mamlib.models.whisper_tiny import load_whisper_tiny_en

SHARED = Path(__file__).resolve().parents[1] / "_cache"  # `make setup` fetches the packaged weights there


@pytest.fixture(scope="module")
def rig():
    cache = SHARED if (SHARED / "packaged").is_dir() else None
    model, processor = load_whisper_tiny_en(cache_dir=cache)
    text, _ = load_minilm(cache_dir=cache)
    transcriber = WhisperTranscriber(model, processor)
    return transcriber, AttentionMerger(model, text)


def test_cached_transcripts_equal_uncached_for_every_layer_subset(rig):
    transcriber, merger = rig
    waves = [u.audio for u in load_corpus("alsa-real", "test", n=2)]
    cached = CachedWhisperTranscriber(transcriber, waves, [0, 1, 2], batch_size=2)
    for lam, layers in ((0.0, None), (0.25, [2, 3]), (0.3, [1]), (0.2, None)):
        with merger.merged(lam, layers):
            plain = transcriber.transcribe(waves, batch_size=2)
            assert cached.transcribe(waves, batch_size=2) == plain, (lam, layers)
    assert any(plain)  # real speech gives words


def test_stale_prefix_and_foreign_inputs_are_refused(rig):
    transcriber, merger = rig
    waves = [u.audio for u in load_corpus("alsa-real", "test", n=2)]
    cached = CachedWhisperTranscriber(transcriber, waves, [1, 2], batch_size=2)
    with merger.merged(0.2, [0]), pytest.raises(ValueError, match="layer 0 changed"):
        cached.transcribe()
    with pytest.raises(ValueError, match="only transcribes the waveforms it was built with"):
        cached.transcribe(waves[:1])
    with pytest.raises(ValueError, match="batch_size=2"):
        cached.transcribe(batch_size=4)
