import pytest
import yaml

from mamlib.models.kinds import ModelSpec
from mamlib.presets.schema import load_preset


@pytest.mark.parametrize("name", ["smoke", "mini", "paper"])
def test_presets_load(name):
    cfg = load_preset(name)
    assert cfg.name == name and cfg.asr.lambdas[0] == 0.0


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'huge'.*known presets"):
        load_preset("huge")


def _write(tmp_path, **changes):
    from mamlib.presets.schema import PRESET_DIR

    raw = yaml.safe_load((PRESET_DIR / "smoke.yml").read_text())
    for key, value in changes.items():
        raw["asr"][key] = value
    path = tmp_path / "p.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_bad_fields_fail_at_load(tmp_path):
    with pytest.raises(ValueError, match="must lie in"):
        load_preset(str(_write(tmp_path, lambdas=[0.0, 1.5])))
    with pytest.raises(ValueError, match="must start at 0.0"):
        load_preset(str(_write(tmp_path, lambdas=[0.1])))
    with pytest.raises(ValueError, match="unknown model kind 'gpt'"):
        load_preset(str(_write(tmp_path, target={"kind": "gpt"})))
    with pytest.raises(ValueError, match="noise_pooling"):
        load_preset(str(_write(tmp_path, noise_pooling="layer")))
    with pytest.raises(ValueError, match="select_on"):
        load_preset(str(_write(tmp_path, corpora={"a": {"dataset": "smoke", "select_on": "nope"}})))
    with pytest.raises(ValueError, match=r"asr\.corpora\.a\.kind: a corpus names its data with 'dataset:'"):
        load_preset(str(_write(tmp_path, corpora={"a": {"kind": "smoke"}})))  # a preset written before 0.5


def test_paper_preset_paths_come_from_environment(monkeypatch):
    monkeypatch.setenv("MAM_LJSPEECH", "/data/LJSpeech-1.1")
    assert load_preset("paper").asr.corpora["ljspeech"].resolved_path() == "/data/LJSpeech-1.1"


def test_paper_preset_without_dataset_says_where_to_get_it(monkeypatch, tmp_path):
    from mamlib.sweeps.asr import load_corpora

    monkeypatch.delenv("MAM_LJSPEECH", raising=False)
    with pytest.raises(FileNotFoundError, match="keithito.com"):
        load_corpora({"lj": load_preset("paper").asr.corpora["ljspeech"]}, tmp_path)


def test_model_spec_validation():
    with pytest.raises(ValueError, match="known kinds"):
        ModelSpec(kind="nope")


def test_paper_preset_lists_every_missing_input(monkeypatch, tmp_path):
    from mamlib.presets.inputs import check_inputs

    for env in ("MAM_LJSPEECH", "MAM_VCTK", "MAM_ESC50", "MAM_BEATS_CHECKPOINT"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("MAM_VCTK", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError) as err:
        check_inputs(load_preset("paper"))
    msg = str(err.value)
    for expected in ("keithito.com", "MAM_LJSPEECH", "MAM_VCTK", "which does not exist", "ESC-50", "MAM_ESC50",
                     "MAM_BEATS_CHECKPOINT", "microsoft/unilm"):
        assert expected in msg
    monkeypatch.setenv("MAM_LJSPEECH", str(tmp_path))
    monkeypatch.setenv("MAM_VCTK", str(tmp_path))
    monkeypatch.setenv("MAM_ESC50", str(tmp_path))
    (tmp_path / "b.pt").write_bytes(b"")
    monkeypatch.setenv("MAM_BEATS_CHECKPOINT", str(tmp_path / "b.pt"))
    check_inputs(load_preset("paper"))  # everything present: no error
    check_inputs(load_preset("smoke"))
