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


def choose_lambda(df: pd.DataFrame, dev: pd.DataFrame | None = None, value: str = "wer") -> dict[str, float]:
    """Sec. 4.1's protocol on Table 1's all-layer sweep ``df``: the λ with the lowest dev error (λ = 0 included), the
    test error there and at λ = 0, and their :func:`relative_change`. ``dev`` is the sweep whose dev split chooses λ
    (default: ``df`` itself; another corpus's for corpora too small to split)."""
    def rows(frame: pd.DataFrame, split: str) -> pd.DataFrame:
        frame = frame[frame["split"] == split]
        return frame[(frame["source"] == "none") | ((frame["source"] == "source") & (frame["layers"] == "all"))]

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
    """Table 2's blocks of ``size`` consecutive layers every ``stride`` (the paper's, on a ``paper_layers``-deep model:
    HuBERT-large's 8 every 4 of 24 by default), scaled to ``num_layers`` layers: block and stride keep their share of
    the depth, at least 1 layer."""
    if num_layers < 2:
        raise ValueError(f"a model of {num_layers} layer(s) has no proper subset of blocks")
    s = max(1, min(num_layers - 1, round(size * num_layers / paper_layers)))
    step = max(1, round(stride * num_layers / paper_layers))
    return [list(range(start, start + s)) for start in range(0, num_layers - s + 1, step)]


def table2_blocks(task: str, num_layers: int) -> list[list[int]]:
    """Table 2's candidate blocks for a model of ``num_layers`` layers, by task, for Chapter 2 and Table 5's MAM row
    alike: ``"asr"``, HuBERT-large's 8-layer blocks every 4 of 24 layers; ``"aec"``, BEATs' 4- and 8-layer blocks
    every 4 of 12 (0–3, 4–7, 8–11, 0–7, 4–11); each keeping its share of the depth at other depths."""
    if task == "asr":
        return scaled_blocks(num_layers)
    if task == "aec":
        both = scaled_blocks(num_layers, 12, 4, 4) + scaled_blocks(num_layers, 12, 8, 4)
        return [list(b) for b in dict.fromkeys(tuple(b) for b in both)]
    raise ValueError(f"unknown task {task!r}: Table 2's blocks are defined for 'asr' and 'aec'")


def block_dev_sweep(sweep: Sweep, lambdas: Sequence[float], blocks: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Table 2's dev sweep, where its λ is chosen: every block × every non-zero λ on the dev split."""
    return sweep.run(SweepGrid(variants=("source",), lambdas=tuple(x for x in lambdas if x > 0),
                               layer_sets=tuple(tuple(b) for b in blocks), splits=("dev",)))


def layerwise_sweep(sweep: Sweep, lambdas: Sequence[float], blocks: Sequence[Sequence[int]], *,
                    dev: pd.DataFrame | None = None) -> tuple[pd.DataFrame, float]:
    """Table 2's protocol: :func:`block_dev_sweep`, one λ chosen there (the lowest dev error over all blocks; ties →
    smaller λ), then every block at that λ on test. Returns the rows and the λ. ``dev`` is the dev sweep of the
    corpus that chooses λ, for corpora without a dev split of their own; the rows are then this corpus's test rows."""
    own_dev = dev is None
    dev = block_dev_sweep(sweep, lambdas, blocks) if own_dev else dev
    candidates = dev[(dev["split"] == "dev") & (dev["source"] == "source") & (dev["layers"] != "all")]
    lam = best_lambda(candidates, sweep.value)
    test = sweep.run(SweepGrid(variants=("source",), lambdas=(0.0, lam), layer_sets=tuple(tuple(b) for b in blocks),
                               splits=("test",)))
    return (pd.concat([dev, test], ignore_index=True) if own_dev else test), lam
