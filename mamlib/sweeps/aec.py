"""Zero-shot attention merging for audio event classification (Sec. 4.1: Tables 1 and 2's ESC-50 parts): a linear
head trained once on the training folds with the *unmerged* encoder scores every merge configuration on the dev or
test fold (:mod:`mamlib.aec.head`), so a change in error comes from the merged attention alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from mamlib.aec.data import load_clips
from mamlib.aec.encoders import AudioEncoder, EncoderFn, audio_encoder, embed
from mamlib.aec.esc50 import Clip, FoldSplit, split_folds
from mamlib.aec.head import classification_error, labels, predict, train_linear_head
from mamlib.presets.schema import AECSetup, CorpusSpec, Preset
from mamlib.sweeps.grid import FULL_GRID, MergeRig, SweepGrid, run_sweep
from mamlib.sweeps.store import ResultStore


def preset_clips(spec: CorpusSpec, cache_dir: str | Path) -> list[Clip]:
    """The clips of a preset's ``aec.data``."""
    setting = spec.path_env or "aec.data.path"
    return load_clips(spec.dataset, cache_dir, spec.resolved_path(), path_setting=setting, **spec.options)


@dataclass(kw_only=True)
class AECRig(MergeRig):
    """The preset's frozen audio encoder, its clips split by fold, the linear head and one reversible merger per
    source variant, each built on first use."""

    setup: AECSetup
    cache_dir: Path
    _head: nn.Linear | None = field(default=None, repr=False)

    @classmethod
    def build(cls, preset: Preset, cache_dir: str | Path, variants: Iterable[str] | None = None) -> AECRig:
        if preset.aec is None:
            raise ValueError(f"preset {preset.name!r} has no 'aec' section")
        return cls(preset=preset, setup=preset.aec, cache_dir=Path(cache_dir),
                   variants=None if variants is None else tuple(variants))

    @cached_property
    def encoder(self) -> AudioEncoder:
        return audio_encoder(self.loaded)

    @cached_property
    def clips(self) -> FoldSplit:
        s = self.setup
        return split_folds(preset_clips(s.data, self.cache_dir), train=s.train_folds, dev=s.dev_fold, test=s.test_fold)

    @property
    def target_network(self) -> nn.Module:
        return self.encoder.model

    def head(self) -> nn.Linear:
        """The linear head, trained on the training folds with the unmerged encoder (call it unmerged)."""
        if self._head is None:
            n_classes = 1 + max(c.label for c in self.clips.train + self.clips.dev + self.clips.test)
            features = embed(self.encoder.encode, self.clips.train, batch_size=self.setup.batch_size)
            self._head = train_linear_head(features, labels(self.clips.train), num_classes=n_classes, **self.setup.head)
        return self._head

    def scores(self, encode: EncoderFn, head: nn.Module, clips: Sequence[Clip]) -> dict[str, Any]:
        """Classification error (%) of ``head`` on the pooled ``encode`` features of ``clips``, with the predictions
        (a sweep's row and a fine-tuned run's result alike)."""
        predictions = predict(head, embed(encode, clips, batch_size=self.setup.batch_size))
        truth = labels(clips)
        return {"error": classification_error(predictions, truth), "n_clips": len(clips),
                "ids": [c.id for c in clips], "labels": truth.tolist(), "predictions": predictions.tolist()}

    def data_key(self) -> dict[str, Any]:
        """Everything about the data and the head that a result depends on (part of every results-store key)."""
        s = self.setup
        return {**s.data.as_dict(), "head": dict(s.head),
                "folds": {"train": list(s.train_folds), "dev": s.dev_fold, "test": s.test_fold}}


@dataclass
class AECSweep:
    """The clips of an :class:`AECRig`: ``run(grid)`` returns a row per configuration, error (%) in ``error``."""

    rig: AECRig
    store: ResultStore
    value: str = "error"

    def run(self, grid: SweepGrid = FULL_GRID) -> pd.DataFrame:
        rig = self.rig
        return run_sweep(rig, rig.data_key(), rig.setup.data.label,
                         lambda split: rig.scores(rig.encoder.encode, rig.head(), getattr(rig.clips, split)),
                         lambda split: rig.head(), self.store, grid)
