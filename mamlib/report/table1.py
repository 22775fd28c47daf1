"""Chapter 1 (Sec. 3.1, Table 1): the λ sweeps of every corpus beside the paper's blocks, and λ chosen on dev."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mamlib.analysis.bootstrap import compare_rows, compare_to_unmerged, intervals_table, select_row
from mamlib.report.chapter import Chapter
from mamlib.report.describe import signed
from mamlib.report.paper import paper_counterpart
from mamlib.report.paper import table1_block as paper_table1
from mamlib.report.plots import plot_lambda_sweep
from mamlib.report.tables import table1_block
from mamlib.sweeps.choose import choose_lambda

#: The paper's models behind each of its datasets (Sec. 4), for titles beside ours.
PAPER_MODELS: dict[str, str] = {"LJ Speech": "HuBERT-large ← BERT-large", "VCTK": "HuBERT-large ← BERT-large",
                                "ESC-50": "BEATs ← ViT-base"}
#: What stands in the place of the paper's numbers for a corpus the paper has no counterpart of.
NO_COUNTERPART = "no counterpart in the paper"


@dataclass
class Table1:
    """One Table 1 part (ASR corpora or AEC clips): raw sweeps, our blocks and the paper's, the dev choices.

    ``paper[label]`` is None for a corpus without a counterpart in the paper
    (:func:`~mamlib.report.paper.paper_counterpart`): it stands beside no paper number. ``models`` names our
    target ← source for titles; ``chosen_on`` names, per corpus, the corpus whose dev split chose λ (when not its
    own).
    """

    sweeps: dict[str, pd.DataFrame]
    ours: dict[str, pd.DataFrame]
    paper: dict[str, pd.DataFrame | None]
    choices: pd.DataFrame
    value: str
    models: str = ""
    chosen_on: dict[str, str] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return "WER" if self.value == "wer" else "error"

    def tables(self, preset: str, split: str = "test") -> dict[str, pd.DataFrame]:
        """Ours above the paper's, per corpus, as labelled row groups under the same source columns, so a column
        reads down from our λ sweep to the paper's and the table keeps to the page's width (ours alone where the
        paper has no counterpart: see :meth:`caption`)."""
        out = {}
        for label, ours in self.ours.items():
            groups, paper = {f"ours ({preset}: {label}, {split})": ours.sort_index()}, self.paper.get(label)
            if paper is not None:
                groups[f"paper ({paper.attrs['dataset']})"] = paper.sort_index()
            out[label] = pd.concat(groups, axis=0, names=["", ours.index.name])
        return out

    def caption(self, label: str, split: str = "test") -> str:
        """The caption of corpus ``label``'s table: what is shown, and which of the paper's datasets stands beside."""
        paper = self.paper.get(label)
        beside = f"the paper's {_paper_title(paper)} below ours" if paper is not None else NO_COUNTERPART
        return f"Table 1 — {label}: {split} {self.metric} (%) by λ and source; {beside}"

    def figures(self, ylabel: str | None = None) -> list:
        """Error against λ per corpus (:func:`~mamlib.report.plots.plot_lambda_sweep`), titled with our models and,
        where there is one, the paper's dataset and models."""
        figs = []
        for label, ours in self.ours.items():
            paper = self.paper.get(label)
            title = f"ours: {label}" + (f" ({self.models})" if self.models else "")
            figs.append(plot_lambda_sweep(ours, paper, title + ("" if paper is not None else f"\n{NO_COUNTERPART}"),
                                          None if paper is None else f"paper: {_paper_title(paper)}",
                                          ylabel=ylabel or f"{self.metric} (%)"))
        return figs

    def shown_lambda(self, label: str) -> float:
        """The λ at which a merged model is shown (against noise of the source's moments, in Chapter 5's analyses):
        the dev-chosen one, or the smallest non-zero λ of the grid when dev chose λ = 0 (an illustration then)."""
        lam = float(self.choices.loc[label, "lambda"])
        return lam if lam > 0 else float(min(x for x in self.sweeps[label]["lambda"] if x > 0))

    def intervals(self) -> pd.DataFrame:
        """Paired bootstrap 95% intervals of every comparison the chapter makes, on the test items: the dev-chosen
        λ against the unmerged model (when dev chose not to merge, the λ of :meth:`shown_lambda`, labelled as an
        illustration: λ = 0 against itself would be an empty comparison), and the real source against N(Source)
        at :meth:`shown_lambda`."""
        out = {}
        for label, df in self.sweeps.items():
            noise_lam = self.shown_lambda(label)
            how = "chosen on dev" if float(self.choices.loc[label, "lambda"]) > 0 else "dev chose not to merge; shown"
            out[f"{label}: λ = {noise_lam:.2f} ({how}) − unmerged"] = compare_to_unmerged(df, noise_lam)
            if ((df["source"] == "noise-source") & (df["lambda"] == noise_lam)).any():
                noise = select_row(df, source="noise-source", lam=noise_lam)
                out[f"{label}: Source − N(Source) at λ = {noise_lam:.2f}"] = compare_rows(
                    noise, select_row(df, lam=noise_lam))
        return intervals_table(out, self.metric)

    def choices_table(self) -> pd.DataFrame:
        """The dev choices with readable headers, in the book's sign (Δ = merged − unmerged, negative = fewer
        errors), and the dev split that chose λ."""
        m = self.metric
        c = self.choices
        out = pd.DataFrame({
            "λ (dev-chosen)": c["lambda"].astype(float),
            "chosen on": [f"{self.chosen_on.get(label, label)} dev" for label in c.index],
            f"dev {m} % at λ": c["dev"].astype(float),
            f"test {m} % unmerged": c["test_unmerged"].astype(float),
            f"test {m} % at λ": c["test"].astype(float),
            "Δ test (points)": (c["test"] - c["test_unmerged"]).astype(float),
            "relative change %": c["relative_change"].astype(float),
        }, index=c.index)
        out.index.name = "corpus"
        return out


