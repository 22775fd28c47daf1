"""The sweep machinery of Chapters 1–3 on a tiny rig with fake utterances (no synthesis needed)."""

import numpy as np
import pandas as pd
import pytest
import torch

from mamlib.asr.recognizers import Utterance
from mamlib.presets.schema import CorpusSpec, load_preset
from mamlib.report.tables import table1_block, table2_block
from mamlib.sweeps.asr import ASRRig, ASRSweep
from mamlib.sweeps.choose import choose_lambda, layerwise_sweep, scaled_blocks, table2_blocks
from mamlib.sweeps.grid import SweepGrid, layer_label, sweep_configs
from mamlib.sweeps.store import ResultStore, config_key


@pytest.fixture(scope="module")
def rig():
    return ASRRig.build(load_preset("smoke"))


def _utts(n, seed):
    rng = np.random.default_rng(seed)
    return [Utterance(f"u{seed}-{i}", (rng.standard_normal(8000 + 1000 * i) * 0.1).astype(np.float32),
                      "hello world again") for i in range(n)]


CORPUS = CorpusSpec(dataset="fake", label="fake")
UTTS = {"dev": _utts(2, 0), "test": _utts(2, 1)}


def test_configs_share_the_baseline_and_skip_noise_on_dev(rig):
    configs = sweep_configs(rig, CORPUS.as_dict(), SweepGrid())
    dev = [c for c in configs if c["split"] == "dev"]
    test = [c for c in configs if c["split"] == "test"]
    assert sum(c["source"] == "none" for c in dev) == 1 and sum(c["source"] == "none" for c in test) == 1
    assert {c["source"] for c in dev} == {"none", "source"}
    assert len(test) == 1 + 4 * 5  # baseline + 4 source variants × 5 non-zero λ


def test_sweep_resumes_from_store_and_tables(rig, tmp_path):
    store = ResultStore(tmp_path)
    df = ASRSweep(rig, CORPUS, UTTS, store).run()
    n = len(store)
    again = ASRSweep(rig, CORPUS, UTTS, store).run()
    assert len(store) == n
    pd.testing.assert_frame_equal(df, again)
    fresh = ASRRig.build(load_preset("smoke"))  # a later session: every result stored, so no model is built
    pd.testing.assert_frame_equal(df, ASRSweep(fresh, CORPUS, UTTS, store).run())
    assert not {"loaded", "transcriber", "mergers"} & set(vars(fresh))
    t1 = table1_block(df)
    assert list(t1.columns) == ["Source", "N(Source)", "N(Target)", "N(0,1)"]
    assert list(t1.index) == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
    assert np.isnan(t1.loc[0.0, "N(0,1)"]) and not np.isnan(t1.loc[0.0, "Source"])
    choice = choose_lambda(df)
    assert choice["lambda"] in t1.index
    assert choice["test"] == pytest.approx(t1.loc[choice["lambda"], "Source"])


def test_merged_wer_differs_from_unmerged_only_when_merged(rig, tmp_path):
    """The baseline WER equals an evaluation of the untouched model, and the rig is restored after the sweep."""
    from mamlib.asr.recognizers import evaluate_asr

    store = ResultStore(tmp_path)
    df = ASRSweep(rig, CORPUS, UTTS, store).run(SweepGrid(variants=("noise-standard",), lambdas=(0.0, 0.25)))
    direct = evaluate_asr(rig.transcriber, UTTS["test"], batch_size=4)
    base = df[(df["split"] == "test") & (df["source"] == "none")]["wer"].iloc[0]
    assert base == pytest.approx(100 * direct.wer)


def test_layerwise_protocol(rig, tmp_path):
    blocks = scaled_blocks(rig.num_layers)
    assert blocks == [[0], [1], [2], [3]]
    sweep = ASRSweep(rig, CORPUS, UTTS, ResultStore(tmp_path))
    df, lam = layerwise_sweep(sweep, rig.setup.lambdas, blocks)
    col = table2_block(df, lam)
    assert list(col.index) == ["0", "1", "2", "3", "unmerged"]
    dev = df[(df["split"] == "dev") & (df["layers"] != "all")]
    assert dev.sort_values(["wer", "lambda"]).iloc[0]["lambda"] == lam


