"""The YAML of ``mam merge``: a strictly validated description of one multi-source attention merge.

Example (every key shown; ``target``, ``sources`` and ``output`` are required)::

    target: whisper-tiny-en              # a packaged model name, a local folder, or a Hugging Face hub id
    sources:
      - model: minilm                    # same three origins as the target
        lambda: 0.05                     # one value for every target layer ...
        norm_matched: true               # rescale each source matrix to the target matrix's Frobenius norm
      - model: vit-s14
        lambda: {value: 0.05, layers: [1, 2]}   # ... a value on some target layers (0 elsewhere) ...
        layer_map: [0, 4, 7, 11]         # target layer i takes source layer layer_map[i] (default: evenly spaced)
      # - model: ./my-bert               # ... or one value per target layer: lambda: [0.0, 0.05, 0.1, 0.05]
      #   family: my-encoder             # a registered family or one of `families` below (default: detected)
    bias: target                         # target (keep the target's biases) | interpolate
    projections: [q, k, v]               # which attention projections to merge
    output: merged-whisper               # a new folder; refused if it exists, unless --force
    families:                            # optional: attention families for models no built-in family knows
      - name: my-encoder
        pattern: 'blocks\\.(?P<layer>\\d+)\\.attn\\.(?P<proj>wq|wk|wv)'
        projections: {q: wq, k: wk, v: wv}

Relative paths (model folders, ``output``) are taken from the YAML file's own folder. Every error names the full
path of the offending key (``sources[1].lambda.layers``). Reading a config imports no model class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

import yaml

from mamlib.merge.families import PROJECTIONS, AttentionFamily, family_from_dict
from mamlib.merge.merger import BiasMode
from mamlib.merge.schedule import as_lambda, lambda_values, layer_indices
from mamlib.models.kinds import attention_families, packaged_models
from mamlib.presets.schema import check_keys, yaml_keys


class MergeError(Exception):
    """A merge that cannot be done as configured; the message is one line naming the problem."""


@dataclass(frozen=True)
class ModelRef:
    """A model named in the config: ``model`` as written; ``origin``, ``"packaged"``, ``"folder"`` (``location`` is
    the resolved path) or ``"hub"`` (``location`` is the hub id); an optional family name; ``where`` in the config
    it is (``target``, ``sources[0]``)."""

    model: str
    origin: str
    location: str
    family: str | None
    where: str

    @property
    def label(self) -> str:
        return self.where if self.where == "target" else f"{self.where} ({self.model})"


@dataclass(frozen=True)
class SourceConfig:
    """One entry of ``sources``: the model, its λ (a number or one per target layer), an optional layer subset for a
    single λ (Eq. 2), an optional layer map and norm matching."""

    ref: ModelRef
    lam: float | tuple[float, ...]
    layers: tuple[int, ...] | None
    layer_map: tuple[int, ...] | None
    norm_matched: bool


@dataclass(frozen=True)
class MergeConfig:
    """A validated ``mam merge`` config; ``raw`` is the YAML as parsed and ``text`` the file as written."""

    target: ModelRef
    sources: tuple[SourceConfig, ...]
    output: Path
    bias: BiasMode
    projections: tuple[str, ...]
    families: tuple[AttentionFamily, ...]
    raw: Mapping[str, Any]
    text: str = ""
    path: Path | None = None


# The YAML keys are the fields above: a source is a model (with its family) and its fields, λ the YAML's `lambda`.
_TOP_KEYS = yaml_keys(MergeConfig, drop=("raw", "text", "path"), add=("description",))
_TARGET_KEYS = yaml_keys(ModelRef, drop=("origin", "location", "where"))
_SOURCE_KEYS = _TARGET_KEYS | yaml_keys(SourceConfig, drop=("ref", "lam", "layers"), add=("lambda",))
_FAMILY_KEYS = yaml_keys(AttentionFamily, drop=("_regex",))


def load_merge_config(path: str | Path) -> MergeConfig:
    """Read and validate the YAML file ``path`` (relative paths inside it are taken from its folder)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MergeError(f"config file {str(path)!r} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")  # no newline translation: the record's hash is of the file's bytes
        config = parse_merge_config(yaml.safe_load(text), base_dir=path.resolve().parent)
    except UnicodeDecodeError as err:  # a ValueError: caught first
        raise MergeError(f"{path.name} is not UTF-8 text: {err}") from None
    except yaml.YAMLError as err:
        raise MergeError(f"{path.name} is not valid YAML: {' '.join(str(err).split())}") from None
    except ValueError as err:
        raise MergeError(f"{path.name}: {err}") from None
    return replace(config, text=text, path=path.resolve())


