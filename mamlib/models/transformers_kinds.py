"""The transformers model kinds: tiny and randomly initialised HuBERT, BERT and ViT, and checkpoints from a folder
or the hub (``hub-ctc``, ``hub-encoder``), with the tokenizers and feature extractors they come with.

The paper's ASR pair is HuBERT-large fine-tuned for CTC (target) and BERT-large-uncased (source), both 24 × 1024
(Sec. 4). The ``smoke`` preset builds the same architectures tiny and randomly initialised; :func:`hubert_large_config`
and :func:`bert_large_config` mirror the published configurations so that the paper preset's code paths can be tested
at full size without downloading anything. Recognizers (:mod:`mamlib.asr`) and audio encoders (:mod:`mamlib.aec`)
wrap a :class:`~mamlib.models.base.LoadedModel`; this package knows nothing of them.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mamlib.models.base import SEED_OPTIONS, TINY_OPTIONS, LoadedModel, ModelKind, Spec, tiny_options

if TYPE_CHECKING:
    from transformers import BertConfig, HubertConfig, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor

#: Characters of the LibriSpeech CTC vocabulary used by facebook/hubert-large-ls960-ft ("|" separates words).
CTC_CHARACTERS = list("|ETAONIHSRDLUMWCFGYPBVK'XJQZ")


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


def _seed(spec: Spec) -> None:
    torch.manual_seed(int(spec.options.get("seed", 0)))


def _ctc(model: nn.Module, tokenizer: Any = None, feature_extractor: Any = None) -> LoadedModel:
    return LoadedModel(model, "ctc", feature_extractor or speech_feature_extractor(), tokenizer or char_ctc_tokenizer())


def _build_tiny_hubert_ctc(spec: Spec) -> LoadedModel:
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


def _build_tiny_bert(spec: Spec) -> LoadedModel:
    from transformers import BertModel

    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    model = BertModel(bert_large_config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden,
    ))
    return LoadedModel(model, "text", tokenizer=char_wordpiece_tokenizer())


def _build_random_hubert_large(spec: Spec) -> LoadedModel:
    from transformers import HubertForCTC

    _seed(spec)
    return _ctc(HubertForCTC(hubert_large_config()))


def _build_random_bert_large(spec: Spec) -> LoadedModel:
    from transformers import BertModel

    _seed(spec)
    return LoadedModel(BertModel(bert_large_config()), "text", tokenizer=char_wordpiece_tokenizer())


def _build_tiny_vit(spec: Spec) -> LoadedModel:
    from transformers import ViTConfig, ViTModel

    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=2 * hidden, image_size=32, patch_size=16)
    return LoadedModel(ViTModel(cfg), "vision")


def _build_random_vit_base(spec: Spec) -> LoadedModel:
    from transformers import ViTConfig, ViTModel

    _seed(spec)
    return LoadedModel(ViTModel(ViTConfig()), "vision")  # ViT-B/16: 12 × 768, as google/vit-base-patch16-224-in21k


# -- hub ids and folders ---------------------------------------------------------------------------------------------

_PRESET_HINT = ". The paper preset needs hub access (or a pre-filled HF cache); the smoke and mini presets run offline."


def hub_cache_problem(repo_id: str) -> str | None:
    """What the local Hugging Face hub cache (``huggingface_hub.constants.HF_HUB_CACHE``) lacks of ``repo_id``: its
    folder, ``refs/main`` (the revision the hub's loaders read) or that revision's ``config.json``; None if nothing."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.file_download import repo_folder_name

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return None
    repo = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    ref = repo / "refs" / "main"
    if not repo.is_dir():
        return f"the hub cache has no folder {repo}"
    if not ref.is_file():
        return f"{ref} is missing (it names the revision whose files are under {repo / 'snapshots'})"
    return f"{ref} names revision {ref.read_text().strip()!r}, which has no config.json under {repo / 'snapshots'}"


def model_class_of(config: Any) -> Any:
    """The transformers class a model's config names in ``architectures`` (AutoModel when none is known)."""
    import transformers
    from transformers import AutoModel

    classes = [getattr(transformers, a) for a in (getattr(config, "architectures", None) or [])
               if hasattr(transformers, a)]
    return classes[0] if classes else AutoModel


def _from_hub(spec: Spec, load: Callable[..., Any]) -> Any:
    """``load`` (a ``from_pretrained``) of the folder or hub id ``spec.name``, honouring ``local_files_only``. A hub
    id that cannot be loaded raises an OSError saying what the local hub cache lacks."""
    try:
        return load(spec.name, local_files_only=bool(spec.options.get("local_files_only", False)))
    except OSError as err:
        if Path(spec.name).expanduser().is_dir():
            raise
        problem = hub_cache_problem(spec.name)
        raise OSError(f"cannot load {spec.name!r} from the Hugging Face hub or its local cache"
                      + (f": {problem}" if problem else f" ({err})") + _PRESET_HINT) from err


def _build_hub_ctc(spec: Spec) -> LoadedModel:
    from transformers import AutoModelForCTC, AutoProcessor

    processor = _from_hub(spec, AutoProcessor.from_pretrained)
    return _ctc(_from_hub(spec, AutoModelForCTC.from_pretrained), processor.tokenizer, processor.feature_extractor)


def _build_hub_encoder(spec: Spec) -> LoadedModel:
    from transformers import AutoModel, AutoTokenizer

    model = _from_hub(spec, AutoModel.from_pretrained)
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

