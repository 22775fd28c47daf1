"""The one fine-tuning loop of Sec. 4.2 (Table 5), for every task and for plain fine-tuning and L-MAM alike.

It runs on Hugging Face Accelerate: device placement, bf16 autocast on GPUs, data-parallel training on several GPUs
(``accelerate launch`` or ``notebook_launcher``); the paper's effective batch (32) is reached on any hardware by
gradient accumulation (``batch_size`` examples per optimizer step, ``micro_batch`` per forward pass and device).
AdamW with two parameter groups — the model's weights at ``lr``, the L-MAM logits ``θ_i`` at ``lambda_lr`` without
weight decay — and a linear schedule with warm-up.

A model stored in bfloat16 or float16 trains with float32 master weights: it is cast to float32 for the run (the
optimizer and the checkpoints hold float32), autocast gives the fast arithmetic on a GPU, and every parameter and
buffer goes back to its stored dtype at the end. Updates of an AdamW step at the paper's learning rate are mostly
below a bfloat16 weight's resolution: trained in place, most of them would be rounded away.

The run is deterministic given its ``seed``: the order of examples in epoch ``e`` is a permutation drawn from a
generator seeded with ``(seed, e)``, and the torch generators (dropout) are part of every checkpoint. A run that is
killed resumes from its last checkpoint (:mod:`mamlib.finetune.checkpoint`) and ends with the same weights as an
uninterrupted one. A NaN or infinite loss or gradient stops it with :class:`TrainingDiverged`, naming the step.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mamlib.finetune.checkpoint import find_checkpoint, read_checkpoint, restore_checkpoint, save_checkpoint
from mamlib.finetune.settings import TrainSettings
from mamlib.merge.learnable import LearnableMerge

if TYPE_CHECKING:
    from mamlib.finetune.tasks import Task

class TrainingDiverged(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite; nothing of the run is stored."""


