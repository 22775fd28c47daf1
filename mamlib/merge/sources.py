"""What a target is merged with: the registry of *source variants* (Table 1's columns, and the norm-matched source).

Each :class:`SourceVariant` names one way of obtaining the matrices that Eq. 1 blends into the target — the real
source model, the source rescaled to the target's matrix norms, or one of the three noise baselines of Sec. 4.1 —
with its table label and whether λ may be chosen on it (noise is a baseline, never a candidate). Later methods
register their own variants with :func:`register_source_variant`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from mamlib.merge.merger import AttentionMerger, AttentionWeights
from mamlib.merge.noise import NoiseLike, Pooling, noise_source
from mamlib.merge.registry import Registry
from mamlib.merge.schedule import resolve_layer_map


@dataclass(frozen=True)
class NoiseSettings:
    """How the noise baselines are drawn: the seed and over what the moments are taken (:mod:`mamlib.merge.noise`)."""

    seed: int = 0
    pooling: Pooling = "matrix"


@dataclass(frozen=True)
class MergeInputs:
    """What every source variant is built from: the target's original and the source's attention weights, and the
    layer map (target layer → source layer)."""

    target: AttentionWeights
    source: AttentionWeights
    layer_map: Sequence[int]
    noise: NoiseSettings


@dataclass(frozen=True)
class SourceVariant:
    """One column of Table 1: its ``name`` (in configurations and results), ``label`` (in tables), how to build its
    merger into a target, and whether λ may be chosen on it (``selectable``; noise baselines are not)."""

    name: str
    label: str
    selectable: bool
    build: Callable[[nn.Module, MergeInputs], AttentionMerger]
    #: Whether the variant draws random matrices (its configurations then record the noise settings).
    random: bool = False


def _real(norm_matched: bool) -> Callable[[nn.Module, MergeInputs], AttentionMerger]:
    return lambda target, inputs: AttentionMerger(target, inputs.source, layer_map=inputs.layer_map,
                                                  norm_matched=norm_matched)


def _noise(like: NoiseLike) -> Callable[[nn.Module, MergeInputs], AttentionMerger]:
    return lambda target, inputs: AttentionMerger(target, noise_source(
        like, inputs.target, inputs.source, seed=inputs.noise.seed, pooling=inputs.noise.pooling,
        layer_map=inputs.layer_map))


_REGISTRY: Registry[SourceVariant] = Registry("source variant")
#: Add a variant to the registry (ValueError if its name is taken, unless ``replace``); every registered variant, in
#: registration (= table column) order; one by name (ValueError if unknown).
register_source_variant = _REGISTRY.register
source_variants = _REGISTRY.all
get_source_variant = _REGISTRY.get

for _variant in (
    SourceVariant("source", "Source", True, _real(False)),
    SourceVariant("noise-source", "N(Source)", False, _noise("source"), random=True),
    SourceVariant("noise-target", "N(Target)", False, _noise("target"), random=True),
    SourceVariant("noise-standard", "N(0,1)", False, _noise("standard"), random=True),
    SourceVariant("source-normed", "Source, norm-matched", True, _real(True)),
):
    register_source_variant(_variant)

#: Table 1's four columns: the real source and the three noise baselines.
TABLE1_VARIANTS: tuple[str, ...] = ("source", "noise-source", "noise-target", "noise-standard")


def build_mergers(target: nn.Module, source: nn.Module | AttentionWeights, variants: Sequence[str], *,
                  layer_map: Sequence[int] | None = None, noise: NoiseSettings = NoiseSettings(),
                  ) -> dict[str, AttentionMerger]:
    """One reversible merger into ``target`` per source variant; noise is shaped like the target's matrices.

    Target layers take source layers by ``layer_map`` or, when it is None, the evenly spaced default
    (:func:`~mamlib.merge.schedule.resolve_layer_map`).
    """
    variants = [get_source_variant(k) for k in variants]
    src = source if isinstance(source, AttentionWeights) else AttentionWeights.from_model(source)
    original = AttentionWeights.from_model(target)
    inputs = MergeInputs(original, src, resolve_layer_map(layer_map, original.num_layers, src.num_layers), noise)
    return {k.name: k.build(target, inputs) for k in variants}
