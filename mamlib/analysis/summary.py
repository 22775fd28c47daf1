"""Chapter 5 (Sec. 4.3) in one call per corpus: the dev-chosen MAM row of a sweep against the unmerged one — the
paired interval, Table 4, Table 6 and the per-speaker WER — and the sentences the chapter's prose quotes.

Takes plain sweep frames (as :mod:`mamlib.sweeps` returns them) and λ values; nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from mamlib.analysis.bootstrap import PairedInterval, compare_rows, is_asr_row, select_row
from mamlib.analysis.errors import TranscriptChanges, improvement_table, speaker_wer, transcript_changes


@dataclass(frozen=True)
class PairAnalysis:
    """One corpus (or the AEC clips): the unmerged row against the merged row at λ, on one split.

    ``changes`` (Table 4) and ``improvements`` (Table 6, characters and words) exist for speech recognition only;
    ``speakers`` only when the corpus has several speakers and a speaker map was given.
    """

    label: str
    lam: float
    baseline: pd.Series
    merged: pd.Series
    interval: PairedInterval
    changes: TranscriptChanges | None = None
    improvements: pd.DataFrame | None = None
    speakers: pd.DataFrame | None = None

    @property
    def degenerate(self) -> bool:
        """λ = 0 was chosen: the "merged" model is the unmerged one and nothing can differ."""
        return self.lam == 0.0


def analyse_sweep(
    label: str, df: pd.DataFrame, lam: float, *, speakers: Mapping[str, str] | None = None, split: str = "test",
    source: str = "source", layers: str = "all", n_resamples: int = 10_000, seed: int = 0,
) -> PairAnalysis:
    """Compare the unmerged row of sweep ``df`` with (``source``, ``lam``, ``layers``) on ``split``: paired
    bootstrap interval of the error difference and, for ASR rows, Tables 4 and 6 and (given ``speakers``, id →
    speaker, with more than one speaker among the items) the per-speaker WER."""
    lam = float(lam)
    base = select_row(df, split=split, source="none")
    merged = base if lam == 0.0 else select_row(df, split=split, source=source, lam=lam, layers=layers)
    interval = compare_rows(base, merged, n_resamples=n_resamples, seed=seed)
    if not is_asr_row(base):
        return PairAnalysis(label, lam, base, merged, interval)
    per_speaker = None
    if speakers is not None and len({speakers.get(str(i)) for i in base["ids"]}) > 1:
        per_speaker = speaker_wer(base, merged, speakers)
    return PairAnalysis(label, lam, base, merged, interval, transcript_changes(base, merged),
                        improvement_table(base, merged), per_speaker)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def noise_sentence(analyses: Mapping[str, PairAnalysis], value: str = "WER") -> str:
    """Per comparison, the difference and its interval with the verdict, e.g. ``lj-like: -1.25 points of WER (95%
    interval -3.10 to +0.60): within noise``, joined by semicolons."""
    return "; ".join(f"{label}: {a.interval.describe().replace(' points', f' points of {value}', 1)}"
                     for label, a in analyses.items())


def outside_noise(analyses: Mapping[str, PairAnalysis]) -> str:
    """The comparisons whose interval excludes zero, with their direction, or ``"none"``."""
    hits = [f"{label} ({a.interval.verdict})" for label, a in analyses.items() if a.interval.excludes_zero]
    return _join(hits) if hits else "none"


def degenerate_sentence(analyses: Mapping[str, PairAnalysis]) -> str:
    """What the prose says about comparisons where the dev split chose λ = 0."""
    zero = [label for label, a in analyses.items() if a.degenerate]
    if not zero:
        return "Every comparison here has a non-zero dev-chosen λ, so each merged model differs from the unmerged one."
    its = "its" if len(zero) == 1 else "their"
    return (f"For {_join(zero)} the dev split chose λ = 0: the merged model is the unmerged one, nothing changed, "
            f"and {its} tables below are empty.")


def findings(asr: Mapping[str, PairAnalysis], aec: PairAnalysis | None = None) -> dict[str, str]:
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
        "asr_intervals": noise_sentence(asr, "WER"), "outside": outside_noise(everything),
        "degenerate": degenerate_sentence(everything),
    }
    if aec is not None:
        out.update({"aec_lambda": f"{aec.lam:.2f}", "aec_interval": aec.interval.describe().replace(
            " points", " points of error", 1), "aec_verdict": aec.interval.verdict})
    return out
