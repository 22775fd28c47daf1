"""Presets: one typed, strictly validated configuration per scale (``smoke``, ``mini``, ``paper``), read from YAML
beside this module or from any YAML path; chapters name one in their ``parameters`` cell. A bad preset fails when it
is loaded: an unknown key anywhere (a model's ``options`` for its kind, a corpus's for its dataset included) names its
full path and the keys allowed there. Checking names never imports a model class."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import yaml

from mamlib.common.audio import check_seconds_budget
from mamlib.common.datasets import Dataset, pick
from mamlib.common.paths import resolve_path
from mamlib.finetune.settings import TrainSettings
from mamlib.merge.schedule import lambda_values, layer_indices
from mamlib.merge.sources import TABLE1_VARIANTS, NoiseSettings
from mamlib.models.kinds import ModelSpec

PRESET_DIR = Path(__file__).parent
#: The inference dtypes a preset may ask for.
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def yaml_keys(fills: Callable[..., Any], *, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> frozenset[str]:
    """The YAML keys that fill a dataclass (its field names) or a function (its keyword-only arguments), less
    ``drop``, plus the YAML-only ``add``."""
    names = ([f.name for f in fields(fills)] if is_dataclass(fills) else
             [p.name for p in inspect.signature(fills).parameters.values() if p.kind is p.KEYWORD_ONLY])
    return frozenset(n for n in names if n not in drop) | frozenset(add)


def find_dataset(name: str, task: str | None = None) -> Dataset:
    """The registry entry of dataset ``name`` (of ``task``, ``asr`` or ``aec``, when given); ValueError listing the
    known ones otherwise."""
    from mamlib.aec.data import AEC_DATASETS
    from mamlib.asr.corpora import ASR_DATASETS

    entries = {"asr": ASR_DATASETS, "aec": AEC_DATASETS}[task] if task else {**ASR_DATASETS, **AEC_DATASETS}
    return pick(entries, name, f"{task.upper()} dataset" if task else "dataset")


def check_keys(d: Any, allowed: frozenset[str], where: str, required: tuple[str, ...] = ()) -> Mapping[str, Any]:
    """``d`` if it is a mapping whose keys are all ``allowed`` and include ``required``; else a ValueError that
    names the full path of the offending key (``where.key``) and the allowed keys."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where} must be a mapping (key: value), got {type(d).__name__}: {d!r}")
    if unknown := [key for key in d if key not in allowed]:
        raise ValueError(f"{where}.{unknown[0]}: unknown key; allowed keys: {sorted(allowed)}")
    if missing := [key for key in required if key not in d]:
        raise ValueError(f"{where}.{missing[0]}: missing (required keys: {list(required)})")
    return d


@dataclass(frozen=True)
class CorpusSpec:
    """An evaluation corpus: a ``dataset`` of the registry (:func:`find_dataset`) plus its options; ``path`` given
    directly or through the environment variable ``path_env``. A corpus too small to split (``select_on: <label>``)
    is evaluated on its test split only, with λ chosen on the dev split of the corpus ``label``."""

    dataset: str
    label: str
    path: str | None = None
    path_env: str | None = None
    n_dev: int | None = None
    n_test: int | None = None
    #: Utterances of the train split (fine-tuning, Table 5); None: all of it.
    n_train: int | None = None
    select_on: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("test",) if self.select_on else ("dev", "test")

    def resolved_path(self) -> str | None:
        return resolve_path(self.path, self.path_env)

    def size(self, split: str) -> int | None:
        return {"dev": self.n_dev, "test": self.n_test, "train": self.n_train}[split]

    def as_dict(self) -> dict[str, Any]:
        """The corpus as it enters a results key. A dataset read from a folder enters by its identity (name, release,
        fingerprint of files and transcripts: :meth:`mamlib.common.datasets.Dataset.identity`), not by where it
        lies; a corpus made without a path (synthetic, packaged) keeps ``"path": None``."""
        path = self.resolved_path()
        data = {"path": None} if path is None else {"data": find_dataset(self.dataset).identity(path)}
        return {"dataset": self.dataset, **data, "n_dev": self.n_dev, "n_test": self.n_test,
                "options": dict(self.options)}


