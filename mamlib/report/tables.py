"""The paper's table layouts, filled from our sweeps (and, through :mod:`mamlib.report.paper`, from its numbers),
and how the book shows a table."""

from __future__ import annotations

import pandas as pd

from mamlib.merge.sources import source_variants


def by_source(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Rows λ, one column per source variant (in the registry's order, under its table label): Table 1's layout."""
    table = frame.pivot_table(index="lambda", columns="source", values=value)
    labels = {name: variant.label for name, variant in source_variants().items()}
    table = table[[k for k in labels if k in table.columns]]
    table.columns = [labels[c] for c in table.columns]
    table.index.name = "λ"
    return table


def table1_block(df: pd.DataFrame, split: str = "test", value: str = "wer") -> pd.DataFrame:
    """Table 1's layout for one corpus: rows λ, columns Source / N(Source) / N(Target) / N(0,1), error (%).

    The λ = 0 row holds the unmerged model under "Source" and is empty for the noise columns, as in the paper.
    """
    part = df[(df["split"] == split) & (df["layers"] == "all")]
    merged = part[part["source"] != "none"]
    base = part[part["source"] == "none"].assign(source="source")
    return by_source(pd.concat([merged, base.iloc[:1]]), value).sort_index()


def table2_block(df: pd.DataFrame, lam: float, split: str = "test", value: str = "wer") -> pd.Series:
    """Table 2's column for one corpus: error (%) per merged block at ``lam``, plus the unmerged "None" row."""
    part = df[df["split"] == split]
    merged = part[(part["source"] == "source") & (part["lambda"] == lam) & (part["layers"] != "all")]
    out = merged.drop_duplicates("layers").set_index("layers")[value]
    base = part[part["source"] == "none"][value]
    out.loc["None"] = float(base.iloc[0]) if len(base) else float("nan")
    out.index.name = "layers merged"
    return out


def beside(ours: pd.DataFrame, paper: pd.DataFrame, ours_label: str, paper_label: str = "paper") -> pd.DataFrame:
    """Our table and the paper's side by side under a two-level column header; rows are the union of both."""
    out = pd.concat({ours_label: ours, paper_label: paper}, axis=1)
    return out.sort_index()


def by_position(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Rows "<layers>" → "block 1", "block 2", … in order, "None" kept (for lining up with the paper)."""
    out = frame.copy()
    out.index = [i if i == "None" else f"block {n + 1}" for n, i in enumerate(frame.index)]
    return out


def blocks_then_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows "block 1", "block 2", … in numeric order, then "None"."""
    blocks = sorted((i for i in frame.index if i != "None"), key=lambda i: int(str(i).split()[-1]))
    return frame.reindex(blocks + (["None"] if "None" in frame.index else []))


def styled(table: pd.DataFrame, caption: str, digits: int = 2):
    """A table as the book shows it: floating-point numbers to ``digits`` decimals, missing cells as "–", a caption
    (integer and text columns are shown as they are)."""
    fmt = f"{{:.{digits}f}}"
    floats = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
    style = table.style.format(fmt, na_rep="–", subset=floats).set_caption(caption)
    for level in range(table.index.nlevels):
        if pd.api.types.is_float_dtype(table.index.get_level_values(level)):
            style = style.format_index(fmt, axis=0, level=level)
    return style
