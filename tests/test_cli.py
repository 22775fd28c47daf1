"""``mam merge``: the YAML schema, checkpoints that reload with ``from_pretrained`` to hand-computed merges, several
sources at once, dry runs, and one-line errors for every bad input (tiny random models saved to temporary folders)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertModel, HubertForCTC, T5Config, T5EncoderModel, Wav2Vec2CTCTokenizer

import mamlib
from mamlib.cli import main
from mamlib.cli.merge_config import parse_merge_config
from mamlib.merge.merger import AttentionMerger, MultiSourceMerger
from mamlib.models.transformers_kinds import char_ctc_tokenizer, speech_feature_extractor
from tests.conftest import tiny_bert, tiny_hubert

BERT_NAMES = {"q": "query", "k": "key", "v": "value"}


def _t5(seed: int = 4) -> T5EncoderModel:
    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(d_model=32, d_kv=8, num_heads=4, num_layers=3, d_ff=64, vocab_size=100)).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Model folders written with save_pretrained: a 3-layer HuBERT CTC target (with its feature extractor and
    tokenizer), BERT sources of 3 and 6 layers, a 48-wide BERT, a T5 encoder (no registered family), a broken one."""
    root = tmp_path_factory.mktemp("models")
    out = {name: root / name for name in ("target", "bert3", "bert6", "wide", "t5", "broken")}
    tiny_hubert(seed=0).save_pretrained(out["target"])
    speech_feature_extractor().save_pretrained(out["target"])
    char_ctc_tokenizer().save_pretrained(out["target"])
    tiny_bert(seed=1, layers=3).save_pretrained(out["bert3"])
    tiny_bert(seed=2, layers=6).save_pretrained(out["bert6"])
    tiny_bert(seed=3, hidden=48).save_pretrained(out["wide"])
    _t5().save_pretrained(out["t5"])
    out["broken"].mkdir()
    (out["broken"] / "config.json").write_text("{this is not json")
    return out


