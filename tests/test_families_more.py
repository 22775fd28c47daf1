"""Attention families detected from parameter names: every family the merge command supports, on tiny random
transformers models built from their configs (offline), and the error an unknown model gets."""

from __future__ import annotations

import pytest
import torch
import transformers as T
from torch import nn

from mamlib.merge.families import (
    attention_modules,
    detect_family,
    linear_module_layout,
    suggest_family,
)
from mamlib.merge.merger import AttentionMerger
from tests.conftest import tiny_hubert

H, LAYERS = 32, 2
_AUDIO = dict(hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=64,
              conv_dim=(16,) * 7, num_conv_pos_embeddings=16, vocab_size=32)
_TEXT = dict(hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=64)
_VISION = dict(_TEXT, image_size=32, patch_size=16)
_DISTIL = dict(dim=H, n_layers=LAYERS, n_heads=4, hidden_dim=64)
_WHISPER = dict(d_model=H, encoder_layers=LAYERS, decoder_layers=LAYERS, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100, pad_token_id=0,
                bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, max_source_positions=32)


def _clip_config() -> T.CLIPConfig:
    return T.CLIPConfig(text_config=dict(_TEXT), vision_config=dict(_VISION))


# (model class, config, expected family, path from the model to the module list holding the attention layers,
#  attribute path from one layer to its q/k/v modules)
CASES = [
    ("Wav2Vec2Model", lambda: T.Wav2Vec2Config(**_AUDIO), "wav2vec2", "encoder.layers", "attention.{}_proj"),
    ("Wav2Vec2ForCTC", lambda: T.Wav2Vec2Config(**_AUDIO), "wav2vec2", "wav2vec2.encoder.layers", "attention.{}_proj"),
    ("Wav2Vec2ForCTC", lambda: T.Wav2Vec2Config(**_AUDIO, do_stable_layer_norm=True, feat_extract_norm="layer"),
     "wav2vec2", "wav2vec2.encoder.layers", "attention.{}_proj"),
    ("WavLMModel", lambda: T.WavLMConfig(**_AUDIO), "wavlm", "encoder.layers", "attention.{}_proj"),
    ("WavLMForCTC", lambda: T.WavLMConfig(**_AUDIO), "wavlm", "wavlm.encoder.layers", "attention.{}_proj"),
    ("Data2VecAudioModel", lambda: T.Data2VecAudioConfig(**_AUDIO), "data2vec-audio", "encoder.layers",
     "attention.{}_proj"),
    ("Data2VecAudioForCTC", lambda: T.Data2VecAudioConfig(**_AUDIO), "data2vec-audio",
     "data2vec_audio.encoder.layers", "attention.{}_proj"),
    ("HubertModel", lambda: T.HubertConfig(**_AUDIO), "hubert", "encoder.layers", "attention.{}_proj"),
    ("HubertForCTC", lambda: T.HubertConfig(**_AUDIO), "hubert", "hubert.encoder.layers", "attention.{}_proj"),
    ("RobertaModel", lambda: T.RobertaConfig(**_TEXT), "roberta", "encoder.layer", "attention.self.{}"),
    ("RobertaForMaskedLM", lambda: T.RobertaConfig(**_TEXT), "roberta", "roberta.encoder.layer",
     "attention.self.{}"),
    ("BertModel", lambda: T.BertConfig(**_TEXT), "bert", "encoder.layer", "attention.self.{}"),
    ("BertForMaskedLM", lambda: T.BertConfig(**_TEXT), "bert", "bert.encoder.layer", "attention.self.{}"),
    ("DistilBertModel", lambda: T.DistilBertConfig(**_DISTIL), "distilbert", "transformer.layer", "attention.{}_lin"),
    ("DistilBertForSequenceClassification", lambda: T.DistilBertConfig(**_DISTIL), "distilbert",
     "distilbert.transformer.layer", "attention.{}_lin"),
    ("CLIPVisionModel", lambda: T.CLIPVisionConfig(**_VISION), "clip-vision", "encoder.layers", "self_attn.{}_proj"),
    ("CLIPModel", _clip_config, "clip-vision", "vision_model.encoder.layers", "self_attn.{}_proj"),
    ("ViTModel", lambda: T.ViTConfig(**_VISION), "vit", "layers", "attention.{}_proj"),
    ("Dinov2Model", lambda: T.Dinov2Config(**_VISION), "dinov2", "encoder.layer", "attention.{}_proj"),
    ("WhisperForConditionalGeneration", lambda: T.WhisperConfig(**_WHISPER), "whisper-encoder",
     "model.encoder.layers", "self_attn.{}_proj"),
    ("WhisperModel", lambda: T.WhisperConfig(**_WHISPER), "whisper-encoder", "encoder.layers", "self_attn.{}_proj"),
]
_LONG = {"q": "query", "k": "key", "v": "value"}


def _get(obj: object, path: str) -> object:
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)  # type: ignore[index]
    return obj


def _expected(model: nn.Module, layers_path: str, proj_path: str, layer: int, proj: str) -> nn.Module:
    name = _LONG[proj] if proj_path.endswith(".{}") else proj
    return _get(_get(model, layers_path)[layer], proj_path.format(name))  # type: ignore[index]


