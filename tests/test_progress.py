"""Console progress of `make book` (through a side file, never the notebooks) and the device override."""

from __future__ import annotations

import json
from dataclasses import replace

from mamlib.presets.schema import load_preset
from mamlib.report.execute import ConsoleProgress, device_preset
from mamlib.sweeps.grid import SweepGrid
from mamlib.sweeps.store import PROGRESS_ENV, ResultStore, run_grid


def test_run_grid_reports_what_it_computes_and_what_it_reads(tmp_path, monkeypatch):
    log = tmp_path / "progress.jsonl"
    monkeypatch.setenv(PROGRESS_ENV, str(log))
    store = ResultStore(tmp_path / "store")
    configs = [{"i": i} for i in range(5)]
    store.put(configs[1], {"x": 1.0})
    run_grid(configs, lambda c: {"x": float(c["i"])}, store, desc="demo", progress=False)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0] == {"event": "grid", "desc": "demo", "total": 5, "stored": 1, "todo": 4}
    assert [e["event"] for e in events[1:]] == ["done"] * 4
    shown = ConsoleProgress(log, enabled=False)
    shown.finish()
    assert (shown.computed, shown.stored) == (4, 1)


def test_grids_describe_themselves():
    assert SweepGrid().describe() == "all layers"
    assert SweepGrid(kinds=("source",), lambdas=(0.1, 0.2), layer_sets=((0, 1), (2, 3))).describe() == \
        "2 blocks × 2 λ (source)"
    assert SweepGrid(layer_sets=((0, 2, 5),)).describe() == "1 layer picks"


def test_device_override_changes_only_the_device(tmp_path):
    path = device_preset("smoke", "cuda", tmp_path)
    ours, smoke = load_preset(path), load_preset("smoke")
    assert (ours.name, ours.device) == ("smoke", "cuda")
    assert replace(ours, device="cpu", raw=smoke.raw) == smoke
