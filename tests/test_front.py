"""The front page: one row per table, task and corpus, every setting chosen on dev, verdicts from the interval and
from what the test set can detect; the evidence (clear results, harms first; negative and null results)."""

from __future__ import annotations

import pandas as pd

from mamlib.analysis.bootstrap import PairedInterval
from mamlib.report.evidence import (
    Comparison,
    clear_results,
    identical_metric_picks,
    negative_results,
    noise_controls,
    sweep_comparisons,
)
from mamlib.report.front import Front, Headline, Merged, _paper, _paper_table2
from mamlib.report.table2 import Table2, best_block_label, dev_block_label


def _row(corpus: str, merged: float, low: float, high: float, detectable: float = 0.5,
         dataset: str | None = "LJ Speech", lam: float = 0.05) -> Headline:
    iv = PairedInterval(difference=merged - 10.0, low=low, high=high, n_items=16, n_resamples=1000, level=0.95,
                        detectable=detectable)
    paper = {"paper_setting": "λ = 0.10", "paper_base": 9.25, "paper_merged": 9.06} if dataset else {}
    return Headline("Table 1", "speech recognition", corpus, f"λ = {lam:.2f} (chosen on dev)", 10.0, merged, dataset,
                    interval=iv, merged_model=lam > 0, **paper)


def test_outcomes_separate_harms_detectable_nulls_and_what_the_set_cannot_tell():
    rows = {
        "reproduced": _row("a", 8.0, -3.0, -1.0),
        "harm": _row("b", 12.0, 1.0, 3.0),
        # the paper's effect is −0.19 points: a set that detects ±0.10 should have seen it ...
        "absent": _row("c", 10.05, -0.05, 0.15, detectable=0.10),
        # ... one that detects only ±4 cannot tell.
        "undetectable": _row("d", 11.0, -1.0, 3.0, detectable=4.0),
        "no-counterpart": _row("e", 9.0, -2.0, 0.5, dataset=None),
        "not-merged": _row("f", 10.0, 0.0, 0.0, detectable=0.0, lam=0.0),
    }
    for outcome, row in rows.items():
        assert row.outcome == outcome, (outcome, row.verdict)
    assert rows["harm"].verdict.startswith("harm: +2.00 points, outside noise")
    assert "dev chose not to merge" in rows["not-merged"].verdict
    # (4 / 0.19)² · 16 items, by hand: 7,091.4 → 7,092
    assert rows["undetectable"].items_needed == 7092
    assert "7,092 test items would detect it" in rows["undetectable"].verdict
    front = Front("mini", list(rows.values()))
    table = front.table(links=False)
    assert table.index.is_unique and len(table) == 6
    assert table.index[0].endswith("· b")  # harms first
    assert "no counterpart in the paper" in table.loc[table.index[table.index.str.endswith("· e")][0], "paper"]
    assert "<table" in front.styled().to_html()
    counts = front.counts()
    assert counts == {"harm": 1, "reproduced": 1, "absent": 1, "undetectable": 1, "no-counterpart": 1,
                      "identical": 0, "not-merged": 1}
    assert front.findings()["reproduced"] == 1


def test_rows_link_to_their_tables_anchor():
    front = Front("mini", [_row("a", 8.0, -3.0, -1.0)])
    assert 'href="01_attention_interpolation.html#table-1-speech-recognition"' in front.table().index[0]


def _item_rows(split: str, layers: str, lam: float, source: str, hyps: list[str]) -> dict:
    refs = ["a b c d"] * len(hyps)
    errors = [sum(x != y for x, y in zip(r.split(), h.split())) for r, h in zip(refs, hyps)]
    ids = [f"u{i}" for i in range(len(hyps))]
    return {"split": split, "layers": layers, "lambda": lam, "source": source, "ids": ids, "references": refs,
            "hypotheses": hyps, "wer": 100.0 * sum(errors) / (4 * len(hyps))}


def _scripted_sweep() -> pd.DataFrame:
    """Blocks "0" and "1" at λ = 0.1: block 0 is best on dev, block 1 best on test."""
    good, bad = "a b c d", "x y c d"
    return pd.DataFrame([
        _item_rows("dev", "all", 0.0, "none", [bad, good, good, good]),
        _item_rows("dev", "0", 0.1, "source", [good] * 4),
        _item_rows("dev", "1", 0.1, "source", [bad, bad, good, good]),
        _item_rows("test", "all", 0.0, "none", [bad] * 4 + [good] * 4),
        _item_rows("test", "0", 0.1, "source", [bad] * 8),
        _item_rows("test", "1", 0.1, "source", [good] * 8),
    ])


def test_the_block_in_a_verdict_is_chosen_on_dev_not_on_test():
    df = _scripted_sweep()
    assert best_block_label(df, 0.1) == "1"  # the oracle
    assert dev_block_label(df, 0.1) == "0"
    t2 = Table2({"c": df}, {"c": 0.1}, pd.DataFrame(), [[0], [1]])
    assert t2.chosen("c") == "0"
    merged = Merged("Table 2", "speech recognition", "c", "layer 0", df, 0.1, t2.chosen("c"), "wer", ["0", "1"])
    head = merged.headline(**_paper("LJ Speech", _paper_table2))
    assert head.merged == 50.0 and head.base == 25.0 and head.paper_dataset == "LJ Speech"
    assert head.outcome == "harm"  # dev's block doubled the test errors: a harm, even though block 1 halved them
    labels = list(t2.intervals().index)
    assert labels == ["c: layer 0 (chosen on dev) − unmerged", "c: layer 1 (oracle: chosen on test) − unmerged"]