def test_layerwise_on_a_corpus_that_selects_on_another_keeps_its_own_rows(rig, tmp_path):
    """A corpus without a dev split (select_on) takes λ from another corpus's dev sweep; its Table 2 column must
    come from its own test utterances, never from the other corpus's rows."""
    store = ResultStore(tmp_path)
    blocks = scaled_blocks(rig.num_layers)
    dev_df, lam = layerwise_sweep(ASRSweep(rig, CORPUS, UTTS, store), rig.setup.lambdas, blocks)
    other = CorpusSpec(dataset="fake-other", label="other", select_on="fake")
    other_utts = {"test": _utts(3, 7)}
    df, lam2 = layerwise_sweep(ASRSweep(rig, other, other_utts, store), rig.setup.lambdas, blocks, dev=dev_df)
    assert lam2 == lam and set(df["corpus"]) == {"other"} and set(df["split"]) == {"test"}
    direct = ASRSweep(rig, other, other_utts, store).run(SweepGrid(variants=("source",), lambdas=(0.0, lam),
                                                                   layer_sets=tuple(tuple(b) for b in blocks)))
    expected = direct[direct["source"] == "source"].set_index("layers")["wer"]
    assert table2_block(df, lam).drop("unmerged").to_dict() == expected.to_dict()


def test_table2_blocks_are_the_papers_for_each_task():
    assert table2_blocks("asr", 24) == [list(range(s, s + 8)) for s in (0, 4, 8, 12, 16)]
    assert [layer_label(b) for b in table2_blocks("aec", 12)] == ["0-3", "4-7", "8-11", "0-7", "4-11"]
    with pytest.raises(ValueError, match="unknown task"):
        table2_blocks("vision", 12)


class _ScriptedSweep:
    """A sweep whose errors are given per (λ, layer label, split): what choose_mam sees of a real one."""

    value = "error"

    def __init__(self, errors):
        self.errors = errors

    def run(self, grid):
        splits = grid.splits or ("dev", "test")
        rows = [{"source": "none" if lam == 0 else "source", "lambda": lam, "layers": layer_label(layers),
                 "split": split, "error": self.errors.get((lam, layer_label(layers), split), 12.0)}
                for lam in grid.lambdas for layers in grid.layer_sets for split in splits]
        return pd.DataFrame(rows)


def test_table5_mam_row_chooses_among_the_tasks_own_blocks():
    """On 12-layer BEATs the paper's best block is 4-11 (Table 2: 10.50); Table 5's MAM row must be able to
    choose it, which HuBERT's grid (4-layer blocks every 2 layers at this depth) never offered."""
    from mamlib.sweeps.finetune import choose_mam

    sweep = _ScriptedSweep({(0.1, "4-11", "dev"): 9.0, (0.1, "4-11", "test"): 10.5})
    choice = choose_mam(sweep, [0.0, 0.1, 0.2], table2_blocks("aec", 12))
    assert (choice.lam, choice.layers, choice.dev, choice.test) == (0.1, tuple(range(4, 12)), 9.0, 10.5)


def test_scaled_blocks_paper_depth():
    assert scaled_blocks(24) == [list(range(s, s + 8)) for s in (0, 4, 8, 12, 16)]
    with pytest.raises(ValueError):
        scaled_blocks(1)


def test_layer_label():
    assert layer_label(None) == "all"
    assert layer_label([3]) == "3"
    assert layer_label([14, 12, 13]) == "12-14"
    assert layer_label([1, 4]) == "1,4"


def test_prefix_reuse_gives_identical_results(rig, tmp_path):
    """A layer-subset sweep with the prefix cache equals the same sweep without it, row for row."""
    grid = SweepGrid(variants=("source", "noise-target"), lambdas=(0.0, 0.2), layer_sets=(None, (1, 2), (2, 3), (3,)))
    assert grid.merged_layers() == [0, 1, 2, 3]  # all layers (Table 1) still share the features below layer 0
    cached = ASRSweep(rig, CORPUS, UTTS, ResultStore(tmp_path / "a")).run(grid)
    plain = ASRSweep(rig, CORPUS, UTTS, ResultStore(tmp_path / "b"), reuse_prefix=False).run(grid)
    assert cached["hypotheses"].tolist() == plain["hypotheses"].tolist()
    assert cached["wer"].tolist() == plain["wer"].tolist()


def test_bfloat16_target_is_keyed_apart_and_runs(tmp_path):
    import yaml

    from mamlib.presets.schema import PRESET_DIR, parse_preset

    raw = yaml.safe_load((PRESET_DIR / "smoke.yml").read_text())
    raw["asr"]["dtype"] = "bfloat16"
    bf16 = ASRRig.build(parse_preset(raw), variants=["source"])
    grid = SweepGrid(lambdas=(0.0, 0.1), splits=("test",))
    assert next(bf16.transcriber.model.parameters()).dtype == torch.bfloat16
    keys = [(c["dtype"], c.get("blend")) for c in sweep_configs(bf16, CORPUS.as_dict(), grid)]
    assert keys == [("bfloat16", "float32-accumulated")] * 2  # new results since the one blend kernel (issue 27)
    float32 = ASRRig.build(parse_preset(yaml.safe_load((PRESET_DIR / "smoke.yml").read_text())), variants=["source"])
    assert all("blend" not in c for c in sweep_configs(float32, CORPUS.as_dict(), grid))  # float32 keys unchanged
    df = ASRSweep(bf16, CORPUS, UTTS, ResultStore(tmp_path)).run(grid)
    assert len(df) == 2 and df["wer"].notna().all()


