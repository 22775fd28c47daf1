"""The book's figures: error against λ (Table 1) and layer-similarity heatmaps (Table 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from mamlib.selection.picks import similarity_ranks


def plot_lambda_sweep(ours: pd.DataFrame, paper: pd.DataFrame | None, title: str, ylabel: str = "WER (%)"):
    """Error vs λ per source variant: ours on the left, the paper's on the right (separate axes: different scales)."""
    sns.set_theme(style="whitegrid")
    ncols = 2 if paper is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.6), squeeze=False)
    for ax, (label, table) in zip(axes[0], [("ours", ours), ("paper", paper)][:ncols]):
        long = table.reset_index().melt(id_vars="λ", var_name="source", value_name="error").dropna()
        sns.lineplot(data=long, x="λ", y="error", hue="source", style="source", markers=True, dashes=False, ax=ax)
        ax.set_title(f"{title}: {label}")
        ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def plot_similarity_heatmaps(scores: Mapping[str, pd.DataFrame], normalizations: Sequence[str] = ("none", "l2")):
    """One heatmap per corpus and normalization: colour = rank of the layer under each metric, text = raw score."""
    panels = [(label, norm) for label in scores for norm in normalizations]
    n_layers = int(next(iter(scores.values()))["layer"].nunique())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 0.5 * n_layers + 1.8), squeeze=False)
    for ax, (label, norm) in zip(axes[0], panels):
        part = similarity_ranks(scores[label])
        part = part[part["normalization"] == norm]
        ranks = part.pivot(index="layer", columns="metric", values="rank")
        values = part.pivot(index="layer", columns="metric", values="score")
        sns.heatmap(ranks, annot=values, fmt=".3g", cmap="viridis_r", cbar=False, ax=ax, annot_kws={"size": 7})
        ax.set_title(f"{label}, {'raw' if norm == 'none' else 'L2-normalized'}")
    fig.tight_layout()
    return fig

