"""What merging changes (Sec. 4.3): Table 4's transcripts side by side, Table 6's split of the improvements into
insertions, substitutions and deletions, and the WER per speaker (accent) before and after merging.

Computed from two sweep rows on the same utterances — the unmerged model ("baseline") and a merged configuration
("MAM") — with jiwer's alignments; no model runs. A reference word is *fixed* when the baseline gets it wrong
(substituted or deleted) and MAM right, *broken* in the reverse case; an insertion is fixed when MAM inserts fewer
words than the baseline at the same place between reference words, broken when it inserts more.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jiwer
import numpy as np
import pandas as pd

from mamlib.analysis.bootstrap import EDIT_TYPES, Row, check_paired, edit_counts, is_asr_row, word_errors

#: Inline styles of the highlighted words (inline, so that they survive any HTML renderer).
FIXED_STYLE = "background-color:#c6efce;color:#006100;font-weight:bold"
BROKEN_STYLE = "background-color:#ffc7ce;color:#9c0006;font-weight:bold"
TABLE4_COLUMNS = ["reference", "baseline", "MAM", "errors (baseline)", "errors (MAM)", "improvement", "fixed",
                  "broken"]

# -- word alignments ----------------------------------------------------------------------------------------------

Anchor = tuple[str, int]  # where a hypothesis word sits: ("ref", i) on reference word i, ("slot", k) inserted before it


@dataclass(frozen=True)
class _Aligned:
    """One hypothesis aligned to its reference (by jiwer)."""

    ref: list[str]
    hyp: list[str]
    ref_ok: list[bool]  # per reference word: matched exactly
    inserted: list[list[int]]  # per slot k = 0..len(ref) (before reference word k): inserted hypothesis positions
    anchor: list[Anchor]  # per hypothesis word


def _align_words(references: Sequence[str], hypotheses: Sequence[str]) -> list[_Aligned]:
    if not references:
        return []
    out = jiwer.process_words([str(r) for r in references], [str(h) for h in hypotheses])
    result = []
    for ref, hyp, chunks in zip(out.references, out.hypotheses, out.alignments):
        ref_ok = [False] * len(ref)
        inserted: list[list[int]] = [[] for _ in range(len(ref) + 1)]
        anchor: list[Anchor] = [("slot", 0)] * len(hyp)
        for c in chunks:
            hyp_idx = range(c.hyp_start_idx, c.hyp_end_idx)  # empty for a deletion
            if c.type == "insert":
                inserted[c.ref_start_idx] += hyp_idx
            for off, j in enumerate(hyp_idx):
                anchor[j] = ("slot", c.ref_start_idx) if c.type == "insert" else ("ref", c.ref_start_idx + off)
            if c.type == "equal":
                ref_ok[c.ref_start_idx : c.ref_end_idx] = [True] * (c.ref_end_idx - c.ref_start_idx)
        result.append(_Aligned(list(ref), list(hyp), ref_ok, inserted, anchor))
    return result


def _mark(words: Sequence[str], anchors: Sequence[Anchor], fixed: set[Anchor], broken: set[Anchor]) -> str:
    """The words joined by spaces, HTML-escaped, those anchored at ``fixed`` / ``broken`` places highlighted."""
    styles = [FIXED_STYLE if at in fixed else BROKEN_STYLE if at in broken else None for at in anchors]
    return " ".join(html.escape(w) if s is None else f'<span style="{s}">{html.escape(w)}</span>'
                    for w, s in zip(words, styles))


@dataclass(frozen=True)
class WordChange:
    """How MAM's transcript of one utterance differs from the baseline's, word by word (one row of Table 4).

    ``fixed`` / ``broken``: the reference words fixed / broken by MAM, in reference order, plus the inserted words
    that disappeared (fixed) or appeared (broken), prefixed ``+``. The HTML strings highlight them (fixed green,
    broken red) in the reference and, through the alignment, in each hypothesis.
    """

    fixed: tuple[str, ...]
    broken: tuple[str, ...]
    reference_html: str
    baseline_html: str
    mam_html: str


def _one_way(a: _Aligned, b: _Aligned) -> tuple[tuple[str, ...], set[Anchor]]:
    """What ``a`` gets wrong and ``b`` right: the reference words and (prefixed ``+``) the words ``a`` inserts where
    ``b`` inserts fewer, in reference order, and their anchors."""
    pos = [i for i in range(len(a.ref)) if not a.ref_ok[i] and b.ref_ok[i]]
    slots = [k for k in range(len(a.ref) + 1) if len(a.inserted[k]) > len(b.inserted[k])]
    words = sorted([((i, 1), a.ref[i]) for i in pos] + [((k, 0), "+" + a.hyp[j]) for k in slots for j in a.inserted[k]])
    return tuple(w for _, w in words), {("ref", i) for i in pos} | {("slot", k) for k in slots}


def _word_change(base: _Aligned, mam: _Aligned) -> WordChange:
    (fixed, fixed_at), (broken, broken_at) = _one_way(base, mam), _one_way(mam, base)
    ref_anchors = [("ref", i) for i in range(len(base.ref))]
    return WordChange(fixed, broken, *(_mark(words, anchors, fixed_at, broken_at) for words, anchors in
                                       ((base.ref, ref_anchors), (base.hyp, base.anchor), (mam.hyp, mam.anchor))))


def word_changes(reference: str, baseline: str, mam: str) -> WordChange:
    """Table 4 for one utterance: the words MAM fixed and broke relative to the baseline (:class:`WordChange`)."""
    if not reference.strip():
        raise ValueError("the reference is empty")
    return _word_change(*_align_words([reference, reference], [baseline, mam]))


# -- Table 4 ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptChanges:
    """Table 4 for one corpus: the utterances whose transcript changed, most improved first (regressions last).

    ``table`` (index ``id``) has the HTML ``reference`` / ``baseline`` / ``MAM``, the word errors of each, their
    ``improvement`` (baseline − MAM) and the plain ``fixed`` / ``broken`` words; ``counts``: ``improved``,
    ``worsened``, ``same errors`` (changed, as many errors) and ``identical`` (transcript unchanged).
    """

    table: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        c = self.counts
        return (f"{c['improved']} improved, {c['worsened']} worsened, {c['same errors']} changed with as many "
                f"errors, {c['identical']} identical")

    def shown(self, limit: int | None = None) -> pd.DataFrame:
        """All rows, or — when there are more than ``2 · limit`` — the ``limit`` most improved and the ``limit`` most
        worsened (so that regressions are never cut off)."""
        if limit is None or len(self.table) <= 2 * limit:
            return self.table
        return pd.concat([self.table.head(limit), self.table.tail(limit)])

    def styled(self, caption: str, limit: int | None = None):
        """The table for display (HTML kept, the plain word lists dropped), cut as :meth:`shown` cuts it."""
        cols = TABLE4_COLUMNS[:6]
        part = self.shown(limit)
        if part.empty:  # an empty table would show a header and nothing else: say why instead
            why = "no transcript changed: MAM and the unmerged model wrote the same words"
            part = pd.DataFrame([dict.fromkeys(cols, "") | {"reference": why}])
            return part[cols].style.hide(axis="index").set_caption(caption)
        if len(part) < len(self.table):
            caption += f" (the {limit} most improved and the {limit} most worsened of {len(self.table)})"
        return part[cols].style.set_caption(caption)


def _asr_pair(baseline: Row, mam: Row, what: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """The ids, references and both hypothesis lists of two paired ASR rows (ValueError naming ``what`` else)."""
    ids = check_paired(baseline, mam)
    if not is_asr_row(baseline):
        raise ValueError(f"{what} needs speech-recognition rows (references and hypotheses)")
    return ids, list(baseline["references"]), list(baseline["hypotheses"]), list(mam["hypotheses"])


def transcript_changes(baseline: Row, mam: Row) -> TranscriptChanges:
    """Table 4 (Sec. 4.3) from two ASR sweep rows on the same utterances, sorted by improvement in word errors
    (largest first, ties in corpus order); empty, every utterance identical, when MAM's row is the baseline's."""
    ids, refs, hyp_b, hyp_m = _asr_pair(baseline, mam, "Table 4")
    (e_b, _), (e_m, _) = word_errors(refs, hyp_b), word_errors(refs, hyp_m)
    changed = [i for i in range(len(ids)) if hyp_b[i] != hyp_m[i]]
    al_b, al_m = (_align_words([refs[i] for i in changed], [hyp[i] for i in changed]) for hyp in (hyp_b, hyp_m))
    rows = [{"id": ids[i], "reference": wc.reference_html, "baseline": wc.baseline_html, "MAM": wc.mam_html,
             "errors (baseline)": int(e_b[i]), "errors (MAM)": int(e_m[i]), "improvement": int(e_b[i] - e_m[i]),
             "fixed": ", ".join(wc.fixed), "broken": ", ".join(wc.broken)}
            for i, wc in zip(changed, map(_word_change, al_b, al_m))]
    table = pd.DataFrame(rows, columns=["id", *TABLE4_COLUMNS]).set_index("id")
    table = table.sort_values("improvement", ascending=False, kind="mergesort")
    counts = {"improved": int((e_m < e_b).sum()), "worsened": int((e_m > e_b).sum()),
              "same errors": sum(1 for i in changed if e_m[i] == e_b[i]), "identical": len(ids) - len(changed)}
    return TranscriptChanges(table, counts)


# -- Table 6 ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImprovementSplit:
    """Table 6 for one corpus and unit: the edits removed by MAM, by type, and their shares of the total (%).

    Our definition (the paper gives none): an utterance is *improved* when MAM's total edit count in ``unit`` is
    below the baseline's; on each, type t is reduced by ``max(0, baseline_t − MAM_t)``. ``reductions`` sums these over
    the improved utterances, ``shares`` gives each type's percentage of the sum (NaN when nothing improved).
    """

    unit: str
    reductions: dict[str, int]
    shares: dict[str, float]
    n_improved: int
    n_items: int

    @property
    def total(self) -> int:
        return sum(self.reductions.values())


def improvement_split(baseline: Row, mam: Row, unit: str = "character") -> ImprovementSplit:
    """Table 6 (Sec. 4.3) for two ASR sweep rows on the same utterances; see :class:`ImprovementSplit`."""
    _, refs, hyp_b, hyp_m = _asr_pair(baseline, mam, "Table 6")
    c_b, c_m = edit_counts(refs, hyp_b, unit), edit_counts(refs, hyp_m, unit)
    improved = c_m.sum(axis=1) < c_b.sum(axis=1)
    red = np.clip(c_b[improved] - c_m[improved], 0, None).sum(axis=0)
    total = int(red.sum())
    shares = {t: (100.0 * float(r) / total if total else float("nan")) for t, r in zip(EDIT_TYPES, red)}
    return ImprovementSplit(unit, {t: int(r) for t, r in zip(EDIT_TYPES, red)}, shares, int(improved.sum()),
                            len(refs))


def improvement_table(baseline: Row, mam: Row) -> pd.DataFrame:
    """Table 6's row for one corpus in characters and, by the same definition, in words: each type's share (%) of
    the removed edits, the number of removed edits and of improved utterances."""
    splits = {f"{unit}s": improvement_split(baseline, mam, unit) for unit in ("character", "word")}
    return pd.DataFrame.from_dict({unit: {**s.shares, "edits removed": s.total, "improved utterances": s.n_improved}
                                   for unit, s in splits.items()}, orient="index").rename_axis("unit")


def table6_beside(ours: Mapping[str, pd.DataFrame], paper: pd.DataFrame, dataset_for: Mapping[str, str | None],
                  preset: str) -> pd.DataFrame:
    """Our character-level shares per corpus (label → :func:`improvement_table`), rows ``ours (preset: label)``,
    above the paper's row (``paper (dataset)``) of the dataset each corpus stands in for (``dataset_for``; None: no
    counterpart)."""
    rows = {f"ours ({preset}: {label})": table.loc["characters", list(EDIT_TYPES)] for label, table in ours.items()}
    for dataset in dict.fromkeys(d for d in (dataset_for[label] for label in ours) if d is not None):
        match = paper[paper["dataset"] == dataset]
        if not match.empty:
            rows[f"paper ({dataset})"] = match.iloc[0][list(EDIT_TYPES)].astype(float)
    return pd.DataFrame(rows).T.astype(float).set_axis([f"{t} (%)" for t in EDIT_TYPES], axis=1)


# -- per speaker --------------------------------------------------------------------------------------------------


def speaker_wer(baseline: Row, mam: Row, speakers: Mapping[str, str]) -> pd.DataFrame:
    """WER (%) per speaker (accent) before and after merging — its word errors over its reference words — from two
    ASR rows on the same utterances and a map utterance id → speaker."""
    ids, refs, hyp_b, hyp_m = _asr_pair(baseline, mam, "the per-speaker WER")
    if missing := [i for i in ids if i not in speakers]:
        raise ValueError(f"no speaker for {len(missing)} utterance(s), e.g. {missing[:3]}")
    (e_b, words), (e_m, _) = word_errors(refs, hyp_b), word_errors(refs, hyp_m)
    frame = pd.DataFrame({"speaker": [speakers[i] for i in ids], "words": words, "e_b": e_b, "e_m": e_m})
    g = frame.groupby("speaker", sort=True)
    out = pd.DataFrame({"utterances": g.size(), "words": g["words"].sum()})
    out["WER unmerged (%)"] = 100.0 * g["e_b"].sum() / out["words"]
    out["WER merged (%)"] = 100.0 * g["e_m"].sum() / out["words"]
    out["Δ (points)"] = out["WER merged (%)"] - out["WER unmerged (%)"]
    return out
