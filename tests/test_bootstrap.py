"""Paired bootstrap intervals (mamlib.analysis.bootstrap) against brute force, closed forms and hand counts."""

from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from mamlib.analysis.bootstrap import (
    PairedInterval,
    bootstrap_differences,
    compare_rows,
    compare_to_unmerged,
    detectable_difference,
    intervals_table,
    item_errors,
    items_needed,
    paired_bootstrap,
    resample_counts,
    select_row,
    single_system_resolution,
    word_errors,
)

# A tiny paired case: 4 utterances, word errors under A and B, reference words.
E_A = np.array([3, 0, 2, 5])
E_B = np.array([1, 1, 2, 2])
N_WORDS = np.array([10, 4, 7, 12])


def _exact_distribution(e_a, e_b, n, scale=100.0):
    """Every one of the N^N equally likely resamples (ordered draws with replacement) and its statistic."""
    size = len(n)
    values = []
    for draw in itertools.product(range(size), repeat=size):
        idx = np.array(draw)
        values.append(scale * (e_b[idx].sum() - e_a[idx].sum()) / n[idx].sum())
    return np.array(values)


def _inverse_cdf(values, p):
    """min{x : P(X ≤ x) ≥ p} for the uniform distribution over ``values``, and the distance of p from the CDF's
    jumps on either side of it (how robust the quantile is to sampling error)."""
    atoms, counts = np.unique(np.round(values, 10), return_counts=True)
    cdf = np.cumsum(counts) / len(values)
    k = int(np.searchsorted(cdf, p - 1e-15))
    below = cdf[k - 1] if k > 0 else 0.0
    return atoms[k], min(p - below, cdf[k] - p)


def test_resample_counts_are_draws_with_replacement():
    rng = np.random.default_rng(0)
    w = resample_counts(7, 5000, rng)
    assert w.shape == (5000, 7)
    assert w.dtype.kind == "i"
    assert (w.sum(axis=1) == 7).all()
    assert (w >= 0).all()
    # each item is drawn Binomial(7, 1/7) times: mean 1, variance 6/7
    assert w.mean() == pytest.approx(1.0, abs=0.02)
    assert w.var() == pytest.approx(6 / 7, rel=0.05)


def test_bootstrap_matches_brute_force_enumeration():
    exact = _exact_distribution(E_A, E_B, N_WORDS)  # 4^4 = 256 resamples
    stats = bootstrap_differences(E_A, E_B, N_WORDS, n_resamples=200_000, seed=1)
    assert stats.mean() == pytest.approx(exact.mean(), abs=0.05)
    assert stats.std() == pytest.approx(exact.std(), rel=0.02)
    iv = paired_bootstrap(E_A, E_B, N_WORDS, n_resamples=200_000, seed=1)
    for p, got in ((0.025, iv.low), (0.975, iv.high)):
        want, margin = _inverse_cdf(exact, p)
        assert margin > 0.002  # the exact quantile is not at a jump: sampling cannot move it
        assert got == pytest.approx(want, abs=1e-9)
    # the point estimate is the full-sample difference: 100 · (6 − 10) / 33
    assert iv.difference == pytest.approx(100 * (6 - 10) / 33)
    assert (iv.n_items, iv.n_resamples, iv.level) == (4, 200_000, 0.95)


def test_variance_of_a_mean_difference_is_sigma2_over_n():
    """Classification error (n_i = 1): the statistic is the mean of resampled d_i = e^B_i − e^A_i, whose
    bootstrap variance is the population variance of d over N."""
    rng = np.random.default_rng(3)
    e_a = rng.integers(0, 2, 50)
    e_b = rng.integers(0, 2, 50)
    d = 100.0 * (e_b - e_a)
    stats = bootstrap_differences(e_a, e_b, n_resamples=100_000, seed=4)
    assert stats.mean() == pytest.approx(d.mean(), abs=4 * d.std() / np.sqrt(50) / np.sqrt(100_000))
    assert stats.var() == pytest.approx(d.var() / 50, rel=0.03)


