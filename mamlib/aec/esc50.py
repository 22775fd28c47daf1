"""ESC-50, the Audio Event Classification benchmark of the paper (Sec. 4; Tables 1, 2 and 5 report error on it).

ESC-50 (Piczak, 2015; the paper's ref. [36]) holds 2000 five-second environmental recordings in 50 balanced classes,
pre-arranged in five folds of 400 clips (clips cut from the same source recording share a fold). It is read here
from either of two local copies, never downloaded:

* the archive of https://github.com/karolpiczak/ESC-50 — ``<root>/meta/esc50.csv`` (columns ``filename, fold,
  target, category, esc10, src_file, take``) and ``<root>/audio/<filename>.wav`` (44.1 kHz mono);
* the Hugging Face copy ``ashraq/esc50`` as local parquet file(s), whose rows carry the same columns plus an
  ``audio`` column holding ``{"bytes": <wav file>, "path": ...}``.

Every clip comes back as a :class:`Clip` with a float32 mono waveform at 16 kHz (what BEATs and Whisper take).

Fold protocol. The paper selects λ on a dev set and reports a held-out test set (Sec. 4.1) without naming the
folds; mamlib's default (:func:`split_folds`) trains the classification head on folds 1–3, selects on fold 4 and
tests on fold 5. :func:`cross_validation_splits` gives ESC-50's standard 5-fold cross-validation instead.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from mamlib.common.audio import SAMPLE_RATE, load_audio, resample
from mamlib.common.paths import unpacked_root

ESC50_URL = "https://github.com/karolpiczak/ESC-50"
NUM_CLASSES = 50
FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5)
CSV_COLUMNS: tuple[str, ...] = ("filename", "fold", "target", "category")

_LAYOUT = (
    f"Get ESC-50 from {ESC50_URL} (the archive {ESC50_URL}/archive/master.zip) and point to the unpacked folder, "
    "which must hold meta/esc50.csv and audio/*.wav (ESC-50-master/ or the folder holding it); or give local "
    "parquet file(s) of the Hugging Face copy ashraq/esc50."
)


@dataclass(frozen=True, eq=False)
class Clip:
    """One labelled clip: ``waveform`` float32 mono at 16 kHz, ``label`` the class index (ESC-50's ``target``),
    ``fold`` 1–5, ``id`` the file name, ``category`` the class name."""

    waveform: np.ndarray
    label: int
    fold: int
    id: str
    category: str = ""

    @property
    def seconds(self) -> float:
        return len(self.waveform) / SAMPLE_RATE


@dataclass(frozen=True)
class FoldSplit:
    """Train / dev / test clips of one fold assignment."""

    train: list[Clip]
    dev: list[Clip]
    test: list[Clip]


def load_esc50(
    source: str | Path,
    *,
    folds: Iterable[int] | None = None,
    esc10: bool = False,
    sample_rate: int = SAMPLE_RATE,
) -> list[Clip]:
    """ESC-50 clips from an archive folder or from parquet file(s) (a file, or a folder of ``*.parquet``).

    ``folds`` keeps only those folds; ``esc10=True`` keeps the ESC-10 subset (labels stay ESC-50 targets).
    FileNotFoundError, saying where to get ESC-50 and the expected layout, when nothing usable is at ``source``.
    """
    path = Path(source)
    archive = unpacked_root(path, ("ESC-50-master",), lambda c: (c / "meta" / "esc50.csv").is_file())
    if archive is not None:
        return load_esc50_archive(archive, folds=folds, esc10=esc10, sample_rate=sample_rate)
    if path.is_file() or (path.is_dir() and any(path.glob("*.parquet"))):
        return load_esc50_parquet(path, folds=folds, esc10=esc10, sample_rate=sample_rate)
    if path.is_dir():
        raise FileNotFoundError(f"{path} holds neither meta/esc50.csv nor *.parquet files. {_LAYOUT}")
    raise FileNotFoundError(f"ESC-50 not found at {path}. {_LAYOUT}")


def load_esc50_archive(
    root: str | Path,
    *,
    folds: Iterable[int] | None = None,
    esc10: bool = False,
    sample_rate: int = SAMPLE_RATE,
) -> list[Clip]:
    """ESC-50 from the GitHub archive layout ``<root>/meta/esc50.csv`` + ``<root>/audio/*.wav``, in csv order."""
    root = Path(root)
    csv = root / "meta" / "esc50.csv"
    if not root.is_dir():
        raise FileNotFoundError(f"ESC-50 folder not found: {root}. {_LAYOUT}")
    if not csv.is_file():
        raise FileNotFoundError(f"ESC-50 metadata not found: {csv}. {_LAYOUT}")
    meta = _select(_check_columns(pd.read_csv(csv), str(csv)), folds, esc10, str(csv))
    audio_dir = root / "audio"
    absent = [name for name in meta["filename"] if not (audio_dir / name).is_file()]
    if absent:
        raise FileNotFoundError(
            f"{len(absent)} audio file(s) listed in {csv} are missing from {audio_dir}, e.g. {absent[:3]}. {_LAYOUT}"
        )
    return [
        Clip(
            waveform=load_audio(audio_dir / row.filename, sample_rate),
            label=int(row.target),
            fold=int(row.fold),
            id=str(row.filename),
            category=str(row.category),
        )
        for row in meta.itertuples(index=False)
    ]


def load_esc50_parquet(
    source: str | Path,
    *,
    folds: Iterable[int] | None = None,
    esc10: bool = False,
    sample_rate: int = SAMPLE_RATE,
) -> list[Clip]:
    """ESC-50 from local parquet file(s) of the Hugging Face copy ``ashraq/esc50`` (a file, or a folder whose
    ``*.parquet`` shards are read in name order); the ``audio`` column holds ``{"bytes": ...}`` dicts (decoded
    ``{"array", "sampling_rate"}`` dicts and raw bytes are accepted too)."""
    path = Path(source)
    if path.is_dir():
        shards = sorted(path.glob("*.parquet"))
        if not shards:
            raise FileNotFoundError(f"no *.parquet files in {path}. {_LAYOUT}")
    elif path.is_file():
        shards = [path]
    else:
        raise FileNotFoundError(f"ESC-50 parquet not found: {path}. {_LAYOUT}")
    frames = []
    for shard in shards:
        try:
            frames.append(pd.read_parquet(shard))
        except ImportError as err:
            raise ImportError(f"reading {shard} needs a parquet engine: pip install pyarrow ({err})") from err
        except Exception as err:  # pyarrow raises its own error types for non-parquet files
            raise ValueError(f"{shard} is not a readable parquet file: {type(err).__name__}: {err}") from err
    meta = pd.concat(frames, ignore_index=True)
    where = str(path)
    meta = _select(_check_columns(meta, where, extra=("audio",)), folds, esc10, where)
    return [
        Clip(
            waveform=_decode_audio(row.audio, sample_rate, f"{where} row {row.filename}"),
            label=int(row.target),
            fold=int(row.fold),
            id=str(row.filename),
            category=str(row.category),
        )
        for row in meta.itertuples(index=False)
    ]


def _check_columns(meta: pd.DataFrame, where: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    absent = [c for c in (*CSV_COLUMNS, *extra) if c not in meta.columns]
    if absent:
        raise ValueError(f"{where} lacks the ESC-50 column(s) {absent}; it has {list(meta.columns)}")
    bad_folds = sorted(set(meta["fold"]) - set(FOLDS))
    if bad_folds:
        raise ValueError(f"{where}: folds must be 1-5, found {bad_folds}")
    return meta


def _select(meta: pd.DataFrame, folds: Iterable[int] | None, esc10: bool, where: str) -> pd.DataFrame:
    if folds is not None:
        wanted = _check_folds(folds)
        meta = meta[meta["fold"].isin(wanted)]
    if esc10:
        if "esc10" not in meta.columns:
            raise ValueError(f"{where} has no esc10 column, so the ESC-10 subset cannot be selected")
        meta = meta[meta["esc10"].astype(bool)]
    return meta.reset_index(drop=True)


def _decode_audio(cell: object, sample_rate: int, where: str) -> np.ndarray:
    """A mono float32 waveform at ``sample_rate`` from a parquet ``audio`` cell."""
    if isinstance(cell, dict) and cell.get("array") is not None:
        wave = np.asarray(cell["array"], dtype=np.float32)
        if wave.ndim > 1:
            wave = wave.mean(axis=-1)
        return resample(wave, int(cell["sampling_rate"]), sample_rate)
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValueError(f"{where}: audio cell holds no encoded bytes ({type(cell).__name__})")
    try:
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"{where}: cannot decode audio bytes: {err}") from err
    return resample(wave.mean(axis=1), sr, sample_rate)


def _check_folds(folds: Iterable[int]) -> list[int]:
    out = [int(f) for f in folds]
    bad = [f for f in out if f not in FOLDS]
    if bad:
        raise ValueError(f"ESC-50 folds are {FOLDS}, got {bad}")
    return out


def split_folds(
    clips: Sequence[Clip], train: Iterable[int] = (1, 2, 3), dev: int | Iterable[int] = 4, test: int | Iterable[int] = 5
) -> FoldSplit:
    """Split clips by fold: the head is trained on ``train`` folds, λ is selected on ``dev`` and the error reported
    on ``test`` (Sec. 4.1: "We use a dev set to select the interpolation λ and report results on a held-out test
    set"). The three fold sets must be disjoint; ``dev`` or ``test`` may be empty tuples."""
    parts = [_check_folds(train), _check_folds([dev] if isinstance(dev, int) else dev)]
    parts.append(_check_folds([test] if isinstance(test, int) else test))
    names = ("train", "dev", "test")
    for i in range(3):
        for j in range(i + 1, 3):
            shared = sorted(set(parts[i]) & set(parts[j]))
            if shared:
                raise ValueError(f"fold(s) {shared} are in both {names[i]} and {names[j]}")
    train_c, dev_c, test_c = ([c for c in clips if c.fold in set(p)] for p in parts)
    return FoldSplit(train_c, dev_c, test_c)


def cross_validation_splits(clips: Sequence[Clip], folds: Sequence[int] = FOLDS) -> Iterator[tuple[int, FoldSplit]]:
    """ESC-50's standard k-fold cross-validation: for each fold ``k``, train on the others and test on ``k``
    (``dev`` empty). Yields ``(k, split)``; average the test errors for the usual figure."""
    folds = _check_folds(folds)
    for k in folds:
        yield k, split_folds(clips, train=[f for f in folds if f != k], dev=(), test=k)
