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
import subprocess
import sys
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
    return root, preset, env


@pytest.fixture
def paper_env(rehearsal):
    """The paper user's environment set for one test (restored after it)."""
    root, preset, env = rehearsal
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield root, preset, env
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_rehearsal_preset_is_the_paper_preset_but_for_device_and_training(tmp_path):
    (tmp_path / "r.yml").write_text(REHEARSAL)
    ours, paper = load_preset(str(tmp_path / "r.yml")).raw, load_preset("paper").raw
    for raw in (ours, paper):
        raw.pop("name"), raw.pop("device")
        for task in ("asr", "aec"):
            raw[task]["finetune"].pop("max_steps", None)
            raw[task]["finetune"].pop("mixed_precision", None)
    assert ours == paper


def test_every_chapter_and_the_front_page_run_on_the_paper_inputs(rehearsal):
    root, _, _ = rehearsal
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


def test_table3_runs_the_papers_k_per_corpus(paper_env):
    """Table 3's k per corpus as in the paper: LJ Speech 4, 6, 8 and VCTK 6, 8, 10 at depth 24."""
    from mamlib.report import layer_picks, open_chapter

    root, preset, _ = paper_env
    ch = open_chapter(str(preset), root / "cache", name="t3")
    assert layer_picks(ch).ks == {"ljspeech": [4, 6, 8], "vctk": [6, 8, 10]}


#: Run in a fresh interpreter (the hub cache's location is read when huggingface_hub is imported): repeat the
#: rehearsal's bf16 FT run (deterministic), score it as the book does and as its weights copied into a fresh float32
#: model, and print both with the logits' largest difference.
RETRAIN = """
import copy, json, sys
import torch
from mamlib.finetune.loop import train
from mamlib.finetune.settings import TrainSettings
from mamlib.report import open_chapter
from mamlib.sweeps.finetune import asr_target

preset, cache, run_dir, settings = sys.argv[1:5]
ch = open_chapter(preset, cache, name="t5")
sweep = ch.sweep("ljspeech")
target = asr_target(sweep, lambda: ch.train_utterances("ljspeech"))
model = target.copy_model()
train(model, target.make_task(), target.train_examples(), TrainSettings(**json.loads(settings)), seed=0,
      run_dir=run_dir, progress=False, data_parallel=False)
plain = copy.deepcopy(ch.asr_rig.transcriber.model)
plain.load_state_dict(model.state_dict())
x = torch.from_numpy(sweep.utterances["test"][0].audio)[None]
with torch.inference_mode():
    gap = float((model.eval()(x).logits - plain.eval()(x).logits).abs().max())
    ours, reference = target.evaluate(model), target.evaluate(plain)
print(json.dumps({"gap": gap, "ours": ours, "reference": reference}))
"""


def test_a_bf16_fine_tuning_run_is_scored_as_its_float32_weights(paper_env):
    """Table 5's FT row trained under bf16 autocast (the rehearsal asks for it) and evaluated by the book equals the
    same weights evaluated plainly in float32: the run is repeated (it is deterministic), its weights copied into a
    fresh float32 model, and both scored."""
    root, preset, _ = paper_env
    records = [json.loads(p.read_text()) for p in (root / "cache" / "results").glob("*.json")]
    stored = next(r for r in records if r["config"]["experiment"] == "asr-finetune"
                  and r["config"]["corpus"]["dataset"] == "ljspeech" and r["config"]["method"] == "ft"
                  and r["config"]["seed"] == 0)
    assert stored["config"]["settings"]["mixed_precision"] == "bf16"
    done = subprocess.run([sys.executable, "-c", RETRAIN, str(preset), str(root / "cache"), str(root / "again"),
                           json.dumps(stored["config"]["settings"])], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["gap"] == 0.0
    assert out["ours"]["hypotheses"] == out["reference"]["hypotheses"] == stored["result"]["hypotheses"]
    assert out["ours"]["wer"] == out["reference"]["wer"] == stored["result"]["wer"]


def test_moving_the_data_or_naming_its_parent_computes_nothing(paper_env):
    """Results keys hold each dataset's identity, not its path: the datasets moved to another folder and named by
    the folder holding the releases, every sweep, similarity pass and fine-tuning run is read from the store."""
    from mamlib.report import finetune_table5, layer_picks, open_chapter

    root, preset, env = paper_env
    results = root / "cache" / "results"
    before = sorted(p.name for p in results.glob("*.json"))
    moved = root / "elsewhere" / "datasets"
    moved.parent.mkdir()
    shutil.copytree(root / "data", moved)
    for name in ("MAM_LJSPEECH", "MAM_VCTK", "MAM_ESC50"):
        assert Path(env[name]).parent == root / "data"
        os.environ[name] = str(moved)
    ch = open_chapter(str(preset), root / "cache", name="moved")
    for label in ch.preset.asr.corpora:
        ch.sweep(label).run()
    ch.aec_sweep.run()
    layer_picks(ch)
    finetune_table5(ch, progress=False)
    assert sorted(p.name for p in results.glob("*.json")) == before


# -- wrong layouts: one clear message each ------------------------------------------------------------------------


def test_a_hub_cache_without_refs_main_names_it(tmp_path, monkeypatch):
    from mamlib.models.transformers_kinds import _from_hub, hub_cache_problem

    snapshot = hub_snapshot(tmp_path / "hub", BERT_ID)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs" / "main").unlink()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to the hub and cannot find the files in the local cache")

    with pytest.raises(OSError, match=r"refs/main is missing"):
        _from_hub(ModelSpec(kind="hub-encoder", name=BERT_ID), offline)
    assert hub_cache_problem("no/such-model").startswith("the hub cache has no folder")


@pytest.mark.parametrize("dataset", ["ljspeech", "vctk", "esc50"])
def test_a_dataset_is_identified_by_its_content_not_its_place(tmp_path, dataset):
    from mamlib.presets.schema import find_dataset
    from tests.paper_inputs import write_esc50

    write = {"ljspeech": write_ljspeech, "vctk": write_vctk, "esc50": write_esc50}[dataset]
    release = write(tmp_path / "a")
    copy = tmp_path / "b" / "moved"
    shutil.copytree(tmp_path / "a", copy)
    first = find_dataset(dataset).identity(str(release))
    parent = find_dataset(dataset).identity(str(tmp_path / "a"))
    assert first == find_dataset(dataset).identity(str(copy)) == parent
    assert set(first) == {"name", "release", "fingerprint"} and str(tmp_path) not in json.dumps(first)
    text = next(p for p in sorted((copy / release.name).rglob("*")) if p.suffix in (".csv", ".txt"))
    text.write_text(text.read_text() + "x")
    find_dataset(dataset).identify.cache_clear()
    assert find_dataset(dataset).identity(str(copy))["fingerprint"] != first["fingerprint"]


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
