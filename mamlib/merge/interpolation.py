"""The arithmetic of attention merging, as pure functions over tensors.

* Eq. 1 (Sec. 3.1): ``W_merge = λ·W_source + (1−λ)·W_target`` — :func:`interpolate`.
* Eq. 2 (Sec. 3.2): the same, with ``λ = 0`` outside a chosen subset of layers — :func:`layer_lambdas`.
* Eq. 3 (Sec. 3.3): one ``λ_i`` per layer; :func:`interpolate` accepts a tensor λ so gradients flow into it.
* Several sources at once (the paper's future work) — :func:`convex_combination`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

Lambda = float | Tensor


def as_lambda(lam: object, *, where: str = "λ") -> float:
    """``lam`` as a float in [0, 1]: any real scalar — Python int or float, a numpy scalar or 0-d array, a 0-d (or
    one-element) tensor. Anything else (a bool, a string, None, a sequence, NaN, a value outside [0, 1]) is a
    ValueError naming ``where``."""
    value: object = lam
    if isinstance(lam, Tensor):
        if lam.numel() != 1:
            raise ValueError(f"{where} must be a scalar, got a tensor of shape {tuple(lam.shape)}")
        value = lam.detach().reshape(()).item()
    elif isinstance(lam, np.ndarray) and lam.shape == ():
        value = lam.item()
    elif isinstance(lam, np.generic):
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


def check_lambda(lam: Lambda, *, where: str = "λ") -> None:
    """Raise ValueError unless every entry of ``lam`` (a real scalar, or a tensor of factors) lies in [0, 1]."""
    if isinstance(lam, Tensor) and lam.numel() != 1:
        for v in lam.detach().flatten().tolist():
            as_lambda(v, where=where)
    else:
        as_lambda(lam, where=where)


def interpolate(source: Tensor, target: Tensor, lam: Lambda) -> Tensor:
    """Eq. 1: ``lam * source + (1 - lam) * target``.

    ``source`` and ``target`` must have the same shape; ``lam`` is a float or a scalar tensor (Eq. 3's learnable
    ``λ_i``, in which case the result is differentiable in ``lam``). The inputs are not modified.
    """
    if source.shape != target.shape:
        raise ValueError(f"cannot interpolate: source shape {tuple(source.shape)} != target {tuple(target.shape)}")
    src = source.to(target.dtype)
    if isinstance(lam, Tensor) and lam.requires_grad:
        return lam * src + (1 - lam) * target
    f = as_lambda(lam)
    return f * src + (1.0 - f) * target


def convex_combination(target: Tensor, sources: Sequence[Tensor], lams: Sequence[float]) -> Tensor:
    """``Σ_s λ_s·W_s + (1 − Σ_s λ_s)·W_target`` — Eq. 1 generalised to several sources.

    Every ``λ_s`` and their sum must lie in [0, 1] (up to :data:`SUM_TOLERANCE` of rounding); with one source the
    result is bit-identical to :func:`interpolate` (the same products, added in the other order).
    """
    if len(sources) != len(lams):
        raise ValueError(f"{len(sources)} sources but {len(lams)} interpolation factors")
    lams = [as_lambda(lam, where=f"λ of source {i}") for i, lam in enumerate(lams)]
    for i, s in enumerate(sources):
        if s.shape != target.shape:
            raise ValueError(f"source {i} shape {tuple(s.shape)} != target {tuple(target.shape)}")
    total = check_lambda_sum(lams)
    out = target * (1.0 - total)
    for s, lam in zip(sources, lams):
        out = out + lam * s.to(target.dtype)
    return out


#: How far past 1 a sum of λ may lie from rounding alone (0.551 + 0.333 + 0.116 is 1.0000000000000002 in floats).
SUM_TOLERANCE = 1e-9


def check_lambda_sum(lams: Sequence[float], *, where: str = "the sources' λ") -> float:
    """The sum of ``lams`` (each already in [0, 1]); ValueError naming ``where`` when it exceeds 1 beyond rounding."""
    total = float(sum(lams))
    if total > 1.0 + SUM_TOLERANCE:
        raise ValueError(f"{where} sum to {total:g}, past 1 ({' + '.join(f'{lam:g}' for lam in lams)})")
    return total


def layer_lambdas(num_layers: int, lam: float, layers: Iterable[int] | None = None) -> list[float]:
    """Eq. 2: the per-layer factors ``λ_i`` — ``lam`` for layers in ``layers`` (all when None), 0 elsewhere."""
    lam = as_lambda(lam)
    if layers is None:
        return [lam] * num_layers
    chosen = set()
    for i in layers:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < num_layers:
            raise ValueError(f"layer index {i!r} is out of range for a model of {num_layers} layers")
        chosen.add(i)
    return [lam if i in chosen else 0.0 for i in range(num_layers)]


def match_norm(source: Tensor, target: Tensor) -> Tensor:
    """``source`` rescaled to the Frobenius norm of ``target`` (a norm-matched variant of Eq. 1's source term)."""
    s = source.to(target.dtype)
    norm = torch.linalg.matrix_norm(s) if s.dim() == 2 else s.norm()
    if norm == 0:
        raise ValueError("cannot match the norm of an all-zero source matrix")
    tnorm = torch.linalg.matrix_norm(target) if target.dim() == 2 else target.norm()
    return s * (tnorm / norm)
