"""The front page's answer to "does it reproduce?": for every table of the paper that the book regenerates, the
headline comparison of this build beside the paper's, and the evidence behind it (:mod:`mamlib.report.evidence`).

Our side is read from the results store through the chapters' own protocols (:mod:`~mamlib.report.table1`,
:mod:`~mamlib.report.table2`, :mod:`~mamlib.report.table3`, :mod:`~mamlib.report.table5`), once per front page
(:class:`Tables`), with a store that only reads: a table whose results this build did not compute is left out (and
named), never computed here. The paper's side comes from the transcribed tables of :mod:`mamlib.report.paper`. One
headline per table, task and corpus:

* Table 1 — λ chosen on dev, test error there against the unmerged model (the paper: its best λ);
* Table 2 — the best block of layers against the unmerged model;
* Table 3 — the best data-driven pick (metric, k) against the unmerged model;
* Table 5 — L-MAM + FT against plain FT, means over seeds.

Our difference gets its paired 95% bootstrap interval (:mod:`mamlib.analysis.bootstrap`) where the rows it needs
are at hand, so the verdict can say whether a change is larger than resampling noise.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from mamlib.analysis.bootstrap import PairedInterval, compare_to_unmerged, select_row
from mamlib.merge.sources import source_variants
from mamlib.report.chapter import Chapter, open_chapter
from mamlib.report.describe import signed
from mamlib.report.evidence import (
    Comparison,
    Evidence,
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
from mamlib.report.table3 import chosen_picks, pick_sets
from mamlib.report.table5 import ROWS, finetune_table5
from mamlib.sweeps.choose import relative_change
from mamlib.sweeps.finetune import METHOD_LABELS, METHODS
from mamlib.sweeps.grid import layer_label, layers_phrase
from mamlib.sweeps.store import ResultStore

#: The chapter (page name, relative to the front page) that regenerates each table.
CHAPTERS: dict[str, str] = {
    "Table 1": "01_attention_interpolation",
    "Table 2": "02_layerwise_interpolation",
    "Table 3": "03_layer_selection",
    "Table 5": "04_finetuning",
}
#: Each task's section of a chapter, as its heading's anchor ends (Jupyter Book's "table-1-speech-recognition").
SECTIONS: dict[str, str] = {"speech recognition": "speech-recognition", "audio events": "audio-event-classification"}


def table_link(table: str, task: str) -> str | None:
    """The page and anchor of ``table``'s ``task`` part, relative to the front page (None: no chapter shows it)."""
    if table not in CHAPTERS:
        return None
    anchor = table.lower().replace(" ", "-") + ("" if table == "Table 5" else f"-{SECTIONS[task]}")
    return f"{CHAPTERS[table]}.html#{anchor}"


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

    @property
    def delta(self) -> float:
        return self.merged - self.base

    @property
    def paper_delta(self) -> float:
        return self.paper_merged - self.paper_base

    @property
    def detectable(self) -> float | None:
        """The smallest difference (points) this comparison could tell from noise at 95 %: the paired test set's
        half-width (:func:`~mamlib.analysis.bootstrap.detectable_difference`), or twice the seeds' standard error."""
        if self.seed_se is not None:
            return 2.0 * self.seed_se if self.seed_se == self.seed_se else None
        return None if self.interval is None else self.interval.detectable

    @property
    def outside_noise(self) -> bool:
        if self.seed_se is not None:  # one seed (NaN) tells nothing: no detectable difference
            return (d := self.detectable) is not None and abs(self.delta) > d
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
        d, paper, needed = self.detectable, signed(self.paper_delta), self.items_needed
        res = f"±{d:.2f}" if d is not None else "unknown"
        return {
            "not-merged": "dev chose not to merge (λ = 0 on dev): nothing to compare",
            "harm": f"harm: {signed(self.delta)} points, outside noise"
                    + (f" (the paper: {paper})" if self.paper_dataset else ""),
            "reproduced": f"reproduced: fewer errors, outside noise (resolution {res})",
            "no-counterpart": f"no counterpart in the paper; {'outside' if self.outside_noise else 'within'} noise "
                              f"(resolution {res})",
            "absent": f"not reproduced: the paper's {paper} points was detectable here ({res}), none found",
            "identical": "identical results: the rows compared gave the same errors, with no spread to judge noise by",
            "undetectable": f"cannot tell: the paper's {paper} points is below this set's {res}"
                            + (f"; ≈{needed:,} test items would detect it" if needed else ""),
        }[self.outcome]


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:+.1f}%".replace("-", "−")


