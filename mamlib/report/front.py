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
from mamlib.report.describe import signed
from mamlib.report.evidence import (
    Comparison,
    clear_results,
    identical_metric_picks,
    negative_results,
    noise_controls,
    resolution_table,
    sweep_comparisons,
)
from mamlib.report.paper import paper_counterpart, paper_table, paper_table3
from mamlib.report.paper import table1_block as paper_table1_block
from mamlib.report.table1 import aec_table1, asr_table1
from mamlib.report.table2 import aec_table2, asr_table2, dev_block_label
from mamlib.report.table3 import asr_table3, layer_picks, table3_dev_choices
from mamlib.sweeps.finetune import METHOD_LABELS
from mamlib.sweeps.grid import SweepGrid, layer_label, layers_phrase
from mamlib.sweeps.store import ResultStore

#: The chapter (page name, relative to the front page) that regenerates each table.
CHAPTERS: dict[str, str] = {
    "Table 1": "01_attention_interpolation",
    "Table 2": "02_layerwise_interpolation",
    "Table 3": "03_layer_selection",
    "Table 5": "04_finetuning",
}
#: The section of its chapter that holds each table, per task (the heading's anchor as Jupyter Book writes it).
ANCHORS: dict[tuple[str, str], str] = {
    ("Table 1", "speech recognition"): "table-1-speech-recognition",
    ("Table 1", "audio events"): "table-1-audio-event-classification",
    ("Table 2", "speech recognition"): "table-2-speech-recognition",
    ("Table 2", "audio events"): "table-2-audio-event-classification",
    ("Table 3", "speech recognition"): "table-3-speech-recognition",
    ("Table 5", "speech recognition"): "table-5",
    ("Table 5", "audio events"): "table-5",
}


def table_link(table: str, task: str) -> str | None:
    """The page and anchor of ``table``'s ``task`` part, relative to the front page (None: no chapter shows it)."""
    if table not in CHAPTERS:
        return None
    anchor = ANCHORS.get((table, task))
    return f"{CHAPTERS[table]}.html" + (f"#{anchor}" if anchor else "")


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

    def put(self, config, result, compute=None) -> None:  # type: ignore[override]
        raise ResultsAbsent("the front page never computes a result")


class _StoredChapter(Chapter):
    """A chapter whose sweeps only read the results store."""

    @cached_property
    def store(self) -> ResultStore:  # type: ignore[override]
        return StoredResults(self.cache / "results")


#: What a headline comparison found, in the order the front page counts them (see :attr:`Headline.outcome`).
OUTCOMES: dict[str, str] = {
    "harm": "more errors than the unmerged model, outside noise",
    "reproduced": "fewer errors as in the paper, outside noise",
    "absent": "no change found although the paper's effect was detectable here",
    "undetectable": "within noise, and the paper's effect is below what this test set can detect",
    "no-counterpart": "no counterpart in the paper",
    "identical": "identical results, with no spread to judge noise by",
    "not-merged": "dev chose not to merge",
}


