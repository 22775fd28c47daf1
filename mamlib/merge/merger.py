"""The model layer of attention merging: read Q/K/V out of models, write merged ones into a target.

:class:`AttentionWeights` is a detached copy of one model's Q/K/V weights and biases (the source of a merge, a
noise "source", or the target's originals). :class:`AttentionMerger` keeps the target's originals once and writes
``interpolate(source, original, λ_i)`` into the target's projections for any λ (Eq. 1), subset of layers (Eq. 2)
or per-layer factors (Eq. 3) — so a λ sweep never reloads a model. The source model is never modified.
:class:`MultiSourceMerger` does the same for several sources at once (Eq. 1 generalised, each source with its own
layer map and λ), as ``mam merge`` uses it.

Biases. The paper's equations name the weight matrices ``W_Q, W_K, W_V`` only. By default (``bias="target"``) the
target keeps its own biases; ``bias="interpolate"`` interpolates biases with the same λ, counting a source without
a bias (e.g. Whisper's key projection) as a zero bias.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from mamlib.merge.families import PROJECTIONS, AttentionFamily, attention_modules, resolve_family
from mamlib.merge.interpolation import combine
from mamlib.merge.schedule import LambdaSpec, lambda_table, per_layer_lambdas, resolve_layer_map
from mamlib.merge.schedule import check_layer_map as check_layer_map  # re-exported
from mamlib.merge.schedule import evenly_spaced_layer_map as evenly_spaced_layer_map  # re-exported

Key = tuple[int, str]
BiasMode = Literal["target", "interpolate"]


@dataclass(frozen=True)
class AttentionWeights:
    """Q/K/V weights (and biases, ``None`` where a projection has none) by ``(layer, projection)``."""

    weights: dict[Key, Tensor]
    biases: dict[Key, Tensor | None]
    num_layers: int
    origin: str

    @classmethod
    def from_model(cls, model: nn.Module, family: str | AttentionFamily | None = None) -> AttentionWeights:
        """A detached copy of ``model``'s attention projections (``family`` detected when None)."""
        fam = resolve_family(model, family)
        modules = attention_modules(model, fam)
        lins = {(layer, proj): lin for layer, projs in modules.items() for proj, lin in projs.items()}
        return cls({k: lin.weight.detach().clone() for k, lin in lins.items()},
                   {k: None if lin.bias is None else lin.bias.detach().clone() for k, lin in lins.items()},
                   len(modules), origin=f"{type(model).__name__} ({fam.name})")

    def shape(self, layer: int, proj: str) -> tuple[int, ...]:
        return tuple(self.weights[(layer, proj)].shape)


