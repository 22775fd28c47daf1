"""The paper preset rehearsed end to end: the test of record for it, since nobody here can run it with real weights.

``tests/paper_inputs.py`` lays out what a paper user has — a hub cache with the three hub ids, LJ Speech, VCTK and
ESC-50 in their official layouts, a BEATs checkpoint — with tiny random models at the paper's depths. A preset that
``extends: paper`` and changes only the device and the amount of training then executes every chapter and the
front page with papermill, as ``make book PRESET=...`` does. Wrong layouts each get one message naming what was
expected.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from mamlib.models.kinds import ModelSpec
from mamlib.presets.schema import load_preset
from tests.paper_inputs import (
    BERT_ID,
    REHEARSAL,
    VCTK_TEXTS,
    hub_snapshot,
    write_beats_checkpoint,
    write_ljspeech,
    write_paper_inputs,
    write_vctk,
)

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = [*sorted(BOOK.glob("[0-9]*.ipynb")), BOOK / "intro.ipynb"]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """The paper user's inputs, the rehearsal preset, and every chapter executed on them (once per session)."""
    papermill = pytest.importorskip("papermill")
    root = tmp_path_factory.mktemp("paper")
    env = {**write_paper_inputs(root), "MAM_CACHE_DIR": str(root / "cache")}
    preset = root / "rehearsal.yml"
    preset.write_text(REHEARSAL)
    shared = Path(os.environ.get("MAM_CACHE_DIR") or ROOT / "_cache")
    for folder in ("packaged", "wheels"):  # the mini models Chapter 6 merges, fetched once by `make setup`
        if (shared / folder).is_dir():
            shutil.copytree(shared / folder, root / "cache" / folder)
    (root / "executed").mkdir()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for nb in NOTEBOOKS:
            papermill.execute_notebook(str(nb), str(root / "executed" / nb.name), parameters={"preset": str(preset)},
                                       cwd=str(BOOK), progress_bar=False, log_output=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return root, preset


def test_the_rehearsal_preset_is_the_paper_preset_but_for_device_and_training(tmp_path):
    (tmp_path / "r.yml").write_text(REHEARSAL)
    ours, paper = load_preset(str(tmp_path / "r.yml")).raw, load_preset("paper").raw
    for raw in (ours, paper):
        raw.pop("name"), raw.pop("device")
        for task in ("asr", "aec"):
            raw[task]["finetune"].pop("max_steps", None)
    assert ours == paper


def test_every_chapter_and_the_front_page_run_on_the_paper_inputs(rehearsal):
    root, _ = rehearsal
    records = [json.loads(p.read_text()) for p in (root / "cache" / "results").glob("*.json")]
    configs = [r["config"] for r in records]
    assert {(c["preset"], c["device"]) for c in configs} == {("paper-rehearsal", "cpu")}
    # float32 throughout, but for Chapter 1's check of what bfloat16 inference changes.
    assert {c["dtype"] for c in configs if c["experiment"] != "asr-interpolation"} == {"float32"}
    sweeps = Counter(c["corpus"]["dataset"] for c in configs if c["experiment"].endswith("interpolation"))
    assert set(sweeps) == {"ljspeech", "vctk", "esc50"}
    runs = Counter((c["corpus"]["dataset"], c["method"], c["seed"]) for c in configs
                   if c["experiment"].endswith("finetune"))
    for dataset in ("ljspeech", "vctk", "esc50"):
        # MAM → FT is FT's own run when dev chose λ = 0; otherwise a run of its own.
        assert {(m, s) for (k, m, s) in runs if k == dataset} >= {(m, s) for m in ("ft", "l-mam") for s in (0, 1, 2)}
    steps = {r["result"]["steps"] for r in records if r["config"]["experiment"].endswith("finetune")}
    assert steps == {1}
    # Table 2's AEC blocks at BEATs' depth are the paper's (0-3, 4-7, 8-11, 0-7, 4-11).
    aec_blocks = {tuple(c["layers"]) for c in configs if c["experiment"] == "aec-interpolation" and c["layers"]}
    assert {tuple(range(4, 12)), tuple(range(0, 4)), tuple(range(8, 12))} <= aec_blocks
    for nb in NOTEBOOKS:
        executed = json.loads((root / "executed" / nb.name).read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{nb.name}: {errors[:1]}"


# -- wrong layouts: one clear message each ------------------------------------------------------------------------


def test_a_hub_cache_without_refs_main_names_it(tmp_path, monkeypatch):
    from mamlib.models import build

    snapshot = hub_snapshot(tmp_path / "hub", BERT_ID)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs" / "main").unlink()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to the hub and cannot find the files in the local cache")

    with pytest.raises(OSError, match=r"refs/main is missing"):
        build._from_hub(ModelSpec(kind="hub-encoder", name=BERT_ID), offline)
    assert build.hub_cache_problem("no/such-model").startswith("the hub cache has no folder")


def test_ljspeech_metadata_without_the_normalized_column(tmp_path):
    from mamlib.asr.corpora import ljspeech_corpus

    base = write_ljspeech(tmp_path)
    meta = base / "metadata.csv"
    meta.write_text("\n".join(line.rsplit("|", 1)[0] for line in meta.read_text().splitlines()) + "\n")
    with pytest.raises(ValueError, match=r"line 1: expected 'ID\|raw text\|normalized text'"):
        ljspeech_corpus(tmp_path, "all")


def test_vctk_speaker_without_mic1_recordings(tmp_path):
    from mamlib.asr.corpora import vctk_corpus

    base = write_vctk(tmp_path)
    for f in (base / "wav48_silence_trimmed" / "p226").glob("*_mic1.flac"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=rf"speaker p226 has {len(VCTK_TEXTS)} transcripts but none of its "
                                                r"recordings, e.g. .*p226_001_mic1\.flac"):
        vctk_corpus(tmp_path, "all")
    assert {u.speaker for u in vctk_corpus(tmp_path, "all", mic="mic2")} == {"p225", "p226"}


def test_beats_checkpoint_without_cfg(tmp_path):
    from mamlib.models.beats import load_beats_checkpoint

    path = write_beats_checkpoint(tmp_path / "BEATs.pt")
    torch.save({"model": torch.load(path, weights_only=True)["model"]}, path)
    with pytest.raises(ValueError, match=r"lacks \['cfg'\].*expected a dict with 'cfg' \(the architecture\)"):
        load_beats_checkpoint(path)
