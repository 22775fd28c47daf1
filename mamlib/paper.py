"""The paper's reported numbers (``data/paper/*.csv``), laid out like its tables, for display beside ours.

These are transcriptions of the published tables, never results of this code; every frame built here carries
"paper" in its column labels.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "paper"

#: Which of the paper's datasets each of our corpora stands in for (by corpus kind).
PAPER_DATASET_FOR_KIND: dict[str, str] = {
    "smoke": "LJ Speech", "lj-like": "LJ Speech", "ljspeech": "LJ Speech", "alsa-real": "LJ Speech",
    "vctk-like": "VCTK", "vctk": "VCTK", "esc50": "ESC-50", "esc50-parquet": "ESC-50", "synthetic-aec": "ESC-50",
    "animal-sounds": "ESC-50",
}


def paper_table(name: str) -> pd.DataFrame:
    """One of the transcribed tables (``table1`` … ``table6``) as a tidy DataFrame."""
    path = DATA_DIR / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no transcribed paper table {path}")
    return pd.read_csv(path)


def table1_block(dataset: str) -> pd.DataFrame:
    """The paper's Table 1 block for ``dataset`` ("LJ Speech", "VCTK", "ESC-50"): rows λ, columns by source."""
    from mamlib.zero_shot import SOURCE_LABELS

    t = paper_table("table1")
    t = t[t["dataset"] == dataset]
    if t.empty:
        raise ValueError(f"Table 1 has no block for {dataset!r}")
    block = t.pivot_table(index="lambda", columns="source", values="value")
    block = block[[k for k in SOURCE_LABELS if k in block.columns]]
    block.columns = [SOURCE_LABELS[c] for c in block.columns]
    block.index.name = "λ"
    return block


def beside(ours: pd.DataFrame, paper: pd.DataFrame, ours_label: str, paper_label: str = "paper") -> pd.DataFrame:
    """Our table and the paper's side by side under a two-level column header; rows are the union of both."""
    out = pd.concat({ours_label: ours, paper_label: paper}, axis=1)
    return out.sort_index()


def table2_by_position(dataset: str) -> pd.Series:
    """The paper's Table 2 column for ``dataset``, indexed by block position ("block 1", …, "None"), named with
    its λ — so that it lines up with our blocks of a differently deep model."""
    t = paper_table("table2")
    part = t[t["dataset"] == dataset]
    if part.empty:
        raise ValueError(f"Table 2 has no column for {dataset!r}")
    index = ["None" if x == "none" else f"block {i + 1}" for i, x in enumerate(part["layers"])]
    return pd.Series(part["value"].to_numpy(), index=index, name=f"paper: {dataset} (λ = {part['lambda'].iloc[0]})")


def by_position(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Rows "<layers>" → "block 1", "block 2", … in order, "None" kept (for lining up with the paper)."""
    out = frame.copy()
    out.index = [i if i == "None" else f"block {n + 1}" for n, i in enumerate(frame.index)]
    return out


def blocks_then_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows "block 1", "block 2", … in numeric order, then "None"."""
    blocks = sorted((i for i in frame.index if i != "None"), key=lambda i: int(str(i).split()[-1]))
    return frame.reindex(blocks + (["None"] if "None" in frame.index else []))
