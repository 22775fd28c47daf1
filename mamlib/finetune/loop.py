"""The one fine-tuning loop of Sec. 4.2 (Table 5), for every task, plain fine-tuning and L-MAM alike, on Accelerate
(devices, bf16 autocast on GPUs, data parallelism under ``accelerate launch``). The paper's effective batch (32) is
reached by gradient accumulation; AdamW takes the weights at ``lr`` and L-MAM's logits ``θ_i`` at ``lambda_lr``
without weight decay, on a linear schedule with warm-up. A 16-bit model trains with float32 master weights (most
updates at the paper's rate would round away in 16 bits). The run is deterministic given its ``seed``, and a killed
run resumes from its last checkpoint to the weights of an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mamlib.finetune.checkpoint import resume, save_checkpoint
from mamlib.finetune.settings import TrainSettings
from mamlib.merge.learnable import LearnableMerge

if TYPE_CHECKING:
    from mamlib.finetune.tasks import Task


class TrainingDiverged(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite; nothing of the run is stored."""


@dataclass
class TrainLog:
    """A finished run: its steps, each step's mean loss and ``λ_i`` (L-MAM), wall seconds here, the step resumed at."""

    steps: int
    losses: list[float]
    lambdas: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0
    resumed_at: int | None = None


def step_groups(n: int, settings: TrainSettings, seed: int, epoch: int, rank: int = 0, world: int = 1
                ) -> list[list[list[int]]]:
    """Epoch ``epoch``'s optimizer steps for process ``rank`` of ``world``, each a list of micro-batches (example
    indices), in an order drawn from ``(seed, epoch)`` alone. Every process gets as many micro-batches (the remainder
    that cannot be shared equally is dropped); the last step of an epoch may hold fewer."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
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


def _accelerator(settings: TrainSettings, device: str, alone: bool) -> Any:
    """An Accelerator with the run's mixed precision (``auto``: bf16 on a CUDA GPU that has it). Accelerate keeps one
    setting per process and refuses a second, and runs of one kernel may differ (Table 5's ASR and AEC targets): an
    earlier run's is cleared, the process group kept. ``alone`` hides the launcher's process group from it."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    saved = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
             if alone and k in os.environ}
    try:
        precision = settings.mixed_precision
        if precision == "auto":
            cuda = device.startswith("cuda") and torch.cuda.is_available()
            precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
        if AcceleratorState._shared_state and AcceleratorState().mixed_precision != precision:
            AcceleratorState._reset_state()
        return Accelerator(cpu=not device.startswith("cuda"), mixed_precision=precision)
    finally:
        os.environ.update(saved)


def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def _check_finite(value: Any, what: str, step: int, epoch: int, settings: TrainSettings) -> None:
    if value is not None and not torch.isfinite(torch.as_tensor(value)):
        raise TrainingDiverged(f"the {what} became {float(value)} at step {step} (epoch {epoch + 1}); nothing was "
                               f"stored — try a lower learning rate (now {settings.lr})")


def train(model: nn.Module, task: Task, examples: Sequence[Any], settings: TrainSettings, *, seed: int,
          run_dir: str | Path, lmam: LearnableMerge | None = None, device: str = "cpu",
          on_step: Callable[[int, float], None] | None = None, progress: bool = True, desc: str = "fine-tuning",
          data_parallel: bool = True) -> TrainLog:
    """Fine-tune ``model`` in place on ``examples`` (with L-MAM's ``θ_i`` when ``lmam`` is attached to it).

    Checkpoints go to ``run_dir`` every ``settings.checkpoint_every`` steps and after the last; a run that finds
    one there resumes from it (a finished run returns at once). ``on_step(step, loss)`` is called after every
    optimizer step. Under ``accelerate launch`` the run is data-parallel over every process; with
    ``data_parallel=False`` this process trains it alone (the book's sharded builds give whole runs to processes).
    """
    from transformers import get_linear_schedule_with_warmup, set_seed

    if not examples:
        raise ValueError("no training examples")
    accelerator = _accelerator(settings, device, alone=not data_parallel)
    rank, world = accelerator.process_index, accelerator.num_processes
    stored = {name: t.dtype for name, t in _tensors(model).items()}
    low_precision = any(dtype in (torch.bfloat16, torch.float16) for dtype in stored.values())
    if low_precision:
        model.float()
    task.prepare(model)
    if settings.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()
    set_seed(seed)  # Python's, numpy's (transformers draws SpecAugment masks from it) and torch's generators
    steps_per_epoch = len(step_groups(len(examples), settings, seed, 0, rank, world))
    total = min(settings.epochs * steps_per_epoch, settings.max_steps or float("inf"))
    weights = lmam.other_parameters(model) if lmam is not None else [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": weights, "lr": settings.lr, "weight_decay": settings.weight_decay}]
    if lmam is not None and lmam.parameters():
        groups.append({"params": lmam.parameters(), "lr": settings.lambda_lr, "weight_decay": 0.0})
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup * total), total)
    # Under mixed precision ``prepare`` replaces the model's forward with an autocast wrapper, which would score every
    # later evaluation in bf16; the instance attributes it sets are put back afterwards.
    own, patched = model, {name: v for name, v in vars(model).items() if name in ("forward", "_original_forward")}
    model, optimizer = accelerator.prepare(model, optimizer)
    inner = accelerator.unwrap_model(model)
    try:
        state = resume(run_dir, inner, optimizer, scheduler)
        resumed_at = None if state is None else state["step"]
        state = state or {"step": 0, "losses": [], "lambdas": [], "total": total}
        start = time.perf_counter()
        bar = tqdm(total=total, initial=state["step"], desc=desc, leave=False,
                   disable=not progress or not accelerator.is_main_process)
        while state["step"] < total:
            step = state["step"] + 1
            epoch, k = divmod(state["step"], steps_per_epoch)
            group = step_groups(len(examples), settings, seed, epoch, rank, world)[k]
            n_group = sum(len(idx) for idx in group)
            model.train()
            loss_sum = 0.0
            for j, idx in enumerate(group):
                batch = {name: t.to(accelerator.device) for name, t in task.collate([examples[i] for i in idx]).items()}
                with accelerator.no_sync(model) if j < len(group) - 1 else nullcontext():
                    with accelerator.autocast():
                        loss = task.loss(model, batch)
                    _check_finite(loss.detach(), "training loss", step, epoch, settings)
                    accelerator.backward(loss * (len(idx) / n_group))
                loss_sum += float(loss.detach()) * len(idx)
            _check_finite(accelerator.clip_grad_norm_(params, settings.max_grad_norm), "gradient norm", step, epoch,
                          settings)
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
            lams = {"λ": " ".join(f"{x:.3f}" for x in state["lambdas"][-1])} if lmam is not None else {}
            bar.set_postfix({"loss": f"{mean_loss:.3f}", **lams})
            bar.update(1)
            if on_step is not None:
                on_step(step, mean_loss)
        bar.close()
    finally:
        for name in ("forward", "_original_forward"):
            own.__dict__.pop(name, None)
        own.__dict__.update(patched)
        own.eval()
        if low_precision:
            with torch.no_grad():
                for name, t in _tensors(own).items():
                    t.data = t.data.to(stored[name])
    return TrainLog(steps=state["step"], losses=list(state["losses"]), lambdas=list(state["lambdas"]),
                    seconds=time.perf_counter() - start, resumed_at=resumed_at)