def test_seeded_and_vectorized():
    rng = np.random.default_rng(5)
    e_a, e_b, n = rng.integers(0, 6, 300), rng.integers(0, 6, 300), rng.integers(5, 25, 300)
    one = paired_bootstrap(e_a, e_b, n, seed=7)
    assert paired_bootstrap(e_a, e_b, n, seed=7) == one
    assert paired_bootstrap(e_a, e_b, n, seed=8) != one
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        paired_bootstrap(e_a, e_b, n, n_resamples=10_000, seed=0)
        best = min(best, time.perf_counter() - start)
    assert best < 1.0


def test_blocks_do_not_change_the_draws_statistics(monkeypatch):
    """Drawing the [B, N] counts in several blocks (bounded memory) gives the same distribution."""
    import mamlib.analysis.bootstrap as bs

    whole = bootstrap_differences(E_A, E_B, N_WORDS, n_resamples=50_000, seed=2)
    monkeypatch.setattr(bs, "_BLOCK_ENTRIES", 4 * 7)  # 7 resamples per block
    blocked = bootstrap_differences(E_A, E_B, N_WORDS, n_resamples=50_000, seed=2)
    assert blocked.shape == whole.shape
    assert blocked.mean() == pytest.approx(whole.mean(), abs=0.1)
    assert blocked.std() == pytest.approx(whole.std(), rel=0.03)


def test_identical_configurations_give_a_zero_interval():
    iv = paired_bootstrap(E_A, E_A, N_WORDS)
    assert (iv.difference, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert not iv.excludes_zero and iv.verdict == "within noise"


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1, 2], [1], [3, 3])
    with pytest.raises(ValueError, match="positive length"):
        paired_bootstrap([1, 2], [1, 0], [3, 0])
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap([1], [0], level=1.5)
    with pytest.raises(ValueError, match="no items"):
        paired_bootstrap([], [])


def test_verdicts():
    assert PairedInterval(-2.0, -3.0, -0.5, 10, 100).verdict == "fewer errors"
    assert PairedInterval(2.0, 0.5, 3.0, 10, 100).verdict == "more errors"
    iv = PairedInterval(-1.25, -3.1, 0.6, 10, 100)
    assert not iv.excludes_zero
    assert iv.describe() == "-1.25 points (95% interval -3.10 to +0.60): within noise"
    assert iv.verdict == "within noise"


# -- per-item errors and sweep rows -------------------------------------------------------------------------------


def test_word_errors_by_hand():
    refs = ["the cat sat", "a b c d", "one"]
    hyps = ["the cat sat down", "a x d", ""]
    errors, words = word_errors(refs, hyps)
    # 1 insertion; b→x substituted and c deleted; "one" deleted
    assert errors.tolist() == [1, 2, 1]
    assert words.tolist() == [3, 4, 1]
    with pytest.raises(ValueError, match="empty"):
        word_errors([""], ["x"])


def _asr_row(ids, refs, hyps, **extra):
    errors = sum(word_errors(refs, hyps)[0])
    return {"ids": ids, "references": refs, "hypotheses": hyps,
            "wer": 100.0 * errors / sum(len(r.split()) for r in refs), **extra}


REFS = ["the cat sat", "a b c d", "one two", "red green blue"]
BASE = _asr_row(["u1", "u2", "u3", "u4"], REFS, ["the bat sat", "a b c d", "one", "red green blue"])
MAM = _asr_row(["u1", "u2", "u3", "u4"], REFS, ["the cat sat", "a b c", "one two", "red green blue"])


def test_compare_rows_asr():
    iv = compare_rows(BASE, MAM, n_resamples=2000)
    # baseline 2 errors, MAM 1, of 12 reference words
    assert iv.difference == pytest.approx(100 * (1 - 2) / 12)
    assert iv.difference == pytest.approx(MAM["wer"] - BASE["wer"])
    assert iv.low <= iv.difference <= iv.high
    assert compare_rows(pd.Series(BASE), pd.Series(MAM), n_resamples=2000) == iv


