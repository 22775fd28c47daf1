import re
from decimal import Decimal

import jiwer
import pytest
from num2words import num2words

from mamlib.asr.metrics import normalize_transcript, spoken_transcript, word_error_rate

#: The letters of facebook/hubert-large-ls960-ft's CTC vocabulary (its order), as CTCTask reads them: upper case
#: with an apostrophe; "|", the word delimiter, is left out and stands for the space.
HUBERT_ALPHABET = frozenset("ETAONIHSRDLUMWCFGYPBVK'XJQZ")


def test_normalization():
    assert normalize_transcript("Oswald's lunch-room, encounter!") == "oswalds lunch room encounter"
    assert normalize_transcript("  Café  NAÏVE\tText. ") == "cafe naive text"
    assert normalize_transcript("FRONT CENTER") == "front center"


def test_numbers_are_written_one_way():
    assert normalize_transcript("delayed by almost forty minutes") == "delayed by almost 40 minutes"
    assert normalize_transcript("delayed by almost 40 minutes.") == "delayed by almost 40 minutes"
    assert normalize_transcript("Thirty to forty-five seconds") == "30 to 45 seconds"
    assert normalize_transcript("I have two dollars") == "i have 2"
    # Spoken digit strings become one number, as in Whisper's own normalizer: fewer reference words.
    assert normalize_transcript("call nine one one") == "call 911"


def test_wer_equals_jiwer_on_normalized_strings():
    refs = ["The cat sat on the mat.", "Hello, world!", "a b c d"]
    hyps = ["the cat sat on mat", "hello word", "a x c d e"]
    report = word_error_rate(refs, hyps, ["u1", "u2", "u3"])
    expected = jiwer.wer([normalize_transcript(r) for r in refs], [normalize_transcript(h) for h in hyps])
    assert report.wer == pytest.approx(expected)


def test_error_counts_worked_example():
    # ref: "a b c d" hyp: "a x c d e" -> 1 substitution (b→x), 1 insertion (e), 0 deletions, 3 hits
    # ref: "red green blue" hyp: "red blue" -> 1 deletion, 2 hits
    report = word_error_rate(["a b c d", "red green blue"], ["a x c d e", "red blue"])
    assert (report.substitutions, report.insertions, report.deletions, report.hits) == (1, 1, 1, 5)
    assert report.wer == pytest.approx(3 / 7)
    assert report.utterances.loc[1, "wer"] == pytest.approx(1 / 3)
    assert report.substitutions + report.deletions + report.hits == 7  # the reference words


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="utterance x is empty"):
        word_error_rate(["?!"], ["a"], ["x"])


def _as_hubert_writes(words: str) -> str:
    """num2words's own wording in HuBERT's alphabet: upper case, hyphens and commas as word breaks."""
    return " ".join(re.sub(r"[^A-Z']+", " ", words.upper()).split())


def _ordinal_suffix(n: int) -> str:
    """English's written ordinal suffix: 1st, 2nd, 3rd, 4th, 11th–13th, 21st, 111th."""
    return "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def test_spoken_transcript_reads_a_sentence_as_it_is_spoken():
    assert spoken_transcript("On the 21st of May 1930s prices rose 5% to $5.", HUBERT_ALPHABET) == (
        "ON THE TWENTY FIRST OF MAY NINETEEN THIRTIES PRICES ROSE FIVE PERCENT TO FIVE DOLLARS")
    assert spoken_transcript("In 1899, 2,500 men paid £20 at ten o’clock.", HUBERT_ALPHABET) == (
        "IN EIGHTEEN NINETY NINE TWO THOUSAND FIVE HUNDRED MEN PAID TWENTY POUNDS AT TEN O'CLOCK")
    lower = frozenset("abcdefghijklmnopqrstuvwxyz")  # no apostrophe: it becomes a word break
    assert spoken_transcript("The '80s' 2nd café, Oswald's", lower) == "the eighties second cafe oswald s"


@pytest.mark.parametrize(("text", "spoken"), [
    ("1st 2nd 3rd 4th", "FIRST SECOND THIRD FOURTH"),
    ("the 21st-century 100th", "THE TWENTY FIRST CENTURY ONE HUNDREDTH"),
    ("11th 12TH 13th 22nd 101st", "ELEVENTH TWELFTH THIRTEENTH TWENTY SECOND ONE HUNDRED AND FIRST"),
    ("the 1930s, the 1900s", "THE NINETEEN THIRTIES THE NINETEEN HUNDREDS"),
    ("80s '80s ’20s 1860's", "EIGHTIES EIGHTIES TWENTIES EIGHTEEN SIXTIES"),
    ("$5 $1 $0.25 $1.01", "FIVE DOLLARS ONE DOLLAR TWENTY FIVE CENTS ONE DOLLAR ONE CENT"),
    ("$5.50, $5.5 and $5.00", "FIVE DOLLARS FIFTY CENTS FIVE DOLLARS FIFTY CENTS AND FIVE DOLLARS"),
    ("£20 £1 £3.01 £2.50", "TWENTY POUNDS ONE POUND THREE POUNDS ONE PENNY TWO POUNDS FIFTY PENCE"),
    ("€3 €1", "THREE EUROS ONE EURO"),
    ("$1,000 and $2 million, $1.5 billion",
     "ONE THOUSAND DOLLARS AND TWO MILLION DOLLARS ONE POINT FIVE BILLION DOLLARS"),
    ("5% 2.5% 100 %", "FIVE PERCENT TWO POINT FIVE PERCENT ONE HUNDRED PERCENT"),
    ("in 1492 and 2024, 2.5 of 7", "IN FOURTEEN NINETY TWO AND TWO THOUSAND AND TWENTY FOUR TWO POINT FIVE OF SEVEN"),
])
def test_spoken_transcript_numbers_hand_written(text, spoken):
    assert spoken_transcript(text, HUBERT_ALPHABET) == spoken


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9, 11, 12, 13, 20, 21, 22, 23, 40, 99, 100, 101, 111, 112, 1000, 1930])
def test_spoken_ordinals_are_num2words_ordinals(n):
    written = f"{n:,}{_ordinal_suffix(n)}"
    assert spoken_transcript(written, HUBERT_ALPHABET) == _as_hubert_writes(num2words(n, to="ordinal")), written


@pytest.mark.parametrize("amount", ["5.50", "1.01", "3.25", "12.99", "2.05", "1,234.56", "21.10"])
def test_spoken_dollars_and_cents_are_num2words_currency(amount):
    expected = num2words(Decimal(amount.replace(",", "")), to="currency", currency="USD")
    assert spoken_transcript(f"${amount}", HUBERT_ALPHABET) == _as_hubert_writes(expected)
