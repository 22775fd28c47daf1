"""Chapter 3 (Sec. 4.1, Table 3): layer similarities of paired audio and text, each metric's top-k picks, and the
picks merged at the dev-chosen λ."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mamlib.analysis.bootstrap import compare_to_unmerged, intervals_table
from mamlib.merge.families import attention_depth
from mamlib.merge.schedule import resolve_layer_map
from mamlib.models.build import build_model
from mamlib.report.chapter import Chapter
from mamlib.selection.picks import layer_similarities, picks, picks_table, scaled_ks, table3_block
from mamlib.sweeps.grid import SweepGrid, layer_label, results_config
from mamlib.sweeps.store import run_grid

NORMALIZATIONS = ("none", "l2")


@dataclass
class LayerPicks:
    """Similarity scores per corpus and the top-k picks per (corpus, normalization)."""

    scores: dict[str, pd.DataFrame]
    picked: dict[tuple[str, str], dict[tuple[str, int], list[int]]]
    ks: list[int]

    def table(self) -> pd.DataFrame:
        """Which layers each metric picks, one column group per corpus and normalization."""
        return pd.concat({f"{label} ({'raw' if norm == 'none' else 'L2'})": picks_table(p)
                          for (label, norm), p in self.picked.items()}, axis=1)

    def changed_by_normalization(self) -> dict[str, int]:
        """How many picks L2 normalization changes, out of how many."""
        labels = list(self.scores)
        changed = sum(self.picked[(c, "none")][key] != self.picked[(c, "l2")][key]
                      for c in labels for key in self.picked[(c, "none")])
        return {"changed": changed, "total": sum(len(self.picked[(c, "none")]) for c in labels)}


def layer_picks(ch: Chapter) -> LayerPicks:
    """Score every target layer against the text source on each selectable corpus's dev split, and pick.

    The scores are stored in the results store by their configuration (the text model is built only when some
    corpus's scores are missing), so a re-render reads them back."""
    rig, setup = ch.asr_rig, ch.preset.asr
    ks = scaled_ks(ch.depth("asr"))
    text = None

    def score(config: dict) -> dict:
        nonlocal text
        if text is None:
            text = build_model(setup.source, ch.preset.device)
            if text.tokenizer is None:
                raise ValueError(f"source model {setup.source.kind!r} has no tokenizer: layer selection needs a "
                                 "text source")
        layer_map = resolve_layer_map(setup.layer_map, ch.depth("asr"), attention_depth(text.model))
        table = layer_similarities(rig.transcriber, text.model, text.tokenizer, ch.corpora[config["label"]]["dev"],
                                   layer_map, batch_size=setup.batch_size,
                                   batch_seconds=setup.batch_seconds)
        return {"scores": table.to_dict("records")}

    configs = [results_config(ch.preset, setup, ch.preset.asr.corpora[label].as_dict(), "asr-similarity",
                              source_model=setup.source.as_dict(), split="dev", label=label)
               for label in ch.selectable]
    rows = run_grid(configs, score, ch.store, desc="layer similarities")
    scores = {row["label"]: pd.DataFrame(row["scores"]) for row in rows}
    picked = {(label, norm): picks(scores[label], ks, norm) for label in ch.selectable for norm in NORMALIZATIONS}
    return LayerPicks(scores, picked, ks)


def asr_table3(ch: Chapter, lp: LayerPicks) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Table 3 per selectable corpus (the raw-score picks merged at the dev-chosen λ, test WER %) and each λ."""
    blocks = {label: table3_block(ch.sweep(label), lp.picked[(label, "none")], lp.ks) for label in ch.selectable}
    return {label: b[0] for label, b in blocks.items()}, {label: b[1] for label, b in blocks.items()}


def table3_intervals(ch: Chapter, lp: LayerPicks, lambdas: dict[str, float]) -> pd.DataFrame:
    """Paired bootstrap 95% intervals of every distinct pick (raw scores) against the unmerged model, at the λ each
    corpus's Table 3 used (read back from the results store)."""
    out = {}
    for label in ch.selectable:
        sets = sorted({tuple(v) for v in lp.picked[(label, "none")].values()})
        df = ch.sweep(label).run(SweepGrid(variants=("source",), lambdas=(0.0, lambdas[label]), layer_sets=tuple(sets),
                                           splits=("test",)))
        for s in sets:
            out[f"{label}: layers {layer_label(s)} − unmerged"] = compare_to_unmerged(
                df, lambdas[label], layers=layer_label(s))
    return intervals_table(out)
