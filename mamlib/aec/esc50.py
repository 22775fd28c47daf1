"""ESC-50, the Audio Event Classification benchmark of the paper (Sec. 4; Tables 1, 2 and 5 report error on it).

ESC-50 (Piczak, 2015; the paper's ref. [36]) holds 2000 five-second environmental recordings in 50 balanced classes,
pre-arranged in five folds of 400 clips (clips cut from the same source recording share a fold). It is read here
from either of two local copies, never downloaded: the GitHub archive (:func:`load_esc50_archive`) or the Hugging
Face copy ``ashraq/esc50`` as parquet file(s) (:func:`load_esc50_parquet`), as :class:`Clip` s at 16 kHz. The
paper selects λ on a dev set and reports a held-out test set (Sec. 4.1) without naming the folds; mamlib's default
(:func:`split_folds`) trains the classification head on folds 1–3, selects on fold 4 and tests on fold 5."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mamlib.common.audio import SAMPLE_RATE, decode_audio, load_audio, resample
from mamlib.common.datasets import file_names, fingerprint
from mamlib.common.paths import unpacked_root

ESC50_URL = "https://github.com/karolpiczak/ESC-50"
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


def _archive_root(path: Path) -> Path | None:
    return unpacked_root(path, ("ESC-50-master",), lambda c: (c / "meta" / "esc50.csv").is_file())


def _parquet_files(path: Path) -> list[Path]:
    """The parquet file(s) at ``path`` (a file, or a folder's ``*.parquet`` in name order); FileNotFoundError, saying
    where to get ESC-50 and the layouts read, when there are none."""
    if files := ([path] if path.is_file() else sorted(path.glob("*.parquet"))):
        return files
    if path.is_dir():
        raise FileNotFoundError(f"{path} holds neither meta/esc50.csv nor *.parquet files. {_LAYOUT}")
    raise FileNotFoundError(f"ESC-50 not found at {path}. {_LAYOUT}")


def load_esc50(source: str | Path, *, folds: Iterable[int] | None = None, esc10: bool = False) -> list[Clip]:
    """ESC-50 clips from an archive folder or from parquet file(s) (a file, or a folder of ``*.parquet``).
    ``folds`` keeps only those folds; ``esc10=True`` keeps the ESC-10 subset (labels stay ESC-50 targets)."""
    archive = _archive_root(Path(source))
    load = load_esc50_parquet if archive is None else load_esc50_archive
    return load(archive or source, folds=folds, esc10=esc10)


@cache
def identify_esc50(path: str) -> dict[str, Any]:
    """ESC-50's release (archive or parquet) and the fingerprint of its metadata and file list (parquet: names and
    sizes)."""
    if (archive := _archive_root(Path(path))) is not None:
        return {"release": "ESC-50 archive",
                "fingerprint": fingerprint([(archive / "meta" / "esc50.csv").read_text(encoding="utf-8"),
                                            *file_names(archive / "audio", "*.wav")])}
    return {"release": "ESC-50 parquet",
            "fingerprint": fingerprint(f"{f.name}\t{f.stat().st_size}" for f in _parquet_files(Path(path)))}


def load_esc50_archive(root: str | Path, *, folds: Iterable[int] | None = None, esc10: bool = False) -> list[Clip]:
    """ESC-50 from the GitHub archive layout, in csv order: ``<root>/meta/esc50.csv`` (columns ``filename, fold,
    target, category, esc10, src_file, take``) and ``<root>/audio/<filename>.wav`` (44.1 kHz mono)."""
    root = Path(root)
    csv = root / "meta" / "esc50.csv"
    if not csv.is_file():
        raise FileNotFoundError(f"ESC-50 metadata not found: {csv}. {_LAYOUT}")
    meta = _select(pd.read_csv(csv), str(csv), folds, esc10)
    audio_dir = root / "audio"
    if absent := [name for name in meta["filename"] if not (audio_dir / name).is_file()]:
        raise FileNotFoundError(f"{len(absent)} audio file(s) listed in {csv} are missing from {audio_dir}, "
                                f"e.g. {absent[:3]}. {_LAYOUT}")
    return _clips(meta, lambda row: load_audio(audio_dir / row.filename))


def load_esc50_parquet(source: str | Path, *, folds: Iterable[int] | None = None, esc10: bool = False) -> list[Clip]:
    """ESC-50 from local parquet file(s) of the Hugging Face copy ``ashraq/esc50`` (a file, or a folder whose
    ``*.parquet`` shards are read in name order); the ``audio`` column holds ``{"bytes": ...}`` dicts (decoded
    ``{"array", "sampling_rate"}`` dicts and raw bytes are accepted too)."""
    path = Path(source)
    frames = []
    for shard in _parquet_files(path):
        try:
            frames.append(pd.read_parquet(shard))
        except ImportError as err:
            raise ImportError(f"reading {shard} needs a parquet engine: pip install pyarrow ({err})") from err
        except Exception as err:  # pyarrow raises its own error types for non-parquet files
            raise ValueError(f"{shard} is not a readable parquet file: {type(err).__name__}: {err}") from err
    meta = _select(pd.concat(frames, ignore_index=True), str(path), folds, esc10, extra=("audio",))
    return _clips(meta, lambda row: _decode_audio(row.audio, f"in {path}, row {row.filename}"))


def _clips(meta: pd.DataFrame, waveform: Callable[[Any], np.ndarray]) -> list[Clip]:
    return [Clip(waveform(row), int(row.target), int(row.fold), str(row.filename), str(row.category))
            for row in meta.itertuples(index=False)]


def _select(meta: pd.DataFrame, where: str, folds: Iterable[int] | None, esc10: bool,
            extra: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of ``folds`` (and of ESC-10) of metadata checked to have the ESC-50 columns and folds."""
    if absent := [c for c in (*CSV_COLUMNS, *extra) if c not in meta.columns]:
        raise ValueError(f"{where} lacks the ESC-50 column(s) {absent}; it has {list(meta.columns)}")
    if bad_folds := sorted(set(meta["fold"]) - set(FOLDS)):
        raise ValueError(f"{where}: folds must be 1-5, found {bad_folds}")
    if folds is not None:
        meta = meta[meta["fold"].isin(_check_folds(folds))]
    if esc10:
        if "esc10" not in meta.columns:
            raise ValueError(f"{where} has no esc10 column, so the ESC-10 subset cannot be selected")
        meta = meta[meta["esc10"].astype(bool)]
    return meta.reset_index(drop=True)


