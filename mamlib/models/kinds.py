"""The model kinds a preset may name, with the options each accepts — names only, no model classes imported.

:func:`mamlib.models.build.build_model` has one builder per kind listed here (checked when it is imported), so a
preset can be validated without loading transformers' model classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_TINY = frozenset({"seed", "hidden_size", "num_layers", "heads"})
_SEEDED = frozenset({"seed"})
_ORIGIN = frozenset({"origin"})

#: Every model kind and the option keys it accepts.
MODEL_OPTIONS: dict[str, frozenset[str]] = {
    "tiny-hubert-ctc": _TINY | {"conv_dim"},
    "tiny-bert": _TINY,
    "random-hubert-large-ctc": _SEEDED,
    "random-bert-large": _SEEDED,
    "hub-ctc": frozenset({"local_files_only"}),
    "hub-encoder": frozenset({"local_files_only"}),
    "minilm": _ORIGIN,
    "whisper-tiny-en": _ORIGIN,
    "tiny-beats": _TINY,
    "beats-checkpoint": frozenset({"path", "path_env"}),
    "whisper-tiny-en-encoder": _ORIGIN,
    "tiny-vit": _TINY,
    "random-vit-base": _SEEDED,
    "vit-s14": _ORIGIN,
}

#: Kinds whose builders need a hub id in ``name``.
NEEDS_NAME = frozenset({"hub-ctc", "hub-encoder"})


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build: a ``kind`` from :data:`MODEL_OPTIONS`, an optional ``name`` (hub id) and options.

    Unknown kinds and options the kind does not accept fail here, naming ``where`` (the preset path of the spec).
    """

    kind: str
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    where: str = field(default="model", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in MODEL_OPTIONS:
            raise ValueError(f"{self.where}.kind: unknown model kind {self.kind!r}; "
                             f"known kinds: {sorted(MODEL_OPTIONS)}")
        unknown = sorted(set(self.options) - MODEL_OPTIONS[self.kind])
        if unknown:
            raise ValueError(f"{self.where}.options: unknown key(s) {unknown} for model kind {self.kind!r}; "
                             f"allowed: {sorted(MODEL_OPTIONS[self.kind])}")
        if self.kind in NEEDS_NAME and not self.name:
            raise ValueError(f"{self.where}.name: model kind {self.kind!r} needs a hub id in 'name'")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "options": dict(self.options)}
