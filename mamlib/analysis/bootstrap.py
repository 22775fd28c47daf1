"""Paired bootstrap confidence intervals for the comparisons of Tables 1–3 and 5 (and the analysis of Sec. 4.3).

Two configurations evaluated on the same items (utterances for ASR, clips for AEC) are compared by resampling the
items with replacement, B times, and recomputing the difference of their error rates on every resample. Corpus WER
is a ratio of sums — per-utterance word errors e_i = S_i + D_i + I_i over reference words n_i — so the statistic on
a resample that draws item i w_i times is

    Δ* = 100 · Σ w_i e^B_i / Σ w_i n_i  −  100 · Σ w_i e^A_i / Σ w_i n_i

(percentage points, B minus A: negative = B makes fewer errors; e^A, e^B are the item's errors under A and B).
Classification error is the same with n_i = 1 (e_i = 1 for a wrong clip). The interval is the percentile interval of
Δ* (the paper reports no intervals; Sec. 4.3's analysis and the comparisons of Tables 1–3 and 5 get them here). The
resample counts are drawn as a [B, N] matrix (integer indices + ``bincount``) and both sums are matrix–vector
products, so 10,000 resamples of 300 items take about 0.1–0.2 s on a busy 2-core CPU.

What a comparison *can* detect is reported beside its interval: :func:`detectable_difference` is the half-width
of the normal-approximation interval from the ratio estimator's (delta-method) standard error of the paired
differences — the smallest difference this test set tells from noise — and :func:`single_system_resolution` an
upper bound on it for a comparison whose two systems made identical errors (e.g. λ = 0 chosen), where the paired
differences say nothing about noise. :func:`items_needed` turns either into the test-set size an effect would need.

Everything here takes plain lists, arrays, dicts or pandas rows (a sweep row as :mod:`mamlib.sweeps.grid` returns
it); nothing runs a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from typing import Any

import jiwer
import numpy as np
import pandas as pd

#: Upper bound on the entries of one block of the ``[B, N]`` count matrix (bounds memory for large test sets).
_BLOCK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class PairedInterval:
    """The difference B − A of two error rates on the same items (percentage points) with its bootstrap interval.

    ``detectable`` (points, at ``level``) is the smallest difference this test set could tell from noise — see
    :func:`detectable_difference`; ``detectable_from`` says where it came from: ``"paired"`` (the paired
    differences) or ``"baseline"`` (:func:`single_system_resolution` of A, a conservative bound used when the two
    systems made identical errors on every item). Both are None for intervals built without them (older callers)
    or for a single item.
    """

    difference: float
    low: float
    high: float
    n_items: int
    n_resamples: int
    level: float = 0.95
    detectable: float | None = None
    detectable_from: str | None = None

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (the difference is outside resampling noise)."""
        return self.low > 0.0 or self.high < 0.0

    @property
    def verdict(self) -> str:
        """``"within noise"`` when the interval includes zero, else ``"fewer errors"`` / ``"more errors"`` (for B)."""
        if not self.excludes_zero:
            return "within noise"
        return "fewer errors" if self.high < 0.0 else "more errors"

    def describe(self, digits: int = 2) -> str:
        """One phrase for prose, e.g. ``-1.25 points (95% interval -3.10 to 0.60): within noise``."""
        f = f"{{:+.{digits}f}}"
        return (f"{f.format(self.difference)} points ({100 * self.level:.0f}% interval {f.format(self.low)} to "
                f"{f.format(self.high)}): {self.verdict}")

    def items_for(self, effect: float) -> int | None:
        """Test items needed to detect a difference of ``|effect|`` points at this comparison's per-item variance
        (:func:`items_needed`); None when nothing is known about the noise (no ``detectable``, or 0.0: every paired
        difference was degenerate and no fallback was filled)."""
        if self.detectable is None or self.detectable == 0.0:
            return None
        return items_needed(self.detectable, self.n_items, effect)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excludes_zero": self.excludes_zero, "verdict": self.verdict}