def _write(folder: Path, config: dict, name: str = "merge.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _config(folders, *sources, output: str = "out", **extra) -> dict:
    return {"target": str(folders["target"]), "sources": list(sources), "output": output, **extra}


def _src(folders, name: str, lam, **extra) -> dict:
    return {"model": str(folders[name]), "lambda": lam, **extra}


def _run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the schema ---------------------------------------------------------------------------------------------------


def test_a_valid_config_parses_to_its_parts(folders, tmp_path):
    raw = {
        "target": {"model": str(folders["target"]), "family": "hubert"},
        "sources": [
            {"model": str(folders["bert3"]), "lambda": 0.1, "norm_matched": True},
            {"model": str(folders["bert6"]), "lambda": {"value": 0.2, "layers": [1, 2]}, "layer_map": [0, 3, 5]},
            {"model": "minilm", "lambda": [0.0, 0.05, 0.1]},
            {"model": "some-org/some-model", "lambda": 0},
        ],
        "bias": "interpolate",
        "projections": ["v", "q"],
        "output": "merged/whisper",
        "families": [{"name": "mine", "pattern": r"blocks\.(?P<layer>\d+)\.(?P<proj>wq|wk|wv)",
                      "projections": {"q": "wq", "k": "wk", "v": "wv"}, "model_types": ["mine"]}],
    }
    config = parse_merge_config(copy.deepcopy(raw), base_dir=tmp_path)
    assert config.raw == raw
    assert (config.target.origin, config.target.family) == ("folder", "hubert")
    assert [s.ref.origin for s in config.sources] == ["folder", "folder", "packaged", "hub"]
    assert [s.lam for s in config.sources] == [0.1, 0.2, (0.0, 0.05, 0.1), 0.0]
    assert [s.layers for s in config.sources] == [None, (1, 2), None, None]
    assert [s.layer_map for s in config.sources] == [None, (0, 3, 5), None, None]
    assert [s.norm_matched for s in config.sources] == [True, False, False, False]
    assert config.bias == "interpolate" and config.projections == ("q", "v")
    assert config.output == tmp_path / "merged" / "whisper"  # relative to the config's folder
    assert [(f.name, f.model_types) for f in config.families] == [("mine", ("mine",))]
    defaults = parse_merge_config({"target": "whisper-tiny-en", "sources": [{"model": "minilm", "lambda": 0.1}],
                                   "output": "/tmp/x"})
    assert (defaults.bias, defaults.projections, defaults.families) == ("target", ("q", "k", "v"), ())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, r"^extra: unknown key; allowed keys: \['bias', 'description', 'families'"),
        ({"output": None}, r"^output must be a folder path"),
        ({"sources": []}, r"^sources must be a non-empty list"),
        ({"sources": [{"model": "minilm", "lamda": 0.1}]}, r"^sources\[0\]\.lamda: unknown key"),
        ({"sources": [{"model": "minilm"}]}, r"^sources\[0\]\.lambda: missing"),
        ({"sources": [{"model": "minilm", "lambda": 1.5}]}, r"^sources\[0\]\.lambda must lie in \[0, 1\], got 1\.5"),
        ({"sources": [{"model": "minilm", "lambda": True}]}, r"^sources\[0\]\.lambda must be a real number"),
        ({"sources": [{"model": "minilm", "lambda": [0.1, -0.1]}]}, r"^sources\[0\]\.lambda\[1\] must lie in"),
        ({"sources": [{"model": "minilm", "lambda": {"value": 0.1}}]}, r"^sources\[0\]\.lambda\.layers: missing"),
        ({"sources": [{"model": "minilm", "lambda": {"value": 0.1, "layers": [0], "x": 1}}]},
         r"^sources\[0\]\.lambda\.x: unknown key"),
        ({"sources": [{"model": "minilm", "lambda": {"value": 2, "layers": [0]}}]},
         r"^sources\[0\]\.lambda\.value must lie in"),
        ({"sources": [{"model": "minilm", "lambda": {"value": 0.1, "layers": [0, -1]}}]},
         r"^sources\[0\]\.lambda\.layers\[1\] must be a layer index"),
        ({"sources": [{"model": "minilm", "lambda": 0.1, "layer_map": ["a"]}]},
         r"^sources\[0\]\.layer_map\[0\] must be a layer index"),
        ({"sources": [{"model": "minilm", "lambda": 0.1, "norm_matched": "yes"}]},
         r"^sources\[0\]\.norm_matched must be true or false"),
        ({"sources": [{"model": "minilm", "lambda": 0.1, "family": "nope"}]},
         r"^sources\[0\]\.family: unknown attention family 'nope'"),
        ({"sources": [{"model": 3, "lambda": 0.1}]}, r"^sources\[0\]\.model must be"),
        ({"target": {"model": "minilm", "famly": "bert"}}, r"^target\.famly: unknown key"),
        ({"bias": "sum"}, r"^bias must be one of \['target', 'interpolate'\]"),
        ({"projections": ["q", "o"]}, r"^projections must be a non-empty list of distinct names"),
        ({"projections": [{"a": 1}]}, r"^projections must be a non-empty list of distinct names"),
        ({"families": [{"name": "x", "projections": {"q": "a", "k": "b", "v": "c"}}]},
         r"^families\[0\]\.pattern: missing"),
        ({"families": [{"name": "x", "pattern": r"l\.(\d+)", "projections": {"q": "a", "k": "b", "v": "c"}}]},
         r"^families\[0\]: family 'x': pattern lacks the named group"),
        ({"families": [{"name": "x", "pattern": "(", "projections": {"q": "a", "k": "b", "v": "c"}}]},
         r"^families\[0\]\.pattern is not a valid regular expression"),
        ({"families": [{"name": "x", "pattern": r"l\.(?P<layer>\d+)\.(?P<proj>a)", "projections": {"q": "a"}}]},
         r"^families\[0\]: family 'x': projections must map exactly"),
        ({"families": [{"name": "x", "pattern": "p", "projections": {"q": "a"}, "classes": "X"}]},
         r"^families\[0\]\.classes must be a list of names"),
    ],
)
def test_schema_errors_name_the_full_key_path(change, message):
    raw = {"target": "whisper-tiny-en", "sources": [{"model": "minilm", "lambda": 0.1}], "output": "/tmp/x"}
    raw.update(change)
    with pytest.raises(ValueError, match=message):
        parse_merge_config(raw)


