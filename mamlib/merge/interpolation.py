"""The arithmetic of attention merging, as pure functions over tensors.

* Eq. 1 (Sec. 3.1): ``W_merge = λ·W_source + (1−λ)·W_target`` — :func:`interpolate`.
* Eq. 2 (Sec. 3.2): the same, with ``λ = 0`` outside a chosen subset of layers — :func:`layer_lambdas`.
* Eq. 3 (Sec. 3.3): one ``λ_i`` per layer; :func:`interpolate` accepts a tensor λ so gradients flow into it.
* Several sources at once (the paper's future work) — :func:`convex_combination`.

What λ may be is decided once, in :mod:`~mamlib.merge.schedule`. :func:`interpolate` and :func:`convex_combination`
check the λ they are given (a tensor that tracks gradients on a detached copy); :func:`combine` is the one blend
kernel behind every merge — the book's reversible merger, L-MAM (Eq. 3) and its bake, and ``mam merge``'s streamed
writer — with no check, for λ the schedule or L-MAM's bounded sigmoid already vouch for. It accumulates in float32
(float64 for float64 weights) and casts back to the target's dtype once, so a bfloat16 merge is the correctly
rounded float32 merge whichever way the model was named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from mamlib.merge.schedule import as_lambda, check_lambda_sum
from mamlib.merge.schedule import layer_lambdas as layer_lambdas  # Eq. 2, re-exported

Lambda = float | Tensor


def check_lambda(lam: Lambda, *, where: str = "λ") -> None:
    """Raise ValueError unless every entry of ``lam`` (a real scalar, or a tensor of factors) lies in [0, 1]. A
    tensor that tracks gradients is read through a detached copy, so its graph is untouched."""
    if isinstance(lam, Tensor) and (lam.requires_grad or lam.numel() != 1):
        for v in lam.detach().flatten().tolist():
            as_lambda(v, where=where)
    else:
        as_lambda(lam, where=where)


def interpolate(source: Tensor, target: Tensor, lam: Lambda) -> Tensor:
    """Eq. 1: ``lam * source + (1 - lam) * target``.

    ``source`` and ``target`` must have the same shape; ``lam`` is a real number in [0, 1] or a tensor (Eq. 3's
    learnable ``λ_i``, in which case the result is differentiable in ``lam``); a value outside [0, 1] or NaN is a
    ValueError either way. The inputs are not modified.
    """
    if source.shape != target.shape:
        raise ValueError(f"cannot interpolate: source shape {tuple(source.shape)} != target {tuple(target.shape)}")
    if isinstance(lam, Tensor) and lam.requires_grad:
        check_lambda(lam)
        return combine(target, [source], [lam])
    return combine(target, [source], [as_lambda(lam)])


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a merge is computed in: float64 for float64 weights, float32 for every other floating dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def combine(
    target: Tensor, sources: Iterable[Tensor | None], lams: Sequence[Lambda], norm_matched: Sequence[bool] | None = None
) -> Tensor:
    """The blend kernel, Eq. 1 over several sources: ``target·(1 − Σ_s λ_s) + Σ_s λ_s·W_s`` with no check of λ.

    Computed in :func:`accumulation_dtype` and cast back to ``target``'s dtype once. ``sources`` may be a generator
    (each source is read when it is added, so a streamed merge holds one at a time); a source of None counts as zero
    (a missing bias). ``norm_matched[s]`` (one flag per source, when given) rescales source ``s`` to the target's
    Frobenius norm first (:func:`match_norm`, in the accumulation dtype). λ may be tensors: the result is
    differentiable in them (Eq. 3).
    """
    acc = target.to(accumulation_dtype(target.dtype))
    out = acc * (1 - sum(lams))
    for s, (source, lam) in enumerate(zip(sources, lams)):
        if source is None:
            continue
        if tuple(source.shape) != tuple(acc.shape):
            raise ValueError(f"a source of shape {list(source.shape)} for a target of {list(acc.shape)}")
        term = source.to(acc.dtype)
        out = out + lam * (match_norm(term, acc) if norm_matched and norm_matched[s] else term)
    return out.to(target.dtype)


def convex_combination(target: Tensor, sources: Sequence[Tensor], lams: Sequence[float]) -> Tensor:
    """``Σ_s λ_s·W_s + (1 − Σ_s λ_s)·W_target`` — Eq. 1 generalised to several sources.

    Every ``λ_s`` and their sum must lie in [0, 1] (up to :data:`~mamlib.merge.schedule.SUM_TOLERANCE` of
    rounding); with one source the result is bit-identical to :func:`interpolate` (the same products, added in the
    other order).
    """
    if len(sources) != len(lams):
        raise ValueError(f"{len(sources)} sources but {len(lams)} interpolation factors")
    lams = [as_lambda(lam, where=f"λ of source {i}") for i, lam in enumerate(lams)]
    for i, s in enumerate(sources):
        if s.shape != target.shape:
            raise ValueError(f"source {i} shape {tuple(s.shape)} != target {tuple(target.shape)}")
    check_lambda_sum(lams)
    return combine(target, sources, lams)


def match_norm(source: Tensor, target: Tensor) -> Tensor:
    """``source`` rescaled to the Frobenius norm of ``target`` (a norm-matched variant of Eq. 1's source term)."""
    s = source.to(target.dtype)
    norm = torch.linalg.matrix_norm(s) if s.dim() == 2 else s.norm()
    if norm == 0:
        raise ValueError("cannot match the norm of an all-zero source matrix")
    tnorm = torch.linalg.matrix_norm(target) if target.dim() == 2 else target.norm()
    return s * (tnorm / norm)
