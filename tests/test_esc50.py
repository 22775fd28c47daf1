"""mamlib.aec.esc50: the archive and parquet layouts, error messages, fold protocol."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mamlib.aec.esc50 import (
    ESC50_URL,
    Clip,
    load_esc50,
    load_esc50_archive,
    load_esc50_parquet,
    split_folds,
)

SR_FILE = 44_100  # ESC-50's own sample rate
ROWS = [  # filename, fold, target, category, esc10
    ("1-100032-A-0.wav", 1, 0, "dog", True),
    ("1-100038-A-14.wav", 1, 14, "chirping_birds", False),
    ("2-100648-A-43.wav", 2, 43, "car_horn", False),
    ("3-100018-A-31.wav", 3, 31, "mouse_click", False),
    ("4-102844-A-49.wav", 4, 49, "hand_saw", False),
    ("5-103415-A-2.wav", 5, 2, "pig", False),
]


def tone(i: int, seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(SR_FILE * seconds)) / SR_FILE
    return (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)).astype(np.float32)


def wav_bytes(wave: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, SR_FILE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def meta_frame() -> pd.DataFrame:
    df = pd.DataFrame(ROWS, columns=["filename", "fold", "target", "category", "esc10"])
    df["src_file"] = [name.split("-")[1] for name in df["filename"]]
    df["take"] = "A"
    return df


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "ESC-50-master"
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    meta_frame().to_csv(root / "meta" / "esc50.csv", index=False)
    for i, (name, *_rest) in enumerate(ROWS):
        (root / "audio" / name).write_bytes(wav_bytes(tone(i)))
    return root


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    pytest.importorskip("pyarrow")
    df = meta_frame()
    df["audio"] = [{"bytes": wav_bytes(tone(i)), "path": name} for i, (name, *_rest) in enumerate(ROWS)]
    path = tmp_path / "esc50.parquet"
    df.to_parquet(path)
    return path


def test_archive_loads_clips_at_16k(archive: Path) -> None:
    clips = load_esc50(archive)
    assert [c.id for c in clips] == [r[0] for r in ROWS]
    assert [c.label for c in clips] == [r[2] for r in ROWS]
    assert [c.fold for c in clips] == [r[1] for r in ROWS]
    assert clips[2].category == "car_horn"
    for c in clips:
        assert c.waveform.dtype == np.float32 and c.waveform.ndim == 1
        assert len(c.waveform) == 4000  # 0.25 s at 16 kHz
        assert c.seconds == pytest.approx(0.25)
    # the 300 Hz tone of clip 0 survives resampling: its spectrum peaks at 300 Hz (4 Hz bins)
    spectrum = np.abs(np.fft.rfft(clips[0].waveform))
    assert np.fft.rfftfreq(4000, 1 / 16000)[spectrum.argmax()] == pytest.approx(300, abs=4)


def test_the_folder_holding_the_unpacked_release_works_too(archive: Path) -> None:
    assert [c.id for c in load_esc50(archive.parent)] == [c.id for c in load_esc50(archive)]


def test_archive_filters(archive: Path) -> None:
    assert [c.fold for c in load_esc50_archive(archive, folds=[4, 5])] == [4, 5]
    assert [c.id for c in load_esc50_archive(archive, esc10=True)] == ["1-100032-A-0.wav"]
    with pytest.raises(ValueError, match="folds are"):
        load_esc50_archive(archive, folds=[6])


def test_parquet_matches_archive(archive: Path, parquet: Path) -> None:
    from_archive = load_esc50(archive)
    from_parquet = load_esc50(parquet)
    assert [(c.id, c.label, c.fold, c.category) for c in from_parquet] == [
        (c.id, c.label, c.fold, c.category) for c in from_archive
    ]
    for a, b in zip(from_archive, from_parquet, strict=True):
        np.testing.assert_array_equal(a.waveform, b.waveform)
    # a folder of shards works too, and filters apply
    shard_dir = parquet.parent / "shards"
    shard_dir.mkdir()
    df = pd.read_parquet(parquet)
    df.iloc[:3].to_parquet(shard_dir / "train-00000.parquet")
    df.iloc[3:].to_parquet(shard_dir / "train-00001.parquet")
    assert [c.id for c in load_esc50(shard_dir)] == [r[0] for r in ROWS]
    assert [c.fold for c in load_esc50_parquet(shard_dir, folds=[2, 3])] == [2, 3]


def test_parquet_with_decoded_arrays(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    df = meta_frame().iloc[:2].copy()
    df["audio"] = [{"array": tone(i).tolist(), "sampling_rate": SR_FILE} for i in range(2)]
    df.to_parquet(tmp_path / "decoded.parquet")
    clips = load_esc50_parquet(tmp_path / "decoded.parquet")
    assert [len(c.waveform) for c in clips] == [4000, 4000]


def test_missing_data_says_where_to_get_esc50(tmp_path: Path, archive: Path) -> None:
    with pytest.raises(FileNotFoundError, match=ESC50_URL) as err:
        load_esc50(tmp_path / "nowhere")
    assert "meta/esc50.csv" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither meta/esc50.csv nor"):
        load_esc50(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="metadata not found"):
        load_esc50_archive(tmp_path / "empty")
    (archive / "audio" / ROWS[3][0]).unlink()
    with pytest.raises(FileNotFoundError, match=f"1 audio file.*{ROWS[3][0]}"):
        load_esc50(archive)


def test_bad_metadata_and_parquet(tmp_path: Path, archive: Path) -> None:
    meta_frame().drop(columns=["target"]).to_csv(archive / "meta" / "esc50.csv", index=False)
    with pytest.raises(ValueError, match="lacks the ESC-50 column.*target"):
        load_esc50(archive)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    pytest.importorskip("pyarrow")
    with pytest.raises(ValueError, match="not a readable parquet file"):
        load_esc50_parquet(tmp_path / "junk.parquet")


def fake_clips() -> list[Clip]:
    return [Clip(np.zeros(10, np.float32), label=i % 7, fold=f, id=f"{f}-{i}") for f in range(1, 6) for i in range(4)]


def test_split_folds_is_a_disjoint_partition() -> None:
    clips = fake_clips()
    split = split_folds(clips)
    assert {c.fold for c in split.train} == {1, 2, 3}
    assert {c.fold for c in split.dev} == {4} and {c.fold for c in split.test} == {5}
    ids = [c.id for part in (split.train, split.dev, split.test) for c in part]
    assert sorted(ids) == sorted(c.id for c in clips) and len(set(ids)) == len(ids)
    other = split_folds(clips, train=(2, 3, 4, 5), dev=(), test=1)
    assert len(other.train) == 16 and other.dev == [] and len(other.test) == 4
    with pytest.raises(ValueError, match=r"fold\(s\) \[3\] are in both train and dev"):
        split_folds(clips, train=(1, 2, 3), dev=3)
    with pytest.raises(ValueError, match="folds are"):
        split_folds(clips, test=0)


def test_cross_validation_covers_each_fold_once() -> None:
    """ESC-50's standard 5-fold cross-validation through split_folds: train on four folds, test on the fifth."""
    clips = fake_clips()
    seen = []
    for k in range(1, 6):
        split = split_folds(clips, train=[f for f in range(1, 6) if f != k], dev=(), test=k)
        assert {c.fold for c in split.test} == {k}
        assert {c.fold for c in split.train} == set(range(1, 6)) - {k}
        assert not {c.id for c in split.train} & {c.id for c in split.test}
        seen.extend(c.id for c in split.test)
    assert sorted(seen) == sorted(c.id for c in clips)
