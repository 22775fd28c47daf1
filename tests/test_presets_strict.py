"""Strict presets: every unknown key fails at load time, naming its full path and the keys allowed there."""

from __future__ import annotations

import copy

import pytest
import yaml

from mamlib.presets.schema import PRESET_DIR, load_preset, parse_preset

SMOKE = yaml.safe_load((PRESET_DIR / "smoke.yml").read_text())


def _with(path: str, value) -> dict:
    raw = copy.deepcopy(SMOKE)
    *parents, last = path.split(".")
    d = raw
    for p in parents:
        d = d[p]
    d[last] = value
    return raw


@pytest.mark.parametrize(("path", "value", "message"), [
    ("colour", "red", r"preset\.colour: unknown key; allowed keys: \['aec', 'asr', 'description'"),
    ("asr.lambda", [0.0], r"asr\.lambda: unknown key; allowed keys: \[.*'lambdas'"),
    ("aec.heads", {}, r"aec\.heads: unknown key"),
    ("asr.target.options.hidden", 8, r"asr\.target\.options: unknown key\(s\) \['hidden'\] for model kind "
                                      r"'tiny-hubert-ctc'; allowed: \[.*'hidden_size'"),
    ("aec.source.options.path", "x", r"aec\.source\.options: unknown key\(s\) \['path'\] for model kind 'tiny-vit'"),
    ("asr.target.version", 2, r"asr\.target\.version: unknown key; allowed keys: \['kind', 'name', 'options'\]"),
    ("asr.corpora.synthetic.size", 3, r"asr\.corpora\.synthetic\.size: unknown key"),
    ("asr.corpora.synthetic.options", {"voices": ["en"]}, r"asr\.corpora\.synthetic\.options\.voices: unknown key; "
                                                           r"allowed keys: \[\]"),
    ("asr.corpora.synthetic.dataset", "librispeech",
     r"asr\.corpora\.synthetic\.dataset: unknown ASR dataset 'librispeech'; known: smoke, lj-like"),
    ("asr.corpora.synthetic.path", "/tmp/nowhere", r"asr\.corpora\.synthetic\.path: dataset 'smoke' is made or "
                                                    r"shipped here, not read from a folder"),
    ("aec.data.options.n_class", 5, r"aec\.data\.options\.n_class: unknown key"),
    ("aec.head.epoch", 3, r"aec\.head\.epoch: unknown key; allowed keys: \['batch_size', 'epochs'"),
    ("aec.folds", {"train": [1, 2], "val": 4}, r"aec\.folds\.val: unknown key; allowed keys: \['dev', 'test'"),
    ("asr.target.kind", "gpt", r"asr\.target\.kind: unknown model kind 'gpt'"),
    ("asr.target.kind", None, r"asr\.target\.kind: unknown model kind None"),
    ("asr.batch_seconds", 0, r"asr\.batch_seconds must be a positive, finite number of seconds, got 0"),
    ("asr.batch_seconds", float("inf"), r"asr\.batch_seconds must be a positive, finite number of seconds, got inf"),
    ("asr.batch_seconds", "long", r"asr\.batch_seconds must be a number of seconds, got 'long'"),
    ("aec.batch_seconds", 10, r"aec\.batch_seconds: unknown key"),
    ("asr.corpora", ["synthetic"], r"asr\.corpora must be a mapping"),
    ("asr.target.options", [1], r"asr\.target\.options must be a mapping"),
    ("asr.lambdas", 0.1, r"asr\.lambdas must be a list"),
    ("asr.lambdas", [0.0, "a lot"], r"asr\.lambdas entry must be a real number"),
    ("asr.dtype", "int8", r"asr\.dtype must be one of \['float32', 'bfloat16', 'float16'\]"),
    ("extends", "smoke", r"preset\.extends: unknown key"),  # only a file may extend another
])
def test_unknown_or_bad_keys_fail_with_their_path(path, value, message):
    with pytest.raises(ValueError, match=message):
        parse_preset(_with(path, value))


def test_missing_required_key():
    raw = copy.deepcopy(SMOKE)
    del raw["asr"]["target"]
    with pytest.raises(ValueError, match=r"asr\.target: missing"):
        parse_preset(raw)


@pytest.mark.parametrize("text", ["- smoke\n- mini\n", "just a string\n", ""])
def test_a_file_that_is_not_a_mapping(tmp_path, text):
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match="must hold a mapping"):
        load_preset(str(path))


def test_invalid_yaml(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_preset(str(path))


def test_shipped_presets_are_strictly_valid():
    for name in ("smoke", "mini", "paper", "paper-bf16"):
        assert load_preset(name).name == name


def test_extends_overrides_key_by_key(tmp_path):
    path = tmp_path / "child.yml"
    path.write_text("extends: smoke\nname: child\nasr: {dtype: bfloat16, target: {options: {seed: 7}}}\n")
    child, smoke = load_preset(str(path)), load_preset("smoke")
    assert child.name == "child" and child.asr.dtype == "bfloat16" and smoke.asr.dtype == "float32"
    assert child.asr.target.options == {**smoke.asr.target.options, "seed": 7}
    assert child.asr.corpora == smoke.asr.corpora and child.aec == smoke.aec
    assert load_preset("paper-bf16").asr.dtype == "bfloat16" and load_preset("paper").asr.dtype == "float32"


def test_extends_cycle_and_unknown_base(tmp_path):
    (tmp_path / "a.yml").write_text(f"extends: {tmp_path / 'b.yml'}\nname: a\n")
    (tmp_path / "b.yml").write_text(f"extends: {tmp_path / 'a.yml'}\nname: b\n")
    with pytest.raises(ValueError, match="cycle"):
        load_preset(str(tmp_path / "a.yml"))
    (tmp_path / "c.yml").write_text("extends: nowhere\nname: c\n")
    with pytest.raises(ValueError, match="unknown preset 'nowhere'"):
        load_preset(str(tmp_path / "c.yml"))
