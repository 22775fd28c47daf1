"""Chapter 5 (Sec. 4.3) in one call per corpus: the dev-chosen MAM row of a sweep frame against the unmerged one —
the paired interval, Table 4, Table 6 and the per-speaker WER — and the sentences the chapter's prose quotes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from mamlib.analysis.bootstrap import PairedInterval, compare_rows, is_asr_row, select_row
from mamlib.analysis.errors import TranscriptChanges, improvement_table, speaker_wer, transcript_changes


@dataclass(frozen=True)
class PairAnalysis:
    """One corpus (or the AEC clips): the unmerged row against the merged row at λ, on one split. ``changes``
    (Table 4) and ``improvements`` (Table 6) exist for ASR only, ``speakers`` for several speakers with a map."""

    label: str
    lam: float
    baseline: pd.Series
    merged: pd.Series
    interval: PairedInterval
    #: The λ the dev split chose, when the comparison is shown at another one (dev chose 0: an illustration).
    chosen: float | None = None
    changes: TranscriptChanges | None = None
    improvements: pd.DataFrame | None = None
    speakers: pd.DataFrame | None = None

    @property
    def degenerate(self) -> bool:
        """λ = 0 was chosen: the "merged" model is the unmerged one and nothing can differ."""
        return self.lam == 0.0

    @property
    def illustrative(self) -> bool:
        """Dev chose λ = 0 and the comparison is shown at a non-zero λ instead."""
        return self.chosen is not None and self.chosen != self.lam


def analyse_sweep(
    label: str, df: pd.DataFrame, lam: float, *, speakers: Mapping[str, str] | None = None, split: str = "test",
    source: str = "source", layers: str = "all", n_resamples: int = 10_000, seed: int = 0, chosen: float | None = None,
) -> PairAnalysis:
    """The unmerged row of sweep ``df`` against (``source``, ``lam``, ``layers``) on ``split``: the paired interval
    and, for ASR, Tables 4 and 6 and (``speakers``: id → speaker, several among the items) the per-speaker WER.
    ``chosen``: the dev-chosen λ when ``lam`` differs from it (an illustration, not the protocol's pick)."""
    lam = float(lam)
    chosen = None if chosen is None or float(chosen) == lam else float(chosen)
    base = select_row(df, split=split, source="none")
    merged = base if lam == 0.0 else select_row(df, split=split, source=source, lam=lam, layers=layers)
    interval = compare_rows(base, merged, n_resamples=n_resamples, seed=seed)
    if not is_asr_row(base):
        return PairAnalysis(label, lam, base, merged, interval, chosen)
    several = speakers is not None and len({speakers.get(str(i)) for i in base["ids"]}) > 1
    return PairAnalysis(label, lam, base, merged, interval, chosen, transcript_changes(base, merged),
                        improvement_table(base, merged), speaker_wer(base, merged, speakers) if several else None)


def _join(parts: list[str]) -> str:
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


def _described(a: PairAnalysis, value: str) -> str:
    """The interval's phrase naming the error, e.g. ``-1.25 points of WER (95% interval -3.10 to +0.60): within
    noise``."""
    return a.interval.describe().replace(" points", f" points of {value}", 1)


def outside_noise(analyses: Mapping[str, PairAnalysis]) -> str:
    """The comparisons whose interval excludes zero, with their direction, or ``"none"``."""
    hits = [f"{label} ({a.interval.verdict})" for label, a in analyses.items() if a.interval.excludes_zero]
    return _join(hits) if hits else "none"


def degenerate_sentence(analyses: Mapping[str, PairAnalysis]) -> str:
    """What the prose says about comparisons where the dev split chose λ = 0."""
    zero = [label for label, a in analyses.items() if a.degenerate]
    shown = [f"{label} (λ = {a.lam:.2f})" for label, a in analyses.items() if a.illustrative]
    parts = []
    if shown:
        parts.append(f"For {_join(shown)} the dev split chose λ = 0 — merging did not help on dev — so the comparison "
                     "is shown at the smallest non-zero λ of the grid instead: an illustration of what merging "
                     "changes, not a merge the protocol would pick.")
    if zero:
        its = "its" if len(zero) == 1 else "their"
        parts.append(f"For {_join(zero)} the merged model is the unmerged one, nothing changed, and {its} tables "
                     "below are empty.")
    if not parts:
        return "Every comparison here has a non-zero dev-chosen λ, so each merged model differs from the unmerged one."
    return " ".join(parts)


def error_findings(asr: Mapping[str, PairAnalysis], aec: PairAnalysis | None = None) -> dict[str, str]:
    """The values Chapter 5's prose quotes (strings, for glue): the first corpus's λ and change counts, the
    intervals of every comparison, which are outside noise, and the λ = 0 cases."""
    first_label, first = next(iter(asr.items()))
    c = first.changes.counts if first.changes is not None else {}
    everything = dict(asr) | ({f"AEC ({aec.label})": aec} if aec is not None else {})
    out = {
        "first_corpus": first_label, "lambda": f"{first.lam:.2f}", "n_items": str(first.interval.n_items),
        "improved": str(c.get("improved", 0)), "worsened": str(c.get("worsened", 0)),
        "same": str(c.get("same errors", 0)), "identical": str(c.get("identical", 0)),
        "first_verdict": first.interval.verdict,
        "asr_intervals": "; ".join(f"{label}: {_described(a, 'WER')}" for label, a in asr.items()),
        "outside": outside_noise(everything),
        "degenerate": degenerate_sentence(everything),
    }
    if aec is not None:
        out.update({"aec_lambda": f"{aec.lam:.2f}", "aec_interval": _described(aec, "error"),
                    "aec_verdict": aec.interval.verdict})
    return out