@dataclass
class Headline:
    """One headline comparison, chosen on dev: our error unmerged and merged (at ``setting``) beside the paper's.

    Signs follow the book's one convention: Δ = merged − unmerged in points, negative = fewer errors; the relative
    change is Δ / unmerged. ``paper_dataset`` is None where the paper has no counterpart (same task, comparable
    data); the row then stands beside no paper number."""

    table: str
    task: str
    corpus: str
    setting: str
    base: float
    merged: float
    paper_dataset: str | None
    paper_setting: str = ""
    paper_base: float = float("nan")
    paper_merged: float = float("nan")
    interval: PairedInterval | None = None
    #: For rows averaged over seeds (Table 5): the standard error of the difference from the seeds' spread; a
    #: difference beyond twice it counts as outside noise (a rough screen with three seeds, not a test).
    seed_se: float | None = None
    #: False when dev chose λ = 0: the "merged" model is the unmerged one and nothing is compared.
    merged_model: bool = True

    @staticmethod
    def relative(base: float, merged: float) -> float:
        """Relative change of the error, % (negative: fewer errors)."""
        return 100.0 * (merged - base) / base if base else float("nan")

    @property
    def delta(self) -> float:
        return self.merged - self.base

    @property
    def change(self) -> float:
        return self.relative(self.base, self.merged)

    @property
    def paper_delta(self) -> float:
        return self.paper_merged - self.paper_base

    @property
    def paper_change(self) -> float:
        return self.relative(self.paper_base, self.paper_merged)

    @property
    def detectable(self) -> float | None:
        """The smallest difference (points) this comparison could tell from noise at 95 %: the paired test set's
        half-width (:func:`~mamlib.analysis.bootstrap.detectable_difference`), or twice the seeds' standard error."""
        if self.seed_se is not None:
            return 2.0 * self.seed_se if self.seed_se == self.seed_se else None
        return None if self.interval is None else self.interval.detectable

    @property
    def outside_noise(self) -> bool:
        if self.seed_se is not None:
            d = self.detectable
            return d is not None and self.delta != 0 and abs(self.delta) > d
        return self.interval is not None and self.interval.excludes_zero

    @property
    def items_needed(self) -> int | None:
        """Test items needed to detect the paper's effect at this test set's per-item variance (None: no paper
        effect to detect, or no per-item variance to scale)."""
        if self.interval is None or self.paper_dataset is None or not self.paper_delta:
            return None
        return self.interval.items_for(self.paper_delta)

    @property
    def outcome(self) -> str:
        """One key of :data:`OUTCOMES`. A harm is named whatever the paper says; "absent" means the paper's effect
        was at least as large as the smallest difference this test set detects and none was found."""
        if not self.merged_model:
            return "not-merged"
        if self.outside_noise and self.delta > 0:
            return "harm"
        if self.paper_dataset is None:
            return "no-counterpart"
        if self.outside_noise:
            return "reproduced" if (self.delta < 0) == (self.paper_delta < 0) else "harm"
        d = self.detectable
        if d is not None and d > 0 and abs(self.paper_delta) >= d:
            return "absent"
        return "undetectable" if d else "identical"

    @property
    def verdict(self) -> str:
        """The outcome in words, with the numbers that decide it."""
        o, d = self.outcome, self.detectable
        if o == "not-merged":
            return "dev chose not to merge (λ = 0 on dev): nothing to compare"
        res = f"±{d:.2f}" if d is not None else "unknown"
        if o == "harm":
            return f"harm: {signed(self.delta)} points, outside noise" + (
                f" (the paper: {signed(self.paper_delta)})" if self.paper_dataset else "")
        if o == "reproduced":
            return f"reproduced: fewer errors, outside noise (resolution {res})"
        if o == "no-counterpart":
            where = "outside" if self.outside_noise else "within"
            return f"no counterpart in the paper; {where} noise (resolution {res})"
        if o == "absent":
            return (f"not reproduced: the paper's {signed(self.paper_delta)} points was detectable here ({res}), "
                    "none found")
        if o == "identical":
            return "identical results: the rows compared gave the same errors, with no spread to judge noise by"
        needed = self.items_needed
        more = f"; ≈{needed:,} test items would detect it" if needed else ""
        return f"cannot tell: the paper's {signed(self.paper_delta)} points is below this set's {res}{more}"

    @property
    def reproduced(self) -> bool:
        return self.outcome == "reproduced"

    @property
    def same_direction(self) -> bool:
        return (self.merged_model and self.paper_dataset is not None and self.delta != 0
                and (self.delta < 0) == (self.paper_delta < 0))


