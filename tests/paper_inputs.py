"""The paper preset's inputs as a paper user has them on disk, in miniature (the rehearsal of ``tests/
test_paper_rehearsal.py``): a Hugging Face hub cache holding the three hub ids with tiny random weights, LJ Speech,
VCTK and ESC-50 in their official layouts, and a BEATs checkpoint saved as the BEATs repository saves it.

Everything is the real format at toy size: the paper's depths (24 layers for HuBERT and BERT, 12 for BEATs and ViT,
so Table 2's block grids are the paper's) at width 32; a few dozen short clips of noise-shaped tones at each
corpus's own sample rate and file type. Models are random, so the error rates mean nothing; what is rehearsed is
that every chapter reads these inputs and runs the paper's protocol end to end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mamlib.asr.corpora import split_of

HUBERT_ID = "facebook/hubert-large-ls960-ft"
BERT_ID = "bert-large-uncased"
VIT_ID = "google/vit-base-patch16-224-in21k"
WIDTH, HEADS = 32, 4
#: LJ Speech lines as ``raw|normalized`` (numbers as digits in the raw text, spelled out in the normalized one).
LJ_TEXTS = [
    ("in 1899, the press moved to a new house", "in eighteen ninety-nine, the press moved to a new house"),
    ("five pounds were paid for the type", "five pounds were paid for the type"),
    ("the clock struck 10 as they left", "the clock struck ten as they left"),
    ("a printer's mark stood on the title page", "a printer's mark stood on the title page"),
    ("the commission heard 552 witnesses", "the commission heard five hundred fifty-two witnesses"),
    ("they walked along the river at dawn", "they walked along the river at dawn"),
]
VCTK_TEXTS = ["Please call Stella.", "Ask her to bring these things with her from the store.",
              "Six spoons of fresh snow peas.", "We also need a small plastic snake.", "She can scoop these things.",
              "The rainbow is a division of white light.", "These take the shape of a long round arch.",
              "People look, but no one ever finds it.", "Some have accepted it as a miracle.",
              "When the sunlight strikes raindrops in the air, they act as a prism.", "Throughout the centuries.",
              "The actual primary rainbow is caused by reflection."]
#: Only the device and the amount of training differ from the paper preset.
REHEARSAL = """\
extends: paper
name: paper-rehearsal
device: cpu
asr: {finetune: {max_steps: 1, mixed_precision: bf16}}
aec: {finetune: {max_steps: 1, mixed_precision: "no"}}
"""
ESC50_CATEGORIES = ["dog", "rooster", "rain", "sea_waves", "crackling_fire"]


def _revision(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def hub_snapshot(hub: Path, repo_id: str) -> Path:
    """The snapshot folder of ``repo_id`` in a hub cache laid out as the hub writes it (``refs/main`` names it)."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    revision = _revision(repo_id)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def _characters() -> list[str]:
    return list("abcdefghijklmnopqrstuvwxyz0123456789'.,-")


def write_hub_models(hub: Path, seed: int = 0) -> None:
    """HuBERT-CTC (with its character tokenizer and feature extractor), BERT (with WordPiece files) and ViT (with
    its image processor) under their hub ids, 24/24/12 layers × 32."""
    from transformers import (
        BertConfig,
        BertForPreTraining,
        BertTokenizer,
        HubertConfig,
        HubertForCTC,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Processor,
    )

    torch.manual_seed(seed)
    snap = hub_snapshot(hub, HUBERT_ID)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for c in "ETAONIHSRDLUMWCFGYPBVK'XJQZ":
        vocab[c] = len(vocab)
    (snap / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(snap / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(snap)
    HubertForCTC(HubertConfig(
        hidden_size=WIDTH, num_hidden_layers=24, num_attention_heads=HEADS, intermediate_size=2 * WIDTH,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=len(vocab),
        do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True, pad_token_id=0,
    )).save_pretrained(snap)

    snap = hub_snapshot(hub, BERT_ID)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_characters(), *(f"##{c}" for c in _characters())]
    (snap / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(snap / "vocab.txt"), do_lower_case=True).save_pretrained(snap)
    BertForPreTraining(BertConfig(vocab_size=len(words), hidden_size=WIDTH, num_hidden_layers=24,
                                  num_attention_heads=HEADS, intermediate_size=2 * WIDTH)).save_pretrained(snap)

    snap = hub_snapshot(hub, VIT_ID)
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(snap)
    ViTModel(ViTConfig(hidden_size=WIDTH, num_hidden_layers=12, num_attention_heads=HEADS,
                       intermediate_size=2 * WIDTH, image_size=224, patch_size=16)).save_pretrained(snap)


def write_beats_checkpoint(path: Path, seed: int = 0) -> Path:
    """A BEATs checkpoint ``{"cfg", "model"}`` of 12 layers × 32, as the BEATs repository's ``torch.save`` writes."""
    from mamlib.models.beats import BEATs, tiny_beats_config

    torch.manual_seed(seed)
    model = BEATs(tiny_beats_config(layers=12, dim=WIDTH, heads=HEADS))
    torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, path)
    return path


