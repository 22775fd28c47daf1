"""Where each model family keeps its attention Query/Key/Value projections.

MAM (Sec. 3) merges the Q, K and V matrices of every attention layer. Different model families name those
projections differently, so each family is an explicit pattern over module names (``re.fullmatch``, in the
spirit of timm's ``group_matcher``): a name matches only when the whole module path fits, never by substring.

A new family is one :func:`register_family` call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from mamlib.merge.registry import Registry

#: The canonical projection names used throughout mamlib.
PROJECTIONS: tuple[str, ...] = ("q", "k", "v")


@dataclass(frozen=True)
class AttentionFamily:
    """How one model family names its attention projections.

    ``pattern`` is matched with ``re.fullmatch`` against module names from ``model.named_modules()`` and must
    define the named groups ``layer`` (the 0-based layer index) and ``proj`` (the family's own projection name).
    ``projections`` maps mamlib's canonical names (``q``, ``k``, ``v``) to the family's names (each a regular
    expression matched in full against the ``proj`` group, so ``"query|q_proj"`` accepts either spelling).
    """

    name: str
    pattern: str
    projections: Mapping[str, str]
    description: str = ""
    #: Model class names for which this family is the preferred name when several families find the same modules.
    classes: tuple[str, ...] = ()
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.compile(self.pattern)
        missing = {"layer", "proj"} - set(regex.groupindex)
        if missing:
            raise ValueError(f"family {self.name!r}: pattern lacks the named group(s) {sorted(missing)}")
        if set(self.projections) != set(PROJECTIONS):
            raise ValueError(
                f"family {self.name!r}: projections must map exactly {PROJECTIONS}, got {sorted(self.projections)}"
            )
        object.__setattr__(self, "_regex", regex)

    def match(self, module_name: str) -> tuple[int, str] | None:
        """Return ``(layer, canonical projection)`` if ``module_name`` is one of this family's Q/K/V modules."""
        m = self._regex.fullmatch(module_name)
        if m is None:
            return None
        own = m.group("proj")
        for canonical, theirs in self.projections.items():
            if re.fullmatch(theirs, own):
                return int(m.group("layer")), canonical
        return None


_REGISTRY: Registry[AttentionFamily] = Registry("attention family")


def register_family(family: AttentionFamily, *, replace: bool = False) -> AttentionFamily:
    """Add ``family`` to the registry consulted by :func:`attention_modules` and :func:`detect_family`."""
    return _REGISTRY.register(family.name, family, replace=replace)


def registered_families() -> dict[str, AttentionFamily]:
    """A copy of the registry, by name."""
    return _REGISTRY.all()


def get_family(name: str) -> AttentionFamily:
    """The registered family called ``name``; a ValueError lists the known ones otherwise."""
    return _REGISTRY.get(name)


def resolve_family(model: nn.Module, family: str | AttentionFamily | None = None) -> AttentionFamily:
    """``family`` itself, the registered family it names, or (None) the family detected in ``model``."""
    if family is None:
        return detect_family(model)
    return get_family(family) if isinstance(family, str) else family


# HubertModel / HubertForCTC and the Wav2Vec2 family share one encoder layout.
register_family(
    AttentionFamily(
        name="hubert",
        pattern=r"(?:(?:hubert|wav2vec2|data2vec_audio)\.)?encoder\.layers\.(?P<layer>\d+)\.attention\."
        r"(?P<proj>q_proj|k_proj|v_proj)",
        projections={"q": "q_proj", "k": "k_proj", "v": "v_proj"},
        description="HuBERT / Wav2Vec2 encoders (transformers HubertModel, HubertForCTC, Wav2Vec2ForCTC, ...)",
    )
)
# BertModel and every BERT head model (BertForMaskedLM, ...) that wraps it as ``bert``.
register_family(
    AttentionFamily(
        name="bert",
        pattern=r"(?:bert\.)?encoder\.layer\.(?P<layer>\d+)\.attention\.self\.(?P<proj>query|key|value)",
        projections={"q": "query", "k": "key", "v": "value"},
        description="BERT encoders (transformers BertModel and BERT head models)",
    )
)
# Dinov2Model (the mini preset's ViT-S/14): ``encoder.layer.N.attention.q_proj`` in transformers 5.
register_family(
    AttentionFamily(
        name="dinov2",
        pattern=r"(?:dinov2\.)?encoder\.layer\.(?P<layer>\d+)\.attention\.(?:attention\.)?"
        r"(?P<proj>query|key|value|q_proj|k_proj|v_proj)",
        projections={"q": "query|q_proj", "k": "key|k_proj", "v": "value|v_proj"},
        description="DINOv2 Vision Transformers (transformers Dinov2Model)",
        classes=("Dinov2Model",),
    )
)
# ViTModel / ViTForImageClassification: transformers 5 names them ``layers.N.attention.q_proj``; checkpoints and
# older releases use ``encoder.layer.N.attention.attention.query``. Both spellings are accepted.
register_family(
    AttentionFamily(
        name="vit",
        pattern=r"(?:vit\.)?(?:encoder\.layer|layers)\.(?P<layer>\d+)\.attention\.(?:attention\.)?"
        r"(?P<proj>query|key|value|q_proj|k_proj|v_proj)",
        projections={"q": "query|q_proj", "k": "key|k_proj", "v": "value|v_proj"},
        description="Vision Transformers (transformers ViTModel and ViT head models)",
        classes=("ViTModel", "ViTForImageClassification", "ViTForMaskedImageModeling"),
    )
)
# The Whisper encoder's self-attention (WhisperForConditionalGeneration, WhisperModel, WhisperEncoder); the
# decoder's self- and cross-attention are deliberately outside the pattern.
register_family(
    AttentionFamily(
        name="whisper-encoder",
        pattern=r"(?:(?:model\.)?encoder\.)?layers\.(?P<layer>\d+)\.self_attn\.(?P<proj>q_proj|k_proj|v_proj)",
        projections={"q": "q_proj", "k": "k_proj", "v": "v_proj"},
        description="Whisper encoder self-attention (transformers Whisper models)",
    )
)


def attention_modules(model: nn.Module, family: str | AttentionFamily) -> dict[int, dict[str, nn.Linear]]:
    """The Q/K/V ``nn.Linear`` modules of ``model``, as ``{layer: {"q": ..., "k": ..., "v": ...}}``.

    Raises ValueError when the family finds nothing, when a layer lacks one of Q/K/V, or when layer indices
    are not the contiguous range ``0 .. L-1``.
    """
    fam = get_family(family) if isinstance(family, str) else family
    found: dict[int, dict[str, nn.Linear]] = {}
    for name, module in model.named_modules():
        hit = fam.match(name)
        if hit is None:
            continue
        if not isinstance(module, nn.Linear):
            raise ValueError(f"family {fam.name!r}: {name} is a {type(module).__name__}, expected nn.Linear")
        layer, proj = hit
        found.setdefault(layer, {})[proj] = module
    if not found:
        raise ValueError(
            f"family {fam.name!r} finds no attention projections in {type(model).__name__}; "
            f"some Linear modules it has: {_linear_names(model)}"
        )
    layers = sorted(found)
    if layers != list(range(len(layers))):
        raise ValueError(f"family {fam.name!r}: layer indices {layers} are not contiguous from 0")
    for layer, projs in found.items():
        if set(projs) != set(PROJECTIONS):
            raise ValueError(f"family {fam.name!r}: layer {layer} has projections {sorted(projs)}, expected q, k, v")
    return found


def detect_family(model: nn.Module) -> AttentionFamily:
    """The one registered family whose pattern finds a complete Q/K/V layout in ``model``."""
    fits: list[tuple[AttentionFamily, dict[int, dict[str, nn.Linear]]]] = []
    for fam in _REGISTRY.all().values():
        try:
            fits.append((fam, attention_modules(model, fam)))
        except ValueError:
            continue
    if not fits:
        raise ValueError(
            f"no registered attention family ({sorted(_REGISTRY.all())}) matches {type(model).__name__}; "
            f"some Linear modules it has: {_linear_names(model)}. Register one with mamlib.register_family."
        )
    # Families that pick out the very same modules (ViT and DINOv2, BEATs and the Whisper encoder spell them alike)
    # are interchangeable for merging; the one that lists the model's class is preferred as its name.
    first_family, first_modules = fits[0]
    for _, modules in fits[1:]:
        if _module_ids(modules) != _module_ids(first_modules):
            raise ValueError(
                f"{type(model).__name__} matches several families {[f.name for f, _ in fits]}; pass one explicitly"
            )
    preferred = [f for f, _ in fits if type(model).__name__ in f.classes]
    return preferred[0] if preferred else first_family


def _module_ids(modules: dict[int, dict[str, nn.Linear]]) -> dict[tuple[int, str], int]:
    return {(layer, p): id(m) for layer, projs in modules.items() for p, m in projs.items()}


def _linear_names(model: nn.Module, limit: int = 8) -> list[str]:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[:limit] + (["..."] if len(names) > limit else [])