@dataclass
class Front:
    """Every headline of a build (``rows``), the tables whose results were absent (``missing``) and the rows a
    table lacks (``gaps``: corpora the preset has but a table does not cover)."""

    preset: str
    rows: list[Headline]
    missing: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    evidence: Evidence | None = None

    def table(self, links: bool = True) -> pd.DataFrame:
        """One row per headline (linked to its table), harms first: our setting (chosen on dev), error and Δ with
        its interval, what the test set can detect, the paper's, and the verdict — HTML strings."""
        e = html.escape
        records, index = [], []
        order = list(OUTCOMES)
        for r in sorted(self.rows, key=lambda r: order.index(r.outcome)):
            name = f"{e(r.table)} · {e(r.task)} · {e(r.corpus)}"
            href = table_link(r.table, r.task) if links else None
            index.append(f'<a href="{href}">{name}</a>' if href else name)
            spread = (f"<br>Δ {_interval(r.interval)}" if r.interval is not None
                      else f"<br>Δ {signed(r.delta)} (seeds' sd of Δ {r.seed_se:.2f})" if r.seed_se is not None
                      else "")
            ours = (f"{e(r.setting)}<br>{r.base:.2f} → {r.merged:.2f}"
                    + (f" ({_pct(r.change)})" if r.merged_model else "") + spread)
            d = r.detectable
            detect = "–" if d is None else f"±{d:.2f}"
            if r.items_needed and r.merged_model:
                detect += f"<br>{r.items_needed:,} items for the paper's effect"
            paper = ("no counterpart in the paper" if r.paper_dataset is None else
                     f"<b>{e(r.paper_dataset)}</b>: {e(r.paper_setting)}<br>{r.paper_base:.2f} → "
                     f"{r.paper_merged:.2f} (Δ {signed(r.paper_delta)}, {_pct(r.paper_change)})")
            records.append({f"ours ({self.preset})": ours, "detectable": detect, "paper": paper,
                            "verdict": e(r.verdict)})
        columns = [f"ours ({self.preset})", "detectable", "paper", "verdict"]
        return pd.DataFrame.from_records(records, index=pd.Index(index, name="table · task · corpus"),
                                         columns=columns)

    def styled(self, caption: str | None = None):
        if caption is None and not self.rows:
            caption = f"No table of this build ({self.preset}) has its results in the store"
        caption = caption or (f"This build ({self.preset}) beside the paper, every setting chosen on dev: error % "
                              "unmerged → merged (relative change), Δ = merged − unmerged in points with its 95% "
                              "interval (negative = fewer errors); detectable = the smallest Δ the test set can tell "
                              "from noise at 95%")
        return self.table().style.set_caption(caption).set_properties(**{"text-align": "left"})

    def counts(self) -> dict[str, int]:
        """How many headlines fall under each outcome (:data:`OUTCOMES`)."""
        return {o: sum(r.outcome == o for r in self.rows) for o in OUTCOMES}

    def findings(self) -> dict[str, Any]:
        """The counts the front page's prose quotes."""
        counts = self.counts()
        parts = [f"{n} {OUTCOMES[o]}" for o, n in counts.items() if n]
        return {"preset": self.preset, "n": len(self.rows), "reproduced": counts["reproduced"],
                "same_direction": sum(r.same_direction for r in self.rows),
                "outcomes": "; ".join(parts) or "none",
                "tables": ", ".join(dict.fromkeys(r.table for r in self.rows)) or "none",
                "missing": ", ".join(self.missing) or "none",
                "gaps": "; ".join(self.gaps) or "none"}


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:+.1f}%".replace("-", "−")


def _interval(iv: PairedInterval | None) -> str:
    if iv is None:
        return "–"
    return f"{iv.difference:+.2f} (95%: {iv.low:+.2f} to {iv.high:+.2f})".replace("-", "−")


def _dataset(ch: Chapter, label: str) -> str | None:
    """The paper's dataset that corpus ``label`` (ASR, or the AEC clips) stands in for; None: no counterpart."""
    if label in ch.preset.asr.corpora:
        return paper_counterpart(ch.preset.asr.corpora[label].dataset)
    return paper_counterpart(ch.preset.aec.data.dataset) if ch.preset.aec is not None else None


def _paper_unmerged(dataset: str) -> float:
    """The paper's unmerged error on ``dataset`` (Table 1's λ = 0 row)."""
    return float(paper_table1_block(dataset)[source_variants()["source"].label].loc[0.0])