class MultiSourceMerger:
    """Eq. 1 generalised to several sources, in place and reversibly: every target layer ``i`` gets
    ``W = Σ_s λ_s,i · W_s[map_s(i)] + (1 − Σ_s λ_s,i) · W_target`` for each of Q, K and V. Each source (a model or
    :class:`AttentionWeights`) has its own layer map (default evenly spaced), norm matching and λ spec; ``labels``
    name the sources in messages and plans."""

    def __init__(
        self, target: nn.Module, sources: Sequence[nn.Module | AttentionWeights], *,
        layer_maps: Sequence[Sequence[int] | None] | None = None, norm_matched: bool | Sequence[bool] = False,
        labels: Sequence[str] | None = None, target_family: str | AttentionFamily | None = None,
        source_families: Sequence[str | AttentionFamily | None] | None = None,
        projections: Sequence[str] = PROJECTIONS, bias: BiasMode = "target",
    ) -> None:
        n = len(sources)
        if n == 0:
            raise ValueError("a merge needs at least one source")
        if not projections or not set(projections) <= set(PROJECTIONS):
            raise ValueError(f"projections must be a non-empty subset of {PROJECTIONS}, got {list(projections)}")
        if bias not in get_args(BiasMode):
            raise ValueError(f"bias must be one of {list(get_args(BiasMode))}, got {bias!r}")
        self.labels = [f"source {s}" for s in range(n)] if labels is None else list(labels)
        layer_maps = [None] * n if layer_maps is None else list(layer_maps)
        families = [None] * n if source_families is None else list(source_families)
        normed = [bool(norm_matched)] * n if isinstance(norm_matched, bool) else [bool(x) for x in norm_matched]
        for what, seq in (("labels", self.labels), ("layer maps", layer_maps), ("source families", families),
                          ("norm_matched flags", normed)):
            if len(seq) != n:
                raise ValueError(f"{n} sources but {len(seq)} {what}")
        self.target = target
        fam = resolve_family(target, target_family)
        self._modules = attention_modules(target, fam)
        self.original = AttentionWeights.from_model(target, fam)
        self.num_layers = self.original.num_layers
        self.sources = [s if isinstance(s, AttentionWeights) else AttentionWeights.from_model(s, f)
                        for s, f in zip(sources, families)]
        self.norm_matched = normed
        self.projections = tuple(projections)
        self.bias = bias
        self.layer_maps: list[list[int]] = []
        for label, src, lmap in zip(self.labels, self.sources, layer_maps):
            try:
                self.layer_maps.append(resolve_layer_map(lmap, self.num_layers, src.num_layers))
            except ValueError as err:
                raise ValueError(f"{label}: {err}") from None
            for i, s in enumerate(self.layer_maps[-1]):
                for p in self.projections:
                    ts, ss = self.original.shape(i, p), src.shape(s, p)
                    if ts != ss:
                        raise ValueError(
                            f"width mismatch at target layer {i} ({p}): target {ts} vs {label} layer {s} {ss}"
                        )

    def projection(self, layer: int, proj: str) -> nn.Linear:
        """The target's live ``nn.Linear`` for ``layer``/``proj``."""
        return self._modules[layer][proj]

    def source_matrix(self, source: int, layer: int, proj: str) -> Tensor:
        """Source ``source``'s matrix for target ``layer``/``proj`` after its layer map (as stored; norm matching,
        when asked for, happens inside the blend kernel)."""
        return self.sources[source].weights[(self.layer_maps[source][layer], proj)]

    def lambdas(
        self, lams: Sequence[LambdaSpec], layers: Sequence[Iterable[int] | None] | None = None
    ) -> list[list[float]]:
        """The checked ``[source][layer]`` table (:func:`~mamlib.merge.schedule.lambda_table`) from one λ spec per
        source and an optional layer subset per source."""
        return lambda_table(self.num_layers, lams, layers, labels=self.labels)

    def merged_tensor(self, layer: int, proj: str, leaf: str, lams: Sequence[float]) -> Tensor | None:
        """The ``leaf`` (``"weight"`` or ``"bias"``) of ``layer``/``proj`` after the merge, for the sources' factors
        ``lams`` at that layer (a column of a checked table, not checked again), by the blend kernel
        :func:`~mamlib.merge.interpolation.combine` over the sources with a non-zero λ. A bias is merged only with
        ``bias="interpolate"`` (a source without one counting as zero); None where the target has none."""
        orig = (self.original.weights if leaf == "weight" else self.original.biases)[(layer, proj)]
        active = [s for s, lam in enumerate(lams) if lam != 0.0]
        if orig is None or not active or (leaf == "bias" and self.bias == "target"):
            return orig
        stored = [self.sources[s].weights if leaf == "weight" else self.sources[s].biases for s in active]
        return combine(orig, [t.get((self.layer_maps[s][layer], proj)) for s, t in zip(active, stored)],
                       [lams[s] for s in active], [self.norm_matched[s] and leaf == "weight" for s in active])

    @torch.no_grad()
    def apply(
        self, lams: Sequence[LambdaSpec], layers: Sequence[Iterable[int] | None] | None = None
    ) -> list[list[float]]:
        """Write the merge for ``lams`` (one spec per source, or a table) into the target, always from the
        originals; return the checked ``[source][layer]`` table."""
        table = self.lambdas(lams, layers)
        for i, at_i in enumerate(zip(*table)):
            for p in self.projections:
                lin = self._modules[i][p]
                lin.weight.copy_(self.merged_tensor(i, p, "weight", at_i))
                bias = self.merged_tensor(i, p, "bias", at_i)
                if lin.bias is not None and bias is not None:
                    lin.bias.copy_(bias)
        return table

    @torch.no_grad()
    def restore(self) -> None:
        """Put the target's original Q/K/V (and biases) back."""
        for (i, p), w in self.original.weights.items():
            lin = self._modules[i][p]
            lin.weight.copy_(w)
            b = self.original.biases[(i, p)]
            if lin.bias is not None and b is not None:
                lin.bias.copy_(b)

    @contextmanager
    def merged(
        self, lams: Sequence[LambdaSpec], layers: Sequence[Iterable[int] | None] | None = None
    ) -> Iterator[list[list[float]]]:
        """``with merger.merged([0.05, 0.05]): ...`` (one source: ``merged(0.1)``) — merged inside the block, restored
        after."""
        try:
            yield self.apply(lams, layers)
        finally:
            self.restore()

    def plan(self, table: Sequence[LambdaSpec]) -> list[dict[str, object]]:
        """Layer by layer, for a ``[source][layer]`` table (checked like :meth:`lambdas`): which source layer of
        which source enters each target layer with what λ, the target's remaining weight ``1 − Σ λ``, and the Q/K/V
        shapes."""
        return [{
            "target_layer": i,
            "sources": [{"source": label, "source_layer": lmap[i], "lambda": lam}
                        for label, lmap, lam in zip(self.labels, self.layer_maps, at_i)],
            "target_lambda": 1.0 - sum(at_i),
            "shapes": {p: list(self.original.shape(i, p)) for p in self.projections},
        } for i, at_i in enumerate(zip(*self.lambdas(table)))]


class AttentionMerger(MultiSourceMerger):
    """Writes Eq. 1/2/3 merges of ``source`` (a model or :class:`AttentionWeights`, e.g. a noise source) into
    ``target``'s Q/K/V projections, in place and reversibly: the one-source view of :class:`MultiSourceMerger`.
    ``norm_matched=True`` rescales each source matrix to the Frobenius norm of the target matrix it merges into."""

    def __init__(
        self, target: nn.Module, source: nn.Module | AttentionWeights, *,
        target_family: str | AttentionFamily | None = None, source_family: str | AttentionFamily | None = None,
        projections: Sequence[str] = PROJECTIONS, layer_map: Sequence[int] | None = None, bias: BiasMode = "target",
        norm_matched: bool = False,
    ) -> None:
        super().__init__(target, [source], layer_maps=[layer_map], norm_matched=norm_matched, labels=["source"],
                         target_family=target_family, source_families=[source_family], projections=projections,
                         bias=bias)
        self.source = self.sources[0]
        self.layer_map = self.layer_maps[0]

    def source_matrix(self, layer: int, proj: str) -> Tensor:  # type: ignore[override]
        """The source matrix for target ``layer``/``proj`` after the layer map (norm matching happens in the blend)."""
        return super().source_matrix(0, layer, proj)

    def apply(self, lam: LambdaSpec, layers: Iterable[int] | None = None) -> list[float]:  # type: ignore[override]
        """Set the target's projections to the merge for ``lam`` (:func:`~mamlib.merge.schedule.per_layer_lambdas`:
        a number plus optional layer subset, Eq. 2, or one value per layer, Eq. 3); return the λ_i."""
        return super().apply([per_layer_lambdas(self.num_layers, lam, layers)])[0]
