"""The clips of an audio-event-classification dataset: synthetic events (smoke), real CC0 recordings cut into
clips (mini) or ESC-50 (paper)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mamlib.aec.esc50 import ESC50_URL, Clip, identify_esc50, load_esc50
from mamlib.aec.sound_clips import animal_sound_clips
from mamlib.aec.synthetic import synthetic_clips
from mamlib.common.datasets import Dataset, pick

#: The registry's AEC entries (:class:`~mamlib.common.datasets.Dataset`).
AEC_DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("synthetic-aec", synthetic_clips, "ESC-50", made="synthetic (tones and noise)"),
    Dataset("animal-sounds", animal_sound_clips, "ESC-50",
            made="real (CC0 animal recordings and freedesktop event sounds)"),
    Dataset("esc50", load_esc50, "ESC-50", "MAM_ESC50",
            f"ESC-50 — {ESC50_URL} (the folder holding meta/esc50.csv and audio/, or the parquet copy ashraq/esc50)",
            identify_esc50, made="real (ESC-50)"),
)}


def load_clips(dataset: str, cache_dir: str | Path, path: str | None = None, *, path_setting: str = "aec.data.path",
               **options: Any) -> list[Clip]:
    """The clips of AEC ``dataset`` (:data:`AEC_DATASETS`), its loader called as ``load(folder, **options)``:
    ``path`` for a dataset read from a folder (ESC-50's folder or parquet file(s), named in error messages as
    ``path_setting``), else ``cache_dir`` (the packaged recordings of animal-sounds)."""
    entry = pick(AEC_DATASETS, dataset, "AEC dataset")
    return entry.load(entry.folder(path, cache_dir, path_setting), **options)
