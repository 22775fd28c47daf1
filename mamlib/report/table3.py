"""Chapter 3 (Sec. 4.1, Table 3): layer similarities of paired audio and text, each metric's top-k picks, and the
picks merged at the dev-chosen λ."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mamlib.analysis.bootstrap import compare_to_unmerged, intervals_table
from mamlib.merge.families import attention_depth
from mamlib.merge.schedule import resolve_layer_map
from mamlib.models.build import build_model
from mamlib.report.chapter import Chapter
from mamlib.report.paper import paper_counterpart, paper_ks
from mamlib.selection.picks import METRIC_LABELS, layer_similarities, picks, picks_table, scaled_ks, table3_block
from mamlib.sweeps.grid import SweepGrid, layer_label, layers_phrase, results_config
from mamlib.sweeps.store import run_grid

NORMALIZATIONS = ("none", "l2")


@dataclass
class LayerPicks:
    """Similarity scores per corpus and the top-k picks per (corpus, normalization)."""

    scores: dict[str, pd.DataFrame]
    picked: dict[tuple[str, str], dict[tuple[str, int], list[int]]]
    #: The k values run per corpus, and the paper's for its matching dataset (Table 3 has its own per dataset).
    ks: dict[str, list[int]]
    paper_ks: dict[str, tuple[str, tuple[int, ...]]]
    #: :func:`table3_dev_choices` per Table 3 λ of each corpus, each made once.
    choices: dict[tuple, dict[str, PickChoice]] = field(default_factory=dict, repr=False, compare=False)

    def ks_table(self) -> pd.DataFrame:
        """Per corpus: the k values run here beside the paper's for its matching dataset."""
        return pd.DataFrame({label: {"k run here": ", ".join(map(str, ks)),
                                     "paper's dataset": self.paper_ks[label][0],
                                     "paper's k (24 layers)": ", ".join(map(str, self.paper_ks[label][1]))}
                             for label, ks in self.ks.items()}).T.rename_axis("corpus")

    def table(self) -> pd.DataFrame:
        """Which layers each metric picks: one row per corpus, normalization and metric, one column per k (rows
        grow with corpora and metrics, the width only with k)."""
        table = pd.concat({(label, "raw" if norm == "none" else "L2-normalized"): picks_table(p).T
                           for (label, norm), p in self.picked.items()}, names=["corpus", "scores", "metric"])
        return table.rename(columns=lambda k: f"k = {k}").rename_axis(columns=None)

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
    paper = {label: paper_counterpart(setup.corpora[label].dataset) or "LJ Speech" for label in ch.selectable}
    paper_k = {label: (dataset, paper_ks(dataset)) for label, dataset in paper.items()}
    ks = {label: scaled_ks(ch.depth("asr"), paper_k[label][1]) for label in ch.selectable}
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
                                   layer_map, batch_size=setup.batch_size, batch_seconds=setup.batch_seconds)
        return {"scores": table.to_dict("records")}

    configs = [results_config(ch.preset, setup, ch.preset.asr.corpora[label].as_dict(), "asr-similarity",
                              source_model=setup.source.as_dict(), split="dev", label=label)
               for label in ch.selectable]
    rows = run_grid(configs, score, ch.store, desc="layer similarities")
    scores = {row["label"]: pd.DataFrame(row["scores"]) for row in rows}
    picked = {(label, norm): picks(scores[label], ks[label], norm) for label in ch.selectable
              for norm in NORMALIZATIONS}
    return LayerPicks(scores, picked, ks, paper_k)


def asr_table3(ch: Chapter, lp: LayerPicks) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Table 3 per selectable corpus (the raw-score picks merged at the dev-chosen λ, test WER %) and each λ.

    Every pick is evaluated on dev too (:func:`table3_dev_choices`), so that the pick a verdict uses is chosen on
    dev."""
    blocks = {label: table3_block(ch.sweep(label), lp.picked[(label, "none")], lp.ks[label])
              for label in ch.selectable}
    tables, lambdas = {label: b[0] for label, b in blocks.items()}, {label: b[1] for label, b in blocks.items()}
    table3_dev_choices(ch, lp, lambdas)
    return tables, lambdas


@dataclass(frozen=True)
class PickChoice:
    """Table 3's pick chosen on dev for one corpus: metric, k, the layers it merges, λ, and its dev WER."""

    metric: str
    k: int
    layers: tuple[int, ...]
    lam: float
    dev: float

    @property
    def label(self) -> str:
        return f"{METRIC_LABELS[self.metric]}, k = {self.k} ({layers_phrase(layer_label(self.layers))})"


def pick_sets(lp: LayerPicks, label: str) -> tuple[tuple[int, ...], ...]:
    """The distinct layer sets that the raw-score picks of corpus ``label`` merge."""
    return tuple(sorted({tuple(v) for v in lp.picked[(label, "none")].values()}))


def pick_sweep(ch: Chapter, lp: LayerPicks, label: str, lambdas: tuple[float, ...], split: str = "test"
               ) -> pd.DataFrame:
    """Every distinct raw-score pick of corpus ``label`` merged at each of ``lambdas``, on ``split``."""
    return ch.sweep(label).run(SweepGrid(variants=("source",), lambdas=lambdas, layer_sets=pick_sets(lp, label),
                                         splits=(split,)))


def table3_dev_choices(ch: Chapter, lp: LayerPicks, lambdas: dict[str, float]) -> dict[str, PickChoice]:
    """Per selectable corpus, the (metric, k) whose pick has the lowest dev WER at the corpus's Table 3 λ (ties: the
    smaller k, then the paper's column order) — the choice made on dev that Sec. 4.1's protocol implies."""
    key = tuple(sorted(lambdas.items()))
    if key in lp.choices:
        return lp.choices[key]
    out = {}
    for label in ch.selectable:
        picked = lp.picked[(label, "none")]
        df = pick_sweep(ch, lp, label, (lambdas[label],), "dev")
        dev = {row["layers"]: float(row[ch.sweep(label).value]) for _, row in df.iterrows()
               if row["split"] == "dev" and row["source"] == "source"}
        metric, k = min(picked, key=lambda mk: (dev[layer_label(picked[mk])], mk[1], list(METRIC_LABELS).index(mk[0])))
        layers = tuple(picked[(metric, k)])
        out[label] = PickChoice(metric, int(k), layers, float(lambdas[label]), dev[layer_label(layers)])
    lp.choices[key] = out
    return out


def chosen_picks(ch: Chapter) -> tuple[LayerPicks, dict[str, PickChoice], dict[str, pd.DataFrame]]:
    """Table 3 as a verdict reads it: the picks, the pick chosen on dev per corpus, and every pick's test rows at
    its λ."""
    lp = layer_picks(ch)
    choices = table3_dev_choices(ch, lp, asr_table3(ch, lp)[1])
    return lp, choices, {label: pick_sweep(ch, lp, label, (0.0, c.lam)) for label, c in choices.items()}


def table3_intervals(ch: Chapter, lp: LayerPicks, lambdas: dict[str, float]) -> pd.DataFrame:
    """Paired bootstrap 95% intervals of every distinct pick (raw scores) against the unmerged model, at the λ each
    corpus's Table 3 used (read back from the results store)."""
    out = {}
    for label in ch.selectable:
        df = pick_sweep(ch, lp, label, (0.0, lambdas[label]))
        for s in pick_sets(lp, label):
            out[f"{label}: {layers_phrase(layer_label(s))} − unmerged"] = compare_to_unmerged(
                df, lambdas[label], layers=layer_label(s))
    return intervals_table(out)
