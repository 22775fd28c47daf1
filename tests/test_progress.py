"""Console progress of `make book` (through a side file, never the notebooks) and the device override."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from mamlib.presets.schema import load_preset
from mamlib.report.execute import ConsoleProgress, device_preset, looked_up
from mamlib.sweeps.grid import SweepGrid
from mamlib.sweeps.store import LOOKUPS_ENV, PROGRESS_ENV, ResultStore, run_grid


def test_run_grid_reports_what_it_computes_and_what_it_reads(tmp_path, monkeypatch):
    log = tmp_path / "progress.jsonl"
    monkeypatch.setenv(PROGRESS_ENV, str(log))
    monkeypatch.setenv(LOOKUPS_ENV, str(tmp_path / "lookups.jsonl"))
    store = ResultStore(tmp_path / "store")
    configs = [{"i": i} for i in range(5)]
    store.put(configs[1], {"x": 1.0})
    run_grid(configs, lambda c: {"x": float(c["i"])}, store, desc="demo", progress=False)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0] == {"event": "grid", "desc": "demo", "total": 5, "stored": 1, "todo": 4}
    assert [e["event"] for e in events[1:]] == ["done"] * 4  # the progress file holds progress only
    # every stored result the grid read or wrote is named with its content hash (for reusing a chapter)
    used = looked_up(tmp_path / "lookups.jsonl")
    assert set(used) == {str(p.resolve()) for p in (tmp_path / "store").glob("*.json")} and len(used) == 5
    assert all(sha == hashlib.sha256(Path(f).read_bytes()).hexdigest() for f, sha in used.items())
    shown = ConsoleProgress(log, enabled=False)
    shown.finish()
    assert (shown.computed, shown.stored) == (4, 1)


def test_a_progress_line_written_in_two_parts_is_counted_once(tmp_path):
    log = tmp_path / "progress.jsonl"
    done = json.dumps({"event": "done", "desc": "demo", "seconds": 0.1})
    log.write_text(json.dumps({"event": "grid", "desc": "demo", "total": 3, "stored": 1, "todo": 2}) + "\n"
                   + done + "\n" + done[:9])
    shown = ConsoleProgress(log, enabled=False)
    shown.poll()
    assert (shown.computed, shown.stored) == (1, 1)
    with open(log, "a") as f:
        f.write(done[9:] + "\n")
    shown.finish()
    assert (shown.computed, shown.stored) == (2, 1)


def test_grids_describe_themselves():
    assert SweepGrid().describe() == "all layers"
    assert SweepGrid(variants=("source",), lambdas=(0.1, 0.2), layer_sets=((0, 1), (2, 3))).describe() == \
        "2 blocks × 2 λ (source)"
    assert SweepGrid(layer_sets=((0, 2, 5),)).describe() == "1 layer picks"


def test_device_override_changes_only_the_device(tmp_path):
    path = device_preset("smoke", "cuda", tmp_path)
    ours, smoke = load_preset(path), load_preset("smoke")
    assert (ours.name, ours.device) == ("smoke", "cuda")
    assert replace(ours, device="cpu", raw=smoke.raw) == smoke


def test_an_unchanged_chapter_is_reused_and_any_change_runs_it_again(tmp_path):
    from mamlib.report.execute import ChapterCache

    nb, executed, result = tmp_path / "ch.ipynb", tmp_path / "out.ipynb", tmp_path / "result.json"
    nb.write_text('{"cells": []}')
    executed.write_text('{"cells": ["executed"]}')
    result.write_text('{"wer": 1.0}')
    cache = ChapterCache(tmp_path / "kept", library="v1")
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") is None  # nothing kept yet
    cache.keep(nb, "smoke", executed, {str(result): hashlib.sha256(result.read_bytes()).hexdigest()})
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") == 1
    assert (tmp_path / "copy.ipynb").read_text() == executed.read_text()
    assert ChapterCache(tmp_path / "kept", library="v2").reuse(nb, "smoke", tmp_path / "x.ipynb") is None
    assert cache.reuse(nb, "mini", tmp_path / "x.ipynb") is None  # another preset
    result.write_text('{"wer": 2.0}')  # a stored result recomputed
    assert cache.reuse(nb, "smoke", tmp_path / "x.ipynb") is None
    result.write_text('{"wer": 1.0}')
    nb.write_text('{"cells": ["edited"]}')
    assert cache.reuse(nb, "smoke", tmp_path / "x.ipynb") is None


def test_kernels_get_the_malloc_settings_unless_the_user_set_them(tmp_path, monkeypatch):
    import nbformat

    from mamlib.report.execute import KERNEL_ENV, execute

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('preset = "smoke"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import json, os\njson.dump({k: os.environ.get(k) for k in "
                                  f"{sorted(KERNEL_ENV)!r}}}, open('env.json', 'w'))"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, tmp_path / "probe.ipynb")
    monkeypatch.setenv("MAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")
    execute([tmp_path / "probe.ipynb"], "smoke", tmp_path / "out", cwd=tmp_path, fresh=True)
    seen = json.loads((tmp_path / "env.json").read_text())
    assert seen == {"MALLOC_MMAP_THRESHOLD_": KERNEL_ENV["MALLOC_MMAP_THRESHOLD_"], "MALLOC_TRIM_THRESHOLD_": "12345"}