def _paper_best_lambda(dataset: str) -> tuple[float, float, float]:
    """The paper's Table 1 headline for one dataset: (best non-zero λ of the real source, error there, unmerged)."""
    col = paper_table1_block(dataset)[source_variants()["source"].label].dropna()
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
            dataset = _dataset(ch, str(label))
            paper = {}
            if dataset is not None:
                p_lam, p_merged, p_base = _paper_best_lambda(dataset)
                paper = {"paper_setting": f"λ = {p_lam:.2f}", "paper_base": p_base, "paper_merged": p_merged}
            rows.append(Headline(
                "Table 1", task, str(label), f"λ = {lam:.2f} (chosen on dev), all layers", float(c["test_unmerged"]),
                float(c["test"]), dataset, interval=compare_to_unmerged(t1.sweeps[label], lam),
                merged_model=lam > 0, **paper))
    return rows


def _paper_best_block(dataset: str) -> tuple[str, float, float, float]:
    part = paper_table("table2").query("dataset == @dataset")
    none = part[part["layers"] == "none"]["value"]
    blocks = part[part["layers"] != "none"]
    best = blocks.loc[blocks["value"].idxmin()]
    base = float(none.iloc[0]) if len(none) else _paper_unmerged(dataset)
    return str(best["layers"]), float(best["lambda"]), float(best["value"]), base


def _block_headline(task: str, corpus: str, dataset: str | None, df: pd.DataFrame, lam: float, block: str,
                    value: str) -> Headline:
    paper = {}
    if dataset is not None:
        p_layers, p_lam, p_merged, p_base = _paper_best_block(dataset)
        paper = {"paper_setting": f"{layers_phrase(p_layers)}, λ = {p_lam:.2f}", "paper_base": p_base,
                 "paper_merged": p_merged}
    base = float(select_row(df, source="none")[value])
    merged = float(select_row(df, lam=lam, layers=block)[value])
    setting = f"{layers_phrase(block)}, λ = {lam:.2f} (both chosen on dev)"
    return Headline("Table 2", task, corpus, setting, base, merged, dataset,
                    interval=compare_to_unmerged(df, lam, layers=block), **paper)


def table2_headlines(ch: Chapter) -> list[Headline]:
    """Table 2: the block chosen on dev (lowest dev error at the dev-chosen λ) against the unmerged model."""
    t2 = asr_table2(ch)
    rows = [_block_headline("speech recognition", label, _dataset(ch, label), df, t2.lambdas[label],
                            t2.chosen(label), "wer") for label, df in t2.sweeps.items()]
    if ch.preset.aec is not None:
        t2a = aec_table2(ch)
        rows.append(_block_headline("audio events", ch.preset.aec.data.label, _dataset(ch, ch.preset.aec.data.label),
                                    t2a.sweep, t2a.lam, dev_block_label(t2a.sweep, t2a.lam, value="error"), "error"))
    return rows


def _lowest(table: pd.DataFrame) -> tuple[tuple[Any, ...], float]:
    """The lowest cell of a table with rows (λ, k) and one column per metric: ((λ, k, metric), value); ties go to
    the earlier column, then the earlier row."""
    long = table.reset_index().melt(id_vars=list(table.index.names), var_name="metric", value_name="value")
    best = long.loc[long["value"].astype(float).idxmin()]
    return (*(best[n] for n in table.index.names), best["metric"]), float(best["value"])


def table3_headlines(ch: Chapter) -> list[Headline]:
    """Table 3: the data-driven pick (metric, k) chosen on dev, at the dev-chosen λ, against the unmerged model."""
    lp = layer_picks(ch)
    _, lambdas = asr_table3(ch, lp)
    paper = paper_table3()
    rows = []
    for label, choice in table3_dev_choices(ch, lp, lambdas).items():
        df = ch.sweep(label).run(SweepGrid(variants=("source",), lambdas=(0.0, choice.lam),
                                           layer_sets=(choice.layers,), splits=("test",)))
        value = ch.sweep(label).value
        dataset = _dataset(ch, label)
        extra = {}
        if dataset is not None and dataset in paper.index.get_level_values("dataset"):
            (p_lam, p_k, p_metric), p_merged = _lowest(paper.loc[dataset])
            extra = {"paper_setting": f"{p_metric}, k = {int(p_k)}, λ = {float(p_lam):.2f}",
                     "paper_base": _paper_unmerged(dataset), "paper_merged": p_merged}
        rows.append(Headline(
            "Table 3", "speech recognition", label, f"{choice.label}, λ = {choice.lam:.2f} (all chosen on dev)",
            float(select_row(df, source="none")[value]), float(select_row(df, lam=choice.lam,
                                                                          layers=layer_label(choice.layers))[value]),
            dataset if extra else None, interval=compare_to_unmerged(df, choice.lam, layers=layer_label(choice.layers)),
            **extra))
    return rows