@dataclass(frozen=True)
class FinetuneSetup:
    """Table 5's fine-tuning runs (Sec. 4.2): the training settings, the seeds every fine-tuned row is repeated
    with, and (ASR) the corpora fine-tuned on — each with its own number of epochs when ``epochs`` is a mapping."""

    settings: TrainSettings
    seeds: tuple[int, ...] = (0, 1, 2)
    corpora: tuple[str, ...] = ()
    epochs: dict[str, int] = field(default_factory=dict)

    def settings_for(self, label: str) -> TrainSettings:
        """The settings of the runs on corpus ``label`` (its own epoch count, if the preset gives one)."""
        return replace(self.settings, epochs=self.epochs[label]) if label in self.epochs else self.settings


@dataclass(frozen=True, kw_only=True)
class MergeSetup:
    """What every zero-shot merge experiment names: target, source, the λ grid, noise baselines, layer map."""

    experiment: ClassVar[str] = "merge"
    target: ModelSpec
    source: ModelSpec
    lambdas: tuple[float, ...]
    noise_seed: int = 0
    noise_pooling: str = "matrix"
    batch_size: int = 8
    layer_map: tuple[int, ...] | None = None
    #: Also sweep the source rescaled to the target's matrix norms (a column beside Eq. 1's raw source).
    norm_matched: bool = False
    #: The target's numerics for inference (part of every results-store key); merges are accumulated in float32
    #: and rounded to this dtype once (:func:`mamlib.merge.interpolation.combine`).
    dtype: str = "float32"
    #: Fine-tuning (Table 5); None: the preset runs no fine-tuning for this task.
    finetune: FinetuneSetup | None = None

    def __post_init__(self) -> None:
        where = self.experiment.split("-")[0]
        object.__setattr__(self, "lambdas", lambda_values(self.lambdas, f"{where}.lambdas", entry="{where} entry"))
        if not self.lambdas or self.lambdas[0] != 0.0:
            raise ValueError(f"{where}.lambdas must start at 0.0 (the unmerged baseline), got {list(self.lambdas)}")
        if self.noise_pooling not in ("matrix", "model"):
            raise ValueError(f"{where}.noise_pooling must be 'matrix' or 'model', got {self.noise_pooling!r}")
        if self.batch_size < 1:
            raise ValueError(f"{where}.batch_size must be positive, got {self.batch_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"{where}.dtype must be one of {list(DTYPES)}, got {self.dtype!r}")

    def batching(self) -> dict[str, Any]:
        """How evaluation is batched, part of every results key: padding and matrix shapes change the float rounding,
        enough to flip an arg-max now and then, so two batchings are two results."""
        return {"batch_size": self.batch_size}

    @property
    def noise(self) -> NoiseSettings:
        return NoiseSettings(self.noise_seed, self.noise_pooling)  # type: ignore[arg-type]

    @property
    def source_variants(self) -> tuple[str, ...]:
        """The source variants this setup sweeps: Table 1's four, plus the norm-matched source when asked for."""
        return TABLE1_VARIANTS + ("source-normed",) if self.norm_matched else TABLE1_VARIANTS


@dataclass(frozen=True, kw_only=True)
class ASRSetup(MergeSetup):
    """The ASR half of the experiments (Tables 1–3 and 5, left columns)."""

    experiment: ClassVar[str] = "asr-interpolation"
    corpora: dict[str, CorpusSpec]
    #: A budget of padded audio seconds per evaluation batch (longest clip × clips), besides ``batch_size``'s
    #: count; None: batches by count only. Other batches change the floating-point rounding and can flip an arg-max
    #: (2 of 3,200 random-model transcripts in benchmarks/RESULTS.md), so a budget is part of the results key.
    batch_seconds: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "batch_seconds", check_seconds_budget(self.batch_seconds, "asr.batch_seconds"))
        if not self.corpora:
            raise ValueError("asr.corpora is empty")
        with_dev = [k for k, c in self.corpora.items() if not c.select_on]
        for label, c in self.corpora.items():
            if c.select_on is not None and c.select_on not in with_dev:
                raise ValueError(f"asr.corpora.{label}.select_on must name another corpus that has a dev split")
        for label in self.finetune.corpora if self.finetune else ():
            if label not in with_dev:
                raise ValueError(f"asr.finetune.corpora: {label!r} must name a corpus of asr.corpora with a dev "
                                 f"split of its own (choices: {with_dev})")

    def batching(self) -> dict[str, Any]:
        """The batch count and the audio budget that forms batches by padded seconds (None: by count only)."""
        return {**super().batching(), "batch_seconds": self.batch_seconds}


