"""What the inference dtype does to Table 1: the unmerged model and one merge run again in another dtype, WER beside
WER and transcript beside transcript.

A preset's ``asr.dtype`` (float32 by default; ``paper-bf16`` runs bfloat16) is part of every results key, so the two
runs are stored apart; the comparison costs two evaluations of each test split.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from mamlib.analysis.bootstrap import select_row
from mamlib.report.chapter import Chapter
from mamlib.report.table1 import Table1
from mamlib.sweeps.asr import ASRRig, ASRSweep
from mamlib.sweeps.grid import SweepGrid


def dtype_effect(ch: Chapter, table1: Table1, other: str | None = None) -> pd.DataFrame:
    """Test WER (%) in the preset's dtype (Table 1's sweeps) and in ``other`` (default: bfloat16, or float32 when
    the preset already runs bfloat16) of the unmerged model and of the real source (all layers) at each corpus's
    :meth:`~mamlib.report.table1.Table1.shown_lambda` — the dev-chosen λ, or the smallest non-zero one when dev
    chose none — with the difference in points and the number of transcripts that changed."""
    setup = ch.preset.asr
    other = other or ("bfloat16" if setup.dtype == "float32" else "float32")
    if other == setup.dtype:
        raise ValueError(f"the preset already runs {other}; name another dtype to compare with")
    rig = ASRRig.build(replace(ch.preset, asr=replace(setup, dtype=other)), variants=["source"])
    rows = []
    for label, spec in setup.corpora.items():
        lambdas = sorted({0.0, table1.shown_lambda(label)})
        grid = SweepGrid(variants=("source",), lambdas=tuple(lambdas), splits=("test",))
        alt = ASRSweep(rig, spec, ch.corpora[label], ch.store).run(grid)
        for lam in lambdas:
            a, b = select_row(table1.sweeps[label], lam=lam), select_row(alt, lam=lam)
            changed = sum(x != y for x, y in zip(a["hypotheses"], b["hypotheses"], strict=True))
            rows.append({"corpus": label, "λ": lam, f"WER {setup.dtype}": a["wer"], f"WER {other}": b["wer"],
                         "difference (points)": b["wer"] - a["wer"],
                         "transcripts changed": f"{changed}/{len(a['hypotheses'])}"})
    return pd.DataFrame(rows).set_index(["corpus", "λ"])


def largest_change(table: pd.DataFrame) -> float:
    """The largest absolute WER difference (points) in a :func:`dtype_effect` table."""
    return float(table["difference (points)"].abs().max())
