"""Table 5's protocol (Sec. 4.2), for one ASR corpus or the AEC clips at a time, every fine-tuned row once per seed.

* **MAM**: the better of Tables 1 and 2 *chosen on dev* — the lowest dev error among every all-layer λ of the grid
  (λ = 0 included) and every Table 2 block at every non-zero λ (ties to the smaller λ, then to all layers).
* **FT** starts from the unmerged model, **MAM → FT** from the MAM model (the same run as FT when dev chose λ = 0,
  stored once); **L-MAM** attaches Eq. 3 (:class:`~mamlib.merge.learnable.LearnableMerge`) to the unmerged model
  with every ``λ_i`` at ``lambda_init``, learns them with the weights and bakes them in before the evaluation.

Each run is keyed by its complete configuration (seed included) and checkpointed under ``cache/finetune/<key>/``
while it trains, so an interrupted chapter resumes where it stopped.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from mamlib.asr.transcribe import make_transcriber
from mamlib.finetune.loop import train
from mamlib.finetune.settings import TrainSettings
from mamlib.finetune.tasks import AECTask, AudioClassifier, CTCTask, Task, WhisperTask
from mamlib.merge.learnable import LearnableMerge
from mamlib.sweeps.aec import AECRig, AECSweep
from mamlib.sweeps.asr import ASRRig, ASRSweep
from mamlib.sweeps.choose import block_dev_sweep
from mamlib.sweeps.grid import SweepGrid, layer_label, results_config
from mamlib.sweeps.store import ResultStore, config_key, run_grid

#: Table 5's fine-tuned rows, in the paper's order.
METHODS: tuple[str, ...] = ("ft", "mam-ft", "l-mam")
METHOD_LABELS: dict[str, str] = {"none": "unmerged", "mam": "MAM", "ft": "FT", "mam-ft": "MAM → FT",
                                 "l-mam": "L-MAM + FT"}


@dataclass(frozen=True)
class MAMChoice:
    """The zero-shot configuration chosen on dev for Table 5's MAM row: λ, layers (None: all) and its errors."""

    lam: float
    layers: tuple[int, ...] | None
    dev: float
    test: float


def choose_mam(sweep: ASRSweep | AECSweep, lambdas: Sequence[float], blocks: Sequence[Sequence[int]]) -> MAMChoice:
    """The best dev configuration over Table 1's all-layer λ grid and Table 2's ``blocks`` × non-zero λ (see
    module); ``blocks`` are the task's own (:func:`~mamlib.sweeps.choose.table2_blocks`)."""
    blocks = [tuple(b) for b in blocks]
    value = sweep.value
    dev = pd.concat([sweep.run(SweepGrid(variants=("source",), lambdas=tuple(lambdas), splits=("dev",))),
                     block_dev_sweep(sweep, lambdas, blocks)], ignore_index=True)
    dev = dev[dev["split"] == "dev"].assign(_all=lambda d: d["layers"] != "all")
    best = dev.sort_values([value, "lambda", "_all"]).iloc[0]
    lam = float(best["lambda"])
    layers = (None if best["layers"] == "all" or lam == 0
              else next(b for b in blocks if layer_label(b) == best["layers"]))
    test = sweep.run(SweepGrid(variants=("source",), lambdas=(0.0, lam), layer_sets=(layers,), splits=("test",)))
    return MAMChoice(lam, layers, float(best[value]), float(test[test["lambda"] == lam][value].iloc[0]))


@dataclass
class FinetuneTarget:
    """What the protocol needs of one task, ASR or AEC, each built only when a run is trained (``prepare()`` first,
    on the unmerged network): a trainable copy of the rig's network as it is now (merged or not), the part of it
    L-MAM merges into, the test metrics of a model."""

    label: str
    value: str
    data: dict[str, Any]
    train_examples: Callable[[], Sequence[Any]]
    make_task: Callable[[], Task]
    copy_model: Callable[[], nn.Module]
    merge_root: Callable[[nn.Module], nn.Module]
    evaluate: Callable[[nn.Module], dict[str, Any]]
    prepare: Callable[[], Any] = lambda: None


