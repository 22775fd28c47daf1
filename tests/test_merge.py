import pytest
import torch
from torch import nn

from mamlib.merge.families import AttentionFamily, attention_modules, detect_family, register_family
from mamlib.merge.merger import AttentionMerger, AttentionWeights, check_layer_map, evenly_spaced_layer_map
from tests.conftest import tiny_bert


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_merge_equals_hand_computation_and_leaves_everything_else(hubert, bert):
    before_target, before_source = _state(hubert), _state(bert)
    merger = AttentionMerger(hubert, bert)
    merger.apply(0.15)
    after = hubert.state_dict()
    merged_names = set()
    for i in range(3):
        for proj, bname in (("q", "query"), ("k", "key"), ("v", "value")):
            tname = f"hubert.encoder.layers.{i}.attention.{proj}_proj.weight"
            expected = 0.15 * before_source[f"encoder.layer.{i}.attention.self.{bname}.weight"] \
                + 0.85 * before_target[tname]
            assert torch.allclose(after[tname], expected, atol=1e-7)
            merged_names.add(tname)
    for name, value in after.items():
        if name not in merged_names:
            assert torch.equal(value, before_target[name]), name  # biases and all other parameters bit-identical
    for name, value in bert.state_dict().items():
        assert torch.equal(value, before_source[name]), name  # the source is never modified
    merger.restore()
    for name, value in hubert.state_dict().items():
        assert torch.equal(value, before_target[name])


def test_subset_of_layers_and_projections(hubert, bert):
    before = _state(hubert)
    merger = AttentionMerger(hubert, bert, projections=("q",))
    with merger.merged(0.5, layers=[1]):
        sd = hubert.state_dict()
        assert not torch.equal(sd["hubert.encoder.layers.1.attention.q_proj.weight"],
                               before["hubert.encoder.layers.1.attention.q_proj.weight"])
        for name in ("layers.0.attention.q_proj", "layers.1.attention.k_proj", "layers.2.attention.q_proj"):
            key = f"hubert.encoder.{name}.weight"
            assert torch.equal(sd[key], before[key])
    assert torch.equal(hubert.state_dict()["hubert.encoder.layers.1.attention.q_proj.weight"],
                       before["hubert.encoder.layers.1.attention.q_proj.weight"])


def test_bias_interpolation(hubert, bert):
    merger = AttentionMerger(hubert, bert, bias="interpolate")
    tb = merger.original.biases[(0, "k")]
    sb = bert.encoder.layer[0].attention.self.key.bias.detach()
    merger.apply(0.2)
    assert torch.allclose(hubert.hubert.encoder.layers[0].attention.k_proj.bias, 0.2 * sb + 0.8 * tb, atol=1e-7)


def test_per_layer_lambdas_eq3(hubert, bert):
    merger = AttentionMerger(hubert, bert)
    assert merger.apply([0.0, 0.1, 0.3]) == [0.0, 0.1, 0.3]
    w = merger.original.weights[(2, "v")]
    assert torch.allclose(merger.projection(2, "v").weight, 0.3 * merger.source_matrix(2, "v") + 0.7 * w, atol=1e-7)
    with pytest.raises(ValueError, match="2 per-layer λ values for a target of 3 layers"):
        merger.apply([0.1, 0.2])
    with pytest.raises(ValueError, match="λ of layer 1"):
        merger.apply([0.1, 1.5, 0.2])


def test_validation_errors(hubert):
    # Different depths take the one default layer map, evenly spaced: round(i · 3/2) = 0, 2 (half to even), 3.
    assert AttentionMerger(hubert, tiny_bert(layers=4)).layer_map == [0, 2, 3]
    msg = r"width mismatch at target layer 0 \(q\): target \(32, 32\) vs source layer 0 \(48, 48\)"
    with pytest.raises(ValueError, match=msg):
        AttentionMerger(hubert, tiny_bert(hidden=48))
    merger = AttentionMerger(hubert, tiny_bert())
    with pytest.raises(ValueError, match="must lie in"):
        merger.apply(1.2)
    with pytest.raises(ValueError, match="layer index 3 is out of range"):
        merger.apply(0.1, layers=[0, 3])
    with pytest.raises(ValueError, match="projections"):
        AttentionMerger(hubert, tiny_bert(), projections=("q", "o"))


