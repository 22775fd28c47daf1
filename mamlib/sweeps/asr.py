"""Speech-recognition sweeps: the preset's recognizer with its mergers, scored by WER on one corpus at a time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from mamlib.asr.recognizers import CTCTranscriber, Transcriber, Utterance, evaluate_asr
from mamlib.asr.transcribe import make_transcriber
from mamlib.asr.whisper import CachedWhisperTranscriber, WhisperTranscriber
from mamlib.presets.schema import ASRSetup, CorpusSpec, Preset
from mamlib.sweeps.grid import FULL_GRID, MergeRig, SweepGrid, run_sweep
from mamlib.sweeps.store import ResultStore


@dataclass(kw_only=True)
class ASRRig(MergeRig):
    """The preset's target recognizer with one reversible merger per source variant, built on first use."""

    setup: ASRSetup

    @classmethod
    def build(cls, preset: Preset, variants: Iterable[str] | None = None) -> ASRRig:
        return cls(preset=preset, setup=preset.asr, variants=None if variants is None else tuple(variants))

    @cached_property
    def transcriber(self) -> Transcriber:
        return make_transcriber(self.loaded, self.preset.device)

    @property
    def target_network(self) -> nn.Module:
        return self.transcriber.model

    def scores(self, transcriber: Transcriber, utterances: Sequence[Utterance]) -> dict[str, Any]:
        """WER (%) of ``transcriber`` on ``utterances`` batched as the setup says, its edit counts and transcripts
        (a sweep's row and a fine-tuned run's result alike)."""
        setup = self.setup
        report = evaluate_asr(transcriber, utterances, batch_size=setup.batch_size, batch_seconds=setup.batch_seconds)
        return {"wer": 100.0 * report.wer, "substitutions": report.substitutions, "deletions": report.deletions,
                "insertions": report.insertions, "hits": report.hits, "n_utterances": len(utterances),
                "ids": report.utterances["id"].tolist(), "references": report.utterances["reference"].tolist(),
                "hypotheses": report.utterances["hypothesis"].tolist()}


@dataclass
class ASRSweep:
    """One corpus of an :class:`ASRRig`: ``run(grid)`` returns a row per configuration, WER (%) in ``wer``.

    With ``reuse_prefix`` (default), the target computes what no configuration changes once per split
    (:class:`~mamlib.asr.prefix_cache.CachedCTCTranscriber` for CTC targets,
    :class:`~mamlib.asr.whisper.CachedWhisperTranscriber` for Whisper): the features and convolutions for all-layer
    merges (Table 1), and also the unmerged bottom layers for layer subsets (Tables 2 and 3) — the transcripts are
    identical, the sweep faster.
    """

    rig: ASRRig
    corpus: CorpusSpec
    utterances: Mapping[str, Sequence[Utterance]]
    store: ResultStore
    reuse_prefix: bool = True
    value: str = "wer"

    def run(self, grid: SweepGrid = FULL_GRID) -> pd.DataFrame:
        rig, starts = self.rig, grid.merged_layers()
        setup = rig.setup
        caches: dict[str, Transcriber] = {}

        def transcriber_for(split: str) -> Transcriber:
            if not (self.reuse_prefix and starts and isinstance(rig.transcriber, (CTCTranscriber, WhisperTranscriber))):
                return rig.transcriber
            if split not in caches:  # called through ``prepare``: the target is unmerged here
                from mamlib.asr.prefix_cache import CachedCTCTranscriber

                cached = (CachedCTCTranscriber if isinstance(rig.transcriber, CTCTranscriber)
                          else CachedWhisperTranscriber)
                caches[split] = cached(rig.transcriber, [u.audio for u in self.utterances[split]], starts,
                                       batch_size=setup.batch_size, batch_seconds=setup.batch_seconds)
            return caches[split]

        return run_sweep(rig, self.corpus.as_dict(), self.corpus.label,
                         lambda split: rig.scores(transcriber_for(split), self.utterances[split]), transcriber_for,
                         self.store, grid, self.corpus.splits)


def load_corpora(corpora: Mapping[str, CorpusSpec], cache_dir: str | Path) -> dict[str, dict[str, list[Utterance]]]:
    """Every corpus of a preset, by label and split, through :func:`mamlib.asr.corpora.load_corpus`."""
    from mamlib.asr.corpora import load_corpus

    return {label: {split: load_corpus(spec.dataset, split, cache_dir=cache_dir, path=spec.resolved_path(),
                                       n=spec.size(split), **spec.options)
                    for split in spec.splits}
            for label, spec in corpora.items()}
