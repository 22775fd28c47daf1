"""Training state on disk, written atomically and read back safely (Sec. 4.2's runs must survive interruption).

A checkpoint is a folder: ``model.safetensors`` (every tensor of the model's state, λ's logits included; the frozen
source matrices are not part of it), ``optimizer.pt`` and ``scheduler.pt`` (state dicts: tensors and numbers, read
with ``torch.load(..., weights_only=True)``), ``rng.pt`` (the torch generators' states) and ``state.json`` (step,
the loss and λ logs, numpy's and Python's generators). It is written into a temporary sibling folder and renamed
into place, so a run killed at any moment leaves either the previous checkpoint or the new one, never a mixture.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINT = "checkpoint"


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def host_rng_state() -> dict[str, Any]:
    """numpy's and Python's global generators as JSON (transformers draws SpecAugment masks from numpy)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"numpy": [name, keys.tolist(), pos, has_gauss, gauss],
            "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()]}


def set_host_rng_state(state: dict[str, Any]) -> None:
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(run_dir: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, state: dict[str, Any]) -> Path:
    """Write the training state under ``run_dir/checkpoint`` atomically; returns that folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / CHECKPOINT
    tmp = run_dir / f".{CHECKPOINT}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # Tied or shared tensors (Whisper's output projection, λ shared by Q/K/V) are written as separate copies.
    save_file({k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "host_rng": host_rng_state()}))
    old = run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The run's complete checkpoint folder, if any (also one left mid-swap by a kill)."""
    for name in (CHECKPOINT, f".{CHECKPOINT}.old"):
        path = Path(run_dir) / name
        if (path / "state.json").is_file():
            return path
    return None


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """Every part of the checkpoint at ``path`` read into memory, or None when a file is missing, truncated or
    corrupt (the run then starts over: a checkpoint is a cache of work, never an input)."""
    try:
        return {
            "model": load_file(str(path / "model.safetensors")),
            "optimizer": torch.load(path / "optimizer.pt", weights_only=True),
            "scheduler": torch.load(path / "scheduler.pt", weights_only=True),
            "rng": torch.load(path / "rng.pt", weights_only=True),
            "state": json.loads((path / "state.json").read_text()),
        }
    except Exception:  # noqa: BLE001 — any unreadable part makes the whole checkpoint unusable
        return None


def restore_checkpoint(parts: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
                       ) -> dict[str, Any]:
    """Put a :func:`read_checkpoint` result back into model, optimizer, scheduler and generators; returns the loop
    state. A checkpoint of another model (other tensor names or shapes) is a ValueError."""
    try:
        model.load_state_dict(parts["model"], strict=True)
        optimizer.load_state_dict(parts["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(f"the training checkpoint does not fit this model or optimizer: {err}") from err
    scheduler.load_state_dict(parts["scheduler"])
    _set_rng_state(parts["rng"])
    state = dict(parts["state"])
    set_host_rng_state(state.pop("host_rng"))
    return state
