"""The AEC sweep on the smoke preset's tiny BEATs and ViT with synthetic clips."""

import pytest
import torch

from mamlib.aec.encoders import embed
from mamlib.aec.head import labels, predict
from mamlib.presets.schema import load_preset
from mamlib.report.tables import table1_block
from mamlib.sweeps.aec import AECRig, AECSweep, preset_clips
from mamlib.sweeps.choose import choose_lambda
from mamlib.sweeps.grid import SweepGrid
from mamlib.sweeps.store import ResultStore


def error(head, features, targets) -> float:
    """Classification error in percent, computed by hand from the head's predictions."""
    return 100.0 * int((predict(head, features) != targets).sum()) / len(targets)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    return AECRig.build(load_preset("smoke"), tmp_path_factory.mktemp("cache"))


def test_folds_are_disjoint(rig):
    ids = [{c.id for c in getattr(rig.clips, s)} for s in ("train", "dev", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_sweep_scores_with_the_unmerged_head(rig, tmp_path):
    grid = SweepGrid(lambdas=(0.0, 0.2), variants=("source", "noise-standard"))
    df = AECSweep(rig, ResultStore(tmp_path)).run(grid)
    fresh = AECRig.build(rig.preset, rig.cache_dir)  # every result stored: no network, no clips loaded again
    assert AECSweep(fresh, ResultStore(tmp_path)).run(grid).equals(df)
    assert not {"encoder", "clips", "mergers"} & set(vars(fresh))
    # The λ = 0 row equals the head evaluated directly on the untouched encoder.
    head = rig.head()
    direct = error(head, embed(rig.encoder.encode, rig.clips.test, 10), labels(rig.clips.test))
    base = df[(df["split"] == "test") & (df["source"] == "none")]["error"].iloc[0]
    assert base == pytest.approx(direct)
    # A merged row equals the same head evaluated inside the merge, by hand.
    with rig.mergers["noise-standard"].merged(0.2):
        merged = error(head, embed(rig.encoder.encode, rig.clips.test, 10), labels(rig.clips.test))
    row = df[(df["split"] == "test") & (df["source"] == "noise-standard")]["error"].iloc[0]
    assert row == pytest.approx(merged)
    table = table1_block(df, value="error")
    assert list(table.columns) == ["Source", "N(0,1)"]
    assert choose_lambda(df, value="error")["lambda"] in (0.0, 0.2)


def test_head_is_trained_on_the_unmerged_encoder(rig):
    w = rig.head().weight.clone()
    rig._head = None
    with rig.mergers["source"].merged(0.3):
        pass  # merged and restored: the head trained afterwards must be the same
    assert torch.equal(rig.head().weight, w)


def test_missing_esc50_says_where_to_get_it(tmp_path, monkeypatch):
    from mamlib.presets.schema import CorpusSpec

    monkeypatch.delenv("MAM_ESC50", raising=False)
    with pytest.raises(FileNotFoundError, match="github.com/karolpiczak/ESC-50"):
        preset_clips(CorpusSpec(dataset="esc50", label="esc50", path_env="MAM_ESC50"), tmp_path)
    with pytest.raises(FileNotFoundError, match="ESC-50"):
        preset_clips(CorpusSpec(dataset="esc50", label="esc50", path=str(tmp_path / "nowhere")), tmp_path)


def test_missing_beats_checkpoint_is_explained(monkeypatch):
    from mamlib.models.build import build_model

    monkeypatch.delenv("MAM_BEATS_CHECKPOINT", raising=False)
    with pytest.raises(FileNotFoundError, match="MAM_BEATS_CHECKPOINT.*microsoft/unilm"):
        build_model(load_preset("paper").aec.target)


def test_paper_scale_aec_merge_random_weights():
    """The paper preset's AEC pair at full size (BEATs 12 × 768, ViT-B/16 12 × 768), random weights."""
    from mamlib.merge.merger import AttentionMerger
    from mamlib.models.beats import BEATS_ITER3_CONFIG, BEATs
    from mamlib.models.build import build_model
    from mamlib.models.kinds import ModelSpec

    torch.manual_seed(0)
    beats = BEATs(BEATS_ITER3_CONFIG).eval()
    vit = build_model(ModelSpec(kind="random-vit-base")).model
    merger = AttentionMerger(beats, vit)
    assert merger.num_layers == 12
    x = torch.randn(1, 16000) * 0.1
    with torch.no_grad():
        before = beats.extract_features(x)[0]
        with merger.merged(0.1, layers=range(4, 12)):
            merged = beats.extract_features(x)[0]
        after = beats.extract_features(x)[0]
    assert not torch.allclose(before, merged)
    assert torch.equal(before, after)
