"""Zero-shot attention merging sweeps (Sec. 3.1–3.2, Sec. 4.1: Tables 1 and 2), shared by ASR and AEC.

A *rig* holds a preset's target model with one reversible :class:`~mamlib.merge.AttentionMerger` per source kind —
the real source and Table 1's three noise sources — built once. A *sweep* evaluates a grid of (source kind, λ,
layer subset, split) configurations through the resumable :class:`~mamlib.results.ResultStore` and returns one row
per configuration. :class:`ASRRig` scores recognizers by WER; :mod:`mamlib.zero_shot_aec` scores classifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from torch import nn

from mamlib import models
from mamlib.asr import CTCTranscriber, Transcriber, Utterance, evaluate_asr
from mamlib.config import CorpusSpec, MergeSetup, Preset
from mamlib.merge import AttentionMerger, AttentionWeights, evenly_spaced_layer_map
from mamlib.noise import noise_source
from mamlib.results import ResultStore, run_grid

#: Table 1's columns — the real source and the three noise sources — plus the optional norm-matched source.
SOURCE_LABELS: dict[str, str] = {
    "source": "Source",
    "noise-source": "N(Source)",
    "noise-target": "N(Target)",
    "noise-standard": "N(0,1)",
    "source-normed": "Source, norm-matched",
}
TABLE1_KINDS = ("source", "noise-source", "noise-target", "noise-standard")
SPLITS = ("dev", "test")


def source_kinds(setup: MergeSetup) -> tuple[str, ...]:
    """The source kinds a setup sweeps: Table 1's four, plus the norm-matched source when the setup asks for it."""
    return TABLE1_KINDS + ("source-normed",) if setup.norm_matched else TABLE1_KINDS


def build_mergers(
    target: nn.Module, source_model: nn.Module, setup: MergeSetup, kinds: Iterable[str] | None = None
) -> dict[str, AttentionMerger]:
    """One merger per source kind into ``target``; noise is shaped like the target's matrices (Sec. 4.1).

    Models of different depth get ``setup.layer_map`` or, when it is unset, the evenly spaced default.
    """
    source = AttentionWeights.from_model(source_model)
    original = AttentionWeights.from_model(target)
    layer_map = list(setup.layer_map) if setup.layer_map is not None else None
    if layer_map is None and source.num_layers != original.num_layers:
        layer_map = evenly_spaced_layer_map(original.num_layers, source.num_layers)
    mergers = {}
    for kind in source_kinds(setup) if kinds is None else kinds:
        if kind not in SOURCE_LABELS:
            raise ValueError(f"unknown source kind {kind!r}; known: {list(SOURCE_LABELS)}")
        if kind in ("source", "source-normed"):
            weights, lmap = source, layer_map
        else:
            weights = noise_source(kind.removeprefix("noise-"), original, source, seed=setup.noise_seed,
                                   pooling=setup.noise_pooling, layer_map=layer_map)
            lmap = None
        mergers[kind] = AttentionMerger(target, weights, layer_map=lmap, norm_matched=kind == "source-normed")
    return mergers


class Rig(Protocol):
    """What a sweep needs of a rig."""

    preset: Preset
    mergers: dict[str, AttentionMerger]

    @property
    def setup(self) -> MergeSetup: ...


def num_layers(rig: Rig) -> int:
    """Depth of the rig's target (its number of attention layers)."""
    return next(iter(rig.mergers.values())).num_layers


@dataclass
class ASRRig:
    """The preset's target recognizer with one reversible merger per source kind."""

    preset: Preset
    transcriber: Transcriber
    mergers: dict[str, AttentionMerger]

    @property
    def setup(self) -> MergeSetup:
        return self.preset.asr

    @property
    def num_layers(self) -> int:
        return num_layers(self)

    @classmethod
    def build(cls, preset: Preset, kinds: Iterable[str] | None = None) -> ASRRig:
        transcriber = models.build(preset.asr.target, preset.device)
        source_model = models.build(preset.asr.source, preset.device)
        return cls(preset, transcriber, build_mergers(transcriber.model, source_model, preset.asr, kinds))


