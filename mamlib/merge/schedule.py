"""The λ schedule of a merge, checked once: whatever a user gives becomes a ``[source][layer]`` table of floats —
one value for every layer (Eq. 1), a value on a subset of layers and 0 elsewhere (Eq. 2), one value per layer (Eq. 3's
``λ_i``, fixed), one such spec per source (λ summing to at most 1 at every layer) — and every source a layer map
(target layer ``i`` → source layer), by default evenly spaced. The merger writes and plans from the table, L-MAM
starts from it, and the kernels of :mod:`~mamlib.merge.interpolation` trust it. ``mam merge``'s YAML and the presets
read λ and layer indices with :func:`lambda_values` and :func:`layer_indices`: errors name the key path.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np
from torch import Tensor

#: How far past 1 a sum of λ may lie from rounding alone (0.551 + 0.333 + 0.116 is 1.0000000000000002 in floats).
SUM_TOLERANCE = 1e-9
#: One source's λ as a user gives it: a real number, or one per target layer.
LambdaSpec = float | Sequence[float]


def as_lambda(lam: object, *, where: str = "λ") -> float:
    """``lam`` as a float in [0, 1]: any real scalar — Python int or float, a numpy scalar or 0-d array, a 0-d (or
    one-element) tensor. Anything else (a bool, a string, None, a sequence, NaN, a value outside [0, 1]) is a
    ValueError naming ``where``."""
    value: object = lam
    if isinstance(lam, Tensor):
        if lam.numel() != 1:
            raise ValueError(f"{where} must be a scalar, got a tensor of shape {tuple(lam.shape)}")
        value = lam.detach().reshape(()).item()
    elif isinstance(lam, (np.ndarray, np.generic)) and lam.shape == ():
        value = lam.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where} must be a real number in [0, 1], got {lam!r}")
    f = float(value)
    if math.isnan(f) or not 0.0 <= f <= 1.0:
        raise ValueError(f"{where} must lie in [0, 1], got {lam!r}")
    return f


def is_scalar(lam: object) -> bool:
    """Whether ``lam`` is one number (a Python, numpy or 0-d tensor scalar) rather than a sequence of factors."""
    if isinstance(lam, (Tensor, np.ndarray)):
        return lam.ndim == 0
    return isinstance(lam, (numbers.Number, np.generic, str)) or lam is None


def lambda_values(values: Iterable[object], where: str, *, entry: str = "{where}[{j}]") -> tuple[float, ...]:
    """Each of ``values`` through :func:`as_lambda`; entry ``j`` is named by the template ``entry``."""
    return tuple(as_lambda(v, where=entry.format(where=where, j=j)) for j, v in enumerate(values))


def _is_index(i: object) -> bool:
    return isinstance(i, int) and not isinstance(i, bool)


def layer_indices(d: object, where: str) -> list[int]:
    """A non-empty list of layer indices (integers from 0) as a config writes them; the range is checked against
    the models later (:func:`layer_lambdas`, :func:`check_layer_map`)."""
    if not isinstance(d, (list, tuple)) or not d:
        raise ValueError(f"{where} must be a non-empty list of layer indices, got {d!r}")
    for j, i in enumerate(d):
        if not _is_index(i) or i < 0:
            raise ValueError(f"{where}[{j}] must be a layer index (an integer from 0), got {i!r}")
    return list(d)


def layer_lambdas(num_layers: int, lam: object, layers: Iterable[int] | None = None) -> list[float]:
    """Eq. 2: the per-layer factors ``λ_i`` — ``lam`` for layers in ``layers`` (all when None), 0 elsewhere."""
    f = as_lambda(lam)
    chosen = range(num_layers) if layers is None else list(layers)
    for i in chosen:
        if not _is_index(i) or not 0 <= i < num_layers:
            raise ValueError(f"layer index {i!r} is out of range for a model of {num_layers} layers")
    return [f if i in chosen else 0.0 for i in range(num_layers)]


def per_layer_lambdas(
    num_layers: int, lam: LambdaSpec, layers: Iterable[int] | None = None, *, where: str = "λ"
) -> list[float]:
    """One source's row of the table: a real number for every layer (Eq. 1), for the layers in ``layers`` only and
    0 elsewhere (Eq. 2), or one value per layer (Eq. 3). Errors name ``where``."""
    if is_scalar(lam):
        try:
            return layer_lambdas(num_layers, lam, None if layers is None else list(layers))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if layers is not None:
        raise ValueError(f"{where}: give either per-layer λ values or a layer subset, not both")
    try:
        values = list(lam)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{where} must be a real number in [0, 1] or one such number per layer, got {lam!r}") from None
    if len(values) != num_layers:
        raise ValueError(f"{where}: {len(values)} per-layer λ values for a target of {num_layers} layers")
    return list(lambda_values(values, where, entry="{where} of layer {j}"))


def check_lambda_sum(lams: Sequence[float], *, where: str = "the sources' λ") -> float:
    """The sum of ``lams`` (each already in [0, 1]); ValueError naming ``where`` when it exceeds 1 beyond rounding."""
    total = float(sum(lams))
    if total > 1.0 + SUM_TOLERANCE:
        raise ValueError(f"{where} sum to {total:g}, past 1 ({' + '.join(f'{lam:g}' for lam in lams)})")
    return total


def lambda_table(
    num_layers: int, lams: Sequence[LambdaSpec], layers: Sequence[Iterable[int] | None] | None = None, *,
    labels: Sequence[str],
) -> list[list[float]]:
    """The ``[source][layer]`` table of Eq. 1 generalised to several sources: one spec per source (see
    :func:`per_layer_lambdas`; a table is a spec too) and an optional layer subset per source. ValueError names the
    source, or the layer where the sources' λ sum past 1."""
    n = len(labels)
    if is_scalar(lams) or len(lams) != n:
        raise ValueError(f"give one λ (or one λ per layer) for each of the {n} sources, got {lams!r}")
    subsets = [None] * n if layers is None else list(layers)
    if len(subsets) != n:
        raise ValueError(f"{n} sources but {len(subsets)} layer subsets")
    table = [per_layer_lambdas(num_layers, lam, sub, where=f"λ of {label}")
             for lam, sub, label in zip(lams, subsets, labels)]
    for i in range(num_layers):
        check_lambda_sum([row[i] for row in table], where=f"at target layer {i} the λ of {', '.join(labels)}")
    return table


