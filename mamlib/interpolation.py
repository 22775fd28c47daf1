"""The arithmetic of attention merging, as pure functions over tensors.

* Eq. 1 (Sec. 3.1): ``W_merge = λ·W_source + (1−λ)·W_target`` — :func:`interpolate`.
* Eq. 2 (Sec. 3.2): the same, with ``λ = 0`` outside a chosen subset of layers — :func:`layer_lambdas`.
* Eq. 3 (Sec. 3.3): one ``λ_i`` per layer; :func:`interpolate` accepts a tensor λ so gradients flow into it.
* Several sources at once (the paper's future work) — :func:`convex_combination`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

Lambda = float | Tensor


def check_lambda(lam: Lambda, *, where: str = "λ") -> None:
    """Raise ValueError unless every entry of ``lam`` is a finite number in [0, 1]."""
    values = lam.detach().flatten().tolist() if isinstance(lam, Tensor) else [lam]
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{where} must lie in [0, 1], got {v!r}")


def interpolate(source: Tensor, target: Tensor, lam: Lambda) -> Tensor:
    """Eq. 1: ``lam * source + (1 - lam) * target``.

    ``source`` and ``target`` must have the same shape; ``lam`` is a float or a scalar tensor (Eq. 3's learnable
    ``λ_i``, in which case the result is differentiable in ``lam``). The inputs are not modified.
    """
    if source.shape != target.shape:
        raise ValueError(f"cannot interpolate: source shape {tuple(source.shape)} != target {tuple(target.shape)}")
    src = source.to(target.dtype)
    if isinstance(lam, Tensor):
        return lam * src + (1 - lam) * target
    check_lambda(lam)
    return lam * src + (1.0 - lam) * target


def convex_combination(target: Tensor, sources: Sequence[Tensor], lams: Sequence[float]) -> Tensor:
    """``Σ_s λ_s·W_s + (1 − Σ_s λ_s)·W_target`` — Eq. 1 generalised to several sources.

    Every ``λ_s`` and their sum must lie in [0, 1]; with one source this equals :func:`interpolate`.
    """
    if len(sources) != len(lams):
        raise ValueError(f"{len(sources)} sources but {len(lams)} interpolation factors")
    for i, (s, lam) in enumerate(zip(sources, lams)):
        check_lambda(lam, where=f"λ of source {i}")
        if s.shape != target.shape:
            raise ValueError(f"source {i} shape {tuple(s.shape)} != target {tuple(target.shape)}")
    check_lambda(float(sum(lams)), where="sum of the sources' λ")
    out = target * (1.0 - float(sum(lams)))
    for s, lam in zip(sources, lams):
        out = out + lam * s.to(target.dtype)
    return out


def layer_lambdas(num_layers: int, lam: float, layers: Iterable[int] | None = None) -> list[float]:
    """Eq. 2: the per-layer factors ``λ_i`` — ``lam`` for layers in ``layers`` (all when None), 0 elsewhere."""
    check_lambda(lam)
    if layers is None:
        return [float(lam)] * num_layers
    chosen = set()
    for i in layers:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < num_layers:
            raise ValueError(f"layer index {i!r} is out of range for a model of {num_layers} layers")
        chosen.add(i)
    return [float(lam) if i in chosen else 0.0 for i in range(num_layers)]


def match_norm(source: Tensor, target: Tensor) -> Tensor:
    """``source`` rescaled to the Frobenius norm of ``target`` (a norm-matched variant of Eq. 1's source term)."""
    s = source.to(target.dtype)
    norm = torch.linalg.matrix_norm(s) if s.dim() == 2 else s.norm()
    if norm == 0:
        raise ValueError("cannot match the norm of an all-zero source matrix")
    tnorm = torch.linalg.matrix_norm(target) if target.dim() == 2 else target.norm()
    return s * (tnorm / norm)
