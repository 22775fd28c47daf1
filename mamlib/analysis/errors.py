"""What merging changes (Sec. 4.3): Table 4's transcripts side by side, Table 6's split of the improvements into
insertions, substitutions and deletions, and the WER per speaker (accent) before and after merging.

Everything is computed from two sweep rows evaluated on the same utterances — the unmerged model ("baseline") and a
merged configuration ("MAM") — whose normalized references and hypotheses the results store keeps. Alignments are
jiwer's (:func:`jiwer.process_words` for words, :func:`jiwer.process_characters` for characters); no model runs.

Vocabulary. An *insertion* is a word or character the hypothesis has and the reference lacks, a *deletion* one the
reference has and the hypothesis lacks, a *substitution* one replaced by another. A reference word is *fixed* when
the baseline gets it wrong (substituted or deleted) and MAM gets it right, *broken* in the reverse case; an
insertion is fixed when MAM inserts fewer words than the baseline at the same place between reference words, broken
when it inserts more.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jiwer
import numpy as np
import pandas as pd

from mamlib.analysis.bootstrap import check_paired, is_asr_row, word_errors

#: Inline styles of the highlighted words (inline, so that they survive any HTML renderer).
FIXED_STYLE = "background-color:#c6efce;color:#006100;font-weight:bold"
BROKEN_STYLE = "background-color:#ffc7ce;color:#9c0006;font-weight:bold"
EDIT_TYPES: tuple[str, ...] = ("insertion", "substitution", "deletion")


# -- word alignments ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Aligned:
    """One hypothesis aligned to its reference (by jiwer)."""

    ref: list[str]
    hyp: list[str]
    ref_ok: list[bool]  # per reference word: matched exactly
    inserted: list[list[int]]  # per slot k = 0..len(ref) (before reference word k): inserted hypothesis positions
    anchor: list[tuple[str, int]]  # per hypothesis word: ("ref", i) or ("slot", k)


def _aligned(out: Any) -> list[_Aligned]:
    result = []
    for ref, hyp, chunks in zip(out.references, out.hypotheses, out.alignments):
        ref_ok = [False] * len(ref)
        inserted: list[list[int]] = [[] for _ in range(len(ref) + 1)]
        anchor: list[tuple[str, int]] = [("slot", 0)] * len(hyp)
        for c in chunks:
            if c.type == "insert":
                for j in range(c.hyp_start_idx, c.hyp_end_idx):
                    inserted[c.ref_start_idx].append(j)
                    anchor[j] = ("slot", c.ref_start_idx)
                continue
            if c.type == "equal":
                for i in range(c.ref_start_idx, c.ref_end_idx):
                    ref_ok[i] = True
            if c.type in ("equal", "substitute"):
                for off in range(c.hyp_end_idx - c.hyp_start_idx):
                    anchor[c.hyp_start_idx + off] = ("ref", c.ref_start_idx + off)
        result.append(_Aligned(list(ref), list(hyp), ref_ok, inserted, anchor))
    return result


def _align_words(references: Sequence[str], hypotheses: Sequence[str]) -> list[_Aligned]:
    return _aligned(jiwer.process_words([str(r) for r in references], [str(h) for h in hypotheses]))


def _mark(words: Sequence[str], styles: Mapping[int, str]) -> str:
    out = []
    for j, w in enumerate(words):
        text = html.escape(w)
        out.append(f'<span style="{styles[j]}">{text}</span>' if j in styles else text)
    return " ".join(out)


@dataclass(frozen=True)
class WordChange:
    """How MAM's transcript of one utterance differs from the baseline's, word by word (one row of Table 4).

    ``fixed`` / ``broken`` list the reference words fixed / broken by MAM, in reference order, plus the inserted
    words that disappeared (fixed) or appeared (broken), each prefixed ``+``. The three HTML strings highlight them:
    in the reference, the words fixed (green) and broken (red); in each hypothesis, its words aligned to them.
    """

    fixed: tuple[str, ...]
    broken: tuple[str, ...]
    reference_html: str
    baseline_html: str
    mam_html: str


def _word_change(base: _Aligned, mam: _Aligned) -> WordChange:
    n = len(base.ref)
    fixed_pos = {i for i in range(n) if not base.ref_ok[i] and mam.ref_ok[i]}
    broken_pos = {i for i in range(n) if base.ref_ok[i] and not mam.ref_ok[i]}
    fixed_slots = {k for k in range(n + 1) if len(base.inserted[k]) > len(mam.inserted[k])}
    broken_slots = {k for k in range(n + 1) if len(mam.inserted[k]) > len(base.inserted[k])}

    fixed: list[tuple[tuple[int, int], str]] = [((i, 1), base.ref[i]) for i in fixed_pos]
    fixed += [((k, 0), "+" + base.hyp[j]) for k in fixed_slots for j in base.inserted[k]]
    broken: list[tuple[tuple[int, int], str]] = [((i, 1), base.ref[i]) for i in broken_pos]
    broken += [((k, 0), "+" + mam.hyp[j]) for k in broken_slots for j in mam.inserted[k]]

    def styles(al: _Aligned) -> dict[int, str]:
        out = {}
        for j, (side, pos) in enumerate(al.anchor):
            if (side == "ref" and pos in fixed_pos) or (side == "slot" and pos in fixed_slots):
                out[j] = FIXED_STYLE
            elif (side == "ref" and pos in broken_pos) or (side == "slot" and pos in broken_slots):
                out[j] = BROKEN_STYLE
        return out

    ref_styles = {i: FIXED_STYLE for i in fixed_pos} | {i: BROKEN_STYLE for i in broken_pos}
    return WordChange(
        fixed=tuple(w for _, w in sorted(fixed)), broken=tuple(w for _, w in sorted(broken)),
        reference_html=_mark(base.ref, ref_styles), baseline_html=_mark(base.hyp, styles(base)),
        mam_html=_mark(mam.hyp, styles(mam)),
    )


def word_changes(reference: str, baseline: str, mam: str) -> WordChange:
    """Table 4 for one utterance: the words MAM fixed and broke relative to the baseline (see :class:`WordChange`),
    from jiwer's word alignments of each hypothesis against the reference."""
    if not reference.strip():
        raise ValueError("the reference is empty")
    base, merged = _align_words([reference, reference], [baseline, mam])
    return _word_change(base, merged)


