"""The chapter cache of `make book`: a page never outlives its evidence.

A page that found a result absent runs again once that result is stored; a page whose preset takes a path from the
environment runs again when that path changes, whatever the variable is called.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mamlib.presets.schema import load_preset
from mamlib.report.execute import ChapterCache, environment_paths, looked_up
from mamlib.report.front import ResultsAbsent, StoredResults
from mamlib.sweeps.store import LOOKUPS_ENV, ResultStore

A, B = {"experiment": "demo", "split": "test", "i": 0}, {"experiment": "demo", "split": "test", "i": 1}


def _chapter(tmp_path: Path) -> tuple[Path, Path]:
    """A notebook and its executed copy (their contents do not matter to the cache beyond their hashes)."""
    nb, executed = tmp_path / "front.ipynb", tmp_path / "front.out.ipynb"
    nb.write_text('{"cells": []}')
    executed.write_text('{"cells": ["B absent"]}')
    return nb, executed


def _read_only_page(store_root: Path, lookups: Path, monkeypatch) -> list[str]:
    """A page that reads A and B from a store that only reads (like the front page): what it found absent."""
    monkeypatch.setenv(LOOKUPS_ENV, str(lookups))
    store, absent = StoredResults(store_root), []
    for name, config in (("A", A), ("B", B)):
        try:
            store.get(config)
        except ResultsAbsent:
            absent.append(name)
    monkeypatch.delenv(LOOKUPS_ENV)
    return absent


def test_a_page_that_found_a_result_absent_runs_again_once_it_is_stored(tmp_path, monkeypatch):
    ResultStore(tmp_path / "store").put(A, {"wer": 1.0})
    nb, executed = _chapter(tmp_path)
    lookups = tmp_path / "front.lookups"
    assert _read_only_page(tmp_path / "store", lookups, monkeypatch) == ["B"]
    manifest = looked_up(lookups)
    assert len(manifest) == 2 and list(manifest.values()).count(None) == 1  # A with its hash, B absent
    cache = ChapterCache(tmp_path / "kept", library="v1")
    cache.keep(nb, "smoke", executed, manifest)
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") == 2  # A unchanged, B still absent: the page holds
    assert (tmp_path / "copy.ipynb").read_text() == executed.read_text()
    ResultStore(tmp_path / "store").put(B, {"wer": 2.0})  # another chapter computes B
    assert cache.reuse(nb, "smoke", tmp_path / "again.ipynb") is None
    assert not (tmp_path / "again.ipynb").exists()


def test_an_ill_formed_record_found_absent_and_later_replaced_runs_the_page_again(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "store")
    store.put(A, {"wer": 1.0})
    garbage = store._path(B)
    garbage.write_bytes(b"\x00 half a record")
    nb, executed = _chapter(tmp_path)
    assert _read_only_page(tmp_path / "store", tmp_path / "p", monkeypatch) == ["B"]
    cache = ChapterCache(tmp_path / "kept", library="v1")
    cache.keep(nb, "smoke", executed, looked_up(tmp_path / "p"))
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") == 2  # the same garbage: B still absent
    store.put(B, {"wer": 2.0})
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") is None


def test_a_page_with_nothing_absent_is_reused_and_a_computed_miss_is_not_absent(tmp_path, monkeypatch):
    """A chapter that misses B and then computes it (the usual sweep) records B's hash, not its absence."""
    lookups = tmp_path / "ch.lookups"
    monkeypatch.setenv(LOOKUPS_ENV, str(lookups))
    store = ResultStore(tmp_path / "store")
    store.put(A, {"wer": 1.0})
    assert store.get(A) is not None and store.get(B) is None and store.get(B) is None
    store.put(B, {"wer": 2.0})
    monkeypatch.delenv(LOOKUPS_ENV)
    manifest = looked_up(lookups)
    assert set(manifest) == {str(p.resolve()) for p in (tmp_path / "store").glob("*.json")}
    assert None not in manifest.values()
    nb, executed = _chapter(tmp_path)
    cache = ChapterCache(tmp_path / "kept", library="v1")
    cache.keep(nb, "smoke", executed, manifest)
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") == 2
    store._path(B).unlink()  # a result it read is gone
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") is None


def _preset_with_path_env(tmp_path: Path, variable: str) -> str:
    """The smoke preset with its first corpus an LJ Speech folder named by ``variable`` (written beside; a corpus
    read from a folder: a synthesized one takes no path)."""
    raw = load_preset("smoke").raw
    label = next(iter(raw["asr"]["corpora"]))
    path = tmp_path / "env-preset.yml"
    path.write_text(f"extends: smoke\nasr:\n  corpora:\n    {label}: {{dataset: ljspeech, path_env: {variable}}}\n")
    return str(path)