@dataclass
class Front:
    """Every headline of a build (``rows``), the tables whose results were absent (``missing``), the rows a table
    lacks (``gaps``: corpora the preset has but a table does not cover) and the evidence."""

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
        for r in sorted(self.rows, key=lambda r: list(OUTCOMES).index(r.outcome)):
            name = f"{e(r.table)} · {e(r.task)} · {e(r.corpus)}"
            href = table_link(r.table, r.task) if links else None
            index.append(f'<a href="{href}">{name}</a>' if href else name)
            iv = r.interval
            spread = ("<br>Δ " + f"{iv.difference:+.2f} (95%: {iv.low:+.2f} to {iv.high:+.2f})".replace("-", "−")
                      if iv is not None else f"<br>Δ {signed(r.delta)} (seeds' sd of Δ {r.seed_se:.2f})"
                      if r.seed_se is not None else "")
            ours = (f"{e(r.setting)}<br>{r.base:.2f} → {r.merged:.2f}"
                    + (f" ({_pct(relative_change(r.base, r.merged))})" if r.merged_model else "") + spread)
            detect = "–" if r.detectable is None else f"±{r.detectable:.2f}"
            if r.items_needed and r.merged_model:
                detect += f"<br>{r.items_needed:,} items for the paper's effect"
            paper = ("no counterpart in the paper" if r.paper_dataset is None else
                     f"<b>{e(r.paper_dataset)}</b>: {e(r.paper_setting)}<br>{r.paper_base:.2f} → {r.paper_merged:.2f}"
                     f" (Δ {signed(r.paper_delta)}, {_pct(relative_change(r.paper_base, r.paper_merged))})")
            records.append([ours, detect, paper, e(r.verdict)])
        return pd.DataFrame.from_records(records, index=pd.Index(index, name="table · task · corpus"),
                                         columns=[f"ours ({self.preset})", "detectable", "paper", "verdict"])

    def styled(self):
        caption = (f"This build ({self.preset}) beside the paper, every setting chosen on dev: error % unmerged → "
                   "merged (relative change), Δ = merged − unmerged in points with its 95% interval (negative = fewer "
                   "errors); detectable = the smallest Δ the test set can tell from noise at 95%" if self.rows else
                   f"No table of this build ({self.preset}) has its results in the store")
        return self.table().style.set_caption(caption).set_properties(**{"text-align": "left"})

    def counts(self) -> dict[str, int]:
        """How many headlines fall under each outcome (:data:`OUTCOMES`)."""
        return {o: sum(r.outcome == o for r in self.rows) for o in OUTCOMES}

    def findings(self) -> dict[str, Any]:
        """The counts the front page's prose quotes."""
        counts = self.counts()
        return {"preset": self.preset, "n": len(self.rows), "reproduced": counts["reproduced"],
                "outcomes": "; ".join(f"{n} {OUTCOMES[o]}" for o, n in counts.items() if n) or "none",
                "missing": ", ".join(self.missing) or "none", "gaps": "; ".join(self.gaps) or "none"}


# -- the paper's side of each headline: (setting, unmerged error, merged error) -----------------------------------

PaperSide = tuple[str, float, float]


def _paper_table1(dataset: str) -> PaperSide:
    """Table 1: the best non-zero λ of the real source."""
    col = paper_table1_block(dataset)[source_variants()["source"].label].dropna()
    best = float(col.drop(index=0.0).idxmin())
    return f"λ = {best:.2f}", float(col.loc[0.0]), float(col.loc[best])


def _paper_table2(dataset: str) -> PaperSide:
    """Table 2: the best block against the table's unmerged ("none") row."""
    part = paper_table("table2").query("dataset == @dataset").set_index("layers")
    best = part.drop(index="none")["value"].idxmin()
    return (f"{layers_phrase(best)}, λ = {float(part.loc[best, 'lambda']):.2f}", float(part.loc["none", "value"]),
            float(part.loc[best, "value"]))


