"""Transcript normalization and word error rate (Table 1–5's WER, Table 6's error types).

WER and alignments come from jiwer; this module fixes one normalization for references and hypotheses alike and
keeps every utterance's strings and error counts for the later error analyses (Tables 4 and 6).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jiwer
import pandas as pd

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NOT_KEPT_FOR_NUMBERS = re.compile(r"[^a-z0-9 $£€%.]+")
_NON_WORD = re.compile(r"[^a-z0-9 .]+")
_LONE_PERIOD = re.compile(r"(?<!\d)\.|\.(?!\d)")
_SPACES = re.compile(r"\s+")


def _ascii_lower(text: str) -> str:
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    return t.replace("'", "").replace("\u2019", "")


def _words(text: str, keep: re.Pattern[str]) -> str:
    t = _LONE_PERIOD.sub(" ", keep.sub(" ", text))
    return _SPACES.sub(" ", t).strip()


@lru_cache(maxsize=1)
def _numbers() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishNumberNormalizer

    return EnglishNumberNormalizer()


def normalize_transcript(text: str) -> str:
    """The one text normalization used for every WER in the book.

    The paper's transcripts (Table 4) are lower case without punctuation (``oswalds``, ``four legged``). So:
    Unicode compatibility-decompose and drop accents, lower-case, delete apostrophes (``oswald's`` → ``oswalds``).
    Numbers are then written one way, as digits, with the English number normalizer that ships with transformers'
    Whisper, read as Whisper's own English normalizer reads them: commas between digit groups are thousands
    separators (``100,000`` = ``one hundred thousand`` = ``100000``), currency and percent signs stay attached for
    the number normalizer (``$1,500`` = ``fifteen hundred dollars`` = ``1500``), a period between digits is a
    decimal point (``3.5`` = ``three point five``). Everything else that is not a letter or digit (hyphens,
    punctuation, the symbols the number normalizer adds) becomes a space, and whitespace is collapsed. As in
    Whisper's evaluations, a spoken digit string becomes one token (``nine one one`` → ``911``).
    """
    t = _THOUSANDS.sub("", _ascii_lower(text))
    return _words(_numbers()(_words(t, _NOT_KEPT_FOR_NUMBERS)), _NON_WORD)


@dataclass(frozen=True)
class WERReport:
    """Corpus WER plus per-utterance records (normalized reference, hypothesis, error counts)."""

    wer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    utterances: pd.DataFrame

    @property
    def reference_words(self) -> int:
        return self.substitutions + self.deletions + self.hits


def word_error_rate(
    references: Sequence[str], hypotheses: Sequence[str], ids: Sequence[str] | None = None
) -> WERReport:
    """Corpus-level WER of ``hypotheses`` against ``references`` after :func:`normalize_transcript`, via jiwer.

    Raises ValueError if the lists differ in length or a reference normalizes to nothing.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    ids = list(ids) if ids is not None else [str(i) for i in range(len(references))]
    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    for i, r in zip(ids, refs):
        if not r:
            raise ValueError(f"reference of utterance {i} is empty after normalization")
    out = jiwer.process_words(refs, hyps)
    rows = []
    for i, r, h in zip(ids, refs, hyps):
        one = jiwer.process_words(r, h)
        rows.append(
            {"id": i, "reference": r, "hypothesis": h, "wer": one.wer, "substitutions": one.substitutions,
             "deletions": one.deletions, "insertions": one.insertions, "hits": one.hits}
        )
    return WERReport(
        wer=float(out.wer), substitutions=out.substitutions, deletions=out.deletions, insertions=out.insertions,
        hits=out.hits, utterances=pd.DataFrame(rows),
    )
