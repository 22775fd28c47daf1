"""Noise "sources" for Table 1's baselines (Sec. 4.1): N(Source), N(Target) and N(0, 1).

The paper draws matrices "with the same mean and variance as the parameters" of the source or target model and
shapes them like the target's attention matrices. It does not say over which parameters the moments are taken. We
take them **per matrix** by default: the noise replacing target layer ``i``'s ``W_Q`` has the mean and standard
deviation of the corresponding source (or target) ``W_Q``. ``pooling="model"`` instead pools the moments over all of
the model's Q/K/V weight matrices. Both keep the matrix-level scale that the comparison is about; per-matrix also
keeps the differences between layers and projections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from mamlib.merge.merger import AttentionWeights, Key

NoiseLike = Literal["source", "target", "standard"]
Pooling = Literal["matrix", "model"]


def moments(weights: AttentionWeights, pooling: Pooling = "matrix") -> dict[Key, tuple[float, float]]:
    """Mean and (population) standard deviation of each weight matrix, or of all of them pooled, by key."""
    def stats(w: torch.Tensor) -> tuple[float, float]:
        return w.double().mean().item(), w.double().std(unbiased=False).item()

    if pooling == "matrix":
        return {k: stats(w) for k, w in weights.weights.items()}
    if pooling == "model":
        return dict.fromkeys(weights.weights, stats(torch.cat([w.flatten() for w in weights.weights.values()])))
    raise ValueError(f"pooling must be 'matrix' or 'model', got {pooling!r}")


def noise_weights(like: AttentionWeights, stats_from: AttentionWeights | None, *, seed: int,
                  pooling: Pooling = "matrix", layer_map: Sequence[int] | None = None) -> AttentionWeights:
    """Gaussian matrices shaped like ``like`` (the target) with the moments of ``stats_from``.

    ``stats_from=None`` gives N(0, 1). With a ``layer_map`` (target layer → source layer), target layer ``i`` takes
    the moments of ``stats_from``'s layer ``layer_map[i]``. Biases are left out (``None``). Deterministic in ``seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    stats = None if stats_from is None else moments(stats_from, pooling)
    out: dict[Key, torch.Tensor] = {}
    for (layer, proj), w in sorted(like.weights.items()):
        z = torch.randn(w.shape, generator=gen, dtype=torch.float64)
        if stats is not None:
            src_layer = layer if layer_map is None else layer_map[layer]
            mean, std = stats[(src_layer, proj)]
            z = z * std + mean
        out[(layer, proj)] = z.to(dtype=w.dtype, device=w.device)
    return AttentionWeights(out, {k: None for k in out}, like.num_layers,
                            "N(0,1)" if stats_from is None else f"N({stats_from.origin}, per {pooling})")


def noise_source(like: NoiseLike, target: AttentionWeights, source: AttentionWeights, *, seed: int,
                 pooling: Pooling = "matrix", layer_map: Sequence[int] | None = None) -> AttentionWeights:
    """The noise of one Table 1 column, drawn ``like`` the source's moments, the target's, or ``"standard"``."""
    stats_from = {"source": source, "target": target, "standard": None}
    if like not in stats_from:
        raise ValueError(f"noise must be drawn like one of {sorted(stats_from)}, got {like!r}")
    return noise_weights(target, stats_from[like], seed=seed, pooling=pooling,
                         layer_map=layer_map if like == "source" else None)
