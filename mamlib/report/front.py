"""The front page's answer to "does it reproduce?": for every table of the paper that the book regenerates, the
headline comparison of this build beside the paper's.

Our side is read from the results store through the chapters' own protocols (:mod:`~mamlib.report.table1`,
:mod:`~mamlib.report.table2`, :mod:`~mamlib.report.table3`), with a store that only reads: a table whose results
this build did not compute is left out (and named), never computed here. The paper's side comes from the
transcribed tables of :mod:`mamlib.report.paper`. One headline per table, task and corpus:

* Table 1 — λ chosen on dev, test error there against the unmerged model (the paper: its best λ);
* Table 2 — the best block of layers against the unmerged model;
* Table 3 — the best data-driven pick (metric, k) against the unmerged model.

Our difference gets its paired 95% bootstrap interval (:mod:`mamlib.analysis.bootstrap`) where the rows it needs
are at hand, so the verdict can say whether a change is larger than resampling noise.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from mamlib.analysis.bootstrap import PairedInterval, compare_to_unmerged, select_row
from mamlib.merge.sources import source_variants
from mamlib.report.chapter import Chapter, open_chapter
from mamlib.report.paper import PAPER_DATASET_FOR, paper_table, paper_table3
from mamlib.report.paper import table1_block as paper_table1_block
from mamlib.report.table1 import aec_table1, asr_table1, dataset_of
from mamlib.report.table2 import aec_table2, asr_table2
from mamlib.report.table3 import asr_table3, layer_picks
from mamlib.selection.picks import METRIC_LABELS
from mamlib.sweeps.grid import SweepGrid, layer_label
from mamlib.sweeps.store import ResultStore

#: The chapter (page name, relative to the front page) that regenerates each table.
CHAPTERS: dict[str, str] = {
    "Table 1": "01_attention_interpolation",
    "Table 2": "02_layerwise_interpolation",
    "Table 3": "03_layer_selection",
    "Table 5": "04_finetuning",
}


class ResultsAbsent(LookupError):
    """A result the front page needs is not in the store (its chapter did not run on this preset and cache)."""


class StoredResults(ResultStore):
    """A results store that only reads: asking for a configuration it lacks raises :class:`ResultsAbsent` — before
    anything is evaluated, since the grid runner looks every configuration up first."""

    def get(self, config):  # type: ignore[override]
        result = super().get(config)
        if result is None:
            raise ResultsAbsent(f"no stored result for {config.get('experiment')} / {config.get('split')} / "
                                f"λ = {config.get('lambda')} / layers {config.get('layers')}")
        return result

    def put(self, config, result) -> None:  # type: ignore[override]
        raise ResultsAbsent("the front page never computes a result")


class _StoredChapter(Chapter):
    """A chapter whose sweeps only read the results store."""

    @cached_property
    def store(self) -> ResultStore:  # type: ignore[override]
        return StoredResults(self.cache / "results")


@dataclass
class Headline:
    """One headline comparison: our error unmerged and merged (at ``setting``) beside the paper's."""

    table: str
    task: str
    corpus: str
    setting: str
    base: float
    merged: float
    paper_dataset: str
    paper_setting: str
    paper_base: float
    paper_merged: float
    interval: PairedInterval | None = None
    #: For rows averaged over seeds (Table 5): whether the difference exceeds the seeds' spread (see
    #: :meth:`mamlib.report.table5.Table5.verdicts`); None for rows with a bootstrap interval.
    beyond_seed_noise: bool | None = None

    @staticmethod
    def relative(base: float, merged: float) -> float:
        """Relative change of the error, % (negative: fewer errors)."""
        return 100.0 * (merged - base) / base if base else float("nan")

    @property
    def change(self) -> float:
        return self.relative(self.base, self.merged)

    @property
    def paper_change(self) -> float:
        return self.relative(self.paper_base, self.paper_merged)

    @property
    def verdict(self) -> str:
        """Whether this build moves the error the way the paper does, and whether that is outside noise."""
        paper_down = self.paper_merged < self.paper_base
        if self.beyond_seed_noise is not None and self.merged != self.base:
            same = (self.merged < self.base) == paper_down
            if self.beyond_seed_noise:
                return ("yes: same direction" if same else "no: opposite direction") + ", beyond the seeds' spread"
            return ("same direction" if same else "opposite direction") + ", within the seeds' spread"
        if self.interval is not None and self.interval.excludes_zero:
            down = self.interval.high < 0.0
            if down == paper_down:
                return "yes: same direction, outside noise"
            return "no: opposite direction, outside noise"
        if self.merged == self.base:
            return "no change"
        same = (self.merged < self.base) == paper_down
        noise = ", within noise" if self.interval is not None else ""
        return ("same direction" if same else "opposite direction") + noise

    @property
    def reproduced(self) -> bool:
        return self.verdict.startswith("yes")

    @property
    def same_direction(self) -> bool:
        return self.verdict.startswith(("yes", "same direction"))