def evenly_spaced_layer_map(num_target_layers: int, num_source_layers: int) -> list[int]:
    """The default layer map: target layer ``i`` takes source layer ``round(i·(S−1)/(T−1))`` — first to first, last
    to last, evenly spaced between, the identity when the depths agree. The quotient is rounded exactly (a Fraction),
    half to even: ``7·29/14 = 14.5`` gives 14 (``T, S = 15, 30``), ``11·15/22 = 7.5`` gives 8 (``T, S = 23, 16``)."""
    if num_target_layers < 1 or num_source_layers < 1:
        raise ValueError("layer counts must be positive")
    if num_target_layers == 1:
        return [0]
    return [round(Fraction(i * (num_source_layers - 1), num_target_layers - 1)) for i in range(num_target_layers)]


def check_layer_map(layer_map: Sequence[int], num_target_layers: int, num_source_layers: int) -> list[int]:
    """Validate a user-given map ``target layer i → source layer layer_map[i]``."""
    if len(layer_map) != num_target_layers:
        raise ValueError(f"layer map has {len(layer_map)} entries; the target has {num_target_layers} layers")
    for i, s in enumerate(layer_map):
        if not _is_index(s) or not 0 <= s < num_source_layers:
            raise ValueError(
                f"layer map sends target layer {i} to source layer {s!r}, out of range for {num_source_layers} layers"
            )
    return list(layer_map)


def resolve_layer_map(layer_map: Sequence[int] | None, num_target_layers: int, num_source_layers: int) -> list[int]:
    """The one layer-map policy: ``layer_map`` when given (checked), else :func:`evenly_spaced_layer_map`."""
    if layer_map is None:
        return evenly_spaced_layer_map(num_target_layers, num_source_layers)
    return check_layer_map(list(layer_map), num_target_layers, num_source_layers)
