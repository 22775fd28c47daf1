"""Chapter 2 (Sec. 3.2, Table 2): blocks of layers merged, λ chosen on dev over all blocks, every block on test."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mamlib.analysis.bootstrap import compare_to_unmerged, intervals_table
from mamlib.report.chapter import Chapter
from mamlib.report.paper import paper_table, table2_by_position
from mamlib.report.tables import blocks_then_none, by_position, table2_block
from mamlib.sweeps.choose import layerwise_sweep, table2_blocks


@dataclass
class Table2:
    """Our Table 2 columns (one per corpus, rows = our blocks) and the λ each corpus chose."""

    sweeps: dict[str, pd.DataFrame]
    lambdas: dict[str, float]
    ours: pd.DataFrame
    blocks: list[list[int]]

    def best_block(self) -> dict[str, object]:
        """The best block of the first corpus against the unmerged model (the numbers the prose quotes)."""
        first = self.ours.columns[0]
        col = self.ours[first]
        label = next(iter(self.sweeps))
        best = best_block_label(self.sweeps[label], self.lambdas[label])
        ci = compare_to_unmerged(self.sweeps[label], self.lambdas[label], layers=best)
        return {"corpus": first, "best_block": f"layers {best}", "best_wer": f"{col[best]:.2f}",
                "none_wer": f"{col['None']:.2f}", "ci": ci.describe()}

    def intervals(self) -> pd.DataFrame:
        """Paired bootstrap 95% intervals of each corpus's best block (lowest test WER) against the unmerged model."""
        out = {}
        for label, df in self.sweeps.items():
            best = best_block_label(df, self.lambdas[label])
            out[f"{label}: layers {best} − unmerged"] = compare_to_unmerged(df, self.lambdas[label], layers=best)
        return intervals_table(out)


def best_block_label(rows: pd.DataFrame, lam: float, value: str = "wer") -> str | None:
    """Table 2's best block: the layer subset (as labelled, e.g. ``"12-19"``) with the lowest test ``value`` at the
    dev-chosen ``lam``; the first in block order on ties; None when no block was evaluated on test."""
    test = rows[(rows["split"] == "test") & (rows["lambda"] == lam) & (rows["layers"] != "all")]
    return None if test.empty else str(test.loc[test[value].idxmin(), "layers"])


def asr_table2(ch: Chapter) -> Table2:
    """Table 2's protocol on every ASR corpus of the preset, blocks scaled to the target's depth."""
    blocks = table2_blocks("asr", ch.depth("asr"))
    sweeps: dict[str, pd.DataFrame] = {}
    lams: dict[str, float] = {}
    columns = {}
    for label, spec in ch.preset.asr.corpora.items():
        dev = sweeps[spec.select_on] if spec.select_on else None
        sweeps[label], lams[label] = layerwise_sweep(ch.sweep(label), ch.preset.asr.lambdas, blocks, dev=dev)
        columns[f"ours: {label} (λ = {lams[label]:.2f})"] = table2_block(sweeps[label], lams[label])
    return Table2(sweeps, lams, pd.DataFrame(columns), blocks)


def beside_paper(t2: Table2, preset: str) -> pd.DataFrame:
    """Our columns beside the paper's LJ Speech and VCTK columns, rows aligned by block position."""
    paper_cols = pd.concat([table2_by_position(ds) for ds in ("LJ Speech", "VCTK")], axis=1)
    return blocks_then_none(pd.concat({f"ours ({preset})": by_position(t2.ours),
                                       "paper (HuBERT-large blocks)": paper_cols}, axis=1))


@dataclass
class AECTable2:
    """Table 2's AEC half: the sweep rows, the λ chosen on the dev fold, our column and the paper's."""

    sweep: pd.DataFrame
    lam: float
    ours: pd.DataFrame
    paper: pd.DataFrame


def aec_table2(ch: Chapter) -> AECTable2:
    """Table 2's AEC half: blocks of a third and of two thirds of the encoder (the paper's 4 and 8 of 12), every
    4/12 of the depth, λ chosen on the dev fold over all blocks."""
    blocks = table2_blocks("aec", ch.depth("aec"))
    df, lam = layerwise_sweep(ch.aec_sweep, ch.preset.aec.lambdas, blocks)
    label = f"ours ({ch.preset.name}: {ch.preset.aec.data.label}, λ = {lam:.2f})"
    ours = table2_block(df, lam, value="error").to_frame(label)
    p = paper_table("table2").query("dataset == 'ESC-50'").set_index("layers")["value"].rename(index={"none": "None"})
    return AECTable2(df, lam, ours, p.to_frame("paper: ESC-50 (λ = 0.1), BEATs blocks"))
