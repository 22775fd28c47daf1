"""The streamed ``mam merge``: checkpoints read tensor by tensor from safetensors headers (or mmap'd ``.bin`` files)
and written as sharded safetensors — bit for bit the book's in-memory merger in float32 and bfloat16, the target's
dtype kept, a hub id and its snapshot folder giving the same files,
prefixes and renamed keys matched, a plan from headers alone, refusals and a full disk that leave nothing behind."""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    BertConfig,
    BertForMaskedLM,
    BertModel,
    HubertForCTC,
    ViTConfig,
    ViTModel,
    WhisperConfig,
    WhisperForConditionalGeneration,
)

import mamlib
import mamlib.cli.merge_command as command
from mamlib.cli import main
from mamlib.cli.merge_command import run_merge
from mamlib.merge.families import get_family
from mamlib.merge.merger import MultiSourceMerger
from mamlib.merge.streaming import (
    Checkpoint,
    CheckpointError,
    OutputTensor,
    ShardWriter,
    locate_attention,
    parse_size,
    plan_shards,
    read_safetensors_header,
)
from tests.conftest import tiny_bert, tiny_hubert

BERT_QKV = {"q": "query", "k": "key", "v": "value"}
CARD, RECORD = command.CARD_NAME, command.RECORD_NAME


def _vit(seed: int) -> ViTModel:
    torch.manual_seed(seed)
    return ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                              image_size=32, patch_size=8)).eval()


def _set_architectures(folder: Path, architectures: list[str]) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = architectures
    (folder / "config.json").write_text(json.dumps(config))


def _to_bin(folder: Path) -> None:
    """Replace a folder's model.safetensors by a pytorch_model.bin holding the same tensors."""
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Model folders: HuBERT CTC targets (float32; bfloat16 in 20 kB shards; as a .bin), BERT sources of 3 and 6
    layers, BERT checkpoints whose key prefix differs from their config's class, and two ViTs (whose checkpoints spell
    the attention as transformers 4 did)."""
    root = tmp_path_factory.mktemp("stream-models")
    out = {name: root / name for name in ("hubert", "hubert-bf16", "hubert-bin", "bert3", "bert6", "bert-mlm-keys",
                                          "bert-bare-keys", "vit", "vit2")}
    tiny_hubert(seed=0).save_pretrained(out["hubert"])
    tiny_hubert(seed=0).to(torch.bfloat16).save_pretrained(out["hubert-bf16"], max_shard_size="20KB")
    tiny_hubert(seed=5).save_pretrained(out["hubert-bin"])
    _to_bin(out["hubert-bin"])
    tiny_bert(seed=1, layers=3).save_pretrained(out["bert3"])
    tiny_bert(seed=2, layers=6).save_pretrained(out["bert6"])
    torch.manual_seed(3)
    BertForMaskedLM(BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                               intermediate_size=64)).save_pretrained(out["bert-mlm-keys"])
    _set_architectures(out["bert-mlm-keys"], ["BertModel"])  # keys "bert.encoder...", modules "encoder..."
    tiny_bert(seed=4, layers=3).save_pretrained(out["bert-bare-keys"])
    _set_architectures(out["bert-bare-keys"], ["BertForMaskedLM"])  # keys "encoder...", modules "bert.encoder..."
    _vit(6).save_pretrained(out["vit"])
    _vit(7).save_pretrained(out["vit2"])
    return out


def _write(folder: Path, config: dict, name: str = "merge.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return folder / name


def _cfg(models, target: str, *sources: tuple[str, object, dict], output: str = "out", **extra) -> dict:
    return {"target": str(models[target]),
            "sources": [{"model": str(models[name]), "lambda": lam, **more} for name, lam, more in sources],
            "output": output, **extra}


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _state(cls, folder: Path) -> dict[str, torch.Tensor]:
    return cls.from_pretrained(folder).state_dict()


def _book_merge(cls, config: dict) -> dict[str, torch.Tensor]:
    """The reference: the book's in-memory merger (:class:`MultiSourceMerger`) applied to the target loaded whole."""
    target = cls.from_pretrained(config["target"], dtype="auto")
    sources = [AutoModel.from_pretrained(s["model"]) for s in config["sources"]]
    merger = MultiSourceMerger(target, sources, layer_maps=[s.get("layer_map") for s in config["sources"]],
                               norm_matched=[s.get("norm_matched", False) for s in config["sources"]],
                               projections=config.get("projections", ("q", "k", "v")),
                               bias=config.get("bias", "target"))
    lams = [s["lambda"]["value"] if isinstance(s["lambda"], dict) else s["lambda"] for s in config["sources"]]
    merger.apply(lams, [s["lambda"]["layers"] if isinstance(s["lambda"], dict) else None for s in config["sources"]])
    return target.state_dict()


