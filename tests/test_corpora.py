"""Test-set loaders (mamlib.asr.corpora): sentence list, synthetic sets, alsa clips, LJ Speech and VCTK layouts."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mamlib.asr import corpora
from mamlib.asr.metrics import normalize_transcript
from mamlib.asr.recognizers import Utterance
from mamlib.common.audio import SAMPLE_RATE
from tests.test_synth import needs_espeak, needs_hibari

needs_alsa = pytest.mark.skipif(not (corpora.ALSA_DIR / "Front_Center.wav").is_file(), reason="alsa-utils missing")


def _tone(seconds: float = 0.3, sr: int = 22_050) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _check_utterances(utts: list[Utterance]) -> None:
    assert len({u.id for u in utts}) == len(utts)
    for u in utts:
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1 and len(u.audio) > 0
        assert u.text.strip()


# -- sentence list -----------------------------------------------------------------------------------------------


def test_sentence_file_is_large_unique_and_well_formed() -> None:
    sents = corpora.sentences("all")
    texts = [s.text for s in sents]
    assert len(set(texts)) == len(texts) >= 300
    assert len({normalize_transcript(t) for t in texts}) == len(texts)
    for t in texts:
        assert 6 <= len(t.split()) <= 20, t
        assert not any(c.isdigit() for c in t), f"numbers should be written as words: {t}"


def test_sentence_split_is_disjoint_complete_and_fixed() -> None:
    dev, test, every = corpora.sentences("dev"), corpora.sentences("test"), corpora.sentences("all")
    assert {s.id for s in dev}.isdisjoint({s.id for s in test})
    assert {s.text for s in dev}.isdisjoint({s.text for s in test})
    assert sorted(dev + test, key=lambda s: s.id) == every
    assert abs(len(dev) - len(test)) <= 1 and len(test) >= 150
    assert dev[0].id == "s0001" and test[0].id == "s0002"  # odd lines dev, even lines test
    assert corpora.sentences("dev") == dev
    with pytest.raises(ValueError, match="split"):
        corpora.sentences("training")


def test_train_sentences_share_nothing_with_dev_or_test() -> None:
    """The fine-tuning sentences (Table 5) differ from every evaluation sentence, also after normalization."""
    train = corpora.sentences("train")
    assert len(train) >= 40 and train[0].id == "t0001"
    evaluation = {normalize_transcript(s.text) for s in corpora.sentences("all")}
    texts = [normalize_transcript(s.text) for s in train]
    assert len(set(texts)) == len(texts) and not set(texts) & evaluation
    for t in (s.text for s in train):
        assert 6 <= len(t.split()) <= 20 and not any(c.isdigit() for c in t), t


# -- synthetic sets ----------------------------------------------------------------------------------------------


def _smoke(cache: Path, n: int | None = None, n_train: int = 0) -> dict[str, list[Utterance]]:
    return {split: corpora.load_corpus("smoke", split, cache_dir=cache, n=n_train if split == "train" else n)
            for split in ("dev", "test", "train")}


@needs_espeak
def test_smoke_corpus_shape_and_cache(tmp_path) -> None:
    parts = _smoke(tmp_path, n_train=2)
    assert len(parts["dev"]) == 4 and len(parts["test"]) == 4
    assert [u.id.split("-")[-1][0] for u in parts["train"]] == ["t", "t"]
    for utts in parts.values():
        _check_utterances(utts)
        assert {u.speaker for u in utts} == set(corpora.SMOKE_VOICES)
        assert all(0.5 < u.seconds < 10 for u in utts)
    dev_texts = {s.text for s in corpora.sentences("dev")}
    assert all(u.text in dev_texts for u in parts["dev"])
    assert not {u.text for u in parts["test"]} & dev_texts
    start = time.perf_counter()
    again = _smoke(tmp_path)
    assert time.perf_counter() - start < 2.0
    assert [u.id for u in again["dev"]] == [u.id for u in parts["dev"]]
    np.testing.assert_array_equal(again["test"][0].audio, parts["test"][0].audio)
    assert [len(p) for p in _smoke(tmp_path, n=1).values()] == [1, 1, 0]


@needs_espeak
def test_load_corpus_smoke_matches(tmp_path) -> None:
    test = corpora.load_corpus("smoke", "test", cache_dir=tmp_path)
    assert [u.id for u in test] == [f.id for f in corpora.smoke_corpus(tmp_path, "test")]
    assert len(corpora.load_corpus("smoke", "all", cache_dir=tmp_path)) == 8
    assert len(corpora.load_corpus("smoke", "dev", cache_dir=tmp_path, n=3)) == 3


@needs_espeak
def test_vctk_like_speakers_are_round_robin(tmp_path) -> None:
    voices = corpora.VCTK_LIKE_VOICES
    utts = corpora.load_corpus("vctk-like", "dev", cache_dir=tmp_path, n=len(voices) + 1)
    _check_utterances(utts)
    assert [u.speaker for u in utts] == [*voices, voices[0]]
    again = corpora.vctk_like_corpus(tmp_path, "dev", 3)
    assert [u.id for u in again] == [u.id for u in utts[:3]]
    test = corpora.vctk_like_corpus(tmp_path, "test", 2, voices=("en-gb-x-rp",))
    assert {u.speaker for u in test} == {"en-gb-x-rp"} and not {u.text for u in test} & {u.text for u in utts}


@needs_hibari
def test_lj_like_single_voice(tmp_path) -> None:
    utts = corpora.load_corpus("lj-like", "test", cache_dir=tmp_path, n=2)
    _check_utterances(utts)
    assert {u.speaker for u in utts} == {corpora.LJ_LIKE_SPEAKER}
    assert [u.text for u in utts] == [s.text for s in corpora.sentences("test")[:2]]


# -- alsa --------------------------------------------------------------------------------------------------------


def test_alsa_transcript_from_file_name() -> None:
    assert corpora.alsa_transcript("/usr/share/sounds/alsa/Front_Center.wav") == "front center"
    assert corpora.alsa_transcript("Rear_Left.wav") == "rear left"


@needs_alsa
def test_alsa_real_clips() -> None:
    clips = corpora.load_corpus("alsa-real", "test")
    _check_utterances(clips)
    assert len(clips) == 8 and "noise" not in {c.text for c in clips}
    assert {c.text for c in clips} >= {"front center", "rear left", "side right"}
    assert all(0.5 < c.seconds < 5 for c in clips)


def test_alsa_missing_says_install(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install alsa-utils"):
        corpora.load_corpus("alsa-real", "test", cache_dir=tmp_path, directory=tmp_path)


# -- real corpora on tiny fake copies ----------------------------------------------------------------------------


def _fake_ljspeech(root: Path, n: int = 12) -> list[str]:
    (root / "wavs").mkdir(parents=True)
    ids = [f"LJ001-{i:04d}" for i in range(1, n + 1)]
    lines = [f'{uid}|Raw "text" no. {i}|Normalized "text" number {i}' for i, uid in enumerate(ids, start=1)]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for uid in ids:
        sf.write(str(root / "wavs" / f"{uid}.wav"), _tone(), 22_050, subtype="PCM_16")
    return ids


def test_ljspeech_split_cap_and_text(tmp_path) -> None:
    ids = _fake_ljspeech(tmp_path / "LJSpeech-1.1", n=60)
    dev = corpora.load_corpus("ljspeech", "dev", path=tmp_path / "LJSpeech-1.1")
    test = corpora.load_corpus("ljspeech", "test", path=tmp_path)  # the parent folder works too
    train = corpora.load_corpus("ljspeech", "train", path=tmp_path)
    _check_utterances(dev + test)
    assert {u.id for u in dev}.isdisjoint({u.id for u in test})
    assert not {u.id for u in train} & {u.id for u in dev + test}
    assert sorted(u.id for u in dev + test + train) == ids and dev and test
    assert len(train) > 2 * len(dev + test)  # about 80 % train
    assert all(len(u.audio) == int(0.3 * SAMPLE_RATE) for u in dev)
    first = next(u for u in dev + test + train if u.id == "LJ001-0001")
    assert first.text == 'Normalized "text" number 1' and first.speaker == "LJ"
    capped = corpora.load_corpus("ljspeech", "all", path=tmp_path, n=5)
    assert len(capped) == 5 and [u.id for u in capped] == sorted(u.id for u in capped)
    assert {u.id for u in corpora.load_corpus("ljspeech", "all", path=tmp_path, n=3)} <= {u.id for u in capped}
    for entry, (split, n, message) in itertools.product(corpora.ASR_DATASETS.values(), (
            ("valid", None, "unknown split 'valid'"), ("dev", -1, "non-negative"))):
        with pytest.raises(ValueError, match=message):  # every loader, called directly, checks before any work
            entry.load(tmp_path / "nothing here", split, n)
    assert [u.id for u in corpora.load_corpus("ljspeech", "all", path=tmp_path, n=5)] == [u.id for u in capped]


def test_ljspeech_missing_folder_and_corrupt_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="keithito.com") as info:
        corpora.load_corpus("ljspeech", "test", path=tmp_path / "nowhere")
    assert "metadata.csv" in str(info.value)
    _fake_ljspeech(tmp_path, n=3)
    (tmp_path / "wavs" / "LJ001-0002.wav").write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="LJ001-0002.wav"):
        corpora.load_corpus("ljspeech", "all", path=tmp_path)
    (tmp_path / "wavs" / "LJ001-0002.wav").unlink()
    with pytest.raises(FileNotFoundError, match="LJ001-0002.wav"):
        corpora.load_corpus("ljspeech", "all", path=tmp_path)


def _fake_vctk(root: Path, *, old: bool = False) -> list[str]:
    ids = []
    for spk in ("p225", "p226"):
        (root / "txt" / spk).mkdir(parents=True)
        audio = root / ("wav48" if old else "wav48_silence_trimmed") / spk
        audio.mkdir(parents=True)
        for k in range(1, 6):
            uid = f"{spk}_{k:03d}"
            ids.append(uid)
            (root / "txt" / spk / f"{uid}.txt").write_text(f"Please call Stella number {k}.\n", encoding="utf-8")
            if old:
                sf.write(str(audio / f"{uid}.wav"), _tone(sr=48_000), 48_000, subtype="PCM_16")
            else:
                sf.write(str(audio / f"{uid}_mic1.flac"), _tone(sr=48_000), 48_000, format="FLAC")
                sf.write(str(audio / f"{uid}_mic2.flac"), _tone(sr=48_000), 48_000, format="FLAC")
    return ids


@pytest.mark.parametrize("old", [False, True], ids=["0.92", "0.80"])
def test_vctk_layouts_and_split(tmp_path, old) -> None:
    ids = _fake_vctk(tmp_path, old=old)
    dev = corpora.load_corpus("vctk", "dev", path=tmp_path)
    test = corpora.load_corpus("vctk", "test", path=tmp_path)
    train = corpora.load_corpus("vctk", "train", path=tmp_path)
    _check_utterances(dev + test + train)
    assert sorted(u.id for u in dev + test + train) == ids
    # Both speakers read the same five sentences: a sentence lies in one split only, whoever reads it.
    texts = [{u.text for u in part} for part in (dev, test, train)]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    utt = next(u for u in dev + test + train if u.id == "p226_003")
    assert utt.speaker == "p226" and utt.text == "Please call Stella number 3."
    assert len(utt.audio) == int(0.3 * SAMPLE_RATE)
    assert len(corpora.load_corpus("vctk", "all", path=tmp_path, n=4)) == 4


def test_vctk_parent_of_the_unpacked_release(tmp_path) -> None:
    ids = _fake_vctk(tmp_path / "VCTK-Corpus-0.92")
    assert [u.id for u in corpora.load_corpus("vctk", "all", path=tmp_path)] == sorted(ids)


def test_streamed_training_split_reads_the_same_utterances(tmp_path) -> None:
    _fake_vctk(tmp_path)
    eager = corpora.load_corpus("vctk", "train", path=tmp_path)
    streamed = corpora.load_corpus("vctk", "train", path=tmp_path, stream=True)
    assert isinstance(streamed, corpora.OnDisk) and len(streamed) == len(eager)
    for a, b in zip(eager, streamed):
        assert (a.id, a.text, a.speaker) == (b.id, b.text, b.speaker)
        np.testing.assert_array_equal(a.audio, b.audio)
    assert [u.id for u in streamed[1:3]] == [u.id for u in eager[1:3]]


def test_vctk_missing_recording_is_skipped_with_warning(tmp_path) -> None:
    _fake_vctk(tmp_path)
    (tmp_path / "wav48_silence_trimmed" / "p225" / "p225_002_mic1.flac").unlink()
    with pytest.warns(UserWarning, match="p225_002"):
        utts = corpora.load_corpus("vctk", "all", path=tmp_path)
    assert len(utts) == 9 and "p225_002" not in {u.id for u in utts}
    assert len(corpora.load_corpus("vctk", "all", path=tmp_path, mic="mic2")) == 10


def test_vctk_missing_folder_and_corrupt_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="datashare.ed.ac.uk") as info:
        corpora.load_corpus("vctk", "test", path=tmp_path / "nowhere")
    assert "wav48_silence_trimmed" in str(info.value)
    (tmp_path / "txt").mkdir()
    with pytest.raises(FileNotFoundError, match="wav48"):
        corpora.load_corpus("vctk", "dev", path=tmp_path)
    _fake_vctk(tmp_path / "v")
    bad = tmp_path / "v" / "wav48_silence_trimmed" / "p226" / "p226_004_mic1.flac"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="p226_004_mic1.flac"):
        corpora.load_corpus("vctk", "all", path=tmp_path / "v")


# -- dispatcher --------------------------------------------------------------------------------------------------


def test_load_corpus_argument_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="known: smoke, lj-like, vctk-like, alsa-real, ljspeech, vctk"):
        corpora.load_corpus("librispeech", "test", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="none is given: set path=.*keithito.com"):
        corpora.load_corpus("ljspeech", "test", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"\$MAM_VCTK.*datashare.ed.ac.uk"):
        corpora.load_corpus("vctk", "test")
    with pytest.raises(ValueError, match="unknown ASR dataset 'esc50'"):
        corpora.load_corpus("esc50", "test", path=tmp_path)
    with pytest.raises(TypeError, match="seed"):
        corpora.load_corpus("smoke", "test", cache_dir=tmp_path, seed=1)
    with pytest.raises(ValueError, match="split"):
        corpora.load_corpus("smoke", "validation", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no train split"):
        corpora.load_corpus("alsa-real", "train")
    with pytest.raises(ValueError, match="non-negative"):
        corpora.load_corpus("smoke", "dev", cache_dir=tmp_path, n=-1)