def test_layer_maps():
    assert evenly_spaced_layer_map(4, 6) == [0, 2, 3, 5]
    assert evenly_spaced_layer_map(4, 12) == [0, 4, 7, 11]
    assert evenly_spaced_layer_map(3, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="sends target layer 1 to source layer 9"):
        check_layer_map([0, 9, 1], 3, 6)
    with pytest.raises(ValueError, match="has 2 entries; the target has 3"):
        check_layer_map([0, 1], 3, 6)


def test_merge_with_layer_map(hubert):
    deep = tiny_bert(layers=6)
    merger = AttentionMerger(hubert, deep, layer_map=[0, 3, 5])
    merger.apply(1.0)
    assert torch.equal(merger.projection(1, "k").weight, deep.encoder.layer[3].attention.self.key.weight)


def test_family_detection_and_unknown_model(hubert, bert):
    assert detect_family(hubert).name == "hubert"
    assert detect_family(bert).name == "bert"
    with pytest.raises(ValueError, match=r"no registered attention family .* matches Sequential.*0"):
        detect_family(nn.Sequential(nn.Linear(2, 2)))


def test_register_new_family():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.wq, self.wk, self.wv = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Block(), Block()])

    fam = register_family(AttentionFamily("toy-test", r"blocks\.(?P<layer>\d+)\.(?P<proj>wq|wk|wv)",
                                          {"q": "wq", "k": "wk", "v": "wv"}), replace=True)
    toy = Toy()
    assert detect_family(toy) is fam
    assert attention_modules(toy, "toy-test")[1]["v"] is toy.blocks[1].wv
    snap = AttentionWeights.from_model(toy)
    assert snap.num_layers == 2 and snap.shape(0, "q") == (4, 4)


def test_family_pattern_validation():
    with pytest.raises(ValueError, match="named group"):
        AttentionFamily("bad", r"layers\.(\d+)", {"q": "q", "k": "k", "v": "v"})


def test_full_size_paper_architectures_merge():
    """The paper preset's code path at full size (24 × 1024), random weights: only the merge, no forward."""
    from transformers import BertModel, HubertForCTC

    from mamlib.models.transformers_kinds import bert_large_config, hubert_large_config

    with torch.device("meta"):
        target, source = HubertForCTC(hubert_large_config()), BertModel(bert_large_config())
    target = target.to_empty(device="cpu")
    source = source.to_empty(device="cpu")
    for m in (target, source):
        for p in m.parameters():
            torch.nn.init.normal_(p, std=0.02)
    merger = AttentionMerger(target, source)
    assert merger.num_layers == 24
    with merger.merged(0.25, layers=range(12, 20)):
        w = merger.projection(15, "q").weight
        assert torch.allclose(w, 0.25 * source.encoder.layer[15].attention.self.query.weight
                              + 0.75 * merger.original.weights[(15, "q")], atol=1e-6)
        assert torch.equal(merger.projection(3, "q").weight, merger.original.weights[(3, "q")])


def test_batched_ctc_decoding_equals_one_by_one(hubert, waves):
    """Padding frames of a batch are not decoded: batched transcripts equal per-utterance ones."""
    from mamlib.asr.recognizers import CTCTranscriber
    from mamlib.models.transformers_kinds import char_ctc_tokenizer, speech_feature_extractor

    tr = CTCTranscriber(hubert, speech_feature_extractor(), char_ctc_tokenizer())
    batched = tr.transcribe(waves, batch_size=3)
    alone = [tr.transcribe([w], batch_size=1)[0] for w in waves]
    assert batched == alone
