"""Building the experiments' models from a :class:`~mamlib.models.kinds.ModelSpec` with the builder its kind declares
— every kind returns one type, :class:`LoadedModel` (network plus its processors) — and the kinds of this module:
tiny and randomly initialised HuBERT, BERT and ViT, and checkpoints from a folder or the hub (:func:`load_pretrained`).

The paper's ASR pair is HuBERT-large fine-tuned for CTC (target) and BERT-large-uncased (source), both 24 × 1024
(Sec. 4). The ``smoke`` preset builds the same architectures tiny and randomly initialised; :func:`hubert_large_config`
and :func:`bert_large_config` mirror the published configurations so that the paper preset's code paths can be tested
at full size without downloading anything. Recognizers (:mod:`mamlib.asr`) and audio encoders (:mod:`mamlib.aec`)
wrap a :class:`LoadedModel`; this package knows nothing of them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from mamlib.models.kinds import SEED_OPTIONS, TINY_OPTIONS, ModelKind, ModelSpec, model_kinds

if TYPE_CHECKING:
    from transformers import BertConfig, HubertConfig, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor

#: Characters of the LibriSpeech CTC vocabulary used by facebook/hubert-large-ls960-ft ("|" separates words).
CTC_CHARACTERS = list("|ETAONIHSRDLUMWCFGYPBVK'XJQZ")

#: What a network is, for the code that wraps it: a CTC recognizer, a Whisper encoder-decoder, a BEATs audio
#: encoder, a text encoder (with a tokenizer) or an image encoder.
Architecture = Literal["ctc", "whisper", "beats", "text", "vision"]


@dataclass
class LoadedModel:
    """A built network (eval mode, on its device) with the feature extractor and tokenizer that come with it."""

    model: nn.Module
    architecture: Architecture
    feature_extractor: Any = None
    tokenizer: Any = None


def char_ctc_tokenizer() -> Wav2Vec2CTCTokenizer:
    """A character CTC tokenizer with the LibriSpeech vocabulary layout (pad=0, ``|`` as word delimiter)."""
    from transformers import Wav2Vec2CTCTokenizer

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for c in CTC_CHARACTERS:
        vocab[c] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab))
        return Wav2Vec2CTCTokenizer(str(path), word_delimiter_token="|", do_lower_case=False)


def char_wordpiece_tokenizer():
    """A character-level WordPiece tokenizer for the random text models (no vocabulary can be downloaded).

    Every lower-case letter, digit and apostrophe is a token, word-initial or continuation (``##x``), so any
    normalized transcript tokenizes without ``[UNK]``.
    """
    from transformers import BertTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789'")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n")
        return BertTokenizer(str(path), do_lower_case=True)


def speech_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """The feature extractor of HuBERT-large-ft: raw 16 kHz audio, per-utterance normalisation, attention masks."""
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def hubert_large_config(**overrides: Any) -> HubertConfig:
    """The architecture of ``facebook/hubert-large-ls960-ft`` (24 layers × 1024, stable layer norm, CTC head)."""
    from transformers import HubertConfig

    cfg = dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True, vocab_size=32,
        pad_token_id=0, ctc_loss_reduction="sum",
    )
    cfg.update(overrides)
    return HubertConfig(**cfg)


def bert_large_config(**overrides: Any) -> BertConfig:
    """The architecture of ``bert-large-uncased`` (24 layers × 1024, 16 heads)."""
    from transformers import BertConfig

    cfg = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    cfg.update(overrides)
    return BertConfig(**cfg)


def tiny_options(spec: ModelSpec) -> tuple[int, int, int, int]:
    """``(seed, hidden_size, num_layers, heads)`` of a tiny random model's spec (defaults 0, 64, 4, 4)."""
    o = spec.options
    return int(o.get("seed", 0)), int(o.get("hidden_size", 64)), int(o.get("num_layers", 4)), int(o.get("heads", 4))


def _seed(spec: ModelSpec) -> None:
    torch.manual_seed(int(spec.options.get("seed", 0)))


def _ctc(model: nn.Module, tokenizer: Any = None, feature_extractor: Any = None) -> LoadedModel:
    return LoadedModel(model, "ctc", feature_extractor or speech_feature_extractor(), tokenizer or char_ctc_tokenizer())


def _build_tiny_hubert_ctc(spec: ModelSpec) -> LoadedModel:
    from transformers import HubertForCTC

    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    conv = int(spec.options.get("conv_dim", 32))
    tokenizer = char_ctc_tokenizer()
    model = HubertForCTC(
        hubert_large_config(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
            conv_dim=(conv,) * 7, num_conv_pos_embeddings=16, vocab_size=len(tokenizer),
        )
    )
    return _ctc(model, tokenizer)


def _build_tiny_bert(spec: ModelSpec) -> LoadedModel:
    from transformers import BertModel

    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    model = BertModel(bert_large_config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
    ))
    return LoadedModel(model, "text", tokenizer=char_wordpiece_tokenizer())


def _build_random_hubert_large(spec: ModelSpec) -> LoadedModel:
    from transformers import HubertForCTC

    _seed(spec)
    return _ctc(HubertForCTC(hubert_large_config()))


def _build_random_bert_large(spec: ModelSpec) -> LoadedModel:
    from transformers import BertModel

    _seed(spec)
    return LoadedModel(BertModel(bert_large_config()), "text", tokenizer=char_wordpiece_tokenizer())


def _build_tiny_vit(spec: ModelSpec) -> LoadedModel:
    from transformers import ViTConfig, ViTModel

    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=2 * hidden, image_size=32, patch_size=16)
    return LoadedModel(ViTModel(cfg), "vision")