def sweep_configs(
    rig: Rig,
    data: Mapping[str, Any],
    *,
    kinds: Sequence[str] | None = None,
    lambdas: Sequence[float] | None = None,
    layer_sets: Sequence[Sequence[int] | None] = (None,),
    splits: Sequence[str] = SPLITS,
) -> list[dict[str, Any]]:
    """The grid of configurations, each a complete description of what is computed (the results-store key).

    λ = 0 is the unmerged model whatever the source, so it appears once per split with source kind ``none``.
    The noise sources are baselines, never candidates for λ selection, so they are evaluated on test only.
    """
    setup = rig.setup
    kinds = [k for k in rig.mergers] if kinds is None else list(kinds)
    configs = []
    for split in splits:
        seen_baseline = False
        for layers in layer_sets:
            for kind in kinds:
                if split == "dev" and kind.startswith("noise"):
                    continue
                for lam in setup.lambdas if lambdas is None else lambdas:
                    baseline = lam == 0.0
                    if baseline and seen_baseline:
                        continue
                    seen_baseline |= baseline
                    configs.append({
                        "experiment": setup.experiment,
                        "preset": rig.preset.name,
                        "target": setup.target.as_dict(),
                        "source": "none" if baseline else kind,
                        "source_model": None if baseline else setup.source.as_dict(),
                        "noise": None if baseline or not kind.startswith("noise") else
                        {"seed": setup.noise_seed, "pooling": setup.noise_pooling},
                        "layer_map": list(setup.layer_map) if setup.layer_map else None,
                        "corpus": dict(data),
                        "split": split,
                        "lambda": float(lam),
                        "layers": None if baseline or layers is None else sorted(layers),
                    })
    return configs


def run_sweep(
    rig: Rig,
    data: Mapping[str, Any],
    label: str,
    evaluate: Callable[[str], dict[str, Any]],
    store: ResultStore,
    *,
    prepare: Callable[[str], Any] | None = None,
    **grid: Any,
) -> pd.DataFrame:
    """Evaluate :func:`sweep_configs` with ``evaluate(split)`` called inside each configuration's merge.

    ``prepare(split)``, if given, runs before the merge is applied (on the unmerged target), only for
    configurations that are not in the store yet.
    """

    def run(config: Mapping[str, Any]) -> dict[str, Any]:
        if prepare is not None:
            prepare(config["split"])
        merger = rig.mergers["source" if config["source"] == "none" else config["source"]]
        with merger.merged(config["lambda"], config["layers"]):
            return evaluate(config["split"])

    rows = run_grid(sweep_configs(rig, data, **grid), run, store, desc=f"{label} sweep")
    df = pd.DataFrame(rows)
    df["corpus"] = label
    df["layers"] = df["layers"].map(layer_label)
    return df


def interpolation_sweep(
    rig: ASRRig,
    corpus: CorpusSpec,
    utterances: Mapping[str, Sequence[Utterance]],
    store: ResultStore,
    *,
    reuse_prefix: bool = True,
    **grid: Any,
) -> pd.DataFrame:
    """An ASR sweep (kwargs as in :func:`sweep_configs`); WER in percent in column ``wer``.

    With ``reuse_prefix`` (default), a CTC target evaluated on layer subsets that leave the bottom layers unmerged
    computes the unchanged bottom once per split (:class:`~mamlib.prefix_cache.CachedCTCTranscriber`) — the
    transcripts are identical, the sweep faster.
    """
    grid.setdefault("splits", corpus.splits)
    starts = sorted({min(s) for s in grid.get("layer_sets", (None,)) if s})
    caches: dict[str, Transcriber] = {}

    def transcriber_for(split: str) -> Transcriber:
        if not (reuse_prefix and starts and isinstance(rig.transcriber, CTCTranscriber)):
            return rig.transcriber
        if split not in caches:  # called through ``prepare``: the target is unmerged here
            from mamlib.prefix_cache import CachedCTCTranscriber

            caches[split] = CachedCTCTranscriber(rig.transcriber, [u.audio for u in utterances[split]], starts,
                                                 batch_size=rig.setup.batch_size)
        return caches[split]

    def evaluate(split: str) -> dict[str, Any]:
        utts = utterances[split]
        report = evaluate_asr(transcriber_for(split), utts, batch_size=rig.setup.batch_size)
        return {
            "wer": 100.0 * report.wer,
            "substitutions": report.substitutions, "deletions": report.deletions,
            "insertions": report.insertions, "hits": report.hits, "n_utterances": len(utts),
            "ids": report.utterances["id"].tolist(),
            "references": report.utterances["reference"].tolist(),
            "hypotheses": report.utterances["hypothesis"].tolist(),
        }

    return run_sweep(rig, corpus.as_dict(), corpus.label, evaluate, store, prepare=transcriber_for, **grid)


def layer_label(layers: Sequence[int] | None) -> str:
    """How a layer subset is shown: ``all``, ``5``, ``12-19`` (a block) or ``1,4,7`` (a scattered pick)."""
    if layers is None:
        return "all"
    layers = sorted(layers)
    if len(layers) == 1:
        return str(layers[0])
    if layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))