def _streamed_equals_book(tmp_path: Path, cls, config: dict, ignore: str = "^$") -> Path:
    """Merge ``config`` with ``mam merge`` (streamed) and check every tensor equals the book's merger's; the
    output folder."""
    record = run_merge(_write(tmp_path / "stream", {**config, "output": "out"})).record
    assert record["merge"]["mode"] == "streaming"
    out = tmp_path / "stream" / "out"
    book, streamed = _book_merge(cls, config), _state(cls, out)
    assert book.keys() == streamed.keys()
    for name in book:
        if not re.search(ignore, name):
            assert book[name].dtype == streamed[name].dtype and torch.equal(book[name], streamed[name]), name
    return out


# -- bit for bit the in-memory merge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "extra"),
    [
        pytest.param([("bert3", 0.1, {})], {}, id="one-source"),
        pytest.param([("bert3", 0.1, {}), ("bert6", {"value": 0.2, "layers": [1, 2]}, {"norm_matched": True}),
                      ("bert3", [0.05, 0.0, 0.1], {})], {}, id="three-sources"),
        pytest.param([("bert6", 0.3, {"layer_map": [5, 0, 3]})], {}, id="layer-map"),
        pytest.param([("bert3", 0.1, {}), ("bert6", 0.25, {})], {"bias": "interpolate"}, id="interpolated-biases"),
        pytest.param([("bert6", 0.4, {})], {"projections": ["q", "v"], "bias": "interpolate"}, id="q-and-v-only"),
    ],
)
@pytest.mark.parametrize("target", ["hubert", "hubert-bf16"])
def test_streaming_is_bit_identical_to_the_books_merger(models, tmp_path, sources, extra, target):
    """One blend kernel: ``mam merge`` writes the bits the book's reversible merger computes, in float32 and in
    bfloat16 (both accumulate in float32 and round once)."""
    stream = _streamed_equals_book(tmp_path, HubertForCTC, _cfg(models, target, *sources, **extra))
    if target == "hubert":
        _assert_only_attention_changed(models["hubert"], stream)


def _assert_only_attention_changed(original: Path, merged: Path) -> None:
    a, b = load_file(original / "model.safetensors"), load_file(merged / "model.safetensors")
    assert a.keys() == b.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed and all(re.search(r"attention\.[qkv]_proj\.(weight|bias)$", k) for k in changed), changed


def test_checkpoint_prefixes_that_differ_from_the_module_names(models, tmp_path):
    """A target whose checkpoint has ``bert.`` keys while its config builds a BertModel, and a source whose config
    builds a BertForMaskedLM (``bert.`` modules) from a checkpoint without them: the prefix is found both ways."""
    config = _cfg(models, "bert-mlm-keys", ("bert-bare-keys", 0.2, {}), ("bert3", 0.1, {}), bias="interpolate")
    stream = _streamed_equals_book(tmp_path, BertModel, config, ignore=r"^pooler\.")  # no pooler stored: random
    record = json.loads((stream / "merge_record.json").read_text())
    assert record["inputs"]["target"]["weights"]["qkv_keys"] == "module names with the prefix 'bert.'"
    assert record["inputs"]["sources"][0]["weights"]["qkv_keys"] == "module names without the prefix 'bert.'"
    stored = load_file(stream / "model.safetensors")
    target, src = load_file(models["bert-mlm-keys"] / "model.safetensors"), load_file(
        models["bert-bare-keys"] / "model.safetensors")
    assert stored.keys() == target.keys()  # the target's own keys (and its MLM head) are kept as stored
    key = "bert.encoder.layer.2.attention.self.value.weight"
    other = load_file(models["bert3"] / "model.safetensors")["encoder.layer.2.attention.self.value.weight"]
    t = target[key]
    expected = t * (1.0 - (0.2 + 0.1)) + 0.2 * src["encoder.layer.2.attention.self.value.weight"]
    assert torch.equal(stored[key], expected + 0.1 * other)