def _paper_title(paper_block: pd.DataFrame) -> str:
    """The paper's dataset of a block (named in its ``attrs``), with the paper's models behind it."""
    dataset = paper_block.attrs["dataset"]
    return f"{dataset} ({PAPER_MODELS.get(dataset, 'its models')})"


def _paper_for(dataset: str) -> pd.DataFrame | None:
    """The paper's Table 1 block for the dataset that ``dataset`` stands in for, named in its ``attrs`` (None: no
    counterpart)."""
    counterpart = paper_counterpart(dataset)
    if counterpart is None:
        return None
    block = paper_table1(counterpart)
    block.attrs["dataset"] = counterpart
    return block


def _models(setup) -> str:
    return f"{setup.target.kind} ← {setup.source.kind}"


def asr_table1(ch: Chapter) -> Table1:
    """Every ASR corpus of the chapter's preset swept over the λ grid and all source variants (test and dev)."""
    corpora = ch.preset.asr.corpora
    sweeps = {label: ch.sweep(label).run() for label in corpora}
    ours = {label: table1_block(df) for label, df in sweeps.items()}
    paper = {label: _paper_for(corpora[label].dataset) for label in corpora}
    choices = pd.DataFrame({label: choose_lambda(df, dev=sweeps.get(corpora[label].select_on or label))
                            for label, df in sweeps.items()}).T
    chosen_on = {label: spec.select_on for label, spec in corpora.items() if spec.select_on}
    return Table1(sweeps, ours, paper, choices, "wer", _models(ch.preset.asr), chosen_on)


def aec_table1(ch: Chapter) -> Table1:
    """The AEC clips swept over the λ grid and all source variants, λ chosen on the dev fold."""
    if ch.preset.aec is None:
        raise ValueError(f"preset {ch.preset.name!r} has no 'aec' section")
    data = ch.preset.aec.data
    df = ch.aec_sweep.run()
    choice = pd.DataFrame({data.label: choose_lambda(df, value="error")}).T
    return Table1({data.label: df}, {data.label: table1_block(df, value="error")},
                  {data.label: _paper_for(data.dataset)}, choice, "error", _models(ch.preset.aec))


def table1_findings(asr: Table1, aec: Table1 | None = None) -> dict[str, object]:
    """The numbers Chapter 1's prose quotes (Sec. 4.1, Table 1), for the first ASR corpus (and the AEC clips): λ
    chosen on dev, test error unmerged and merged, Δ = merged − unmerged in points and the relative change
    Δ / unmerged (both negative = fewer errors), and how often the real source beats noise of its moments."""
    first = next(iter(asr.sweeps))
    c = asr.choices.loc[first]
    nonzero = asr.ours[first].drop(index=0.0)
    out: dict[str, object] = {
        "first_corpus": first, "lambda": f"{c['lambda']:.2f}", "base": f"{c['test_unmerged']:.2f}",
        "merged": f"{c['test']:.2f}", "delta": signed(c["test"] - c["test_unmerged"], 2),
        "rel_change": signed(c["relative_change"], 1),
        "wins": int((nonzero["Source"] < nonzero["N(Source)"]).sum()),
        "ties": int((nonzero["Source"] == nonzero["N(Source)"]).sum()), "n": len(nonzero),
        "ci": compare_to_unmerged(asr.sweeps[first], float(c["lambda"])).describe(),
    }
    if aec is not None:
        a = aec.choices.iloc[0]
        out.update({"aec_lambda": f"{a['lambda']:.2f}", "aec_base": f"{a['test_unmerged']:.2f}",
                    "aec_merged": f"{a['test']:.2f}", "aec_rel_change": signed(a["relative_change"], 1),
                    "aec_ci": compare_to_unmerged(next(iter(aec.sweeps.values())), float(a["lambda"])).describe()})
    return out
