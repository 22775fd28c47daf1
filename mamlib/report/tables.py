"""The paper's table layouts, filled from our sweeps (and, through :mod:`mamlib.report.paper`, from its numbers),
and how the book shows a table."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from mamlib.merge.sources import source_variants


def by_source(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Rows λ, one column per source variant (in the registry's order, under its table label): Table 1's layout."""
    table = frame.pivot_table(index="lambda", columns="source", values=value)
    labels = {name: variant.label for name, variant in source_variants().items()}
    return table[[k for k in labels if k in table.columns]].rename(columns=labels).rename_axis(index="λ", columns=None)


def table1_block(df: pd.DataFrame, split: str = "test", value: str = "wer") -> pd.DataFrame:
    """Table 1's layout for one corpus: rows λ, columns Source / N(Source) / N(Target) / N(0,1), error (%).

    The λ = 0 row holds the unmerged model under "Source" and is empty for the noise columns, as in the paper.
    """
    part = df[(df["split"] == split) & (df["layers"] == "all")]
    merged = part[part["source"] != "none"]
    base = part[part["source"] == "none"].assign(source="source")
    return by_source(pd.concat([merged, base.iloc[:1]]), value).sort_index()


#: The row label of the unmerged model in Table 2's layouts (the paper's "None" row).
UNMERGED = "unmerged"


def table2_block(df: pd.DataFrame, lam: float, split: str = "test", value: str = "wer") -> pd.Series:
    """Table 2's column for one corpus: error (%) per merged block at ``lam``, plus the :data:`UNMERGED` row (the
    paper's "None")."""
    part = df[df["split"] == split]
    merged = part[(part["source"] == "source") & (part["lambda"] == lam) & (part["layers"] != "all")]
    out = merged.drop_duplicates("layers").set_index("layers")[value]
    base = part[part["source"] == "none"][value]
    out.loc[UNMERGED] = float(base.iloc[0]) if len(base) else float("nan")
    out.index.name = "layers merged"
    return out


def by_position(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Rows "<layers>" → "block 1", "block 2", … in order, the :data:`UNMERGED` row kept (for lining up with the
    paper)."""
    out = frame.copy()
    out.index = [i if i == UNMERGED else f"block {n + 1}" for n, i in enumerate(frame.index)]
    return out


def blocks_then_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows "block 1", "block 2", … in numeric order, then the :data:`UNMERGED` row."""
    blocks = sorted((i for i in frame.index if i != UNMERGED), key=lambda i: int(str(i).split()[-1]))
    return frame.reindex(blocks + ([UNMERGED] if UNMERGED in frame.index else []))


#: What a table shows for a missing or undefined cell (and index label).
MISSING = "–"
#: Text a cell must never show: Python's and pandas' missing-value reprs.
RAW_MISSING = frozenset({"None", "nan", "NaN", "<NA>", "NaT"})
#: A float printed at full precision ("0.100000", "20.000000", "-0.04123456"): five or more decimals.
RAW_FLOAT = re.compile(r"^[−-]?\d+\.\d{5,}$")


def cell_text(value: Any, digits: int = 2) -> str:
    """How the book shows one cell or index label: missing → "–"; a float (also one in an object column, or one
    already printed at full precision as text) to ``digits`` decimals; integers, booleans and text as they are."""
    if (value is None or value is pd.NA or value is pd.NaT or isinstance(value, str) and value.strip() in RAW_MISSING
            or isinstance(value, (float, np.floating)) and np.isnan(value)):
        return MISSING
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    if isinstance(value, str) and RAW_FLOAT.match(value.strip()):
        return f"{float(value.strip().replace('−', '-')):.{digits}f}"
    return str(value)


def styled(table: pd.DataFrame | pd.Series, caption: str, digits: int = 2):
    """A table as the book shows it, with no raw cell left: every floating-point number — in float columns, in
    object columns of mixed values, in the index and the column labels — to ``digits`` decimals; missing cells and
    labels (None, NaN, ``<NA>``, NaT, or those words as text) as "–"; integers and text as they are; a caption."""
    if isinstance(table, pd.Series):
        table = table.to_frame()
    text = partial(cell_text, digits=digits)
    style = table.style.format(text, na_rep=MISSING).set_caption(caption)
    return style.format_index(text, axis=0, na_rep=MISSING).format_index(text, axis=1, na_rep=MISSING)