def test_compare_rows_classification():
    base = {"ids": ["c1", "c2", "c3", "c4"], "labels": [0, 1, 2, 3], "predictions": [0, 1, 0, 0]}
    merged = {"ids": ["c1", "c2", "c3", "c4"], "labels": [0, 1, 2, 3], "predictions": [0, 1, 2, 0]}
    errors, sizes = item_errors(base)
    assert errors.tolist() == [0, 0, 1, 1] and sizes.tolist() == [1, 1, 1, 1]
    assert compare_rows(base, merged).difference == pytest.approx(-25.0)


def test_ids_must_match_in_order():
    swapped = {**MAM, "ids": ["u2", "u1", "u3", "u4"]}
    with pytest.raises(ValueError, match="different order"):
        compare_rows(BASE, swapped)
    other = {**MAM, "ids": ["u1", "u2", "u3", "u9"]}
    with pytest.raises(ValueError, match="not evaluated on the same items"):
        compare_rows(BASE, other)
    with pytest.raises(ValueError, match="different references"):
        compare_rows(BASE, {**MAM, "references": ["x", "a b c d", "one two", "red green blue"]})
    with pytest.raises(ValueError, match="need per-item 'ids'"):
        compare_rows({k: v for k, v in BASE.items() if k != "ids"}, MAM)
    aec = {"ids": BASE["ids"], "labels": [0, 0, 0, 0], "predictions": [0, 0, 0, 0]}
    with pytest.raises(ValueError, match="cannot pair"):
        compare_rows(BASE, aec)


def _sweep_frame():
    rows = [
        {"split": "test", "source": "none", "lambda": 0.0, "layers": "all", **BASE},
        {"split": "test", "source": "source", "lambda": 0.1, "layers": "all", **MAM},
        {"split": "test", "source": "noise-source", "lambda": 0.1, "layers": "all", **BASE},
        {"split": "dev", "source": "none", "lambda": 0.0, "layers": "all", **BASE},
    ]
    return pd.DataFrame(rows)


def test_select_row_and_compare_to_unmerged():
    df = _sweep_frame()
    assert select_row(df, source="none")["hypotheses"] == BASE["hypotheses"]
    assert select_row(df, lam=0.1)["hypotheses"] == MAM["hypotheses"]
    assert select_row(df, lam=0.1, source="noise-source")["hypotheses"] == BASE["hypotheses"]
    with pytest.raises(ValueError, match="no row with split test, source 'source', λ = 0.2"):
        select_row(df, lam=0.2)
    iv = compare_to_unmerged(df, 0.1, n_resamples=1000)
    assert iv.difference == pytest.approx(-100 / 12)
    zero = compare_to_unmerged(df, 0.0, n_resamples=1000)
    assert (zero.difference, zero.low, zero.high) == (0.0, 0.0, 0.0)
    table = intervals_table({"λ = 0.10": iv, "λ = 0": zero})
    assert table.loc["λ = 0", "verdict"] == "within noise"
    assert table.loc["λ = 0.10", "items"] == 4
    assert list(table.columns[:3]) == ["Δ WER (points)", "95% low", "95% high"]


# -- what a comparison can detect ---------------------------------------------------------------------------------

Z975 = 1.959963984540054  # the standard normal's 97.5% quantile (two-sided 95%)

# 4 utterances: reference words, base errors, merged errors.
W4 = [5, 3, 4, 8]
BASE4 = [1, 0, 2, 1]
MERGED4 = [0, 0, 1, 2]


