"""Chapter 3's reading of its own similarity scores (Sec. 4.1, Table 3): do the metrics agree, and are the paired
vectors related at all? Scores here are computed by hand from vectors whose geometry is known."""

import math

import numpy as np
import pandas as pd
import pytest

from mamlib.selection.picks import picks
from mamlib.selection.scores import similarity_table
from mamlib.selection.signal import metrics_agree, signal_findings, signal_summary, signal_table


def _long(target: np.ndarray, source: np.ndarray) -> pd.DataFrame:
    frames = []
    for norm in ("none", "l2"):
        table = similarity_table(target, source, normalize=norm)
        long = table.reset_index().melt(id_vars="layer", var_name="metric", value_name="score")
        frames.append(long.assign(normalization=norm))
    return pd.concat(frames, ignore_index=True)


def _orthogonal() -> pd.DataFrame:
    """Every layer's audio vectors along axes 0–3, text vectors along axes 4–7: cosine 0, distance √2 exactly."""
    eye = np.eye(8)
    target = np.stack([eye[:4] * (layer + 1) for layer in range(3)])  # [3 layers, 4 pairs, 8]
    source = np.stack([eye[4:] * 2.0 for _ in range(3)])
    return _long(target, source)


def _aligned() -> pd.DataFrame:
    """Text vectors at a known angle θ_l from their audio vectors, larger for deeper layers: cos = 0.9, 0.6, 0.3."""
    cosines = (0.9, 0.6, 0.3)
    target, source = [], []
    for c in cosines:
        s = math.sqrt(1 - c * c)
        target.append(np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]))
        source.append(np.array([[c, s, 0.0, 0.0], [0.0, 0.0, c, s]]) * 3.0)
    return _long(np.stack(target), np.stack(source))


def _picked(scores: pd.DataFrame, ks=(1, 2)) -> dict:
    return {norm: picks(scores, list(ks), norm) for norm in ("none", "l2")}


def test_orthogonal_vectors_have_cosine_zero_and_distance_sqrt2():
    scores = _orthogonal()
    s = signal_summary(scores, _picked(scores))
    assert s["cosine_min"] == pytest.approx(0.0) and s["cosine_max"] == pytest.approx(0.0)
    assert s["distance_min"] == pytest.approx(math.sqrt(2)) and s["distance_max"] == pytest.approx(math.sqrt(2))
    assert s["sqrt2_gap"] == pytest.approx(0.0, abs=1e-12)
    assert s["orthogonal"] is True
    assert "nearly orthogonal" in s["sentence"] and "too little similarity" in s["sentence"]


def test_aligned_vectors_give_their_cosines_and_chord_distances():
    scores = _aligned()
    s = signal_summary(scores, _picked(scores))
    assert s["cosine_min"] == pytest.approx(0.3) and s["cosine_max"] == pytest.approx(0.9)
    # unit vectors at angle θ lie √(2 − 2 cos θ) apart
    assert s["distance_min"] == pytest.approx(math.sqrt(2 - 2 * 0.9))
    assert s["distance_max"] == pytest.approx(math.sqrt(2 - 2 * 0.3))
    assert s["sqrt2_gap"] == pytest.approx(math.sqrt(2) - math.sqrt(0.2))
    assert s["orthogonal"] is False
    assert "not orthogonal" in s["sentence"] and "0.300 to 0.900" in s["sentence"]


def test_agreement_counts_identical_picks_per_k_and_normalization():
    same = {("euclidean", 1): [0], ("swd", 1): [0], ("inner_product", 1): [0],
            ("euclidean", 2): [0, 1], ("swd", 2): [1, 0], ("inner_product", 2): [0, 2]}
    assert metrics_agree(same) == (1, 2)
    scores = _orthogonal()
    s = signal_summary(scores, {"none": same, "l2": same})
    assert (s["agree"], s["picks"]) == (2, 4)
    assert s["per_normalization"] == {"none": (1, 2), "l2": (1, 2)}
    assert s["sentence"].startswith("The metrics pick the same layers in 2 of 4 picks")
    all_same = {key: [0] for key in same if key[1] == 1}
    s = signal_summary(scores, {"none": all_same, "l2": all_same})
    assert s["sentence"].startswith("All 3 metrics pick the same layers at every k (2 of 2 picks, raw and "
                                    "L2-normalized)")


def test_table_and_findings_cover_every_corpus():
    scores = {"a": _orthogonal(), "b": _aligned()}
    picked = {(label, norm): p for label, t in scores.items() for norm, p in _picked(t).items()}
    table = signal_table(scores, picked)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "nearly orthogonal"] == "yes" and table.loc["b", "nearly orthogonal"] == "no"
    assert table.loc["b", "cosine, L2 (max)"] == pytest.approx(0.9)
    assert not table.isna().any().any()
    text = signal_findings(scores, picked)["signal"]
    assert text.startswith("On a: ") and " On b: " in text


def test_raw_scores_alone_give_no_orthogonality_reading():
    scores = _orthogonal()
    raw = scores[scores["normalization"] == "none"]
    s = signal_summary(raw, {"none": picks(raw, [1], "none")})
    assert math.isnan(s["cosine_min"]) and s["orthogonal"] is False
    assert "cosine" not in s["sentence"]
