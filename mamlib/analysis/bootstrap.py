"""Paired bootstrap confidence intervals for the comparisons of Tables 1–3 and 5 (and the analysis of Sec. 4.3).

Two configurations evaluated on the same items (utterances for ASR, clips for AEC) are compared by resampling the
items with replacement, B times. Corpus WER is a ratio of sums — per-item word errors e_i = S_i + D_i + I_i over
reference words n_i — so a resample that draws item i w_i times gives (percentage points, B minus A: negative = B
makes fewer errors)

    Δ* = 100 · Σ w_i e^B_i / Σ w_i n_i  −  100 · Σ w_i e^A_i / Σ w_i n_i

Classification error is the same with n_i = 1. The interval is the percentile interval of Δ* (the paper reports
none). Beside it, :func:`detectable_difference` gives the smallest difference the test set tells from noise,
:func:`single_system_resolution` a bound on it when the two systems made identical errors, and
:func:`items_needed` the test-set size an effect would need. Inputs are plain arrays or sweep rows; no model runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import jiwer
import numpy as np
import pandas as pd

#: Upper bound on the entries of one block of the ``[B, N]`` count matrix (bounds memory for large test sets).
_BLOCK_ENTRIES = 1 << 22
#: The three edit types of Table 6, in the column order of :func:`edit_counts`.
EDIT_TYPES: tuple[str, ...] = ("insertion", "substitution", "deletion")

Counts = Sequence[float] | np.ndarray
Row = Mapping[str, Any] | pd.Series


@dataclass(frozen=True)
class PairedInterval:
    """The difference B − A of two error rates on the same items (percentage points) with its bootstrap interval.

    ``detectable`` (points, at ``level``) is the smallest difference the test set tells from noise, from the paired
    differences or, when the two systems made identical errors, from A alone (:func:`single_system_resolution`);
    None when unknown (a single item, older callers).
    """

    difference: float
    low: float
    high: float
    n_items: int
    n_resamples: int
    level: float = 0.95
    detectable: float | None = None

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (the difference is outside resampling noise)."""
        return self.low > 0.0 or self.high < 0.0

    @property
    def verdict(self) -> str:
        """``"within noise"`` when the interval includes zero, else ``"fewer errors"`` / ``"more errors"`` (for B)."""
        return "fewer errors" if self.high < 0.0 else "more errors" if self.low > 0.0 else "within noise"

    def describe(self, digits: int = 2) -> str:
        """One phrase for prose, e.g. ``-1.25 points (95% interval -3.10 to +0.60): within noise``."""
        return (f"{self.difference:+.{digits}f} points ({100 * self.level:.0f}% interval {self.low:+.{digits}f} to "
                f"{self.high:+.{digits}f}): {self.verdict}")

    def items_for(self, effect: float) -> int | None:
        """Test items needed to detect ``|effect|`` points (:func:`items_needed`); None when the noise is unknown
        (no ``detectable``, or 0.0)."""
        if self.detectable is None or self.detectable == 0.0:
            return None
        return items_needed(self.detectable, self.n_items, effect)


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each item is drawn in each bootstrap resample: an integer ``[n_resamples, n_items]`` matrix whose
    rows sum to ``n_items`` (uniform draws with replacement)."""
    if n_items < 1 or n_resamples < 1:
        raise ValueError(f"need at least one item and one resample (got {n_items}, {n_resamples})")
    dtype = np.int32 if n_resamples * n_items < 2**31 else np.int64
    idx = rng.integers(0, n_items, size=(n_resamples, n_items), dtype=dtype)
    idx += (np.arange(n_resamples, dtype=dtype) * dtype(n_items))[:, None]  # row r counts into bins r·N … r·N + N − 1
    return np.bincount(idx.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def _checked(lengths: Counts | None, **errors: Counts) -> list[np.ndarray]:
    """The named per-item error counts and then the lengths (None: 1 per item) as float arrays, validated."""
    arrays = [np.asarray(v, dtype=np.float64) for v in errors.values()]
    arrays.append(np.ones_like(arrays[0]) if lengths is None else np.asarray(lengths, dtype=np.float64))
    for name, a in zip([*errors, "lengths"], arrays):
        if a.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional (got shape {a.shape})")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name} must be finite and non-negative")
    if len({len(a) for a in arrays}) > 1:
        raise ValueError(f"{', '.join(errors)} and lengths differ in length ({', '.join(str(len(a)) for a in arrays)})")
    if len(arrays[0]) == 0:
        raise ValueError("no items to compare")
    if np.any(arrays[-1] <= 0):
        raise ValueError("every item needs a positive length (reference words; 1 for a clip)")
    return arrays


def bootstrap_differences(
    errors_a: Counts, errors_b: Counts, lengths: Counts | None = None, *, n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0, scale: float = 100.0,
) -> np.ndarray:
    """The paired-bootstrap distribution of ``scale · (Σw·e_B / Σw·n − Σw·e_A / Σw·n)``, one value per resample
    (``lengths`` None: 1 per item; ``seed`` seeds a :class:`numpy.random.Generator` or is one), drawn in blocks."""
    a, b, n = _checked(lengths, errors_a=errors_a, errors_b=errors_b)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sums = np.stack([b - a, n], axis=1)  # [N, 2]: one product gives both resampled sums
    block = max(1, _BLOCK_ENTRIES // len(n))
    out = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        s = resample_counts(len(n), stop - start, rng).astype(np.float64) @ sums
        out[start:stop] = scale * s[:, 0] / s[:, 1]
    return out


def paired_bootstrap(
    errors_a: Counts, errors_b: Counts, lengths: Counts | None = None, *, n_resamples: int = 10_000,
    level: float = 0.95, seed: int | np.random.Generator = 0, scale: float = 100.0,
) -> PairedInterval:
    """Paired-bootstrap percentile interval for the error-rate difference B − A on the same items (the module's
    statistic): ``difference`` on the full sample, ``low``/``high`` the ``(1 ± level)/2`` quantiles."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    a, b, n = _checked(lengths, errors_a=errors_a, errors_b=errors_b)
    stats = bootstrap_differences(a, b, n, n_resamples=n_resamples, seed=seed, scale=scale)
    low, high = np.quantile(stats, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    diff = scale * (b.sum() - a.sum()) / n.sum()
    detectable = detectable_difference(a, b, n, level, scale=scale) if len(n) > 1 else None
    return PairedInterval(float(diff), float(low), float(high), len(n), int(n_resamples), float(level), detectable)


# -- what a comparison can detect ---------------------------------------------------------------------------------


def _half_width(x: np.ndarray, w: np.ndarray, confidence: float, scale: float) -> float:
    """``scale · z_{(1+confidence)/2} · SE`` of the ratio ``R = Σx / Σw`` by the delta method: ``SE = sqrt(Σ z_i² /
    (n (n − 1)))`` over the residuals ``z_i = (x_i − R·w_i) / w̄`` (all zero when ``x`` is proportional to ``w``)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if len(x) < 2:
        raise ValueError(f"need at least two items for a standard error (got {len(x)})")
    fitted = x.sum() / w.sum() * w
    z = np.zeros_like(x) if np.allclose(x, fitted, rtol=1e-12, atol=1e-12) else (x - fitted) / w.mean()
    se = math.sqrt(float(np.sum(z * z)) / (len(z) * (len(z) - 1)))
    return scale * NormalDist().inv_cdf((1.0 + confidence) / 2.0) * se


def detectable_difference(
    errors_a: Counts, errors_b: Counts, lengths: Counts | None = None, confidence: float = 0.95, *,
    scale: float = 100.0,
) -> float:
    """The smallest error-rate difference B − A (points) this test set tells from noise at ``confidence``: the
    half-width of the normal interval around ``Δ = Σd / Σw`` (``d_i = e^B_i − e^A_i``) from the ratio's delta-method
    standard error; ``stdev(d) / sqrt(n)`` scaled for classification. It matches the bootstrap interval's spread in
    large samples. 0.0 when every ``d_i = Δ·w_i`` (e.g. identical errors): see :func:`single_system_resolution`."""
    a, b, n = _checked(lengths, errors_a=errors_a, errors_b=errors_b)
    return _half_width(b - a, n, confidence, scale)


def single_system_resolution(
    errors: Counts, lengths: Counts | None = None, confidence: float = 0.95, *, scale: float = 100.0
) -> float:
    """√2 × the delta-method half-width of this system's own error rate: the resolution of a comparison with an
    equally variable, uncorrelated system — a conservative bound for when :func:`detectable_difference` is
    degenerate (identical outputs, e.g. λ = 0 chosen). 0.0 when the errors are proportional to the lengths."""
    e, n = _checked(lengths, errors=errors)
    return math.sqrt(2.0) * _half_width(e, n, confidence, scale)


def items_needed(detectable: float, n_items: int, effect: float) -> int:
    """Test items needed to detect ``|effect|`` points at the per-item variance of a test set of ``n_items`` items
    that detects ``detectable`` points: ``ceil(n_items · (detectable / |effect|)²)``, rounding noise ignored."""
    if n_items < 2:
        raise ValueError(f"need a test set of at least two items (got {n_items})")
    if effect == 0 or not math.isfinite(effect):
        raise ValueError(f"the effect must be finite and non-zero (got {effect})")
    if not (math.isfinite(detectable) and detectable >= 0.0):
        raise ValueError(f"detectable must be finite and non-negative (got {detectable})")
    return math.ceil(round(n_items * (detectable / abs(effect)) ** 2, 9))


# -- per-item error counts ----------------------------------------------------------------------------------------


def _edits(references: Sequence[str], hypotheses: Sequence[str], unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-item ``[insertions, substitutions, deletions]`` and reference lengths, from jiwer (one item at a time)."""
    if unit not in ("character", "word"):
        raise ValueError(f"unit must be 'character' or 'word', got {unit!r}")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if empty := [i for i, r in enumerate(references) if not str(r).strip()]:
        raise ValueError(f"reference(s) at position(s) {empty} are empty: no error rate is defined for them")
    process = jiwer.process_characters if unit == "character" else jiwer.process_words
    outs = [process(str(r), str(h)) for r, h in zip(references, hypotheses)]
    counts = np.asarray([[o.insertions, o.substitutions, o.deletions] for o in outs], dtype=np.int64)
    return counts, np.asarray([len(o.references[0]) for o in outs], dtype=np.int64)


def edit_counts(references: Sequence[str], hypotheses: Sequence[str], unit: str = "character") -> np.ndarray:
    """Per-utterance ``[insertions, substitutions, deletions]`` (``[N, 3]`` integers) of each hypothesis against its
    reference (Table 6), in characters (spaces count, so splitting or joining words is an edit) or words."""
    return _edits(references, hypotheses, unit)[0]


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance word errors ``S + D + I`` and reference words (strings as given, normalized by the store):
    ``100 · errors.sum() / words.sum()`` is the sweep row's ``wer``."""
    if len(references) == len(hypotheses) == 0:
        raise ValueError("no utterances")
    counts, words = _edits(references, hypotheses, "word")
    return counts.sum(axis=1), words


def _get(row: Row, key: str) -> Any:
    """``row[key]``, or None when missing or NaN (a column that other rows of the frame have)."""
    value = row.get(key)
    return None if isinstance(value, float) and np.isnan(value) else value


def is_asr_row(row: Row) -> bool:
    """True for a speech-recognition sweep row (references/hypotheses), False for a classification one."""
    if _get(row, "hypotheses") is not None and _get(row, "references") is not None:
        return True
    if _get(row, "predictions") is not None and _get(row, "labels") is not None:
        return False
    raise ValueError("a sweep row needs 'references' and 'hypotheses' (ASR) or 'labels' and 'predictions' (AEC)")


def item_errors(row: Row) -> tuple[np.ndarray, np.ndarray]:
    """Per-item error counts and sizes of one sweep row: :func:`word_errors` for ASR, ``prediction != label`` and 1
    for classification."""
    if is_asr_row(row):
        return word_errors(list(row["references"]), list(row["hypotheses"]))
    labels, preds = np.asarray(row["labels"]), np.asarray(row["predictions"])
    if labels.shape != preds.shape:
        raise ValueError(f"{labels.shape[0]} labels but {preds.shape[0]} predictions")
    return (labels != preds).astype(np.int64), np.ones(len(labels), dtype=np.int64)


def check_paired(baseline: Row, other: Row) -> list[str]:
    """The common item ids of two sweep rows; ValueError unless both list the same ids in the same order (and, for
    ASR, the same references)."""
    ids_a, ids_b = _get(baseline, "ids"), _get(other, "ids")
    if ids_a is None or ids_b is None:
        raise ValueError("both sweep rows need per-item 'ids' to be compared item by item")
    ids_a, ids_b = [str(i) for i in ids_a], [str(i) for i in ids_b]
    if ids_a != ids_b:
        if sorted(ids_a) == sorted(ids_b):
            raise ValueError("the two rows hold the same ids in a different order; a paired comparison needs the "
                             "same order")
        only_a, only_b = sorted(set(ids_a) - set(ids_b)), sorted(set(ids_b) - set(ids_a))
        raise ValueError(f"the two rows were not evaluated on the same items ({len(ids_a)} vs {len(ids_b)} ids; "
                         f"only in the first: {only_a[:5]}, only in the second: {only_b[:5]})")
    if is_asr_row(baseline) != is_asr_row(other):
        raise ValueError("cannot pair a speech-recognition row with a classification row")
    if is_asr_row(baseline) and list(baseline["references"]) != list(other["references"]):
        raise ValueError("the two rows have the same ids but different references")
    return ids_a


def compare_rows(
    baseline: Row, other: Row, *, n_resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> PairedInterval:
    """Paired bootstrap of ``other`` − ``baseline`` (WER or classification error, points) for two sweep rows on the
    same items — a λ, a block, a pick or a Table 5 row against the unmerged model. Where the paired differences are
    degenerate (identical errors), ``detectable`` is the baseline's :func:`single_system_resolution`."""
    check_paired(baseline, other)
    (e_a, n), (e_b, _) = item_errors(baseline), item_errors(other)
    iv = paired_bootstrap(e_a, e_b, n, n_resamples=n_resamples, level=level, seed=seed)
    if iv.detectable == 0.0:
        iv = replace(iv, detectable=single_system_resolution(e_a, n, level))
    return iv


# -- sweep frames -------------------------------------------------------------------------------------------------


def select_row(
    df: pd.DataFrame, *, split: str = "test", source: str = "source", lam: float | None = None, layers: str = "all"
) -> pd.Series:
    """The first row of a sweep frame for (split, source variant, λ, layers); ``source="none"`` or λ = 0 is the
    unmerged model, whatever ``layers``."""
    part = df[df["split"] == split]
    if source == "none" or (lam is not None and float(lam) == 0.0):
        part = part[part["source"] == "none"]
        what = f"unmerged row (split {split})"
    else:
        if lam is None:
            raise ValueError("select_row needs λ for a merged row")
        part = part[(part["source"] == source) & (part["layers"] == layers)
                    & np.isclose(part["lambda"].astype(float), float(lam), rtol=0.0, atol=1e-9)]
        what = f"row with split {split}, source {source!r}, λ = {lam}, layers {layers!r}"
    if part.empty:
        raise ValueError(f"the sweep has no {what}")
    return part.iloc[0]


def compare_to_unmerged(
    df: pd.DataFrame, lam: float, *, split: str = "test", source: str = "source", layers: str = "all",
    n_resamples: int = 10_000, level: float = 0.95, seed: int = 0,
) -> PairedInterval:
    """:func:`compare_rows` of (``source`` at ``lam`` on ``layers``) against the unmerged row on ``split`` of one
    sweep frame; at λ = 0 the two rows coincide and the interval is [0, 0]."""
    base = select_row(df, split=split, source="none")
    other = select_row(df, split=split, source=source, lam=lam, layers=layers)
    return compare_rows(base, other, n_resamples=n_resamples, level=level, seed=seed)


def intervals_table(intervals: Mapping[str, PairedInterval], value: str = "WER") -> pd.DataFrame:
    """One row per comparison, for display beside a table: the difference, its interval, the smallest detectable
    difference (NaN when unknown), the number of items, whether it is outside noise and the verdict."""
    rows = {
        name: {f"Δ {value} (points)": iv.difference, f"{100 * iv.level:.0f}% low": iv.low,
               f"{100 * iv.level:.0f}% high": iv.high,
               "detectable (±pts)": np.nan if iv.detectable is None else iv.detectable, "items": iv.n_items,
               "outside noise": "yes" if iv.excludes_zero else "no", "verdict": iv.verdict}
        for name, iv in intervals.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("comparison")