# -- the checkpoint -----------------------------------------------------------------------------------------------


def test_checkpoint_reloads_to_the_hand_computed_merge(folders, tmp_path, capsys):
    """Two sources, one on a layer subset through the evenly spaced map, biases interpolated: the written folder
    loads with HubertForCTC.from_pretrained and holds W = Σ λ_s W_s + (1 − Σ λ_s) W_t, everything else untouched."""
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.1),
                                   _src(folders, "bert6", {"value": 0.2, "layers": [1, 2]}), bias="interpolate"))
    rc, out, err = _run(["merge", cfg], capsys)
    assert (rc, err) == (0, "")
    assert f"wrote {tmp_path / 'out'}" in out
    target = HubertForCTC.from_pretrained(folders["target"]).state_dict()
    b3 = BertModel.from_pretrained(folders["bert3"]).state_dict()
    b6 = BertModel.from_pretrained(folders["bert6"]).state_dict()
    merged = HubertForCTC.from_pretrained(tmp_path / "out").state_dict()
    layer_map_b6 = [0, 2, 5]  # target layer i <- source layer round(i * 5 / 2), half to even: 0, 2, 5
    changed = set()
    for i in range(3):
        lam1, lam2 = 0.1, (0.2 if i in (1, 2) else 0.0)
        for p, bname in BERT_NAMES.items():
            for leaf in ("weight", "bias"):
                t = f"hubert.encoder.layers.{i}.attention.{p}_proj.{leaf}"
                s1 = b3[f"encoder.layer.{i}.attention.self.{bname}.{leaf}"]
                s2 = b6[f"encoder.layer.{layer_map_b6[i]}.attention.self.{bname}.{leaf}"]
                expected = lam1 * s1 + lam2 * s2 + (1 - lam1 - lam2) * target[t]
                assert torch.allclose(merged[t], expected, atol=1e-6), t
                changed.add(t)
    for name, value in merged.items():
        if name not in changed:
            assert torch.equal(value, target[name]), name
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "tokenizer_config.json",
            "merge_record.json"} <= files
    assert not any(name.endswith(".bin") for name in files)
    assert Wav2Vec2CTCTokenizer.from_pretrained(tmp_path / "out").get_vocab() == char_ctc_tokenizer().get_vocab()


def test_merge_record(folders, tmp_path, capsys):
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert6", 0.25, norm_matched=True)))
    assert _run(["merge", cfg], capsys)[0] == 0
    record = json.loads((tmp_path / "out" / "merge_record.json").read_text())
    assert record["mamlib_version"] == mamlib.__version__
    assert record["config"] == yaml.safe_load(cfg.read_text())
    assert record["config_sha256"] == _sha256(cfg)
    inputs = record["inputs"]
    for entry, folder in ((inputs["target"], folders["target"]), (inputs["sources"][0], folders["bert6"])):
        assert entry["files_sha256"] == {"model.safetensors": _sha256(folder / "model.safetensors")}
    assert (inputs["target"]["family"], inputs["sources"][0]["family"]) == ("hubert", "bert")
    assert record["output"]["files_sha256"]["model.safetensors"] == _sha256(tmp_path / "out" / "model.safetensors")
    assert [row["sources"][0]["source_layer"] for row in record["plan"]] == [0, 2, 5]
    assert [row["target_lambda"] for row in record["plan"]] == [0.75, 0.75, 0.75]
    assert record["plan"][0]["shapes"] == {"q": [32, 32], "k": [32, 32], "v": [32, 32]}