def table5_headlines(ch: Chapter) -> list[Headline]:
    """Table 5: L-MAM + FT against plain FT (means over seeds), per fine-tuned task."""
    from mamlib.report.table5 import finetune_table5

    t5 = finetune_table5(ch, progress=False)
    stats = t5.stats().set_index(["corpus", "row"])
    paper = paper_table("table5")
    rows = []
    for label in t5.mam:
        dataset = paper_counterpart(t5.datasets[label])
        ft, lm = stats.loc[(label, "ft")], stats.loc[(label, "l-mam")]
        task = "speech recognition" if label in ch.preset.asr.corpora else "audio events"
        extra = {}
        if dataset is not None:
            p_ft, p_lm = (float(paper[dataset].iloc[i]) for i in (2, 4))
            extra = {"paper_setting": "FT → L-MAM + FT", "paper_base": p_ft, "paper_merged": p_lm}
        _, se, _ = t5.versus_ft(label)
        rows.append(Headline(
            "Table 5", task, label, f"FT → L-MAM + FT, means over {int(ft['n'])} seeds", float(ft["mean"]),
            float(lm["mean"]), dataset, seed_se=se, **extra))
    return rows


def table_gaps(ch: Chapter) -> list[str]:
    """Rows a table lacks: corpora of the preset that a headline table does not cover, and why."""
    gaps = []
    no_dev = [label for label in ch.preset.asr.corpora if label not in ch.selectable]
    if no_dev:
        gaps.append(f"Table 3 has no row for {', '.join(no_dev)} (no dev split of its own to score layers on)")
    ft = ch.preset.asr.finetune
    tuned = set(ft.corpora) if ft is not None else set()
    skipped = [label for label in ch.preset.asr.corpora if label not in tuned and label in ch.selectable]
    if skipped:
        why = "the preset fine-tunes " + (", ".join(sorted(tuned)) if tuned else "no ASR corpus")
        gaps.append(f"Table 5 has no row for {', '.join(skipped)} ({why})")
    if ch.preset.aec is not None and ch.preset.aec.finetune is None:
        gaps.append("Table 5 has no audio-events row (the preset does not fine-tune the AEC target)")
    return gaps


@dataclass
class Evidence:
    """What a reviewer reads first (:mod:`mamlib.report.evidence`): every clear result, harms first; what each test
    set can detect; the negative and null results."""

    clear: pd.DataFrame
    resolution: pd.DataFrame
    negatives: list[str]

    def clear_styled(self, preset: str):
        caption = (f"Every clear result of this build ({preset}): comparisons with the unmerged model on test whose "
                   "95% interval excludes zero, harms first (Δ = merged − unmerged, points)")
        table = self.clear
        if table.empty:  # one row that says so, not a header over nothing
            caption = f"No comparison of this build ({preset}) has a 95% interval that excludes zero"
            table = pd.DataFrame([{c: "–" for c in table.columns}]).assign(
                comparison="none: every interval of this build contains zero")
        return table.style.hide(axis="index").set_caption(caption).set_properties(**{"text-align": "left"})

    def negatives_markdown(self) -> str:
        return "\n".join(f"- {line}" for line in self.negatives) or "- none in this build"


def _guarded(read: Callable[[], Any], default: Any) -> Any:
    try:
        return read()
    except ResultsAbsent:
        return default