def _paper_table3(dataset: str) -> PaperSide | None:
    """Table 3: its lowest cell (ties: the earlier metric, then the earlier row); None without a block for it."""
    paper = paper_table3()
    if dataset not in paper.index.get_level_values("dataset"):
        return None
    cells = paper.loc[dataset].T.stack(["lambda", "k"])  # metric by metric, each in the table's row order
    metric, lam, k = cells.idxmin()
    return f"{metric}, k = {int(k)}, λ = {float(lam):.2f}", _paper_table1(dataset)[1], float(cells.min())


def _paper_table5(dataset: str) -> PaperSide:
    """Table 5: FT and L-MAM + FT."""
    column = paper_table("table5").set_axis(list(ROWS))[dataset]
    return "FT → L-MAM + FT", float(column["ft"]), float(column["l-mam"])


def _paper(dataset: str | None, side: Callable[[str], PaperSide | None]) -> dict[str, Any]:
    """A headline's paper fields for the paper's ``dataset`` (None, or no ``side`` for it: no counterpart)."""
    found = None if dataset is None else side(dataset)
    if found is None:
        return {"paper_dataset": None}
    return {"paper_dataset": dataset, "paper_setting": found[0], "paper_base": found[1], "paper_merged": found[2]}


# -- our side, each table read once per front page ----------------------------------------------------------------


#: How the front page names the tasks.
TASKS: dict[str, str] = {"asr": "speech recognition", "aec": "audio events"}
#: How the front page reads each table's parts from a chapter, by task ("aec": only when the preset has AEC; Table
#: 5's one part holds every fine-tuned task).
READERS: dict[str, dict[str, Callable[[Chapter], Any]]] = {
    "1": {"asr": asr_table1, "aec": aec_table1}, "2": {"asr": asr_table2, "aec": aec_table2},
    "3": {"asr": chosen_picks}, "5": {"all": lambda ch: finetune_table5(ch, progress=False)},
}


class Merged(NamedTuple):
    """One corpus of Table 2 or 3: the setting chosen on dev (in words; its λ and layers), and the sweep frame with
    the unmerged model and every layer set evaluated beside it (``evaluated``)."""

    table: str
    task: str
    corpus: str
    setting: str
    frame: pd.DataFrame
    lam: float
    layers: str
    value: str
    evaluated: list[str]

    def headline(self, compare: Callable[..., PairedInterval] = compare_to_unmerged, **paper: Any) -> Headline:
        """The setting chosen on dev against the unmerged model, beside ``paper`` (:func:`_paper`)."""
        df, value = self.frame, self.value
        return Headline(self.table, self.task, self.corpus, self.setting, float(select_row(df, source="none")[value]),
                        float(select_row(df, lam=self.lam, layers=self.layers)[value]),
                        interval=compare(df, self.lam, layers=self.layers), **paper)


