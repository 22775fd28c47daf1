"""Choosing on dev, reporting on test (Sec. 4.1): the λ selection rule and the layer-block protocol of Table 2."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mamlib.sweeps.grid import Sweep, SweepGrid


def best_lambda(rows: pd.DataFrame, value: str) -> float:
    """The paper's selection rule: the λ of the row with the lowest ``value`` (dev error), ties to the smaller λ."""
    if rows.empty:
        raise ValueError("no dev results to choose λ from")
    return float(rows.sort_values([value, "lambda"]).iloc[0]["lambda"])


def choose_lambda(
    df: pd.DataFrame, variant: str = "source", layers: str = "all", dev: pd.DataFrame | None = None,
    value: str = "wer",
) -> dict[str, float]:
    """Sec. 4.1's protocol: the λ with the lowest dev error (λ = 0 included), and the test error there and at λ = 0.

    ``dev`` is the sweep whose dev split chooses λ (default: ``df`` itself, for corpora too small to split).
    ``relative_change`` is the book's one relative measure, :func:`relative_change` (negative = fewer errors).
    """
    def rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
        frame = frame[frame["split"] == split]
        return frame[(frame["source"] == "none") | ((frame["source"] == variant) & (frame["layers"] == layers))]

    dev_rows = rows(df if dev is None else dev, "dev")
    if dev_rows.empty:
        raise ValueError("no dev split to choose λ on: pass the sweep of the corpus that selects it as dev=")
    lam = best_lambda(dev_rows, value)
    dev_value = float(dev_rows[dev_rows["lambda"] == lam][value].iloc[0])
    test = rows(df, "test").set_index("lambda")[value]
    base, merged = float(test.loc[0.0]), float(test.loc[lam])
    return {"lambda": lam, "dev": dev_value, "test": merged, "test_unmerged": base,
            "relative_change": relative_change(base, merged)}


def relative_change(unmerged: float, merged: float) -> float:
    """The book's sign convention for a change of error (every chapter): (merged − unmerged) / unmerged × 100 %, so
    that a negative value means fewer errors — the paper's "relative reduction of 6.70 %" (abstract) is −6.70 % here.
    NaN when the unmerged error is 0 (no relative change is defined)."""
    return 100.0 * (merged - unmerged) / unmerged if unmerged else float("nan")


def scaled_blocks(num_layers: int, paper_layers: int = 24, size: int = 8, stride: int = 4) -> list[list[int]]:
    """Table 2's blocks of consecutive layers, scaled from the paper's model to one of ``num_layers`` layers.

    The paper merges 8-layer blocks every 4 layers of HuBERT-large's 24 (0–7, 4–11, …, 16–23), and 4- and 8-layer
    blocks of BEATs' 12. For another depth the block keeps its share of the model (size·L/paper_layers) and the
    stride its share, at least 1 layer.
    """
    if num_layers < 2:
        raise ValueError(f"a model of {num_layers} layer(s) has no proper subset of blocks")
    s = max(1, min(num_layers - 1, round(size * num_layers / paper_layers)))
    step = max(1, round(stride * num_layers / paper_layers))
    return [list(range(start, start + s)) for start in range(0, num_layers - s + 1, step)]


def table2_blocks(task: str, num_layers: int) -> list[list[int]]:
    """Table 2's candidate blocks for a model of ``num_layers`` layers, by task.

    ``"asr"``: HuBERT-large's 8-layer blocks every 4 layers of 24 (:func:`scaled_blocks` with its defaults).
    ``"aec"``: BEATs' 4- and 8-layer blocks every 4 layers of 12 (0–3, 4–7, 8–11, 0–7, 4–11), in that order.
    Both keep their share of the depth at other depths. Chapter 2 reports these blocks and Table 5's MAM row
    chooses among them: one list per task, so the two can never disagree.
    """
    if task == "asr":
        return scaled_blocks(num_layers)
    if task == "aec":
        both = scaled_blocks(num_layers, 12, 4, 4) + scaled_blocks(num_layers, 12, 8, 4)
        return [list(b) for b in dict.fromkeys(tuple(b) for b in both)]
    raise ValueError(f"unknown task {task!r}: Table 2's blocks are defined for 'asr' and 'aec'")


def layerwise_sweep(
    sweep: Sweep,
    lambdas: Sequence[float],
    blocks: Sequence[Sequence[int]],
    *,
    dev: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, float]:
    """Table 2's protocol: every block × every non-zero λ on dev, one λ chosen there (the lowest dev error over
    all blocks; ties → smaller λ), then every block at that λ on test. Returns the rows and the λ.

    ``dev`` is the dev sweep of the corpus that chooses λ, for corpora without a dev split of their own; the rows
    returned are then this corpus's test rows only (never the other corpus's).
    """
    layer_sets = tuple(tuple(b) for b in blocks)
    own_dev = dev is None
    if dev is None:
        dev = sweep.run(SweepGrid(variants=("source",), lambdas=tuple(x for x in lambdas if x > 0),
                                  layer_sets=layer_sets, splits=("dev",)))
    candidates = dev[(dev["split"] == "dev") & (dev["source"] == "source") & (dev["layers"] != "all")]
    lam = best_lambda(candidates, sweep.value)
    test = sweep.run(SweepGrid(variants=("source",), lambdas=(0.0, lam), layer_sets=layer_sets, splits=("test",)))
    return (pd.concat([dev, test], ignore_index=True) if own_dev else test), lam