def parse_merge_config(raw: Any, base_dir: str | Path = ".") -> MergeConfig:
    """Validate the parsed YAML ``raw``; a ValueError names the full path of the first offending key."""
    base = Path(base_dir).resolve()
    try:
        check_keys(raw, _TOP_KEYS, "config", required=("target", "sources", "output"))
    except ValueError as err:  # top-level keys are named without a prefix: "outptu: unknown key; ..."
        raise ValueError(str(err).removeprefix("config.")) from None
    t = raw["target"]  # a model, or {model, family}
    t = {"model": t} if isinstance(t, str) else check_keys(t, _TARGET_KEYS, "target", required=("model",))
    target = _ref(t, "target", base)
    if not isinstance(sources := raw["sources"], list) or not sources:
        raise ValueError(f"sources must be a non-empty list of sources (each with model and lambda), got {sources!r}")
    parsed = tuple(_source(s, f"sources[{i}]", base) for i, s in enumerate(sources))
    if not isinstance(output := raw["output"], str) or not output.strip():
        raise ValueError(f"output must be a folder path, got {output!r}")
    if (bias := raw.get("bias", "target")) not in get_args(BiasMode):
        raise ValueError(f"bias must be one of {list(get_args(BiasMode))}, got {bias!r}")
    projections = raw.get("projections", list(PROJECTIONS))
    if (not isinstance(projections, list) or not projections or any(p not in PROJECTIONS for p in projections)
            or len(set(projections)) != len(projections)):
        raise ValueError(f"projections must be a non-empty list of distinct names from {list(PROJECTIONS)}, "
                         f"got {projections!r}")
    if not isinstance(families := raw.get("families") or [], list):
        raise ValueError(f"families must be a list of families (name, pattern, projections), got {families!r}")
    fams = tuple(family_from_dict(check_keys(f, _FAMILY_KEYS, f"families[{i}]", ("name", "pattern", "projections")),
                                  f"families[{i}]") for i, f in enumerate(families))
    names = [f.name for f in fams]
    if len(set(names)) != len(names):
        raise ValueError(f"families: names must be distinct, got {names}")
    for ref in (target, *(s.ref for s in parsed)):
        if ref.family is not None and ref.family not in names and ref.family not in attention_families():
            raise ValueError(f"{ref.where}.family: unknown attention family {ref.family!r}; "
                             f"registered: {sorted(attention_families())}, in this file: {names}")
    return MergeConfig(
        target=target, sources=parsed, output=base / Path(output).expanduser(), bias=bias,
        projections=tuple(p for p in PROJECTIONS if p in projections), families=fams, raw=raw,
    )


def _ref(d: Mapping[str, Any], where: str, base_dir: Path) -> ModelRef:
    """The model that the target or a source names (``model`` and an optional ``family``), and where it comes from:
    a packaged name, an existing folder (relative to ``base_dir``), a path that does not exist (an error), or else a
    hub id."""
    model, family = d["model"], d.get("family")
    if family is not None and (not isinstance(family, str) or not family):
        raise ValueError(f"{where}.family must name an attention family, got {family!r}")
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{where}.model must be a packaged model name, a folder or a hub id, got {model!r}")
    if model in packaged_models():
        return ModelRef(model, "packaged", model, family, where)
    path = base_dir / Path(model).expanduser()  # an absolute path as it is
    if path.is_dir():
        return ModelRef(model, "folder", str(path.resolve()), family, where)
    looks_like_path = model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model
    if looks_like_path or path.exists():
        raise MergeError(f"{where}: cannot load {model!r}: no model folder at {path}")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model):
        raise MergeError(f"{where}: cannot load {model!r}: neither a packaged model {packaged_models()}, "
                         "a folder, nor a hub id")
    return ModelRef(model, "hub", model, family, where)


def _source(d: Any, where: str, base: Path) -> SourceConfig:
    ref = _ref(check_keys(d, _SOURCE_KEYS, where, required=("model", "lambda")), where, base)
    lam, layers = _lambda(d["lambda"], f"{where}.lambda")
    layer_map = None if d.get("layer_map") is None else tuple(layer_indices(d["layer_map"], f"{where}.layer_map"))
    if not isinstance(norm := d.get("norm_matched", False), bool):
        raise ValueError(f"{where}.norm_matched must be true or false, got {norm!r}")
    return SourceConfig(ref, lam, layers, layer_map, norm)


def _lambda(d: Any, where: str) -> tuple[float | tuple[float, ...], tuple[int, ...] | None]:
    """``lambda``: a number, one number per target layer, or ``{value: x, layers: [...]}`` (Eq. 1, 3, 2), read with
    the schedule's parsers (:mod:`mamlib.merge.schedule`), as the presets are; the table is made against the models."""
    if isinstance(d, Mapping):
        check_keys(d, frozenset({"value", "layers"}), where, required=("value", "layers"))
        return as_lambda(d["value"], where=f"{where}.value"), tuple(layer_indices(d["layers"], f"{where}.layers"))
    if isinstance(d, list):
        if not d:
            raise ValueError(f"{where}: an empty list; give one λ per target layer")
        return lambda_values(d, where), None
    return as_lambda(d, where=where), None