@dataclass
class Front:
    """Every headline of a build (``rows``) and the tables whose results were absent (``missing``)."""

    preset: str
    rows: list[Headline]
    missing: list[str] = field(default_factory=list)

    def table(self, links: bool = True) -> pd.DataFrame:
        """One row per headline (table and task, linked to the chapter): our setting, error and change, the
        paper's, and the verdict — HTML strings, narrow enough for the page."""
        e = html.escape
        records, index = [], []
        for r in self.rows:
            table = e(r.table)
            if links and r.table in CHAPTERS:
                table = f'<a href="{CHAPTERS[r.table]}.html">{table}</a>'
            index.append(f"{table} · {e(r.task)} · {e(r.corpus)}")  # one row per table, task and corpus
            records.append({
                f"ours ({self.preset})": (
                    f"<b>{e(r.corpus)}</b>: {e(r.setting)}<br>{r.base:.2f} → {r.merged:.2f} ({_pct(r.change)})"
                    + (f"<br>Δ {_interval(r.interval)}" if r.interval is not None else "")),
                "paper": (f"<b>{e(r.paper_dataset)}</b>: {e(r.paper_setting)}<br>"
                          f"{r.paper_base:.2f} → {r.paper_merged:.2f} ({_pct(r.paper_change)})"),
                "does it reproduce?": e(r.verdict),
            })
        return pd.DataFrame.from_records(records, index=pd.Index(index, name="paper table · task · corpus"),
                                         columns=[f"ours ({self.preset})", "paper", "does it reproduce?"])

    def styled(self, caption: str | None = None):
        if caption is None and not self.rows:
            caption = f"No table of this build ({self.preset}) has its results in the store"
        caption = caption or (f"This build ({self.preset}) beside the paper: error % unmerged → merged (relative "
                              "change; negative = fewer errors), Δ in points with its 95% interval")
        return self.table().style.set_caption(caption).set_properties(**{"text-align": "left"})

    def findings(self) -> dict[str, Any]:
        """The counts the front page's prose quotes."""
        return {"preset": self.preset, "n": len(self.rows), "reproduced": sum(r.reproduced for r in self.rows),
                "same_direction": sum(r.same_direction for r in self.rows),
                "tables": ", ".join(dict.fromkeys(r.table for r in self.rows)) or "none",
                "missing": ", ".join(self.missing) or "none"}


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:+.1f}%".replace("-", "−")


def _interval(iv: PairedInterval | None) -> str:
    if iv is None:
        return "–"
    return f"{iv.difference:+.2f} (95%: {iv.low:+.2f} to {iv.high:+.2f})".replace("-", "−")


def _dataset(ch: Chapter, label: str) -> str:
    return PAPER_DATASET_FOR.get(ch.preset.asr.corpora[label].dataset, "LJ Speech")


def _paper_unmerged(dataset: str) -> float:
    """The paper's unmerged error on ``dataset`` (Table 1's λ = 0 row)."""
    return float(paper_table1_block(dataset)[source_variants()["source"].label].loc[0.0])


def _paper_best_lambda(block: pd.DataFrame) -> tuple[float, float, float]:
    """The paper's Table 1 headline for one dataset: (best non-zero λ of the real source, error there, unmerged)."""
    col = block[source_variants()["source"].label].dropna()
    best = float(col.drop(index=0.0).idxmin())
    return best, float(col.loc[best]), float(col.loc[0.0])


def table1_headlines(ch: Chapter) -> list[Headline]:
    """Table 1: λ chosen on dev, test error there and unmerged, per ASR corpus and for the AEC clips."""
    parts = [("speech recognition", asr_table1(ch))]
    if ch.preset.aec is not None:
        parts.append(("audio events", aec_table1(ch)))
    rows = []
    for task, t1 in parts:
        for label, c in t1.choices.iterrows():
            lam = float(c["lambda"])
            p_lam, p_merged, p_base = _paper_best_lambda(t1.paper[label])
            rows.append(Headline(
                "Table 1", task, str(label), f"λ = {lam:.2f} (dev)", float(c["test_unmerged"]), float(c["test"]),
                dataset_of(t1.paper[label]), f"λ = {p_lam:.2f}", p_base, p_merged,
                compare_to_unmerged(t1.sweeps[label], lam)))
    return rows


def _paper_best_block(dataset: str) -> tuple[str, float, float, float]:
    part = paper_table("table2").query("dataset == @dataset")
    none = part[part["layers"] == "none"]["value"]
    blocks = part[part["layers"] != "none"]
    best = blocks.loc[blocks["value"].idxmin()]
    base = float(none.iloc[0]) if len(none) else _paper_unmerged(dataset)
    return str(best["layers"]), float(best["lambda"]), float(best["value"]), base