def test_table1_never_compares_the_unmerged_model_with_itself():
    """When dev chose λ = 0, Chapter 1's interval compares the smallest non-zero λ with the unmerged model, labelled
    as shown (not chosen), instead of an empty λ = 0 − unmerged row; a dev-chosen λ is labelled as chosen."""
    from mamlib.report.table1 import Table1

    good, bad = "a b c d", "x y c d"
    rows = [_item_rows("test", "all", 0.0, "none", [good] * 4 + [bad] * 4),
            _item_rows("test", "all", 0.1, "source", [bad] * 8), _item_rows("test", "all", 0.2, "source", [bad] * 8)]
    df = pd.DataFrame(rows)
    for dev_lam, label in ((0.0, "c: λ = 0.10 (dev chose not to merge; shown) − unmerged"),
                           (0.2, "c: λ = 0.20 (chosen on dev) − unmerged")):
        t1 = Table1({"c": df}, {}, {}, pd.DataFrame({"lambda": {"c": dev_lam}}), "wer")
        table = t1.intervals()
        assert list(table.index) == [label]
        assert table.iloc[0, 0] == 25.0  # 4 of 8 utterances go from 0 to 2 errors of 4 words: +25 points


def test_a_significant_harm_reaches_the_front_pages_evidence():
    df = _scripted_sweep()
    comps = sweep_comparisons("Table 2", "speech recognition", "c", df, value="wer", chosen=(0.1, "0"),
                              layers=["0", "1"], lambdas=[0.1])
    table = clear_results(comps)
    assert list(table["reading"]) == ["harm: more errors", "fewer errors"]  # harms first
    assert table["comparison"].iloc[0] == "Table 2 · speech recognition · c: λ = 0.10, layer 0"
    assert table["chosen on dev"].iloc[0] == "yes"
    box = negative_results(comps, {}, [], [], {}, {})
    assert box[0].startswith("**Significant harms.** 1 merge(s)") and "c λ = 0.10, layer 0" in box[0]


def test_negative_results_box_from_data():
    frame = pd.DataFrame([
        {"split": "test", "layers": "all", "lambda": 0.1, "source": "source", "wer": 20.0},
        {"split": "test", "layers": "all", "lambda": 0.1, "source": "noise-source", "wer": 19.0},
        {"split": "test", "layers": "all", "lambda": 0.2, "source": "source", "wer": 20.0},
        {"split": "test", "layers": "all", "lambda": 0.2, "source": "noise-source", "wer": 30.0},
    ])
    found = noise_controls("c", frame, "wer")
    assert found == [(0.1, "N(Source)", 19.0, 20.0)]
    assert identical_metric_picks({("euclidean", 1): [0], ("swd", 1): [0], ("euclidean", 2): [0, 1],
                                   ("swd", 2): [0, 1]})
    assert not identical_metric_picks({("euclidean", 1): [0], ("swd", 1): [2]})
    box = negative_results([], {"c": found}, ["alsa"], ["c"], {"c": (0.05, 0.042, 0.046)},
                           {"aec": [("FT", 10.42, 13.01)]})
    text = "\n".join(box)
    assert "N(Source) at λ = 0.10: 19.00 against the source's 20.00" in text
    assert "Dev chose not to merge** on alsa" in text
    assert "every metric picks the same layers" in text
    assert "fell below its start 0.050 (now 0.042 to 0.046)" in text
    assert "FT is +10.42 points against the unmerged model, sd 13.01" in text


def test_comparison_harm_needs_the_whole_interval_above_zero():
    iv = PairedInterval(difference=1.0, low=-0.5, high=2.0, n_items=8, n_resamples=100, level=0.95)
    assert not Comparison("Table 1", "t", "c", "λ", True, iv).harm


def test_resolution_names_the_corpus_whose_dev_split_chooses_for_a_corpus_without_one():
    from mamlib.report.evidence import resolution_table

    own = _scripted_sweep()
    borrowed = own[own["split"] == "test"]
    table = resolution_table({"c": own, "real": borrowed}, [], {"c": -0.19, "real": None}, {"real": "c"})
    # c's dev: 4 items of 4 words; its test: 8 items, 32 words, one word = 100/32 points
    assert table.loc["c", "dev"] == "4 items, 16 words" and table.loc["c", "one error"] == "3.12 points per word"
    assert table.loc["real", "dev"] == "c's: 4 items, 16 words"
    assert table.loc["real", "paper's effect (points)"] == "no counterpart"


def test_each_interval_is_computed_once_per_front_page(monkeypatch):
    """A headline's interval is also one of the evidence's comparisons: the front page's tables compute it once."""
    import mamlib.report.front as front

    calls = []
    real = front.compare_to_unmerged
    monkeypatch.setattr(front, "compare_to_unmerged", lambda df, lam, layers="all": calls.append((lam, layers))
                        or real(df, lam, layers=layers))
    tables = object.__new__(front.Tables)  # only its intervals, no chapter
    tables._intervals = {}
    df = _scripted_sweep()
    merged = Merged("Table 2", "speech recognition", "c", "layer 0", df, 0.1, "0", "wer", ["0", "1"])
    headline = merged.headline(tables.interval, paper_dataset=None)
    comps = sweep_comparisons("Table 2", "speech recognition", "c", df, value="wer", chosen=(0.1, "0"),
                              layers=["0", "1"], lambdas=[0.1], compare=tables.interval)
    assert calls == [(0.1, "0"), (0.1, "1")]
    assert comps[0].interval == headline.interval