def _decode_audio(cell: object, where: str) -> np.ndarray:
    """A mono float32 waveform at 16 kHz from a parquet ``audio`` cell."""
    if isinstance(cell, dict) and cell.get("array") is not None:
        wave = np.asarray(cell["array"], dtype=np.float32)
        return resample(wave.mean(axis=-1) if wave.ndim > 1 else wave, int(cell["sampling_rate"]), SAMPLE_RATE)
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValueError(f"audio {where}: the cell holds no encoded bytes ({type(cell).__name__})")
    return decode_audio(io.BytesIO(data), where)


def _check_folds(folds: int | Iterable[int]) -> list[int]:
    out = [int(f) for f in ([folds] if isinstance(folds, int) else folds)]
    if bad := [f for f in out if f not in FOLDS]:
        raise ValueError(f"ESC-50 folds are {FOLDS}, got {bad}")
    return out


def split_folds(clips: Sequence[Clip], train: Iterable[int] = (1, 2, 3), dev: int | Iterable[int] = 4,
                test: int | Iterable[int] = 5) -> FoldSplit:
    """Split clips by fold: the head is trained on ``train`` folds, λ is selected on ``dev`` and the error reported
    on ``test`` (Sec. 4.1: "We use a dev set to select the interpolation λ and report results on a held-out test
    set"). The three fold sets must be disjoint; ``dev`` or ``test`` may be empty tuples."""
    parts = {name: set(_check_folds(folds)) for name, folds in (("train", train), ("dev", dev), ("test", test))}
    for (a, folds_a), (b, folds_b) in combinations(parts.items(), 2):
        if folds_a & folds_b:
            raise ValueError(f"fold(s) {sorted(folds_a & folds_b)} are in both {a} and {b}")
    return FoldSplit(*([c for c in clips if c.fold in folds] for folds in parts.values()))
