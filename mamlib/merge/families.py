"""Where each model family keeps its attention Query/Key/Value projections.

MAM (Sec. 3) merges the Q, K and V matrices of every attention layer. Different model families name those
projections differently, so each family is an explicit pattern over module names (``re.fullmatch``, in the
spirit of timm's ``group_matcher``): a name matches only when the whole module path fits, never by substring.

The built-in families are data (``families.yml``); a new one is an entry there, a :func:`register_family` call,
or, for ``mam merge``, a ``families:`` entry in its YAML. A model that no registered family fits gets an error
listing its Linear modules, with layer indices folded into ``N``, and a suggested family when its names make one
plain (:func:`suggest_family`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
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
    #: transformers ``config.model_type`` values for which this family is preferred (after ``classes``).
    model_types: tuple[str, ...] = ()
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


def _builtin_families() -> list[AttentionFamily]:
    """The families of ``families.yml`` (a data file, as mergekit keeps its architectures), in its order."""
    entries = yaml.safe_load((Path(__file__).parent / "families.yml").read_text(encoding="utf-8"))
    return [AttentionFamily(**{**e, "classes": tuple(e.get("classes", ())),
                               "model_types": tuple(e.get("model_types", ()))}) for e in entries]


for _family in _builtin_families():
    register_family(_family)


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


def attention_depth(model: nn.Module, family: str | AttentionFamily | None = None) -> int:
    """The number of attention layers of ``model`` (``family`` detected when None)."""
    return len(attention_modules(model, resolve_family(model, family)))


def detect_family(model: nn.Module) -> AttentionFamily:
    """The one registered family whose pattern finds a complete Q/K/V layout in ``model``.

    Where several families find the very same modules, the one listing the model's class is preferred, then the one
    listing its transformers ``config.model_type``, then the first registered. A model no family fits gets a
    ValueError listing its Linear modules and how to register a family (:func:`unknown_model_message`).
    """
    fits = matching_families(model, _REGISTRY.all().values())
    if not fits:
        raise ValueError(unknown_model_message(model, sorted(_REGISTRY.all())))
    # Families that pick out the very same modules (ViT and DINOv2, BEATs and the Whisper encoder spell them alike)
    # are interchangeable for merging; the one that lists the model's class is preferred as its name.
    first_family, first_modules = fits[0]
    for _, modules in fits[1:]:
        if _module_ids(modules) != _module_ids(first_modules):
            raise ValueError(
                f"{type(model).__name__} matches several families {[f.name for f, _ in fits]}; pass one explicitly"
            )
    preferred = [f for f, _ in fits if type(model).__name__ in f.classes]
    if not preferred:
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        preferred = [f for f, _ in fits if model_type is not None and model_type in f.model_types]
    return preferred[0] if preferred else first_family


def matching_families(
    model: nn.Module, families: Iterable[AttentionFamily]
) -> list[tuple[AttentionFamily, dict[int, dict[str, nn.Linear]]]]:
    """Those of ``families`` that find a complete Q/K/V layout in ``model``, with the modules each finds."""
    fits: list[tuple[AttentionFamily, dict[int, dict[str, nn.Linear]]]] = []
    for fam in families:
        try:
            fits.append((fam, attention_modules(model, fam)))
        except ValueError:
            continue
    return fits


#: Leaf names that usually hold a query, key or value projection (used only to suggest a family).
_QKV_LEAVES: dict[str, str] = {
    "q": r"q|query|wq|q_proj|q_lin|to_q|linear_q|q_linear",
    "k": r"k|key|wk|k_proj|k_lin|to_k|linear_k|k_linear",
    "v": r"v|value|wv|v_proj|v_lin|to_v|linear_v|v_linear",
}


def linear_module_layout(model: nn.Module) -> list[str]:
    """The distinct names of ``model``'s ``nn.Linear`` modules with every layer index (a dotted all-digit part that
    is not the last) folded into ``N``, in order of first appearance: ``encoder.layers.N.attention.q_proj``."""
    seen: dict[str, None] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            parts = name.split(".")
            folded = [("N" if p.isdigit() and i < len(parts) - 1 else p) for i, p in enumerate(parts)]
            seen.setdefault(".".join(folded), None)
    return list(seen)


def suggest_family(model: nn.Module, name: str | None = None) -> AttentionFamily | None:
    """A family that would fit ``model``, guessed from its Linear module names: the first module path with one layer
    index whose children include a query, a key and a value projection by a common name; None when there is none.
    The guess is checked (:func:`attention_modules`) before it is returned."""
    groups: dict[str, dict[str, str]] = {}
    for folded in linear_module_layout(model):
        prefix, _, leaf = folded.rpartition(".")
        if prefix.split(".").count("N") != 1:
            continue
        for canonical, leaves in _QKV_LEAVES.items():
            if re.fullmatch(leaves, leaf):
                groups.setdefault(prefix, {}).setdefault(canonical, leaf)
    for prefix, found in groups.items():
        if set(found) != set(PROJECTIONS):
            continue
        escaped = re.escape(prefix).replace("N", r"(?P<layer>\d+)")
        own = "|".join(found[p] for p in PROJECTIONS)
        fam = AttentionFamily(
            name=name or type(model).__name__.lower(),
            pattern=rf"{escaped}\.(?P<proj>{own})",
            projections={p: re.escape(found[p]) for p in PROJECTIONS},
        )
        try:
            attention_modules(model, fam)
        except ValueError:
            continue
        return fam
    return None


def unknown_model_message(model: nn.Module, known: Iterable[str], limit: int = 12) -> str:
    """One line: no family fits ``model``; its Linear modules (layer indices as ``N``); how to register one."""
    layout = linear_module_layout(model)
    shown = layout[:limit] + ([f"... (+{len(layout) - limit} more)"] if len(layout) > limit else [])
    guess = suggest_family(model)
    if guess is not None:
        example = f"name={guess.name!r}, pattern=r'{guess.pattern}', projections={dict(guess.projections)!r}"
        yaml_example = (f"{{name: {guess.name}, pattern: '{guess.pattern}', projections: "
                        f"{{q: '{guess.projections['q']}', k: '{guess.projections['k']}', "
                        f"v: '{guess.projections['v']}'}}}}")
    else:
        example = r"name='mine', pattern=r'blocks\.(?P<layer>\d+)\.attn\.(?P<proj>wq|wk|wv)', " \
                  "projections={'q': 'wq', 'k': 'wk', 'v': 'wv'}"
        yaml_example = r"{name: mine, pattern: 'blocks\.(?P<layer>\d+)\.attn\.(?P<proj>wq|wk|wv)', " \
                       "projections: {q: wq, k: wk, v: wv}}"
    return (
        f"no registered attention family ({sorted(known)}) matches {type(model).__name__}; "
        f"its Linear modules (N = layer index): {shown}. Register a family for it in Python with "
        f"mamlib.register_family(mamlib.AttentionFamily({example})), or in a merge YAML with a `families:` entry "
        f"such as {yaml_example}"
    )


def _module_ids(modules: dict[int, dict[str, nn.Linear]]) -> dict[tuple[int, str], int]:
    return {(layer, p): id(m) for layer, projs in modules.items() for p, m in projs.items()}


def _linear_names(model: nn.Module, limit: int = 8) -> list[str]:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[:limit] + (["..."] if len(names) > limit else [])
