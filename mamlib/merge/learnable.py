"""Learnable attention merging, L-MAM (Sec. 3.3, Eq. 3): one trainable ``λ_i`` per target layer, learned jointly
with the target's weights during fine-tuning.

Every merged Q/K/V projection of the target gets a ``torch.nn.utils.parametrize`` parametrization, so its
``weight`` is computed inside the forward pass as ``interpolate(W_s,i, W_t,i, λ_i)`` (Eq. 3). Autograd reaches both
``λ_i`` and the target's own matrix ``W_t,i`` (still a trainable parameter, now at
``….parametrizations.weight.original``); the source's matrix is a frozen, non-persistent buffer (never trained,
never written into a checkpoint). Mixed precision, gradient checkpointing and data-parallel training see ordinary
modules, so they work unchanged.

Decisions the paper leaves open, fixed here (and stated in the book's Chapter 4):

* ``λ_i = sigmoid(θ_i)`` of a free parameter ``θ_i`` whose value is clamped to ±:data:`LOGIT_BOUND` while its
  gradient passes straight through: λ stays inside (0, 1) and ``θ_i`` always receives gradient (float32 sigmoid is
  exactly 1.0 past θ ≈ 16.6, with zero gradient; a plain clamp, as AdaMerging's, stops learning at a bound).
  Inside the bound λ is exactly ``sigmoid(θ_i)``; past it ``θ_i`` may drift, and returns to it before λ moves.
* One ``λ_i`` per layer, shared by Q, K and V (Eq. 3 indexes λ by layer only).
* Each ``λ_i`` starts at ``init`` (a number, or one per layer).

:meth:`LearnableMerge.bake` folds the learned factors into plain weights: the model is then an ordinary network
that ``save_pretrained`` writes and ``from_pretrained`` reads back with the same outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from mamlib.merge.families import PROJECTIONS, AttentionFamily
from mamlib.merge.interpolation import combine
from mamlib.merge.merger import AttentionMerger, AttentionWeights
from mamlib.merge.schedule import as_lambda, per_layer_lambdas

#: The bound on ``|θ_i|``: sigmoid(±15) is 3.1e-7 from 0 or 1, and its float32 gradient about 3e-7.
LOGIT_BOUND = 15.0


class LayerFactor(nn.Module):
    """The learnable ``λ_i = sigmoid(θ_i)`` of one target layer (shared by its Q, K and V), ``θ_i`` bounded."""

    def __init__(self, init: float) -> None:
        super().__init__()
        lam = as_lambda(init, where="initial λ")
        logit = torch.logit(torch.tensor(lam, dtype=torch.float64))
        if not abs(float(logit)) <= LOGIT_BOUND:
            raise ValueError(f"a learnable λ must start inside (0, 1) with |logit(λ)| ≤ {LOGIT_BOUND:g}, got {init!r}")
        self.logit = nn.Parameter(logit.float())

    def forward(self) -> Tensor:
        theta = self.logit
        bounded = theta.detach().clamp(-LOGIT_BOUND, LOGIT_BOUND) + (theta - theta.detach())  # value clamped, ∂/∂θ = 1
        return torch.sigmoid(bounded)


class InterpolatedWeight(nn.Module):
    """The parametrization of one projection's weight: ``W ↦ λ_i·W_s + (1 − λ_i)·W`` (Eq. 3), by the blend kernel
    :func:`~mamlib.merge.interpolation.combine` (float32 arithmetic whatever the weight's dtype)."""

    def __init__(self, source: Tensor, factor: LayerFactor) -> None:
        super().__init__()
        self.register_buffer("source", source.detach(), persistent=False)
        self.factor = factor

    def forward(self, weight: Tensor) -> Tensor:
        return combine(weight, [self.source], [self.factor()])  # λ_i inside (0, 1) by construction


class LearnableMerge:
    """Attach Eq. 3 to ``target``: its Q/K/V become ``λ_i·W_s + (1−λ_i)·W_t`` with trainable ``λ_i`` and ``W_t``.

    ``source`` is a model or :class:`~mamlib.merge.merger.AttentionWeights`; layer maps, families, projections and
    every shape check are those of :class:`~mamlib.merge.merger.AttentionMerger` (``layer_map`` defaults to evenly
    spaced). ``init`` is the starting λ — one number or one per layer, each strictly inside (0, 1).

    >>> lmam = LearnableMerge(model, bert, init=0.05)   # doctest: +SKIP
    >>> optimizer = torch.optim.AdamW([{"params": lmam.other_parameters(model)},
    ...                                {"params": lmam.parameters(), "lr": 1e-2}])   # doctest: +SKIP
    >>> lmam.bake(); model.save_pretrained("merged")   # doctest: +SKIP
    """

    def __init__(self, target: nn.Module, source: nn.Module | AttentionWeights, *, init: float | Sequence[float] = 0.05,
                 layer_map: Sequence[int] | None = None, target_family: str | AttentionFamily | None = None,
                 source_family: str | AttentionFamily | None = None, projections: Sequence[str] = PROJECTIONS) -> None:
        merger = AttentionMerger(target, source, target_family=target_family, source_family=source_family,
                                 projections=projections, layer_map=layer_map)
        starts = per_layer_lambdas(merger.num_layers, init, where="initial λ")
        self.target = target
        self.layer_map = merger.layer_map
        self.projections = merger.projections
        self.factors = nn.ModuleList(LayerFactor(lam) for lam in starts)
        self._linears: list[nn.Linear] = []
        for i in range(merger.num_layers):
            for p in merger.projections:
                lin = merger.projection(i, p)
                if parametrize.is_parametrized(lin, "weight"):
                    raise ValueError(f"layer {i} {p}: the weight is already parametrized (LearnableMerge attached "
                                     "twice?)")
                self.factors[i].to(lin.weight.device)
                src = merger.source_matrix(i, p).to(lin.weight.device)  # its own dtype: the blend is float32
                parametrize.register_parametrization(lin, "weight", InterpolatedWeight(src, self.factors[i]))
                self._linears.append(lin)
        self.baked = False

    @property
    def num_layers(self) -> int:
        return len(self.factors)

    def parameters(self) -> list[nn.Parameter]:
        """The ``θ_i`` behind the ``λ_i`` (one per layer), e.g. for their own optimizer group."""
        return [f.logit for f in self.factors]

    def other_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """``model``'s trainable parameters other than the ``θ_i`` (the target's weights, ``W_t`` included)."""
        mine = {id(p) for p in self.parameters()}
        return [p for p in model.parameters() if p.requires_grad and id(p) not in mine]

    def lambdas(self) -> list[float]:
        """The current ``λ_i``, layer by layer."""
        with torch.no_grad():
            return [float(f()) for f in self.factors]

    def bake(self) -> list[float]:
        """Fold the learned ``λ_i`` into plain Q/K/V weights (the merged matrices, as ordinary parameters) and
        return them; afterwards the model is an ordinary network with no trace of the parametrization."""
        if self.baked:
            raise RuntimeError("this LearnableMerge is already baked")
        lams = self.lambdas()
        with torch.no_grad():
            for lin in self._linears:
                blend = lin.parametrizations.weight[0]
                merged = combine(lin.parametrizations.weight.original, [blend.source], [float(blend.factor())])
                parametrize.remove_parametrizations(lin, "weight", leave_parametrized=False)
                lin.weight.copy_(merged)
        self.baked = True
        return lams
