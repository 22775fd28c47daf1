import jiwer
import pytest

from mamlib.asr.metrics import normalize_transcript, word_error_rate


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
    assert report.reference_words == 7


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="utterance x is empty"):
        word_error_rate(["?!"], ["a"], ["x"])
