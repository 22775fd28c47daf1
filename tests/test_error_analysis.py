"""Sec. 4.3's analyses (mamlib.analysis.errors / summary) on transcripts whose edits are counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mamlib.analysis.bootstrap import word_errors
from mamlib.analysis.errors import (
    BROKEN_STYLE,
    FIXED_STYLE,
    edit_counts,
    improvement_split,
    improvement_table,
    speaker_wer,
    table6_beside,
    transcript_changes,
    word_changes,
)
from mamlib.analysis.summary import analyse_sweep, error_findings


def fixed(word: str) -> str:
    return f'<span style="{FIXED_STYLE}">{word}</span>'


def broken(word: str) -> str:
    return f'<span style="{BROKEN_STYLE}">{word}</span>'


# -- edit types, counted by hand ----------------------------------------------------------------------------------


def test_character_edits_by_hand():
    # "truly" → "truley": one extra e (insertion); "the" → "te": h missing (deletion); "base" → "bass": e→s
    # (substitution)
    assert edit_counts(["truly the base"], ["truley te bass"]).tolist() == [[1, 1, 1]]
    # "stand to gain" → "stant togain": d→t (substitution), the space before "gain" missing (deletion)
    assert edit_counts(["stand to gain"], ["stant togain"]).tolist() == [[0, 1, 1]]
    # an empty hypothesis deletes every character, spaces included
    assert edit_counts(["a b c"], [""]).tolist() == [[0, 0, 5]]
    assert edit_counts(["the wheel"], ["the wheel"]).tolist() == [[0, 0, 0]]


def test_word_edits_by_hand():
    assert edit_counts(["truly the base"], ["truley te bass"], unit="word").tolist() == [[0, 3, 0]]
    # stand→stant, and "to gain" read as one word: one substitution and one deletion
    assert edit_counts(["stand to gain"], ["stant togain"], unit="word").tolist() == [[0, 2, 1]]
    assert edit_counts(["the wheel"], ["the the wheel"], unit="word").tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError, match="unit"):
        edit_counts(["a"], ["a"], unit="phoneme")


# Four utterances. Character edits [I, S, D], by hand:
#   u1 baseline [1, 1, 1], MAM "truly the bass" [0, 1, 0]  → improved; reductions I 1, S 0, D 1
#   u2 baseline [0, 1, 1], MAM exact          [0, 0, 0]  → improved; reductions S 1, D 1
#   u3 baseline exact,     MAM "the wheal"    [0, 1, 0]  → worse: not counted
#   u4 baseline "a" [0, 0, 4], MAM "a b cc"   [1, 0, 0]  → improved; reductions D 4 (the new insertion: max(0, −1))
# Totals I 1, S 1, D 6 of 8 → 12.5 / 12.5 / 75 %.
# Words: u1 S 3 → S 1 (S 2); u2 S 2 D 1 → 0 (S 2, D 1); u3 worse; u4 D 2 → S 1 (D 2; S max(0, −1) = 0)
# Totals I 0, S 4, D 3 of 7.
IDS = ["u1", "u2", "u3", "u4"]
REFS = ["truly the base", "stand to gain", "the wheel", "a b c"]
BASE = {"ids": IDS, "references": REFS, "hypotheses": ["truley te bass", "stant togain", "the wheel", "a"]}
MAM = {"ids": IDS, "references": REFS, "hypotheses": ["truly the bass", "stand to gain", "the wheal", "a b cc"]}


def test_improvement_split_characters():
    s = improvement_split(BASE, MAM)
    assert s.reductions == {"insertion": 1, "substitution": 1, "deletion": 6}
    assert s.shares == pytest.approx({"insertion": 12.5, "substitution": 12.5, "deletion": 75.0})
    assert (s.n_improved, s.n_items, s.total) == (3, 4, 8)


def test_improvement_split_words_and_table():
    s = improvement_split(BASE, MAM, unit="word")
    assert s.reductions == {"insertion": 0, "substitution": 4, "deletion": 3}
    table = improvement_table(BASE, MAM)
    assert list(table.index) == ["characters", "words"]
    assert table.loc["words", "substitution"] == pytest.approx(400 / 7)
    assert table.loc["words", "deletion"] == pytest.approx(300 / 7)
    assert table.loc["characters", "edits removed"] == 8
    assert table.loc["words", "improved utterances"] == 3


def test_nothing_improved_gives_nan_shares():
    s = improvement_split(BASE, BASE)
    assert s.total == 0 and s.n_improved == 0
    assert all(math.isnan(v) for v in s.shares.values())


def test_table6_beside_the_paper():
    paper = pd.DataFrame({"dataset": ["LJ Speech", "VCTK"], "insertion": [61.89, 36.36],
                          "substitution": [35.13, 28.28], "deletion": [2.98, 35.35]})
    out = table6_beside({"tiny": improvement_table(BASE, MAM)}, paper, {"tiny": "VCTK"}, "smoke")
    assert list(out.index) == ["ours (smoke: tiny)", "paper (VCTK)"]
    assert out.loc["ours (smoke: tiny)"].tolist() == pytest.approx([12.5, 12.5, 75.0])
    assert out.loc["paper (VCTK)"].tolist() == pytest.approx([36.36, 28.28, 35.35])


# -- Table 4 ------------------------------------------------------------------------------------------------------


def test_one_word_fixed_one_broken():
    wc = word_changes("the marshal at the turn was great", "the marshal at the tern was great",
                      "the marshal at the turn was grate")
    assert wc.fixed == ("turn",) and wc.broken == ("great",)
    assert wc.reference_html == f"the marshal at the {fixed('turn')} was {broken('great')}"
    assert wc.baseline_html == f"the marshal at the {fixed('tern')} was {broken('great')}"
    assert wc.mam_html == f"the marshal at the {fixed('turn')} was {broken('grate')}"


def test_removed_insertion_and_restored_deletion():
    wc = word_changes("they were behind the wheel", "they were behind the the wheel", "they were behind the wheel")
    assert wc.fixed == ("+the",) and wc.broken == ()
    assert wc.baseline_html.count(FIXED_STYLE) == 1 and wc.mam_html == "they were behind the wheel"
    wc = word_changes("on the contrary", "on contrary", "on the contrary")
    assert wc.fixed == ("the",)
    assert wc.reference_html == f"on {fixed('the')} contrary"
    assert wc.baseline_html == "on contrary"  # nothing there to highlight


def test_words_are_html_escaped():
    wc = word_changes("a <b>", "a x", "a <b>")
    assert "&lt;b&gt;" in wc.reference_html and "<b>" not in wc.reference_html


def test_transcript_changes_sorted_with_counts():
    ids = ["a", "b", "c", "d", "e"]
    refs = ["one two three", "red green", "blue sky", "the marshal at the turn was great", "we can go"]
    base = {"ids": ids, "references": refs,
            "hypotheses": ["one", "red green", "blue sky", "the marshal at the tern was great", "we con go"]}
    mam = {"ids": ids, "references": refs,
           "hypotheses": ["one two three", "rod green", "blue sky", "the marshal at the turn was grate", "we can go"]}
    out = transcript_changes(base, mam)
    # a: 2 → 0 (improved by 2); b: 0 → 1 (worse); c: identical; d: 1 → 1 (changed); e: 1 → 0
    assert list(out.table.index) == ["a", "e", "d", "b"]
    assert out.table["improvement"].tolist() == [2, 1, 0, -1]
    assert out.table.loc["a", "fixed"] == "two, three"
    assert out.table.loc["b", "broken"] == "red"
    assert out.table.loc["d", "fixed"] == "turn" and out.table.loc["d", "broken"] == "great"
    assert out.counts == {"improved": 2, "worsened": 1, "same errors": 1, "identical": 1}
    assert out.summary() == "2 improved, 1 worsened, 1 changed with as many errors, 1 identical"
    html = out.styled("Table 4").to_html()
    assert fixed("turn") in html  # the highlighting is not escaped away
    # cut to the best and the worst row: the regression stays visible
    assert list(out.shown(limit=1).index) == ["a", "b"]
    assert "the 1 most improved and the 1 most worsened of 4" in out.styled("Table 4", limit=1).to_html()
    assert list(out.shown(limit=2).index) == ["a", "e", "d", "b"]


def test_transcript_changes_needs_asr_rows():
    aec = {"ids": ["x"], "labels": [1], "predictions": [1]}
    with pytest.raises(ValueError, match="speech-recognition"):
        transcript_changes(aec, aec)


# -- per speaker --------------------------------------------------------------------------------------------------


def test_speaker_wer_by_hand():
    ids = ["s1-a", "s1-b", "s2-a"]
    refs = ["a b c d", "e f", "g h i j k"]
    base = {"ids": ids, "references": refs, "hypotheses": ["a b c", "e f", "g x i j k"]}
    mam = {"ids": ids, "references": refs, "hypotheses": ["a b c d", "e", "g h i j k"]}
    out = speaker_wer(base, mam, {"s1-a": "scottish", "s1-b": "scottish", "s2-a": "rp"})
    # scottish: 6 words, 1 error before, 1 after; rp: 5 words, 1 error before, 0 after
    assert out.loc["scottish", "utterances"] == 2 and out.loc["scottish", "words"] == 6
    assert out.loc["scottish", "WER unmerged (%)"] == pytest.approx(100 / 6)
    assert out.loc["scottish", "WER merged (%)"] == pytest.approx(100 / 6)
    assert out.loc["rp", "WER unmerged (%)"] == pytest.approx(20.0)
    assert out.loc["rp", "Δ (points)"] == pytest.approx(-20.0)
    with pytest.raises(ValueError, match="no speaker"):
        speaker_wer(base, mam, {"s1-a": "scottish"})


# -- hand-made stored results, analysed like the chapter does -----------------------------------------------------


def _stored_sweep(tmp_path):
    """Sweep rows written to and read back from a results store, as a chapter finds them (no model anywhere)."""
    from mamlib.sweeps.grid import layer_label
    from mamlib.sweeps.store import ResultStore, run_grid

    store = ResultStore(tmp_path)
    results = {(("none", 0.0)): BASE, ("source", 0.1): MAM, ("noise-source", 0.1): BASE}
    configs = []
    for (source, lam), row in results.items():
        config = {"experiment": "asr", "source": source, "split": "test", "lambda": lam, "layers": None}
        e, n = word_errors(row["references"], row["hypotheses"])
        store.put(config, {**row, "wer": 100.0 * e.sum() / n.sum()})
        configs.append(config)

    def must_not_run(config):
        raise AssertionError(f"{config} was recomputed")

    df = pd.DataFrame(run_grid(configs, must_not_run, store, progress=False))
    df["layers"] = df["layers"].map(layer_label)
    return df


def test_analysis_of_stored_results(tmp_path):
    df = _stored_sweep(tmp_path)
    speakers = {"u1": "us", "u2": "us", "u3": "scottish", "u4": "scottish"}
    a = analyse_sweep("tiny", df, 0.1, speakers=speakers, n_resamples=2000)
    # word errors: baseline 3 + 3 + 0 + 2 = 8, MAM 1 + 0 + 1 + 1 = 3, of 3 + 3 + 2 + 3 = 11 words
    assert a.interval.difference == pytest.approx(100 * (3 - 8) / 11)
    assert a.interval.n_items == 4
    assert a.changes.counts == {"improved": 3, "worsened": 1, "same errors": 0, "identical": 0}
    assert a.improvements.loc["characters", "deletion"] == pytest.approx(75.0)
    assert a.speakers.loc["us", "WER unmerged (%)"] == pytest.approx(100 * 6 / 6)
    assert a.speakers.loc["scottish", "WER merged (%)"] == pytest.approx(100 * 2 / 5)
    assert not a.degenerate

    one_speaker = analyse_sweep("tiny", df, 0.1, speakers=dict.fromkeys(IDS, "us"), n_resamples=200)
    assert one_speaker.speakers is None

    found = error_findings({"tiny": a})
    assert found["first_corpus"] == "tiny" and found["lambda"] == "0.10"
    assert (found["improved"], found["worsened"], found["identical"]) == ("3", "1", "0")
    assert found["first_verdict"] == a.interval.verdict
    assert found["asr_intervals"].startswith("tiny: -45.45 points of WER (95% interval ")
    assert found["degenerate"].startswith("Every comparison here has a non-zero")


def test_analysis_when_dev_chose_lambda_zero(tmp_path):
    df = _stored_sweep(tmp_path)
    a = analyse_sweep("tiny", df, 0.0, n_resamples=500)
    assert a.degenerate
    assert a.changes.table.empty and list(a.changes.table.columns)[:3] == ["reference", "baseline", "MAM"]
    assert a.changes.counts == {"improved": 0, "worsened": 0, "same errors": 0, "identical": 4}
    assert np.isnan(a.improvements.loc["characters", "insertion"])
    assert (a.interval.difference, a.interval.low, a.interval.high) == (0.0, 0.0, 0.0)
    aec = analyse_sweep("clips", pd.DataFrame([
        {"split": "test", "source": "none", "lambda": 0.0, "layers": "all", "ids": ["c1", "c2"], "labels": [0, 1],
         "predictions": [0, 0]}]), 0.0, n_resamples=200)
    assert aec.changes is None and aec.interval.verdict == "within noise"
    found = error_findings({"tiny": a}, aec)
    assert found["first_verdict"] == "within noise" and found["aec_verdict"] == "within noise"
    assert found["outside"] == "none"
    assert found["degenerate"] == ("For tiny and AEC (clips) the merged model is the unmerged one, nothing changed, "
                                   "and their tables below are empty.")
    assert found["aec_interval"] == "+0.00 points of error (95% interval +0.00 to +0.00): within noise"


def test_dev_chose_zero_shown_at_another_lambda_is_marked_illustrative(tmp_path):
    df = _stored_sweep(tmp_path)
    lam = float(df[df["source"] == "source"]["lambda"].iloc[0])
    shown = analyse_sweep("tiny", df, lam, chosen=0.0, n_resamples=200)
    assert shown.illustrative and not shown.degenerate and shown.chosen == 0.0
    assert not analyse_sweep("tiny", df, lam, chosen=lam, n_resamples=200).illustrative
    sentence = error_findings({"tiny": shown})["degenerate"]
    assert sentence.startswith(f"For tiny (λ = {lam:.2f}) the dev split chose λ = 0") and "illustration" in sentence


def test_table4_with_nothing_changed_says_so_instead_of_an_empty_table():
    row = {"ids": ["u0", "u1"], "references": ["front center", "rear left"], "hypotheses": ["front center", "rear"]}
    changes = transcript_changes(row, dict(row))
    assert changes.table.empty
    html = changes.styled("Table 4 — alsa-real").to_html()
    assert "no transcript changed" in html
