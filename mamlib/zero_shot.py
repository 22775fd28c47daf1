"""Zero-shot attention merging for ASR (Sec. 3.1–3.2, Sec. 4.1: Tables 1 and 2).

:class:`ASRRig` builds the models of a preset once — the target recognizer, the source's attention weights and the
three noise sources — and :func:`interpolation_sweep` evaluates a grid of (source kind, λ, layer subset) on the
dev and test splits of a corpus, through the resumable :class:`~mamlib.results.ResultStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mamlib import models
from mamlib.asr import Transcriber, Utterance, evaluate_asr
from mamlib.config import CorpusSpec, Preset
from mamlib.merge import AttentionMerger, AttentionWeights
from mamlib.noise import noise_source
from mamlib.results import ResultStore, run_grid

#: Table 1's columns: the real source and the three noise sources, by the key used in results.
SOURCE_LABELS: dict[str, str] = {
    "source": "Source",
    "noise-source": "N(Source)",
    "noise-target": "N(Target)",
    "noise-standard": "N(0,1)",
    "source-normed": "Source, norm-matched",
}


def source_kinds(preset: Preset) -> tuple[str, ...]:
    """The source kinds a preset sweeps: Table 1's four, plus the norm-matched source when the preset asks for it."""
    base = ("source", "noise-source", "noise-target", "noise-standard")
    return base + ("source-normed",) if preset.asr.norm_matched else base
SPLITS = ("dev", "test")


@dataclass
class ASRRig:
    """The preset's target recognizer with one reversible merger per source kind."""

    preset: Preset
    transcriber: Transcriber
    mergers: dict[str, AttentionMerger]

    @classmethod
    def build(cls, preset: Preset, kinds: Iterable[str] | None = None) -> ASRRig:
        setup = preset.asr
        transcriber = models.build(setup.target, preset.device)
        source_model = models.build(setup.source, preset.device)
        source = AttentionWeights.from_model(source_model)
        del source_model
        target = transcriber.model
        original = AttentionWeights.from_model(target)
        layer_map = list(setup.layer_map) if setup.layer_map is not None else None
        if layer_map is None and source.num_layers != original.num_layers:
            from mamlib.merge import evenly_spaced_layer_map

            layer_map = evenly_spaced_layer_map(original.num_layers, source.num_layers)
        mergers = {}
        for kind in source_kinds(preset) if kinds is None else kinds:
            if kind in ("source", "source-normed"):
                weights, lmap = source, layer_map
            else:
                noise = kind.removeprefix("noise-")
                weights = noise_source(noise, original, source, seed=setup.noise_seed, pooling=setup.noise_pooling,
                                       layer_map=layer_map)
                lmap = None
            mergers[kind] = AttentionMerger(target, weights, layer_map=lmap, norm_matched=kind == "source-normed")
        return cls(preset, transcriber, mergers)

    @property
    def num_layers(self) -> int:
        return next(iter(self.mergers.values())).num_layers


def sweep_configs(
    preset: Preset,
    corpus: CorpusSpec,
    *,
    kinds: Sequence[str] | None = None,
    lambdas: Sequence[float] | None = None,
    layer_sets: Sequence[Sequence[int] | None] = (None,),
    splits: Sequence[str] = SPLITS,
    experiment: str = "asr-interpolation",
) -> list[dict[str, Any]]:
    """The grid of configurations, each a complete description of what is computed (the results-store key).

    λ = 0 is the unmerged model whatever the source, so it appears once per split with source kind ``none``.
    """
    setup = preset.asr
    kinds = source_kinds(preset) if kinds is None else kinds
    configs = []
    for split in splits:
        seen_baseline = False
        for layers in layer_sets:
            for kind in kinds:
                for lam in lambdas if lambdas is not None else setup.lambdas:
                    baseline = lam == 0.0
                    if baseline and seen_baseline:
                        continue
                    seen_baseline |= baseline
                    configs.append({
                        "experiment": experiment,
                        "preset": preset.name,
                        "target": setup.target.as_dict(),
                        "source": "none" if baseline else kind,
                        "source_model": None if baseline else setup.source.as_dict(),
                        "noise": None if baseline or not kind.startswith("noise") else
                        {"seed": setup.noise_seed, "pooling": setup.noise_pooling},
                        "layer_map": list(setup.layer_map) if setup.layer_map else None,
                        "corpus": corpus.as_dict(),
                        "split": split,
                        "lambda": float(lam),
                        "layers": None if baseline or layers is None else sorted(layers),
                    })
    return configs


def interpolation_sweep(
    rig: ASRRig,
    corpus: CorpusSpec,
    utterances: Mapping[str, Sequence[Utterance]],
    store: ResultStore,
    **grid: Any,
) -> pd.DataFrame:
    """Evaluate :func:`sweep_configs` (kwargs passed on) and return one row per configuration, WER in percent."""
    grid.setdefault("splits", corpus.splits)
    configs = sweep_configs(rig.preset, corpus, **grid)

    def evaluate(config: Mapping[str, Any]) -> dict[str, Any]:
        utts = utterances[config["split"]]
        merger = rig.mergers["source" if config["source"] == "none" else config["source"]]
        with merger.merged(config["lambda"], config["layers"]):
            report = evaluate_asr(rig.transcriber, utts, batch_size=rig.preset.asr.batch_size)
        return {
            "wer": 100.0 * report.wer,
            "substitutions": report.substitutions, "deletions": report.deletions,
            "insertions": report.insertions, "hits": report.hits, "n_utterances": len(utts),
            "ids": report.utterances["id"].tolist(),
            "references": report.utterances["reference"].tolist(),
            "hypotheses": report.utterances["hypothesis"].tolist(),
        }

    rows = run_grid(configs, evaluate, store, desc=f"{corpus.label} sweep")
    df = pd.DataFrame(rows)
    df["corpus"] = corpus.label
    df["layers"] = df["layers"].map(layer_label)
    return df


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


