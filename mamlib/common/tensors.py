"""Tensor helpers shared by the audio encoders, the layer-selection readers and the batch builders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def masked_mean(hidden: Tensor, valid: Tensor | None) -> Tensor:
    """Mean over the sequence axis of ``hidden [B, T, H]`` of the positions where ``valid [B, T]`` is True (None:
    all; a padding mask is passed as ``~padding_mask``); ValueError for a sample without any."""
    if hidden.dim() != 3:
        raise ValueError(f"expected hidden states [batch, time, width], got shape {tuple(hidden.shape)}")
    if valid is None:
        return hidden.mean(dim=1)
    if valid.shape != hidden.shape[:2]:
        raise ValueError(f"mask shape {tuple(valid.shape)} does not match hidden states {tuple(hidden.shape[:2])}")
    m = valid.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)
    counts = m.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("a sample has no unmasked position to average over")
    return (hidden * m).sum(dim=1) / counts


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_samples: int | None = None,
                          padded_length: int = 0) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so that padding stays small.

    A batch holds at most ``batch_size`` items and, when ``max_samples`` is given, at most ``max_samples`` padded
    samples (its longest item, or ``padded_length`` if the model pads every item to that, × its size): a budget of
    audio rather than a count, so that batches of short clips are large and batches of long clips small. An item
    longer than the budget forms a batch of its own."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be positive, got {max_samples}")
    budget = float("inf") if max_samples is None else max_samples
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):  # longest first: a batch's first is its longest
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and max(lengths[last[0]], padded_length) * (len(last) + 1) <= budget:
            last.append(i)
        else:
            batches.append([i])
    return batches
