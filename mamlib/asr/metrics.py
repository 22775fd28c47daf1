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


_AMOUNT = r"\d+(?:\.\d+)?"
_NUMBER = re.compile(_AMOUNT)
_CURRENCY = re.compile(
    rf"(?P<sign>[$£€])\s?(?P<amount>{_AMOUNT})(?:\s+(?P<scale>thousand|million|billion|trillion)\b)?", re.IGNORECASE
)
_PERCENT = re.compile(rf"(?P<amount>{_AMOUNT})\s?%")
_DECADE = re.compile(r"(?<!\d)(?:(?P<year>1[1-9]\d0|20\d0)|['\u2019]?(?P<short>[2-9]0))['\u2019]?s\b", re.IGNORECASE)
_ORDINAL = re.compile(r"(?<![\d.])(?P<number>\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
#: A currency sign's (unit, units) and (subunit, subunits), as spoken.
_MONEY: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "$": (("dollar", "dollars"), ("cent", "cents")),
    "£": (("pound", "pounds"), ("penny", "pence")),
    "€": (("euro", "euros"), ("cent", "cents")),
}


def _num2words(value: int | float, to: str = "cardinal") -> str:
    from num2words import num2words

    return str(num2words(value, to=to))


def _cardinal(digits: str) -> str:
    """``digits`` (an integer, or a decimal ``2.5``) as a cardinal number: ``two point five``."""
    return _num2words(float(digits)) if "." in digits else _num2words(int(digits))


def _plural(word: str) -> str:
    """A decade's name made plural by its last word: ``nineteen thirty`` → ``nineteen thirties``, ``eighteen
    hundred`` → ``eighteen hundreds``."""
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def _spell_number(match: re.Match[str]) -> str:
    """A bare number: a four-digit one from 1100 to 1999 read as a year, any other as a cardinal."""
    digits = match.group()
    if len(digits) == 4 and "." not in digits and 1100 <= int(digits) < 2000:
        return f" {_num2words(int(digits), to='year')} "
    return f" {_cardinal(digits)} "


def _spell_ordinal(match: re.Match[str]) -> str:
    """``21st`` → ``twenty-first``, ``2nd`` → ``second``, ``100th`` → ``one hundredth``."""
    return f" {_num2words(int(match['number']), to='ordinal')} "


def _spell_decade(match: re.Match[str]) -> str:
    """``1930s`` → ``nineteen thirties``, ``1900s`` → ``nineteen hundreds``, ``80s`` / ``'80s`` → ``eighties``."""
    year = match["year"]
    words = _num2words(int(year), to="year") if year else _num2words(int(match["short"]))
    return f" {_plural(words)} "


def _spell_percent(match: re.Match[str]) -> str:
    """``5%`` → ``five percent``, ``2.5%`` → ``two point five percent``."""
    return f" {_cardinal(match['amount'])} percent "


def _money(sign: str, amount: str, scale: str | None) -> str:
    """An amount of the currency ``sign`` as spoken: ``$1`` → ``one dollar``, ``$5.50`` → ``five dollars fifty
    cents`` (num2words's English USD form without its comma), ``$0.25`` → ``twenty-five cents``, ``£20`` → ``twenty
    pounds``; with a ``scale`` word, ``$2 million`` → ``two million dollars``, ``$1.5 million`` → ``one point five
    million dollars``. More than two decimals are read as a decimal number: ``$0.125`` → ``zero point one two five
    dollars``."""
    (unit, units), (subunit, subunits) = _MONEY[sign]
    whole, _, fraction = amount.partition(".")
    if scale:
        return f"{_cardinal(amount)} {scale.lower()} {units}"
    if len(fraction) > 2:
        return f"{_cardinal(amount)} {units}"
    main, cents = int(whole), int(fraction.ljust(2, "0"))
    parts = []
    if main or not cents:
        parts.append(f"{_num2words(main)} {unit if main == 1 else units}")
    if cents:
        parts.append(f"{_num2words(cents)} {subunit if cents == 1 else subunits}")
    return " ".join(parts)


def _spell_money(match: re.Match[str]) -> str:
    """``$5`` → ``five dollars`` and the like (:func:`_money`)."""
    return f" {_money(match['sign'], match['amount'], match['scale'])} "


def _say_numbers(text: str) -> str:
    """``text`` (thousands commas already dropped) with every number written as words, as it is read aloud:
    amounts of money, then percentages, decades, ordinals, and last the bare numbers."""
    for pattern, spell in ((_CURRENCY, _spell_money), (_PERCENT, _spell_percent), (_DECADE, _spell_decade),
                           (_ORDINAL, _spell_ordinal), (_NUMBER, _spell_number)):
        text = pattern.sub(spell, text)
    return text


def spoken_transcript(text: str, alphabet: Collection[str]) -> str:
    """A transcript as it is spoken, written in a character recognizer's ``alphabet``: the training target of CTC
    fine-tuning (Sec. 4.2), never used for scoring (:func:`normalize_transcript` is).

    Words stay words: where the WER normalization writes ``eighteen ninety-nine`` as ``1899``, this keeps the
    words, and digits in the text are spelled out with num2words as they are read (thousands commas dropped):
    money with its unit (``$5`` → ``five dollars``, ``$1`` → ``one dollar``, ``$5.50`` → ``five dollars fifty
    cents``, ``£20`` → ``twenty pounds``, ``€3`` → ``three euros``, ``$2 million`` → ``two million dollars``),
    percentages (``5%`` → ``five percent``), decades (``1930s`` → ``nineteen thirties``, ``1900s`` → ``nineteen
    hundreds``, ``'80s`` → ``eighties``), ordinals (``21st`` → ``twenty-first``, ``2nd`` → ``second``), a
    four-digit number from 1100 to 1999 as a year (``1899`` → ``eighteen ninety-nine``), and any other number as
    a cardinal (``2.5`` → ``two point five``). Accents are dropped, letters take the alphabet's case, and every
    other character the alphabet lacks (hyphens, punctuation) becomes a word break; apostrophes stay when the
    alphabet has one (HuBERT's does: ``o'clock``).
    """
    upper = sum(c.isupper() for c in alphabet) > sum(c.islower() for c in alphabet)
    t = unicodedata.normalize("NFKD", _THOUSANDS.sub("", text))
    t = _say_numbers("".join(c for c in t if not unicodedata.combining(c)))
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