def test_vit_checkpoints_spelled_the_old_way(models, tmp_path):
    """transformers 5 builds ViTModel with ``layers.N.attention.q_proj`` but saves ``encoder.layer.N.attention.
    attention.query``: the family's pattern finds them in the checkpoint."""
    stream = _streamed_equals_book(tmp_path, ViTModel, _cfg(models, "vit", ("vit2", 0.3, {}), bias="interpolate"))
    record = json.loads((stream / "merge_record.json").read_text())
    assert record["inputs"]["target"]["weights"]["qkv_keys"] == "the 'vit' pattern over the stored names"


def test_a_bin_target_is_read_through_an_mmap_and_written_as_safetensors(models, tmp_path):
    stream = _streamed_equals_book(tmp_path, HubertForCTC, _cfg(models, "hubert-bin", ("bert3", 0.2, {})))
    assert (stream / "model.safetensors").is_file() and not list(stream.glob("*.bin"))
    record = json.loads((stream / "merge_record.json").read_text())
    assert record["inputs"]["target"]["weights"]["format"] == "bin"
    assert list(record["inputs"]["target"]["files_sha256"]) == ["pytorch_model.bin"]


def test_only_the_qkv_tensors_are_read_whole(models, tmp_path, monkeypatch):
    read: list[str] = []
    real = Checkpoint.read
    monkeypatch.setattr(Checkpoint, "read", lambda self, key: read.append(key) or real(self, key))
    assert run_merge(_write(tmp_path, _cfg(models, "hubert", ("bert6", 0.1, {}), bias="interpolate"))).output
    assert len(read) == 2 * 3 * 3 * 2  # target and source, 3 layers, q/k/v, weight and bias
    assert all(re.search(r"(attention\.[qkv]_proj|attention\.self\.(query|key|value))\.(weight|bias)$", k)
               for k in read)


# -- dtypes, shards, index, record and card ------------------------------------------------------------------------


def test_the_plan_and_record_name_the_dtype_each_target_is_merged_in():
    from mamlib.cli.merge_command import _accumulation

    assert [_accumulation(d) for d in ("bfloat16", "float16", "float32", "float64")] == [
        "float32", "float32", "float32", "float64"]


def test_a_sharded_bfloat16_merge_keeps_the_dtype_and_writes_an_index(models, tmp_path, capsys):
    cfg = _write(tmp_path, _cfg(models, "hubert-bf16", ("bert3", 0.25, {})))
    assert main(["merge", str(cfg), "--max-shard-size", "30kB"]) == 0
    out = tmp_path / "out"
    assert "bfloat16 (merged in float32)" in capsys.readouterr().out
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    assert len(shards) > 1
    target = Checkpoint.find(models["hubert-bf16"])
    written = Checkpoint.find(out)
    assert written.format == "safetensors" and [f.name for f in written.files] == shards
    assert index["metadata"]["total_size"] == target.total_size == written.total_size
    assert {k: Path(t.file).name for k, t in written.tensors.items()} == index["weight_map"]
    for shard in written.files:
        sizes = [t.nbytes for t in written.tensors.values() if t.file == shard]
        assert sum(sizes) <= 30_000 or len(sizes) == 1
    src = load_file(models["bert3"] / "model.safetensors")
    for key in target.tensors:
        before, after = target.read(key), written.read(key)
        assert after.dtype == before.dtype and after.shape == before.shape
        m = re.fullmatch(r"hubert\.encoder\.layers\.(\d)\.attention\.([qkv])_proj\.weight", key)
        if m is None:
            assert torch.equal(after, before), key  # copied as stored (biases stay the target's)
            continue
        s = src[f"encoder.layer.{m[1]}.attention.self.{BERT_QKV[m[2]]}.weight"]
        assert torch.equal(after, (before.float() * 0.75 + 0.25 * s).to(torch.bfloat16)), key
    model = HubertForCTC.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    record = json.loads((out / "merge_record.json").read_text())
    assert record["dtype"] == "bfloat16" and record["inputs"]["target"]["dtype"] == "bfloat16"
    assert record["merge"]["accumulation_dtype"] == "float32" and record["merge"]["weight_files"][-1].endswith(
        "index.json")
    assert record["merge"]["tensors_merged"] == 9 and record["merge"]["merged_dtypes"] == {"bfloat16": 9}
    for name, digest in record["output"]["files_sha256"].items():
        assert digest == command.sha256_file(out / name), name
    for name, digest in record["inputs"]["target"]["files_sha256"].items():
        assert digest == command.sha256_file(models["hubert-bf16"] / name), name
    assert "model.safetensors.index.json" in record["inputs"]["target"]["files_sha256"]


