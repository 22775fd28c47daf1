"""The one sweep engine of the zero-shot experiments (Sec. 3.1–3.2, 4.1: Tables 1–3), for ASR and AEC alike: a
*rig* (:class:`MergeRig`) holds a target with one reversible merger per source variant; a :class:`SweepGrid` names
the (variant, λ, layers, split) configurations, :func:`sweep_configs` spells each out as its results-store key, and
:func:`run_sweep` evaluates the missing ones inside their merge, one row per configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from itertools import product
from typing import Any, Protocol

import pandas as pd
from torch import nn

from mamlib.merge.families import attention_depth
from mamlib.merge.interpolation import as_lambda
from mamlib.merge.merger import AttentionMerger
from mamlib.merge.sources import build_mergers, get_source_variant
from mamlib.models.build import LoadedModel, build_model
from mamlib.presets.schema import MergeSetup, Preset
from mamlib.sweeps.store import ResultStore, run_grid

SPLITS: tuple[str, ...] = ("dev", "test")


@dataclass(frozen=True)
class SweepGrid:
    """Which configurations a sweep evaluates. ``None`` means: every source variant the rig has (``variants``), the
    setup's λ grid (``lambdas``), the corpus's own splits (``splits``). ``layer_sets`` are Eq. 2's subsets (None:
    all layers)."""

    variants: tuple[str, ...] | None = None
    lambdas: tuple[float, ...] | None = None
    layer_sets: tuple[tuple[int, ...] | None, ...] = (None,)
    splits: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.variants is not None:
            object.__setattr__(self, "variants", tuple(get_source_variant(k).name for k in self.variants))
        if self.lambdas is not None:
            object.__setattr__(self, "lambdas", tuple(as_lambda(x, where="grid λ") for x in self.lambdas))
        object.__setattr__(self, "layer_sets",
                           tuple(None if s is None else tuple(sorted(int(i) for i in s)) for s in self.layer_sets))
        if self.splits is not None:
            if bad := [s for s in self.splits if s not in SPLITS]:
                raise ValueError(f"unknown split(s) {bad}; known: {list(SPLITS)}")
            object.__setattr__(self, "splits", tuple(self.splits))

    def describe(self) -> str:
        """What the grid sweeps, in words (for progress lines): ``all layers``, ``5 blocks`` or ``4 layer picks``,
        with its λ count and source variants when set."""
        sets = [s for s in self.layer_sets if s is not None]
        blocks = all(list(s) == list(range(s[0], s[0] + len(s))) for s in sets if s)
        what = "all layers" if not sets else f"{len(sets)} {'blocks' if blocks else 'layer picks'}"
        lams = "" if self.lambdas is None else f" × {len(self.lambdas)} λ"
        variants = "" if self.variants is None else f" ({', '.join(self.variants)})"
        return what + lams + variants

    def merged_layers(self) -> list[int]:
        """The lowest merged layer of every layer subset (what a prefix cache can start from); 0 for ``None``,
        all layers: the features below the first layer are still shared by every configuration."""
        return sorted({0 if s is None else min(s) for s in self.layer_sets if s is None or s})


#: The default grid: every source variant, the setup's λ grid, all layers, the corpus's splits.
FULL_GRID = SweepGrid()


@dataclass(kw_only=True)
class MergeRig:
    """A preset's target network with one reversible merger per source variant (``variants``; None: the setup's),
    built on first use (subclasses name the merged module of the :attr:`loaded` target, :attr:`target_network`): a
    sweep whose results are all stored loads no model."""

    preset: Preset
    setup: MergeSetup
    variants: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        variants = self.setup.source_variants if self.variants is None else self.variants
        self.variants = tuple(dict.fromkeys(get_source_variant(v).name for v in variants))

    @cached_property
    def loaded(self) -> LoadedModel:
        """The built target (network, feature extractor, tokenizer), in the setup's dtype."""
        return build_model(self.setup.target, self.preset.device, self.setup.dtype)

    @property
    def target_network(self) -> nn.Module:
        raise NotImplementedError

    @cached_property
    def mergers(self) -> dict[str, AttentionMerger]:
        """One merger per variant into the target, from the source model (both built now, once)."""
        source = build_model(self.setup.source, self.preset.device).model
        return build_mergers(self.target_network, source, self.variants, layer_map=self.setup.layer_map,
                             noise=self.setup.noise)

    @cached_property
    def num_layers(self) -> int:
        """Depth of the target (its number of attention layers); builds the target, not the source."""
        return attention_depth(self.target_network)

    @property
    def merger(self) -> AttentionMerger:
        """The merger of the real source."""
        return self.mergers["source"]


