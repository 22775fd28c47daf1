"""Chapter 2 (Sec. 3.2, Table 2): blocks of layers merged, λ chosen on dev over all blocks, every block on test."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mamlib.analysis.bootstrap import compare_to_unmerged, intervals_table
from mamlib.report.chapter import Chapter
from mamlib.report.paper import paper_table, table2_by_position
from mamlib.report.tables import UNMERGED, blocks_then_none, by_position, table2_block
from mamlib.sweeps.choose import layerwise_sweep, table2_blocks
from mamlib.sweeps.grid import layers_phrase


@dataclass
class Table2:
    """Our Table 2 columns (one per corpus, rows = our blocks) and the λ each corpus chose."""

    sweeps: dict[str, pd.DataFrame]
    lambdas: dict[str, float]
    ours: pd.DataFrame
    blocks: list[list[int]]
    #: Dev rows of the corpus that selects for a corpus without a dev split of its own (by the corpus's label).
    dev: dict[str, pd.DataFrame] = field(default_factory=dict)

    def chosen(self, label: str) -> str:
        """The block of ``label`` chosen on dev (the one every verdict uses)."""
        return dev_block_label(self.sweeps[label], self.lambdas[label], self.dev.get(label))

    def best_block(self) -> dict[str, object]:
        """The dev-chosen block of the first corpus against the unmerged model, and the test-best block as an oracle
        (the numbers the prose quotes)."""
        col, label = self.ours[self.ours.columns[0]], next(iter(self.sweeps))
        df, lam, chosen = self.sweeps[label], self.lambdas[label], self.chosen(label)
        oracle = best_block_label(df, lam)
        return {"corpus": label, "best_block": layers_phrase(chosen), "best_wer": f"{col[chosen]:.2f}",
                "none_wer": f"{col[UNMERGED]:.2f}", "ci": compare_to_unmerged(df, lam, layers=chosen).describe(),
                "oracle_block": layers_phrase(oracle), "oracle_wer": f"{col[oracle]:.2f}",
                "oracle_same": ("the same block" if oracle == chosen
                                else f"{layers_phrase(oracle)} ({col[oracle]:.2f}%)")}

    def intervals(self) -> pd.DataFrame:
        """Paired bootstrap 95% intervals against the unmerged model of each corpus's block chosen on dev, and of the
        block best on test where it differs — labelled an oracle (chosen on test; its interval flatters it)."""
        out = {}
        for label, df in self.sweeps.items():
            lam, chosen, oracle = self.lambdas[label], self.chosen(label), best_block_label(df, self.lambdas[label])
            out[f"{label}: {layers_phrase(chosen)} (chosen on dev) − unmerged"] = compare_to_unmerged(
                df, lam, layers=chosen)
            if oracle != chosen:
                out[f"{label}: {layers_phrase(oracle)} (oracle: chosen on test) − unmerged"] = compare_to_unmerged(
                    df, lam, layers=oracle)
        return intervals_table(out)


def dev_block_label(rows: pd.DataFrame, lam: float, dev: pd.DataFrame | None = None, value: str = "wer") -> str:
    """Table 2's block chosen on dev: the layer subset with the lowest dev ``value`` at the dev-chosen ``lam`` (the
    block that chose λ; the first in block order on ties). ``dev`` holds the dev rows of the corpus that selects for
    this one when it has no dev split of its own."""
    frame = rows if dev is None else dev
    part = frame[(frame["split"] == "dev") & (frame["source"] == "source") & (frame["lambda"] == lam)
                 & (frame["layers"] != "all")]
    if part.empty:
        raise ValueError(f"no dev rows of a block at λ = {lam} to choose the block on")
    return str(part.loc[part[value].idxmin(), "layers"])


def best_block_label(rows: pd.DataFrame, lam: float, value: str = "wer") -> str | None:
    """The block with the lowest *test* ``value`` at ``lam`` — an oracle (chosen on test), shown beside the dev choice
    and never used in a verdict; the first in block order on ties; None when no block was evaluated on test."""
    test = rows[(rows["split"] == "test") & (rows["lambda"] == lam) & (rows["layers"] != "all")]
    return None if test.empty else str(test.loc[test[value].idxmin(), "layers"])


def asr_table2(ch: Chapter) -> Table2:
    """Table 2's protocol on every ASR corpus of the preset, blocks scaled to the target's depth."""
    blocks = table2_blocks("asr", ch.depth("asr"))
    sweeps: dict[str, pd.DataFrame] = {}
    lams: dict[str, float] = {}
    devs = {label: spec.select_on for label, spec in ch.preset.asr.corpora.items() if spec.select_on}
    for label in ch.preset.asr.corpora:
        sweeps[label], lams[label] = layerwise_sweep(ch.sweep(label), ch.preset.asr.lambdas, blocks,
                                                     dev=sweeps[devs[label]] if label in devs else None)
    ours = pd.DataFrame({f"ours: {label} (λ = {lam:.2f})": table2_block(sweeps[label], lam)
                         for label, lam in lams.items()})
    return Table2(sweeps, lams, ours, blocks, {label: sweeps[chooser] for label, chooser in devs.items()})


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
    p = paper_table("table2").query("dataset == 'ESC-50'").set_index("layers")["value"].rename(index={"none": UNMERGED})
    return AECTable2(df, lam, ours, p.to_frame("paper: ESC-50 (λ = 0.1), BEATs blocks"))