def test_one_source_through_the_command_is_bit_identical_to_attention_merger(folders, tmp_path, capsys):
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.1)))
    assert _run(["merge", cfg], capsys)[0] == 0
    target = HubertForCTC.from_pretrained(folders["target"]).eval()
    AttentionMerger(target, BertModel.from_pretrained(folders["bert3"]).eval()).apply(0.1)
    merged = HubertForCTC.from_pretrained(tmp_path / "out").state_dict()
    for name, value in target.state_dict().items():
        assert torch.equal(merged[name], value), name


def test_the_same_source_twice_at_half_lambda_equals_it_once(folders, tmp_path, capsys):
    once = _write(tmp_path / "a", _config(folders, _src(folders, "bert6", 0.3)))
    twice = _write(tmp_path / "b", _config(folders, _src(folders, "bert6", 0.15), _src(folders, "bert6", 0.15)))
    assert _run(["merge", once], capsys)[0] == 0
    assert _run(["merge", twice], capsys)[0] == 0
    a = HubertForCTC.from_pretrained(tmp_path / "a" / "out").state_dict()
    b = HubertForCTC.from_pretrained(tmp_path / "b" / "out").state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_multi_source_merger_in_memory():
    """One source: bit-identical to AttentionMerger. Two halves of one source: equal to it once. Restored after."""
    hubert, bert = tiny_hubert(), tiny_bert()
    single = AttentionMerger(tiny_hubert(), bert)
    single.apply([0.0, 0.1, 0.3])
    multi = MultiSourceMerger(hubert, [bert])
    multi.apply([[0.0, 0.1, 0.3]])
    for (i, p) in single.original.weights:
        assert torch.equal(multi.projection(i, p).weight, single.projection(i, p).weight)
    pair = MultiSourceMerger(tiny_hubert(), [bert, bert])
    with pair.merged([0.15, 0.15]):
        w = pair.projection(2, "k").weight.detach().clone()
    single.apply(0.3)
    assert torch.allclose(w, single.projection(2, "k").weight, atol=1e-7)
    assert torch.equal(pair.projection(2, "k").weight, pair.original.weights[(2, "k")])
    with pytest.raises(ValueError, match=r"at target layer 1 the λ of source 0, source 1 sum to 1\.1, past 1"):
        pair.apply([[0.5, 0.6, 0.5], [0.5, 0.5, 0.5]])
    three = MultiSourceMerger(tiny_hubert(), [bert, bert, bert])
    assert 0.551 + 0.333 + 0.116 > 1  # 1.0000000000000002 in floats: rounding alone is not "past 1"
    assert three.lambdas([0.551, 0.333, 0.116]) == [[0.551] * 3, [0.333] * 3, [0.116] * 3]


def test_multi_source_norm_matching_and_layer_maps_by_hand():
    """Each source has its own norm matching and layer map (a 6-layer source into 3 layers: 0, 2, 5)."""
    hubert, bert3, bert6 = tiny_hubert(), tiny_bert(seed=1), tiny_bert(seed=2, layers=6)
    t = hubert.hubert.encoder.layers[2].attention.q_proj.weight.detach().clone()
    a = bert3.encoder.layer[2].attention.self.query.weight.detach()
    b = bert6.encoder.layer[5].attention.self.query.weight.detach()
    merger = MultiSourceMerger(hubert, [bert3, bert6], norm_matched=[True, False])
    assert merger.layer_maps == [[0, 1, 2], [0, 2, 5]]
    merger.apply([0.2, 0.1])
    a_normed = a * (torch.linalg.matrix_norm(t) / torch.linalg.matrix_norm(a))
    expected = 0.2 * a_normed + 0.1 * b + 0.7 * t
    assert torch.allclose(hubert.hubert.encoder.layers[2].attention.q_proj.weight, expected, atol=1e-6)
    merger.restore()
    assert torch.equal(hubert.hubert.encoder.layers[2].attention.q_proj.weight, t)


