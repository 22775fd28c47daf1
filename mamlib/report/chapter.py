"""One setup call per chapter: :func:`open_chapter` returns everything a chapter needs — the preset, the cache, the
results store, the rigs and corpora (built on first use) — plus its summary table and a glue helper for prose."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from mamlib.asr.recognizers import Utterance
from mamlib.common.paths import cache_root
from mamlib.presets.inputs import check_inputs
from mamlib.presets.schema import Preset, load_preset
from mamlib.sweeps.aec import AECRig, AECSweep
from mamlib.sweeps.asr import ASRRig, ASRSweep, load_corpora
from mamlib.sweeps.grid import results_config
from mamlib.sweeps.store import ResultStore, run_grid


@dataclass
class Chapter:
    """A chapter's view of one preset. ``variants`` limits the source variants its rigs merge (None: the preset's)."""

    preset: Preset
    cache: Path
    name: str = "ch"
    variants: Sequence[str] | None = None
    _sweeps: dict[str, ASRSweep] = field(default_factory=dict, repr=False)
    _depths: dict[str, int] = field(default_factory=dict, repr=False)

    @cached_property
    def store(self) -> ResultStore:
        """The results store in the cache: every sweep's configurations, computed once."""
        return ResultStore(self.cache / "results")

    @cached_property
    def asr_rig(self) -> ASRRig:
        return ASRRig.build(self.preset, self.variants)

    @cached_property
    def corpora(self) -> dict[str, dict[str, list[Utterance]]]:
        """The preset's ASR corpora by label and split."""
        return load_corpora(self.preset.asr.corpora, self.cache)

    def train_utterances(self, label: str) -> list[Utterance]:
        """The train split of ASR corpus ``label`` (fine-tuning, Table 5), ``n_train`` utterances of it; a real
        corpus's audio stays on disk until a micro-batch reads it."""
        from mamlib.asr.corpora import load_corpus

        spec = self.preset.asr.corpora[label]
        return load_corpus(spec.dataset, "train", cache_dir=self.cache, path=spec.resolved_path(), n=spec.n_train,
                           stream=True, **spec.options)

    def sweep(self, label: str) -> ASRSweep:
        """The sweep of ASR corpus ``label``."""
        if label not in self._sweeps:
            self._sweeps[label] = ASRSweep(self.asr_rig, self.preset.asr.corpora[label], self.corpora[label],
                                           self.store)
        return self._sweeps[label]

    @property
    def selectable(self) -> list[str]:
        """The ASR corpora with a dev split of their own (those that can choose λ or layers)."""
        return [label for label, spec in self.preset.asr.corpora.items() if spec.select_on is None]

    @cached_property
    def aec_rig(self) -> AECRig:
        return AECRig.build(self.preset, self.cache, self.variants)

    @cached_property
    def aec_sweep(self) -> AECSweep:
        return AECSweep(self.aec_rig, self.store)

    def depth(self, task: str) -> int:
        """The number of attention layers of the ``"asr"`` or ``"aec"`` target, stored by the target's configuration:
        a re-render whose results are all stored learns it without building the network."""
        if task not in ("asr", "aec"):
            raise ValueError(f"depth of which target? task must be 'asr' or 'aec', got {task!r}")
        if task not in self._depths:
            rig = self.asr_rig if task == "asr" else self.aec_rig
            config = results_config(self.preset, rig.setup, {}, f"{task}-target-depth")
            (row,) = run_grid([config], lambda _: {"num_layers": rig.num_layers}, self.store,
                              desc=f"{task} target depth", progress=False)
            self._depths[task] = int(row["num_layers"])
        return self._depths[task]

    def summary(self) -> pd.DataFrame:
        """A one-column table describing the preset, for the top of a chapter."""
        preset, a = self.preset, self.preset.asr
        rows = {
            "preset": preset.name,
            "target (speech)": f"{a.target.kind} {a.target.name}".strip(),
            "source (text)": f"{a.source.kind} {a.source.name}".strip(),
            "corpora": ", ".join(c.label if c.label == c.dataset else f"{c.label} ({c.dataset})"
                                 for c in a.corpora.values()),
            "λ grid": ", ".join(f"{x:.2f}" for x in a.lambdas),
            "noise moments": f"per {a.noise_pooling}, seed {a.noise_seed}",
            "layer map": "identity, or evenly spaced when depths differ" if a.layer_map is None
            else str(list(a.layer_map)),
            "device": preset.device,
            "dtype (targets)": a.dtype if preset.aec is None else f"ASR {a.dtype}, AEC {preset.aec.dtype}",
            "ASR batches": f"≤ {a.batch_size} clips"
            + ("" if a.batch_seconds is None else f", ≤ {a.batch_seconds:g} s of padded audio"),
        }
        if (e := preset.aec) is not None:
            rows.update({
                "AEC target (audio)": f"{e.target.kind} {e.target.name}".strip(),
                "AEC source (image)": f"{e.source.kind} {e.source.name}".strip(),
                "AEC clips": (e.data.label if e.data.label == e.data.dataset else f"{e.data.label} ({e.data.dataset})")
                + f"; folds {list(e.train_folds)} / {e.dev_fold} / {e.test_fold}",
                "AEC λ grid": ", ".join(f"{x:.2f}" for x in e.lambdas),
            })
        return pd.DataFrame({"value": rows})

    def glue(self, values: Mapping[str, Any]) -> None:
        """Glue every value under ``<chapter name>_<key>`` for ``{glue:text}`` references in the prose."""
        from myst_nb import glue

        for key, value in values.items():
            glue(f"{self.name}_{key}", value, display=False)


def open_chapter(preset: str, cache_dir: str | os.PathLike[str] | None = None, *, name: str = "ch",
                 variants: Iterable[str] | None = None) -> Chapter:
    """Load ``preset``, fail fast if its inputs are missing, and open the cache (see
    :func:`mamlib.common.paths.cache_root`)."""
    cfg = load_preset(preset)
    check_inputs(cfg)
    local = os.environ.get("LOCAL_RANK")
    if local is not None and cfg.device == "cuda":  # under ``accelerate launch``: ``cuda`` is this rank's GPU
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_device(int(local))
    return Chapter(cfg, cache_root(cache_dir), name, None if variants is None else tuple(variants))

