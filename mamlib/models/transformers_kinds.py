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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mamlib.models.base import SEED_OPTIONS, TINY_OPTIONS, LoadedModel, ModelKind, Spec, tiny_options

if TYPE_CHECKING:
    from transformers import BertConfig, HubertConfig, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor

#: Characters of the LibriSpeech CTC vocabulary used by facebook/hubert-large-ls960-ft ("|" separates words).
CTC_CHARACTERS = list("|ETAONIHSRDLUMWCFGYPBVK'XJQZ")


def char_ctc_tokenizer() -> Wav2Vec2CTCTokenizer:
    """A character CTC tokenizer with the LibriSpeech vocabulary layout (pad=0, ``|`` as word delimiter)."""
    from transformers import Wav2Vec2CTCTokenizer

    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", *CTC_CHARACTERS])}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab))
        return Wav2Vec2CTCTokenizer(str(path), word_delimiter_token="|", do_lower_case=False)


def char_wordpiece_tokenizer():
    """A character-level WordPiece tokenizer for the random text models: every lower-case letter, digit and
    apostrophe, word-initial or continuation (``##x``), so any normalized transcript tokenizes without ``[UNK]``."""
    from transformers import BertTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789'")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars]
    return BertTokenizer({token: i for i, token in enumerate(vocab)}, do_lower_case=True)


def speech_feature_extractor() -> Wav2Vec2FeatureExtractor:
    """The feature extractor of HuBERT-large-ft: raw 16 kHz audio, per-utterance normalisation, attention masks."""
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def hubert_large_config(**overrides: Any) -> HubertConfig:
    """The architecture of ``facebook/hubert-large-ls960-ft`` (24 layers × 1024, stable layer norm, CTC head)."""
    from transformers import HubertConfig

    return HubertConfig(**{
        "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
        "do_stable_layer_norm": True, "feat_extract_norm": "layer", "conv_bias": True, "vocab_size": 32,
        "pad_token_id": 0, "ctc_loss_reduction": "sum", **overrides,
    })


def bert_large_config(**overrides: Any) -> BertConfig:
    """The architecture of ``bert-large-uncased`` (24 layers × 1024, 16 heads)."""
    from transformers import BertConfig

    return BertConfig(**{"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                          "intermediate_size": 4096, **overrides})


def _sizes(spec: Spec, tiny: bool) -> dict[str, int]:
    """Seed torch from ``spec``; the config overrides of a tiny model (none for a full-size one)."""
    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    if not tiny:
        return {}
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=2 * hidden)


def _build_hubert(spec: Spec, tiny: bool) -> LoadedModel:
    from transformers import HubertForCTC

    sizes = _sizes(spec, tiny)
    if tiny:
        sizes.update(conv_dim=(int(spec.options.get("conv_dim", 32)),) * 7, num_conv_pos_embeddings=16)
    model = HubertForCTC(hubert_large_config(**sizes))
    return LoadedModel(model, "ctc", speech_feature_extractor(), char_ctc_tokenizer())


def _build_bert(spec: Spec, tiny: bool) -> LoadedModel:
    from transformers import BertModel

    return LoadedModel(BertModel(bert_large_config(**_sizes(spec, tiny))), "text", tokenizer=char_wordpiece_tokenizer())


def _build_vit(spec: Spec, tiny: bool) -> LoadedModel:
    """A tiny ViT on 32 px images, or ViT-B/16 (12 × 768, as google/vit-base-patch16-224-in21k)."""
    from transformers import ViTConfig, ViTModel

    sizes = _sizes(spec, tiny)
    if tiny:
        sizes.update(image_size=32, patch_size=16)
    return LoadedModel(ViTModel(ViTConfig(**sizes)), "vision")


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
    model = _from_hub(spec, AutoModelForCTC.from_pretrained)
    return LoadedModel(model, "ctc", processor.feature_extractor, processor.tokenizer)


def _build_hub_encoder(spec: Spec) -> LoadedModel:
    from transformers import AutoModel, AutoTokenizer

    model = _from_hub(spec, AutoModel.from_pretrained)
    if getattr(model.config, "vocab_size", None) is None:  # an image encoder: no tokenizer
        return LoadedModel(model, "vision")
    return LoadedModel(model, "text", tokenizer=_from_hub(spec, AutoTokenizer.from_pretrained))


_HUB_OPTIONS = frozenset({"local_files_only"})
KINDS = (
    ModelKind("tiny-hubert-ctc", TINY_OPTIONS | {"conv_dim"}, partial(_build_hubert, tiny=True)),
    ModelKind("tiny-bert", TINY_OPTIONS, partial(_build_bert, tiny=True)),
    ModelKind("random-hubert-large-ctc", SEED_OPTIONS, partial(_build_hubert, tiny=False)),
    ModelKind("random-bert-large", SEED_OPTIONS, partial(_build_bert, tiny=False)),
    ModelKind("hub-ctc", _HUB_OPTIONS, _build_hub_ctc, needs_name=True),
    ModelKind("hub-encoder", _HUB_OPTIONS, _build_hub_encoder, needs_name=True),
    ModelKind("tiny-vit", TINY_OPTIONS, partial(_build_vit, tiny=True)),
    ModelKind("random-vit-base", SEED_OPTIONS, partial(_build_vit, tiny=False)),
)