def test_dry_run_prints_the_plan_and_writes_nothing(folders, tmp_path, capsys):
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.1),
                                   _src(folders, "bert6", {"value": 0.2, "layers": [1, 2]}, norm_matched=True)))
    before = _tree(tmp_path)
    rc, out, err = _run(["merge", cfg, "--dry-run"], capsys)
    assert (rc, err) == (0, "")
    assert _tree(tmp_path) == before and not (tmp_path / "out").exists()
    assert "dry run: nothing is written" in out
    assert "layer map [0, 2, 5] (evenly spaced), norm-matched" in out and "layer map [0, 1, 2] (identity)" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    # layer, sources[0] "L<i> × λ", sources[1] "L<j> × λ" or "·", target's weight, shape
    assert rows[0] == ["0", "L0", "×", "0.1", "·", "0.9", "(32,", "32)"]
    assert rows[1] == ["1", "L1", "×", "0.1", "L2", "×", "0.2", "0.7", "(32,", "32)"]
    assert rows[2] == ["2", "L2", "×", "0.1", "L5", "×", "0.2", "0.7", "(32,", "32)"]


def test_a_family_from_the_yaml(folders, tmp_path, capsys):
    """T5's attention (``encoder.block.N.layer.0.SelfAttention.q``) has no registered family: the error lists its
    Linear modules; a ``families:`` entry makes the merge work (T5's projections have no bias: zero)."""
    plain = _write(tmp_path / "plain", _config(folders, _src(folders, "t5", 0.1)))
    rc, _, err = _run(["merge", plain], capsys)
    assert rc == 2 and "no registered attention family" in err and "matches T5EncoderModel" in err
    assert "'encoder.block.N.layer.N.SelfAttention.q'" in err and "`families:` entry" in err
    family = {"name": "t5-encoder",
              "pattern": r"encoder\.block\.(?P<layer>\d+)\.layer\.0\.SelfAttention\.(?P<proj>q|k|v)",
              "projections": {"q": "q", "k": "k", "v": "v"}}
    cfg = _write(tmp_path / "fam", _config(folders, _src(folders, "t5", 0.1, family="t5-encoder"),
                                           bias="interpolate", families=[family]))
    rc, out, err = _run(["merge", cfg], capsys)
    assert (rc, err) == (0, ""), err
    assert "family t5-encoder" in out
    target = HubertForCTC.from_pretrained(folders["target"]).state_dict()
    t5 = T5EncoderModel.from_pretrained(folders["t5"]).state_dict()
    merged = HubertForCTC.from_pretrained(tmp_path / "fam" / "out").state_dict()
    t = "hubert.encoder.layers.2.attention.v_proj"
    expected = 0.1 * t5["encoder.block.2.layer.0.SelfAttention.v.weight"] + 0.9 * target[f"{t}.weight"]
    assert torch.allclose(merged[f"{t}.weight"], expected, atol=1e-6)
    assert torch.allclose(merged[f"{t}.bias"], 0.9 * target[f"{t}.bias"], atol=1e-7)


# -- bad input ----------------------------------------------------------------------------------------------------


def _bad_cases(folders):
    return {
        "width": ([_src(folders, "wide", 0.1)],
                  r"width mismatch at target layer 0 \(q\): target \(32, 32\) vs sources\[0\] \(.*wide\) layer 0 "
                  r"\(48, 48\)"),
        "lambda-range": ([_src(folders, "bert3", 1.5)], r"merge\.yml: sources\[0\]\.lambda must lie in \[0, 1\]"),
        "lambda-sum": ([_src(folders, "bert3", 0.6), _src(folders, "bert6", 0.6)],
                       r"at target layer 0 the λ of sources\[0\] \(.*bert3\), sources\[1\] \(.*bert6\) sum to 1\.2, "
                       r"past 1 \(0\.6 \+ 0\.6\)"),
        "lambda-sum-one-layer": ([_src(folders, "bert3", {"value": 0.7, "layers": [2]}), _src(folders, "bert6", 0.5)],
                                 r"at target layer 2 the λ of .* sum to 1\.2, past 1"),
        "lambda-length": ([_src(folders, "bert3", [0.1, 0.1])],
                          r"λ of sources\[0\] \(.*\): 2 per-layer λ values for a target of 3 layers"),
        "lambda-layers": ([_src(folders, "bert3", {"value": 0.1, "layers": [3]})],
                          r"layer index 3 is out of range for a model of 3 layers"),
        "layer-map-range": ([_src(folders, "bert3", 0.1, layer_map=[0, 1, 7])],
                            r"sources\[0\] \(.*bert3\): layer map sends target layer 2 to source layer 7, out of range "
                            r"for 3 layers"),
        "layer-map-length": ([_src(folders, "bert6", 0.1, layer_map=[0, 1])],
                             r"layer map has 2 entries; the target has 3 layers"),
        "missing-folder": ([{"model": "./no-such-model", "lambda": 0.1}],
                           r"sources\[0\]: cannot load './no-such-model': no model folder at .*no-such-model"),
        "broken-folder": ([_src(folders, "broken", 0.1)],
                          r"sources\[0\] \(.*broken\): cannot load .* \(a folder\): .*not a valid JSON"),
        "unknown-key": ([{"model": str(folders["bert3"]), "lamda": 0.1}], r"merge\.yml: sources\[0\]\.lamda: unknown"),
    }