def test_detectable_difference_by_hand():
    # d = merged − base = [-1, 0, -1, 1]; Σd = −1, Σw = 20 → Δ = −0.05 (−5 points); w̄ = 5
    # Δ·w = [-0.25, -0.15, -0.2, -0.4]; d − Δ·w = [-0.75, 0.15, -0.8, 1.4] (sums to 0)
    # z = /5 = [-0.15, 0.03, -0.16, 0.28]; z² = [0.0225, 0.0009, 0.0256, 0.0784], Σ = 0.1274
    # SE² = 0.1274 / (4·3) = 0.0106167, SE = 0.1030372; half-width = 1.959964 · 0.1030372 · 100 = 20.1949 points
    got = detectable_difference(BASE4, MERGED4, W4)
    assert got == pytest.approx(Z975 * 100 * math.sqrt(0.1274 / 12), rel=1e-12)
    assert got == pytest.approx(20.1949, abs=1e-4)
    # a 90% interval uses z = 1.644854 instead: 16.9481 points
    assert detectable_difference(BASE4, MERGED4, W4, 0.90) == pytest.approx(16.9481, abs=1e-4)
    # the sign convention does not matter for a half-width
    assert detectable_difference(MERGED4, BASE4, W4) == pytest.approx(got, rel=1e-12)


def test_single_system_resolution_by_hand():
    # base errors e = [1, 0, 2, 1], Σe = 4, Σw = 20 → E = 0.2; E·w = [1, 0.6, 0.8, 1.6]
    # e − E·w = [0, -0.6, 1.2, -0.6]; z = /5 = [0, -0.12, 0.24, -0.12]; Σz² = 0.0864
    # SE² = 0.0864 / 12 = 0.0072; √2 · SE = √0.0144 = 0.12; half-width = 1.959964 · 0.12 · 100 = 23.5196 points
    got = single_system_resolution(BASE4, W4)
    assert got == pytest.approx(Z975 * 12.0, rel=1e-12)
    assert got == pytest.approx(23.5196, abs=1e-4)


def test_classification_reduces_to_the_se_of_a_mean_difference():
    base = [1, 1, 0, 1, 0, 0, 1, 0, 1, 1]
    merged = [0, 1, 0, 0, 0, 1, 0, 0, 1, 0]
    d = [m - b for b, m in zip(base, merged)]  # [-1, 0, 0, -1, 0, 1, -1, 0, 0, -1]
    want = Z975 * 100 * statistics.stdev(d) / math.sqrt(len(d))
    assert detectable_difference(base, merged) == pytest.approx(want, rel=1e-12)
    assert detectable_difference(base, merged, [1] * len(d)) == pytest.approx(want, rel=1e-12)
    # one system: √2 · stdev(e)/√n, the same formula for a single mean
    want_base = Z975 * 100 * math.sqrt(2) * statistics.stdev(base) / math.sqrt(len(base))
    assert single_system_resolution(base) == pytest.approx(want_base, rel=1e-12)


def test_degenerate_paired_differences():
    # identical errors: every d_i = 0, nothing about noise → 0.0
    assert detectable_difference(BASE4, BASE4, W4) == 0.0
    # d proportional to the lengths (d_i = Δ·w_i for every item) is degenerate too
    assert detectable_difference([0, 0, 0, 0], [5, 3, 4, 8], W4) == 0.0
    # one system with no errors (or errors proportional to the lengths) has no spread either
    assert single_system_resolution([0, 0, 0, 0], W4) == 0.0
    assert single_system_resolution(BASE4, W4) > 0.0
    iv = paired_bootstrap(BASE4, BASE4, W4, n_resamples=200)
    assert iv.detectable == 0.0
    assert iv.items_for(1.0) is None
    with pytest.raises(ValueError, match="two items"):
        detectable_difference([1], [0])
    assert paired_bootstrap([1], [0], n_resamples=10).detectable is None


