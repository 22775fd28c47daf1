"""The front page's headline table: one row per table, task and corpus, verdicts from the interval."""

from __future__ import annotations

from mamlib.analysis.bootstrap import PairedInterval
from mamlib.report.front import Front, Headline


def _row(corpus: str, merged: float, low: float, high: float) -> Headline:
    iv = PairedInterval(difference=merged - 10.0, low=low, high=high, n_items=16, n_resamples=1000, level=0.95)
    return Headline("Table 1", "speech recognition", corpus, "λ = 0.05 (dev)", 10.0, merged, "LJ Speech",
                    "λ = 0.10", 9.25, 9.06, iv)


def test_several_corpora_of_one_table_get_their_own_rows_and_verdicts():
    front = Front("mini", [_row("lj-like", 8.0, -3.0, -1.0), _row("vctk-like", 11.0, -1.0, 3.0),
                           _row("alsa-real", 10.0, 0.0, 0.0)])
    table = front.table(links=False)
    assert table.index.is_unique and len(table) == 3
    assert list(table["does it reproduce?"]) == ["yes: same direction, outside noise",
                                                "opposite direction, within noise", "no change"]
    assert "<table" in front.styled().to_html()  # the styler needs a unique index
    assert front.findings()["reproduced"] == 1 and front.findings()["same_direction"] == 1