def table1_block(df: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Table 1's layout for one corpus: rows λ, columns Source / N(Source) / N(Target) / N(0,1), WER (%).

    The λ = 0 row holds the unmerged model under "Source" and is empty for the noise columns, as in the paper.
    """
    part = df[(df["split"] == split) & (df["layers"] == "all")]
    base = part[part["source"] == "none"]["wer"]
    table = part[part["source"] != "none"].pivot_table(index="lambda", columns="source", values="wer")
    table.loc[0.0] = float("nan")
    if len(base):
        table.loc[0.0, "source"] = float(base.iloc[0])
    table = table.sort_index()[[k for k in SOURCE_LABELS if k in table.columns]]
    table.columns = [SOURCE_LABELS[c] for c in table.columns]
    table.index.name = "λ"
    return table


def choose_lambda(
    df: pd.DataFrame, kind: str = "source", layers: str = "all", dev: pd.DataFrame | None = None
) -> dict[str, float]:
    """Sec. 4.1's protocol: the λ with the lowest dev WER (ties → smaller λ), and the test WER there and at λ=0.

    ``dev`` is the sweep whose dev split chooses λ (default: ``df`` itself, for corpora too small to split).
    """
    def rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
        frame = frame[frame["split"] == split]
        return frame[(frame["source"] == "none") | ((frame["source"] == kind) & (frame["layers"] == layers))]

    dev_rows = rows(df if dev is None else dev, "dev")
    if dev_rows.empty:
        raise ValueError("no dev split to choose λ on: pass the sweep of the corpus that selects it as dev=")
    best = dev_rows.sort_values(["wer", "lambda"]).iloc[0]
    lam = float(best["lambda"])
    test = rows(df, "test").set_index("lambda")["wer"]
    base, merged = float(test.loc[0.0]), float(test.loc[lam])
    return {"lambda": lam, "dev_wer": float(best["wer"]), "test_wer": merged, "test_wer_baseline": base,
            "relative_reduction": 100.0 * (base - merged) / base if base else float("nan")}


def default_store(cache_dir: str | Path) -> ResultStore:
    """The results store of a cache directory."""
    return ResultStore(Path(cache_dir) / "results")


def scaled_blocks(num_layers: int, paper_layers: int = 24, size: int = 8, stride: int = 4) -> list[list[int]]:
    """Table 2's blocks of consecutive layers, scaled from the paper's model to one of ``num_layers`` layers.

    The paper merges 8-layer blocks every 4 layers of HuBERT-large's 24 (0–7, 4–11, …, 16–23). For another depth
    the block keeps its share of the model (size·L/24) and the stride its share of the block, at least 1 layer.
    """
    if num_layers < 2:
        raise ValueError(f"a model of {num_layers} layer(s) has no proper subset of blocks")
    s = max(1, min(num_layers - 1, round(size * num_layers / paper_layers)))
    step = max(1, round(stride * num_layers / paper_layers))
    return [list(range(start, start + s)) for start in range(0, num_layers - s + 1, step)]


def layerwise_sweep(
    rig: ASRRig,
    corpus: CorpusSpec,
    utterances: Mapping[str, Sequence[Utterance]],
    store: ResultStore,
    blocks: Sequence[Sequence[int]],
    *,
    dev: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, float]:
    """Table 2's protocol for one corpus: every block × every non-zero λ on dev, one λ chosen there (the lowest dev
    WER over all blocks; ties → smaller λ), then every block at that λ on test. Returns the rows and the λ.

    ``dev`` is the sweep of the corpus whose dev split chooses λ, for corpora without a dev split of their own.
    """
    lambdas = [x for x in rig.preset.asr.lambdas if x > 0]
    if dev is None:
        dev = interpolation_sweep(rig, corpus, utterances, store, kinds=("source",), lambdas=lambdas,
                                  layer_sets=blocks, splits=("dev",))
    candidates = dev[(dev["split"] == "dev") & (dev["source"] == "source") & (dev["layers"] != "all")]
    lam = float(candidates.sort_values(["wer", "lambda"]).iloc[0]["lambda"])
    test = interpolation_sweep(rig, corpus, utterances, store, kinds=("source",), lambdas=[0.0, lam],
                               layer_sets=blocks, splits=("test",))
    return pd.concat([dev, test], ignore_index=True), lam


def table2_block(df: pd.DataFrame, lam: float, split: str = "test") -> pd.Series:
    """Table 2's column for one corpus: WER (%) per merged block at ``lam``, plus the unmerged "None" row."""
    part = df[df["split"] == split]
    merged = part[(part["source"] == "source") & (part["lambda"] == lam) & (part["layers"] != "all")]
    out = merged.drop_duplicates("layers").set_index("layers")["wer"]
    base = part[part["source"] == "none"]["wer"]
    out.loc["None"] = float(base.iloc[0]) if len(base) else float("nan")
    out.index.name = "layers merged"
    return out