# -- Table 4 ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptChanges:
    """Table 4 for one corpus: the utterances whose transcript changed, most improved first (regressions last).

    ``table`` has one row per changed utterance (index ``id``): ``reference`` / ``baseline`` / ``MAM`` as HTML with
    the differing words highlighted, word errors of each, ``improvement`` (baseline errors − MAM errors), and the
    plain ``fixed`` / ``broken`` words. ``counts``: ``improved`` and ``worsened`` (fewer / more word errors),
    ``same errors`` (transcript changed, as many errors), ``identical`` (transcript unchanged).
    """

    table: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def unchanged(self) -> int:
        """Utterances whose word error count did not change (identical transcript or not)."""
        return self.counts["same errors"] + self.counts["identical"]

    def summary(self) -> str:
        c = self.counts
        return (f"{c['improved']} improved, {c['worsened']} worsened, {c['same errors']} changed with as many "
                f"errors, {c['identical']} identical")

    def shown(self, limit: int | None = None) -> pd.DataFrame:
        """The rows to show: all, or — when there are more than ``2 · limit`` — the ``limit`` most improved and the
        ``limit`` most worsened (so that regressions are never cut off)."""
        if limit is None or len(self.table) <= 2 * limit:
            return self.table
        return pd.concat([self.table.head(limit), self.table.tail(limit)])

    def styled(self, caption: str, limit: int | None = None):
        """The table for display (HTML kept, the plain word lists dropped), cut as :meth:`shown` cuts it."""
        cols = ["reference", "baseline", "MAM", "errors (baseline)", "errors (MAM)", "improvement"]
        part = self.shown(limit)
        if part.empty:  # an empty table would show a header and nothing else: say why instead
            part = pd.DataFrame([{c: "" for c in cols}])
            part.loc[0, "reference"] = "no transcript changed: MAM and the unmerged model wrote the same words"
            return part[cols].style.hide(axis="index").set_caption(caption)
        if len(part) < len(self.table):
            caption += f" (the {limit} most improved and the {limit} most worsened of {len(self.table)})"
        return part[cols].style.set_caption(caption)


TABLE4_COLUMNS = ["reference", "baseline", "MAM", "errors (baseline)", "errors (MAM)", "improvement", "fixed",
                  "broken"]


