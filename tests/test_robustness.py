"""Bad input found while trying the library: corrupt results records, λ given as any real scalar, numbers in
transcripts written with thousands separators and currency."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mamlib.asr.metrics import normalize_transcript, word_error_rate
from mamlib.merge.interpolation import as_lambda, interpolate, layer_lambdas
from mamlib.merge.merger import AttentionMerger
from mamlib.sweeps.grid import SweepGrid
from mamlib.sweeps.store import ResultStore, run_grid

CONFIG = {"experiment": "x", "lambda": 0.1}


@pytest.mark.parametrize("content", [
    b"\x00\xff\xfe garbage \x80",                      # binary, not UTF-8
    b"{\"config\": ",                                  # truncated JSON
    b"[1, 2, 3]",                                      # JSON, not an object
    b"\"just a string\"",
    json.dumps({"config": CONFIG}).encode(),           # no result
    json.dumps({"config": CONFIG, "result": [1]}).encode(),  # result not an object
    json.dumps({"config": {"other": 1}, "result": {"wer": 1.0}}).encode(),  # another configuration's record
])
def test_any_ill_formed_record_is_recomputed(tmp_path, content):
    store = ResultStore(tmp_path)
    store._path(CONFIG).write_bytes(content)
    assert store.get(CONFIG) is None and CONFIG not in store
    calls = []
    rows = run_grid([CONFIG], lambda c: calls.append(c) or {"wer": 12.5}, store, progress=False)
    assert calls == [CONFIG] and rows == [{**CONFIG, "wer": 12.5}]
    assert store.get(CONFIG) == {"wer": 12.5}  # the bad file was replaced
    run_grid([CONFIG], lambda c: pytest.fail("recomputed a stored result"), store, progress=False)


@pytest.mark.parametrize("lam", [0.25, 0, 1, np.float32(0.25), np.float64(0.25), np.array(0.25), torch.tensor(0.25)])
def test_lambda_accepts_any_real_scalar(lam, hubert, bert):
    assert as_lambda(lam) == pytest.approx(float(np.asarray(lam, dtype=np.float64).reshape(())))
    s, t = torch.ones(2, 2), torch.zeros(2, 2)
    torch.testing.assert_close(interpolate(s, t, lam), torch.full((2, 2), as_lambda(lam)))
    assert layer_lambdas(3, lam, [1]) == [0.0, as_lambda(lam), 0.0]
    merger = AttentionMerger(hubert, bert)
    assert merger.apply(lam) == [as_lambda(lam)] * merger.num_layers
    merger.restore()
    assert SweepGrid(lambdas=(lam,)).lambdas == (as_lambda(lam),)


@pytest.mark.parametrize(("lam", "message"), [
    (True, "real number"), ("0.1", "real number"), (None, "real number"), (float("nan"), r"\[0, 1\]"),
    (1.5, r"\[0, 1\]"), (-0.1, r"\[0, 1\]"), (np.array([0.1, 0.2]), "real number"), (torch.ones(2), "scalar"),
    (1 + 2j, "real number"),
])
def test_lambda_rejects_the_rest_clearly(lam, message, hubert, bert):
    with pytest.raises(ValueError, match=message):
        as_lambda(lam)
    with pytest.raises(ValueError):
        interpolate(torch.ones(2), torch.zeros(2), lam)
    with pytest.raises(ValueError):
        layer_lambdas(2, lam)
    merger = AttentionMerger(hubert, bert)
    with pytest.raises(ValueError):
        merger.apply(lam)
    with pytest.raises(ValueError):
        SweepGrid(lambdas=(lam,))


@pytest.mark.parametrize(("a", "b"), [
    ("100,000", "one hundred thousand"),
    ("$1,500", "fifteen hundred dollars"),
    ("it cost $1,500 in 1,999", "it cost fifteen hundred dollars in nineteen ninety nine"),
    ("3.5 percent", "three point five percent"),
    ("1,000,000 people", "one million people"),
])
def test_numbers_agree_however_they_are_written(a, b):
    assert normalize_transcript(a) == normalize_transcript(b)
    assert word_error_rate([a], [b]).wer == 0.0


def test_number_normalization_worked_values():
    assert normalize_transcript("$1,500") == "1500"
    assert normalize_transcript("100,000 Oswald's lunch-room.") == "100000 oswalds lunch room"
    assert normalize_transcript("12,34") == "12 34"  # not a thousands separator: two numbers
    assert normalize_transcript("It ends here.") == "it ends here"