def test_the_model_card(models, tmp_path):
    cfg = _write(tmp_path, _cfg(models, "hubert", ("bert3", 0.1, {}), ("bert6", [0.0, 0.2, 0.1], {}),
                                bias="interpolate"))
    run_merge(cfg)
    text = (tmp_path / "out" / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["base_model"] == "hubert" and front["base_model_relation"] == "merge"
    assert "# a local folder: write its Hugging Face id here before uploading" in text.splitlines()[1]
    assert "merge" in front["tags"] and front["library_name"] == "transformers"
    assert front["merged_sources"] == [{"model": "bert3", "lambda": 0.1}, {"model": "bert6", "lambda": [0.0, 0.2, 0.1]}]
    assert "| 1 | 0.1 | 0.2 | 0.7 |" in text and "| 0 | 0.1 | · | 0.9 |" in text
    assert "| sources[1] | `bert6` | bert | 3 of 6 | [0, 2, 5] | no |" in text
    assert f"mamlib {mamlib.__version__}" in text and "HubertForCTC.from_pretrained" in text
    assert cfg.read_text().strip() in text


def test_the_card_names_a_model_of_the_hugging_face_cache_by_its_id(models, tmp_path):
    snapshot = _copy_model(models["hubert"], tmp_path / "hub" / "models--acme--tiny-hubert" / "snapshots" / "0123abc")
    cfg = _write(tmp_path / "run", {"target": str(snapshot), "sources": [{"model": str(models["bert3"]),
                                                                         "lambda": 0.1}], "output": "out"})
    run_merge(cfg)
    text = (tmp_path / "run" / "out" / "README.md").read_text()
    assert text.startswith("---\nbase_model: acme/tiny-hubert\nbase_model_relation: merge\n")


def _hub_cache(folder: Path, hub: Path, repo_id: str, revision: str = "0" * 40) -> Path:
    """``folder`` laid out as the Hugging Face cache holds a download of ``repo_id``: blobs, a snapshot of links to
    them, ``refs/main``. Returns the snapshot folder."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for f in sorted(folder.iterdir()):
        blob = repo / "blobs" / command.sha256_file(f)
        blob.write_bytes(f.read_bytes())
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def test_a_hub_id_and_its_snapshot_folder_give_the_same_files(models, tmp_path, monkeypatch):
    """A bfloat16 BERT named by hub id (offline, from the cache) and by its snapshot folder: the same files, bit for
    bit and with the same modes, nothing added (merge_record.json and the card name the input as written)."""
    torch.manual_seed(8)
    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64))
    bert.to(torch.bfloat16).save_pretrained(tmp_path / "saved")
    snapshot = _hub_cache(tmp_path / "saved", tmp_path / "hub", "test-org/tiny-bert")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    outs = {}
    for name, target in (("hub", "test-org/tiny-bert"), ("folder", str(snapshot))):
        config = {"target": target, "sources": [{"model": str(models["bert3"]), "lambda": [0.1, 0.2, 0.3, 0.05],
                                                 "norm_matched": True}], "bias": "interpolate", "output": "out"}
        record = run_merge(_write(tmp_path / name, config)).record
        assert record["inputs"]["target"]["origin"] == name and record["dtype"] == "bfloat16"
        outs[name] = tmp_path / name / "out"
    hub, folder = ({p.name: p for p in outs[k].iterdir()} for k in ("hub", "folder"))
    assert hub.keys() == folder.keys() == {"config.json", "model.safetensors", CARD, RECORD}
    for name in hub:
        assert hub[name].stat().st_mode == folder[name].stat().st_mode, name
        if name not in (CARD, RECORD):
            assert hub[name].read_bytes() == folder[name].read_bytes(), name
    assert (outs["hub"] / CARD).read_text().startswith("---\nbase_model: test-org/tiny-bert\n")
    assert (outs["folder"] / CARD).read_text().startswith("---\nbase_model: test-org/tiny-bert\n")
    _streamed_equals_book(tmp_path / "book", BertModel, {"target": str(snapshot), "sources": [
        {"model": str(models["bert3"]), "lambda": [0.1, 0.2, 0.3, 0.05], "norm_matched": True}],
        "bias": "interpolate"})


# -- a plan from headers -------------------------------------------------------------------------------------------


def _sparse_checkpoint(folder: Path, model_cls, config, dtype: str = "BF16") -> int:
    """A config.json and a model.safetensors whose header is real and whose data is a hole (nothing on disk): what a
    dry run reads of a large model. Returns the file's apparent size."""
    folder.mkdir(parents=True)
    config.architectures = [model_cls.__name__]
    config.save_pretrained(folder)
    with torch.device("meta"):
        model = model_cls(config)
    tensors = [OutputTensor(k, dtype, tuple(v.shape), v.numel() * 2) for k, v in model.state_dict().items()]
    writer = ShardWriter(folder / "model.safetensors", tensors)
    writer.abort()
    os.truncate(folder / "model.safetensors", writer.expected)
    return writer.expected


def test_a_dry_run_plans_a_large_model_from_headers_alone(tmp_path, monkeypatch, capsys):
    """A Whisper-large-like target (32 + 32 layers × 1280, 1.5 B parameters, 3 GB in bfloat16) and a 1280-wide BERT:
    the plan comes from the configs and headers in seconds; no tensor is read, nothing is written."""
    size = _sparse_checkpoint(tmp_path / "whisper", WhisperForConditionalGeneration, WhisperConfig(
        d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20, decoder_attention_heads=20,
        encoder_ffn_dim=5120, decoder_ffn_dim=5120, vocab_size=51866, num_mel_bins=128))
    _sparse_checkpoint(tmp_path / "bert", BertModel, BertConfig(hidden_size=1280, num_hidden_layers=4,
                                                               num_attention_heads=20, intermediate_size=5120))
    assert size > 3e9 and os.stat(tmp_path / "whisper" / "model.safetensors").st_blocks * 512 < 1e6

    def no_reading(*args, **kwargs):
        raise AssertionError("a dry run read a tensor")

    monkeypatch.setattr(Checkpoint, "read", no_reading)
    monkeypatch.setattr(ShardWriter, "__init__", no_reading)
    cfg = _write(tmp_path, {"target": "whisper", "sources": [{"model": "bert", "lambda": 0.05}], "output": "out"})
    started = time.perf_counter()
    assert main(["merge", str(cfg), "--dry-run"]) == 0
    seconds = time.perf_counter() - started
    out = capsys.readouterr().out
    assert seconds < 60, seconds  # ~3 s on a 2-core VM, mostly building the two models on the meta device
    assert "WhisperForConditionalGeneration, family whisper-encoder, 32 attention layers" in out
    assert "target model.safetensors, 3.22 GB (bfloat16)" in out and "1 safetensors shard of at most 5 GB" in out
    assert "   31  L3 × 0.05" in out and "(1280, 1280)" in out
    assert not (tmp_path / "out").exists()


# -- refusals that leave nothing -----------------------------------------------------------------------------------


def _refused(cfg: Path, capsys, pattern: str) -> None:
    before = _tree(cfg.parent)
    assert main(["merge", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mam: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    assert _tree(cfg.parent) == before


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_a_bin_file_that_needs_unpickling_is_refused_by_name(models, tmp_path, capsys):
    bad = _copy_model(models["bert3"], tmp_path / "models" / "pickled")
    (bad / "model.safetensors").unlink()
    torch.save({"encoder.layer.0.attention.self.query.weight": torch.zeros(2), "extra": Path("/")},
               bad / "pytorch_model.bin")
    cfg = _write(tmp_path / "run", {"target": str(models["hubert"]), "sources": [{"model": str(bad), "lambda": 0.1}],
                                    "output": "out"})
    _refused(cfg, capsys, r"sources\[0\] .*cannot load .*pickled/pytorch_model\.bin: refused: "
                          r"torch\.load\(weights_only=True, mmap=True\) cannot read it")
    legacy = _copy_model(models["bert3"], tmp_path / "models" / "legacy")
    (legacy / "model.safetensors").unlink()
    torch.save(load_file(models["bert3"] / "model.safetensors"), legacy / "pytorch_model.bin",
               _use_new_zipfile_serialization=False)
    cfg = _write(tmp_path / "run2", {"target": str(models["hubert"]),
                                     "sources": [{"model": str(legacy), "lambda": 0.1}], "output": "out"})
    _refused(cfg, capsys, r"legacy/pytorch_model\.bin: refused")


def test_damaged_and_quantized_checkpoints_are_refused(models, tmp_path, capsys):
    garbage = _copy_model(models["bert3"], tmp_path / "m" / "garbage")
    (garbage / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    quantized = _copy_model(models["bert3"], tmp_path / "m" / "quantized")
    tensors = load_file(quantized / "model.safetensors")
    tensors["encoder.layer.1.attention.self.key.weight"] = torch.zeros(32, 32, dtype=torch.int8)
    save_file(tensors, quantized / "model.safetensors", metadata={"format": "pt"})
    reshaped = _copy_model(models["bert3"], tmp_path / "m" / "reshaped")
    tensors = load_file(reshaped / "model.safetensors")
    tensors["encoder.layer.0.attention.self.query.weight"] = torch.zeros(32, 16)
    save_file(tensors, reshaped / "model.safetensors", metadata={"format": "pt"})
    missing = _copy_model(models["hubert-bf16"], tmp_path / "m" / "missing-shard")
    (missing / "model-00002-of-00004.safetensors").unlink()
    cases = [
        (garbage, r"garbage/model\.safetensors: not a safetensors file \(header length"),
        (quantized, r"encoder\.layer\.1\.attention\.self\.key\.weight is stored as I8; mam merge blends only "
                    r"F16/BF16/F32/F64 tensors"),
        (reshaped, r"encoder\.layer\.0\.attention\.self\.query\.weight is stored as \[32, 16\], but the model's "
                   r"config makes it \[32, 32\]"),
    ]
    for i, (folder, pattern) in enumerate(cases):
        cfg = _write(tmp_path / f"run{i}", {"target": str(models["hubert"]),
                                            "sources": [{"model": str(folder), "lambda": 0.1}], "output": "out"})
        _refused(cfg, capsys, pattern)
    cfg = _write(tmp_path / "run-missing", {"target": str(missing), "sources": [{"model": str(models["bert3"]),
                                                                                 "lambda": 0.1}], "output": "out"})
    _refused(cfg, capsys, r"model\.safetensors\.index\.json lists shard\(s\) that are not in the folder: "
                          r"\['model-00002-of-00004\.safetensors'\]")


def test_a_disk_that_fills_up_mid_write_leaves_no_partial_output(models, tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = ShardWriter.copy_range

    def filling(self, *args):
        calls["n"] += 1
        if calls["n"] == 40:  # well into the second of several shards
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args)

    monkeypatch.setattr(ShardWriter, "copy_range", filling)
    cfg = _write(tmp_path, _cfg(models, "hubert-bf16", ("bert3", 0.1, {})))
    assert main(["merge", str(cfg), "--max-shard-size", "10kB"]) == 2
    assert capsys.readouterr().err == "mam: error: [Errno 28] No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merge.yml"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    calls["n"] = 0
    assert main(["merge", str(cfg), "--force", "--max-shard-size", "10kB"]) == 2
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merge.yml", "out"]


# -- the pieces ----------------------------------------------------------------------------------------------------


def test_locate_attention_by_names_prefixes_and_pattern():
    def stored(keys):
        return {k: type("T", (), {"shape": (4, 4), "dtype": "F32"})() for k in keys}

    names = {(i, p): f"bert.encoder.layer.{i}.attention.self.{n}" for i in range(2) for p, n in BERT_QKV.items()}
    bare = [f"encoder.layer.{i}.attention.self.{n}.{leaf}" for i in range(2) for n in BERT_QKV.values()
            for leaf in ("weight", "bias")]
    found = locate_attention(stored(bare), names, get_family("bert"))
    assert found.how == "module names without the prefix 'bert.'" and found.num_layers == 2
    assert found.weights[(1, "k")] == "encoder.layer.1.attention.self.key.weight"
    assert found.biases[(1, "k")] == "encoder.layer.1.attention.self.key.bias"
    same = locate_attention(stored(["bert." + k for k in bare]), names, get_family("bert"))
    assert same.how == "module names" and same.weights[(0, "q")] == "bert.encoder.layer.0.attention.self.query.weight"
    wrapped = locate_attention(stored(["model.bert." + k for k in bare if k.endswith("weight")]), names,
                               get_family("bert"))
    assert wrapped.how == "module names with the prefix 'model.'" and wrapped.biases[(0, "q")] is None
    vit = {(i, p): f"layers.{i}.attention.{p}_proj" for i in range(2) for p in "qkv"}
    old = [f"encoder.layer.{i}.attention.attention.{n}.weight" for i in range(2) for n in BERT_QKV.values()]
    assert locate_attention(stored(old), vit, get_family("vit")).weights[(1, "v")] == old[5]
    with pytest.raises(CheckpointError, match=r"stores no tensor for layers\.0\.attention\.q_proj\.weight .* finds "
                                              r"0 of the 6"):
        locate_attention(stored(bare), vit, get_family("vit"))
    with pytest.raises(CheckpointError, match=r"is stored as \[4, 4\], but the model's config makes it \[8, 4\]"):
        locate_attention(stored(bare), names, get_family("bert"), {k: (8, 4) for k in names})


def test_sizes_shards_and_headers(tmp_path):
    assert parse_size("5GB") == 5 * 10**9 and parse_size("500 MiB") == 500 * 2**20 and parse_size(1000) == 1000
    assert parse_size("1.5kb") == 1500 and parse_size("42") == 42
    for bad in ("five", "-1GB", "0"):
        with pytest.raises(ValueError):
            parse_size(bad)
    ts = [OutputTensor(f"t{i}", d, (n,), n * s) for i, (d, n, s) in enumerate(
        [("BF16", 10, 2), ("F32", 10, 4), ("BF16", 100, 2), ("I8", 5, 1), ("F32", 5, 4)])]
    shards = plan_shards(ts, 60)  # t2 (200 bytes) alone, first, as save_pretrained does; wider dtypes first
    assert {name: [t.key for t in s] for name, s in shards.items()} == {
        "model-00001-of-00003.safetensors": ["t2"], "model-00002-of-00003.safetensors": ["t1", "t0"],
        "model-00003-of-00003.safetensors": ["t4", "t3"]}
    assert list(plan_shards(ts, 10**6)) == ["model.safetensors"]
    writer = ShardWriter(tmp_path / "x.safetensors", [OutputTensor("a", "F32", (2, 3), 24),
                                                     OutputTensor("b", "BF16", (4,), 8)])
    writer.write_tensor(torch.arange(6.0).reshape(2, 3))
    writer.write_tensor(torch.ones(4, dtype=torch.bfloat16))
    writer.close()
    with safe_open(tmp_path / "x.safetensors", "pt") as f:
        assert torch.equal(f.get_tensor("a"), torch.arange(6.0).reshape(2, 3)) and f.metadata() == {"format": "pt"}
        assert f.get_tensor("b").dtype == torch.bfloat16
    assert (tmp_path / "x.safetensors").stat().st_size % 8 == 0
    header = read_safetensors_header(tmp_path / "x.safetensors")
    assert header["b"].offset + 8 == (tmp_path / "x.safetensors").stat().st_size
    short = ShardWriter(tmp_path / "short.safetensors", [OutputTensor("a", "F32", (2,), 8)])
    with pytest.raises(OSError, match=r"wrote \d+ of \d+ bytes"):
        short.close()
