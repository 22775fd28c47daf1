"""The paper's reported numbers (``data/paper/*.csv``), laid out like its tables, for display beside ours.

These are transcriptions of the published tables, never results of this code; every frame built here carries
"paper" in its column labels.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mamlib.presets.schema import find_dataset
from mamlib.report.tables import UNMERGED, by_source
from mamlib.selection.picks import METRIC_LABELS

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "paper"


def paper_counterpart(dataset: str) -> str | None:
    """The paper's dataset that our ``dataset`` stands in for, the same task on comparable data (its entry's
    ``paper``: :func:`~mamlib.presets.schema.find_dataset`), or None when the paper has none comparable."""
    return find_dataset(dataset).paper


def paper_table(name: str) -> pd.DataFrame:
    """One of the transcribed tables (``table1`` … ``table6``) as a tidy DataFrame."""
    path = DATA_DIR / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no transcribed paper table {path}")
    return pd.read_csv(path)


def table1_block(dataset: str) -> pd.DataFrame:
    """The paper's Table 1 block for ``dataset`` ("LJ Speech", "VCTK", "ESC-50"): rows λ, columns by source."""
    t = paper_table("table1")
    t = t[t["dataset"] == dataset]
    if t.empty:
        raise ValueError(f"Table 1 has no block for {dataset!r}")
    return by_source(t, "value")


def table2_by_position(dataset: str) -> pd.Series:
    """The paper's Table 2 column for ``dataset``, indexed by block position ("block 1", …, "unmerged"), named with
    its λ — so that it lines up with our blocks of a differently deep model."""
    t = paper_table("table2")
    part = t[t["dataset"] == dataset]
    if part.empty:
        raise ValueError(f"Table 2 has no column for {dataset!r}")
    index = [UNMERGED if x == "none" else f"block {i + 1}" for i, x in enumerate(part["layers"])]
    return pd.Series(part["value"].to_numpy(), index=index, name=f"paper: {dataset} (λ = {part['lambda'].iloc[0]})")


def paper_ks(dataset: str) -> tuple[int, ...]:
    """The k values of the paper's Table 3 block for ``dataset`` (LJ Speech 4, 6, 8; VCTK 6, 8, 10); LJ Speech's for
    a dataset the table has no block for."""
    t = paper_table("table3")
    part = t[t["dataset"] == dataset]
    if part.empty:
        part = t[t["dataset"] == "LJ Speech"]
    return tuple(sorted(int(k) for k in part["k"].unique()))


def paper_table3() -> pd.DataFrame:
    """The paper's Table 3 (rows dataset, λ, k; columns metric), for display beside ours."""
    t = paper_table("table3").pivot_table(index=["dataset", "lambda", "k"], columns="metric", values="value")
    return t[list(METRIC_LABELS)].rename(columns=METRIC_LABELS)
