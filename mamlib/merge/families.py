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
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        if missing := {"layer", "proj"} - set(regex.groupindex):
            raise ValueError(f"family {self.name!r}: pattern lacks the named group(s) {sorted(missing)}")
        if set(self.projections) != set(PROJECTIONS):
            raise ValueError(
                f"family {self.name!r}: projections must map exactly {PROJECTIONS}, got {sorted(self.projections)}"
            )
        object.__setattr__(self, "_regex", regex)

    def match(self, module_name: str) -> tuple[int, str] | None:
        """Return ``(layer, canonical projection)`` if ``module_name`` is one of this family's Q/K/V modules."""
        m = self._regex.fullmatch(module_name)
        hits = [canonical for canonical, theirs in self.projections.items() if m and re.fullmatch(theirs, m["proj"])]
        return (int(m["layer"]), hits[0]) if hits else None


_REGISTRY: Registry[AttentionFamily] = Registry("attention family")
#: Add a family to the registry consulted by :func:`attention_modules` and :func:`detect_family`; every registered
#: family, by name; one by name (ValueError if unknown).
register_family = _REGISTRY.register
registered_families = _REGISTRY.all
get_family = _REGISTRY.get


def resolve_family(model: nn.Module, family: str | AttentionFamily | None = None) -> AttentionFamily:
    """``family`` itself, the registered family it names, or (None) the family detected in ``model``."""
    if family is None:
        return detect_family(model)
    return get_family(family) if isinstance(family, str) else family


def family_from_dict(d: Mapping[str, Any], where: str) -> AttentionFamily:
    """The family that the YAML entry ``d`` describes (one of ``families.yml`` or of a merge config's ``families:``):
    the fields of :class:`AttentionFamily`, ``classes`` and ``model_types`` as lists. A ValueError names ``where``."""
    for key in ("name", "pattern", "description"):
        if not isinstance(d.get(key, ""), str):
            raise ValueError(f"{where}.{key} must be a string, got {d[key]!r}")
    projections = d.get("projections")
    if not isinstance(projections, Mapping) or not all(isinstance(v, str) and v for v in projections.values()):
        raise ValueError(f"{where}.projections must map q, k and v to the family's own projection names, "
                         f"got {projections!r}")
    lists = {key: d.get(key, []) for key in ("classes", "model_types")}
    for key, names in lists.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}.{key} must be a list of names, got {names!r}")
    try:
        return AttentionFamily(**{**d, **{key: tuple(names) for key, names in lists.items()}})
    except re.error as err:
        raise ValueError(f"{where}.pattern is not a valid regular expression: {err}") from None
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


# The built-in families are data (as mergekit keeps its architectures), registered in the file's order.
for _i, _entry in enumerate(yaml.safe_load((Path(__file__).parent / "families.yml").read_text(encoding="utf-8"))):
    register_family(family_from_dict(_entry, f"families.yml[{_i}]"))


def attention_modules(model: nn.Module, family: str | AttentionFamily | None) -> dict[int, dict[str, nn.Linear]]:
    """``model``'s Q/K/V ``nn.Linear`` modules as ``{layer: {"q": ..., "k": ..., "v": ...}}`` (``family`` detected
    when None); ValueError when none are found, a layer lacks one of Q/K/V, or layers are not ``0 .. L-1``."""
    fam = resolve_family(model, family)
    found: dict[int, dict[str, nn.Linear]] = {}
    for name, module in model.named_modules():
        if (hit := fam.match(name)) is None:
            continue
        if not isinstance(module, nn.Linear):
            raise ValueError(f"family {fam.name!r}: {name} is a {type(module).__name__}, expected nn.Linear")
        layer, proj = hit
        found.setdefault(layer, {})[proj] = module
    if not found:
        raise ValueError(
            f"family {fam.name!r} finds no attention projections in {type(model).__name__}; "
            f"its Linear modules (N = layer index): {_linear_names(model, 8)}"
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
    return len(attention_modules(model, family))


def detect_family(model: nn.Module) -> AttentionFamily:
    """The one registered family whose pattern finds a complete Q/K/V layout in ``model``.

    Families that find the very same modules (ViT and DINOv2, BEATs and the Whisper encoder spell them alike) are
    interchangeable: the one listing the model's class is preferred, then the one listing its transformers
    ``config.model_type``, then the first registered. A model no family fits gets a ValueError listing its Linear
    modules and how to register a family (:func:`unknown_model_message`).
    """
    fits = matching_families(model, registered_families().values())
    if not fits:
        raise ValueError(unknown_model_message(model))
    ids = [{(layer, p): id(m) for layer, projs in modules.items() for p, m in projs.items()} for _, modules in fits]
    if any(other != ids[0] for other in ids[1:]):
        raise ValueError(
            f"{type(model).__name__} matches several families {[f.name for f, _ in fits]}; pass one explicitly"
        )
    cls, model_type = type(model).__name__, getattr(getattr(model, "config", None), "model_type", None)
    return min((f for f, _ in fits), key=lambda f: 0 if cls in f.classes else 1 if model_type in f.model_types else 2)


def matching_families(
    model: nn.Module, families: Iterable[AttentionFamily]
) -> list[tuple[AttentionFamily, dict[int, dict[str, nn.Linear]]]]:
    """Those of ``families`` that find a complete Q/K/V layout in ``model``, with the modules each finds."""
    fits: list[tuple[AttentionFamily, dict[int, dict[str, nn.Linear]]]] = []
    for fam in families:
        with suppress(ValueError):
            fits.append((fam, attention_modules(model, fam)))
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
    names = [name.split(".") for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return list(dict.fromkeys(".".join("N" if p.isdigit() and i < len(parts) - 1 else p for i, p in enumerate(parts))
                              for parts in names))


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
        if matching_families(model, [fam]):
            return fam
    return None


def unknown_model_message(model: nn.Module, limit: int = 12) -> str:
    """One line: no registered family fits ``model``; its Linear modules (layer indices as ``N``); how to register
    one, with the family :func:`suggest_family` guesses (or an example) spelled in Python and in YAML."""
    fam = suggest_family(model) or AttentionFamily(
        "mine", r"blocks\.(?P<layer>\d+)\.attn\.(?P<proj>wq|wk|wv)", {"q": "wq", "k": "wk", "v": "wv"})
    q, k, v = (fam.projections[p] for p in PROJECTIONS)
    return (
        f"no registered attention family ({sorted(registered_families())}) matches {type(model).__name__}; "
        f"its Linear modules (N = layer index): {_linear_names(model, limit)}. Register a family for it in Python "
        f"with mamlib.register_family(mamlib.AttentionFamily(name={fam.name!r}, pattern=r'{fam.pattern}', "
        f"projections={dict(fam.projections)!r})), or in a merge YAML with a `families:` entry such as "
        f"{{name: {fam.name}, pattern: '{fam.pattern}', projections: {{q: '{q}', k: '{k}', v: '{v}'}}}}"
    )


def _linear_names(model: nn.Module, limit: int) -> list[str]:
    """The first ``limit`` names of :func:`linear_module_layout`, and how many more there are."""
    layout = linear_module_layout(model)
    return layout[:limit] + ([f"... (+{len(layout) - limit} more)"] if len(layout) > limit else [])