@pytest.mark.parametrize(("cls", "config", "family", "layers_path", "proj_path"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_family_detected_from_parameter_names(cls, config, family, layers_path, proj_path):
    torch.manual_seed(0)
    model = getattr(T, cls)(config()).eval()
    fam = detect_family(model)
    assert fam.name == family
    found = attention_modules(model, fam)
    assert sorted(found) == list(range(LAYERS))
    for layer in range(LAYERS):
        for proj in ("q", "k", "v"):
            assert found[layer][proj] is _expected(model, layers_path, proj_path, layer, proj), (layer, proj)


def test_clip_model_merges_its_vision_tower_only():
    torch.manual_seed(0)
    clip = T.CLIPModel(_clip_config()).eval()
    modules = attention_modules(clip, detect_family(clip))
    vision = {id(m) for m in clip.vision_model.modules()}
    assert all(id(m) in vision for projs in modules.values() for m in projs.values())


def test_whisper_decoder_is_left_out():
    torch.manual_seed(0)
    whisper = T.WhisperForConditionalGeneration(T.WhisperConfig(**_WHISPER)).eval()
    modules = attention_modules(whisper, detect_family(whisper))
    decoder = {id(m) for m in whisper.model.decoder.modules()}
    assert not any(id(m) in decoder for projs in modules.values() for m in projs.values())


def test_beats_keeps_its_family():
    from mamlib.models.beats import BEATs, tiny_beats_config

    beats = BEATs(tiny_beats_config(layers=2, dim=32, heads=4))
    assert detect_family(beats).name == "beats"
    assert attention_modules(beats, "beats")[1]["q"] is beats.encoder.layers[1].self_attn.q_proj


def test_distilbert_into_wavlm_by_hand():
    """A cross-family merge (q_lin/k_lin/v_lin into q_proj/k_proj/v_proj) equals Eq. 1 computed by hand."""
    torch.manual_seed(0)
    wavlm = T.WavLMForCTC(T.WavLMConfig(**_AUDIO)).eval()
    distil = T.DistilBertModel(T.DistilBertConfig(**_DISTIL)).eval()
    w_t = wavlm.wavlm.encoder.layers[1].attention.v_proj.weight.detach().clone()
    w_s = distil.transformer.layer[1].attention.v_lin.weight.detach().clone()
    with AttentionMerger(wavlm, distil).merged(0.3):
        got = wavlm.wavlm.encoder.layers[1].attention.v_proj.weight
        assert torch.allclose(got, 0.3 * w_s + 0.7 * w_t, atol=1e-7)
    assert torch.equal(wavlm.wavlm.encoder.layers[1].attention.v_proj.weight, w_t)


def test_hubert_family_name_is_unchanged_for_hubert_models():
    assert detect_family(tiny_hubert()).name == "hubert"


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(4, 4) for _ in range(4))


class _Toy(nn.Module):
    """Named unlike every family registered anywhere in the test session (test_merge registers ``blocks.N.w*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack = nn.ModuleList([_Block(), _Block(), _Block()])
        self.head = nn.Linear(4, 2)


def test_unknown_model_lists_its_linear_modules_and_how_to_register():
    toy = _Toy()
    assert linear_module_layout(toy) == ["stack.N.wq", "stack.N.wk", "stack.N.wv", "stack.N.wo", "head"]
    with pytest.raises(ValueError) as info:
        detect_family(toy)
    msg = str(info.value)
    assert "\n" not in msg
    assert "matches _Toy" in msg and "['stack.N.wq', 'stack.N.wk', 'stack.N.wv', 'stack.N.wo', 'head']" in msg
    assert "mamlib.register_family(mamlib.AttentionFamily(" in msg and "`families:` entry" in msg
    # The suggested family is spelled out and fits the model.
    assert r"pattern=r'stack\.(?P<layer>\d+)\.(?P<proj>wq|wk|wv)'" in msg
    guess = suggest_family(toy, "toy")
    assert guess is not None and attention_modules(toy, guess)[2]["k"] is toy.stack[2].wk


def test_no_suggestion_without_a_plain_layout():
    assert suggest_family(nn.Sequential(nn.Linear(2, 2))) is None
    with pytest.raises(ValueError, match=r"its Linear modules \(N = layer index\): \['0'\].*pattern=r'blocks"):
        detect_family(nn.Sequential(nn.Linear(2, 2)))


def test_model_type_names_the_family_when_the_class_is_not_listed():
    """CamembertModel is in no family's ``classes``; BERT's and RoBERTa's patterns find the very same modules in it,
    and its ``config.model_type`` ("camembert", listed by RoBERTa's family) picks the name."""
    from mamlib.merge.families import get_family, matching_families, registered_families

    torch.manual_seed(0)
    model = T.CamembertModel(T.CamembertConfig(**_TEXT)).eval()
    fits = [f.name for f, _ in matching_families(model, registered_families().values())]
    assert {"bert", "roberta"} <= set(fits) and fits[0] == "bert"
    assert "CamembertModel" not in get_family("roberta").classes
    assert detect_family(model).name == "roberta"