def test_a_path_from_any_environment_variable_is_part_of_the_chapters_inputs(tmp_path, monkeypatch):
    preset = _preset_with_path_env(tmp_path, "SOME_CORPUS_DIR")
    assert environment_paths(load_preset(preset).raw)  # the preset does read the variable
    nb, executed = _chapter(tmp_path)
    cache = ChapterCache(tmp_path / "kept", library="v1")
    monkeypatch.setenv("SOME_CORPUS_DIR", str(tmp_path / "lj-a"))
    before = cache.inputs(nb, preset)
    cache.keep(nb, preset, executed, {})
    assert cache.inputs(nb, preset) == before
    assert cache.reuse(nb, preset, tmp_path / "copy.ipynb") == 0  # the same value: reused
    monkeypatch.setenv("SOME_CORPUS_DIR", str(tmp_path / "lj-b"))
    assert cache.inputs(nb, preset) != before
    assert cache.reuse(nb, preset, tmp_path / "x.ipynb") is None  # another corpus folder: runs again
    monkeypatch.delenv("SOME_CORPUS_DIR")
    assert cache.inputs(nb, preset) != before
    monkeypatch.setenv("SOME_CORPUS_DIR", str(tmp_path / "lj-a"))
    assert cache.reuse(nb, preset, tmp_path / "x.ipynb") == 0


@pytest.mark.parametrize("raw, expected", [
    ({"asr": {"corpora": {"lj": {"dataset": "ljspeech", "path_env": "X_LJ"}}}}, {"preset.asr.corpora.lj": "/lj"}),
    ({"aec": {"target": {"options": {"path_env": "X_CKPT"}}}}, {"preset.aec.target.options": "/ckpt"}),
    ({"aec": {"data": {"path": "/given", "path_env": "X_LJ"}}}, {"preset.aec.data": "/given"}),  # path wins
    ({"asr": {"corpora": {"vctk": {"path_env": "X_UNSET"}}}}, {"preset.asr.corpora.vctk": None}),
    ({"asr": {"corpora": {"synth": {"dataset": "synthetic"}}}}, {}),
])
def test_every_path_env_of_a_preset_is_resolved(raw, expected, monkeypatch):
    monkeypatch.setenv("X_LJ", "/lj")
    monkeypatch.setenv("X_CKPT", "/ckpt")
    monkeypatch.delenv("X_UNSET", raising=False)
    assert environment_paths(raw) == expected


def test_make_books_executor_reruns_a_page_whose_absent_result_was_stored(tmp_path, monkeypatch, capsys):
    """End to end: a notebook reads A and B from a store that only reads; built while B is missing, built again
    unchanged (reused), then built once B is stored (executed again, and now it has B)."""
    import nbformat

    from mamlib.report import execute as executor

    # the library's own hash is not under test (and would change with any edit to mamlib while this runs)
    monkeypatch.setattr(executor, "library_digest", lambda: "this library")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('preset = "smoke"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import json, os\nfrom mamlib.report.front import ResultsAbsent, StoredResults\n"
            "store, found = StoredResults(os.environ['DEMO_STORE']), {}\n"
            f"for name, config in (('A', {A!r}), ('B', {B!r})):\n"
            "    try:\n        found[name] = store.get(config)['wer']\n"
            "    except ResultsAbsent:\n        found[name] = 'absent'\n"
            "json.dump(found, open('found.json', 'w'))"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, tmp_path / "page.ipynb")
    monkeypatch.setenv("MAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DEMO_STORE", str(tmp_path / "store"))
    ResultStore(tmp_path / "store").put(A, {"wer": 1.0})

    def build() -> tuple[bool, dict]:
        (tmp_path / "found.json").unlink(missing_ok=True)
        executor.execute([tmp_path / "page.ipynb"], "smoke", tmp_path / "out", cwd=tmp_path)
        found = tmp_path / "found.json"
        return "page reused" in capsys.readouterr().out, json.loads(found.read_text()) if found.is_file() else {}

    assert build() == (False, {"A": 1.0, "B": "absent"})
    assert build() == (True, {})  # nothing changed: the kept page is copied, not run
    ResultStore(tmp_path / "store").put(B, {"wer": 2.0})
    assert build() == (False, {"A": 1.0, "B": 2.0})
    assert build() == (True, {})


def test_a_page_that_lists_the_whole_store_runs_again_when_a_record_is_added(tmp_path, monkeypatch):
    """The compute appendix reads every record: a new record (of any chapter) makes its page stale."""
    store = ResultStore(tmp_path / "store")
    store.put(A, {"wer": 1.0})
    nb, executed = _chapter(tmp_path)
    lookups = tmp_path / "appendix.lookups"
    monkeypatch.setenv(LOOKUPS_ENV, str(lookups))
    assert [r["config"] for r in store.records()] == [A]
    monkeypatch.delenv(LOOKUPS_ENV)
    cache = ChapterCache(tmp_path / "kept", library="v1")
    cache.keep(nb, "smoke", executed, looked_up(lookups))
    assert cache.reuse(nb, "smoke", tmp_path / "copy.ipynb") == 2  # the listing and the one record it read
    store.put(B, {"wer": 2.0})
    assert cache.reuse(nb, "smoke", tmp_path / "again.ipynb") is None
