"""Layer-similarity scores (Sec. 4.1, Table 3) as pure functions over pooled representations ``[L, N, width]``:
Euclidean distance and inner product per pair (averaged), the Sliced Wasserstein Distance between the two sets of
vectors, normalizations, and the top-k pick. :mod:`mamlib.selection.representations` explains the readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import ot
import pandas as pd
from torch import Tensor

from mamlib.merge.schedule import check_layer_map
from mamlib.selection.representations import HIGHER_IS_MORE_SIMILAR, METRICS, Metric, Normalization


def _as_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _pairs(a: Any, b: Any, paired: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[n_samples, width]`` arrays of the same width (and, when ``paired``, as many samples)."""
    x, y = _as_array(a, "target representations"), _as_array(b, "source representations")
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected [n_samples, width] arrays, got shapes {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"representation widths differ: {x.shape[1]} vs {y.shape[1]}; layers cannot be compared")
    if paired and x.shape[0] != y.shape[0]:
        raise ValueError(f"paired metrics need as many target as source samples, got {x.shape[0]} and {y.shape[0]}")
    return x, y


def euclidean_distance(a: Any, b: Any) -> float:
    """Mean over pairs ``n`` of ``‖a_n − b_n‖₂`` for ``[N, width]`` arrays (lower = more similar)."""
    x, y = _pairs(a, b)
    return float(np.linalg.norm(x - y, axis=1).mean())


def inner_product(a: Any, b: Any) -> float:
    """Mean over pairs ``n`` of ``⟨a_n, b_n⟩`` for ``[N, width]`` arrays (higher = more similar)."""
    x, y = _pairs(a, b)
    return float(np.einsum("nh,nh->n", x, y).mean())


def sliced_wasserstein(a: Any, b: Any, *, n_projections: int = 256, seed: int = 0, p: int = 2) -> float:
    """Sliced Wasserstein Distance [20] between the empirical distributions (uniform weights) of the rows of ``a``
    and ``b`` (row counts may differ) by POT, ``n_projections`` directions drawn from ``seed``, order ``p`` (lower =
    more similar)."""
    if n_projections < 1:
        raise ValueError(f"n_projections must be positive, got {n_projections}")
    x, y = _pairs(a, b, paired=False)
    return float(ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, p=p, seed=seed))


def normalize_representations(x: Any, how: Normalization) -> np.ndarray:
    """Rescale ``[..., N, width]`` pooled vectors: ``"none"``, ``"l2"`` (each vector to unit norm) or ``"rms"`` (each
    ``[N, width]`` slice divided by the root-mean-square norm of its vectors)."""
    a = _as_array(x, "representations")
    if how == "none":
        return a
    if how not in ("l2", "rms"):
        raise ValueError(f"normalize must be 'none', 'l2' or 'rms', got {how!r}")
    norms = (np.linalg.norm(a, axis=-1, keepdims=True) if how == "l2"
             else np.sqrt((a**2).sum(axis=-1).mean(axis=-1, keepdims=True))[..., None])
    if np.any(norms == 0):
        raise ValueError(f"cannot {how.upper()}-normalise an all-zero {'representation' if how == 'l2' else 'layer'}")
    return a / norms


def _check_metric(metric: str) -> None:
    if metric not in HIGHER_IS_MORE_SIMILAR:
        raise ValueError(f"unknown metric {metric!r}; known: {list(METRICS)}")


def layer_scores(
    target: Any, source: Any, metric: Metric, *, layer_map: Sequence[int] | None = None,
    normalize: Normalization = "none",
) -> np.ndarray:
    """One score per target layer between ``target [L_t, N, width]`` and ``source [L_s, N, width]`` representations
    of the same width: target layer ``i`` against source layer ``layer_map[i]`` (None: the identity, for equal
    depths). :data:`HIGHER_IS_MORE_SIMILAR` gives each metric's direction."""
    _check_metric(metric)
    t, s = _as_array(target, "target representations"), _as_array(source, "source representations")
    if t.ndim != 3 or s.ndim != 3:
        raise ValueError(f"expected [n_layers, n_samples, width] arrays, got shapes {t.shape} and {s.shape}")
    if t.shape[2] != s.shape[2]:
        raise ValueError(f"target width {t.shape[2]} differs from source width {s.shape[2]}: layer similarity "
                         "(Sec. 4.1) needs models of the same hidden size")
    if t.shape[1] != s.shape[1]:
        raise ValueError(f"{t.shape[1]} target samples vs {s.shape[1]} source samples: representations must be paired")
    if layer_map is None and t.shape[0] != s.shape[0]:
        raise ValueError(f"target has {t.shape[0]} layers, source {s.shape[0]}: give a layer_map (target layer → "
                         "source layer)")
    lmap = check_layer_map(range(t.shape[0]) if layer_map is None else layer_map, t.shape[0], s.shape[0])
    t, s = normalize_representations(t, normalize), normalize_representations(s, normalize)
    score = {"euclidean": euclidean_distance, "inner_product": inner_product, "swd": sliced_wasserstein}[metric]
    return np.asarray([score(t[i], s[j]) for i, j in enumerate(lmap)], dtype=np.float64)


def similarity_table(
    target: Any, source: Any, *, layer_map: Sequence[int] | None = None, normalize: Normalization = "none"
) -> pd.DataFrame:
    """:func:`layer_scores` of every metric, as a DataFrame indexed by target layer (one column per metric)."""
    return pd.DataFrame({m: layer_scores(target, source, m, layer_map=layer_map, normalize=normalize)
                         for m in METRICS}).rename_axis("layer")


def rank_layers(scores: Any, metric: str) -> list[int]:
    """Layer indices from most to least similar under ``metric`` (ties: lower layer first)."""
    _check_metric(metric)
    a = _as_array(scores, "scores")
    if a.ndim != 1:
        raise ValueError(f"expected one score per layer, got shape {a.shape}")
    key = -a if HIGHER_IS_MORE_SIMILAR[metric] else a
    return [int(i) for i in np.argsort(key, kind="stable")]


def top_k_layers(scores: Any, metric: str, k: int) -> list[int]:
    """The ``k`` most similar layers under ``metric``, in increasing layer order (the subset ℓ of Eq. 2)."""
    ranking = rank_layers(scores, metric)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(ranking):
        raise ValueError(f"k must be an integer in [1, {len(ranking)}], got {k!r}")
    return sorted(ranking[:k])
