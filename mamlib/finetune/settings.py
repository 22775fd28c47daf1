"""The settings of a fine-tuning run (Sec. 4.2), validated on construction; light to import (presets check them)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


@dataclass(frozen=True)
class TrainSettings:
    """Everything about a fine-tuning run except its data, model and seed (part of every results key): ``epochs``
    (stopped at ``max_steps`` optimizer steps when given); the effective ``batch_size``, a multiple of ``micro_batch``
    × devices; ``warmup``, the share of steps with a rising learning rate (then it decays linearly to 0); L-MAM's
    ``lambda_init`` and ``lambda_lr``; ``mixed_precision="auto"``, bf16 on a CUDA GPU that supports it."""

    lr: float = 1e-5
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    micro_batch: int = 8
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    lambda_init: float = 0.05
    lambda_lr: float = 1e-2
    checkpoint_every: int = 25
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        for name in ("lr", "lambda_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"finetune.{name} must be a positive number, got {value!r}")
        for name in ("epochs", "batch_size", "micro_batch", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"finetune.{name} must be a positive integer, got {value!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"finetune.max_steps must be a positive integer or absent, got {self.max_steps!r}")
        if self.batch_size % self.micro_batch:
            raise ValueError(f"finetune.batch_size ({self.batch_size}) must be a multiple of finetune.micro_batch "
                             f"({self.micro_batch}): the effective batch is reached by gradient accumulation")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"finetune.warmup must lie in [0, 1), got {self.warmup!r}")
        if not 0.0 < self.lambda_init < 1.0:
            raise ValueError(f"finetune.lambda_init must lie strictly inside (0, 1), got {self.lambda_init!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"finetune.mixed_precision must be one of {list(MIXED_PRECISION)}, "
                             f"got {self.mixed_precision!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
