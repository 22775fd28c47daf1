"""Transcript normalization and word error rate (Table 1–5's WER, Table 6's error types).

WER and alignments come from jiwer; this module fixes one normalization for references and hypotheses alike and
keeps every utterance's strings and error counts for the later error analyses (Tables 4 and 6)."""

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


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _words(text: str, keep: re.Pattern[str]) -> str:
    return _SPACES.sub(" ", _LONE_PERIOD.sub(" ", keep.sub(" ", text))).strip()


@lru_cache(maxsize=1)
def _numbers() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishNumberNormalizer

    return EnglishNumberNormalizer()


def normalize_transcript(text: str) -> str:
    """The one text normalization of every WER in the book: lower case, no accents, apostrophes or punctuation
    (Table 4's ``oswalds``, ``four legged``), numbers as digits via the English number normalizer of transformers'
    Whisper (``100,000`` = ``one hundred thousand``; ``$1,500`` = ``fifteen hundred dollars`` = ``1500``; ``3.5`` =
    ``three point five``; ``nine one one`` → ``911``), every other non-alphanumeric character a space."""
    t = _THOUSANDS.sub("", _strip_accents(text).lower().replace("'", "").replace("\u2019", ""))
    return _words(_numbers()(_words(t, _NOT_KEPT_FOR_NUMBERS)), _NON_WORD)


_AMOUNT = r"\d+(?:\.\d+)?"
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


def _money(match: re.Match[str]) -> str:
    """``$1`` → ``one dollar``, ``$5.50`` → ``five dollars fifty cents``, ``$0.25`` → ``twenty-five cents``, ``$2
    million`` → ``two million dollars``; more than two decimals read as a decimal number (``$0.125``)."""
    amount, scale = match["amount"], match["scale"]
    (unit, units), (subunit, subunits) = _MONEY[match["sign"]]
    whole, _, fraction = amount.partition(".")
    if scale or len(fraction) > 2:
        return " ".join((_cardinal(amount), *([scale.lower()] if scale else []), units))
    main, cents = int(whole), int(fraction.ljust(2, "0"))
    parts = [f"{_num2words(main)} {unit if main == 1 else units}"] if main or not cents else []
    return " ".join(parts + ([f"{_num2words(cents)} {subunit if cents == 1 else subunits}"] if cents else []))


def _decade(match: re.Match[str]) -> str:
    """``1930s`` → ``nineteen thirties``, ``1900s`` → ``nineteen hundreds``, ``'80s`` → ``eighties``."""
    words = _num2words(int(match["year"]), to="year") if match["year"] else _num2words(int(match["short"]))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _bare_number(match: re.Match[str]) -> str:
    """A four-digit number from 1100 to 1999 read as a year, any other as a cardinal."""
    digits = match.group()
    year = len(digits) == 4 and "." not in digits and 1100 <= int(digits) < 2000
    return _num2words(int(digits), to="year") if year else _cardinal(digits)


#: How numbers are read aloud, in the order they are spelled out: money, percentages, decades, ordinals, the rest.
_SPOKEN: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(rf"(?P<sign>[$£€])\s?(?P<amount>{_AMOUNT})(?:\s+(?P<scale>thousand|million|billion|trillion)\b)?",
                re.IGNORECASE), _money),
    (re.compile(rf"(?P<amount>{_AMOUNT})\s?%"), lambda m: f"{_cardinal(m['amount'])} percent"),
    (re.compile(r"(?<!\d)(?:(?P<year>1[1-9]\d0|20\d0)|['\u2019]?(?P<short>[2-9]0))['\u2019]?s\b", re.IGNORECASE),
     _decade),
    (re.compile(r"(?<![\d.])(?P<number>\d+)(?:st|nd|rd|th)\b", re.IGNORECASE),
     lambda m: _num2words(int(m["number"]), to="ordinal")),
    (re.compile(_AMOUNT), _bare_number),
)


def spoken_transcript(text: str, alphabet: Collection[str]) -> str:
    """A transcript as it is spoken, written in a character recognizer's ``alphabet``: the training target of CTC
    fine-tuning (Sec. 4.2), never used for scoring (:func:`normalize_transcript` is). Digits are spelled out as they
    are read (:data:`_SPOKEN`), accents dropped, letters put in the alphabet's case; any other character it lacks
    becomes a word break (apostrophes stay when it has one: HuBERT's ``o'clock``)."""
    upper = sum(c.isupper() for c in alphabet) > sum(c.islower() for c in alphabet)
    t = _strip_accents(_THOUSANDS.sub("", text))
    for pattern, spell in _SPOKEN:
        t = pattern.sub(lambda m, spell=spell: f" {spell(m)} ", t)
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


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str], ids: Sequence[str] | None = None
                    ) -> WERReport:
    """Corpus-level WER of ``hypotheses`` against ``references`` after :func:`normalize_transcript`, via jiwer;
    ValueError if the lists differ in length or a reference normalizes to nothing."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    ids = list(ids) if ids is not None else [str(i) for i in range(len(references))]
    refs, hyps = [normalize_transcript(r) for r in references], [normalize_transcript(h) for h in hypotheses]
    if (empty := next((i for i, r in zip(ids, refs) if not r), None)) is not None:
        raise ValueError(f"reference of utterance {empty} is empty after normalization")
    counts = ("substitutions", "deletions", "insertions", "hits")
    rows = [{"id": i, "reference": r, "hypothesis": h, "wer": (one := jiwer.process_words(r, h)).wer,
             **{k: getattr(one, k) for k in counts}} for i, r, h in zip(ids, refs, hyps)]
    s, d, i, h = (sum(row[k] for row in rows) for k in counts)  # the corpus counts are the utterances' summed
    return WERReport((s + d + i) / (h + s + d), s, d, i, h, utterances=pd.DataFrame(rows))  # jiwer's corpus WER