def transcript_changes(baseline: Mapping[str, Any] | pd.Series, mam: Mapping[str, Any] | pd.Series
                       ) -> TranscriptChanges:
    """Table 4 (Sec. 4.3) from two ASR sweep rows on the same utterances (ids checked, same order).

    Sorted by improvement in word errors, largest first; ties keep the corpus order. When MAM's row is the
    baseline's (λ = 0 chosen), the table is empty and every utterance counts as identical.
    """
    ids = check_paired(baseline, mam)
    if not is_asr_row(baseline):
        raise ValueError("Table 4 needs speech-recognition rows (references and hypotheses)")
    refs = list(baseline["references"])
    hyp_b, hyp_m = list(baseline["hypotheses"]), list(mam["hypotheses"])
    e_b, _ = word_errors(refs, hyp_b)
    e_m, _ = word_errors(refs, hyp_m)
    changed = [i for i in range(len(ids)) if hyp_b[i] != hyp_m[i]]
    al_b = _align_words([refs[i] for i in changed], [hyp_b[i] for i in changed]) if changed else []
    al_m = _align_words([refs[i] for i in changed], [hyp_m[i] for i in changed]) if changed else []
    rows = []
    for k, i in enumerate(changed):
        wc = _word_change(al_b[k], al_m[k])
        rows.append({"id": ids[i], "reference": wc.reference_html, "baseline": wc.baseline_html,
                     "MAM": wc.mam_html, "errors (baseline)": int(e_b[i]), "errors (MAM)": int(e_m[i]),
                     "improvement": int(e_b[i] - e_m[i]), "fixed": ", ".join(wc.fixed),
                     "broken": ", ".join(wc.broken)})
    table = pd.DataFrame(rows, columns=["id", *TABLE4_COLUMNS]).set_index("id")
    table = table.sort_values("improvement", ascending=False, kind="mergesort")
    counts = {"improved": int((e_m < e_b).sum()), "worsened": int((e_m > e_b).sum()),
              "same errors": sum(1 for i in changed if e_m[i] == e_b[i]), "identical": len(ids) - len(changed)}
    return TranscriptChanges(table, counts)


# -- Table 6 ------------------------------------------------------------------------------------------------------


def edit_counts(references: Sequence[str], hypotheses: Sequence[str], unit: str = "character") -> np.ndarray:
    """Per-utterance ``[insertions, substitutions, deletions]`` (an ``[N, 3]`` integer array) from jiwer's
    alignment of each hypothesis against its reference, in characters (spaces between words count as characters,
    so splitting or joining words is an edit) or in words."""
    if unit not in ("character", "word"):
        raise ValueError(f"unit must be 'character' or 'word', got {unit!r}")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return np.zeros((0, 3), dtype=np.int64)
    if any(not str(r).strip() for r in references):
        raise ValueError("a reference is empty")
    process = jiwer.process_characters if unit == "character" else jiwer.process_words
    out = process([str(r) for r in references], [str(h) for h in hypotheses])
    counts = np.zeros((len(references), 3), dtype=np.int64)
    for n, chunks in enumerate(out.alignments):
        for c in chunks:
            if c.type == "insert":
                counts[n, 0] += c.hyp_end_idx - c.hyp_start_idx
            elif c.type == "substitute":
                counts[n, 1] += c.ref_end_idx - c.ref_start_idx
            elif c.type == "delete":
                counts[n, 2] += c.ref_end_idx - c.ref_start_idx
    return counts


@dataclass(frozen=True)
class ImprovementSplit:
    """Table 6 for one corpus and unit: the edits removed by MAM, by type, and their shares of the total (%).

    Definition (the paper gives none): an utterance is *improved* when MAM's total edit count (insertions +
    substitutions + deletions against the reference, in ``unit``) is lower than the baseline's. On each improved
    utterance, the reduction of type t is ``max(0, baseline_t − MAM_t)``; ``reductions`` sums them over the improved
    utterances and ``shares`` gives each type's percentage of the summed reductions (NaN when nothing improved).
    "Insertion" means an extra character (word) the baseline wrote and MAM no longer writes; "deletion" one the
    baseline left out and MAM restores.
    """

    unit: str
    reductions: dict[str, int]
    shares: dict[str, float]
    n_improved: int
    n_items: int

    @property
    def total(self) -> int:
        return sum(self.reductions.values())