@dataclass(frozen=True, kw_only=True)
class AECSetup(MergeSetup):
    """The audio-event-classification half (Tables 1, 2 and 5, ESC-50 columns): a linear head on a frozen encoder,
    trained on the training folds; λ chosen on the dev fold, error reported on the test fold."""

    experiment: ClassVar[str] = "aec-interpolation"
    data: CorpusSpec
    head: dict[str, Any] = field(default_factory=dict)
    train_folds: tuple[int, ...] = (1, 2, 3)
    dev_fold: int = 4
    test_fold: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        folds = set(self.train_folds) | {self.dev_fold, self.test_fold}
        if len(folds) != len(self.train_folds) + 2:
            raise ValueError(f"aec folds overlap: train {self.train_folds}, dev {self.dev_fold}, test {self.test_fold}")


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A whole experimental scale."""

    name: str
    asr: ASRSetup
    aec: AECSetup | None = None
    description: str = ""
    device: str = "cpu"
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


# Every key a preset may hold is a field of the dataclass (or a keyword of the function) it fills: ``yaml_keys``.
def _fill(cls: Any, d: Mapping[str, Any], **parsed: Any) -> Any:
    """``cls`` of the ``parsed`` values and of every other key of ``d`` that names one of its fields, as written
    (absent or null: the field's default)."""
    names = {f.name for f in fields(cls)} - set(parsed)
    return cls(**{k: v for k, v in d.items() if k in names and v is not None}, **parsed)


def _model(d: Any, where: str) -> ModelSpec:
    check_keys(d, yaml_keys(ModelSpec, drop=("where",)), where, required=("kind",))
    options = check_keys(d.get("options") or {}, frozenset(d.get("options") or {}), f"{where}.options")
    return _fill(ModelSpec, d, kind=d["kind"], options=dict(options), where=where)  # kind: null is checked too


def _corpus(d: Any, where: str, task: str, label: str | None = None) -> CorpusSpec:
    """An ASR corpus is labelled by its key in ``asr.corpora``; AEC data by its own ``label:`` (default: dataset)."""
    if isinstance(d, Mapping) and "kind" in d and "dataset" not in d:
        raise ValueError(f"{where}.kind: a corpus names its data with 'dataset:' (called 'kind' before mamlib 0.5)")
    check_keys(d, yaml_keys(CorpusSpec, drop=() if label is None else ("label",)), where, required=("dataset",))
    try:
        dataset = find_dataset(d["dataset"], task)
    except ValueError as err:
        raise ValueError(f"{where}.dataset: {err}") from None
    if dataset.path_env is None and (given := [k for k in ("path", "path_env") if d.get(k)]):
        raise ValueError(f"{where}.{given[0]}: dataset {dataset.name!r} is made or shipped here, not read from a "
                         "folder: it takes no path (the path would only change its results key)")
    options = check_keys(d.get("options") or {}, yaml_keys(dataset.load), f"{where}.options")
    return _fill(CorpusSpec, d, label=d.get("label", d["dataset"]) if label is None else label, options=dict(options))


def load_preset(name_or_path: str) -> Preset:
    """The preset called ``name_or_path`` (``smoke``, ``mini``, ``paper``, ...) or read from a YAML file path. One
    may start from another with ``extends: <name or path>``, its own keys overriding the other's mapping by mapping
    (``asr: {dtype: bfloat16}`` changes only that key)."""
    return parse_preset(_read(name_or_path, ()))


def _read(name_or_path: str, seen: tuple[str, ...]) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yml"))
        raise ValueError(f"unknown preset {name_or_path!r}: no file {path}; known presets: {known}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"preset {path} is not valid YAML: {err}") from err
    if not isinstance(raw, Mapping):
        raise ValueError(f"preset {path.name}: the file must hold a mapping (name:, asr:, ...), "
                         f"got {type(raw).__name__}")
    if "extends" not in raw:
        return dict(raw)
    base = str(raw["extends"])
    if base in seen:
        raise ValueError(f"preset {path.name}: 'extends' forms a cycle: {' -> '.join((*seen, base))}")
    return _overlay(_read(base, (*seen, base)), {k: v for k, v in raw.items() if k != "extends"})


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, Mapping) and isinstance(base.get(key), Mapping)
        out[key] = _overlay(base[key], value) if both else value
    return out


def parse_preset(raw: Any) -> Preset:
    """A :class:`Preset` from its YAML mapping (strict: see the module docstring)."""
    check_keys(raw, yaml_keys(Preset, drop=("raw",)), "preset", required=("name", "asr"))
    return _fill(Preset, raw, name=str(raw["name"]), asr=_asr(raw["asr"]),
                 aec=_aec(raw["aec"]) if raw.get("aec") else None, raw=dict(raw))


def _finetune(d: Any, where: str, with_corpora: bool) -> FinetuneSetup | None:
    if d is None:
        return None
    fixed = ("settings",) if with_corpora else ("settings", "corpora")
    check_keys(d, yaml_keys(TrainSettings) | yaml_keys(FinetuneSetup, drop=fixed), where,
               required=("corpora",) if with_corpora else ())
    knobs = {k: v for k, v in d.items() if k not in ("seeds", "corpora", "epochs")}

    def settings(epochs: Any, at: str) -> TrainSettings:
        try:
            return TrainSettings(epochs=epochs, **knobs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{at}: {err}") from None

    epochs, corpora = d.get("epochs", 1), d.get("corpora") or []
    per_corpus = {str(k): v for k, v in epochs.items()} if isinstance(epochs, Mapping) else {}
    if unknown := set(per_corpus) - set(corpora):
        raise ValueError(f"{where}.epochs names {sorted(unknown)}, not among {where}.corpora")
    for label, n in per_corpus.items():
        settings(n, f"{where}.epochs.{label}")  # every per-corpus count checked like the rest
    seeds = d.get("seeds", FinetuneSetup.seeds)
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(isinstance(x, int) for x in seeds):
        raise ValueError(f"{where}.seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}.seeds repeats a seed: {seeds}")
    if with_corpora and (not isinstance(corpora, (list, tuple)) or not corpora):
        raise ValueError(f"{where}.corpora must be a non-empty list of corpus labels, got {corpora!r}")
    return FinetuneSetup(settings(1 if isinstance(epochs, Mapping) else epochs, where), tuple(seeds),
                         tuple(str(c) for c in corpora), per_corpus)


def _common(d: Mapping[str, Any], where: str) -> dict[str, Any]:
    lambdas = d["lambdas"]
    if not isinstance(lambdas, (list, tuple)):
        raise ValueError(f"{where}.lambdas must be a list of numbers, got {lambdas!r}")
    return dict(
        target=_model(d["target"], f"{where}.target"),
        source=_model(d["source"], f"{where}.source"),
        lambdas=tuple(lambdas),
        layer_map=None if d.get("layer_map") is None else tuple(layer_indices(d["layer_map"], f"{where}.layer_map")),
        finetune=_finetune(d.get("finetune"), f"{where}.finetune", with_corpora=where == "asr"),
    )


def _asr(d: Any) -> ASRSetup:
    check_keys(d, yaml_keys(ASRSetup), "asr", required=("target", "source", "corpora", "lambdas"))
    check_keys(d["corpora"], frozenset(d["corpora"] or {}), "asr.corpora")
    corpora = {label: _corpus(c, f"asr.corpora.{label}", "asr", label) for label, c in d["corpora"].items()}
    return _fill(ASRSetup, d, corpora=corpora, **_common(d, "asr"))


def _aec(d: Any) -> AECSetup:
    from mamlib.aec.head import train_linear_head

    check_keys(d, yaml_keys(AECSetup, drop=("train_folds", "dev_fold", "test_fold"), add=("folds",)), "aec",
               required=("target", "source", "data", "lambdas"))
    folds = check_keys(d.get("folds") or {}, frozenset({"train", "dev", "test"}), "aec.folds")
    head = check_keys(d.get("head") or {}, yaml_keys(train_linear_head, drop=("num_classes",)), "aec.head")
    given = {"train_folds": tuple(folds["train"])} if "train" in folds else {}
    given |= {f"{k}_fold": folds[k] for k in ("dev", "test") if folds.get(k) is not None}
    return _fill(AECSetup, d, data=_corpus(d["data"], "aec.data", "aec"), head=dict(head), **given, **_common(d, "aec"))