def table2_headlines(ch: Chapter) -> list[Headline]:
    """Table 2: the best block of layers (lowest test error at the dev-chosen λ) against the unmerged model."""
    rows = []
    t2 = asr_table2(ch)
    for (label, df), column in zip(t2.sweeps.items(), t2.ours.columns):
        col = t2.ours[column]
        best = col.drop("None").idxmin()
        lam = t2.lambdas[label]
        dataset = _dataset(ch, label)
        p_layers, p_lam, p_merged, p_base = _paper_best_block(dataset)
        rows.append(Headline(
            "Table 2", "speech recognition", label, f"layers {best}, λ = {lam:.2f}", float(col["None"]),
            float(col[best]), dataset, f"layers {p_layers}, λ = {p_lam:.2f}", p_base, p_merged,
            compare_to_unmerged(df, lam, layers=best)))
    if ch.preset.aec is not None:
        t2a = aec_table2(ch)
        col = t2a.ours.iloc[:, 0]
        best = col.drop("None").idxmin()
        p_layers, p_lam, p_merged, p_base = _paper_best_block("ESC-50")
        rows.append(Headline(
            "Table 2", "audio events", ch.preset.aec.data.label, f"layers {best}, λ = {t2a.lam:.2f}",
            float(col["None"]), float(col[best]), "ESC-50", f"layers {p_layers}, λ = {p_lam:.2f}", p_base, p_merged,
            compare_to_unmerged(t2a.sweep, t2a.lam, layers=best)))
    return rows


def _lowest(table: pd.DataFrame) -> tuple[tuple[Any, ...], float]:
    """The lowest cell of a table with rows (λ, k) and one column per metric: ((λ, k, metric), value); ties go to
    the earlier column, then the earlier row."""
    long = table.reset_index().melt(id_vars=list(table.index.names), var_name="metric", value_name="value")
    best = long.loc[long["value"].astype(float).idxmin()]
    return (*(best[n] for n in table.index.names), best["metric"]), float(best["value"])


def table3_headlines(ch: Chapter) -> list[Headline]:
    """Table 3: the best data-driven pick (metric, k) at the dev-chosen λ against the unmerged model."""
    lp = layer_picks(ch)
    tables, lambdas = asr_table3(ch, lp)
    metric_key = {v: k for k, v in METRIC_LABELS.items()}
    paper = paper_table3()
    rows = []
    for label, table in tables.items():
        (lam, k, metric), merged = _lowest(table)
        layers = lp.picked[(label, "none")][(metric_key[metric], int(k))]
        df = ch.sweep(label).run(SweepGrid(variants=("source",), lambdas=(0.0, float(lam)),
                                           layer_sets=(tuple(layers),), splits=("test",)))
        base = float(select_row(df, source="none")[ch.sweep(label).value])
        dataset = _dataset(ch, label)
        if dataset not in paper.index.get_level_values("dataset"):
            continue
        (p_lam, p_k, p_metric), p_merged = _lowest(paper.loc[dataset])
        rows.append(Headline(
            "Table 3", "speech recognition", label, f"{metric}, k = {int(k)} (layers {layer_label(layers)}), "
            f"λ = {float(lam):.2f}", base, merged, dataset, f"{p_metric}, k = {int(p_k)}, λ = {float(p_lam):.2f}",
            _paper_unmerged(dataset), p_merged,
            compare_to_unmerged(df, float(lam), layers=layer_label(layers))))
    return rows


def table5_headlines(ch: Chapter) -> list[Headline]:
    """Table 5: L-MAM + FT against plain FT (means over seeds), per fine-tuned task."""
    from mamlib.report.table5 import finetune_table5

    t5 = finetune_table5(ch, progress=False)
    stats = t5.stats().set_index(["corpus", "row"])
    paper = paper_table("table5")
    rows = []
    for label in t5.mam:
        dataset = PAPER_DATASET_FOR.get(t5.datasets[label])
        if dataset is None:
            continue
        ft, lm = stats.loc[(label, "ft")], stats.loc[(label, "l-mam")]
        task = "speech recognition" if label in ch.preset.asr.corpora else "audio events"
        p_ft, p_lm = (float(paper[dataset].iloc[i]) for i in (2, 4))
        rows.append(Headline(
            "Table 5", task, label, f"FT → L-MAM + FT, means of {int(ft['n'])} seeds", float(ft["mean"]),
            float(lm["mean"]), dataset, "FT → L-MAM + FT", p_ft, p_lm,
            beyond_seed_noise=t5.versus_ft(label)[2]))
    return rows


#: The tables the front page summarizes, in order, with the function that reads each one's headlines.
TABLES: dict[str, Callable[[Chapter], list[Headline]]] = {
    "Table 1": table1_headlines,
    "Table 2": table2_headlines,
    "Table 3": table3_headlines,
    "Table 5": table5_headlines,
}


def front_page(preset: str, cache_dir: str | os.PathLike[str] | None = None) -> Front:
    """Every headline of the build of ``preset`` whose results are in the store (see the module docstring)."""
    opened = open_chapter(preset, cache_dir, name="intro")
    ch = _StoredChapter(opened.preset, opened.cache, opened.name)
    rows: list[Headline] = []
    missing: list[str] = []
    for name, read in TABLES.items():
        try:
            rows += read(ch)
        except ResultsAbsent:
            missing.append(name)
    return Front(ch.preset.name, rows, missing)