@dataclass
class TrainLog:
    """What a finished run reports: optimizer steps, the mean training loss of each step, the learned ``λ_i``
    after each step (L-MAM; empty otherwise), wall time of this process and whether it resumed a checkpoint."""

    steps: int
    losses: list[float]
    lambdas: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0
    resumed_at: int | None = None


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order of ``n`` examples in ``epoch`` of a run seeded ``seed`` (the same on every machine and resume)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def step_groups(n: int, settings: TrainSettings, seed: int, epoch: int, rank: int = 0, world: int = 1
                ) -> list[list[list[int]]]:
    """Epoch ``epoch``'s optimizer steps for process ``rank`` of ``world``: each step a list of micro-batches
    (example indices). Every process gets the same number of micro-batches (the remainder of the epoch that cannot
    be shared equally is dropped); the last step of an epoch may hold fewer micro-batches."""
    order = epoch_order(n, seed, epoch)
    micro = [order[i : i + settings.micro_batch] for i in range(0, n, settings.micro_batch)]
    per_step = settings.batch_size // (settings.micro_batch * world)
    if per_step < 1:
        raise ValueError(f"finetune.batch_size {settings.batch_size} is smaller than micro_batch × devices "
                         f"({settings.micro_batch} × {world})")
    mine = micro[: len(micro) // world * world][rank::world]
    if not mine:
        raise ValueError(f"{n} training examples are too few for {world} device(s) with micro_batch "
                         f"{settings.micro_batch}")
    return [mine[i : i + per_step] for i in range(0, len(mine), per_step)]


def _mixed_precision(settings: TrainSettings, device: str) -> str:
    if settings.mixed_precision != "auto":
        return settings.mixed_precision
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    return "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"


def _accelerator(mixed_precision: str, cpu: bool) -> Any:
    """An Accelerator with this run's mixed precision. Accelerate keeps one mixed-precision setting per process and
    refuses a second; runs of one kernel may differ (the ASR and the AEC targets of Table 5), so the setting of an
    earlier run is cleared first — the process group (PartialState) is kept."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(cpu=cpu, mixed_precision=mixed_precision)


def _own_forward(model: nn.Module, patched: dict[str, Any]) -> None:
    """Give ``model`` back the attributes ``accelerator.prepare`` set on it (``patched``: those it had before, None
    where it had none). Under mixed precision ``prepare`` replaces the model's ``forward`` with an autocast wrapper,
    which would score every later evaluation of the fine-tuned model in bf16 — Table 5's fine-tuned rows in another
    precision than the rows they are compared with. (Accelerate's own ``unwrap_model(keep_fp32_wrapper=False)``
    walks past transformers' decorators of ``forward`` too, so the instance attributes are restored here.)"""
    for name, before in patched.items():
        if before is None:
            model.__dict__.pop(name, None)
        else:
            model.__dict__[name] = before


@contextmanager
def _alone() -> Iterator[None]:
    """Hide the launcher's process group from Accelerate while it sets up (one process, this process's device)."""
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    saved = {k: os.environ.pop(k) for k in names if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _low_precision_dtypes(model: nn.Module) -> dict[str, torch.dtype]:
    """The stored dtype of every parameter and buffer when any of them is in 16-bit floating point, else nothing."""
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    if not any(t.dtype in (torch.bfloat16, torch.float16) for t in tensors.values()):
        return {}
    return {name: t.dtype for name, t in tensors.items()}


def _restore_dtypes(model: nn.Module, dtypes: dict[str, torch.dtype]) -> None:
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        for name, dtype in dtypes.items():
            tensors[name].data = tensors[name].data.to(dtype)


def train(
    model: nn.Module,
    task: Task,
    examples: Sequence[Any],
    settings: TrainSettings,
    *,
    seed: int,
    run_dir: str | Path,
    lmam: LearnableMerge | None = None,
    device: str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    progress: bool = True,
    desc: str = "fine-tuning",
    data_parallel: bool = True,
) -> TrainLog:
    """Fine-tune ``model`` in place on ``examples`` (with L-MAM's ``θ_i`` when ``lmam`` is attached to it).

    Checkpoints go to ``run_dir`` every ``settings.checkpoint_every`` steps and after the last; a run that finds
    one there resumes from it (a finished run returns at once). ``on_step(step, loss)`` is called after every
    optimizer step. Under ``accelerate launch`` the run is data-parallel over every process; with
    ``data_parallel=False`` this process trains it alone (the book's sharded builds give whole runs to processes).
    """
    from transformers import get_linear_schedule_with_warmup

    if not examples:
        raise ValueError("no training examples")
    with nullcontext() if data_parallel else _alone():
        accelerator = _accelerator(_mixed_precision(settings, device), cpu=not device.startswith("cuda"))
    rank, world = accelerator.process_index, accelerator.num_processes
    stored = _low_precision_dtypes(model)
    if stored:
        model.float()
    task.prepare(model)
    if settings.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    steps_per_epoch = len(step_groups(len(examples), settings, seed, 0, rank, world))
    total = settings.epochs * steps_per_epoch
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    lambda_params = lmam.parameters() if lmam is not None else []
    weights = (lmam.other_parameters(model) if lmam is not None
               else [p for p in model.parameters() if p.requires_grad])
    groups = [{"params": weights, "lr": settings.lr, "weight_decay": settings.weight_decay}]
    if lambda_params:
        groups.append({"params": lambda_params, "lr": settings.lambda_lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup * total), total)
    own, patched = model, {name: vars(model).get(name) for name in ("forward", "_original_forward")}
    model, optimizer = accelerator.prepare(model, optimizer)
    inner = accelerator.unwrap_model(model)
    try:
        state: dict[str, Any] = {"step": 0, "losses": [], "lambdas": [], "total": total}
        resumed_at = None
        found = find_checkpoint(run_dir)
        if found is not None:
            parts = read_checkpoint(found)
            if parts is None:
                warnings.warn(f"training checkpoint {found} is unreadable; the run starts over", stacklevel=2)
            else:
                state = restore_checkpoint(parts, inner, optimizer, scheduler)
                resumed_at = state["step"]

        start = time.perf_counter()
        bar = tqdm(total=total, initial=state["step"], desc=desc, leave=False,
                   disable=not progress or not accelerator.is_main_process)
        params = [p for g in groups for p in g["params"]]
        while state["step"] < total:
            step = state["step"] + 1
            epoch, k = divmod(state["step"], steps_per_epoch)
            group = step_groups(len(examples), settings, seed, epoch, rank, world)[k]
            n_group = sum(len(idx) for idx in group)
            model.train()
            loss_sum = 0.0
            for j, idx in enumerate(group):
                batch = {name: t.to(accelerator.device) for name, t in task.collate([examples[i] for i in idx]).items()}
                sync = accelerator.no_sync(model) if j < len(group) - 1 else nullcontext()
                with sync:
                    with accelerator.autocast():
                        loss = task.loss(model, batch)
                    if not torch.isfinite(loss.detach()):
                        raise TrainingDiverged(f"the training loss became {loss.item()} at step {step} "
                                               f"(epoch {epoch + 1}); nothing was stored — try a lower learning rate "
                                               f"(now {settings.lr})")
                    accelerator.backward(loss * (len(idx) / n_group))
                loss_sum += float(loss.detach()) * len(idx)
            norm = accelerator.clip_grad_norm_(params, settings.max_grad_norm)
            if norm is not None and not torch.isfinite(torch.as_tensor(norm)):
                raise TrainingDiverged(f"the gradient norm became {float(norm)} at step {step} (epoch {epoch + 1}); "
                                       f"nothing was stored — try a lower learning rate (now {settings.lr})")
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            mean_loss = float(accelerator.reduce(torch.tensor(loss_sum / n_group, device=accelerator.device),
                                                 reduction="mean"))
            state["step"] = step
            state["losses"].append(mean_loss)
            if lmam is not None:
                state["lambdas"].append(lmam.lambdas())
            if step % settings.checkpoint_every == 0 or step == total:
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    save_checkpoint(run_dir, inner, optimizer, scheduler, state)
            postfix = {"loss": f"{mean_loss:.3f}"}
            if lmam is not None:
                postfix["λ"] = " ".join(f"{x:.3f}" for x in state["lambdas"][-1])
            bar.set_postfix(postfix)
            bar.update(1)
            if on_step is not None:
                on_step(step, mean_loss)
        bar.close()
    finally:
        _own_forward(own, patched)
        own.eval()
        _restore_dtypes(own, stored)
    return TrainLog(steps=state["step"], losses=list(state["losses"]), lambdas=list(state["lambdas"]),
                    seconds=time.perf_counter() - start, resumed_at=resumed_at)
