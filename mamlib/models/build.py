"""Building the experiments' models: :func:`build_model` turns a :class:`~mamlib.models.kinds.ModelSpec` into a
:class:`~mamlib.models.base.LoadedModel` (network plus its processors) with the builder its kind declares."""

from __future__ import annotations

import torch

from mamlib.models.base import LoadedModel
from mamlib.models.kinds import ModelSpec, model_kinds


def build_model(spec: ModelSpec, device: str | torch.device = "cpu", dtype: str | None = None) -> LoadedModel:
    """The network ``spec`` describes with its processors, in eval mode on ``device`` (and in ``dtype``, a torch
    dtype name such as ``"bfloat16"``, when given)."""
    loaded = model_kinds()[spec.kind].build(spec)
    loaded.model = loaded.model.eval().to(device)
    if dtype is not None:
        loaded.model = loaded.model.to(getattr(torch, dtype))
    return loaded
