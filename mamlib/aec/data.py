"""The clips of an audio-event-classification dataset: synthetic events (smoke), real CC0 recordings cut into
clips (mini) or ESC-50 (paper)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mamlib.aec.esc50 import Clip

#: Every AEC dataset and the option keys it accepts.
DATA_OPTIONS: dict[str, frozenset[str]] = {
    "synthetic-aec": frozenset({"n_classes", "n_per_class", "seed", "seconds", "sample_rate"}),
    "esc50": frozenset({"folds", "esc10", "sample_rate"}),
    "animal-sounds": frozenset({"clip_seconds", "hop_seconds", "include_freedesktop", "classes", "gap_seconds",
                                "eval_hop_seconds", "min_rms_ratio"}),
}
ESC50_URL = "https://github.com/karolpiczak/ESC-50"


def load_clips(dataset: str, cache_dir: str | Path, path: str | None = None, *,
               path_setting: str = "aec.data.path",
               **options: Any) -> list[Clip]:
    """The clips of AEC ``dataset`` (:data:`DATA_OPTIONS`); ``path`` is ESC-50's folder or parquet file(s), named in
    error messages as ``path_setting``; ``cache_dir`` holds the packaged recordings of ``animal-sounds``."""
    if dataset not in DATA_OPTIONS:
        raise ValueError(f"unknown AEC dataset {dataset!r}; known: {sorted(DATA_OPTIONS)}")
    if dataset == "synthetic-aec":
        from mamlib.aec.synthetic import synthetic_clips

        return synthetic_clips(**options)
    if dataset == "esc50":
        from mamlib.aec.esc50 import load_esc50

        if not path:
            raise FileNotFoundError(
                f"ESC-50 is needed: set {path_setting} to the ESC-50 folder (meta/esc50.csv + audio/) or its "
                f"parquet copy; get it from {ESC50_URL}"
            )
        return load_esc50(path, **options)
    from mamlib.aec.sound_clips import animal_sound_clips

    return animal_sound_clips(Path(cache_dir), **options)