@pytest.mark.parametrize("case", ["width", "lambda-range", "lambda-sum", "lambda-sum-one-layer", "lambda-length",
                                  "lambda-layers", "layer-map-range", "layer-map-length", "missing-folder",
                                  "broken-folder", "unknown-key"])
def test_bad_input_is_one_line_and_leaves_nothing(case, folders, tmp_path, capsys):
    sources, message = _bad_cases(folders)[case]
    cfg = _write(tmp_path, _config(folders, *sources))
    before = _tree(tmp_path)
    rc, out, err = _run(["merge", cfg], capsys)
    assert rc == 2
    assert err.startswith("mam: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert _tree(tmp_path) == before  # no output folder, no partial sibling


def test_an_existing_output_is_refused_unless_forced(folders, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.1)))
    rc, _, err = _run(["merge", cfg], capsys)
    assert rc == 2 and "already exists; choose another output or pass --force" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    rc, _, err = _run(["merge", cfg, "--force"], capsys)
    assert (rc, err) == (0, "")
    assert not (tmp_path / "out" / "keep.txt").exists() and (tmp_path / "out" / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merge.yml", "out"]  # nothing left of the old folder
    overlap = _write(tmp_path / "o", _config(folders, _src(folders, "bert3", 0.1), output=str(folders["bert3"])))
    rc, _, err = _run(["merge", overlap, "--force"], capsys)
    assert rc == 2 and "overlaps the sources[0]" in err and (folders["bert3"] / "config.json").is_file()


def test_a_failure_while_writing_leaves_no_partial_output(folders, tmp_path, capsys, monkeypatch):
    import mamlib.cli.merge_command as command

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(command, "save_processors", full_disk)
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.1)))
    rc, _, err = _run(["merge", cfg], capsys)
    assert rc == 2 and err == "mam: error: No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merge.yml"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    rc, _, _ = _run(["merge", cfg, "--force"], capsys)  # a forced run that fails keeps the old folder
    assert rc == 2 and (tmp_path / "out" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merge.yml", "out"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("target: [unclosed", r"mam: error: merge\.yml is not valid YAML: "),
        ("", r"mam: error: merge\.yml: config must be a mapping"),
    ],
)
def test_unreadable_configs(tmp_path, capsys, text, message):
    (tmp_path / "merge.yml").write_text(text)
    rc, _, err = _run(["merge", tmp_path / "merge.yml"], capsys)
    assert rc == 2 and re.match(message, err) and err.count("\n") == 1
    rc, _, err = _run(["merge", tmp_path / "nope.yml"], capsys)
    assert rc == 2 and "config file" in err and "does not exist" in err


# -- the two front doors ------------------------------------------------------------------------------------------


