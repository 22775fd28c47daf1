"""Zero-shot attention merging for audio event classification (Sec. 4.1: Table 1's and Table 2's ESC-50 parts).

The protocol (:mod:`mamlib.aec.head`): a linear head is trained once on the training folds with the *unmerged*
encoder; every merge configuration is then evaluated with that same head on the dev or test fold, so a change in
error comes from the merged attention alone. λ is chosen on the dev fold and reported on the test fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from mamlib.aec.data import load_clips
from mamlib.aec.encoders import AudioEncoder, audio_encoder, embed
from mamlib.aec.esc50 import Clip, FoldSplit, split_folds
from mamlib.aec.head import classification_error, labels, predict, train_linear_head
from mamlib.models.build import build_model
from mamlib.presets.schema import AECSetup, CorpusSpec, Preset
from mamlib.sweeps.grid import FULL_GRID, MergeRig, SweepGrid, run_sweep
from mamlib.sweeps.store import ResultStore


def preset_clips(spec: CorpusSpec, cache_dir: str | Path) -> list[Clip]:
    """The clips of a preset's ``aec.data``."""
    setting = spec.path_env or "aec.data.path"
    return load_clips(spec.dataset, cache_dir, spec.resolved_path(), path_setting=setting, **spec.options)


@dataclass(kw_only=True)
class AECRig(MergeRig):
    """The preset's frozen audio encoder, its clips split by fold, and one reversible merger per source variant, each
    built on first use."""

    cache_dir: Path
    _head: nn.Linear | None = field(default=None, repr=False)

    @classmethod
    def build(cls, preset: Preset, cache_dir: str | Path, variants: Iterable[str] | None = None) -> AECRig:
        if preset.aec is None:
            raise ValueError(f"preset {preset.name!r} has no 'aec' section")
        setup = preset.aec
        return cls(preset=preset, setup=setup, cache_dir=Path(cache_dir),
                   variants=tuple(setup.source_variants if variants is None else variants))

    @cached_property
    def encoder(self) -> AudioEncoder:
        return audio_encoder(build_model(self.setup.target, self.preset.device, self.setup.dtype))

    @cached_property
    def clips(self) -> FoldSplit:
        s = self.aec
        return split_folds(preset_clips(s.data, self.cache_dir), train=s.train_folds, dev=s.dev_fold, test=s.test_fold)

    @property
    def target_network(self) -> nn.Module:
        return self.encoder.model

    @property
    def aec(self) -> AECSetup:
        assert isinstance(self.setup, AECSetup)
        return self.setup

    def features(self, split: str) -> torch.Tensor:
        """Pooled encoder features of a split's clips, with the encoder as it is now (merged or not)."""
        return embed(self.encoder.encode, getattr(self.clips, split), batch_size=self.setup.batch_size)

    def head(self) -> nn.Linear:
        """The linear head, trained on the training folds with the unmerged encoder (call it unmerged)."""
        if self._head is None:
            n_classes = 1 + max(c.label for c in self.clips.train + self.clips.dev + self.clips.test)
            self._head = train_linear_head(self.features("train"), labels(self.clips.train),
                                           num_classes=n_classes, **self.aec.head)
        return self._head

    def data_key(self) -> dict[str, Any]:
        """Everything about the data and the head that a result depends on (part of every results-store key)."""
        s = self.aec
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

        def evaluate(split: str) -> dict[str, Any]:
            clips = getattr(rig.clips, split)
            feats = rig.features(split)
            head = rig.head()
            return {
                "error": classification_error(head, feats, labels(clips)),
                "n_clips": len(clips),
                "ids": [c.id for c in clips],
                "labels": [int(c.label) for c in clips],
                "predictions": predict(head, feats).tolist(),
            }

        return run_sweep(rig, rig.data_key(), rig.aec.data.label, evaluate, self.store, grid,
                         prepare=lambda split: rig.head())