def table1_block(df: pd.DataFrame, split: str = "test", value: str = "wer") -> pd.DataFrame:
    """Table 1's layout for one corpus: rows λ, columns Source / N(Source) / N(Target) / N(0,1), error (%).

    The λ = 0 row holds the unmerged model under "Source" and is empty for the noise columns, as in the paper.
    """
    part = df[(df["split"] == split) & (df["layers"] == "all")]
    base = part[part["source"] == "none"][value]
    table = part[part["source"] != "none"].pivot_table(index="lambda", columns="source", values=value)
    table.loc[0.0] = float("nan")
    if len(base):
        table.loc[0.0, "source"] = float(base.iloc[0])
    table = table.sort_index()[[k for k in SOURCE_LABELS if k in table.columns]]
    table.columns = [SOURCE_LABELS[c] for c in table.columns]
    table.index.name = "λ"
    return table


def choose_lambda(
    df: pd.DataFrame, kind: str = "source", layers: str = "all", dev: pd.DataFrame | None = None,
    value: str = "wer",
) -> dict[str, float]:
    """Sec. 4.1's protocol: the λ with the lowest dev error (ties → smaller λ), and the test error there and at λ=0.

    ``dev`` is the sweep whose dev split chooses λ (default: ``df`` itself, for corpora too small to split).
    """
    def rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
        frame = frame[frame["split"] == split]
        return frame[(frame["source"] == "none") | ((frame["source"] == kind) & (frame["layers"] == layers))]

    dev_rows = rows(df if dev is None else dev, "dev")
    if dev_rows.empty:
        raise ValueError("no dev split to choose λ on: pass the sweep of the corpus that selects it as dev=")
    best = dev_rows.sort_values([value, "lambda"]).iloc[0]
    lam = float(best["lambda"])
    test = rows(df, "test").set_index("lambda")[value]
    base, merged = float(test.loc[0.0]), float(test.loc[lam])
    return {"lambda": lam, "dev": float(best[value]), "test": merged, "test_unmerged": base,
            "relative_reduction": 100.0 * (base - merged) / base if base else float("nan")}


def scaled_blocks(num_layers: int, paper_layers: int = 24, size: int = 8, stride: int = 4) -> list[list[int]]:
    """Table 2's blocks of consecutive layers, scaled from the paper's model to one of ``num_layers`` layers.

    The paper merges 8-layer blocks every 4 layers of HuBERT-large's 24 (0–7, 4–11, …, 16–23), and 4- and 8-layer
    blocks of BEATs' 12. For another depth the block keeps its share of the model (size·L/paper_layers) and the
    stride its share, at least 1 layer.
    """
    if num_layers < 2:
        raise ValueError(f"a model of {num_layers} layer(s) has no proper subset of blocks")
    s = max(1, min(num_layers - 1, round(size * num_layers / paper_layers)))
    step = max(1, round(stride * num_layers / paper_layers))
    return [list(range(start, start + s)) for start in range(0, num_layers - s + 1, step)]


def layerwise_sweep(
    sweep: Callable[..., pd.DataFrame],
    lambdas: Sequence[float],
    blocks: Sequence[Sequence[int]],
    *,
    dev: pd.DataFrame | None = None,
    value: str = "wer",
) -> tuple[pd.DataFrame, float]:
    """Table 2's protocol: every block × every non-zero λ on dev, one λ chosen there (the lowest dev error over
    all blocks; ties → smaller λ), then every block at that λ on test. Returns the rows and the λ.

    ``sweep(**grid)`` runs a sweep of one corpus (e.g. ``functools.partial(interpolation_sweep, rig, corpus, utts,
    store)``); ``dev`` is the dev sweep of the corpus that chooses λ, for corpora without a dev split of their own.
    """
    lambdas = [x for x in lambdas if x > 0]
    if dev is None:
        dev = sweep(kinds=("source",), lambdas=lambdas, layer_sets=blocks, splits=("dev",))
    candidates = dev[(dev["split"] == "dev") & (dev["source"] == "source") & (dev["layers"] != "all")]
    lam = float(candidates.sort_values([value, "lambda"]).iloc[0]["lambda"])
    test = sweep(kinds=("source",), lambdas=[0.0, lam], layer_sets=blocks, splits=("test",))
    return pd.concat([dev, test], ignore_index=True), lam


def table2_block(df: pd.DataFrame, lam: float, split: str = "test", value: str = "wer") -> pd.Series:
    """Table 2's column for one corpus: error (%) per merged block at ``lam``, plus the unmerged "None" row."""
    part = df[df["split"] == split]
    merged = part[(part["source"] == "source") & (part["lambda"] == lam) & (part["layers"] != "all")]
    out = merged.drop_duplicates("layers").set_index("layers")[value]
    base = part[part["source"] == "none"][value]
    out.loc["None"] = float(base.iloc[0]) if len(base) else float("nan")
    out.index.name = "layers merged"
    return out


def default_store(cache_dir: str | Path) -> ResultStore:
    """The results store of a cache directory."""
    return ResultStore(Path(cache_dir) / "results")