def test_items_needed_by_hand():
    assert items_needed(20.0, 100, 5.0) == 1600  # 100 · (20/5)² = 100 · 16
    assert items_needed(2.0, 400, -1.0) == 1600  # |effect|: 400 · 4
    assert items_needed(3.0, 10, 2.0) == 23  # 10 · 2.25 = 22.5 → 23
    assert items_needed(0.3, 100, 0.1) == 900  # 100 · 9, not 901 from rounding noise
    assert items_needed(1.0, 400, 2.0) == 100  # a larger effect needs fewer items
    with pytest.raises(ValueError, match="non-zero"):
        items_needed(1.0, 100, 0.0)
    with pytest.raises(ValueError, match="two items"):
        items_needed(1.0, 1, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        items_needed(-1.0, 100, 1.0)


def test_paired_interval_carries_what_it_can_detect():
    iv = paired_bootstrap(BASE4, MERGED4, W4, n_resamples=500)
    assert iv.difference == pytest.approx(-5.0)  # 100 · (3 − 4) / 20
    assert iv.detectable == pytest.approx(20.1949, abs=1e-4)
    assert iv.n_items == 4
    # 4 · (20.1949 / 5)² = 65.25 → 66 items for a 5-point effect; 4 · (20.1949 / 20.1949)² = 4
    assert iv.items_for(5.0) == 66
    assert iv.items_for(-5.0) == 66
    # older constructions and stored dicts still work; nothing known → None
    old = PairedInterval(-2.0, -3.0, -0.5, 10, 100)
    assert old.detectable is None and old.items_for(1.0) is None
    assert PairedInterval(**asdict(iv)) == iv
    d = asdict(iv)
    assert d["detectable"] == iv.detectable


def test_compare_rows_fills_detectable():
    # BASE word errors [1, 0, 1, 0], MAM [0, 1, 0, 0], words [3, 4, 2, 3]: d = [-1, 1, -1, 0], Δ = −1/12, w̄ = 3
    # d − Δ·w = [-3/4, 4/3, -5/6, 1/4]; z = /3 = [-1/4, 4/9, -5/18, 1/12]
    # Σz² = (81 + 256 + 100 + 9) / 1296 = 446/1296; SE² = 446 / 15552; half-width = 33.1912 points
    iv = compare_rows(BASE, MAM, n_resamples=500)
    assert iv.detectable == pytest.approx(Z975 * 100 * math.sqrt(446 / 15552), rel=1e-12)
    assert iv.detectable == pytest.approx(33.1912, abs=1e-4)
    (e_a, n), (e_b, _) = item_errors(BASE), item_errors(MAM)
    assert iv.detectable == detectable_difference(e_a, e_b, n)  # from the paired differences
    # identical rows: the baseline's resolution instead. e = [1, 0, 1, 0], E = 2/12 = 1/6, w̄ = 3
    # e − E·w = [1/2, -2/3, 2/3, -1/2]; z = [1/6, -2/9, 2/9, -1/6]; Σz² = 2/36 + 8/81 = 25/162
    # SE² = 25/1944; √2 · SE = √(50/1944) = 0.160375; half-width = 31.4330 points
    same = compare_rows(BASE, BASE, n_resamples=500)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    assert same.detectable == pytest.approx(Z975 * 100 * math.sqrt(50 / 1944), rel=1e-12)
    assert same.detectable == pytest.approx(31.4330, abs=1e-4)
    assert same.detectable == single_system_resolution(*item_errors(BASE))  # the paired differences are all zero
    table = intervals_table({"λ = 0.10": iv, "λ = 0": same, "old": PairedInterval(-2.0, -3.0, -0.5, 10, 100)})
    assert table.loc["λ = 0", "detectable (±pts)"] == pytest.approx(31.4330, abs=1e-4)
    assert np.isnan(table.loc["old", "detectable (±pts)"])
    assert table["detectable (±pts)"].dtype.kind == "f"


def test_detectable_matches_the_bootstrap_in_large_samples():
    rng = np.random.default_rng(11)
    words = rng.integers(4, 30, 400)
    base = rng.binomial(words, 0.15)
    merged = np.maximum(base + rng.integers(-2, 3, 400), 0)  # correlated with the baseline, as real pairs are
    iv = paired_bootstrap(base, merged, words, n_resamples=20_000, seed=3)
    bootstrap_half = (iv.high - iv.low) / 2
    assert iv.detectable == pytest.approx(bootstrap_half, rel=0.15)
    # and the conservative baseline bound is wider than the paired one for these correlated errors
    assert single_system_resolution(base, words) > iv.detectable