def _sound(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * rng.uniform(120, 800) * t) * rng.uniform(0.1, 0.4)
    return (tone + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def _ids_covering_splits(make: Callable[[int], str], key: Callable[[str], str], per_split: dict[str, int]
                         ) -> list[str]:
    """Ids ``make(1), make(2), …`` until every split holds at least ``per_split[split]`` of them."""
    counts = dict.fromkeys(per_split, 0)
    out, i = [], 0
    while any(counts[s] < n for s, n in per_split.items()):
        i += 1
        uid = make(i)
        part = split_of(key(uid))
        if counts[part] < per_split[part]:
            counts[part] += 1
            out.append(uid)
    return out


def write_ljspeech(root: Path, seed: int = 0) -> Path:
    """``LJSpeech-1.1/``: ``metadata.csv`` (``id|raw|normalized``) and ``wavs/*.wav`` at 22.05 kHz."""
    base = root / "LJSpeech-1.1"
    (base / "wavs").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ids = _ids_covering_splits(lambda i: f"LJ001-{i:04d}", lambda uid: uid, {"dev": 3, "test": 3, "train": 8})
    lines = []
    for k, uid in enumerate(sorted(ids)):
        raw, normalized = LJ_TEXTS[k % len(LJ_TEXTS)]
        lines.append(f"{uid}|{raw}|{normalized}")
        sf.write(str(base / "wavs" / f"{uid}.wav"), _sound(rng, rng.uniform(0.8, 1.6), 22050), 22050,
                 subtype="PCM_16")
    (base / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return base


def write_vctk(root: Path, seed: int = 0, speakers: tuple[str, ...] = ("p225", "p226")) -> Path:
    """``VCTK-Corpus-0.92/``: ``txt/pXXX/pXXX_NNN.txt`` and ``wav48_silence_trimmed/pXXX/pXXX_NNN_mic{1,2}.flac``
    at 48 kHz; every speaker reads the same sentences (as in VCTK), so a sentence's split holds all its readings."""
    from mamlib.asr.metrics import normalize_transcript

    base = root / "VCTK-Corpus-0.92"
    rng = np.random.default_rng(seed)
    for spk in speakers:
        (base / "txt" / spk).mkdir(parents=True)
        (base / "wav48_silence_trimmed" / spk).mkdir(parents=True)
        for k, text in enumerate(VCTK_TEXTS, start=1):
            uid = f"{spk}_{k:03d}"
            (base / "txt" / spk / f"{uid}.txt").write_text(text + "\n", encoding="utf-8")
            wave = _sound(rng, rng.uniform(0.8, 1.4), 48000)
            for mic in ("mic1", "mic2"):
                sf.write(str(base / "wav48_silence_trimmed" / spk / f"{uid}_{mic}.flac"), wave, 48000, format="FLAC")
    parts = {split_of(normalize_transcript(t)) for t in VCTK_TEXTS}
    assert parts == {"dev", "test", "train"}, f"the VCTK sentences must cover every split, got {parts}"
    return base


def write_esc50(root: Path, seed: int = 0, per_fold: int = 1) -> Path:
    """``ESC-50-master/``: ``meta/esc50.csv`` and ``audio/*.wav``, 5 s at 44.1 kHz, five folds."""
    base = root / "ESC-50-master"
    (base / "meta").mkdir(parents=True)
    (base / "audio").mkdir()
    rng = np.random.default_rng(seed)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for target, category in enumerate(ESC50_CATEGORIES):
        for fold in range(1, 6):
            for take in "ABCDEFGH"[:per_fold]:
                src = 100000 + 1000 * target + 10 * fold
                name = f"{fold}-{src}-{take}-{target}.wav"
                rows.append(f"{name},{fold},{target},{category},{target < 2},{src},{take}")
                sf.write(str(base / "audio" / name), _sound(rng, 5.0, 44100), 44100, subtype="PCM_16")
    (base / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return base


def write_paper_inputs(root: Path) -> dict[str, str]:
    """Everything the paper preset reads, under ``root``; returns the environment a paper user sets."""
    write_hub_models(root / "hf" / "hub")
    return {
        "HF_HOME": str(root / "hf"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MAM_LJSPEECH": str(write_ljspeech(root / "data")),
        "MAM_VCTK": str(write_vctk(root / "data")),
        "MAM_ESC50": str(write_esc50(root / "data")),
        "MAM_BEATS_CHECKPOINT": str(write_beats_checkpoint(root / "data" / "BEATs_iter3_plus_AS2M.pt")),
    }