def test_dtype_effect_against_direct_evaluations(tmp_path):
    """Chapter 1's numerics table: each WER equals a direct evaluation of a rig built in that dtype, and the count
    of changed transcripts equals a direct comparison."""
    from dataclasses import replace

    from mamlib.asr.recognizers import evaluate_asr
    from mamlib.report.chapter import open_chapter
    from mamlib.report.numerics import dtype_effect, largest_change
    from mamlib.report.table1 import Table1

    ch = open_chapter("smoke", tmp_path, name="t")
    label = "synthetic"
    base = ch.sweep(label).run(SweepGrid(variants=("source",), lambdas=(0.0, 0.1), splits=("test",)))
    table1 = Table1({label: base}, {}, {}, pd.DataFrame({"lambda": {label: 0.1}}), "wer")
    table = dtype_effect(ch, table1)
    assert list(table.columns) == ["WER float32", "WER bfloat16", "difference (points)", "transcripts changed"]
    assert list(table.index) == [(label, 0.0), (label, 0.1)]
    utts = ch.corpora[label]["test"]
    rigs = {dt: ASRRig.build(replace(ch.preset, asr=replace(ch.preset.asr, dtype=dt)), variants=["source"])
            for dt in ("float32", "bfloat16")}
    differences = []
    for lam in (0.0, 0.1):
        reports = {}
        for dt, r in rigs.items():
            with r.mergers["source"].merged(lam):
                reports[dt] = evaluate_asr(r.transcriber, utts, batch_size=ch.preset.asr.batch_size)
        row = table.loc[(label, lam)]
        assert row["WER float32"] == pytest.approx(100 * reports["float32"].wer)
        assert row["WER bfloat16"] == pytest.approx(100 * reports["bfloat16"].wer)
        direct = 100 * (reports["bfloat16"].wer - reports["float32"].wer)
        assert row["difference (points)"] == pytest.approx(direct)
        differences.append(abs(direct))
        hyps = [reports[dt].utterances["hypothesis"].tolist() for dt in ("float32", "bfloat16")]
        assert row["transcripts changed"] == f"{sum(a != b for a, b in zip(*hyps))}/{len(utts)}"
    assert largest_change(table) == pytest.approx(max(differences))
    with pytest.raises(ValueError, match="already runs float32"):
        dtype_effect(ch, table1, other="float32")


def test_best_block_label_by_hand():
    """Table 2's best block: lowest test WER at the chosen λ among blocks (not "all", not dev, not another λ)."""
    from mamlib.report.table2 import best_block_label

    rows = pd.DataFrame([
        {"split": "test", "lambda": 0.1, "layers": "0-1", "wer": 12.0},
        {"split": "test", "lambda": 0.1, "layers": "2-3", "wer": 11.0},
        {"split": "test", "lambda": 0.1, "layers": "1-2", "wer": 11.0},  # a tie: the first row (block order) wins
        {"split": "test", "lambda": 0.1, "layers": "all", "wer": 5.0},
        {"split": "dev", "lambda": 0.1, "layers": "0-1", "wer": 1.0},
        {"split": "test", "lambda": 0.2, "layers": "0-1", "wer": 2.0},
    ])
    assert best_block_label(rows, 0.1) == "2-3"
    assert best_block_label(rows, 0.3) is None


def test_the_batching_is_part_of_the_results_key(rig):
    from dataclasses import replace

    grid = SweepGrid(variants=("source",), lambdas=(0.0, 0.1), splits=("test",))
    plain = sweep_configs(rig, CORPUS.as_dict(), grid)
    budget = sweep_configs(replace(rig, setup=replace(rig.setup, batch_seconds=30.0)), CORPUS.as_dict(), grid)
    count = sweep_configs(replace(rig, setup=replace(rig.setup, batch_size=rig.setup.batch_size + 1)),
                          CORPUS.as_dict(), grid)
    assert [c["batching"] for c in plain] == [{"batch_size": rig.setup.batch_size, "batch_seconds": None}] * 2
    assert [c["batching"]["batch_seconds"] for c in budget] == [30.0, 30.0]
    assert [c["batching"]["batch_size"] for c in count] == [rig.setup.batch_size + 1] * 2
    for other in (budget, count):
        assert [{**c, "batching": None} for c in other] == [{**c, "batching": None} for c in plain]
        assert {config_key(c) for c in other}.isdisjoint(config_key(c) for c in plain)