class Tables:
    """The chapters' tables as the results store holds them (:data:`READERS`), each read once per front page (None:
    its results are absent), and the paired intervals of their rows against the unmerged model, each computed once."""

    def __init__(self, ch: Chapter) -> None:
        self.ch, self.aec = ch, ch.preset.aec is not None
        self.read: dict[tuple[str, str], Any] = {}
        for table, parts in READERS.items():
            for task, read in parts.items():
                try:
                    self.read[(table, task)] = read(ch) if task != "aec" or self.aec else None
                except ResultsAbsent:
                    self.read[(table, task)] = None
        self._intervals: dict[tuple[int, float, str], tuple[pd.DataFrame, PairedInterval]] = {}

    def parts(self, table: str, strict: bool = True) -> dict[str, Any]:
        """Table ``table``'s parts ("1": :class:`~mamlib.report.table1.Table1`, "2", "3", "5") by task, ASR first;
        ``strict``: raise :class:`ResultsAbsent` unless all are stored (else: those that are)."""
        keys = [(table, task) for task in READERS[table] if task != "aec" or self.aec]
        if strict and any(self.read[k] is None for k in keys):
            raise ResultsAbsent(f"the results of Table {table} are not all stored")
        return {TASKS.get(k[1], k[1]): self.read[k] for k in keys if self.read[k] is not None}

    def interval(self, df: pd.DataFrame, lam: float, layers: str = "all") -> PairedInterval:
        """:func:`~mamlib.analysis.bootstrap.compare_to_unmerged` on one of these tables' sweep frames, memoized (the
        frame is kept with its interval, so its ``id`` cannot be reused by another)."""
        key = (id(df), round(float(lam), 9), layers)
        if key not in self._intervals:
            self._intervals[key] = df, compare_to_unmerged(df, lam, layers=layers)
        return self._intervals[key][1]

    def dataset(self, label: str) -> str | None:
        """The paper's dataset that corpus ``label`` (ASR, or the AEC clips) stands in for; None: no counterpart."""
        preset = self.ch.preset
        if label in preset.asr.corpora:
            return paper_counterpart(preset.asr.corpora[label].dataset)
        return paper_counterpart(preset.aec.data.dataset) if self.aec else None

    def merged(self, table: str, strict: bool = True) -> list[Merged]:
        """Table ``table``'s ("2": ASR, then AEC; "3") corpora; ``strict`` as for :meth:`parts`."""
        out = []
        for task, read in self.parts(table, strict).items():
            if table == "3":
                lp, choices, frames = read
                out += [Merged("Table 3", task, label, f"{c.label}, λ = {c.lam:.2f} (all chosen on dev)",
                               frames[label], c.lam, layer_label(c.layers), "wer",
                               [layer_label(s) for s in pick_sets(lp, label)]) for label, c in choices.items()]
                continue
            if task == TASKS["asr"]:  # Table 2: per corpus, the block and λ chosen on dev
                corpora = [(label, df, read.lambdas[label], read.chosen(label)) for label, df in read.sweeps.items()]
                value, evaluated = "wer", [layer_label(b) for b in read.blocks]
            else:
                corpora = [(self.ch.preset.aec.data.label, read.sweep, read.lam,
                            dev_block_label(read.sweep, read.lam, value="error"))]
                value, evaluated = "error", [x for x in read.sweep["layers"].unique() if x != "all"]
            out += [Merged("Table 2", task, corpus, f"{layers_phrase(block)}, λ = {lam:.2f} (both chosen on dev)", df,
                           lam, block, value, evaluated) for corpus, df, lam, block in corpora]
        return out


def table1_headlines(t: Tables) -> list[Headline]:
    """Table 1: λ chosen on dev, test error there and unmerged, per ASR corpus and for the AEC clips."""
    return [Headline("Table 1", task, str(label), f"λ = {c['lambda']:.2f} (chosen on dev), all layers",
                     float(c["test_unmerged"]), float(c["test"]), interval=t.interval(t1.sweeps[label], c["lambda"]),
                     merged_model=float(c["lambda"]) > 0, **_paper(t.dataset(str(label)), _paper_table1))
            for task, t1 in t.parts("1").items() for label, c in t1.choices.iterrows()]


def merged_headlines(t: Tables, table: str) -> list[Headline]:
    """Table 2 (``table`` "2"): the block chosen on dev (lowest dev error at the dev-chosen λ); Table 3: the
    data-driven pick (metric, k) chosen on dev at the dev-chosen λ; each against the unmerged model."""
    side = _paper_table2 if table == "2" else _paper_table3
    return [m.headline(t.interval, **_paper(t.dataset(m.corpus), side)) for m in t.merged(table)]


def table5_headlines(t: Tables) -> list[Headline]:
    """Table 5: L-MAM + FT against plain FT (means over seeds), per fine-tuned task."""
    (t5,) = t.parts("5").values()
    stats = t5.stats().set_index(["corpus", "row"])
    return [Headline("Table 5", TASKS["asr" if label in t.ch.preset.asr.corpora else "aec"], label,
                     f"FT → L-MAM + FT, means over {int(stats.loc[(label, 'ft'), 'n'])} seeds",
                     float(stats.loc[(label, "ft"), "mean"]), float(stats.loc[(label, "l-mam"), "mean"]),
                     seed_se=t5.versus_ft(label)[1], **_paper(paper_counterpart(t5.datasets[label]), _paper_table5))
            for label in t5.mam]