def resample_counts(n_items: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n_items`` items is drawn in each of ``n_resamples`` bootstrap resamples: an integer
    ``[n_resamples, n_items]`` matrix whose rows sum to ``n_items`` (uniform draws with replacement)."""
    if n_items < 1 or n_resamples < 1:
        raise ValueError(f"need at least one item and one resample (got {n_items}, {n_resamples})")
    dtype = np.int32 if n_resamples * n_items < 2**31 else np.int64
    idx = rng.integers(0, n_items, size=(n_resamples, n_items), dtype=dtype)
    idx += (np.arange(n_resamples, dtype=dtype) * dtype(n_items))[:, None]  # row r counts into bins r·N … r·N + N − 1
    return np.bincount(idx.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def _as_counts(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (got shape {a.shape})")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return a


def _checked(errors_a, errors_b, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = _as_counts(errors_a, "errors_a"), _as_counts(errors_b, "errors_b")
    n = np.ones_like(a) if lengths is None else _as_counts(lengths, "lengths")
    if not (len(a) == len(b) == len(n)):
        raise ValueError(f"errors_a, errors_b and lengths differ in length ({len(a)}, {len(b)}, {len(n)})")
    if len(a) == 0:
        raise ValueError("no items to compare")
    if np.any(n <= 0):
        raise ValueError("every item needs a positive length (reference words; 1 for a clip)")
    return a, b, n


def bootstrap_differences(
    errors_a: Sequence[float] | np.ndarray,
    errors_b: Sequence[float] | np.ndarray,
    lengths: Sequence[float] | np.ndarray | None = None,
    *,
    n_resamples: int = 10_000,
    seed: int | np.random.Generator = 0,
    scale: float = 100.0,
) -> np.ndarray:
    """The paired-bootstrap distribution of ``scale · (Σw·e_B / Σw·n − Σw·e_A / Σw·n)``, one value per resample.

    ``errors_*[i]`` are item ``i``'s error counts under configurations A and B, ``lengths[i]`` its size (reference
    words; None: 1 per item, i.e. classification error). ``seed`` seeds a :class:`numpy.random.Generator` (or is
    one). Resamples are drawn in blocks of bounded size, so memory stays small for large test sets.
    """
    a, b, n = _checked(errors_a, errors_b, lengths)
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
    errors_a: Sequence[float] | np.ndarray,
    errors_b: Sequence[float] | np.ndarray,
    lengths: Sequence[float] | np.ndarray | None = None,
    *,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
    scale: float = 100.0,
) -> PairedInterval:
    """Paired-bootstrap percentile interval for the error-rate difference B − A on the same items.

    Used for every "ours vs baseline" comparison (Tables 1–3 and 5; Sec. 4.3): see the module docstring for the
    statistic. ``difference`` is the statistic on the full sample (the difference of the two corpus-level rates);
    ``low``/``high`` are the ``(1 ± level)/2`` quantiles of :func:`bootstrap_differences`.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    a, b, n = _checked(errors_a, errors_b, lengths)
    stats = bootstrap_differences(a, b, n, n_resamples=n_resamples, seed=seed, scale=scale)
    low, high = np.quantile(stats, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    diff = scale * (b.sum() - a.sum()) / n.sum()
    detectable = detectable_difference(a, b, n, level, scale=scale) if len(n) > 1 else None
    return PairedInterval(float(diff), float(low), float(high), len(n), int(n_resamples), float(level),
                          detectable, None if detectable is None else "paired")


# -- what a comparison can detect ---------------------------------------------------------------------------------


def linearised_residuals(numerators: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The delta-method residuals of the ratio ``R = Σx / Σw``: ``z_i = (x_i − R·w_i) / w̄`` (``w̄`` the mean
    length). The error of ``R`` is, to first order, the mean of the ``z_i``; an exactly proportional table
    (``x_i = R·w_i`` for every item, up to rounding) gives all zeros."""
    x, w = np.asarray(numerators, dtype=np.float64), np.asarray(lengths, dtype=np.float64)
    ratio = x.sum() / w.sum()
    fitted = ratio * w
    if np.allclose(x, fitted, rtol=1e-12, atol=1e-12):
        return np.zeros_like(x)
    return (x - fitted) / w.mean()


def ratio_half_width(residuals: np.ndarray, confidence: float = 0.95, *, scale: float = 100.0) -> float:
    """``scale · z_{(1+confidence)/2} · SE`` with ``SE = sqrt(Σ z_i² / (n (n − 1)))``: the half-width of the
    normal-approximation interval of a ratio from its :func:`linearised_residuals` (n ≥ 2 of them)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    z = np.asarray(residuals, dtype=np.float64)
    if z.ndim != 1 or len(z) < 2:
        raise ValueError(f"need at least two items for a standard error (got {z.size})")
    se = math.sqrt(float(np.sum(z * z)) / (len(z) * (len(z) - 1)))
    return scale * NormalDist().inv_cdf((1.0 + confidence) / 2.0) * se


def detectable_difference(
    errors_a: Sequence[float] | np.ndarray,
    errors_b: Sequence[float] | np.ndarray,
    lengths: Sequence[float] | np.ndarray | None = None,
    confidence: float = 0.95,
    *,
    scale: float = 100.0,
) -> float:
    """The smallest error-rate difference B − A (points) this test set could tell from noise at ``confidence``.

    With ``d_i = e^B_i − e^A_i`` and ``Δ = Σd / Σw``, the ratio estimator's (delta-method) standard error is
    ``SE(Δ) = sqrt(Σ z_i² / (n (n − 1)))`` over the linearised residuals ``z_i = (d_i − Δ·w_i) / w̄``; the result is
    the half-width ``z_{(1+confidence)/2} · SE · scale`` of the normal interval around Δ. In large samples it
    matches the spread of :func:`paired_bootstrap`'s interval. ``lengths`` None means one per item
    (classification), where it is the familiar ``stdev(d) / sqrt(n)`` of a mean of paired differences.

    When every ``d_i`` equals ``Δ·w_i`` — e.g. all zero: the two systems made identical errors on every item — SE
    is 0 and the paired differences carry no information about noise; this returns 0.0 then, and
    :func:`single_system_resolution` gives a conservative bound instead (as :func:`compare_rows` does).
    """
    a, b, n = _checked(errors_a, errors_b, lengths)
    return ratio_half_width(linearised_residuals(b - a, n), confidence, scale=scale)


def single_system_resolution(
    errors: Sequence[float] | np.ndarray,
    lengths: Sequence[float] | np.ndarray | None = None,
    confidence: float = 0.95,
    *,
    scale: float = 100.0,
) -> float:
    """The resolution (points) of a paired comparison between this system and another whose per-item errors were
    uncorrelated with its own and equally variable: √2 × the delta-method half-width of this system's own error
    rate ``E = Σe / Σw`` (residuals ``(e_i − E·w_i) / w̄``).

    Conservative — errors of two systems on the same items are usually positively correlated, which narrows a
    paired comparison — so it is an upper bound used where :func:`detectable_difference` is degenerate (identical
    outputs, e.g. λ = 0 chosen). 0.0 when this system's errors are themselves proportional to the lengths (e.g. it
    made none).
    """
    e = _as_counts(errors, "errors")
    n = np.ones_like(e) if lengths is None else _as_counts(lengths, "lengths")
    if len(e) != len(n) or np.any(n <= 0):
        raise ValueError(f"errors and lengths must have the same length ({len(e)}, {len(n)}) and positive lengths")
    return math.sqrt(2.0) * ratio_half_width(linearised_residuals(e, n), confidence, scale=scale)


def items_needed(detectable: float, n_items: int, effect: float) -> int:
    """Test items needed to detect an effect of ``|effect|`` points, at the per-item variance of a test set of
    ``n_items`` items that detects ``detectable`` points: ``ceil(n_items · (detectable / |effect|)²)`` (the
    half-width shrinks as 1/√n). Rounding noise below 1e-9 items is ignored before the ceiling."""
    if n_items < 2:
        raise ValueError(f"need a test set of at least two items (got {n_items})")
    if effect == 0 or not math.isfinite(effect):
        raise ValueError(f"the effect must be finite and non-zero (got {effect})")
    if not (math.isfinite(detectable) and detectable >= 0.0):
        raise ValueError(f"detectable must be finite and non-negative (got {detectable})")
    return math.ceil(round(n_items * (detectable / abs(effect)) ** 2, 9))


# -- per-item error counts ----------------------------------------------------------------------------------------


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-utterance word errors ``S + D + I`` and reference word counts ``S + D + H`` from jiwer's alignment.

    The strings are used as given (the results store keeps them normalized). Their sums reproduce corpus WER:
    ``100 · errors.sum() / words.sum()`` is the sweep row's ``wer``.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances")
    empty = [i for i, r in enumerate(references) if not str(r).strip()]
    if empty:
        raise ValueError(f"reference(s) at position(s) {empty} are empty: WER is undefined for them")
    out = jiwer.process_words([str(r) for r in references], [str(h) for h in hypotheses])
    errors, words = [], []
    for ref, chunks in zip(out.references, out.alignments):
        errs = 0
        for c in chunks:
            if c.type in ("substitute", "delete"):
                errs += c.ref_end_idx - c.ref_start_idx
            elif c.type == "insert":
                errs += c.hyp_end_idx - c.hyp_start_idx
        errors.append(errs)
        words.append(len(ref))
    return np.asarray(errors, dtype=np.int64), np.asarray(words, dtype=np.int64)


def _get(row: Mapping[str, Any] | pd.Series, key: str) -> Any:
    try:
        value = row[key]
    except (KeyError, IndexError):
        return None
    if isinstance(value, float) and np.isnan(value):  # a column other rows of the frame have
        return None
    return value


def is_asr_row(row: Mapping[str, Any] | pd.Series) -> bool:
    """True for a speech-recognition sweep row (references/hypotheses), False for a classification one."""
    if _get(row, "hypotheses") is not None and _get(row, "references") is not None:
        return True
    if _get(row, "predictions") is not None and _get(row, "labels") is not None:
        return False
    raise ValueError("a sweep row needs 'references' and 'hypotheses' (ASR) or 'labels' and 'predictions' (AEC)")


def item_errors(row: Mapping[str, Any] | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per-item error counts and sizes of one sweep row: word errors and reference words for ASR
    (:func:`word_errors`), ``prediction != label`` and 1 for classification."""
    if is_asr_row(row):
        return word_errors(list(row["references"]), list(row["hypotheses"]))
    labels, preds = np.asarray(row["labels"]), np.asarray(row["predictions"])
    if labels.shape != preds.shape:
        raise ValueError(f"{labels.shape[0]} labels but {preds.shape[0]} predictions")
    return (labels != preds).astype(np.int64), np.ones(len(labels), dtype=np.int64)


def check_paired(baseline: Mapping[str, Any] | pd.Series, other: Mapping[str, Any] | pd.Series) -> list[str]:
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
    baseline: Mapping[str, Any] | pd.Series,
    other: Mapping[str, Any] | pd.Series,
    *,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedInterval:
    """Paired bootstrap of ``other`` − ``baseline`` (WER or classification error, percentage points) for two sweep
    rows evaluated on the same items — e.g. the dev-chosen λ against λ = 0 (Table 1), the real source against noise
    of its moments, a block (Table 2) or a pick (Table 3) against the unmerged model, the rows of Table 5.

    ``detectable`` comes from the paired differences; where they are degenerate (the two rows made identical
    errors on every item, e.g. λ = 0) it is the baseline's :func:`single_system_resolution`, marked
    ``detectable_from="baseline"``."""
    check_paired(baseline, other)
    e_a, n = item_errors(baseline)
    e_b, _ = item_errors(other)
    iv = paired_bootstrap(e_a, e_b, n, n_resamples=n_resamples, level=level, seed=seed)
    if iv.detectable == 0.0:
        iv = replace(iv, detectable=single_system_resolution(e_a, n, level), detectable_from="baseline")
    return iv


# -- sweep frames -------------------------------------------------------------------------------------------------


def select_row(
    df: pd.DataFrame, *, split: str = "test", source: str = "source", lam: float | None = None, layers: str = "all"
) -> pd.Series:
    """The one row of a sweep frame for (split, source variant, λ, layers). ``source="none"`` (or λ = 0) is the
    unmerged model, whatever ``layers``; the first matching row is returned when a frame repeats it."""
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
    """The paired interval of (``source`` at ``lam`` on ``layers``) − (unmerged) on ``split`` of one sweep frame:
    Table 1's dev-chosen λ against λ = 0, a Table 2 block or a Table 3 pick against "None". At λ = 0 the two rows
    coincide and the interval is [0, 0]."""
    base = select_row(df, split=split, source="none")
    other = select_row(df, split=split, source=source, lam=lam, layers=layers)
    return compare_rows(base, other, n_resamples=n_resamples, level=level, seed=seed)


def intervals_table(intervals: Mapping[str, PairedInterval], value: str = "WER") -> pd.DataFrame:
    """One row per comparison: the difference, its interval, the smallest detectable difference (±points, NaN when
    unknown; see :class:`PairedInterval` for where it comes from), the number of items and the verdict, for
    display beside a table ("outside noise": yes or no)."""
    rows = {
        name: {f"Δ {value} (points)": iv.difference, f"{100 * iv.level:.0f}% low": iv.low,
               f"{100 * iv.level:.0f}% high": iv.high,
               "detectable (±pts)": np.nan if iv.detectable is None else iv.detectable, "items": iv.n_items,
               "outside noise": "yes" if iv.excludes_zero else "no", "verdict": iv.verdict}
        for name, iv in intervals.items()
    }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "comparison"
    return out
