"""The linear-head protocol of the zero-shot classification experiments (Sec. 4.1, Tables 1 and 2, ESC-50).

A linear classification head reads a frozen encoder's frame features, mean-pooled over time
(:func:`mamlib.aec.encoders.embed`). The head is trained once, on the training folds, with the unmerged encoder; the
merge (Eq. 1/2) is then applied to the encoder and the *same* head is evaluated, so any change in error comes from
the merged attention alone ("zero-shot")::

    fn = beats_encoder_fn(model)
    head = train_linear_head(embed(fn, split.train), labels(split.train), epochs=20, lr=1e-3, seed=0)
    with merger.merged(0.1):
        err = (predict(head, embed(fn, split.test)) != labels(split.test)).float().mean() * 100

The paper fine-tunes with AdamW (lr 1e-3 for AEC, batch 32; Sec. 4.2); the head here uses the same optimizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mamlib.aec.esc50 import Clip


def labels(clips: Sequence[Clip]) -> Tensor:
    """The class indices of ``clips`` as a long tensor."""
    return torch.tensor([c.label for c in clips], dtype=torch.long)


def train_linear_head(
    features: Tensor,
    targets: Tensor,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    num_classes: int | None = None,
) -> nn.Linear:
    """A linear classifier on frozen pooled features, trained with AdamW and cross-entropy (deterministic: the
    initialisation and the mini-batch order come from ``seed``).

    The features are z-scored with the training statistics during training and the scaling is then folded into
    the returned layer, so it applies to raw features (of the merged encoder too).
    """
    if features.dim() != 2 or targets.shape != (features.shape[0],):
        shapes = f"{tuple(features.shape)}, {tuple(targets.shape)}"
        raise ValueError(f"expected features (N, D) and targets (N,), got {shapes}")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs, batch_size and lr must be positive (got {epochs}, {batch_size}, {lr})")
    x = features.detach().float().cpu()
    y = targets.detach().long().cpu()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{bad} of {len(x)} training feature vectors contain NaN or infinite values; "
                         "the encoder diverged or its input is corrupt — nothing was trained")
    n_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"targets must lie in [0, {n_classes}), got {int(y.min())}..{int(y.max())}")
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False).clamp(min=1e-6) if len(x) > 1 else torch.ones(x.shape[1])
    z = (x - mean) / std
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(x.shape[1], n_classes)
    with torch.no_grad():
        bound = 1.0 / x.shape[1] ** 0.5
        head.weight.uniform_(-bound, bound, generator=gen)
        head.bias.uniform_(-bound, bound, generator=gen)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        order = torch.randperm(len(z), generator=gen)
        for start in range(0, len(z), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(head(z[idx]), y[idx])
            if not torch.isfinite(loss):
                raise ValueError(f"training loss became {loss.item()} in epoch {epoch}: lower lr (now {lr})")
            loss.backward()
            opt.step()
    with torch.no_grad():  # head(z) = W (x − μ)/σ + b  =  (W/σ) x + (b − W μ/σ)
        weight = head.weight / std
        head.bias.sub_(weight @ mean)
        head.weight.copy_(weight)
    return head.eval().requires_grad_(False)


@torch.no_grad()
def predict(head: nn.Module, features: Tensor) -> Tensor:
    """Predicted class indices of ``head`` for pooled ``features``."""
    param = next(head.parameters())
    return head(features.to(param.device, param.dtype)).argmax(dim=-1).cpu()


def classification_error(predictions: Tensor, truth: Tensor) -> float:
    """Classification error in percent, the paper's metric for ESC-50 (Sec. 4): 100 · wrong / total."""
    if len(truth) == 0 or len(predictions) != len(truth):
        raise ValueError(f"need as many predictions as labels, at least one (got {len(predictions)}, {len(truth)})")
    return 100.0 * int((predictions != truth).sum()) / len(truth)
