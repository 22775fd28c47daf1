"""Presets: one typed, validated configuration per scale (``smoke``, ``mini``, ``paper``), read from YAML.

Every chapter's ``parameters`` cell names a preset (``preset = "smoke"`` is the stored default that nbval runs);
``make book PRESET=mini`` injects another with papermill. The YAML files live in ``mamlib/presets/``; a path to
any other YAML file works too. A bad preset fails when it is loaded, with a message naming the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from mamlib.interpolation import check_lambda
from mamlib.models import ModelSpec

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class CorpusSpec:
    """An evaluation corpus: a ``kind`` understood by :func:`mamlib.corpora.load_corpus` plus its options.

    ``path`` may be given directly or through the environment variable named by ``path_env``. A corpus too small
    to split (``select_on: <label>``) is evaluated on its test split only, with λ chosen on the dev split of the
    corpus ``label``.
    """

    kind: str
    label: str
    path: str | None = None
    path_env: str | None = None
    n_dev: int | None = None
    n_test: int | None = None
    select_on: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("test",) if self.select_on else ("dev", "test")

    def resolved_path(self) -> str | None:
        if self.path:
            return self.path
        return os.environ.get(self.path_env) if self.path_env else None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.resolved_path(), "n_dev": self.n_dev, "n_test": self.n_test,
                "options": dict(self.options)}


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

    def __post_init__(self) -> None:
        where = self.experiment.split("-")[0]
        if not self.lambdas or self.lambdas[0] != 0.0:
            raise ValueError(f"{where}.lambdas must start at 0.0 (the unmerged baseline), got {list(self.lambdas)}")
        for lam in self.lambdas:
            check_lambda(lam, where=f"{where}.lambdas entry")
        if self.noise_pooling not in ("matrix", "model"):
            raise ValueError(f"{where}.noise_pooling must be 'matrix' or 'model', got {self.noise_pooling!r}")
        if self.batch_size < 1:
            raise ValueError(f"{where}.batch_size must be positive, got {self.batch_size}")


@dataclass(frozen=True, kw_only=True)
class ASRSetup(MergeSetup):
    """The ASR half of the experiments (Tables 1–3 and 5, left columns)."""

    experiment: ClassVar[str] = "asr-interpolation"
    corpora: dict[str, CorpusSpec]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.corpora:
            raise ValueError("asr.corpora is empty")
        for label, c in self.corpora.items():
            if c.select_on is not None and (c.select_on not in self.corpora or self.corpora[c.select_on].select_on):
                raise ValueError(f"asr.corpora.{label}.select_on must name another corpus that has a dev split")


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
        unknown = set(self.head) - {"epochs", "lr", "seed", "batch_size", "weight_decay"}
        if unknown:
            raise ValueError(f"aec.head: unknown fields {sorted(unknown)}")


@dataclass(frozen=True)
class Preset:
    """A whole experimental scale."""

    name: str
    description: str
    device: str
    asr: ASRSetup
    aec: AECSetup | None = None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


def _model(d: dict[str, Any], where: str) -> ModelSpec:
    try:
        return ModelSpec(kind=d["kind"], name=d.get("name", ""), options=dict(d.get("options", {})))
    except (KeyError, TypeError) as err:
        raise ValueError(f"{where}: needs a mapping with 'kind' (and optional 'name', 'options'): {err}") from err


def _corpus(label: str, d: dict[str, Any], where: str) -> CorpusSpec:
    known = {"kind", "path", "path_env", "n_dev", "n_test", "select_on", "options"}
    extra = set(d) - known
    if extra or "kind" not in d:
        raise ValueError(f"{where}.{label}: needs 'kind'; unknown fields {sorted(extra)}")
    return CorpusSpec(label=label, **d)


def load_preset(name_or_path: str) -> Preset:
    """The preset called ``name_or_path`` (``smoke``, ``mini``, ``paper``) or read from a YAML file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yml"))
        raise ValueError(f"unknown preset {name_or_path!r}: no file {path}; known presets: {known}")
    raw = yaml.safe_load(path.read_text())
    try:
        return Preset(name=raw["name"], description=raw.get("description", ""), device=raw.get("device", "cpu"),
                      asr=_asr(raw["asr"]), aec=_aec(raw["aec"]) if raw.get("aec") else None, raw=raw)
    except KeyError as err:
        raise ValueError(f"preset {path}: missing field {err}") from err


def _common(d: dict[str, Any], where: str) -> dict[str, Any]:
    return dict(
        target=_model(d["target"], f"{where}.target"),
        source=_model(d["source"], f"{where}.source"),
        lambdas=tuple(float(x) for x in d["lambdas"]),
        noise_seed=int(d.get("noise_seed", 0)),
        noise_pooling=str(d.get("noise_pooling", "matrix")),
        batch_size=int(d.get("batch_size", 8)),
        layer_map=tuple(d["layer_map"]) if d.get("layer_map") is not None else None,
        norm_matched=bool(d.get("norm_matched", False)),
    )


def _asr(d: dict[str, Any]) -> ASRSetup:
    corpora = {label: _corpus(label, c, "asr.corpora") for label, c in d["corpora"].items()}
    return ASRSetup(corpora=corpora, **_common(d, "asr"))


def _aec(d: dict[str, Any]) -> AECSetup:
    folds = d.get("folds", {})
    return AECSetup(
        data=_corpus(d["data"].get("label", d["data"]["kind"]), {k: v for k, v in d["data"].items() if k != "label"},
                     "aec.data"),
        head=dict(d.get("head", {})),
        train_folds=tuple(folds.get("train", (1, 2, 3))),
        dev_fold=int(folds.get("dev", 4)),
        test_fold=int(folds.get("test", 5)),
        **_common(d, "aec"),
    )
