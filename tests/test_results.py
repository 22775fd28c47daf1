import json

import pytest

from mamlib.sweeps.store import ResultStore, config_key, run_grid


def test_key_is_canonical():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})


def test_a_record_is_found_under_its_key_after_the_json_round_trip(tmp_path):
    """Integer keys are stored as strings (and sort differently): the key is the stored config's, so the record
    written for a config is the one ``records()`` lists and ``get`` finds."""
    store, config = ResultStore(tmp_path), {"layers": {2: 0.1, 10: 0.2}}
    store.put(config, {"wer": 1.0})
    assert [r["config"] for r in store.records()] == [{"layers": {"2": 0.1, "10": 0.2}}]
    assert store.get(config) == {"wer": 1.0}


def test_resume_after_interruption(tmp_path):
    store = ResultStore(tmp_path)
    configs = [{"lambda": x / 10} for x in range(5)]
    calls = []

    def evaluate(cfg):
        calls.append(cfg["lambda"])
        if cfg["lambda"] == 0.3 and len(calls) == 4:
            raise KeyboardInterrupt  # simulated interruption in the middle of the sweep
        return {"wer": 100 * cfg["lambda"]}

    with pytest.raises(KeyboardInterrupt):
        run_grid(configs, evaluate, store, progress=False)
    assert len(store) == 3  # 0.0, 0.1, 0.2 finished and stored
    rows = run_grid(configs, evaluate, store, progress=False)
    assert calls == [0.0, 0.1, 0.2, 0.3, 0.3, 0.4]  # nothing finished was recomputed
    assert [r["wer"] for r in rows] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert len(store) == 5  # no duplicates
    assert not list(tmp_path.glob(".*tmp"))


def test_corrupt_file_is_recomputed(tmp_path):
    store = ResultStore(tmp_path)
    store.put({"x": 1}, {"wer": 1.0})
    (tmp_path / f"{config_key({'x': 1})}.json").write_text("{truncated")
    assert store.get({"x": 1}) is None
    rows = run_grid([{"x": 1}], lambda c: {"wer": 2.0}, store, progress=False)
    assert rows[0]["wer"] == 2.0
    assert json.loads((tmp_path / f"{config_key({'x': 1})}.json").read_text())["result"] == {"wer": 2.0}


def test_nan_is_rejected(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(ValueError, match="non-finite"):
        run_grid([{"x": 1}], lambda c: {"wer": float("nan")}, store, progress=False)
    assert len(store) == 0
