"""Transcript normalization and word error rate (Table 1–5's WER, Table 6's error types).

WER and alignments come from jiwer; this module fixes one normalization for references and hypotheses alike and
keeps every utterance's strings and error counts for the later error analyses (Tables 4 and 6).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
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


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _spell(match: re.Match[str]) -> str:
    from num2words import num2words

    digits = match.group()
    if "." in digits:
        return f" {num2words(float(digits))} "
    value = int(digits)
    return f" {num2words(value, to='year') if len(digits) == 4 and 1100 <= value < 2000 else num2words(value)} "


def spoken_transcript(text: str, alphabet: Collection[str]) -> str:
    """A transcript as it is spoken, written in a character recognizer's ``alphabet``: the training target of CTC
    fine-tuning (Sec. 4.2), never used for scoring (:func:`normalize_transcript` is).

    Words stay words: where the WER normalization writes ``eighteen ninety-nine`` as ``1899``, this keeps the
    words, and digits in the text are spelled out with num2words (a four-digit number from 1100 to 1999 read as a
    year, ``1899`` → ``eighteen ninety-nine``; thousands commas dropped). Accents are dropped, letters take the
    alphabet's case, and every other character the alphabet lacks (hyphens, punctuation) becomes a word break;
    apostrophes stay when the alphabet has one (HuBERT's does: ``o'clock``).
    """
    upper = sum(c.isupper() for c in alphabet) > sum(c.islower() for c in alphabet)
    t = unicodedata.normalize("NFKD", _THOUSANDS.sub("", text))
    t = _NUMBER.sub(_spell, "".join(c for c in t if not unicodedata.combining(c)))
    t = t.upper() if upper else t.lower()
    return _SPACES.sub(" ", "".join(c if c in alphabet else " " for c in t.replace("\u2019", "'"))).strip()


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
