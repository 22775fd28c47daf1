"""The compute appendix (mamlib.report.compute): which part of the book a stored configuration serves, the sums of
wall seconds and audio-seconds over a small scripted store, records without compute, the search budget, and the
recorded projection of the paper preset."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mamlib.presets.schema import load_preset
from mamlib.report.chapter import Chapter
from mamlib.report.compute import (
    DEPTH,
    NOT_RECORDED,
    NUMERICS,
    OTHER,
    SIMILARITY,
    TABLE1,
    TABLE2,
    TABLE3,
    TABLE5,
    ComputeReport,
    attribute,
    chapter_records,
    compute_table,
    corpus_label,
    evaluated_split,
    finetune_table,
    hardware_table,
    paper_projection,
    stored_depths,
    task_of,
)
from mamlib.sweeps.store import ResultStore

BLOCKS = {"asr": [[0, 1], [2, 3]], "aec": [[0], [1], [2], [3], [0, 1]]}
DTYPES = {"asr": "float32", "aec": "float32"}


def sweep(task: str = "asr", layers=None, split: str = "dev", dtype: str = "float32", lam: float = 0.1, **extra):
    return {"experiment": f"{task}-interpolation", "preset": "smoke", "device": "cpu", "dtype": dtype,
            "corpus": {"dataset": "smoke"}, "source": "source", "lambda": lam, "layers": layers, "split": split,
            **extra}


@pytest.mark.parametrize(("config", "part"), [
    (sweep(layers=None), TABLE1),
    (sweep(layers=None, lam=0.0, split="test", source="none"), TABLE1),  # the unmerged baseline of every table
    (sweep(layers=None, dtype="bfloat16", split="test"), NUMERICS),
    (sweep(layers=[0, 1]), TABLE2),
    (sweep(layers=[2, 3], split="test"), TABLE2),
    (sweep(layers=[1, 2]), TABLE3),  # consecutive, but not one of the ASR blocks: a data-driven pick
    (sweep(layers=[0, 3]), TABLE3),
    (sweep("aec", layers=[0, 1]), TABLE2),
    (sweep("aec", layers=[1, 3]), OTHER),  # AEC has no Table 3
    (sweep("aec", layers=None, split="test", source="noise-source"), TABLE1),
    ({"experiment": "asr-similarity", "split": "dev", "label": "synthetic", "dtype": "float32"}, SIMILARITY),
    ({"experiment": "asr-finetune", "method": "l-mam", "dtype": "float32"}, TABLE5),
    ({"experiment": "aec-finetune", "method": "ft", "dtype": "float32"}, TABLE5),
    ({"experiment": "asr-target-depth", "dtype": "float32"}, DEPTH),
    ({"experiment": "asr-something-new"}, OTHER),
])
def test_attribution(config, part):
    assert attribute(config, BLOCKS, DTYPES) == part


def test_attribution_without_blocks_or_dtypes():
    # Without the stored depth, any run of consecutive layers is taken for a Table 2 block; without the preset's
    # dtypes, no sweep is taken for the numerics check.
    assert attribute(sweep(layers=[1, 2])) == TABLE2
    assert attribute(sweep(layers=[0, 2])) == TABLE3
    assert attribute(sweep(layers=None, dtype="bfloat16")) == TABLE1
    # A paper preset that runs bfloat16 checks float32.
    assert attribute(sweep(layers=None, dtype="float32"), BLOCKS, {"asr": "bfloat16"}) == NUMERICS


def test_evaluated_split():
    assert evaluated_split(sweep(split="dev")) == "dev"
    assert evaluated_split({"experiment": "asr-finetune"}) == "test"
    assert evaluated_split({"experiment": "asr-target-depth"}) is None


def scripted_store(tmp_path) -> ResultStore:
    """Four sweep records and one fine-tuning run with known compute seconds; one sweep written before compute was
    recorded; one target-depth look-up."""
    store = ResultStore(tmp_path / "results")
    cpu = {"hardware": "Test CPU, 2 cores", "finished": "2026-12-03T10:00:00Z"}
    store.put(sweep(lam=0.0, source="none", split="dev"), {"wer": 50.0}, {"seconds": 1.5, **cpu})
    store.put(sweep(lam=0.1, split="dev"), {"wer": 40.0}, {"seconds": 2.25, **cpu})
    store.put(sweep(lam=0.1, split="test"), {"wer": 45.0}, {"seconds": 3.0, **cpu})
    store.put(sweep(lam=0.1, layers=[0, 1], split="test"), {"wer": 44.0})  # before compute was recorded
    store.put({"experiment": "asr-finetune", "preset": "smoke", "device": "cpu", "dtype": "float32",
               "corpus": {"dataset": "smoke", "n_train": 4}, "method": "ft", "seed": 0,
               "settings": {"batch_size": 4, "epochs": 1}},
              {"wer": 30.0, "steps": 3, "train_seconds": 7.5}, {"seconds": 9.0, **cpu})
    store.put({"experiment": "asr-target-depth", "preset": "smoke", "device": "cpu", "dtype": "float32",
               "corpus": {}}, {"num_layers": 4}, {"seconds": 0.01, **cpu})
    return store


#: Seconds of audio per split of the scripted corpus.
SPLIT_SECONDS = {"dev": 12.0, "test": 30.0}


def audio(config):
    split = evaluated_split(config)
    return None if split is None else SPLIT_SECONDS[split]


def test_sums_over_a_scripted_store(tmp_path):
    records = scripted_store(tmp_path).records()
    table = compute_table(records, audio, BLOCKS, DTYPES)
    t1, t2, t5 = (table.loc[(part, "ASR")] for part in (TABLE1, TABLE2, TABLE5))
    total = table.loc[("total", "")]
    # Table 1: two dev configurations and one on test; 2 × 12 s + 30 s of audio, 1.5 + 2.25 + 3.0 wall seconds.
    assert (t1["dev"], t1["test"]) == (2, 1)
    assert t1["audio (min)"] == pytest.approx((2 * 12.0 + 30.0) / 60)
    assert t1["wall (s)"] == pytest.approx(6.75)
    assert t1["timed"] == "3/3"
    # Table 2's one record noted no compute: its wall time is "not recorded", never a number.
    assert (t2["dev"], t2["test"], t2["timed"]) == (0, 1, "0/1")
    assert t2["wall (s)"] == NOT_RECORDED
    assert t2["audio (min)"] == pytest.approx(30.0 / 60)
    # The fine-tuning run evaluates test once.
    assert (t5["dev"], t5["test"], t5["wall (s)"]) == (0, 1, pytest.approx(9.0))
    # The depth look-up evaluates no data: no split, no audio, its wall time only.
    depth = table.loc[(DEPTH, "ASR")]
    assert (depth["dev"], depth["test"], depth["wall (s)"], depth["timed"]) == (0, 0, pytest.approx(0.01), "1/1")
    assert pd.isna(depth["audio (min)"])
    # The total sums what was recorded and says how much was.
    assert (total["dev"], total["test"]) == (2, 3)
    assert total["audio (min)"] == pytest.approx((2 * 12.0 + 3 * 30.0) / 60)
    assert total["wall (s)"] == pytest.approx(15.76)
    assert total["timed"] == "5/6"
    assert list(table.index.get_level_values(0)) == [TABLE1, TABLE2, TABLE5, DEPTH, "total"]


def test_nothing_recorded_is_said_so(tmp_path):
    store = ResultStore(tmp_path)
    store.put(sweep(split="dev"), {"wer": 1.0})
    table = compute_table(store.records(), audio)
    assert table.loc[("total", ""), "wall (s)"] == NOT_RECORDED
    assert hardware_table(store.records()).loc[NOT_RECORDED, "wall (s)"] == NOT_RECORDED


def test_hardware_and_finetuning(tmp_path):
    records = scripted_store(tmp_path).records()
    hw = hardware_table(records)
    assert hw["records"].tolist() == [5, 1] and hw["records"].dtype.kind == "i"
    assert hw.loc["Test CPU, 2 cores", "wall (s)"] == pytest.approx(15.76)
    assert hw.loc[NOT_RECORDED, "records"] == 1
    ft = finetune_table(records, lambda config: "synthetic", audio)
    assert list(ft.index) == [("synthetic", "FT")]
    row = ft.loc[("synthetic", "FT")]
    assert (row["runs"], row["steps"], row["examples"]) == (1, 3, 12)  # 3 steps × batch 4
    assert row["training (s)"] == pytest.approx(7.5)
    assert row["test audio (min)"] == pytest.approx(0.5)
    assert finetune_table([], lambda config: None, audio).empty


def test_finetuning_rows_in_the_books_order():
    def run(task, method, seed, steps=2):
        return {"config": {"experiment": f"{task}-finetune", "method": method, "seed": seed,
                           "settings": {"batch_size": 8}}, "result": {"steps": steps}}

    records = [run("aec", "ft", 0), run("asr", "l-mam", 0), run("asr", "ft", 1), run("asr", "mam-ft", 0),
               run("asr", "ft", 0, steps=3)]
    ft = finetune_table(records, lambda config: task_of(config) + "-corpus", lambda config: None)
    assert list(ft.index) == [("asr-corpus", "FT"), ("asr-corpus", "MAM → FT"), ("asr-corpus", "L-MAM + FT"),
                              ("aec-corpus", "FT")]
    assert (ft.loc[("asr-corpus", "FT"), "runs"], ft.loc[("asr-corpus", "FT"), "examples"]) == (2, (2 + 3) * 8)
    # Runs that measured no training time and corpora without known audio say so, never 0.
    assert ft.loc[("asr-corpus", "FT"), "training (s)"] == NOT_RECORDED
    assert pd.isna(ft.loc[("asr-corpus", "FT"), "test audio (min)"])


def test_stored_depths(tmp_path):
    records = scripted_store(tmp_path).records()
    assert stored_depths(records) == {"asr": 4}
    assert stored_depths(records, {"asr": "bfloat16"}) == {}


def test_corpus_label():
    corpora = {"asr": {"lj": {"dataset": "lj-like", "n_dev": 2}, "vctk": {"dataset": "vctk-like", "n_dev": 2}},
               "aec": {"events": {"dataset": "esc50", "folds": {"dev": 4}}}}
    assert corpus_label({"experiment": "asr-interpolation", "corpus": {"dataset": "vctk-like", "n_dev": 2}},
                        corpora) == "vctk"
    assert corpus_label({"experiment": "asr-finetune", "corpus": {"dataset": "lj-like", "n_dev": 2, "n_train": 9}},
                        corpora) == "lj"
    assert corpus_label({"experiment": "asr-similarity", "label": "lj", "corpus": {}}, corpora) == "lj"
    assert corpus_label({"experiment": "aec-interpolation", "corpus": {"dataset": "esc50", "folds": {"dev": 4}}},
                        corpora) == "events"
    assert corpus_label({"experiment": "asr-interpolation", "corpus": {"dataset": "lj-like", "n_dev": 3}},
                        corpora) is None


def test_chapter_records_keep_this_preset_device_and_version(tmp_path):
    ch = Chapter(load_preset("smoke"), tmp_path)
    ch.store.put(sweep(split="dev"), {"wer": 1.0})
    ch.store.put({**sweep(split="dev"), "preset": "mini"}, {"wer": 1.0})
    ch.store.put({**sweep(split="dev"), "device": "cuda"}, {"wer": 1.0})
    # A record of another mamlib version lies under another key: the chapters no longer read it, also where it
    # holds the same configuration as a current one (it would be counted twice).
    for name, split in (("0123456789abcdef0123", "test"), ("3210fedcba9876543210", "dev")):
        (ch.store.root / f"{name}.json").write_text(json.dumps({"config": sweep(split=split), "result": {"wer": 2.0}}))
    records = chapter_records(ch)
    assert [r["config"]["split"] for r in records] == ["dev"]
    assert records[0]["result"] == {"wer": 1.0}
    assert records[0]["config"]["preset"] == "smoke" and records[0]["config"]["device"] == "cpu"


def test_search_budget():
    report = ComputeReport(
        "smoke", "cpu", [], {"asr": {"synthetic": {}, "real": {}}, "aec": {"events": {}}},
        DTYPES, {"asr": 4, "aec": 4}, {"asr": (0.0, 0.1, 0.2, 0.3), "aec": (0.0, 0.1, 0.2)}, audio,
        paper_dataset={"synthetic": "LJ Speech", "real": "LJ Speech"}, select_on={"real": "synthetic"},
        finetuned={"synthetic": ("asr", 3), "events": ("aec", 3)})
    budget = report.search_budget()["candidates"]
    # 4 ASR blocks of 1 layer on a 4-layer target (Table 2's 8 of 24, scaled); AEC: 4 of 1 layer and 2 of 2.
    assert budget[("Table 1", "synthetic")] == 4
    assert budget[("Table 2", "synthetic")] == 4 * 3
    assert budget[("Table 3", "synthetic")] == 3 * 3  # 3 metrics × k ∈ {1, 2, 3}
    assert budget[("Table 5, MAM", "synthetic")] == 4 + 4 * 3
    assert budget[("Table 5, fine-tuned", "synthetic")] == 0
    assert budget[("Table 1", "events")] == 3
    assert budget[("Table 2", "events")] == 6 * 2
    assert budget[("Table 5, MAM", "events")] == 3 + 6 * 2
    assert ("Table 3", "real") not in budget.index  # no dev split of its own: it picks nothing
    assert ("Table 3", "events") not in budget.index
    # Without a stored depth the counts that need it are missing, not guessed.
    report.depths = {}
    budget = report.search_budget()["candidates"]
    assert pd.isna(budget[("Table 2", "synthetic")]) and budget[("Table 1", "synthetic")] == 4


PROJECTION = {
    "source": "a test", "recorded": "2026-12-02",
    "rows": [{"chapter": "1 Table 1", "task": "ASR", "configurations": 54, "audio_h": 183.6, "training_audio_h": None,
              "gpu_h": {"paper": 0.17, "paper-bf16": 0.03}, "cpu_h": 410},
             {"chapter": "4 Table 5 fine-tuning", "task": "AEC", "configurations": 9, "audio_h": 5.0,
              "training_audio_h": 45.0, "gpu_h": {"paper": 0.01, "paper-bf16": 0.01}, "cpu_h": 66}],
    "total_gpu_h": {"paper": 0.82, "paper-bf16": 0.41}, "total_cpu_h": 4312,
}


def test_paper_projection(tmp_path):
    path = tmp_path / "paper_cost.json"
    path.write_text(json.dumps(PROJECTION))
    projection = paper_projection(path)
    assert projection is not None and projection.recorded == "2026-12-02"
    table = projection.table
    assert list(table.columns) == ["configs", "audio (h)", "training audio (h)", "paper, H200 (h)",
                                   "paper-bf16, H200 (h)"]
    assert table.loc[("1 Table 1", "ASR")].tolist() == ["54", "183.6", "—", "0.17", "0.03"]
    assert table.loc[("4 Table 5 fine-tuning", "AEC"), "training audio (h)"] == "45.0"
    assert table.loc[("total", ""), "paper, H200 (h)"] == "0.82 (8 GPUs: 0.10)"
    assert "projected, not measured" in projection.caption
    written = tmp_path / "written.json"  # as the script writes it: the script is named once in the caption
    written.write_text(json.dumps({**PROJECTION, "source": "benchmarks/paper_cost.py, rehearsal"}))
    assert paper_projection(written).caption.count("paper_cost.py") == 1
    assert paper_projection(tmp_path / "absent.json") is None
    transcribed = tmp_path / "transcribed.json"
    transcribed.write_text(json.dumps({**PROJECTION, "source": "transcribed once from RESULTS.md"}))
    assert "(transcribed once from RESULTS.md)" in paper_projection(transcribed).caption
    for broken in ("{", json.dumps({**PROJECTION, "rows": [{"chapter": "1"}]})):
        path.write_text(broken)
        with pytest.raises(ValueError, match=r"paper_cost.json is not a projection written by .*paper_cost.py"):
            paper_projection(path)


def test_projection_of_this_checkout():
    projection = paper_projection()
    if projection is None:
        pytest.skip("no benchmarks/paper_cost.json here")
    assert "total" in projection.table.index.get_level_values(0)
