"""The book's figures: error against λ (Table 1, Sec. 4.1) and layer-similarity heatmaps (Table 3, Sec. 4.1).

Legends and colour bars sit outside the plotting area, so that no curve or cell hides behind them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import BoundaryNorm, ListedColormap

from mamlib.selection.picks import METRIC_LABELS, similarity_ranks

#: How the figures name a normalization of the pooled vectors (Chapter 3).
NORMALIZATION_LABELS: dict[str, str] = {"none": "raw", "l2": "L2-normalized", "rms": "RMS-normalized"}
#: Errors above this (%) cannot share an axis with the paper's, which stop at 100 %.
SHARED_SCALE_LIMIT = 100.0


def plot_lambda_sweep(ours: pd.DataFrame, paper: pd.DataFrame | None, ours_title: str,
                      paper_title: str | None = None, ylabel: str = "WER (%)"):
    """Table 1 as curves (Sec. 4.1): error against λ per source variant, ours on the left and, when our dataset has a
    counterpart in the paper, the paper's on the right under ``paper_title``. The panels share their y-axis unless
    our errors pass the paper's 100 % (insertions: a looping sequence-to-sequence recognizer), which our title then
    says; one legend, outside the axes, one colour and marker per source variant."""
    sns.set_theme(style="whitegrid")
    panels = [(ours_title, ours)] + ([(paper_title or "paper", paper)] if paper is not None else [])
    longs = [t.reset_index().melt(id_vars="λ", var_name="source", value_name="error").dropna() for _, t in panels]
    order = list(dict.fromkeys(s for long in longs for s in long["source"]))
    palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
    ours_max = float(longs[0]["error"].max()) if len(longs[0]) else 0.0
    share = len(panels) == 2 and ours_max <= SHARED_SCALE_LIMIT
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels) + 1.8, 3.8), squeeze=False,
                             sharey=share, layout="constrained")
    for i, (ax, (title, _), long) in enumerate(zip(axes[0], panels, longs)):
        sns.lineplot(data=long, x="λ", y="error", hue="source", style="source", hue_order=order, style_order=order,
                     palette=palette, markers=True, dashes=False, ax=ax, legend=True)
        if i == 0 and len(panels) == 2 and not share:
            title += f"\nown y-scale: errors reach {ours_max:.0f} % (the paper's stop at 100 %)"
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.set_xticks(sorted(set(long["λ"])))
    if share:
        top = max(float(long["error"].max()) for long in longs if len(long))
        axes[0][0].set_ylim(0.0, 1.05 * top)
    handles: dict[str, object] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend([handles[k] for k in order if k in handles], [k for k in order if k in handles],
               title="source", loc="outside right upper", fontsize=8, title_fontsize=9)
    return fig


def plot_similarity_heatmaps(scores: Mapping[str, pd.DataFrame], normalizations: Sequence[str] = ("none", "l2")):
    """Sec. 4.1's layer similarities, one heatmap per corpus and normalization: the colour is the rank each metric
    gives the layer (1 = most similar: smallest distance, largest inner product), the number in the cell its score.
    One colour bar, outside the panels, explains the ranks."""
    panels = [(label, norm) for label in scores for norm in normalizations]
    n_layers = int(next(iter(scores.values()))["layer"].nunique())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 1.2, 0.5 * n_layers + 2.0), squeeze=False,
                             layout="constrained")
    cmap = ListedColormap(sns.color_palette("viridis_r", n_layers))
    norm_ranks = BoundaryNorm(np.arange(0.5, n_layers + 1.5), n_layers)
    for ax, (label, norm) in zip(axes[0], panels):
        part = similarity_ranks(scores[label])
        part = part[part["normalization"] == norm]
        metrics = [m for m in METRIC_LABELS if m in set(part["metric"])]
        ranks = part.pivot(index="layer", columns="metric", values="rank")[metrics].rename(columns=METRIC_LABELS)
        values = part.pivot(index="layer", columns="metric", values="score")[metrics].map(
            lambda v: f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}")
        sns.heatmap(ranks, annot=values.to_numpy(), fmt="", cmap=cmap, norm=norm_ranks, cbar=False, ax=ax,
                    annot_kws={"size": 8})
        ax.set_title(f"{label}, {NORMALIZATION_LABELS.get(norm, norm)}", fontsize=10)
        ax.set_xlabel("metric")
        ax.set_ylabel("target layer")
        ax.tick_params(axis="x", labelrotation=0, labelsize=8)
        ax.tick_params(axis="y", labelrotation=0)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm_ranks, cmap=cmap), ax=axes[0].tolist(), location="right",
                       ticks=np.arange(1, n_layers + 1), shrink=0.9)
    bar.set_label("rank (1 = most similar)")
    return fig