def table_gaps(ch: Chapter) -> list[str]:
    """Rows a table lacks: corpora of the preset that a headline table does not cover, and why."""
    gaps = []
    if no_dev := [label for label in ch.preset.asr.corpora if label not in ch.selectable]:
        gaps.append(f"Table 3 has no row for {', '.join(no_dev)} (no dev split of its own to score layers on)")
    tuned = set(ch.preset.asr.finetune.corpora) if ch.preset.asr.finetune is not None else set()
    if skipped := [label for label in ch.preset.asr.corpora if label not in tuned and label in ch.selectable]:
        why = "the preset fine-tunes " + (", ".join(sorted(tuned)) if tuned else "no ASR corpus")
        gaps.append(f"Table 5 has no row for {', '.join(skipped)} ({why})")
    if ch.preset.aec is not None and ch.preset.aec.finetune is None:
        gaps.append("Table 5 has no audio-events row (the preset does not fine-tune the AEC target)")
    return gaps


def evidence_of(t: Tables) -> Evidence:
    """Every comparison the chapters make with the unmerged model, sorted into the front page's evidence (tables
    whose results are absent contribute nothing)."""
    t1s = t.parts("1", strict=False).items()
    sweeps = {label: df for _, t1 in t1s for label, df in t1.sweeps.items()}
    dev_from = {label: chooser for _, t1 in t1s for label, chooser in t1.chosen_on.items()}
    dev_zero = [label for _, t1 in t1s for label in t1.sweeps if t1.choices.loc[label, "lambda"] == 0]
    noise = {label: noise_controls(label, df, t1.value) for _, t1 in t1s for label, df in t1.sweeps.items()}
    comparisons = [c for task, t1 in t1s for label, df in t1.sweeps.items()
                   for c in sweep_comparisons("Table 1", task, label, df, value=t1.value, layers=["all"],
                                              chosen=(float(t1.choices.loc[label, "lambda"]), "all"),
                                              compare=t.interval)]
    for m in t.merged("2", strict=False) + t.merged("3", strict=False):  # every layer set at the chosen λ
        comparisons += sweep_comparisons(m.table, m.task, m.corpus, m.frame, value=m.value, chosen=(m.lam, m.layers),
                                         layers=m.evaluated, lambdas=[m.lam], compare=t.interval)
    degenerate = [label for lp, choices, _ in t.parts("3", strict=False).values() for label in choices
                  if identical_metric_picks(lp.picked[(label, "none")])]
    learned: dict[str, tuple[float, float, float]] = {}
    worse: dict[str, list[tuple[str, float, float]]] = {}
    for t5 in t.parts("5", strict=False).values():
        learned.update({label: moved for label in t5.mam if (moved := t5.lambda_range(label)) is not None})
        stats = t5.stats()
        stats["delta"] = stats["mean"] - stats["corpus"].map(t5.unmerged)
        for label, rows in stats[stats["row"].isin(METHODS) & (stats["delta"] > 0)].groupby("corpus", sort=False):
            worse[label] = [(METHOD_LABELS[r], d, sd) for r, d, sd in zip(rows["row"], rows["delta"], rows["sd"])]
    unique: dict[tuple[str, str], Comparison] = {}
    for c in comparisons:
        unique.setdefault((c.corpus, c.what), c)
    comparisons = list(unique.values())
    paper = {label: _paper_table1(dataset) for label in sweeps if (dataset := t.dataset(label)) is not None}
    effects = {label: merged - base for label, (_, base, merged) in paper.items()}
    return Evidence(clear_results(comparisons), resolution_table(sweeps, comparisons, effects, dev_from),
                    negative_results(comparisons, noise, dev_zero, degenerate, learned, worse))


#: The tables the front page summarizes, in order, with the function that reads each one's headlines.
TABLES: dict[str, Callable[[Tables], list[Headline]]] = {
    "Table 1": table1_headlines,
    "Table 2": lambda t: merged_headlines(t, "2"),
    "Table 3": lambda t: merged_headlines(t, "3"),
    "Table 5": table5_headlines,
}


def front_page(preset: str, cache_dir: str | os.PathLike[str] | None = None) -> Front:
    """Every headline of the build of ``preset`` whose results are in the store (see the module docstring)."""
    ch = open_chapter(preset, cache_dir, name="intro")
    ch.store = StoredResults(ch.cache / "results")  # its sweeps only read the store
    t = Tables(ch)
    rows: list[Headline] = []
    missing: list[str] = []
    for name, headlines in TABLES.items():
        try:
            rows += headlines(t)
        except ResultsAbsent:
            missing.append(name)
    return Front(ch.preset.name, rows, missing, table_gaps(ch), evidence_of(t))
