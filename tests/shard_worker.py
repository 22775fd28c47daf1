"""One process of the sharding tests (``tests/test_sharding.py``), started by ``accelerate launch``.

``python tests/shard_worker.py DIR sweep`` — the smoke preset's ASR sweep (two source variants, every λ) into
``DIR/sweep``; ``finetune`` — a few data-parallel fine-tuning steps of a dropout-free tiny HuBERT, rank 0 saving the
weights to ``DIR/finetune-<processes>.pt``; ``alone`` — the same run trained by this process alone, whatever the
launcher's environment says (``DIR/finetune-alone.pt``); ``grid [DIE_AFTER]`` — a grid of cheap configurations
into ``DIR/grid``, every store write logged to ``DIR/puts-<rank>.log``; with ``DIE_AFTER`` rank 1 exits abruptly
before its next evaluation once it has stored that many.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from mamlib.sweeps.store import ResultStore, config_key, process_rank, run_grid

GRID = [{"experiment": "shard-test", "i": i} for i in range(12)]


class LoggedStore(ResultStore):
    def __init__(self, root: Path, log: Path) -> None:
        super().__init__(root)
        self.log = log

    def put(self, config, result, compute=None) -> None:
        super().put(config, result, compute)
        with open(self.log, "a") as f:
            f.write(config_key(config) + "\n")


def grid(out: Path, die_after: int | None) -> None:
    rank, _ = process_rank()
    store = LoggedStore(out / "grid", out / f"puts-{rank}.log")
    done = []

    def evaluate(config):
        if die_after is not None and rank == 1 and len(done) >= die_after:
            os._exit(3)
        done.append(config["i"])
        return {"square": float(config["i"] ** 2)}

    rows = run_grid(GRID, evaluate, store, progress=False, poll_seconds=0.05)
    assert [r["square"] for r in rows] == [float(i * i) for i in range(12)]


def sweep(out: Path) -> None:
    from mamlib.presets.schema import load_preset
    from mamlib.sweeps.asr import ASRRig, ASRSweep, load_corpora
    from mamlib.sweeps.grid import SweepGrid

    preset = load_preset("smoke")
    rig = ASRRig.build(preset, variants=("source", "noise-standard"))
    (label, spec), = preset.asr.corpora.items()
    utts = load_corpora(preset.asr.corpora, out / "audio")[label]
    ASRSweep(rig, spec, utts, ResultStore(out / "sweep")).run(SweepGrid(variants=("source", "noise-standard")))


def finetune_model():
    from transformers import HubertConfig, HubertForCTC

    from mamlib.models.transformers_kinds import char_ctc_tokenizer, speech_feature_extractor

    torch.manual_seed(0)
    tokenizer = char_ctc_tokenizer()
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       conv_dim=(16,) * 7, num_conv_pos_embeddings=16, vocab_size=len(tokenizer),
                       hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                       final_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0, do_stable_layer_norm=True,
                       feat_extract_norm="layer")
    return HubertForCTC(cfg), speech_feature_extractor(), tokenizer


def finetune_examples():
    from mamlib.asr.recognizers import Utterance

    rng = np.random.default_rng(0)
    words = ["a cat", "the dog ran", "blue sky", "one two", "hello there", "go home now", "red car", "big tree"]
    return [Utterance(f"u{i}", (0.1 * rng.standard_normal(6000)).astype(np.float32), words[i]) for i in range(8)]


def finetune(out: Path, processes: int, data_parallel: bool = True) -> None:
    from mamlib.finetune.loop import train
    from mamlib.finetune.settings import TrainSettings
    from mamlib.finetune.tasks import CTCTask

    model, extractor, tokenizer = finetune_model()
    settings = TrainSettings(lr=1e-3, batch_size=4, micro_batch=2, epochs=2, warmup=0.0)
    name = f"{processes}" if data_parallel else "alone"
    train(model, CTCTask(extractor, tokenizer), finetune_examples(), settings, seed=0,
          run_dir=out / f"ft-run-{name}", progress=False, data_parallel=data_parallel)
    if process_rank()[0] == 0 or not data_parallel:
        torch.save(model.state_dict(), out / f"finetune-{name}.pt")


if __name__ == "__main__":
    folder, mode = Path(sys.argv[1]), sys.argv[2]
    if mode == "grid":
        grid(folder, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif mode == "sweep":
        sweep(folder)
    elif mode == "alone":
        finetune(folder, 1, data_parallel=False)
    else:
        finetune(folder, process_rank()[1])
