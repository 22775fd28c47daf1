"""Training state on disk, written atomically and read back safely (Sec. 4.2's runs must survive interruption): a
folder of ``model.safetensors`` (λ's logits included, the frozen sources not), ``optimizer.pt``, ``scheduler.pt``,
``rng.pt`` (read with ``weights_only=True``) and ``state.json`` (step, logs, numpy's and Python's generators),
written into a temporary sibling and renamed into place: a kill leaves the previous checkpoint or the new one."""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINT = "checkpoint"


def save_checkpoint(run_dir: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, state: dict[str, Any]) -> Path:
    """Write the training state under ``run_dir/checkpoint`` atomically; returns that folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final, tmp, old = run_dir / CHECKPOINT, run_dir / f".{CHECKPOINT}.{os.getpid()}.tmp", run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # Tied or shared tensors (Whisper's output projection, λ shared by Q/K/V) are written as separate copies.
    save_file({k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    cuda = {"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}
    torch.save({"cpu": torch.get_rng_state(), **cuda}, tmp / "rng.pt")
    # transformers draws SpecAugment masks from numpy's generator; both host generators are stored as JSON lists.
    host = {"numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],
            "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}
    (tmp / "state.json").write_text(json.dumps({**state, "host_rng": host}))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def resume(run_dir: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
           ) -> dict[str, Any] | None:
    """Put the run's checkpoint (also one left mid-swap by a kill) back into model, optimizer, scheduler and
    generators and return the loop state; None without one. Every part is read before any is restored: an
    unreadable checkpoint is warned about and ignored (it is a cache of work, never an input); one of another
    model (other tensor names or shapes) is a ValueError."""
    path = next((p for p in (Path(run_dir) / CHECKPOINT, Path(run_dir) / f".{CHECKPOINT}.old")
                 if (p / "state.json").is_file()), None)
    if path is None:
        return None
    try:
        weights = load_file(str(path / "model.safetensors"))
        optim, sched, rng = (torch.load(path / f"{part}.pt", map_location="cpu", weights_only=True)
                             for part in ("optimizer", "scheduler", "rng"))  # the optimizer moves its state back
        state = json.loads((path / "state.json").read_text())
        host = state.pop("host_rng")
        numpy_state = tuple(host["numpy"])  # numpy takes the key as a list
        python_state = tuple(tuple(x) if isinstance(x, list) else x for x in host["python"])
        cpu_rng = rng["cpu"]
        np.random.RandomState().set_state(numpy_state)  # each generator's state tried on a scratch one first
        random.Random().setstate(python_state)
        torch.Generator().set_state(cpu_rng)
    except Exception:  # noqa: BLE001 — any unreadable part makes the whole checkpoint unusable
        warnings.warn(f"training checkpoint {path} is unreadable; the run starts over", stacklevel=3)
        return None
    try:
        model.load_state_dict(weights, strict=True)
        optimizer.load_state_dict(optim)
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(f"the training checkpoint does not fit this model or optimizer: {err}") from err
    scheduler.load_state_dict(sched)
    torch.set_rng_state(cpu_rng)
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    return state