def improvement_split(baseline: Mapping[str, Any] | pd.Series, mam: Mapping[str, Any] | pd.Series,
                      unit: str = "character") -> ImprovementSplit:
    """Table 6 (Sec. 4.3) for two ASR sweep rows on the same utterances; see :class:`ImprovementSplit`."""
    check_paired(baseline, mam)
    if not is_asr_row(baseline):
        raise ValueError("Table 6 needs speech-recognition rows (references and hypotheses)")
    refs = list(baseline["references"])
    c_b = edit_counts(refs, list(baseline["hypotheses"]), unit)
    c_m = edit_counts(refs, list(mam["hypotheses"]), unit)
    improved = c_m.sum(axis=1) < c_b.sum(axis=1)
    red = np.clip(c_b[improved] - c_m[improved], 0, None).sum(axis=0)
    total = int(red.sum())
    shares = {t: (100.0 * float(r) / total if total else float("nan")) for t, r in zip(EDIT_TYPES, red)}
    return ImprovementSplit(unit, {t: int(r) for t, r in zip(EDIT_TYPES, red)}, shares, int(improved.sum()),
                            len(refs))


def improvement_table(baseline: Mapping[str, Any] | pd.Series, mam: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """Table 6's row for one corpus at the character level and, with the same definition, at the word level:
    shares (%) of insertions, substitutions and deletions among the removed edits, the number of removed edits and
    of improved utterances."""
    rows = {}
    for unit in ("character", "word"):
        s = improvement_split(baseline, mam, unit)
        rows[f"{unit}s"] = {**s.shares, "edits removed": s.total, "improved utterances": s.n_improved}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "unit"
    return out


def table6_beside(ours: Mapping[str, pd.DataFrame], paper: pd.DataFrame, dataset_for: Mapping[str, str | None],
                  preset: str) -> pd.DataFrame:
    """Our character-level shares per corpus (``ours``: label → :func:`improvement_table`) above the paper's rows
    (``paper``: columns dataset, insertion, substitution, deletion), labelled ``ours (preset: label)`` and
    ``paper (dataset)``; the paper row shown is the one of the dataset each corpus stands in for (none for a corpus
    whose ``dataset_for`` is None: no counterpart in the paper)."""
    rows = {}
    for label, table in ours.items():
        rows[f"ours ({preset}: {label})"] = table.loc["characters", list(EDIT_TYPES)]
    for dataset in dict.fromkeys(d for d in (dataset_for[label] for label in ours) if d is not None):
        match = paper[paper["dataset"] == dataset]
        if not match.empty:
            rows[f"paper ({dataset})"] = match.iloc[0][list(EDIT_TYPES)].astype(float)
    out = pd.DataFrame(rows).T.astype(float)
    out.columns = [f"{t} (%)" for t in EDIT_TYPES]
    return out


# -- per speaker --------------------------------------------------------------------------------------------------


def speaker_wer(baseline: Mapping[str, Any] | pd.Series, mam: Mapping[str, Any] | pd.Series,
                speakers: Mapping[str, str]) -> pd.DataFrame:
    """WER (%) per speaker (accent) before and after merging, from two ASR rows on the same utterances and a map
    utterance id → speaker. Each speaker's WER is its word errors over its reference words (as for the corpus)."""
    ids = check_paired(baseline, mam)
    missing = [i for i in ids if i not in speakers]
    if missing:
        raise ValueError(f"no speaker for {len(missing)} utterance(s), e.g. {missing[:3]}")
    refs = list(baseline["references"])
    e_b, words = word_errors(refs, list(baseline["hypotheses"]))
    e_m, _ = word_errors(refs, list(mam["hypotheses"]))
    frame = pd.DataFrame({"speaker": [speakers[i] for i in ids], "words": words, "e_b": e_b, "e_m": e_m})
    g = frame.groupby("speaker", sort=True)
    out = pd.DataFrame({"utterances": g.size(), "words": g["words"].sum()})
    out["WER unmerged (%)"] = 100.0 * g["e_b"].sum() / out["words"]
    out["WER merged (%)"] = 100.0 * g["e_m"].sum() / out["words"]
    out["Δ (points)"] = out["WER merged (%)"] - out["WER unmerged (%)"]
    return out
