"""Chapter 1 (Sec. 3.1, Table 1): the λ sweeps of every corpus beside the paper's blocks, and λ chosen on dev."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mamlib.analysis.bootstrap import compare_rows, compare_to_unmerged, intervals_table, select_row
from mamlib.report.chapter import Chapter
from mamlib.report.paper import PAPER_DATASET_FOR
from mamlib.report.paper import table1_block as paper_table1
from mamlib.report.plots import plot_lambda_sweep
from mamlib.report.tables import beside, table1_block
from mamlib.sweeps.choose import choose_lambda


@dataclass
class Table1:
    """One Table 1 part (ASR corpora or AEC clips): raw sweeps, our blocks and the paper's, the dev choices."""

    sweeps: dict[str, pd.DataFrame]
    ours: dict[str, pd.DataFrame]
    paper: dict[str, pd.DataFrame]
    choices: pd.DataFrame
    value: str

    def tables(self, preset: str, split: str = "test") -> dict[str, pd.DataFrame]:
        """Ours beside the paper's, per corpus, under labelled column groups."""
        return {label: beside(self.ours[label], self.paper[label], f"ours ({preset}: {label}, {split})",
                              f"paper ({dataset_of(self.paper[label])})")
                for label in self.ours}

    def figures(self, ylabel: str = "WER (%)") -> list:
        return [plot_lambda_sweep(self.ours[label], self.paper[label], label, ylabel=ylabel) for label in self.ours]

    def shown_lambda(self, label: str) -> float:
        """The λ at which a merged model is shown (against noise of the source's moments, in Chapter 5's analyses):
        the dev-chosen one, or the smallest non-zero λ of the grid when dev chose λ = 0 (an illustration then)."""
        lam = float(self.choices.loc[label, "lambda"])
        return lam if lam > 0 else float(min(x for x in self.sweeps[label]["lambda"] if x > 0))

    def intervals(self) -> pd.DataFrame:
        """Paired bootstrap 95% intervals of every comparison the chapter makes, on the test items: the dev-chosen
        λ against the unmerged model, and the real source against N(Source) at :meth:`shown_lambda`."""
        out = {}
        for label, df in self.sweeps.items():
            lam = float(self.choices.loc[label, "lambda"])
            out[f"{label}: λ = {lam:.2f} − unmerged"] = compare_to_unmerged(df, lam)
            noise_lam = self.shown_lambda(label)
            if ((df["source"] == "noise-source") & (df["lambda"] == noise_lam)).any():
                noise = select_row(df, source="noise-source", lam=noise_lam)
                out[f"{label}: Source − N(Source) at λ = {noise_lam:.2f}"] = compare_rows(
                    noise, select_row(df, lam=noise_lam))
        return intervals_table(out, "WER" if self.value == "wer" else "error")

    def choices_table(self) -> pd.DataFrame:
        """The dev choices with readable headers."""
        m = "WER" if self.value == "wer" else "error"
        return self.choices.rename(columns={
            "lambda": "λ (dev-chosen)", "dev": f"dev {m} %", "test": f"test {m} % at λ",
            "test_unmerged": f"test {m} % unmerged", "relative_reduction": "relative reduction %"})


def dataset_of(paper_block: pd.DataFrame) -> str:
    return str(paper_block.attrs.get("dataset", "paper"))


def _paper(dataset: str) -> pd.DataFrame:
    block = paper_table1(dataset)
    block.attrs["dataset"] = dataset
    return block


def asr_table1(ch: Chapter) -> Table1:
    """Every ASR corpus of the chapter's preset swept over the λ grid and all source variants (test and dev)."""
    corpora = ch.preset.asr.corpora
    sweeps = {label: ch.sweep(label).run() for label in corpora}
    ours = {label: table1_block(df) for label, df in sweeps.items()}
    paper = {label: _paper(PAPER_DATASET_FOR.get(corpora[label].dataset, "LJ Speech")) for label in corpora}
    choices = pd.DataFrame({label: choose_lambda(df, dev=sweeps.get(corpora[label].select_on or label))
                            for label, df in sweeps.items()}).T
    return Table1(sweeps, ours, paper, choices, "wer")


def aec_table1(ch: Chapter) -> Table1:
    """The AEC clips swept over the λ grid and all source variants, λ chosen on the dev fold."""
    label = ch.preset.aec.data.label if ch.preset.aec else "aec"
    df = ch.aec_sweep.run()
    choice = pd.DataFrame({label: choose_lambda(df, value="error")}).T
    return Table1({label: df}, {label: table1_block(df, value="error")}, {label: _paper("ESC-50")}, choice, "error")


def table1_findings(asr: Table1, aec: Table1 | None = None) -> dict[str, object]:
    """The numbers Chapter 1's prose quotes, for the first ASR corpus (and the AEC clips): λ chosen on dev, test
    error unmerged and merged, the relative change, and how often the real source beats noise of its moments."""
    first = next(iter(asr.sweeps))
    c = asr.choices.loc[first]
    nonzero = asr.ours[first].drop(index=0.0)
    out: dict[str, object] = {
        "first_corpus": first, "lambda": f"{c['lambda']:.2f}", "base": f"{c['test_unmerged']:.2f}",
        "merged": f"{c['test']:.2f}", "rel": f"{c['relative_reduction']:.1f}",
        "wins": int((nonzero["Source"] < nonzero["N(Source)"]).sum()),
        "ties": int((nonzero["Source"] == nonzero["N(Source)"]).sum()), "n": len(nonzero),
        "ci": compare_to_unmerged(asr.sweeps[first], float(c["lambda"])).describe(),
    }
    if aec is not None:
        a = aec.choices.iloc[0]
        out.update({"aec_lambda": f"{a['lambda']:.2f}", "aec_base": f"{a['test_unmerged']:.2f}",
                    "aec_merged": f"{a['test']:.2f}",
                    "aec_ci": compare_to_unmerged(next(iter(aec.sweeps.values())), float(a["lambda"]),
                                                  ).describe()})
    return out