def test_python_dash_m_reports_one_line_and_exit_status_2(folders, tmp_path):
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.6), _src(folders, "bert3", 0.6)))
    proc = subprocess.run([sys.executable, "-m", "mamlib", "merge", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("mam: error: at target layer 0") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_mam_console_script_dry_run(folders, tmp_path):
    mam = Path(sys.executable).parent / "mam"
    assert mam.is_file(), "the console script is missing: pip install -e . (pyproject's [project.scripts])"
    cfg = _write(tmp_path, _config(folders, _src(folders, "bert3", 0.1)))
    proc = subprocess.run([str(mam), "merge", str(cfg), "--dry-run"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "dry run" in proc.stdout and "L2 × 0.1" in proc.stdout and not (tmp_path / "out").exists()


# -- large checkpoints: shards, the card, the streamed path -------------------------------------------------------


def test_max_shard_size_writes_an_index_that_loads(folders, tmp_path, capsys):
    """``--max-shard-size`` splits the weights into Hugging Face shards with their index; the merge is the same as
    in one file, and the output has a model card. A size that is not one is an argparse error (status 2)."""
    one = _write(tmp_path / "one", _config(folders, _src(folders, "bert3", 0.1)))
    many = _write(tmp_path / "many", _config(folders, _src(folders, "bert3", 0.1)))
    assert _run(["merge", one], capsys)[0] == 0
    rc, out, err = _run(["merge", many, "--max-shard-size", "40kB"], capsys)
    assert (rc, err) == (0, "")
    assert "safetensors shards of at most 40 kB" in out
    files = sorted(p.name for p in (tmp_path / "many" / "out").iterdir())
    shards = [f for f in files if re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", f)]
    assert len(shards) > 1 and "model.safetensors.index.json" in files and "model.safetensors" not in files
    assert {"README.md", "merge_record.json", "config.json", "preprocessor_config.json"} <= set(files)
    a = HubertForCTC.from_pretrained(tmp_path / "one" / "out").state_dict()
    b = HubertForCTC.from_pretrained(tmp_path / "many" / "out").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((tmp_path / "many" / "out" / "merge_record.json").read_text())
    assert record["merge"]["mode"] == "streaming" and record["merge"]["max_shard_size"] == 40_000
    assert record["dtype"] == "float32" and "state_dict_sha256" not in record["inputs"]["target"]
    with pytest.raises(SystemExit) as exit_:
        main(["merge", str(many), "--max-shard-size", "lots"])
    assert exit_.value.code == 2 and "not a size: 'lots'" in capsys.readouterr().err


def test_a_folder_without_weights_is_refused_naming_what_it_lacks(folders, tmp_path, capsys):
    """A folder with a config but no safetensors or .bin weights: one line naming the weight files looked for."""
    empty = tmp_path / "models" / "config-only"
    empty.mkdir(parents=True)
    (empty / "config.json").write_text((folders["bert3"] / "config.json").read_text())
    cfg = _write(tmp_path / "run", _config(folders, {"model": str(empty), "lambda": 0.1}))
    rc, _, err = _run(["merge", cfg], capsys)
    assert rc == 2 and err.startswith("mam: error: sources[0] (") and "cannot load" in err and err.count("\n") == 1
    assert "holds no weights (model.safetensors.index.json, model.safetensors" in err
    assert not (tmp_path / "run" / "out").exists()


def test_a_hub_model_stored_as_sharded_bin_files_is_fetched_with_its_shards(tmp_path, monkeypatch):
    """The first fetch leaves out ``*.bin``: a repo with only a ``.bin`` index and shards is fetched again with them
    (its index file alone is no weights)."""
    import fnmatch

    import huggingface_hub

    from mamlib.cli.merge_command import input_folder
    from mamlib.cli.merge_config import ModelRef

    repo = ["config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin",
            "pytorch_model-00002-of-00002.bin", "flax_model.msgpack"]

    def fake_download(repo_id, ignore_patterns):  # what the hub would hand over, one folder per fetch
        folder = tmp_path / f"fetch{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        for name in repo:
            if not any(fnmatch.fnmatch(name, pattern) for pattern in ignore_patterns):
                (folder / name).write_text("x")
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    folder = input_folder(ModelRef("org/bin-only", "hub", "org/bin-only", None, "target"))
    assert sorted(p.name for p in folder.iterdir()) == sorted(repo[:4])
