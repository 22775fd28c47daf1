"""Is there a similarity signal to choose layers by? (Sec. 4.1, Table 3.)

The data-driven pick ranks layers by how close the paired audio and text vectors are. That ranking means something
only if the scores tell layers apart and the vectors are related at all. Two readings of the scores table say
whether they are:

* **Agreement.** If every metric picks the same layers at every k, Table 3's metric columns are identical by
  construction and cannot be compared.
* **Orthogonality.** After L2 normalization the inner product of a pair is its cosine similarity, and the Euclidean
  distance of two unit vectors is √(2 − 2·cos θ): √2 ≈ 1.414 for orthogonal vectors, 0 for equal ones. Cosines
  near 0 (distances near √2) in every layer mean the two models' vectors are unrelated, whatever the ranking says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

SQRT2 = math.sqrt(2.0)
#: Below this largest |cosine| the paired vectors count as nearly orthogonal.
ORTHOGONAL_COSINE = 0.2

Picks = Mapping[tuple[str, int], Sequence[int]]
_NORMALIZATIONS = {"none": "raw", "l2": "L2-normalized", "rms": "RMS-normalized"}


def metrics_agree(picked: Picks) -> tuple[int, int]:
    """(how many k, of how many, at which every metric picks the same layers) for one normalization's picks."""
    by_k: dict[int, set[tuple[int, ...]]] = {}
    for (_, k), layers in picked.items():
        by_k.setdefault(k, set()).add(tuple(sorted(layers)))
    return sum(len(sets) == 1 for sets in by_k.values()), len(by_k)


def _range(scores: pd.DataFrame, metric: str, normalization: str) -> tuple[float, float]:
    part = scores[(scores["metric"] == metric) & (scores["normalization"] == normalization)]["score"]
    return (float(part.min()), float(part.max())) if len(part) else (math.nan, math.nan)


def _fmt(x: float) -> str:
    return f"{x:.3f}".replace("-", "−")


def signal_summary(scores: pd.DataFrame, picked: Mapping[str, Picks]) -> dict[str, Any]:
    """What one corpus's layer-similarity scores (long format: ``layer, metric, score, normalization``) can support,
    given each normalization's top-k picks ``{(metric, k): layers}``: the picks on which all metrics agree (``agree``
    of ``picks``, and per normalization), the ranges of the L2-normalized inner products (cosines) and Euclidean
    distances, the largest gap between such a distance and √2, whether every |cosine| is below
    :data:`ORTHOGONAL_COSINE` (``orthogonal``), and a ``sentence`` that says all this with the numbers."""
    per_norm = {norm: metrics_agree(p) for norm, p in picked.items()}
    agree, total = sum(a for a, _ in per_norm.values()), sum(n for _, n in per_norm.values())
    cos_lo, cos_hi = _range(scores, "inner_product", "l2")
    d_lo, d_hi = _range(scores, "euclidean", "l2")
    gap = max(abs(d_lo - SQRT2), abs(d_hi - SQRT2)) if not math.isnan(d_lo) else math.nan
    orthogonal = not math.isnan(cos_lo) and max(abs(cos_lo), abs(cos_hi)) < ORTHOGONAL_COSINE
    n_metrics = len({m for m, _ in next(iter(picked.values()), {})})
    if total and agree == total:
        scored = " and ".join(_NORMALIZATIONS.get(n, n) for n in picked)
        first = (f"All {n_metrics} metrics pick the same layers at every k ({agree} of {total} picks, {scored}), so "
                 "Table 3's metric columns are identical.")
    else:
        first = f"The metrics pick the same layers in {agree} of {total} picks (k and normalization)."
    second = "" if math.isnan(cos_lo) else (
        f" After L2 normalization the paired audio and text vectors have cosine similarities from {_fmt(cos_lo)} to "
        f"{_fmt(cos_hi)} and Euclidean distances from {_fmt(d_lo)} to {_fmt(d_hi)}, within {gap:.3f} of √2 ≈ 1.414, "
        "the distance of orthogonal unit vectors" + (
            f": every |cosine| is below {ORTHOGONAL_COSINE:g}, the paired vectors are nearly orthogonal in every "
            "layer, and the scores carry too little similarity to choose layers by." if orthogonal else
            f": some |cosine| reaches {ORTHOGONAL_COSINE:g} or more, so the vectors are not orthogonal and the "
            "ranking can reflect how alike the layers are."))
    return {"agree": agree, "picks": total, "per_normalization": per_norm, "cosine_min": cos_lo,
            "cosine_max": cos_hi, "distance_min": d_lo, "distance_max": d_hi, "sqrt2_gap": gap,
            "orthogonal": orthogonal, "sentence": first + second}


def _per_corpus(scores: Mapping[str, pd.DataFrame], picked: Mapping[tuple[str, str], Picks]) -> dict[str, dict]:
    """:func:`signal_summary` of every corpus (``picked`` keyed by (corpus, normalization), as
    :class:`~mamlib.report.table3.LayerPicks` holds them)."""
    return {label: signal_summary(table, {norm: p for (c, norm), p in picked.items() if c == label})
            for label, table in scores.items()}


def signal_table(scores: Mapping[str, pd.DataFrame], picked: Mapping[tuple[str, str], Picks]) -> pd.DataFrame:
    """:func:`signal_summary` of every corpus, one row each."""
    rows = {label: {"metrics agree (picks)": f"{s['agree']} of {s['picks']}",
                    "cosine, L2 (min)": s["cosine_min"], "cosine, L2 (max)": s["cosine_max"],
                    "distance, L2 (min)": s["distance_min"], "distance, L2 (max)": s["distance_max"],
                    "largest |distance − √2|": s["sqrt2_gap"], "nearly orthogonal": "yes" if s["orthogonal"] else "no"}
            for label, s in _per_corpus(scores, picked).items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("corpus")


def signal_findings(scores: Mapping[str, pd.DataFrame], picked: Mapping[tuple[str, str], Picks]) -> dict[str, str]:
    """Chapter 3's glue: ``signal``, one sentence per corpus (:func:`signal_summary`) prefixed with its name."""
    parts = [f"On {label}: {s['sentence']}" for label, s in _per_corpus(scores, picked).items()]
    return {"signal": " ".join(parts) or "No corpus of this build was scored."}