def asr_target(sweep: ASRSweep, train_utterances: Callable[[], Sequence[Any]]) -> FinetuneTarget:
    """Fine-tuning on an ASR corpus: CTC loss for CTC targets, Whisper's own loss for Whisper; WER on test."""
    rig = sweep.rig

    def make_task() -> Task:
        task = CTCTask if rig.loaded.architecture == "ctc" else WhisperTask
        return task(rig.loaded.feature_extractor, rig.loaded.tokenizer)

    def evaluate(model: nn.Module) -> dict[str, Any]:
        return rig.scores(make_transcriber(replace(rig.loaded, model=model), rig.preset.device),
                          sweep.utterances["test"])

    data = {**sweep.corpus.as_dict(), "n_train": sweep.corpus.n_train}
    return FinetuneTarget(sweep.corpus.label, "wer", data, cache(train_utterances), make_task,
                          copy_model=lambda: copy.deepcopy(rig.transcriber.model),
                          merge_root=lambda model: model, evaluate=evaluate)


def aec_target(rig: AECRig) -> FinetuneTarget:
    """Fine-tuning the AEC network: encoder and linear head (the zero-shot protocol's head as the start) trained
    together with cross-entropy on the training folds; classification error on the test fold."""
    def copy_model() -> nn.Module:
        return AudioClassifier(rig.encoder.copy(), copy.deepcopy(rig.head()).requires_grad_(True))

    def evaluate(model: nn.Module) -> dict[str, Any]:
        assert isinstance(model, AudioClassifier)
        return rig.scores(model._encode, model.head, rig.clips.test)

    return FinetuneTarget(rig.setup.data.label, "error", rig.data_key(), lambda: rig.clips.train, AECTask,
                          copy_model=copy_model, merge_root=lambda model: model.encoder, evaluate=evaluate,
                          prepare=rig.head)  # the head is trained on the unmerged encoder, before a run merges it


@dataclass
class FinetuneStudy:
    """Table 5 for one :class:`FinetuneTarget` of a rig: ``run()`` returns one row per fine-tuned run."""

    rig: ASRRig | AECRig
    target: FinetuneTarget
    settings: TrainSettings
    seeds: Sequence[int]
    mam: MAMChoice
    store: ResultStore
    run_root: Path
    progress: bool = True

    def runs(self) -> list[tuple[str, dict[str, Any]]]:
        """Every row of Table 5 this study fills, as ``(method, config)``; the config is the run's complete
        description (its results-store key, :func:`~mamlib.sweeps.grid.results_config`). MAM → FT from λ = 0 is
        FT's own run: its config says ``method: ft`` and is trained once."""
        setup = self.rig.setup
        start = None if self.mam.lam == 0 else {"lambda": self.mam.lam,
                                                 "layers": None if self.mam.layers is None else list(self.mam.layers)}
        out = []
        for seed, method in product(self.seeds, METHODS):
            run = "ft" if method == "mam-ft" and start is None else method
            out.append((method, results_config(
                self.rig.preset, setup, self.target.data, setup.experiment.replace("interpolation", "finetune"),
                source_model=setup.source.as_dict(), method=run, start=start if run == "mam-ft" else None,
                settings=self.settings.as_dict(), seed=int(seed))))
        return out

    def _train_and_evaluate(self, config: dict[str, Any]) -> dict[str, Any]:
        rig, target = self.rig, self.target
        target.prepare()
        start = config["start"]
        with nullcontext() if start is None else rig.merger.merged(start["lambda"], start["layers"]):
            model = target.copy_model()
        lmam = (LearnableMerge(target.merge_root(model), rig.merger.source, init=self.settings.lambda_init,
                               layer_map=rig.merger.layer_map) if config["method"] == "l-mam" else None)
        run_dir = self.run_root / config_key(config)
        log = train(model, target.make_task(), target.train_examples(), self.settings, seed=config["seed"],
                    run_dir=run_dir, lmam=lmam, device=rig.preset.device, progress=self.progress, data_parallel=False,
                    desc=f"{target.label} {'L-MAM' if lmam else 'FT' if start is None else 'MAM → FT'} seed "
                         f"{config['seed']}")
        learned = lmam.bake() if lmam is not None else None
        with torch.no_grad():
            result = target.evaluate(model.eval())
        shutil.rmtree(run_dir, ignore_errors=True)
        return {**result, "losses": log.losses, "lambdas": learned, "lambda_trace": log.lambdas, "steps": log.steps,
                "train_seconds": log.seconds}

    def run(self) -> pd.DataFrame:
        """Every run of :meth:`runs`, trained and evaluated if not stored yet; one row each, with ``method``."""
        runs = self.runs()
        unique = {config_key(c): c for _, c in runs}  # MAM → FT from λ = 0 is FT: trained once
        done = dict(zip(unique, run_grid(list(unique.values()), self._train_and_evaluate, self.store,
                                         desc=f"{self.target.label} fine-tuning", progress=self.progress)))
        return pd.DataFrame([{**done[config_key(c)], "method": m} for m, c in runs]).assign(corpus=self.target.label)
