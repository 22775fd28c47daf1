"""mamlib.aec.sound_clips: cutting recordings into leakage-free train/dev/test clips, and the real animal clips."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pytest

from mamlib.aec.esc50 import split_folds
from mamlib.aec.sound_clips import (
    ALL_CLASSES,
    ANIMAL_CLASSES,
    FREEDESKTOP_CLASSES,
    FREEDESKTOP_DIR,
    SoundClip,
    Window,
    animal_sound_clips,
    cut_recording,
    freedesktop_sound_path,
)

SR = 16_000


def bursts(spans: Sequence[tuple[float, float]], seconds: float, seed: int = 0) -> np.ndarray:
    """Noise at 0.5 amplitude inside ``spans`` (in seconds), near-silence (1e-4) elsewhere."""
    rng = np.random.default_rng(seed)
    wave = 1e-4 * rng.standard_normal(int(seconds * SR))
    for a, b in spans:
        wave[int(a * SR) : int(b * SR)] += 0.5 * rng.standard_normal(int(b * SR) - int(a * SR))
    return wave.astype(np.float32)


def by_split(windows: Sequence[Window]) -> dict[str, list[Window]]:
    out: dict[str, list[Window]] = defaultdict(list)
    for w in windows:
        out[w.split].append(w)
    return out


def assert_leakage_free(windows: Sequence[Window | SoundClip], gap: int = 0) -> None:
    """Every train window ends before (with ``gap``) every dev window starts, and every dev before every test."""
    spans = defaultdict(list)
    for w in windows:
        spans[w.split].append((w.start, w.end))
    assert set(spans) == {"train", "dev", "test"}
    for early, late in (("train", "dev"), ("dev", "test")):
        assert max(e for _, e in spans[early]) + gap <= min(s for s, _ in spans[late]), (early, late)
    for split in ("dev", "test"):  # dev and test windows do not overlap each other
        starts = sorted(s for s, _ in spans[split])
        ends = sorted(e for _, e in spans[split])
        assert all(e <= s for e, s in zip(ends[:-1], starts[1:], strict=True))


# --------------------------------------------------------------------------------------------- cut_recording


def test_cut_recording_splits_by_time_without_overlap() -> None:
    wave = bursts([(0.0, 10.0)], 10.0)
    windows = cut_recording(wave, SR, clip_seconds=1.0, hop_seconds=0.5)
    assert all(w.end - w.start == SR for w in windows)
    assert [w.split for w in windows] == sorted((w.split for w in windows), key=("train", "dev", "test").index)
    assert_leakage_free(windows)
    parts = by_split(windows)
    # Uniform activity: test and dev each take about 20 % of the time (two 1 s windows), train the rest.
    assert len(parts["test"]) == 2 and len(parts["dev"]) == 2
    assert parts["test"][0].start == 8 * SR and parts["dev"][0].start == 6 * SR
    assert [w.start for w in parts["train"]] == [int(0.5 * SR * i) for i in range(11)]
    assert parts["train"][-1].end <= parts["dev"][0].start


def test_cut_recording_is_deterministic_and_pure() -> None:
    wave = bursts([(0.3, 2.0), (3.1, 4.4), (6.0, 7.9)], 9.0)
    copy = wave.copy()
    first = cut_recording(wave, SR, clip_seconds=0.5, hop_seconds=0.25)
    assert first == cut_recording(copy, SR, clip_seconds=0.5, hop_seconds=0.25)
    np.testing.assert_array_equal(wave, copy)


def test_cut_recording_drops_silent_windows() -> None:
    spans = [(0.0, 2.0), (4.5, 6.5), (8.0, 10.0)]
    wave = bursts(spans, 10.0)
    windows = cut_recording(wave, SR, clip_seconds=0.5, hop_seconds=0.25, min_rms_ratio=0.3)
    ref = np.sqrt(np.mean(wave.astype(np.float64) ** 2))
    assert windows
    for w in windows:
        rms = np.sqrt(np.mean(wave[w.start : w.end].astype(np.float64) ** 2))
        assert rms >= 0.3 * ref
        overlap = max(min(w.end / SR, b) - max(w.start / SR, a) for a, b in spans)
        assert overlap > 0.05, f"window {w} lies in a silent stretch"
    # Without the filter the silent stretches give windows too.
    unfiltered = cut_recording(wave, SR, clip_seconds=0.5, hop_seconds=0.25, min_rms_ratio=0.0)
    assert len(unfiltered) > len(windows)
    assert_leakage_free(windows)


def test_cut_recording_boundaries_follow_active_time() -> None:
    """Two calls far apart (like the owl): a plain 60/20/20 cut by wall-clock time would leave test silent."""
    wave = bursts([(0.2, 1.5), (6.0, 7.4)], 9.0)
    parts = by_split(cut_recording(wave, SR, clip_seconds=0.5, hop_seconds=0.25))
    assert parts["train"][0].start < 1.5 * SR  # the first call trains
    assert all(w.start >= 6.0 * SR - 0.25 * SR for w in parts["dev"] + parts["test"])  # the second call evaluates


def test_cut_recording_gap() -> None:
    wave = bursts([(0.0, 12.0)], 12.0)
    windows = cut_recording(wave, SR, clip_seconds=1.0, hop_seconds=0.5, gap_seconds=1.0)
    assert_leakage_free(windows, gap=SR)


def test_cut_recording_eval_hop() -> None:
    wave = bursts([(0.0, 10.0)], 10.0)
    windows = cut_recording(wave, SR, clip_seconds=1.0, hop_seconds=0.5, eval_hop_seconds=0.5)
    parts = by_split(windows)
    assert [w.start - parts["test"][0].start for w in parts["test"]] == [0, SR // 2, SR]
    for early, late in (("train", "dev"), ("dev", "test")):
        assert max(w.end for w in parts[early]) <= min(w.start for w in parts[late])


def test_cut_recording_errors() -> None:
    with pytest.raises(ValueError, match="lamb.*silent"):
        cut_recording(np.zeros(SR * 3, np.float32), SR, name="lamb")
    with pytest.raises(ValueError, match="bleat: too short"):
        cut_recording(bursts([(0.1, 0.8)], 0.9), SR, clip_seconds=1.0, name="bleat")
    with pytest.raises(ValueError, match="neigh: no non-silent train clip"):
        cut_recording(bursts([(0.0, 2.4)], 2.4), SR, clip_seconds=1.0, name="neigh")
    with pytest.raises(ValueError, match="positive"):
        cut_recording(bursts([(0.0, 5.0)], 5.0), SR, hop_seconds=0.0)
    with pytest.raises(ValueError, match="fractions"):
        cut_recording(bursts([(0.0, 5.0)], 5.0), SR, fractions=(0.6, 0.3, 0.3))


# ------------------------------------------------------------------------------------------- the real clips


@pytest.fixture(scope="module")
def clips() -> list[SoundClip]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return animal_sound_clips()


def test_animal_clips_split(clips: list[SoundClip]) -> None:
    assert ANIMAL_CLASSES == tuple(sorted(ANIMAL_CLASSES)) and len(ANIMAL_CLASSES) == 10
    assert all(len(c.waveform) == SR and c.waveform.dtype == np.float32 for c in clips)
    split = split_folds(clips)
    assert len(split.train) + len(split.dev) + len(split.test) == len(clips)
    classes = {c.category for c in clips}
    assert classes == {"cat", "cow", "dog", "duck", "frog", "owl", "pig"}  # horse, rooster, sheep are too short
    for part in (split.train, split.dev, split.test):
        assert {c.category for c in part} == classes
    for c in clips:
        assert c.label == ANIMAL_CLASSES.index(c.category)
        assert c.id == f"{c.source}@{c.start}-{c.end}" and c.source == c.category
        assert c.split == ("train" if c.fold in (1, 2, 3) else {4: "dev", 5: "test"}[c.fold])
    assert {c.fold for c in split.train} == {1, 2, 3}
    for name in classes:
        assert_leakage_free([c for c in clips if c.source == name])


def test_animal_clips_deterministic(clips: list[SoundClip]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = animal_sound_clips()
    assert [(c.id, c.fold, c.label) for c in again] == [(c.id, c.fold, c.label) for c in clips]
    assert all(np.array_equal(a.waveform, b.waveform) for a, b in zip(again, clips, strict=True))


def test_animal_clips_class_selection() -> None:
    with pytest.warns(UserWarning, match="sheep"):
        short = animal_sound_clips(clip_seconds=0.5, hop_seconds=0.25)
    assert {"horse", "rooster"} <= {c.category for c in short} and "sheep" not in {c.category for c in short}
    assert all(len(c.waveform) == SR // 2 for c in short)
    with pytest.raises(ValueError, match="sheep"):
        animal_sound_clips(classes=["cow", "sheep"])
    with pytest.raises(ValueError, match="unknown"):
        animal_sound_clips(classes=["unicorn"])
    pair = animal_sound_clips(classes=["pig", "cow"])
    assert [c.category for c in pair][0] == "cow" and {c.label for c in pair} == {1, 7}


def test_freedesktop_missing(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install sound-theme-freedesktop"):
        freedesktop_sound_path("alarm-clock-elapsed", tmp_path)


@pytest.mark.skipif(not (FREEDESKTOP_DIR / "alarm-clock-elapsed.oga").is_file(), reason="sound-theme-freedesktop")
def test_freedesktop_clips() -> None:
    with pytest.warns(UserWarning, match="service-login"):
        clips = animal_sound_clips(classes=["dog"], include_freedesktop=True)
    assert {c.category for c in clips} == {"dog", "alarm-clock-elapsed"}
    assert {c.label for c in clips if c.category != "dog"} == {ALL_CLASSES.index("alarm-clock-elapsed")}
    assert ALL_CLASSES[len(ANIMAL_CLASSES) :] == FREEDESKTOP_CLASSES


def test_an_unreadable_recording_is_an_error_not_a_skipped_class(monkeypatch) -> None:
    import mamlib.aec.sound_clips as sound_clips

    real = sound_clips.load_audio

    def load(path):
        if "owl" in str(path):
            raise ValueError(f"{path}: cannot decode the audio (corrupt)")
        return real(path)

    monkeypatch.setattr(sound_clips, "load_audio", load)
    with pytest.raises(ValueError, match=r"owl.*cannot decode"):
        animal_sound_clips()