def _build_random_vit_base(spec: ModelSpec) -> LoadedModel:
    from transformers import ViTConfig, ViTModel

    _seed(spec)
    return LoadedModel(ViTModel(ViTConfig()), "vision")  # ViT-B/16: 12 × 768, as google/vit-base-patch16-224-in21k


# -- hub ids and folders ---------------------------------------------------------------------------------------------

_PRESET_HINT = ". The paper preset needs hub access (or a pre-filled HF cache); the smoke and mini presets run offline."


def hub_cache_problem(repo_id: str) -> str | None:
    """What is missing for ``repo_id`` in the local Hugging Face hub cache (``$HF_HUB_CACHE``, else
    ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), in the layout the hub writes:
    ``models--ORG--NAME/refs/main`` naming a revision and ``snapshots/<revision>/config.json``; None if complete."""
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    repo = cache.expanduser() / f"models--{repo_id.replace('/', '--')}"
    if not repo.is_dir():
        return f"the hub cache has no folder {repo}"
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return f"{ref} is missing (it holds the revision whose files are under {repo / 'snapshots'}/<revision>/)"
    snapshot = repo / "snapshots" / ref.read_text().strip()
    if not (snapshot / "config.json").is_file():
        return f"{ref} names revision {snapshot.name!r}, but {snapshot / 'config.json'} does not exist"
    return None


def model_class_of(config: Any) -> Any:
    """The transformers class a model's config names in ``architectures`` (AutoModel when none is known)."""
    import transformers
    from transformers import AutoModel

    classes = [getattr(transformers, a) for a in (getattr(config, "architectures", None) or [])
               if hasattr(transformers, a)]
    return classes[0] if classes else AutoModel


def load_pretrained(location: str, model_class: Any = None, *, local_files_only: bool = False,
                    hint: str = "") -> nn.Module:
    """The transformers model in a local folder or under a Hugging Face hub id — the one loader of the ``hub-ctc``
    and ``hub-encoder`` kinds and of ``mam merge``: ``model_class.from_pretrained``, by default the class the
    model's config names (:func:`model_class_of`). A hub id that cannot be loaded raises an OSError saying what the
    local hub cache lacks, followed by ``hint``."""
    from transformers import AutoConfig

    cls = model_class or model_class_of(_fetch(location, AutoConfig.from_pretrained, local_files_only, hint))
    return _fetch(location, cls.from_pretrained, local_files_only, hint)


def _fetch(location: str, load: Callable[..., Any], local_files_only: bool = False, hint: str = "") -> Any:
    try:
        return load(location, local_files_only=local_files_only)
    except OSError as err:
        if Path(location).expanduser().is_dir():
            raise
        problem = hub_cache_problem(location)
        raise OSError(f"cannot load {location!r} from the Hugging Face hub or its local cache"
                      + (f": {problem}" if problem else f" ({err})") + hint) from err


def _hub(spec: ModelSpec) -> dict[str, Any]:
    """How a ``hub-*`` spec loads: its ``local_files_only`` option, and what a failure adds to the error."""
    return {"local_files_only": bool(spec.options.get("local_files_only", False)), "hint": _PRESET_HINT}


def _from_hub(spec: ModelSpec, load: Callable[..., Any]) -> Any:
    return _fetch(spec.name, load, **_hub(spec))


def _build_hub_ctc(spec: ModelSpec) -> LoadedModel:
    from transformers import AutoModelForCTC, AutoProcessor

    processor = _from_hub(spec, AutoProcessor.from_pretrained)
    model = load_pretrained(spec.name, AutoModelForCTC, **_hub(spec))
    return _ctc(model, processor.tokenizer, processor.feature_extractor)


def _build_hub_encoder(spec: ModelSpec) -> LoadedModel:
    from transformers import AutoModel, AutoTokenizer

    model = load_pretrained(spec.name, AutoModel, **_hub(spec))
    if getattr(model.config, "vocab_size", None) is None:  # an image encoder: no tokenizer
        return LoadedModel(model, "vision")
    return LoadedModel(model, "text", tokenizer=_from_hub(spec, AutoTokenizer.from_pretrained))


_HUB_OPTIONS = frozenset({"local_files_only"})
KINDS = (
    ModelKind("tiny-hubert-ctc", TINY_OPTIONS | {"conv_dim"}, _build_tiny_hubert_ctc),
    ModelKind("tiny-bert", TINY_OPTIONS, _build_tiny_bert),
    ModelKind("random-hubert-large-ctc", SEED_OPTIONS, _build_random_hubert_large),
    ModelKind("random-bert-large", SEED_OPTIONS, _build_random_bert_large),
    ModelKind("hub-ctc", _HUB_OPTIONS, _build_hub_ctc, needs_name=True),
    ModelKind("hub-encoder", _HUB_OPTIONS, _build_hub_encoder, needs_name=True),
    ModelKind("tiny-vit", TINY_OPTIONS, _build_tiny_vit),
    ModelKind("random-vit-base", SEED_OPTIONS, _build_random_vit_base),
)


def build_model(spec: ModelSpec, device: str | torch.device = "cpu", dtype: str | None = None) -> LoadedModel:
    """The network ``spec`` describes with its processors, in eval mode on ``device`` (and in ``dtype``, a torch
    dtype name such as ``"bfloat16"``, when given)."""
    loaded = model_kinds()[spec.kind].build(spec)
    loaded.model = loaded.model.eval().to(device)
    if dtype is not None:
        loaded.model = loaded.model.to(getattr(torch, dtype))
    return loaded