def evidence_of(ch: Chapter) -> Evidence:
    """Every comparison the chapters make with the unmerged model, read from the store, sorted into the front
    page's evidence (tables whose results are absent contribute nothing)."""
    from mamlib.report.table5 import finetune_table5

    comparisons: list[Comparison] = []
    sweeps: dict[str, pd.DataFrame] = {}
    dev_from: dict[str, str] = {}
    noise: dict[str, list[tuple[float, str, float, float]]] = {}
    dev_zero: list[str] = []
    parts = [("speech recognition", "wer", _guarded(lambda: asr_table1(ch), None))]
    if ch.preset.aec is not None:
        parts.append(("audio events", "error", _guarded(lambda: aec_table1(ch), None)))
    for task, value, t1 in parts:
        if t1 is None:
            continue
        for label, df in t1.sweeps.items():
            lam = float(t1.choices.loc[label, "lambda"])
            sweeps[label] = df
            if label in ch.preset.asr.corpora and ch.preset.asr.corpora[label].select_on:
                dev_from[label] = str(ch.preset.asr.corpora[label].select_on)
            comparisons += sweep_comparisons("Table 1", task, label, df, value=value, chosen=(lam, "all"),
                                             layers=["all"])
            noise[label] = noise_controls(label, df, value)
            if lam == 0:
                dev_zero.append(label)
    t2 = _guarded(lambda: asr_table2(ch), None)
    if t2 is not None:
        labels = [layer_label(b) for b in t2.blocks]
        for label, df in t2.sweeps.items():
            lam = t2.lambdas[label]
            comparisons += sweep_comparisons("Table 2", "speech recognition", label, df, value="wer",
                                             chosen=(lam, t2.chosen(label)), layers=labels, lambdas=[lam])
    if ch.preset.aec is not None:
        t2a = _guarded(lambda: aec_table2(ch), None)
        if t2a is not None:
            comparisons += sweep_comparisons(
                "Table 2", "audio events", ch.preset.aec.data.label, t2a.sweep, value="error",
                chosen=(t2a.lam, dev_block_label(t2a.sweep, t2a.lam, value="error")),
                layers=[x for x in t2a.sweep["layers"].unique() if x != "all"], lambdas=[t2a.lam])
    degenerate: list[str] = []

    def table3() -> None:
        lp = layer_picks(ch)
        _, lambdas = asr_table3(ch, lp)
        for label, choice in table3_dev_choices(ch, lp, lambdas).items():
            picked = lp.picked[(label, "none")]
            if identical_metric_picks(picked):
                degenerate.append(label)
            sets = tuple(sorted({tuple(v) for v in picked.values()}))
            df = ch.sweep(label).run(SweepGrid(variants=("source",), lambdas=(0.0, choice.lam), layer_sets=sets,
                                               splits=("test",)))
            comparisons.extend(sweep_comparisons(
                "Table 3", "speech recognition", label, df, value="wer",
                chosen=(choice.lam, layer_label(choice.layers)), layers=[layer_label(x) for x in sets],
                lambdas=[choice.lam]))

    _guarded(table3, None)
    learned: dict[str, tuple[float, float, float]] = {}
    worse: dict[str, list[tuple[str, float, float]]] = {}
    t5 = _guarded(lambda: finetune_table5(ch, progress=False), None)
    if t5 is not None:
        lam = t5.lambdas()
        for label in t5.mam:
            part = lam[lam["corpus"] == label]["λ"]
            if len(part):
                learned[label] = (t5.lambda_init[label], float(part.min()), float(part.max()))
        stats = t5.stats().set_index(["corpus", "row"])
        for label in t5.mam:
            base = float(stats.loc[(label, "none"), "mean"])
            rows = [(METHOD_LABELS[r], float(stats.loc[(label, r), "mean"]) - base, float(stats.loc[(label, r), "sd"]))
                    for r in ("ft", "mam-ft", "l-mam") if float(stats.loc[(label, r), "mean"]) > base]
            if rows:
                worse[label] = rows
    unique: dict[tuple[str, str], Comparison] = {}
    for c in comparisons:
        unique.setdefault((c.corpus, c.what), c)
    comparisons = list(unique.values())
    effects = {}
    for label in sweeps:
        dataset = _dataset(ch, label)
        if dataset is not None:
            _, merged, base = _paper_best_lambda(dataset)
            effects[label] = merged - base
    return Evidence(clear_results(comparisons), resolution_table(sweeps, comparisons, effects, dev_from),
                    negative_results(comparisons, noise, dev_zero, degenerate, learned, worse))


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
    return Front(ch.preset.name, rows, missing, table_gaps(ch), evidence_of(ch))