class Sweep(Protocol):
    """One corpus (or clip set) of a rig, evaluated over a grid; ``value`` names the error column."""

    value: str

    def run(self, grid: SweepGrid = FULL_GRID) -> pd.DataFrame: ...


def results_config(preset: Preset, setup: MergeSetup, data: Mapping[str, Any], experiment: str, **fields: Any
                   ) -> dict[str, Any]:
    """The one builder of results-store keys (sweeps, fine-tuning, similarity scores): the setup's part (preset,
    device, target, dtype, layer map, :meth:`~mamlib.presets.schema.MergeSetup.batching`), the ``data`` evaluated and
    the experiment's own ``fields`` (source, λ, layers, split; or method, start, settings, seed)."""
    # Half-precision merges have been accumulated in float32 and rounded once since issue 27 (one blend kernel):
    # their results are new ones; float32 and float64 merges are bit for bit the same, and so are their keys.
    blend = {} if setup.dtype in ("float32", "float64") else {"blend": "float32-accumulated"}
    return {"experiment": experiment, "preset": preset.name, "device": preset.device,
            "target": setup.target.as_dict(), "dtype": setup.dtype, **blend,
            "layer_map": list(setup.layer_map) if setup.layer_map else None, "corpus": dict(data),
            "batching": setup.batching(), **fields}


def sweep_configs(rig: MergeRig, data: Mapping[str, Any], grid: SweepGrid, default_splits: Sequence[str] = SPLITS
                  ) -> list[dict[str, Any]]:
    """The grid's configurations, each a complete description of what is computed (its results-store key). λ = 0 is
    the unmerged model whatever the source: once per split, source ``none``. Variants on which λ may not be chosen
    (the noise baselines) are evaluated on test only."""
    setup = rig.setup
    variants = rig.variants if grid.variants is None else grid.variants
    lambdas = setup.lambdas if grid.lambdas is None else grid.lambdas
    configs = []
    for split in default_splits if grid.splits is None else grid.splits:
        seen_baseline = False
        for layers, variant, lam in product(grid.layer_sets, variants, lambdas):
            source_variant, baseline = get_source_variant(variant), lam == 0.0
            if (split == "dev" and not source_variant.selectable) or (baseline and seen_baseline):
                continue
            seen_baseline |= baseline
            configs.append(results_config(
                rig.preset, setup, data, setup.experiment, source="none" if baseline else variant,
                source_model=None if baseline else setup.source.as_dict(),
                noise=None if baseline or not source_variant.random else asdict(setup.noise),
                split=split, **{"lambda": float(lam)}, layers=None if baseline or layers is None else list(layers)))
    return configs


def run_sweep(rig: MergeRig, data: Mapping[str, Any], label: str, evaluate: Callable[[str], dict[str, Any]],
              prepare: Callable[[str], Any], store: ResultStore, grid: SweepGrid, default_splits: Sequence[str] = SPLITS
              ) -> pd.DataFrame:
    """Evaluate :func:`sweep_configs` with ``evaluate(split)`` called inside each configuration's merge, after
    ``prepare(split)`` on the unmerged target (only for configurations not in the store yet)."""

    def run(config: Mapping[str, Any]) -> dict[str, Any]:
        prepare(config["split"])
        merger = rig.mergers["source" if config["source"] == "none" else config["source"]]
        with merger.merged(config["lambda"], config["layers"]):
            return evaluate(config["split"])

    df = pd.DataFrame(run_grid(sweep_configs(rig, data, grid, default_splits), run, store,
                               desc=f"{label}: {grid.describe()}"))
    return df.assign(corpus=label, layers=df["layers"].map(layer_label))


def layers_phrase(label: str) -> str:
    """A layer subset as prose, from its :func:`layer_label`: ``all layers``, ``layer 5``, ``layers 12-19``."""
    if label == "all":
        return "all layers"
    return f"layer {label}" if label.isdigit() else f"layers {label}"


def layer_label(layers: Sequence[int] | None) -> str:
    """How a layer subset is shown: ``all``, ``5``, ``12-19`` (a block) or ``1,4,7`` (a scattered pick)."""
    if layers is None:
        return "all"
    layers = sorted(layers)
    if len(layers) == 1:
        return str(layers[0])
    if layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-{layers[-1]}"
    return ",".join(map(str, layers))
