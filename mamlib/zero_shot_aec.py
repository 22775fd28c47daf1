"""Zero-shot attention merging for audio event classification (Sec. 4.1: Table 1's and Table 2's ESC-50 parts).

The protocol (:mod:`mamlib.aec`): a linear head is trained once on the training folds with the *unmerged*
encoder; every merge configuration is then evaluated with that same head on the dev or test fold, so a change in
error comes from the merged attention alone. λ is chosen on the dev fold and reported on the test fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from mamlib import models
from mamlib.aec import classification_error, embed, labels, predict, synthetic_clips, train_linear_head
from mamlib.config import AECSetup, CorpusSpec, Preset
from mamlib.esc50 import Clip, FoldSplit, split_folds
from mamlib.merge import AttentionMerger
from mamlib.results import ResultStore
from mamlib.zero_shot import build_mergers, run_sweep

AEC_DATA_KINDS = ("synthetic-aec", "esc50", "animal-sounds")


def load_clips(spec: CorpusSpec, cache_dir: str | Path) -> list[Clip]:
    """The clips of an AEC data spec: ``synthetic-aec`` (smoke), ``esc50`` (paper; archive folder or parquet,
    ``path`` or ``path_env``) or ``animal-sounds`` (mini: real CC0 recordings cut into clips)."""
    if spec.kind == "synthetic-aec":
        return synthetic_clips(**spec.options)
    if spec.kind == "esc50":
        from mamlib.esc50 import load_esc50

        path = spec.resolved_path()
        if not path:
            raise FileNotFoundError(
                "ESC-50 is needed: set aec.data.path in the preset or the environment variable "
                f"{spec.path_env or 'MAM_ESC50'} to the ESC-50 folder (meta/esc50.csv + audio/) or its parquet "
                "copy; get it from https://github.com/karolpiczak/ESC-50"
            )
        return load_esc50(path, **spec.options)
    if spec.kind == "animal-sounds":
        from mamlib.sound_clips import animal_sound_clips

        return animal_sound_clips(cache_dir, **spec.options)
    raise ValueError(f"unknown AEC data kind {spec.kind!r}; known: {list(AEC_DATA_KINDS)}")


@dataclass
class AECRig:
    """The preset's frozen audio encoder, its clips split by fold, and one reversible merger per source kind."""

    preset: Preset
    encoder: models.AudioEncoder
    mergers: dict[str, AttentionMerger]
    clips: FoldSplit
    _head: nn.Linear | None = field(default=None, repr=False)

    @property
    def setup(self) -> AECSetup:
        assert self.preset.aec is not None
        return self.preset.aec

    @property
    def num_layers(self) -> int:
        return next(iter(self.mergers.values())).num_layers

    @classmethod
    def build(cls, preset: Preset, cache_dir: str | Path, kinds: Iterable[str] | None = None) -> AECRig:
        if preset.aec is None:
            raise ValueError(f"preset {preset.name!r} has no 'aec' section")
        setup = preset.aec
        encoder = models.build(setup.target, preset.device)
        source = models.build(setup.source, preset.device)
        mergers = build_mergers(encoder.model, source, setup, kinds)
        clips = split_folds(load_clips(setup.data, cache_dir), train=setup.train_folds, dev=setup.dev_fold,
                            test=setup.test_fold)
        return cls(preset, encoder, mergers, clips)

    def features(self, split: str) -> torch.Tensor:
        """Pooled encoder features of a split's clips, with the encoder as it is now (merged or not)."""
        return embed(self.encoder.encode, getattr(self.clips, split), batch_size=self.setup.batch_size)

    def head(self) -> nn.Linear:
        """The linear head, trained on the training folds with the unmerged encoder (call it unmerged)."""
        if self._head is None:
            n_classes = 1 + max(c.label for c in self.clips.train + self.clips.dev + self.clips.test)
            self._head = train_linear_head(self.features("train"), labels(self.clips.train),
                                           num_classes=n_classes, **self.setup.head)
        return self._head

    def data_key(self) -> dict[str, Any]:
        """Everything about the data and the head that a result depends on (part of every results-store key)."""
        s = self.setup
        return {**s.data.as_dict(), "head": dict(s.head),
                "folds": {"train": list(s.train_folds), "dev": s.dev_fold, "test": s.test_fold}}


def aec_sweep(rig: AECRig, store: ResultStore, **grid: Any) -> pd.DataFrame:
    """An AEC sweep (kwargs as in :func:`mamlib.zero_shot.sweep_configs`); error in percent in column ``error``."""

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

    return run_sweep(rig, rig.data_key(), rig.setup.data.label, evaluate, store,
                     prepare=lambda split: rig.head(), **grid)
